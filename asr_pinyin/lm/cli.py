"""`asr-pinyin train-lm | convert | eval-lm | export-lm` (imports stay inside the handlers)."""
from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("train-lm", help="train the pinyin->hanzi model (resumes from OUT_DIR/last.pt)")
    p.add_argument("--config", default=None, help="config file defining `config = TrainConfig(...)`")
    p.add_argument("--fresh", action="store_true", help="ignore an existing last.pt")
    p.set_defaults(func=_train)

    p = sub.add_parser("convert", help="pinyin -> hanzi (an input method on the command line)")
    p.add_argument("text", nargs="*", help="pinyin in any form, e.g. ni3hao3, 'nǐ hǎo', woxiangqubeijing")
    p.add_argument("--file", default=None, help="convert each line of this file ('-': stdin), one output line each")
    p.add_argument("--workers", type=int, default=1, help="with --file: worker processes (one per CPU core)")
    p.add_argument("--toneless", action="store_true", help="ignore tones (what IME users type)")
    p.add_argument("--nbest", type=int, default=1, help="print K candidates")
    p.add_argument("--hotword", action="append", default=[], metavar="HANZI[:WEIGHT]", help="phrase to favour")
    p.add_argument("--model", default=None, help="checkpoint (default models/lm/lm.pt)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=_convert)

    p = sub.add_parser("eval-lm", help="accuracy/speed on a JSONL text set; prints one JSON object")
    p.add_argument("--data", required=True, help='JSONL with {"text", "pinyin"}')
    p.add_argument("--toneless", action="store_true")
    p.add_argument("--corrupt", type=float, default=0.0, help="fraction of slots given as confusable top-3")
    p.add_argument("--limit", type=int, default=None, help="first N sentences")
    p.add_argument("--sample", type=int, default=None, help="a seeded random sample of N sentences")
    p.add_argument("--model", default=None)
    p.add_argument("--ngram-weight", type=float, default=None, help="override the n-gram weight (0: network only)")
    p.add_argument("--lex-weight", type=float, default=None, help="override the word-bonus weight (0: off)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (one per CPU core; 1: this process)")
    p.add_argument("--adapter", default=None, help="a LoRA domain adapter file (from finetune-lm)")
    p.add_argument("--adapter-ngram-mix", type=float, default=None,
                   help="weight of the adapter's domain n-gram (0: its network part alone)")
    p.set_defaults(func=_eval)

    p = sub.add_parser("finetune-lm", help="adapt the language model to a domain from text (LoRA or full)")
    p.add_argument("--data", required=True, help="domain text: .txt file/folder, or JSONL {text, pinyin}")
    p.add_argument("--method", choices=["lora", "full"], default="lora")
    p.add_argument("--out", required=True, help="adapter file (lora) or model file (full)")
    p.add_argument("--base", default="", help="base model (default models/lm/lm.pt)")
    p.add_argument("--general", default="data/text/train.jsonl", help="general text replayed ('' = none)")
    p.add_argument("--replay", type=float, default=0.3, help="share of each batch from general text")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--lr", type=float, default=0.0, help="0: lora 2e-3, full 3e-4")
    p.add_argument("--max-steps", type=int, default=600)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--max-minutes", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--logdir", default="", help="TensorBoard folder (default OUT.runs)")
    p.set_defaults(func=_finetune)

    p = sub.add_parser("export-lm", help="checkpoint -> small fp16 file for shipping")
    p.add_argument("checkpoint")
    p.add_argument("out", nargs="?", default="models/lm/lm.pt")
    p.add_argument("--ngram-from", default=None, help="JSONL train split to count a hanzi bigram from")
    p.add_argument("--ngram-weight", type=float, default=1.0, help="weight of log P_ngram in the beam")
    p.add_argument("--uni-weight", type=float, default=1.0, help="weight of the unigram divided out of the network")
    p.add_argument("--lex-weight", type=float, default=0.3, help="weight of the jieba word bonus (0: no lexicon)")
    p.add_argument("--fusion-from", default=None,
                   help="take the n-gram, lexicon and fusion weights of this model file (e.g. the shipped one)")
    p.set_defaults(func=_export)


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def _train(args) -> int:
    from .config import load_config
    from .train import train

    try:
        cfg = load_config(args.config)
    except (OSError, ValueError, SyntaxError) as e:
        return _fail(f"config: {e}")
    try:
        train(cfg, resume=not args.fresh)
    except (OSError, ValueError) as e:
        return _fail(str(e))
    return 0


