"""The shipped training recipes (asr_pinyin/acoustic/data/*.toml) stay loadable, and a recipe that
warm-starts from the shipped model declares that model's exact [model] (train.py refuses it
otherwise, but only after the corpus is read: minutes into a run)."""
import dataclasses
from pathlib import Path

import pytest

import asr_pinyin.acoustic as acoustic_pkg
from asr_pinyin.acoustic.config import load_config
from asr_pinyin.acoustic.model import load_model

RECIPES = sorted((Path(acoustic_pkg.__file__).parent / "data").glob("*.toml"))
SHIPPED = Path(__file__).resolve().parents[1] / "models" / "am" / "model.pt"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_loads(recipe):
    cfg = load_config(recipe.stem)
    assert cfg.train.max_steps > 0 and cfg.train.out_dir.startswith("runs/")
    assert cfg.train.init_from != cfg.train.out_dir + "/model.pt"   # never its own output


def test_warm_start_from_shipped_model_matches_its_model_config():
    starts = [r for r in RECIPES if load_config(r.stem).train.init_from == "models/am/model.pt"]
    assert starts, "no recipe starts from the shipped model"
    shipped = dataclasses.asdict(load_model(SHIPPED).cfg)
    for r in starts:
        assert dataclasses.asdict(load_config(r.stem).model) == shipped, r.name
