"""Training text: normalization, sentence splitting and hanzi -> tonal pinyin labels."""
from .labels import (CITATION, MAX_HANZI, MIN_HANZI, REASONS, LabelError, hanzi_to_pinyin,
                     in_gb2312, label_sentence, make_example)
from .normalize import PUNCT, TERMINALS, normalize_text, to_simplified
from .sentences import count_hanzi, is_clean, is_hanzi, speakable_clauses, split_sentences

__all__ = ["CITATION", "MAX_HANZI", "MIN_HANZI", "PUNCT", "REASONS", "TERMINALS", "LabelError",
           "count_hanzi", "hanzi_to_pinyin", "in_gb2312", "is_clean", "is_hanzi", "label_sentence",
           "make_example", "normalize_text", "speakable_clauses", "split_sentences",
           "to_simplified"]