def _load(path):
    from .decode import LanguageModel

    return LanguageModel.load(path)


def _hotwords(specs):
    from .slots import LMInputError

    out = []
    for s in specs:
        text, _, w = s.partition(":")
        try:
            out.append((text, float(w)) if w else text)
        except ValueError:
            raise LMInputError(f"hotword {s!r}: weight {w!r} is not a number") from None
    return out


def _convert(args) -> int:
    from asr_pinyin.pinyin import PinyinError, segmentations

    from .slots import LMInputError

    if not 1 <= args.nbest <= 100:
        return _fail("--nbest must be from 1 to 100")
    if args.file is not None:
        return _convert_file(args)
    if not args.text:
        return _fail("give pinyin to convert, or --file FILE")
    text = " ".join(args.text)
    try:
        lm = _load(args.model)
        hws = _hotwords(args.hotword)
        # run-together keystrokes can split several ways: let the model pick among the best few
        readings = segmentations(text, limit=3, toneless=args.toneless)
        convs = lm.convert_batch(readings, hotwords=hws, nbest=args.nbest, toneless=args.toneless)
    except (PinyinError, LMInputError, FileNotFoundError, ValueError) as e:
        return _fail(str(e))
    best = max(range(len(convs)), key=lambda i: _score(convs[i]) - 1.0 * i)
    conv = convs[best]
    if args.json:
        print(json.dumps({"text": conv.text, "pinyin": readings[best], "nbest": conv.nbest,
                          "chars": [{"hanzi": c.hanzi, "pinyin": c.pinyin, "confidence": round(c.confidence, 4),
                                     "alternatives": [[h, round(p, 4)] for h, p in c.alternatives]}
                                    for c in conv.chars]}, ensure_ascii=False))
    elif args.nbest > 1:
        for i, (t, lp) in enumerate(conv.nbest, 1):
            print(f"{i}\t{t}\t{lp:.3f}")
    else:
        print(conv.text)
    return 0


FILE_BLOCK = 4096  # input lines converted per batch by `convert --file` (output follows block by block)


def _convert_file(args) -> int:
    """One conversion per input line (blank lines stay blank; a line that is not pinyin gets an
    empty output line and a message on stderr naming its number): a bulk IME job. Lines are
    read and converted in blocks, so a large file needs bounded memory and output starts early."""
    import contextlib
    import io
    import itertools
    import sys

    from asr_pinyin.pinyin import PinyinError, segmentations

    from .slots import LMInputError, to_slots

    if args.workers < 1:
        return _fail("--workers must be at least 1")
    try:
        hws = _hotwords(args.hotword)
        # undecodable bytes become U+FFFD: that line is reported as not pinyin, the others convert
        src = (io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace") if args.file == "-"
               else open(args.file, encoding="utf-8", errors="replace"))
    except (OSError, LMInputError) as e:
        return _fail(str(e))
    bad, done = 0, 0
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(src)
            if args.workers > 1:
                from .pool import ConversionPool

                converter = stack.enter_context(ConversionPool(args.model, workers=args.workers))
            else:
                converter = _load(args.model)
            while True:
                lines = [ln.strip() for ln in itertools.islice(src, FILE_BLOCK)]
                if not lines:
                    break
                readings, owner, first = [], [], {}
                for n, line in enumerate(lines):
                    if not line:
                        continue
                    try:
                        for r in segmentations(line, limit=3, toneless=args.toneless):
                            to_slots(r, args.toneless)  # checked here: one bad line cannot fail the block
                            first.setdefault(n, len(readings))
                            readings.append(r)
                            owner.append(n)
                    except (PinyinError, LMInputError) as e:
                        print(f"line {done + n + 1}: {e}", file=sys.stderr)
                        bad += 1
                convs = converter.convert_batch(readings, hotwords=hws, nbest=args.nbest,
                                                toneless=args.toneless) if readings else []
                best: dict[int, tuple[float, object]] = {}
                for k, (n, conv) in enumerate(zip(owner, convs)):
                    score = _score(conv) - 1.0 * (k - first[n])  # as for one input: earlier readings preferred
                    if n not in best or score > best[n][0]:
                        best[n] = (score, conv)
                for n in range(len(lines)):
                    conv = best.get(n, (0.0, None))[1]
                    if conv is None:
                        print("")
                    elif args.nbest > 1:
                        print("\t".join(t for t, _ in conv.nbest))
                    else:
                        print(conv.text)
                sys.stdout.flush()
                done += len(lines)
    except (LMInputError, FileNotFoundError, RuntimeError, ValueError, OSError) as e:
        return _fail(str(e))
    return 1 if bad else 0


