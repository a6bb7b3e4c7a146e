"""A real virtual microphone for tests: PulseAudio with a pipe source, read through PortAudio.

`sounddevice` (PortAudio -> ALSA -> PulseAudio plugin, device "pulse") records from the pipe
source `virtmic`, which plays whatever the test writes into its FIFO. Needs Debian `pulseaudio`,
`libportaudio2` (the Makefile installs them); tests skip with the reason when they are missing.

    with VirtualMic() as mic:          # starts a private PulseAudio daemon
        mic.play(samples_int16, realtime=True)   # in a background thread
        ...code under test records from device "pulse" with PULSE_SOURCE=virtmic...
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

RATE = 16000


class VirtualMicUnavailable(RuntimeError):
    pass


class VirtualMic:
    def __init__(self, rate: int = RATE):
        self.rate = rate
        self.dir = Path(tempfile.mkdtemp(prefix="vmic-"))
        self.fifo = self.dir / "mic.fifo"
        self.env = {"XDG_RUNTIME_DIR": str(self.dir), "PULSE_RUNTIME_PATH": str(self.dir / "pulse"),
                    "PULSE_SOURCE": "virtmic"}
        self._saved: dict[str, str | None] = {}
        self._thread: threading.Thread | None = None

    def _pactl(self, *args: str) -> str:
        env = {**os.environ, **self.env}
        return subprocess.run(["pactl", *args], env=env, check=True, capture_output=True,
                              text=True, timeout=20).stdout

    def __enter__(self) -> "VirtualMic":
        if not (shutil.which("pulseaudio") and shutil.which("pactl")):
            raise VirtualMicUnavailable("PulseAudio is not installed (Debian package pulseaudio)")
        env = {**os.environ, **self.env}
        subprocess.run(["pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "-n",
                        "--load=module-native-protocol-unix",
                        "--load=module-null-sink sink_name=nullsink"],
                       env=env, check=True, capture_output=True, timeout=30)
        for _ in range(50):
            try:
                self._pactl("info")
                break
            except subprocess.CalledProcessError:
                time.sleep(0.1)
        self._pactl("load-module", "module-pipe-source", "source_name=virtmic",
                    f"file={self.fifo}", "format=s16le", f"rate={self.rate}", "channels=1")
        self._pactl("set-default-source", "virtmic")
        for k, v in self.env.items():
            self._saved[k] = os.environ.get(k)
            os.environ[k] = v
        if "sounddevice" in sys.modules:  # PortAudio enumerated devices before the daemon ran
            sd = sys.modules["sounddevice"]
            sd._terminate()
            sd._initialize()
        return self

    def play(self, samples: np.ndarray, realtime: bool = True, block_ms: int = 100) -> threading.Thread:
        """Write int16 or float samples into the microphone (in a thread)."""
        if samples.dtype != np.int16:
            samples = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
        data = samples.astype("<i2").tobytes()
        step = self.rate * 2 * block_ms // 1000

        def feed():
            with open(self.fifo, "wb") as f:
                for i in range(0, len(data), step):
                    f.write(data[i:i + step])
                    f.flush()
                    if realtime:
                        time.sleep(block_ms / 1000)

        self._thread = threading.Thread(target=feed, daemon=True)
        self._thread.start()
        return self._thread

    def __exit__(self, *exc) -> None:
        if self._thread:
            self._thread.join(timeout=60)
        try:
            subprocess.run(["pulseaudio", "--kill"], env={**os.environ, **self.env},
                           capture_output=True, timeout=20)
        finally:
            for k, v in self._saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            shutil.rmtree(self.dir, ignore_errors=True)
