"""Acoustic stage: 16 kHz audio -> tonal pinyin syllables (streaming Conformer-CTC).

    from asr_pinyin.acoustic import load_model, AcousticStream
    model = load_model()                      # models/am/model.pt by default
    stream = AcousticStream(model, chunk_ms=640)
    for piece in pieces: updates = stream.accept_waveform(piece)   # Syllable objects
    final = stream.flush()

Names are imported lazily so that `asr-pinyin --help` does not load torch.
"""
_EXPORTS = {
    "AcousticModel": "model", "ModelLoadError": "model", "load_model": "model", "save_model": "model",
    "AcousticStream": "stream", "Syllable": "decode", "UNITS": "decode", "greedy": "decode",
    "beam_decode": "decode", "prefix_beam_search": "decode",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(name)