def _score(conv) -> float:
    """Mean log-confidence of a reading: how well the model could make sense of it."""
    import math

    return sum(math.log(max(c.confidence, 1e-9)) for c in conv.chars) / len(conv.chars)


def _eval(args) -> int:
    from .data import read_jsonl
    from .evaluate import evaluate

    if not 0.0 <= args.corrupt <= 1.0:
        return _fail("--corrupt must be between 0 and 1")
    try:
        rows = read_jsonl(args.data, args.limit)
        if args.sample:
            import random

            random.Random(0).shuffle(rows)
            rows = rows[:args.sample]
        domain = "adapter" if args.adapter else None
        if args.workers > 1:  # the workers load the model; this process only hands out the work
            from .pool import ConversionPool

            with ConversionPool(args.model, workers=args.workers, ngram_weight=args.ngram_weight,
                                lex_weight=args.lex_weight,
                                adapters={domain: (args.adapter, args.adapter_ngram_mix)} if domain else None) as pool:
                res = evaluate(None, rows, toneless=args.toneless, corrupt=args.corrupt, domain=domain, pool=pool)
        else:
            lm = _load(args.model)
            if args.ngram_weight is not None:
                lm.ngram_weight = args.ngram_weight
                if args.ngram_weight == 0:
                    lm.ngram = None
            if args.lex_weight is not None:
                lm.lex_weight = args.lex_weight
            if domain:
                lm.add_adapter(domain, args.adapter, args.adapter_ngram_mix)
            res = evaluate(lm, rows, toneless=args.toneless, corrupt=args.corrupt, domain=domain)
        if args.adapter:
            res["adapter"] = args.adapter
    except (OSError, ValueError, RuntimeError) as e:
        return _fail(str(e))
    print(json.dumps(res))
    return 0


def _finetune(args) -> int:
    from .finetune import FinetuneConfig, finetune

    cfg = FinetuneConfig(data=args.data, out=args.out, method=args.method, base=args.base, general=args.general,
                         replay=args.replay, rank=args.rank, lr=args.lr, max_steps=args.max_steps,
                         eval_every=args.eval_every, max_minutes=args.max_minutes, seed=args.seed,
                         threads=args.threads, logdir=args.logdir)
    try:
        report = finetune(cfg)
    except (OSError, ValueError) as e:
        return _fail(str(e))
    if "rank" not in report:            # under torchrun only rank 0 reports (stdout is shared)
        print(json.dumps(report, ensure_ascii=False))
    return 0


def _export(args) -> int:
    from .export import export

    try:
        size = export(args.checkpoint, args.out, args.ngram_from, args.ngram_weight, args.uni_weight,
                      args.lex_weight if args.ngram_from else 0.0, fusion_from=args.fusion_from)
    except (OSError, KeyError, ValueError) as e:
        return _fail(str(e))
    print(f"wrote {args.out} ({size / 1e6:.1f} MB)")
    return 0
