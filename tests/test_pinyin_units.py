"""Pinyin units: inventory, every written form, run-together segmentation, errors."""
import random
import subprocess
import sys

import pytest

from asr_pinyin.pinyin import (TONAL, TONELESS, PinyinError, in_inventory, is_valid,
                               normalize_syllable, parse_pinyin, segmentations,
                               split_initial_final, to_tone_marks)


def test_inventory_sizes_and_form():
    assert 1250 <= len(TONAL) <= 1450
    assert 400 <= len(TONELESS) <= 420
    assert len(set(TONAL)) == len(TONAL)
    for s in TONAL:
        assert s[-1] in "12345" and s[:-1] in TONELESS, s
    for s in ("ni3", "hao3", "lv4", "nve4", "ma5", "de5", "zhuang4", "er2"):
        assert in_inventory(s), s
    assert not in_inventory("lu:4") and not in_inventory("ni")


def test_round_trip_whole_inventory_numbers_and_marks():
    for s in TONAL:
        assert parse_pinyin(s) == [s]
        assert normalize_syllable(s.upper()) == s
        marked = to_tone_marks(s)
        expected = s if s[-1] != "5" and any(v in s for v in "aoeiuv") else s[:-1]
        assert parse_pinyin(marked) == [expected], (s, marked)


def test_round_trip_sentences_with_separators():
    rng = random.Random(0)
    for _ in range(200):
        syls = rng.choices(TONAL, k=rng.randint(1, 12))
        assert parse_pinyin(" ".join(syls)) == syls
        assert parse_pinyin("".join(syls)) == syls  # tone digits delimit syllables
        assert parse_pinyin("'".join(syls), toneless=True) == [s[:-1] for s in syls]


@pytest.mark.parametrize("text,expected", [
    ("nǐ hǎo", ["ni3", "hao3"]),
    ("Nǐhǎo", ["ni3", "hao3"]),
    ("NI3 HAO3", ["ni3", "hao3"]),
    ("lü4", ["lv4"]), ("lu:4", ["lv4"]), ("lv4", ["lv4"]), ("LÜ4", ["lv4"]),
    ("nüè", ["nve4"]), ("lue4", ["lve4"]),
    ("jv2", ["ju2"]), ("xüe2", ["xue2"]),
    ("ma0", ["ma5"]), ("ma", ["ma"]),
    ("xi'an", ["xi", "an"]), ("xi’an", ["xi", "an"]), ("Xī'ān", ["xi1", "an1"]),
    ("xīān", ["xi1", "an1"]),  # two tone marks force a boundary
    ("xian", ["xian"]),
    ("fangan", ["fan", "gan"]), ("fang'an", ["fang", "an"]),
    ("ni3hao3ma5", ["ni3", "hao3", "ma5"]),
    ("n\u0301", ["n2"]),  # combining acute
    ("ng2", ["ng2"]),
])
def test_forms(text, expected):
    assert parse_pinyin(text) == expected


def test_run_together_segmentations_best_first():
    segs = segmentations("woxiangqubeijing", 5)
    assert segs[0] == ["wo", "xiang", "qu", "bei", "jing"]
    assert ["wo", "xi", "ang", "qu", "bei", "jing"] in segs
    assert segmentations("xian", 5) == [["xian"], ["xi", "an"]]
    assert segmentations("fangan", 5)[:2] == [["fan", "gan"], ["fang", "an"]]
    assert segmentations("xi'an", 5) == [["xi", "an"]]
    assert all(len(set(map(tuple, segs))) == len(segs) for segs in [segmentations("zhongguoren")])


def test_initial_final():
    assert split_initial_final("zhang4") == ("zh", "ang")
    assert split_initial_final("an") == ("", "an")
    assert split_initial_final("yu") == ("y", "u")


@pytest.mark.parametrize("text,pos,fragment", [
    ("", 0, "empty"),
    ("   ", 0, "empty"),
    ("你好", 0, "hanzi"),
    ("ni hao!", 6, "'!'"),
    ("abc", 1, "cannot read"),
    ("ni3 8", 4, "tone number"),
    ("ni7", 2, "not a tone"),
    ("ni33", 3, "tone number"),
    ("zhongguoxq", 8, "cannot read"),
    ("ni3 hao3 2024", 9, "tone number"),
])
def test_errors_name_text_and_position(text, pos, fragment):
    with pytest.raises(PinyinError) as info:
        parse_pinyin(text)
    assert info.value.position == pos
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_oversized_and_wrong_type():
    with pytest.raises(PinyinError):
        parse_pinyin("ni" * 6000)
    with pytest.raises(TypeError):
        parse_pinyin(None)  # type: ignore[arg-type]
    assert len(parse_pinyin("ni3 " * 2000)) == 2000


def test_is_valid():
    assert is_valid("ni3") and is_valid("ni") and not is_valid("ni6") and not is_valid("xx1")


def test_cli_reports_errors_without_traceback():
    ok = subprocess.run([sys.executable, "-m", "asr_pinyin.cli", "pinyin", "--all", "2", "xian"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.splitlines() == ["xian", "xi an"]
    bad = subprocess.run([sys.executable, "-m", "asr_pinyin.cli", "pinyin", "ni", "好"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "position 3" in bad.stderr
