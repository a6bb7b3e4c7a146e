"""The corpus builder on --tiny: files, determinism, disjoint splits, aligned labels, CLI errors."""
import json

import pytest

from asr_pinyin.cli import main
from asr_pinyin.corpus.build import build, general_split
from asr_pinyin.corpus.sources import MAN_ROOT
from asr_pinyin.pinyin import in_inventory
from asr_pinyin.text import count_hanzi, is_clean, make_example

HAVE_MAN = MAN_ROOT.is_dir()
SOURCES = ("inews", "pd1998", "reviews", "idioms") + (("it",) if HAVE_MAN else ())
FILES = ["train.jsonl", "dev.jsonl", "test.jsonl", "it/train.jsonl", "it/test.jsonl"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("text")
    stats = build(out, sources=SOURCES, tiny=True, progress=False, args_line="test")
    return out, stats


def _read(path):
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_files_and_records(tiny):
    out, stats = tiny
    ids = set()
    for name in FILES:
        for r in _read(out / name):
            assert set(r) == {"id", "text", "pinyin"}
            assert r["id"].split("-")[0] in SOURCES and r["id"] not in ids
            ids.add(r["id"])
            syl = r["pinyin"].split()
            assert len(syl) == count_hanzi(r["text"]) and 4 <= len(syl) <= 60
            assert is_clean(r["text"]) and r["text"][-1] in "。？！；"
            assert not syl[0].endswith("5")
            assert all(in_inventory(s) for s in syl)
            assert make_example(r["text"]) == {"text": r["text"], "pinyin": r["pinyin"]}  # stable
    assert len(ids) > 1000
    assert not list(out.glob(".tmp-build-*"))                 # temp dir moved away
    saved = json.loads((out / "stats.json").read_text("utf-8"))
    assert saved["splits"]["train"]["sentences"] == stats["splits"]["train"]["sentences"]
    assert stats["splits"]["train"]["hanzi"] > 50_000


def test_splits_are_disjoint_and_hash_assigned(tiny):
    out, _ = tiny
    texts = {n: [r["text"] for r in _read(out / n)] for n in FILES}
    for n, t in texts.items():
        assert len(t) == len(set(t)), f"duplicates inside {n}"
    assert not set(texts["train.jsonl"]) & set(texts["dev.jsonl"])
    assert not set(texts["train.jsonl"]) & set(texts["test.jsonl"])
    assert not set(texts["dev.jsonl"]) & set(texts["test.jsonl"])
    assert not set(texts["it/train.jsonl"]) & set(texts["it/test.jsonl"])
    for split in ("train", "dev", "test"):
        assert all(general_split(t) == split for t in texts[f"{split}.jsonl"])


def test_deterministic(tiny, tmp_path):
    out, _ = tiny
    build(tmp_path, sources=SOURCES, tiny=True, progress=False, args_line="test")
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_max_sentences(tmp_path):
    stats = build(tmp_path, sources=("idioms",), tiny=True, max_sentences=25, progress=False)
    assert stats["sources"]["idioms"]["sentences"] == 25


@pytest.mark.parametrize("argv, code, msg", [
    (["corpus", "build", "--tiny", "--sources", "nope"], 2, "unknown source"),
    (["corpus", "build", "--tiny", "--max-sentences", "0"], 2, "--max-sentences"),
    (["corpus", "build", "--tiny", "--sources", "idioms", "--out", "/proc/forbidden"], 1, "cannot write"),
])
def test_cli_bad_input(argv, code, msg, capsys):
    assert main(argv) == code
    assert msg in capsys.readouterr().err
