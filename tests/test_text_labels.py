"""Hanzi -> tonal pinyin labels: alignment, polyphones, the tone convention, rejections."""
import pytest

from asr_pinyin.corpus.sources import iter_idioms, iter_inews, iter_pd1998, iter_reviews
from asr_pinyin.pinyin import in_inventory, is_valid
from asr_pinyin.text import (REASONS, LabelError, count_hanzi, hanzi_to_pinyin, label_sentence,
                             make_example, normalize_text, split_sentences)


@pytest.mark.parametrize("text, want", [
    ("我去银行取钱", "wo3 qu4 yin2 hang2 qu3 qian2"),
    ("他在路上行走", "ta1 zai4 lu4 shang4 xing2 zou3"),
    ("孩子长大了", "hai2 zi5 zhang3 da4 le5"),
    ("这条路的长度", "zhe4 tiao2 lu4 de5 chang2 du4"),
    ("女儿穿绿色的裙子", "nv3 er2 chuan1 lv4 se4 de5 qun2 zi5"),
    ("重要的事情重新做", "zhong4 yao4 de5 shi4 qing2 chong2 xin1 zuo4"),
])
def test_polyphones_and_neutral_tone(text, want):
    assert " ".join(hanzi_to_pinyin(text)) == want


def test_yi_bu_keep_citation_tones():
    # pypinyin's phrase dictionary alone gives yi2 ge4 / bu2 yao4; the convention undoes it
    assert hanzi_to_pinyin("一个不要一起看一看") == \
        "yi1 ge4 bu4 yao4 yi1 qi3 kan4 yi1 kan4".split()
    assert hanzi_to_pinyin("不是一样") == ["bu4", "shi4", "yi1", "yang4"]


@pytest.mark.parametrize("text, want", [
    ("他认真地看书", "ta1 ren4 zhen1 de5 kan4 shu1"),          # adverbial 地
    ("他们都长得很好看", "ta1 men5 dou1 zhang3 de5 hen3 hao3 kan4"),   # complement 得
    ("演员演得好", "yan3 yuan2 yan3 de5 hao3"),
    ("这块地很大", "zhe4 kuai4 di4 hen3 da4"),                 # the noun stays di4
    ("各地的情况", "ge4 di4 de5 qing2 kuang4"),
    ("他得到了奖励", "ta1 de2 dao4 le5 jiang3 li4"),            # the verb stays de2
    ("克罗地亚的首都", "ke4 luo2 di4 ya4 de5 shou3 du1"),
])
def test_structural_particles(text, want):
    assert " ".join(hanzi_to_pinyin(text)) == want


def test_punctuation_gets_no_syllable():
    assert hanzi_to_pinyin("你好，世界！") == ["ni3", "hao3", "shi4", "jie4"]
    assert hanzi_to_pinyin("，。") == []
    assert hanzi_to_pinyin("") == []


def test_label_error_is_named():
    with pytest.raises(TypeError):
        hanzi_to_pinyin(None)
    assert issubclass(LabelError, ValueError)


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("   ", "empty"),
    ("，。！", "empty"),
    ("hello world", "latin"),
    ("用iPhone拍照片", "latin"),
    ("第3版abc很好", "latin"),
    ("你好", "too_short"),
    ("一二三四" * 16, "too_long"),
    ("他们在#号后面写", "symbol"),
    ("𠀀𠀀𠀀𠀀好的", "rare_hanzi"),
    (None, "empty"),
])
def test_rejections_give_a_reason(text, reason):
    ex, why = label_sentence(text)
    assert ex is None and why == reason and why in REASONS
    assert make_example(text) is None


def test_make_example_normalizes_and_ends_with_a_terminal():
    ex = make_example("1998年的冬天")
    assert ex == {"text": "一九九八年的冬天。", "pinyin": "yi1 jiu3 jiu3 ba1 nian2 de5 dong1 tian1"}
    assert make_example("你们好吗？")["text"] == "你们好吗？"
    assert make_example("长大以后，")["text"] == "长大以后。"


def _real_sentences(it, n):
    out = []
    for _, raw in it:
        out += split_sentences(normalize_text(raw))
        if len(out) >= n:
            break
    return out[:n]


def test_alignment_on_real_sentences_from_every_source():
    sents = []
    for it in (iter_inews(), iter_pd1998(), iter_reviews(), iter_idioms()):
        sents += _real_sentences(it, 150)
    labelled = 0
    for s in sents:
        ex = make_example(s)
        if ex is None:
            continue
        syls = ex["pinyin"].split()
        assert len(syls) == count_hanzi(ex["text"]), ex
        assert all(is_valid(x) and in_inventory(x) for x in syls), ex
        labelled += 1
    assert labelled > 400, labelled
