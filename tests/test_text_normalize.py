"""Text normalization: spoken forms of numbers, scripts, what is stripped, bad input."""
import pytest

from asr_pinyin.text import normalize_text, split_sentences, speakable_clauses, to_simplified


@pytest.mark.parametrize("raw, want", [
    # years digit by digit, dates, ranges
    ("1998年", "一九九八年"),
    ("98年", "九八年"),
    ("二〇一八年", "二零一八年"),
    ("2018-07-18发布", "二零一八年七月十八日发布"),
    ("2019/2/8", "二零一九年二月八日"),
    ("03月26号", "三月二十六号"),
    ("7月6日-19日", "七月六日至十九日"),
    ("下降6~12度", "下降六至十二度"),
    # times
    ("18:00-21:00", "十八点至二十一点"),
    ("10:20开始", "十点二十分开始"),
    ("2:30", "两点三十分"),
    ("17:05分", "十七点零五分"),
    # percentages, decimals, fractions, thousands
    ("3.5%", "百分之三点五"),
    ("涨幅55.23%。", "涨幅百分之五十五点二三。"),
    ("5‰", "千分之五"),
    ("23.8元", "二十三点八元"),
    ("1/2的人", "二分之一的人"),
    ("1,000,000人", "一百万人"),
    ("共100000元", "共十万元"),
    # phone-like and zero-led strings are read digit by digit, cardinals are not
    ("专线025-88888888", "专线零二五八八八八八八八八"),
    ("拨打13912345678", "拨打一三九一二三四五六七八"),
    ("代号007", "代号零零七"),
    ("10086", "一万零八十六"),
    # 2 before a classifier is 两
    ("2个人", "两个人"),
    ("第2名", "第二名"),
    ("分成 2 个窗口", "分成两个窗口"),
    ("第22名", "第二十二名"),
    ("2000多人", "两千多人"),
    ("共2万", "共两万"),
    ("1998-2000年", "一九九八至二零零零年"),
    ("20世纪90年代", "二十世纪九十年代"),
    ("90后", "九零后"),
    ("1:2的比分", "一比二的比分"),
    ("¥100", "一百元"),
    ("$5", "五美元"),
    ("100元/斤", "一百元每斤"),
    ("和/或", "和/或"),
    ("时速120km/h", "时速一百二十公里每小时"),
    # units
    ("5km", "五公里"),
    ("零下5℃", "零下五摄氏度"),
    ("-5度", "负五度"),
    ("气温30°", "气温三十度"),
    # full width -> half width -> Chinese punctuation
    ("１２月３１日，中共中央", "十二月三十一日，中共中央"),
    ("你好!真的?好;走:", "你好！真的？好；走："),
    ("ＡＢＣ", "ABC"),
    # traditional -> simplified
    ("開發者們說這個軟體很好用", "开发者们说这个软体很好用"),
    ("這是臺灣的書", "这是台湾的书"),
    # stripped: URLs, e-mails, emoji, bracketed asides, quotes, book-title marks
    ("访问 www.smallstonesoft.com 交流", "访问交流"),
    ("见https://a.b/c?d=1。", "见。"),
    ("邮件 a.b@c.com 联系", "邮件联系"),
    ("好的😀👍！！！", "好的！"),
    ("【原标题】哈哈（新华社记者摄）好的", "哈哈好的"),
    ("他说：“你好……”然后走了。", "他说：你好。然后走了。"),
    ("读《红楼梦》", "读红楼梦"),
    ("约翰·史密斯", "约翰史密斯"),
    # spaces between hanzi vanish; a double space is a break
    ("操 作 空 间", "操作空间"),
    ("标题  正文开始", "标题\n正文开始"),
])
def test_normalize_cases(raw, want):
    assert normalize_text(raw) == want


def test_latin_is_kept_by_normalize_and_cut_by_clauses():
    # documented: normalize never deletes words; the corpus keeps only Latin-free clauses
    s = normalize_text("用户 iPhone 很好, 真的!")
    assert s == "用户iPhone很好，真的！"
    assert speakable_clauses(s) == ["真的！"]
    assert speakable_clauses("与 -l 同时使用时，列出每个文件的作者") == ["列出每个文件的作者。"]
    assert speakable_clauses("abc") == []


@pytest.mark.parametrize("raw", ["", "   ", "\n\n", "hello world", "!!!", "😀"])
def test_bad_input_gives_a_string(raw):
    out = normalize_text(raw)
    assert isinstance(out, str)
    assert all(not ("\u4e00" <= c <= "\u9fff") for c in out)


def test_non_string_is_a_clear_error():
    with pytest.raises(TypeError, match="expects str"):
        normalize_text(None)
    with pytest.raises(TypeError, match="expects str"):
        split_sentences(123)


def test_idempotent_on_real_text():
    raw = ("中央路红星开启“爱木”狂购  三伏天已到，比天气更热的是红星美凯龙的第三届鲁班文化节。"
           "7月18日18:00-21:00，中央路红星爱木联盟的“仲夏夜party”将闪亮登场。"
           "成交价基础上最高直降5%。此外，会员购物积分将前所未有地直接翻10倍！")
    once = normalize_text(raw)
    assert normalize_text(once) == once
    assert "七月十八日十八点至二十一点" in once and "百分之五" in once and "十倍" in once


def test_to_simplified():
    assert to_simplified("漢字與詞語") == "汉字与词语"
