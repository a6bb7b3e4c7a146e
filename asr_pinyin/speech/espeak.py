"""espeak-ng in-process through ctypes (the library and data come from `espeakng-loader`).

The `cmn-latn-pinyin` voice reads numbered pinyin, so we feed it our own labels (polyphones
right) and the audio matches the manifest's `pinyin` exactly. One `Espeak` per process: the
C library keeps global state.
"""
from __future__ import annotations

import ctypes
import threading

import numpy as np

VOICE = "cmn-latn-pinyin"
AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_RATE, ESPEAK_VOLUME, ESPEAK_PITCH, ESPEAK_RANGE = 1, 2, 3, 4
ESPEAK_CHARS_UTF8 = 1

# Voice variants shipped in espeak-ng-data/voices/!v, grouped into families that the splits use.
FAMILIES = {
    "female": ["f1", "f2", "f3", "f4", "f5", "Andrea", "Annie", "aunty", "belinda", "linda",
               "shelby", "steph", "steph2", "steph3", "anika", "Alicia", "grandma"],
    "male": ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Alex", "Andy", "adam", "benjamin",
             "boris", "caleb", "david", "ed", "edward", "edward2", "gustave", "ian", "john",
             "max", "michel", "norbert", "paul", "quincy", "rob", "robert", "victor", "grandpa",
             "Lee", "Mike", "Michael", "Storm", "Gene", "Gene2", "Jacky", "Reed", "Hugo",
             "Denis", "Marco", "Mario", "Diogo", "Henrique", "announcer", "antonio", "iven",
             "iven2", "iven3", "iven4", "pablo", "pedro", "miguel", "marcelo", "sandro", "zac",
             "travis", "mike2"],
    "robot": ["robosoft", "robosoft2", "robosoft3", "robosoft4", "robosoft5", "robosoft6",
              "robosoft7", "robosoft8", "UniRobot", "anikaRobot", "croak", "Tweaky", "kaukovalta"],
    "whisper": ["whisper", "whisperf"],
    "klatt": ["klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6"],
}

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)


class EspeakError(RuntimeError):
    """espeak-ng could not be loaded or refused a voice or text."""


class Espeak:
    """Synthesize numbered pinyin to float32 audio at `self.sample_rate` (22050 Hz).

    The C library is initialised once per process and has one synthesis callback, so every
    instance shares that initialisation and sets its own callback at each `synth` under the lock.
    (Each instance used to re-initialise and register its callback once: then a call on an older
    instance delivered its audio to the newest one, or into a freed callback, a segfault.)
    """

    _lock = threading.Lock()
    _shared: tuple | None = None      # (lib, sample rate, libc) once espeak_Initialize succeeded

    def __init__(self):
        with Espeak._lock:
            if Espeak._shared is None:
                try:
                    import espeakng_loader
                    lib = ctypes.CDLL(espeakng_loader.get_library_path())
                    data = espeakng_loader.get_data_path().encode()
                except (ImportError, OSError) as e:
                    raise EspeakError(f"cannot load espeak-ng via espeakng-loader: {e}") from None
                lib.espeak_Initialize.restype = ctypes.c_int
                rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
                if rate <= 0:
                    raise EspeakError("espeak_Initialize failed")
                Espeak._shared = (lib, rate, ctypes.CDLL(None))
        self.lib, self.sample_rate, self._libc = Espeak._shared
        self._chunks: list[np.ndarray] = []
        self._cb = _CALLBACK(self._collect)  # keep a reference: ctypes would free it

    def _collect(self, wav, n, events):
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def synth(self, pinyin: str, variant: str = "", rate: int = 175, pitch: int = 50,
              pitch_range: int = 50, seed: int = 0) -> np.ndarray:
        """Numbered pinyin ('ni3 hao3') -> float32 mono audio; same arguments -> same samples."""
        name = VOICE + (f"+{variant}" if variant else "")
        with self._lock:
            self.lib.espeak_SetSynthCallback(self._cb)   # this instance's, alive for the call
            if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
                raise EspeakError(f"unknown espeak voice {name!r}")
            for param, value in ((ESPEAK_RATE, rate), (ESPEAK_PITCH, pitch),
                                 (ESPEAK_RANGE, pitch_range)):
                self.lib.espeak_SetParameter(param, int(value), 0)
            self.lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))  # pitch jitter and noise are random
            self._libc.srand(ctypes.c_uint(seed & 0xFFFFFFFF))
            self._chunks = []
            text = pinyin.encode("utf-8")
            if self.lib.espeak_Synth(text, len(text) + 1, 0, 0, 0, ESPEAK_CHARS_UTF8, None, None):
                raise EspeakError(f"espeak_Synth failed for {pinyin[:40]!r}")
            self.lib.espeak_Synchronize()
            pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return pcm.astype(np.float32) / 32768.0


def synth_isolated(engine: Espeak, pinyin: str, **kw) -> np.ndarray:
    """Synthesize in a forked child, so the result does not depend on earlier utterances.

    espeak-ng keeps static state between utterances (flutter and noise phases, klatt
    filters) that its seed functions do not reset, so the same call gives other samples after
    other text. A child forked from a process that never synthesized starts from the same
    state every time: same arguments -> identical samples, in any order and across resumes.
    """
    import os
    import pickle

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: synthesize, send, exit without running Python cleanup
        os.close(r)
        try:
            payload = pickle.dumps(("ok", engine.synth(pinyin, **kw)))
        except BaseException as e:  # noqa: BLE001 - any failure goes back to the parent
            payload = pickle.dumps(("error", f"{type(e).__name__}: {e}"))
        with os.fdopen(w, "wb") as f:
            f.write(payload)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    if not data:
        raise EspeakError(f"espeak child died on {pinyin[:40]!r}")
    status, value = pickle.loads(data)
    if status != "ok":
        raise EspeakError(value)
    return value


def family_of(variant: str) -> str:
    """'klatt3' -> 'klatt'; the family a variant belongs to (for splits and summaries)."""
    for fam, names in FAMILIES.items():
        if variant in names:
            return fam
    raise EspeakError(f"espeak variant {variant!r} is in no family")
