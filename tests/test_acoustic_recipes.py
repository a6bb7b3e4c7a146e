"""The shipped training recipes (asr_pinyin/acoustic/data/*.toml) stay loadable, and a recipe that
warm-starts from a checkpoint in the repository (the shipped model) passes the trainer's own
warm-start check (`train.warm_start_changes`) without a corpus."""
from pathlib import Path

import pytest

import asr_pinyin.acoustic as acoustic_pkg
from asr_pinyin.acoustic.config import load_config
from asr_pinyin.acoustic.model import load_model
from asr_pinyin.acoustic.train import warm_start_changes

RECIPES = sorted((Path(acoustic_pkg.__file__).parent / "data").glob("*.toml"))
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_loads(recipe):
    cfg = load_config(recipe.stem)
    assert cfg.train.max_steps > 0 and cfg.train.out_dir.startswith("runs/")
    assert cfg.train.init_from != cfg.train.out_dir + "/model.pt"   # never its own output


def test_warm_starts_from_repository_checkpoints_pass_the_trainers_check():
    starts = [(r, load_config(r.stem)) for r in RECIPES]
    starts = [(r, c) for r, c in starts if c.train.init_from and (ROOT / c.train.init_from).is_file()]
    assert starts, "no recipe starts from a checkpoint in the repository"
    for r, cfg in starts:
        init = load_model(ROOT / cfg.train.init_from)
        warm_start_changes(init.cfg, cfg.model, f"{r.name}: {cfg.train.init_from}")   # ConfigError if not
