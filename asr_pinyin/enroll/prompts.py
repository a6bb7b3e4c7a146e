"""The enrollment prompt set: greedy, budgeted coverage of tonal syllables and tone pairs.

A speaker can read only a few minutes, so the prompts must make each second count: every new
tonal syllable and every new adjacent tone pair (tone bigram, 5 x 5 = 25 with the neutral tone)
gives the adapter something it has not heard from this voice yet. Selection is the classic
cost-effective greedy for budgeted coverage (gain per syllable read), made lazy with a heap so the
whole 300k-sentence corpus is scanned in seconds. Ties break on the sentence id: deterministic.
"""
from __future__ import annotations

import heapq
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

PROMPTS_TSV = Path(__file__).with_name("data") / "prompts.tsv"
PUNCT_OK = set("，。！？、；：")


@dataclass
class Prompt:
    id: str
    text: str
    pinyin: str

    @property
    def syllables(self) -> list[str]:
        return self.pinyin.split()


def tone_pairs(pinyin: str) -> set[str]:
    tones = [s[-1] for s in pinyin.split()]
    return {a + b for a, b in zip(tones, tones[1:])}


def usable(rec: dict, min_len: int, max_len: int, inventory: set[str]) -> bool:
    """Short, plain sentences only: hanzi and ordinary punctuation (no digits, latin, quotes)."""
    text, syl = rec.get("text", ""), rec.get("pinyin", "").split()
    if not min_len <= len(syl) <= max_len:
        return False
    n_hanzi = 0
    for c in text:
        if "\u4e00" <= c <= "\u9fff":
            n_hanzi += 1
        elif c not in PUNCT_OK:
            return False
    return n_hanzi == len(syl) and all(s in inventory for s in syl)


# The shipped set's choice (scripts/make_prompts.py reads these): 60-100 sentences of 10-18
# syllables, 1,200 syllables = 5 minutes at 4 syllables/s. Sentences of 8-16 (until session 16)
# ran out of 100 prompts at 933 syllables: the greedy gain per syllable favours short ones.
N_MAX, N_MIN, BUDGET_SYLLABLES, MIN_LEN, MAX_LEN = 100, 60, 1200, 10, 18


def select(records: list[dict], n_max: int = N_MAX, n_min: int = N_MIN,
           budget_syllables: int = BUDGET_SYLLABLES, pair_weight: float = 2.0,
           min_len: int = MIN_LEN, max_len: int = MAX_LEN,
           inventory: set[str] | None = None) -> tuple[list[Prompt], dict]:
    """Pick prompts; returns (prompts, coverage report).

    Gain of a sentence = new tonal syllables + `pair_weight` x new tone pairs, with a small bonus
    for frequent syllables (log of corpus count) so common sounds win ties; priority is gain per
    syllable. Stops at `n_max` sentences or when `budget_syllables` are spent (never before
    `n_min` sentences unless nothing adds coverage).
    """
    if inventory is None:
        from asr_pinyin.pinyin import TONAL
        inventory = set(TONAL)
    freq = Counter(s for r in records for s in r.get("pinyin", "").split())
    total_tokens = sum(freq.values()) or 1
    top = max(freq.values(), default=1)
    weight = {s: 1.0 + 0.25 * math.log1p(c) / math.log1p(top) for s, c in freq.items()}
    cands = []
    seen_text = set()
    for r in sorted(records, key=lambda r: str(r.get("id"))):   # duplicates: the smallest id wins
        if r.get("text") in seen_text or not usable(r, min_len, max_len, inventory):
            continue
        seen_text.add(r["text"])
        cands.append(Prompt(str(r["id"]), r["text"], r["pinyin"]))
    got_syl: set[str] = set()
    got_pairs: set[str] = set()

    def gain(p: Prompt) -> float:
        syl = set(p.syllables) - got_syl
        return sum(weight.get(s, 1.0) for s in syl) + pair_weight * len(tone_pairs(p.pinyin) - got_pairs)

    heap = [(-gain(p) / len(p.syllables), p.id, i) for i, p in enumerate(cands)]
    heapq.heapify(heap)
    chosen: list[Prompt] = []
    spent = 0
    while heap and len(chosen) < n_max:
        neg, pid, i = heapq.heappop(heap)
        p = cands[i]
        g = gain(p) / len(p.syllables)
        if heap and g < -heap[0][0] - 1e-12:          # stale priority: re-insert with the true gain
            heapq.heappush(heap, (-g, pid, i))
            continue
        if g <= 0:
            break
        if len(chosen) >= n_min and spent + len(p.syllables) > budget_syllables:
            break
        chosen.append(p)
        spent += len(p.syllables)
        got_syl |= set(p.syllables)
        got_pairs |= tone_pairs(p.pinyin)
    return chosen, coverage(chosen, freq, total_tokens, len(inventory), len(records), len(cands))


def coverage(prompts: list[Prompt], freq: Counter, total_tokens: int, inventory_size: int,
             n_corpus: int, n_candidates: int) -> dict:
    syl = {s for p in prompts for s in p.syllables}
    pairs = set().union(*(tone_pairs(p.pinyin) for p in prompts)) if prompts else set()
    n_syl = sum(len(p.syllables) for p in prompts)
    return {"prompts": len(prompts), "syllables_read": n_syl,
            "minutes_at_4_syl_per_s": round(n_syl / 4 / 60, 2),
            "tonal_syllables_covered": len(syl), "inventory": inventory_size,
            "inventory_share": round(len(syl) / max(inventory_size, 1), 4),
            "corpus_token_share": round(sum(freq[s] for s in syl) / total_tokens, 4),
            "tone_pairs_covered": len(pairs), "tone_pairs_total": 25,
            "corpus_sentences": n_corpus, "candidates": n_candidates}


def write_tsv(path: Path, prompts: list[Prompt], report: dict, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# enrollment prompts from {source} (scripts/make_prompts.py; do not edit by hand)",
             f"# coverage: {json.dumps(report, ensure_ascii=False)}",
             "id\thanzi\tpinyin"]
    lines += [f"{p.id}\t{p.text}\t{p.pinyin}" for p in prompts]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_prompts(path: Path | str | None = None) -> list[Prompt]:
    """The shipped prompt set (or another TSV with columns id, hanzi, pinyin; '#' lines skipped)."""
    path = Path(path) if path else PROMPTS_TSV
    if not path.is_file():
        raise FileNotFoundError(f"prompt set not found: {path} (make it with scripts/make_prompts.py)")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#") or line.startswith("id\t"):
            continue
        parts = line.split("\t")
        if len(parts) != 3 or len(parts[1]) == 0 or not parts[2].split():
            raise ValueError(f"{path}:{n}: expected 'id<TAB>hanzi<TAB>pinyin'")
        out.append(Prompt(*parts))
    if not out:
        raise ValueError(f"{path}: no prompts")
    return out


def read_coverage(path: Path | str | None = None) -> dict:
    path = Path(path) if path else PROMPTS_TSV
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# coverage: "):
            return json.loads(line[len("# coverage: "):])
    return {}
