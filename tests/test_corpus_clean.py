"""Each source-specific cleaning rule, on snippets taken from the real sources."""
import pytest

from asr_pinyin.corpus.build import chunk_long, process_doc
from asr_pinyin.corpus.sources import (MAN_ROOT, clean_idiom_example, clean_inews, clean_pd,
                                       clean_review, clean_title, iter_it, roff_to_text)
from asr_pinyin.text import normalize_text, split_sentences


def sentences(raw):
    return [s for s in split_sentences(normalize_text(raw))]


@pytest.mark.parametrize("raw, gone, kept", [
    ("的天然成分大多是大分子结构，不易被吸收。返回搜狐，查看更多 责任编辑：\n",
     "返回搜狐", "不易被吸收"),
    ("房东也将锁芯进行了更换。\\n\u3000\u3000来源：看看新闻\\n责任编辑：张义凌 \\n关键字 : \\n锁芯出租屋",
     "看看新闻", "锁芯进行了更换"),
    ("通行证十一人次。编辑：李思科\n", "李思科", "通行证"),
    ("原标题：出租屋半年被偷八次\\n近日南宁市公安局侦破了一起案件。", "原标题", "出租屋半年被偷八次"),
    ("他们的生活。特别声明：以上文章内容仅代表作者本人观点，不代表新浪看点观点或立场。如有关于作品内容、"
     "版权或其它问题请于作品发表后的三十日内与新浪看点联系。\n", "新浪看点", "他们的生活"),
    ("今天记得点赞哦！本文为一点号作者原创，未经授权不得转载\n", "转载", "今天记得点赞哦"),
    ("确保安全通行。赞是一种鼓励|分享是最好支持点击右下角?写留言?发表你的心声\n", "点击右下角", "确保安全通行"),
    ("网易仅提供信息发布平台。", "网易", ""),
    ("新浪公司 版权所有 \\n新浪扶翼", "版权所有", ""),
    ("更多猛料！欢迎扫描左方二维码关注新浪新闻官方微信\n事故已经处理。", "二维码", "事故已经处理"),
    ('<p style="margin-bottom: 10px;">正文内容在这里。</p>', "margin", "正文内容在这里"),
])
def test_inews_boilerplate(raw, gone, kept):
    text = clean_inews(raw)
    assert gone not in text
    assert kept in text
    assert "\\n" not in text


def test_inews_keeps_ordinary_uses_of_the_words():
    raw = "钱江晚报记者从现场救援人员处了解到，肇事车运载了硫酸。当晚，二更食堂发致歉声明，向读者道歉。"
    assert clean_inews(raw) == raw


@pytest.mark.parametrize("raw, want", [
    ("不好意思，你不配做深圳人!_搜狐汽车_搜狐网", "不好意思，你不配做深圳人!"),
    ("湖南水电职院召开动员会 - 红网", "湖南水电职院召开动员会"),
    ("北京-上海高铁开通", "北京-上海高铁开通"),
])
def test_title_suffix(raw, want):
    assert clean_title(raw) == want


def test_people_daily_tags_are_stripped():
    line = ("１２月/t  ３１日/t  ，/w  中共中央/nt  总书记/n  、/w  [中央/n  人民/n  广播/vn  电台/n]nt  "
            "发表/v  １９９８年/t  新年/t  讲话/n  。/w")
    assert clean_pd(line) == "１２月３１日，中共中央总书记、中央人民广播电台发表１９９８年新年讲话。"
    assert sentences(clean_pd(line)) == ["十二月三十一日，中共中央总书记、中央人民广播电台发表一九九八年新年讲话。"]


def test_review_spaces_become_pauses():
    raw = "当时是因为要写读书报告 所以上网到处抄 就发现这本书 very good"
    assert clean_review(raw) == "当时是因为要写读书报告，所以上网到处抄，就发现这本书 very good"


def test_idiom_examples():
    assert clean_idiom_example("阿鼻地狱", "但也有少数意志薄弱的……逐步上当，终至堕入～。★《上饶集中营·炼狱杂记》") \
        == "但也有少数意志薄弱的……逐步上当，终至堕入阿鼻地狱。"
    assert clean_idiom_example("阿党相为", "无") == ""


ROFF = r""".\" comment line
.TH LS 1 2022年9月 "GNU coreutils 9.1" 用户命令
.SH 名称
ls \- 列出目录内容
.SH 描述
.PP
列出指定“文件”（默认为当前目录）的信息。如果既没有指定 \fB\-cftuvSUX\fP 中任何一个，
也没有指定 \fB\-\-sort\fP，则按字母排序项目。
.TP
\fB\-a\fP, \fB\-\-all\fP
不要忽略以点号（“.”）起始的条目
.SH "[中文版维护人]"
.B 某某 <someone@example.com>
.SH "跋"
.br
本页面中文版由中文 man 手册页计划提供。
"""


def test_roff_stripping():
    text = roff_to_text(ROFF)
    assert "如果既没有指定 -cftuvSUX 中任何一个，也没有指定 --sort，则按字母排序项目。" in text
    assert "不要忽略以点号（“.”）起始的条目" in text
    assert "本页面中文版" not in text and "某某" not in text and "\\f" not in text
    good, reasons, _ = process_doc(text)
    texts = [t for t, _ in good]
    assert "则按字母排序项目。" in texts and "不要忽略以点号起始的条目。" in texts
    assert reasons["latin_cut"] >= 1


@pytest.mark.skipif(not MAN_ROOT.is_dir(), reason="manpages-zh not installed")
def test_real_man_pages_render():
    key, text = next(iter_it())
    assert key.endswith(".gz") and text and "\\f" not in text and ".SH" not in text


def test_fragments_starting_with_a_particle_are_dropped():
    good, reasons, _ = process_doc("的保障政策，构建动态管理机制。的确，这是一个好办法。")
    assert [t for t, _ in good] == ["的确，这是一个好办法。"]
    assert reasons["fragment"] == 1


def test_long_sentences_are_cut_at_clauses():
    s = "，".join(["这是一个很长的句子中的一个分句"] * 8) + "。"
    chunks = chunk_long(s, 60)
    assert len(chunks) > 1 and "".join(chunks) == s
    assert all(sum(1 for c in x if "\u4e00" <= c <= "\u9fff") <= 60 for x in chunks)


MDOC = """.Sh 描述
.Bl -tag -width Fl
.It Ic chmod Ar mode file-name
将远端系统上文件
.Ar file-name
的权限改为
.Ar mode .
.It Ic close
终止与当前远端服务器的连接，回到命令解释模式。
.El
"""


def test_mdoc_inline_macros_stay_inside_their_sentence():
    text = roff_to_text(MDOC)
    assert "将远端系统上文件file-name的权限改为mode ." in text
    good, _, _ = process_doc(text)
    assert [t for t, _ in good] == ["终止与当前远端服务器的连接，回到命令解释模式。"]
