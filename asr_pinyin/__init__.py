"""asr-pinyin: offline streaming Mandarin dictation (speech -> tonal pinyin -> hanzi)."""

__version__ = "0.1.0"
