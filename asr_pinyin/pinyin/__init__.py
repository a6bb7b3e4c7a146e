"""Pinyin units: the syllable inventory and a reader for every way pinyin is written."""
from .inventory import (INITIALS, TONAL, TONAL_SET, TONELESS, TONELESS_SET, in_inventory,
                        is_valid, split_initial_final, split_tone, strip_tone, toneless_log_prob)
from .parse import PinyinError, normalize_syllable, parse_pinyin, segmentations, to_tone_marks

__all__ = ["INITIALS", "TONAL", "TONAL_SET", "TONELESS", "TONELESS_SET", "PinyinError",
           "in_inventory", "is_valid", "normalize_syllable", "parse_pinyin", "segmentations",
           "split_initial_final", "split_tone", "strip_tone", "to_tone_marks", "toneless_log_prob"]
