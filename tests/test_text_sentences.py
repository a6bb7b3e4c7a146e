"""Sentence splitting and the clause rule for Latin/symbol leftovers."""
import pytest

from asr_pinyin.text import is_clean, split_sentences, speakable_clauses


@pytest.mark.parametrize("text, want", [
    ("你好。我是谁？", ["你好。", "我是谁？"]),
    ("太好了！！！真的吗？！", ["太好了！！！", "真的吗？！"]),
    ("先这样；再那样", ["先这样；", "再那样"]),
    ("他说：“不知道！”然后走了。", ["他说：“不知道！”", "然后走了。"]),
    ("等等……好吧", ["等等……", "好吧"]),
    ("第一行\n第二行\n\n", ["第一行", "第二行"]),
    ("Hello! How are you?", ["Hello!", "How are you?"]),
    ("没有标点的一句话", ["没有标点的一句话"]),
    ("", []),
    ("  \n ", []),
])
def test_split_sentences(text, want):
    assert split_sentences(text) == want


@pytest.mark.parametrize("sentence, want", [
    ("全是汉字，没有问题。", ["全是汉字，没有问题。"]),
    ("如果既没有指定-cftuvSUX中任何一个，也没有指定--sort，则按字母排序项目。", ["则按字母排序项目。"]),
    ("先做这个，再用git提交，最后回家吧！", ["先做这个。", "最后回家吧！"]),
    ("第一步，第二步，用ls列出", ["第一步，第二步。"]),
    ("ls -l", []),
    ("", []),
])
def test_speakable_clauses(sentence, want):
    out = speakable_clauses(sentence)
    assert out == want
    assert all(is_clean(x) for x in out)
