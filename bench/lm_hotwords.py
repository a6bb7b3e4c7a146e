"""Effect of hotwords on sentences with rare names and terms (words absent from the training text).

    .venv/bin/python bench/lm_hotwords.py [--data data/text/test.jsonl] [--limit 200] [--toneless]

Rare words: jieba words of 2-4 hanzi in the test sentences that never occur in the train split.
Each sentence is converted without hotwords and with the whole list of rare words as hotwords
(about `limit` phrases at once, so most are distractors for any one sentence). Reports accuracy
on the rare words' hanzi and on all hanzi, and on control sentences without rare words (does the
list hurt elsewhere?). Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/text/test.jsonl")
    ap.add_argument("--train", default="data/text/train.jsonl")
    ap.add_argument("--limit", type=int, default=200, help="sentences with a rare word")
    ap.add_argument("--toneless", action="store_true")
    ap.add_argument("--weight", type=float, default=None)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()

    import jieba

    from asr_pinyin.lm.data import read_jsonl, split_sentence
    from asr_pinyin.lm.decode import LanguageModel
    from asr_pinyin.lm.hotwords import DEFAULT_WEIGHT

    jieba.setLogLevel(60)
    train_text = "\n".join(r["text"] for r in read_jsonl(args.train))
    rare, control = [], []
    for r in read_jsonl(args.data):
        s = split_sentence(r["text"], r["pinyin"])
        if not s:
            continue
        han = "".join(s[0])
        words = [w for w in jieba.cut(han) if 2 <= len(w) <= 4 and w not in train_text]
        if words and len(rare) < args.limit:
            rare.append((r, han, words[0]))
        elif not words and len(control) < args.limit:
            control.append((r, han))
        if len(rare) >= args.limit and len(control) >= args.limit:
            break
    weight = args.weight or DEFAULT_WEIGHT
    hotwords = sorted({(w, weight) for _, _, w in rare})
    lm = LanguageModel.load(args.model)

    def run(items, hws):
        convs = lm.convert_batch([r["pinyin"] for r, *_ in items], hotwords=hws, toneless=args.toneless)
        return ["".join(c.hanzi for c in conv.chars) for conv in convs]

    out = {"rare_sentences": len(rare), "control_sentences": len(control), "hotwords": len(hotwords),
           "weight": weight, "mode": "toneless" if args.toneless else "tonal"}
    for name, hws in (("without", None), ("with", hotwords)):
        hyps = run(rare, hws)
        word_right = word_total = all_right = all_total = words_exact = 0
        for (r, han, w), hyp in zip(rare, hyps):
            i = han.index(w)
            word_right += sum(a == b for a, b in zip(hyp[i:i + len(w)], w))
            word_total += len(w)
            words_exact += hyp[i:i + len(w)] == w
            all_right += sum(a == b for a, b in zip(hyp, han))
            all_total += len(han)
        ctrl = run(control, hws)
        c_right = sum(sum(a == b for a, b in zip(h, han)) for (_, han), h in zip(control, ctrl))
        c_total = sum(len(han) for _, han in control)
        out[name] = {"rare_word_char_accuracy": round(word_right / word_total, 4),
                     "rare_words_exact": round(words_exact / len(rare), 4),
                     "sentence_char_accuracy": round(all_right / all_total, 4),
                     "control_char_accuracy": round(c_right / c_total, 4)}
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
