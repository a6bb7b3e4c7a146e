"""Fine-tuning both models (LoRA through peft, and full) on tiny real models, and adapters served
side by side: a domain adapter changes conversions only for the sessions that ask for it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from recognizer_fixtures import SENTENCES, model_paths, speech

from asr_pinyin.finetune.lora import AdapterError

# A "domain" the tiny base LM never saw: its hanzi are readable, but the base model has no
# reason to pick them (it learned 8 everyday sentences).
DOMAIN = ["服务器配置文件", "修改配置文件", "服务器重启", "文件服务器", "配置服务器文件",
          "重启文件服务", "服务配置修改", "修改服务器"]


def _rows(texts):
    from asr_pinyin.text.labels import label_sentence

    return [label_sentence(t + "。")[0] for t in texts]


def _acc(lm, rows, domain=None):
    from asr_pinyin.lm.evaluate import evaluate

    return evaluate(lm, rows, domain=domain)["char_accuracy"]


@pytest.fixture(scope="module")
def lm_adapter(tmp_path_factory):
    from asr_pinyin.lm.finetune import FinetuneConfig, finetune

    d = tmp_path_factory.mktemp("ft_lm")
    (d / "domain.txt").write_text("。".join(DOMAIN * 3) + "。", encoding="utf-8")   # plain text in
    _, base = model_paths()
    cfg = FinetuneConfig(data=str(d / "domain.txt"), out=str(d / "it.pt"), method="lora", base=str(base),
                         general="", rank=4, alpha=8, lr=1e-2, batch_tokens=256, max_steps=60, warmup_steps=5,
                         eval_every=20, patience=10, dev_share=0.3, threads=1, seed=0)
    report = finetune(cfg, progress=False)
    return base, d / "it.pt", report


def test_lm_lora_learns_domain_and_leaves_base_alone(lm_adapter):
    from asr_pinyin.lm.decode import LanguageModel

    base, adapter, report = lm_adapter
    assert report["method"] == "lora" and 0 < report["trainable_share"] < 0.5
    assert report["bytes"] == adapter.stat().st_size and json.loads(adapter.with_suffix(".json").read_text())
    rows = _rows(DOMAIN)
    general = [{"text": t + "。", "pinyin": p} for t, p in SENTENCES]
    lm = LanguageModel.load(base)
    before, general_before = _acc(lm, rows), _acc(lm, general)
    lm.add_adapter("it", adapter)
    assert lm.domains == {"it"}
    after = _acc(lm, rows, domain="it")
    assert after > before + 0.2, (before, after)
    # the base model (no domain) is unchanged by loading the adapter
    assert _acc(lm, general) == general_before
    with pytest.raises(AdapterError, match="unknown domain adapter"):
        _acc(lm, rows, domain="medical")
    with pytest.raises(AdapterError, match="already loaded"):
        lm.add_adapter("it", adapter)


def test_lm_adapter_refuses_other_base_and_bad_files(lm_adapter, tmp_path):
    from asr_pinyin.lm.decode import LanguageModel

    base, adapter, _ = lm_adapter
    ck = torch.load(base, map_location="cpu", weights_only=False)
    ck["state"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in ck["state"].items()}
    torch.save(ck, tmp_path / "other.pt")
    with pytest.raises(AdapterError, match="another base model"):
        LanguageModel.load(tmp_path / "other.pt").add_adapter("it", adapter)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    lm = LanguageModel.load(base)
    with pytest.raises(AdapterError, match="not a readable adapter"):
        lm.add_adapter("x", tmp_path / "junk.pt")
    with pytest.raises(AdapterError, match="not found"):
        lm.add_adapter("x", tmp_path / "missing.pt")


def test_lm_full_finetune_and_eval_cli(lm_adapter, tmp_path, capsys):
    from asr_pinyin.cli import main
    from asr_pinyin.lm.decode import LanguageModel
    from asr_pinyin.lm.finetune import FinetuneConfig, finetune

    base, adapter, _ = lm_adapter
    data = tmp_path / "domain.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _rows(DOMAIN * 2)), encoding="utf-8")
    report = finetune(FinetuneConfig(data=str(data), out=str(tmp_path / "full.pt"), method="full", base=str(base),
                                     general="", lr=3e-3, batch_tokens=256, max_steps=40, warmup_steps=5,
                                     eval_every=20, dev_share=0.3, threads=1), progress=False)
    assert report["trainable_share"] == 1.0
    full = LanguageModel.load(tmp_path / "full.pt")
    assert _acc(full, _rows(DOMAIN)) > _acc(LanguageModel.load(base), _rows(DOMAIN))
    out = []
    for extra in ([], ["--adapter", str(adapter)]):
        assert main(["eval-lm", "--data", str(data), "--model", str(base), *extra]) == 0
        out.append(json.loads(capsys.readouterr().out))
    assert out[1]["adapter"] == str(adapter) and out[1]["char_accuracy"] > out[0]["char_accuracy"]
    assert main(["eval-lm", "--data", str(data), "--model", str(base), "--adapter", str(tmp_path / "nope.pt")]) == 2
    assert "adapter not found" in capsys.readouterr().err


# ---- acoustic -----------------------------------------------------------------------------
def _voice_manifest(root, rate: int):
    """The test sentences read at another speaking rate: a 'voice' the tiny base has not heard."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "m.jsonl", "w", encoding="utf-8") as f:
        for i, (text, py) in enumerate(SENTENCES):
            x = speech(py, rate)
            sf.write(root / f"{i}.flac", x, 16000)
            f.write(json.dumps({"id": str(i), "audio": f"{i}.flac", "text": text, "pinyin": py,
                                "duration": len(x) / 16000}, ensure_ascii=False) + "\n")
    return root / "m.jsonl"


