"""Record docs/dictate_session.txt: `asr-pinyin dictate` in tmux, fed by the virtual microphone.

    .venv/bin/python scripts/capture_dictate.py

A private PulseAudio pipe source (tests/virtual_mic.py) plays four espeak sentences in real
time; tmux capture-pane snapshots the terminal every 0.3 s (distinct ones are kept), showing
the partial line redrawn in place and finals committed line by line. Uses the tests' tiny
models, or the shipped ones with --shipped.
"""
import os, subprocess, sys, time
ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pathlib import Path
from tests.virtual_mic import VirtualMic
from tests.clients_fixtures import model_files, speech_like
from tests.recognizer_fixtures import dictation

shipped = "--shipped" in sys.argv
am, lm = (None, None) if shipped else model_files(Path("/tmp/asr_pinyin_client_models"))
models = "" if shipped else f" --am {am} --lm {lm}"
audio = dictation((1, 2, 3, 4), gap=1.3)
out = []
with VirtualMic() as mic:
    env = " ".join(f"{k}={v}" for k, v in mic.env.items())
    shown = "asr-pinyin dictate --device pulse --seconds 14"
    cmd = f"cd {ROOT} && {env} .venv/bin/{shown}{models}"
    subprocess.run(["tmux", "kill-session", "-t", "dict"], capture_output=True)
    subprocess.run(["tmux", "new-session", "-d", "-s", "dict", "-x", "100", "-y", "14"], check=True)
    subprocess.run(["tmux", "send-keys", "-t", "dict", f"clear; PS1='$ '; {cmd}", "Enter"], check=True)
    time.sleep(0.2)
    subprocess.run(["tmux", "send-keys", "-t", "dict", "", ""])
    for _ in range(100):
        time.sleep(0.2)
        pane = subprocess.run(["tmux", "capture-pane", "-p", "-t", "dict"], capture_output=True, text=True).stdout
        if "listening on" in pane:
            break
    mic.play(audio, realtime=True)
    t0 = time.time()
    snaps = []
    while time.time() - t0 < 17:
        time.sleep(0.3)
        pane = subprocess.run(["tmux", "capture-pane", "-p", "-t", "dict"], capture_output=True, text=True).stdout
        snaps.append((round(time.time() - t0, 1), pane.rstrip()))
    subprocess.run(["tmux", "kill-session", "-t", "dict"], capture_output=True)
# keep distinct snapshots
seen, keep = set(), []
for t, p in snaps:
    if p not in seen:
        seen.add(p); keep.append((t, p))
head = (f"$ {shown}{' --am AM --lm LM' if not shipped else ''}\n"
        "# tmux capture-pane snapshots while a virtual microphone plays 4 sentences in real time\n"
        f"# ({'shipped' if shipped else 'tiny test'} models; written by scripts/capture_dictate.py)\n\n")
(ROOT / "docs" / "dictate_session.txt").write_text(head + "\n".join(f"--- t={t} s ---\n{p}" for t, p in keep) + "\n")
print(len(keep))
