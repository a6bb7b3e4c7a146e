"""Training on a tiny espeak set: the loss falls, resume continues, DDP with 2 gloo processes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from acoustic_fixtures import make_tiny_set
from asr_pinyin.acoustic.config import load_config
from asr_pinyin.acoustic.train import Trainer, lr_at, sample_chunk
from asr_pinyin.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return make_tiny_set(tmp_path_factory.mktemp("tiny_speech"))


def tiny_config(manifest, out_dir, **train):
    cfg = load_config("tiny", [f'data.train=["{manifest}"]', f'train.out_dir="{out_dir}"'])
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(manifest, tmp_path_factory):
    """40 steps, then the same run resumed to 100 steps (the tiny recipe's length)."""
    run = tmp_path_factory.mktemp("run")
    n = torch.get_num_threads()
    Trainer(tiny_config(manifest, run, max_steps=40, save_every=20, average_last=1)).run()
    Trainer(tiny_config(manifest, run, save_every=20, average_last=1)).run()
    torch.set_num_threads(n)
    return run


def test_loss_drops_and_resume_continues(trained):
    log = read_log(trained)
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < 0.15 * losses[0], losses
    starts = [r["step"] for r in log if r.get("event") == "start"]
    assert starts == [0, 40]                                  # second run resumed at step 40
    steps = [r["step"] for r in log if "loss" in r]
    assert steps == sorted(steps) and steps[-1] == 100
    assert (trained / "model.pt").is_file() and (trained / "avg.pt").is_file()
    assert len(list(trained.glob("step_*.pt"))) == 3          # keep_checkpoints


def test_eval_cli_scores_the_trained_model(trained, manifest, capsys):
    for mode in ("full", "streaming"):
        assert main(["eval", "--manifest", str(manifest), "--model", str(trained / "model.pt"),
                     "--mode", mode, "--chunk-ms", "320"]) == 0
        res = json.loads(capsys.readouterr().out)
        assert res["utterances"] == 8 and res["audio_seconds"] > 5 and res["rtf"] > 0
        assert res["syllable_error_rate"] < 0.3, res
        assert res["syllable_error_rate_toneless"] <= res["syllable_error_rate"]


def test_cli_bad_inputs_give_one_line_errors(tmp_path, capsys, manifest):
    assert main(["eval", "--manifest", str(tmp_path / "none.jsonl"), "--model", str(tmp_path / "m.pt")]) == 2
    assert main(["train-am", "--config", str(tmp_path / "missing.toml")]) == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nwidth = 3\n")
    assert main(["train-am", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "unknown field" in err and "Traceback" not in err


def test_schedule_and_dynamic_chunks():
    cfg = load_config("synth").train
    assert lr_at(0, cfg) < lr_at(cfg.warmup_steps, cfg) and lr_at(cfg.max_steps, cfg) == pytest.approx(cfg.min_lr)
    assert all(sample_chunk(s, cfg) == (0, -1, 0) for s in range(cfg.chunk_after))   # full context first
    steps = range(cfg.chunk_after, cfg.chunk_after + 400)
    picks = [sample_chunk(s, cfg) for s in steps]
    full = sum(c == 0 for c, _, _ in picks)
    assert 120 < full < 280                                   # about half the batches full context
    assert all(1 <= c <= cfg.max_chunk_frames for c, _, _ in picks if c)
    assert {look for _, _, look in picks} == {0}              # no lookahead unless asked for
    import dataclasses
    ahead = [sample_chunk(s, dataclasses.replace(cfg, max_lookahead_frames=3)) for s in steps]
    assert [p[:2] for p in ahead] == [p[:2] for p in picks]   # the same chunks as before
    assert {look for c, _, look in ahead if c} == {0, 1, 2, 3} and all(look == 0 for c, _, look in ahead if not c)


def test_torchrun_two_gloo_processes(manifest, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "ASR_PINYIN_DEVICE": "cpu", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "asr_pinyin.cli", "train-am", "--config", "tiny",
           "--set", f'data.train=["{manifest}"]', "--set", f'train.out_dir="{run}"',
           "--set", "train.max_steps=2", "--set", "train.log_every=1", "--set", "data.batch_seconds=6.0"]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-3000:]
    log = read_log(run)
    assert log[0]["event"] == "start" and log[0]["world"] == 2
    assert [r["step"] for r in log if "loss" in r] == [1, 2]
    assert (run / "model.pt").is_file()


def test_transcribe_cli_gives_slots_and_clear_errors(trained, manifest, tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    audio = manifest.parent / "utt01_r175.flac"
    for extra in ([], ["--streaming", "--chunk-ms", "320"], ["--decoding", "beam"]):
        assert main(["transcribe-am", str(audio), "--model", str(trained / "model.pt"), "--top-k", "3", *extra]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["syllables"] and len(out["syllables"][0]["alternatives"]) == 3
        assert all(s["start"] <= s["end"] for s in out["syllables"])
    silent = tmp_path / "silence.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    assert main(["transcribe-am", str(silent), "--model", str(trained / "model.pt")]) == 0
    assert json.loads(capsys.readouterr().out)["pinyin"] == ""
    one = tmp_path / "one.wav"
    sf.write(one, np.zeros(1, np.float32), 16000)
    assert main(["transcribe-am", str(one), "--model", str(trained / "model.pt")]) == 0
    assert main(["transcribe-am", str(tmp_path / "missing.flac"), "--model", str(trained / "model.pt")]) == 2
    assert "missing.flac" in capsys.readouterr().err


def test_chunk_warmup_and_intermediate_ctc(manifest, tmp_path):
    full = load_config("tiny", [f'data.train=["{manifest}"]', f'train.out_dir="{tmp_path / "run"}"',
                                "train.max_steps=3", "train.chunk_after=2", "train.dynamic_chunk_prob=1.0",
                                "train.inter_ctc_layer=1", "train.inter_ctc_weight=0.3", "train.log_every=1"])
    assert [sample_chunk(s, full.train)[0] == 0 for s in range(4)] == [True, True, False, False]
    Trainer(full).run()
    losses = [r["loss"] for r in read_log(tmp_path / "run") if "loss" in r]
    assert losses and all(0 < l < 1e4 for l in losses)


def test_warm_start_adds_pitch_and_factored_head_to_a_trained_model(trained, manifest, tmp_path):
    """Stages 2 and 3 of the shipped recipe: a model gains the pitch path and the factored head,
    same outputs at step 0 (both start at zero), then trains with them."""
    import dataclasses

    from asr_pinyin.acoustic.dataset import load_wave, read_manifest
    from asr_pinyin.acoustic.frontend import features
    from asr_pinyin.acoustic.model import load_model

    base = load_model(trained / "model.pt")
    cfg = tiny_config(manifest, tmp_path / "pitch", init_from=str(trained / "model.pt"), max_steps=4,
                      log_every=1, save_every=2, average_last=1, augment_after=0)
    cfg.model = dataclasses.replace(base.cfg, pitch=True, factored_head=True)
    t = Trainer(cfg)
    assert t.model.pitch is not None and t.model.cfg.factored_head and t.model.cmvn.mean.numel() == 83
    torch.testing.assert_close(t.model.cmvn.mean[:80], base.cmvn.mean)
    wave = load_wave(read_manifest(manifest)[0][0].audio)
    t.model.eval()
    with torch.no_grad():
        f = features(wave, 80, with_pitch=True)
        a, _ = base(f[None, :, :80], torch.tensor([f.shape[0]]))
        b, _ = t.model(f[None], torch.tensor([f.shape[0]]))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    t.run()
    losses = [r["loss"] for r in read_log(tmp_path / "pitch") if "loss" in r]
    assert len(losses) == 4 and all(0 < l < 1e4 for l in losses)
    tuned = load_model(tmp_path / "pitch" / "model.pt")
    assert tuned.cfg.pitch and float(tuned.pitch.proj.weight.detach().abs().sum()) > 0
    assert float(tuned.tone_head.weight.detach().abs().sum()) > 0
    # the other way round (dropping pitch from a pitch model) is refused
    cfg2 = tiny_config(manifest, tmp_path / "nopitch", init_from=str(tmp_path / "pitch" / "model.pt"))
    with pytest.raises(Exception, match="differs"):
        Trainer(cfg2)
    # pitch features version 1 -> 2: fbank CMVN and voicing/level weights kept, the pitch dims'
    # CMVN estimated on the new features, the slope's weights from zero
    cfg3 = tiny_config(manifest, tmp_path / "v2", init_from=str(tmp_path / "pitch" / "model.pt"), max_steps=2,
                       log_every=1, save_every=2, average_last=1, augment_after=0)
    cfg3.model = dataclasses.replace(tuned.cfg, pitch_version=2)
    t3 = Trainer(cfg3)
    torch.testing.assert_close(t3.model.cmvn.mean[:80], tuned.cmvn.mean[:80].float())
    assert not torch.allclose(t3.model.cmvn.istd[80:], tuned.cmvn.istd[80:].float())
    w_old = tuned.pitch.proj.weight.detach().float().view(-1, tuned.pitch.stride, 3)
    w_new = t3.model.pitch.proj.weight.detach().view(-1, tuned.pitch.stride, 3)
    assert float(w_new[:, :, 2].abs().max()) == 0.0
    torch.testing.assert_close(w_new[:, :, :2], w_old[:, :, :2])
    t3.run()
    v2 = load_model(tmp_path / "v2" / "model.pt")
    assert v2.cfg.pitch_version == 2 and v2.cfg.pitch_kind == 2 and tuned.cfg.pitch_kind == 1
    # version 2 -> 3 (the same track on better raw F0): only the pitch CMVN is estimated again
    cfg4 = tiny_config(manifest, tmp_path / "v3", init_from=str(tmp_path / "v2" / "model.pt"), max_steps=1)
    cfg4.model = dataclasses.replace(v2.cfg, pitch_version=3)
    t4 = Trainer(cfg4)
    torch.testing.assert_close(t4.model.pitch.proj.weight.detach(), v2.pitch.proj.weight.detach().float())
    assert t4.model.cfg.pitch_kind == 3