@pytest.fixture(scope="module")
def am_adapter(tmp_path_factory):
    from asr_pinyin.acoustic.finetune import finetune_am

    d = tmp_path_factory.mktemp("ft_am")
    manifest = _voice_manifest(d / "voice", 260)
    base, _ = model_paths()
    report = finetune_am(str(manifest), str(d / "fast.pt"), "lora", str(base), str(manifest), max_steps=40,
                         max_minutes=3, progress=False, rank=8, lr=5e-3, threads=1, work_dir=str(d / "work"))
    return base, d / "fast.pt", manifest, report


def test_am_lora_adapts_to_a_new_voice(am_adapter):
    base, adapter, manifest, report = am_adapter
    assert report["ser_after"] < report["ser_before"], report
    assert 0 < report["trainable_share"] < 0.5 and adapter.is_file()
    assert (adapter.parent / "work" / "tb").is_dir()          # TensorBoard logs written


def test_am_finetune_keeps_the_best_dev_state_even_the_start(am_adapter, tmp_path):
    """A run that only makes the voice worse (absurd learning rate) ships its starting point:
    the adapter then changes nothing, instead of the averaged, over-fit last steps."""
    from asr_pinyin.acoustic.finetune import finetune_am

    base, _, manifest, _ = am_adapter
    report = finetune_am(str(manifest), str(tmp_path / "bad.pt"), "lora", str(base), str(manifest), max_steps=50,
                         max_minutes=3, progress=False, rank=8, lr=30.0, threads=1, work_dir=str(tmp_path / "w"))
    log = [json.loads(line) for line in (tmp_path / "w" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r.get("event") == "best"] == [0], log
    assert report["ser_after"] == pytest.approx(report["ser_before"])
    devs = [r["ser"] for r in log if r.get("event") == "dev"]
    assert max(devs) > report["ser_before"]                  # the steps after it were worse


def test_am_finetune_without_early_stop_runs_the_whole_schedule(am_adapter, tmp_path):
    """early_stop=False (enrollment's policy): the dev set is measured, not obeyed. The same
    absurd run trains every step and ships its end, worse than the start, instead of the start."""
    from asr_pinyin.acoustic.finetune import finetune_am

    base, _, manifest, _ = am_adapter
    report = finetune_am(str(manifest), str(tmp_path / "fixed.pt"), "lora", str(base), str(manifest), max_steps=30,
                         max_minutes=3, progress=False, rank=8, lr=30.0, threads=1, work_dir=str(tmp_path / "w"),
                         early_stop=False)
    log = [json.loads(line) for line in (tmp_path / "w" / "log.jsonl").read_text().splitlines()]
    events = {r.get("event") for r in log}
    assert "best" not in events and "early_stop" not in events and "dev" in events, events
    assert report["steps"] == 30 and report["early_stop"] is False
    assert report["ser_after"] > report["ser_before"], report


def test_am_lora_can_reach_the_output_heads_and_input_projections(am_adapter, tmp_path):
    """--lora-targets: LoRA also on the output head and the input projections (fbank, pitch);
    the adapter file carries those layers, loads on the base, changes its output only when on."""
    import torch

    from asr_pinyin.acoustic.dataset import load_wave, read_manifest
    from asr_pinyin.acoustic.finetune import finetune_am
    from asr_pinyin.acoustic.frontend import features
    from asr_pinyin.acoustic.model import load_model
    from asr_pinyin.finetune.lora import load_adapter, use_adapter

    base, _, manifest, _ = am_adapter
    targets = ["qkv", "out", "head", "proj"]
    out = tmp_path / "heads.pt"
    report = finetune_am(str(manifest), str(out), "lora", str(base), None, max_steps=8, max_minutes=2,
                         progress=False, rank=4, lr=5e-3, threads=1, work_dir=str(tmp_path / "w"),
                         lora_targets=targets)
    assert report["lora_targets"] == targets
    ck = torch.load(out, map_location="cpu", weights_only=False)
    layers = {k.split(".lora_")[0] for k in ck["state"]}
    assert {"head", "subsample.proj"} <= layers and any(k.endswith(".qkv") for k in layers), layers
    model = load_model(base)
    load_adapter(model, out, "v", "am")
    u = read_manifest(manifest)[0][0]
    x = features(load_wave(u.audio), model.cfg.n_mels, model.cfg.pitch_kind)[None]
    n = torch.tensor([x.shape[1]])
    with torch.no_grad():
        plain = model(x, n)[0]
        with use_adapter(model, "v"):
            adapted = model(x, n)[0]
        again = model(x, n)[0]
    assert not torch.allclose(plain, adapted) and torch.equal(plain, again)


def test_am_replay_mixes_general_speech_into_the_recipe(am_adapter, tmp_path):
    """--replay P: general utterances make up P of the training set, readable from anywhere."""
    from asr_pinyin.acoustic.config import ConfigError
    from asr_pinyin.acoustic.dataset import read_manifest
    from asr_pinyin.acoustic.finetune import finetune_config

    base, _, voice, _ = am_adapter
    general = _voice_manifest(tmp_path / "general", 175)
    cfg = finetune_config(str(voice), str(tmp_path / "w"), "lora", str(base), replay=0.5,
                          replay_manifest=str(general))
    assert cfg.data.train[0] == str(voice) and len(cfg.data.train) == 2
    mixed = read_manifest(cfg.data.train[1])[0]
    own = read_manifest(voice)[0]
    assert len(mixed) == len(own) and all(Path(u.audio).is_file() for u in mixed)
    assert {u.pinyin for u in mixed} <= {u.pinyin for u in read_manifest(general)[0]}
    again = finetune_config(str(voice), str(tmp_path / "w2"), "lora", str(base), replay=0.5,
                            replay_manifest=str(general))
    assert Path(again.data.train[1]).read_text().replace("w2", "w") == Path(cfg.data.train[1]).read_text()
    with pytest.raises(ConfigError, match="not found"):
        finetune_config(str(voice), str(tmp_path / "w3"), "lora", str(base), replay=0.3,
                        replay_manifest=str(tmp_path / "missing.jsonl"))
    with pytest.raises(ConfigError, match="replay must be"):
        finetune_config(str(voice), str(tmp_path / "w4"), "lora", str(base), replay=1.0,
                        replay_manifest=str(general))


def test_eval_cli_with_adapter(am_adapter, capsys):
    from asr_pinyin.cli import main

    base, adapter, manifest, report = am_adapter
    res = []
    for extra in ([], ["--adapter", str(adapter)]):
        assert main(["eval", "--manifest", str(manifest), "--model", str(base), "--no-lm", *extra]) == 0
        res.append(json.loads(capsys.readouterr().out))
    assert res[0]["syllable_error_rate"] == pytest.approx(report["ser_before"])
    assert res[1]["syllable_error_rate"] == pytest.approx(report["ser_after"])


def test_recognizer_serves_voices_and_domains_side_by_side(am_adapter, lm_adapter, tmp_path):
    """Sessions with and without adapters in one recognizer: each gets what its adapter gives
    alone, the base model is loaded once, unknown names are refused."""
    import shutil

    from asr_pinyin.recognizer import Recognizer, StreamOptions
    from asr_pinyin.recognizer.stream import StreamConfigError

    base_am, am_file, manifest, _ = am_adapter
    base_lm, lm_file, _ = lm_adapter
    folder = tmp_path / "adapters"
    (folder / "am").mkdir(parents=True)
    (folder / "lm").mkdir()
    shutil.copy(am_file, folder / "am" / "fast.pt")
    shutil.copy(lm_file, folder / "lm" / "it.pt")
    rec = Recognizer.load(base_am, base_lm)
    try:
        assert rec.add_adapter_dir(folder) == {"domains": ["it"], "voices": ["fast"]}
        x = np.concatenate([np.zeros(8000, np.float32), speech(SENTENCES[1][1], 260), np.zeros(8000, np.float32)])
        alone = {v: [f.pinyin for f in rec.transcribe(x, options=StreamOptions(partials=False, voice=v))]
                 for v in (None, "fast")}
        # both at once, interleaved in the same batches
        streams = {v: rec.create_stream(StreamOptions(partials=False, voice=v)) for v in (None, "fast")}
        for i in range(0, len(x), 3200):
            for s in streams.values():
                s.accept_waveform(16000, x[i:i + 3200])
        together = {}
        for v, s in streams.items():
            s.input_finished()
            assert s.wait(30)
            together[v] = [r.pinyin for r in s.results() if type(r).__name__ == "Final" and r.pinyin]
            s.close()
        assert together == {v: [p for p in alone[v] if p] for v in alone}
        with pytest.raises(StreamConfigError, match="voice adapter"):
            rec.create_stream(StreamOptions(voice="nobody"))
        conv = {d: rec.transcribe(x, options=StreamOptions(partials=False, domain=d)) for d in (None, "it")}
        assert all(conv.values())
    finally:
        rec.close()


def test_finetune_lm_under_torchrun_two_gloo_processes(lm_adapter, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from asr_pinyin.lm.decode import LanguageModel

    base, _, _ = lm_adapter
    (tmp_path / "domain.txt").write_text("。".join(DOMAIN * 2) + "。", encoding="utf-8")
    env = {**os.environ, "ASR_PINYIN_DEVICE": "cpu", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "asr_pinyin.cli", "finetune-lm", "--data", str(tmp_path / "domain.txt"), "--base", str(base),
           "--out", str(tmp_path / "ddp.pt"), "--general", "", "--rank", "4", "--max-steps", "4",
           "--eval-every", "2", "--threads", "1"]
    p = subprocess.run(cmd, cwd=Path(__file__).parents[1], env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    reports = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1                   # rank 0 alone writes and reports
    assert reports[0]["world"] == 2 and reports[0]["steps"] == 4
    lm = LanguageModel.load(base)
    lm.add_adapter("ddp", tmp_path / "ddp.pt")
    assert lm.domains == {"ddp"}


def test_transcribe_with_an_enrolled_voice(am_adapter, lm_adapter, tmp_path, monkeypatch, capsys):
    """`transcribe --voice NAME` finds the voice's adapter in the user's profile folder."""
    import shutil

    from asr_pinyin.cli import main

    base_am, am_file, _, _ = am_adapter
    base_lm, _, _ = lm_adapter
    monkeypatch.setenv("ASR_PINYIN_HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "voices" / "alice").mkdir(parents=True)
    shutil.copy(am_file, tmp_path / "home" / "voices" / "alice" / "adapter.pt")
    x = np.concatenate([np.zeros(8000, np.float32), speech(SENTENCES[2][1], 260), np.zeros(8000, np.float32)])
    sf.write(tmp_path / "a.wav", x, 16000)
    common = ["transcribe", str(tmp_path / "a.wav"), "--am", str(base_am), "--lm", str(base_lm), "-q",
              "-f", "json", "-o", str(tmp_path / "out")]
    assert main(common + ["--voice", "alice"]) == 0
    segs = json.loads((tmp_path / "out" / "a.json").read_text())["segments"]
    assert segs and segs[0]["text"]
    capsys.readouterr()
    assert main(common + ["--voice", "bob"]) == 2
    assert "bob" in capsys.readouterr().err
