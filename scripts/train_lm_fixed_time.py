"""Train one LM config for a fixed wall time and write a small fp16 copy of its best checkpoint.

Used for the GPU runs (configs/gpu.py, gpu_large.py), where the data travels as the encoded-corpus
cache and the result must come back small:

    python scripts/train_lm_fixed_time.py --config asr_pinyin/lm/configs/gpu.py \
        --cache data/text/train.lm_cache.npz --dev data/text/dev.jsonl --minutes 6 --out lm_gpu.pt

The fp16 copy is `export-lm`'s file without n-gram; give the network its decode-time fusion with
`asr-pinyin export-lm OUT models/lm/lm.pt --fusion-from models/lm/lm.pt`.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    from asr_pinyin.lm.config import load_config
    from asr_pinyin.lm.export import export
    from asr_pinyin.lm.train import train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--cache", help="encoded train split (.npz); replaces config.cache")
    ap.add_argument("--dev", help="dev JSONL; replaces config.dev")
    ap.add_argument("--run-dir", help="replaces config.out_dir")
    ap.add_argument("--minutes", type=float, help="replaces config.max_minutes")
    ap.add_argument("--workers", type=int, help="replaces config.workers")
    ap.add_argument("--init", help="replaces config.init_from (weights to start from)")
    ap.add_argument("--toneless-rate", type=float, help="replaces config.toneless_rate")
    ap.add_argument("--out", required=True, help="fp16 copy of best.pt")
    args = ap.parse_args()
    cfg = load_config(args.config)
    changes = {k: v for k, v in (("cache", args.cache), ("dev", args.dev), ("out_dir", args.run_dir),
                                 ("max_minutes", args.minutes), ("workers", args.workers),
                                 ("init_from", args.init), ("toneless_rate", args.toneless_rate)) if v is not None}
    cfg = dataclasses.replace(cfg, **changes)
    best = train(cfg, resume=True)
    size = export(best, args.out)          # train() has printed the step and dev score
    print(f"wrote {args.out} ({size / 1e6:.1f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
