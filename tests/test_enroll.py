"""Voice enrollment: prompt selection, take checks on real audio, the --from-dir flow end to end
(with resume and a bad take reported by prompt id), adaptation's hand-off, and the microphone
flow against a real PulseAudio virtual microphone (a clipped take is retaken)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr_pinyin.cli import main
from asr_pinyin.enroll.checks import CheckConfig, check_take
from asr_pinyin.enroll.profile import VoiceError, VoiceProfile, check_name, voice_adapter_path
from asr_pinyin.enroll.prompts import MAX_LEN, MIN_LEN, read_coverage, read_prompts, select, tone_pairs
from asr_pinyin.pinyin import TONAL_SET
from tests.recognizer_fixtures import SENTENCES, silence, speech

SR = 16000


# ---- prompt selection --------------------------------------------------------------------------
def test_greedy_selection_covers_and_filters():
    recs = [{"id": "a", "text": "妈麻马", "pinyin": "ma1 ma2 ma3"},
            {"id": "b", "text": "妈麻马骂", "pinyin": "ma1 ma2 ma3 ma4"},
            {"id": "c", "text": "你好吗吧", "pinyin": "ni3 hao3 ma5 ba4"},
            {"id": "d", "text": "你好马2", "pinyin": "ni3 hao3 ma3"},         # digit: unusable
            {"id": "e", "text": "你好", "pinyin": "ni3 hao3"},                  # too short
            {"id": "f", "text": "妈麻马骂", "pinyin": "ma1 ma2 ma3 ma4"}]       # duplicate text
    chosen, cov = select(recs, n_max=10, n_min=1, budget_syllables=100, min_len=3, max_len=6)
    assert [p.id for p in chosen] == ["b", "c"]          # "a" adds nothing once "b" is in
    assert select(recs[:1], 10, 1, 100, min_len=3, max_len=6)[0][0].id == "a"
    assert cov["candidates"] == 3 and cov["tonal_syllables_covered"] == 8
    assert cov["tone_pairs_covered"] == len(tone_pairs("ma1 ma2 ma3 ma4") | tone_pairs("ni3 hao3 ma5 ba4"))
    tokens = sum(len(r["pinyin"].split()) for r in recs)
    covered = sum(1 for r in recs for s in r["pinyin"].split() if s in {"ma1", "ma2", "ma3", "ma4",
                                                                       "ni3", "hao3", "ma5", "ba4"})
    assert cov["corpus_token_share"] == round(covered / tokens, 4)
    assert select(list(reversed(recs)), 10, 1, 100, min_len=3, max_len=6)[0] == chosen   # deterministic
    few, _ = select(recs, n_max=1, n_min=1, budget_syllables=100, min_len=3, max_len=6)
    assert [p.id for p in few] == ["b"]


def test_shipped_prompt_set():
    prompts = read_prompts()
    assert 60 <= len(prompts) <= 100 and len({p.id for p in prompts}) == len(prompts)
    for p in prompts:
        assert MIN_LEN <= len(p.syllables) <= MAX_LEN and all(s in TONAL_SET for s in p.syllables)
    syl = {s for p in prompts for s in p.syllables}
    pairs = set().union(*(tone_pairs(p.pinyin) for p in prompts))
    cov = read_coverage()
    assert cov["tonal_syllables_covered"] == len(syl) and cov["tone_pairs_covered"] == len(pairs) == 25
    assert cov["syllables_read"] / 4 / 60 <= 5.0          # about 5 minutes at 4 syllables/s


# ---- checks on real audio ----------------------------------------------------------------------
PROMPT = SENTENCES[2][1]                                    # jin1 tian1 tian1 qi4 hen3 hao3


def take(pinyin=PROMPT, gain=0.5):
    return np.concatenate([silence(0.3), gain * speech(pinyin), silence(0.5)]).astype(np.float32)


def test_checks_on_real_audio():
    assert check_take(take(), PROMPT).ok
    r = check_take(silence(2.0), PROMPT)
    assert not r.ok and "no speech heard" in r.problems
    r = check_take(np.clip(take() * 8, -1, 1), PROMPT)
    assert [c.name for c in r.checks if not c.ok] == ["clipped_share"]
    assert r.problems[0].startswith("clipped: ") and "lower the input gain" in r.problems[0]
    r = check_take(take(gain=0.01), PROMPT)                 # about -50 dBFS
    assert r.problems[0].startswith("too quiet: -") and "dBFS, speak closer" in r.problems[0]
    r = check_take(take(gain=0.01), PROMPT, CheckConfig(min_level_dbfs=-60, min_speech_share=0.0,
                                                        min_speech_s=0.0))
    assert not any(c.name == "level_dbfs" and not c.ok for c in r.checks)   # thresholds are parameters
    long_prompt = " ".join([PROMPT] * 6)                    # 36 syllables for 1.8 s of speech
    r = check_take(take(), long_prompt)
    assert [c.name for c in r.checks if not c.ok] == ["s_per_syllable"] and "too short" in r.problems[0]


def train_tiny_am(path: Path) -> None:
    """A 2-layer Conformer-CTC trained 200 steps (~15 s, cached) on SENTENCES as takes look
    (silence around), so its greedy syllables match the prompts it was trained on."""
    import random

    import torch

    from asr_pinyin.acoustic.config import ModelConfig
    from asr_pinyin.acoustic.decode import encode_pinyin
    from asr_pinyin.acoustic.frontend import fbank
    from asr_pinyin.acoustic.model import AcousticModel, save_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = AcousticModel(ModelConfig(d_model=96, n_heads=2, n_layers=2, conv_channels=16,
                                      ff_mult=2, dropout=0.0))
    data = [(take(p, g), p) for _, p in SENTENCES for g in (0.5,)]
    feats = [fbank(w) for w, _ in data]
    allf = torch.cat(feats)
    model.cmvn.set_stats(allf.sum(0), (allf ** 2).sum(0), allf.shape[0])
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    lens = torch.tensor([f.shape[0] for f in feats])
    labels = [encode_pinyin(p) for _, p in data]
    y = torch.tensor([u for lab in labels for u in lab])
    ylen = torch.tensor([len(lab) for lab in labels])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = random.Random(0)
    model.train()
    for step in range(200):
        lp, out_len = model(x, lens, 0 if step % 2 else rng.randint(1, 6), -1)
        loss = torch.nn.functional.ctc_loss(lp.transpose(0, 1), y, out_len, ylen, zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
    save_model(model.eval(), path)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_am():
    from tests.recognizer_fixtures import CACHE

    path = CACHE / "enroll_am_v2.pt"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        train_tiny_am(path)
    return path


def test_match_check_uses_the_model(tiny_am):
    from asr_pinyin.acoustic.model import load_model

    model = load_model(tiny_am)
    good = check_take(take(), PROMPT, model=model)
    assert good.ok and good.figures()["mismatch"] <= 0.2, good.figures()
    bad = check_take(take(SENTENCES[1][1]), PROMPT, model=model)       # another sentence read
    assert [c.name for c in bad.checks if not c.ok] == ["mismatch"]
    assert bad.problems[0].startswith("does not match the prompt: heard '")


# ---- profile -----------------------------------------------------------------------------------
def test_names_and_adapter_lookup(tmp_path):
    for bad in ("../x", "a/b", "", ".hidden", "x" * 65, "a\\b"):
        with pytest.raises(VoiceError):
            check_name(bad)
    assert check_name("alice-2.home") == "alice-2.home" and check_name("小明") == "小明"
    VoiceProfile("bob", tmp_path).create()
    (tmp_path / "carol").mkdir()
    (tmp_path / "carol" / "adapter.pt").write_bytes(b"x")
    assert voice_adapter_path("carol", tmp_path) == tmp_path / "carol" / "adapter.pt"
    with pytest.raises(VoiceError, match=r"voice 'bob' has 0 takes but no adapter.*carol"):
        voice_adapter_path("bob", tmp_path)
    with pytest.raises(VoiceError, match=r"unknown voice 'dave'; voices with an adapter: carol"):
        voice_adapter_path("dave", tmp_path)


# ---- the --from-dir flow -----------------------------------------------------------------------
def write_prompts(path: Path, n: int) -> Path:
    lines = ["id\thanzi\tpinyin"] + [f"p{i}\t{t}\t{p}" for i, (t, p) in enumerate(SENTENCES[:n])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def enroll(capsys, *args) -> tuple[int, dict | None, str]:
    capsys.readouterr()
    code = main(["enroll", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_from_dir_flow_resumes_and_reports_bad_takes(tmp_path, monkeypatch, capsys, tiny_am):
    monkeypatch.setenv("ASR_PINYIN_HOME", str(tmp_path / "home"))
    prompts = write_prompts(tmp_path / "prompts.tsv", 6)
    audio = tmp_path / "takes"
    audio.mkdir()
    for i, (_, p) in enumerate(SENTENCES[:6]):
        wave = silence(2.0) if i == 3 else take(p)        # p3: a silent take
        if i == 4:
            wave = take(SENTENCES[7][1])                      # p4: the wrong sentence
        name = f"p{i}.flac" if i != 1 else "002.wav"           # by prompt id or by position
        sf.write(audio / name, resample_to(wave, 44100 if i == 0 else SR), 44100 if i == 0 else SR)
    base = ["--name", "tester", "--from-dir", str(audio), "--prompts", str(prompts), "--am",
            str(tiny_am), "--no-adapt", "--json"]
    code, summary, err = enroll(capsys, *base)
    assert code == 1
    assert summary["accepted"] == 4 and summary["takes"] == 4 and summary["already"] == 0
    assert summary["failed"]["p3"] == ["no speech heard"] or "no speech heard" in summary["failed"]["p3"]
    assert summary["failed"]["p4"][0].startswith("does not match the prompt")
    assert "prompt p3: " in err and "prompt p4: " in err and "[6/6]" in err
    prof = VoiceProfile("tester")
    takes = prof.takes()
    assert sorted(takes) == ["p0", "p1", "p2", "p5"]
    for rec in takes.values():                                # a manifest the trainer can read
        info = sf.info(str(prof.dir / rec["audio"]))
        assert info.samplerate == SR and info.channels == 1 and rec["duration"] > 1.0
        assert set(rec) >= {"id", "audio", "text", "pinyin", "duration"}
    stamps = {p: os.stat(prof.dir / r["audio"]).st_mtime_ns for p, r in takes.items()}

    sf.write(audio / "p3.wav", take(SENTENCES[3][1]), SR)     # fix the bad ones and run again
    sf.write(audio / "p4.flac", take(SENTENCES[4][1]), SR)
    code, summary, err = enroll(capsys, *base)
    assert code == 0 and summary["already"] == 4 and summary["accepted"] == 2 and summary["takes"] == 6
    assert "4/6 takes already recorded for 'tester'; resuming at prompt 4" in err
    assert "[1/6]" not in err                                 # finished takes are not redone
    assert {p: os.stat(prof.dir / r["audio"]).st_mtime_ns for p, r in prof.takes().items()
            if p in stamps} == stamps


def test_adaptation_hand_off(tmp_path, monkeypatch, capsys, tiny_am):
    """With enough takes the flow trains a real LoRA adapter (3 steps) and writes report.json."""
    monkeypatch.setenv("ASR_PINYIN_HOME", str(tmp_path / "home"))
    prompts = write_prompts(tmp_path / "prompts.tsv", 8)
    audio = tmp_path / "takes"
    audio.mkdir()
    for i, (_, p) in enumerate(SENTENCES):
        sf.write(audio / f"p{i}.wav", take(p), SR)
    args = ["--name", "ada", "--from-dir", str(audio), "--prompts", str(prompts), "--am", str(tiny_am),
            "--min-takes", "8", "--max-steps", "3", "--max-minutes", "1"]
    code, _, err = enroll(capsys, *args)
    prof = VoiceProfile("ada")
    assert code == 0, err
    report = json.loads(prof.report.read_text())
    assert report["takes"] == 8 and report["val_takes"] == 1 and report["train_takes"] == 7
    assert {"ser_before", "ser_after", "wall_s"} <= set(report) and prof.adapter.is_file()
    assert voice_adapter_path("ada") == prof.adapter
    code, _, err = enroll(capsys, *args)                        # nothing new: not retrained
    assert code == 0 and "is up to date" in err
    code, _, err = enroll(capsys, *args, "--force-adapt", "--replay", "0.5")
    assert code == 0 and "replay: 50% of the training utterances" in err, err
    assert json.loads(prof.report.read_text())["replay"] == 0.5


def test_replay_speech_is_the_takes_sentences_in_training_voices(tmp_path):
    """Enrollment's replay pool: each sentence once, in a pretraining voice family (never the
    held-out one), real 16 kHz audio, the same for the same seed."""
    from types import SimpleNamespace

    from asr_pinyin.acoustic.dataset import read_manifest
    from asr_pinyin.enroll.replay import synth_replay
    from asr_pinyin.speech.voices import HELDOUT_FAMILY

    sents = [SimpleNamespace(id=f"p{i}", text=t, pinyin=p) for i, (t, p) in enumerate(SENTENCES[:3])]
    pool = synth_replay(sents, tmp_path / "a", seed=0)
    rows = [json.loads(line) for line in pool.read_text().splitlines()]
    assert [r["pinyin"] for r in rows] == [s.pinyin for s in sents]
    assert all(HELDOUT_FAMILY not in r["voice"]["family"] for r in rows)
    utts = read_manifest(pool)[0]
    for u in utts:
        x, sr = sf.read(u.audio)
        assert sr == SR and abs(len(x) / SR - u.duration) < 0.01 and np.abs(x).max() > 0.05
    again = [json.loads(line) for line in synth_replay(sents, tmp_path / "b", seed=0).read_text().splitlines()]
    assert [(r["voice"], r["duration"]) for r in again] == [(r["voice"], r["duration"]) for r in rows]


def resample_to(wave: np.ndarray, sr: int) -> np.ndarray:
    from asr_pinyin.audio.io import resample

    return resample(wave, SR, sr)


# ---- the microphone flow -----------------------------------------------------------------------
def test_microphone_flow_retakes_a_clipped_take(tmp_path, monkeypatch, capsys, tiny_am):
    """Real capture: PulseAudio pipe source -> PortAudio at the device's rate -> 16 kHz takes.

    The prompt-match check is off here (--max-mismatch 1): the tiny model is overfit to the exact
    espeak samples and misreads them after PulseAudio's 16 -> 44.1 -> 16 kHz round trip; the
    match check itself is tested on files above."""
    pytest.importorskip("sounddevice")
    from tests.virtual_mic import VirtualMic, VirtualMicUnavailable

    monkeypatch.setenv("ASR_PINYIN_HOME", str(tmp_path / "home"))
    prompts = write_prompts(tmp_path / "prompts.tsv", 2)
    gap = silence(2.0)
    stream = np.concatenate([silence(1.5), 0.5 * speech(SENTENCES[0][1]), gap,
                             np.clip(4.0 * speech(SENTENCES[1][1]), -1, 1), gap,
                             0.5 * speech(SENTENCES[1][1]), gap])
    try:
        with VirtualMic() as mic:
            mic.play(stream, realtime=True)
            code, summary, err = enroll(capsys, "--name", "mic", "--device", "pulse", "--prompts",
                                        str(prompts), "--am", str(tiny_am), "--no-adapt", "--json",
                                        "--trailing-silence-ms", "800", "--max-mismatch", "1")
    except VirtualMicUnavailable as e:
        pytest.skip(str(e))
    assert code == 0, err
    assert summary["accepted"] == 2 and summary["takes"] == 2
    assert "prompt p1: clipped: " in err and "please read it again" in err
    takes = VoiceProfile("mic").takes()
    for p, rec in takes.items():
        wave, sr = sf.read(str(VoiceProfile("mic").dir / rec["audio"]))
        assert sr == SR and 0.5 < len(wave) / SR < 4.0      # trimmed to the speech +- 0.3 s
        assert np.abs(wave).max() < 0.99
