"""Inverse text normalisation and input normalisation of the language stage (no model needed)."""
import pytest

from asr_pinyin.lm.itn import itn
from asr_pinyin.lm.slots import ACOUSTIC_SHARPEN, LMInputError, acoustic_slot, to_slots
from asr_pinyin.pinyin import PinyinError


@pytest.mark.parametrize("spoken, written", [
    ("二零二四年我们一心一意", "2024年我们一心一意"),
    ("百分之五的人", "5%的人"),
    ("增长百分之三点五", "增长3.5%"),
    ("三百五十个", "350个"),
    ("两千零五年", "2005年"),
    ("二十一世纪", "21世纪"),
    ("五点五公里", "5.5公里"),
    ("三月五日", "3月5日"),
    ("电话是一三八一二三四五六七八", "电话是13812345678"),
    ("一万两千元", "12000元"),
    ("第十五届", "第15届"),
])
def test_numbers_become_digits(spoken, written):
    assert itn(spoken) == written


@pytest.mark.parametrize("text", ["十全十美", "一五一十地说", "千方百计", "三心二意", "五十步笑百步",
                                  "一个人", "第一次", "两个人", "我叫张三", "十个人", "没有数字"])
def test_idioms_and_small_numbers_stay(text):
    assert itn(text) == text


def test_slot_forms():
    assert to_slots("ni3hao3") == [[("ni3", 1.0)], [("hao3", 1.0)]]
    assert to_slots(["nǐ", "hao"]) == [[("ni3", 1.0)], [("hao", 1.0)]]
    assert to_slots("ni3 hao3", toneless=True) == [[("ni", 1.0)], [("hao", 1.0)]]
    slot = to_slots([[("shi4", -0.1), ("si4", -2.0), ("shi2", -3.0)]])[0]
    assert [s for s, _ in slot] == ["shi4", "si4", "shi2"] and abs(sum(p for _, p in slot) - 1) < 1e-9
    # toneless view merges the tones of one base
    merged = to_slots([[("shi4", 0.5), ("shi2", 0.3), ("si4", 0.2)]], toneless=True)[0]
    assert merged[0][0] == "shi" and abs(merged[0][1] - 0.8) < 1e-9


def test_acoustic_slot_sharpens_and_keeps_order():
    alts = [("shi2", 0.1), ("shi4", 0.6), ("si4", 0.3), ("zhi4", 0.0)]
    slot = acoustic_slot(alts)
    assert [s for s, _ in slot] == ["shi4", "si4", "shi2", "zhi4"]
    assert abs(sum(p for _, p in slot) - 1) < 1e-9
    assert slot[0][1] > 0.6 and slot[2][1] < 0.1          # sharper than the acoustic scores
    assert abs(slot[0][1] / slot[1][1] - 2.0 ** ACOUSTIC_SHARPEN) < 1e-9
    assert abs(acoustic_slot(alts, sharpen=1.0)[0][1] - 0.6) < 1e-9
    assert len(acoustic_slot([(f"ma{t}", 0.2) for t in range(1, 6)] + [("ba1", 0.01)])) == 5
    with pytest.raises(LMInputError):
        acoustic_slot([("ni3", 0.0)])
    assert acoustic_slot([("ni3", 0.0)], decoded="ni3") == [("ni3", 1.0)]
    assert acoustic_slot([], decoded="hao3") == [("hao3", 1.0)]
    assert to_slots([acoustic_slot(alts)])[0] == slot        # what the LM takes, unchanged


@pytest.mark.parametrize("bad, err", [("", PinyinError), ("woxq", PinyinError), ("你好", PinyinError),
                                      ([], LMInputError), ([[]], LMInputError), ([[("ni3", float("nan"))]], LMInputError),
                                      ([[("ni3", 0.0), ("hao3", 0.5)]] * 2 + [["x"]], LMInputError),
                                      (["ni3"] * 10_001, LMInputError), (None, LMInputError)])
def test_bad_input(bad, err):
    with pytest.raises(err):
        to_slots(bad)
