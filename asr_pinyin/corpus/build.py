"""Build the text corpus: sources -> clean -> normalize -> sentences -> labels -> splits.

Output (`out` = data/text by default):
  train.jsonl dev.jsonl test.jsonl   general corpus {"id","text","pinyin"}, id "<source>-<n>"
  it/train.jsonl it/test.jsonl       IT domain (man pages), split by page
  stats.json                         the figures printed at the end

Rules, in order: source cleaning (sources.py) -> `normalize_text` -> `split_sentences` ->
`speakable_clauses` (clauses with Latin letters or symbols are dropped, the clean rest kept) ->
a sentence over MAX_HANZI is cut at clause marks into chunks -> `label_sentence` (4-60 hanzi,
GB2312 hanzi, every syllable in the inventory) -> a sentence whose first syllable is neutral tone
(starts with 的/了/着…) is a cut-off fragment and dropped -> exact de-duplication (first occurrence wins,
in source order) -> split by a hash of the text: dev and test get 1.5 % each. Every step is
deterministic, so the same sources always give the same files.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..pinyin import TONAL, TONELESS, in_inventory
from ..text import (MAX_HANZI, count_hanzi, hanzi_to_pinyin, in_gb2312, is_hanzi,
                    label_sentence, normalize_text, speakable_clauses, split_sentences)
from .sources import GENERAL, iter_source, page_of

DEV_PERMILLE = 15          # 1.5 % dev, 1.5 % test
TEST_PERMILLE = 15
IT_TEST_PERCENT = 15       # of man pages
TINY_DOCS = {"inews": 20, "pd1998": 150, "reviews": 150, "idioms": 200, "it": 6}
_CUT_AT = "，；：、"


def bucket(text: str, mod: int) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big") % mod


def general_split(text: str) -> str:
    b = bucket(text, 1000)
    return "dev" if b < DEV_PERMILLE else "test" if b < DEV_PERMILLE + TEST_PERMILLE else "train"


def it_split(key: str) -> str:
    return "test" if bucket(page_of(key), 100) < IT_TEST_PERCENT else "train"


def chunk_long(sentence: str, max_hanzi: int = MAX_HANZI) -> list[str]:
    """Cut a sentence over max_hanzi at clause marks into chunks of at most max_hanzi."""
    if count_hanzi(sentence) <= max_hanzi:
        return [sentence]
    clauses, cur = [], ""
    for ch in sentence:
        cur += ch
        if ch in _CUT_AT:
            clauses.append(cur)
            cur = ""
    if cur:
        clauses.append(cur)
    out, cur = [], ""
    for c in clauses:
        if cur and count_hanzi(cur) + count_hanzi(c) > max_hanzi:
            out.append(cur)
            cur = ""
        cur += c
    if cur:
        out.append(cur)
    return out           # a single clause over the limit stays long and is dropped as too_long


def process_doc(raw: str) -> tuple[list[tuple[str, str]], Counter, Counter]:
    """One document -> labelled sentences, drop reasons, details (OOV syllables, rare hanzi)."""
    good, reasons, detail = [], Counter(), Counter()
    for sent in split_sentences(normalize_text(raw)):
        pieces = speakable_clauses(sent)
        if len(pieces) != 1 or pieces[0] != sent:
            kind = "latin" if any(c.isascii() and c.isalpha() for c in sent) else "symbol"
            reasons[f"{kind}_cut" if pieces else kind] += 1
        for piece in pieces:
            for chunk in chunk_long(piece):
                ex, why = label_sentence(chunk, normalize=False)
                if ex and ex["pinyin"].split(" ", 1)[0].endswith("5"):
                    ex, why = None, "fragment"     # starts with a particle (的/了…): a cut-off piece
                if ex:
                    good.append((ex["text"], ex["pinyin"]))
                    continue
                reasons[why] += 1
                if why == "oov_syllable":
                    detail.update(f"syl:{s}" for s in hanzi_to_pinyin(chunk) if not in_inventory(s))
                elif why == "rare_hanzi":
                    detail.update(f"char:{c}" for c in chunk if is_hanzi(c) and not in_gb2312(c))
    return good, reasons, detail


def _work(item):
    key, raw = item
    return key, *process_doc(raw)


@dataclass
class SourceResult:
    records: list = field(default_factory=list)      # (split, id, text, pinyin)
    docs: int = 0
    reasons: Counter = field(default_factory=Counter)
    detail: Counter = field(default_factory=Counter)
    duplicates: int = 0


def _docs(name: str, tiny: bool):
    for i, item in enumerate(iter_source(name)):
        if tiny and i >= TINY_DOCS[name]:
            return
        yield item


def run_source(name: str, seen: set, *, pool=None, tiny=False, max_sentences=None,
               progress=True) -> SourceResult:
    from tqdm import tqdm

    res, n = SourceResult(), 0
    items = _docs(name, tiny)
    results = pool.imap(_work, items, chunksize=32) if pool else map(_work, items)
    bar = tqdm(results, desc=name, unit="doc", disable=not progress, mininterval=2.0)
    for key, good, reasons, detail in bar:
        res.docs += 1
        res.reasons.update(reasons)
        res.detail.update(detail)
        for text, pinyin in good:
            if text in seen:
                res.duplicates += 1
                continue
            seen.add(text)
            split = it_split(key) if name == "it" else general_split(text)
            res.records.append((split, f"{name}-{n:06d}", text, pinyin))
            n += 1
        if max_sentences and n >= max_sentences:
            break
    bar.close()
    if name == "it":     # a sentence on both a train and a test page stays in train only
        train = {r[2] for r in res.records if r[0] == "train"}
        res.records = [r for r in res.records if r[0] == "train" or r[2] not in train]
    return res


def _write_jsonl(path: Path, records) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for _, rid, text, pinyin in records:
            f.write(json.dumps({"id": rid, "text": text, "pinyin": pinyin}, ensure_ascii=False))
            f.write("\n")


def compute_stats(results: dict[str, SourceResult], wall_s: float, args_line: str) -> dict:
    splits = {"train": [], "dev": [], "test": [], "it/train": [], "it/test": []}
    for name, res in results.items():
        for r in res.records:
            splits[f"it/{r[0]}" if name == "it" else r[0]].append(r)

    def size(records):
        return {"sentences": len(records), "hanzi": sum(count_hanzi(r[2]) for r in records)}

    per_split = {k: size(v) for k, v in splits.items()}
    per_source = {}
    for name, res in results.items():
        per_source[name] = {"docs": res.docs, **size(res.records), "duplicates": res.duplicates,
                            "by_split": {s: sum(1 for r in res.records if r[0] == s)
                                         for s in ("train", "dev", "test")}}
    syl, chars, test_chars = Counter(), Counter(), Counter()
    for k in ("train", "dev", "test"):
        for r in splits[k]:
            syl.update(r[3].split())
            (test_chars if k == "test" else chars).update(c for c in r[2] if is_hanzi(c))
    toneless = {s[:-1] for s in syl}
    unseen_test = sum(n for c, n in test_chars.items() if c not in chars)
    reasons, detail = Counter(), Counter()
    for res in results.values():
        reasons.update(res.reasons)
        detail.update(res.detail)
    return {
        "command": args_line, "wall_s": round(wall_s, 1),
        "splits": per_split, "sources": per_source,
        "syllables": {"tonal_seen": len(syl), "tonal_inventory": len(TONAL),
                      "toneless_seen": len(toneless), "toneless_inventory": len(TONELESS),
                      "never_seen": [s for s in TONAL if s not in syl][:400]},
        "characters": {"distinct_train_dev": len(chars), "distinct_all": len(chars | test_chars),
                       "test_tokens_unseen_in_train_dev":
                           round(unseen_test / max(1, sum(test_chars.values())), 5)},
        "dropped": dict(reasons.most_common()),
        "top_oov": dict(detail.most_common(30)),
    }


def format_stats(st: dict) -> str:
    lines = [f"corpus built in {st['wall_s']} s   ({st['command']})", "",
             f"{'split':<10}{'sentences':>11}{'hanzi':>12}"]
    for k, v in st["splits"].items():
        lines.append(f"{k:<10}{v['sentences']:>11,}{v['hanzi']:>12,}")
    lines += ["", f"{'source':<10}{'docs':>8}{'sentences':>11}{'hanzi':>12}{'dups':>9}"
                  f"{'train/dev/test':>22}"]
    for k, v in st["sources"].items():
        b = v["by_split"]
        lines.append(f"{k:<10}{v['docs']:>8,}{v['sentences']:>11,}{v['hanzi']:>12,}"
                     f"{v['duplicates']:>9,}{b['train']:>10,}/{b['dev']:,}/{b['test']:,}")
    sy, ch = st["syllables"], st["characters"]
    lines += ["", f"syllables (general): {sy['tonal_seen']}/{sy['tonal_inventory']} tonal, "
                  f"{sy['toneless_seen']}/{sy['toneless_inventory']} toneless seen",
              f"characters: {ch['distinct_all']:,} distinct; test hanzi unseen in train/dev: "
              f"{100 * ch['test_tokens_unseen_in_train_dev']:.3f} %",
              "dropped (sentences/clauses): " + ", ".join(f"{k} {v:,}" for k, v in
                                                          st["dropped"].items()),
              "top OOV: " + " ".join(f"{k}({v})" for k, v in list(st["top_oov"].items())[:15])]
    return "\n".join(lines)


def build(out: Path, *, sources=GENERAL + ("it",), tiny=False, max_sentences=None, workers=2,
          progress=True, args_line="") -> dict:
    """Build every split into `out`; files are written to a temp dir and moved in atomically."""
    t0 = time.time()
    out = Path(out)
    tmp = out / f".tmp-build-{os.getpid()}"
    _remove_stale(out)
    (tmp / "it").mkdir(parents=True, exist_ok=True)
    try:
        results = _run_all(sources, tiny=tiny, max_sentences=max_sentences, workers=workers,
                           progress=progress)
        general = [r for n, res in results.items() if n != "it" for r in res.records]
        it = results["it"].records if "it" in results else []
        for split in ("train", "dev", "test"):
            _write_jsonl(tmp / f"{split}.jsonl", [r for r in general if r[0] == split])
        for split in ("train", "test"):
            _write_jsonl(tmp / "it" / f"{split}.jsonl", [r for r in it if r[0] == split])
        stats = compute_stats(results, time.time() - t0, args_line)
        (tmp / "stats.json").write_text(json.dumps(stats, ensure_ascii=False, indent=1) + "\n",
                                        encoding="utf-8")
        (out / "it").mkdir(parents=True, exist_ok=True)
        for rel in ("train.jsonl", "dev.jsonl", "test.jsonl", "it/train.jsonl", "it/test.jsonl",
                    "stats.json"):
            os.replace(tmp / rel, out / rel)          # each file appears whole or not at all
    finally:                                          # interrupted or failed: leave no debris
        shutil.rmtree(tmp, ignore_errors=True)
    return stats


def _remove_stale(out: Path) -> None:
    """Temp dirs of builds that were killed (their process is gone)."""
    for d in out.glob(".tmp-build-*"):
        try:
            os.kill(int(d.name.rsplit("-", 1)[1]), 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass


def _run_all(sources, *, tiny, max_sentences, workers, progress) -> dict[str, SourceResult]:
    pool = None
    if workers > 1 and not tiny:
        import multiprocessing as mp
        pool = mp.get_context("fork").Pool(workers)
    try:
        seen_general, seen_it, results = set(), set(), {}
        for name in sources:
            results[name] = run_source(name, seen_it if name == "it" else seen_general,
                                       pool=pool, tiny=tiny, max_sentences=max_sentences,
                                       progress=progress)
        return results
    finally:
        if pool:                  # every result is consumed (or not wanted): stop the workers
            pool.terminate()
            pool.join()
