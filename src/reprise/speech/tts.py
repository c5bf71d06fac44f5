"""Offline text-to-speech: espeak-ng (bundled by the `espeakng-loader` wheel) through ctypes.

Only the handful of calls the corpus needs: initialise in synchronous mode, pick a voice, set
rate and pitch, synthesise one string into int16 samples collected by a callback. espeak-ng
keeps global state, so one process holds one engine (`Espeak.get()`).

That state also carries from one synthesis to the next: the same word comes out tens of
samples longer or shorter depending on what the process said before (measured; not reset by
espeak_ng_SetRandSeed, the voice, or Terminate + Initialize). So every call runs in a forked
child of the freshly initialised engine: `synth_words` speaks a sequence of words (one
utterance) in one child, and their audio depends only on that sequence and the voice
settings, whatever order or worker it was asked in. One child an utterance rather than a word:
the fork and exit of a process that has imported scipy and pandas cost ~5-8 ms, a word's
synthesis ~0.5 ms (measured on the smoke corpus: 8.4 ms a word forked per word).
"""

from __future__ import annotations

import ctypes
import os
import threading

import numpy as np

from reprise.errors import DataError

AUDIO_OUTPUT_SYNCHRONOUS = 2
CHARS_UTF8 = 1
POS_CHARACTER = 1
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4

# English voices: a base accent plus a variant (timbre). All ship with the wheel.
ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-029", "en-gb-scotland")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "f5", "klatt")

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class Espeak:
    """The process's espeak-ng engine (synchronous, samples returned as numpy int16)."""

    _instance: Espeak | None = None
    _lock = threading.Lock()

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError as e:  # a dependency of the project; say which
            raise DataError("speech synthesis needs the `espeakng-loader` package") from e
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path().encode()
        self.lib.espeak_Initialize.restype = ctypes.c_int
        rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate <= 0:
            raise DataError(f"espeak-ng failed to initialise from {data.decode()} (code {rate})")
        self.sample_rate = rate
        self._chunks: list[np.ndarray] = []
        self._cb = _CALLBACK(self._collect)  # kept referenced: espeak calls it from C
        self.lib.espeak_SetSynthCallback(self._cb)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self._voice = None
        # the first synthesis loads tables lazily; pay for it once, before any fork
        self._synth_here("ready", "en-us", 175, 50)

    @classmethod
    def get(cls) -> Espeak:
        with cls._lock:
            if cls._instance is None:
                cls._instance = Espeak()
            return cls._instance

    def _collect(self, wav, n, events) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0 = continue synthesis

    def _set_voice(self, voice: str) -> None:
        if voice != self._voice:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise DataError(f"espeak-ng has no voice {voice!r} (expected e.g. 'en-us+m1')")
            self._voice = voice

    def _synth_here(self, text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
        self._set_voice(voice)
        self.lib.espeak_SetParameter(PARAM_RATE, int(rate), 0)
        self.lib.espeak_SetParameter(PARAM_PITCH, int(pitch), 0)
        self._chunks = []
        buf = ctypes.create_string_buffer(text.encode("utf-8"))
        err = self.lib.espeak_Synth(buf, len(buf), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        if err != 0:
            raise DataError(f"espeak-ng failed to synthesise {text!r} (code {err})")
        self.lib.espeak_Synchronize()
        out = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        self._chunks = []
        return out

    def _seed(self) -> None:
        """The breathy voices (f2, f3, f5) mix in noise from the C library's rand(), which
        espeak-ng seeds from the clock (measured: they differed from process to process):
        seed it, and espeak-ng's own generator, the same way before every synthesis."""
        ctypes.CDLL(None).srand(0)
        self.lib.espeak_ng_SetRandSeed(0)

    def synth(self, text: str, voice: str, rate: int = 175, pitch: int = 50) -> np.ndarray:
        """`text` spoken by `voice` at `rate` words/min and `pitch` (0-100): int16 samples."""
        return self.synth_words([text], voice, rate, pitch)[0]

    def synth_words(
        self, words: list[str], voice: str, rate: int = 175, pitch: int = 50
    ) -> list[np.ndarray]:
        """Each of `words` spoken on its own, in turn, by one forked child of the freshly
        initialised engine (so nothing said before this call changes them): int16 samples."""
        if not words:
            return []
        with self._lock:
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # child: synthesise, send status byte + samples, exit without cleanup
                os.close(read)
                code = 0
                try:
                    parts = []
                    for w in words:
                        self._seed()
                        parts.append(self._synth_here(w, voice, rate, pitch))
                    sizes = np.array([len(x) for x in parts], dtype=np.int64)
                    payload = b"\x00" + sizes.tobytes() + b"".join(x.tobytes() for x in parts)
                except DataError as e:
                    payload = b"\x01" + str(e).encode()
                with os.fdopen(write, "wb") as f:
                    try:
                        f.write(payload)
                    except BrokenPipeError:
                        code = 1
                os._exit(code)
            os.close(write)
            with os.fdopen(read, "rb") as f:
                payload = f.read()
            _, status = os.waitpid(pid, 0)
        if not payload or os.waitstatus_to_exitcode(status) != 0:
            raise DataError(f"espeak-ng crashed synthesising {' '.join(words)!r} ({voice})")
        if payload[:1] == b"\x01":
            raise DataError(payload[1:].decode())
        head = 1 + 8 * len(words)
        sizes = np.frombuffer(payload[1:head], dtype=np.int64)
        samples = np.frombuffer(payload[head:], dtype=np.int16)
        return [x.copy() for x in np.split(samples, np.cumsum(sizes)[:-1])]


def voices() -> list[str]:
    """Every accent+variant voice name the corpus draws from."""
    return [f"{a}+{v}" for a in ACCENTS for v in VARIANTS]
