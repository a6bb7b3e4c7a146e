"""Text normalization for training text: make written Chinese read the way it is spoken.

`normalize_text(s)` turns raw web/news/man-page text into hanzi plus the Chinese punctuation
the text sets use (，。？！、：；), with newlines kept as hard breaks. In order:

1. full-width -> half-width (NFKC), so one set of rules sees `１９９８` and `1998` alike;
   runs of 2+ spaces or an ideographic space become a newline (web text glues a title to
   its body with them);
2. traditional -> simplified (OpenCC `t2s`);
3. what is never spoken is removed: URLs, e-mail addresses, emoji and other symbols,
   bracketed asides `（…）【…】[…]〔…〕` (bylines, "附图片1张", "汉滨网讯"), quotes and book-title
   marks (their content is kept);
4. numbers are read out as hanzi (`cn2an` for the cardinal/decimal itself):
   years digit by digit (`1998年` -> 一九九八年), dates (`2018-07-18` -> 二零一八年七月十八日),
   times (`18:30` -> 十八点三十分), percentages (`3.5%` -> 百分之三点五), fractions
   (`1/2` -> 二分之一), ranges (`6-19日` -> 六至十九日), phone-like and zero-led digit strings
   digit by digit (`025-88888888`, `13912345678`, `007`), `2` before a classifier as 两;
5. ASCII punctuation -> Chinese punctuation; ellipses and dashes become 。 and ，.

Latin letters are NOT removed here (that would silently delete words): `make_example` rejects a
sentence that still contains them and the corpus builder keeps only the Latin-free clauses (see
`sentences.speakable_clauses`). Empty or non-Chinese input gives a (possibly empty) string, never
an error; a non-string raises TypeError.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import cn2an

PUNCT = "，。？！、：；"          # the only punctuation in the text sets
TERMINALS = "。？！；"

_ASCII_PUNCT = str.maketrans({",": "，", "!": "！", "?": "？", ";": "；", ":": "："})
_DIGITS = "零一二三四五六七八九"
_CLASSIFIERS = "个只件次条位名天张本台辆家种岁点部所项座层节周份间回场千万亿"

_URL = re.compile(r"(?:https?://|ftp://|www\.)[^\s\u3000-\u303f\u4e00-\u9fff，。！？；]*", re.I)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_BRACKETS = re.compile(r"【[^【】]*】|\[[^\[\]]*\]|〔[^〔〕]*〕|\([^()]*\)|（[^（）]*）")
_QUOTES = re.compile(r"[\"'“”‘’「」『』《》〈〉<>〖〗]")
_MULTISPACE = re.compile(r"[ \t]{2,}|\u3000+")
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d])")

_DATE_YMD = re.compile(r"(?<!\d)(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?!\d)\s*[日号]?")
_YEAR = re.compile(r"(?<![\d.])(\d{2}|\d{4})(?=\s*年(?!代))")
_YEAR_RANGE = re.compile(r"(?<![\d.])(\d{4})\s*[-~～—–至到]\s*(\d{4})(?=\s*年(?!代))")
_GENERATION = re.compile(r"(?<![\d.])(\d0)(?=后(?![来面边期续]))")       # 90后 九零后
_RATIO = re.compile(r"(?<=\d)\s*:\s*(?=\d)")                             # 1:2 一比二
_PER = re.compile(r"(?<=[元米克斤里吨次人件台个天时秒])\s*/\s*(?=[\u4e00-\u9fff])")  # 元/斤 元每斤
_CURRENCY = re.compile(r"([¥$€£])\s*(\d+(?:\.\d+)?)")
_CURRENCY_NAMES = {"¥": "元", "$": "美元", "€": "欧元", "£": "英镑"}
_ZERO_LED_DATE = re.compile(r"(?<!\d)0(\d)(?=\s*[月日号时点])")
_TIME = re.compile(r"(?<!\d)([01]?\d|2[0-4])\s*:\s*([0-5]\d)(?:\s*:\s*([0-5]\d))?(?!\d)(?:分(?!钟))?")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*([%‰])")
_FRACTION = re.compile(r"(?<![\d/.])(\d+)\s*/\s*(\d+)(?![\d/.])")
_PHONE = re.compile(r"(?<![\d.])(?:\+?\d{2,4}[- ])?\d{3,4}-\d{6,8}(?![\d.])|(?<![\d.])1[3-9]\d{9}(?![\d.])")
_RANGE = re.compile(r"(?<=[\d年月日号点分%])\s*[-~～—–]+\s*(?=\d)")
_RANGE_HANZI = re.compile(r"(?<=[零一二三四五六七八九十百千万亿两])\s*[-~～—–]\s*(?=\d)")  # 百分之五-10%
_NEGATIVE = re.compile(r"(?<![\dA-Za-z\-])-(?=\d)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_UNITS = [(re.compile(r"(?<=\d)\s*" + k + r"(?![A-Za-z])"), v) for k, v in
          [("km/h", "公里每小时"), ("km", "公里"), ("kg", "公斤"), ("cm", "厘米"), ("mm", "毫米"), ("m2", "平方米")]]
_DEGREES = re.compile(r"(?<=\d)\s*°\s*(C(?![A-Za-z]))?")


def _digits(s: str) -> str:
    return "".join(_DIGITS[int(c)] if c.isdigit() else "" for c in s)


def _cardinal(s: str) -> str:
    """Read a decimal or integer string; long or zero-led integers digit by digit."""
    if "." in s:
        whole, frac = s.split(".", 1)
        return _cardinal(whole) + "点" + _digits(frac)
    if len(s) > 1 and s.startswith("0") or len(s) > 12:
        return _digits(s)
    out = cn2an.an2cn(s)
    return "两" + out[1:] if out[:2] in ("二千", "二万", "二亿") else out


def _time(m: re.Match) -> str:
    h, mi, se = m.group(1), m.group(2), m.group(3)
    out = ("两" if int(h) == 2 else _cardinal(str(int(h)))) + "点"
    if int(mi):
        out += ("零" if int(mi) < 10 else "") + _cardinal(str(int(mi))) + "分"
    if se and int(se):
        out += _cardinal(str(int(se))) + "秒"
    return out


def _number(m: re.Match) -> str:
    s = m.group(0)
    nxt = m.string[m.end():m.end() + 2].lstrip()[:1]
    prev = m.string[m.start() - 1:m.start()]
    if s == "2" and nxt and nxt in _CLASSIFIERS and prev != "第":
        return "两"
    return _cardinal(s)


def _numbers(s: str) -> str:
    s = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), s)
    s = _PHONE.sub(lambda m: _digits(m.group(0)), s)
    s = _DATE_YMD.sub(lambda m: f"{_digits(m.group(1))}年{_cardinal(str(int(m.group(2))))}月"
                               f"{_cardinal(str(int(m.group(3))))}日", s)
    s = _CURRENCY.sub(lambda m: m.group(2) + _CURRENCY_NAMES[m.group(1)], s)
    s = _YEAR_RANGE.sub(lambda m: f"{_digits(m.group(1))}至{_digits(m.group(2))}", s)
    s = _RANGE.sub("至", s)
    s = _YEAR.sub(lambda m: _digits(m.group(1)), s)
    s = _GENERATION.sub(lambda m: _digits(m.group(1)), s)
    s = _ZERO_LED_DATE.sub(r"\1", s)
    s = _TIME.sub(_time, s)
    s = _RATIO.sub("比", s)
    s = _PERCENT.sub(lambda m: ("百分之" if m.group(2) == "%" else "千分之") + _cardinal(m.group(1)), s)
    s = _FRACTION.sub(lambda m: _cardinal(m.group(2)) + "分之" + _cardinal(m.group(1)), s)
    for pat, word in _UNITS:
        s = pat.sub(word, s)
    s = _PER.sub("每", s)
    s = _RANGE_HANZI.sub("至", s)
    s = _NEGATIVE.sub("负", s)
    return _NUMBER.sub(_number, s)



def _drop_symbols(s: str) -> str:
    out = []
    for ch in s:
        cat = unicodedata.category(ch)
        if cat in ("So", "Sk", "Cs", "Co", "Cf") or (cat == "Cc" and ch != "\n"):
            out.append(" " if cat == "Cc" else "")
        else:
            out.append(ch)
    return "".join(out)


_CJK = r"\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff" + PUNCT + "…"
_SPACE_CJK = re.compile(rf"(?<=[{_CJK}])[ \t]+|[ \t]+(?=[{_CJK}])")
_ELLIPSIS = re.compile(r"…+|\.{3,}|。{2,}")
_DASHES = re.compile(r"[—―–]+|-{2,}(?![A-Za-z])")
_DOT_END = re.compile(r"(?<=[\u4e00-\u9fff])\.(?![A-Za-z0-9_/.\-])")
_REPEAT = re.compile(r"([，。？！、：；])[，。？！、：；]*")
_TILDE = re.compile(r"[~～]")


@lru_cache(maxsize=1)
def _t2s():
    from opencc import OpenCC
    return OpenCC("t2s")


def to_simplified(s: str) -> str:
    return _t2s().convert(s)


def normalize_text(s: str) -> str:
    """Raw text -> spoken-form hanzi with Chinese punctuation (see the module docstring)."""
    if not isinstance(s, str):
        raise TypeError(f"normalize_text expects str, got {type(s).__name__}")
    if not s.strip():
        return ""
    s = _MULTISPACE.sub("\n", s)
    s = unicodedata.normalize("NFKC", s)
    s = s.replace("\r\n", "\n").replace("\r", "\n")
    s = to_simplified(s)
    s = _URL.sub(" ", s)
    s = _EMAIL.sub(" ", s)
    for _ in range(2):                         # nested brackets: inner first
        s = _BRACKETS.sub("", s)
    s = _QUOTES.sub(" ", s)                   # a space, so `“.”` is not read as a full stop
    s = _DEGREES.sub(lambda m: "摄氏度" if m.group(1) else "度", s)   # before symbols go
    s = _drop_symbols(s)
    s = _numbers(s)
    s = _ELLIPSIS.sub("。", s)
    s = _DASHES.sub("，", s)
    s = _DOT_END.sub("。", s)
    s = _TILDE.sub("", s)
    s = s.replace("·", "").replace("•", "").replace("・", "")
    s = s.replace("〇", "零")              # not in GB2312; read ling2 either way
    s = s.translate(_ASCII_PUNCT)
    s = _SPACE_CJK.sub("", s)
    s = _REPEAT.sub(_keep_strongest, s)
    s = re.sub(r"[ \t]+", " ", s)
    s = re.sub(r" *\n[\s]*", "\n", s)
    return s.strip()


_STRENGTH = {c: i for i, c in enumerate("、，：；。！？")}


def _keep_strongest(m: re.Match) -> str:
    """A run like `！！！` or `，。` collapses to its strongest mark."""
    return max(m.group(0), key=lambda c: _STRENGTH[c])
