"""Acoustic features: 80-dim log-mel filterbanks (Kaldi-compatible, via kaldi-native-fbank),
global mean/variance normalisation estimated on train, and SpecAugment for training.

Frames are 25 ms windows every 10 ms (`FRAME_SHIFT`), no dither, so features are a pure
function of the audio. Samples are scaled to the int16 range, Kaldi's convention. The corpus
job stores each utterance's fbank beside its audio (`cache_fbank`), so the zoo's training
and decoding jobs read them instead of computing them again (`fbank_of`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from reprise.errors import DataError

FRAME_SHIFT = 0.01  # seconds
NUM_BINS = 80
# What `fbank` computes; a stored fbank is named after it, so changing it ignores old ones.
FBANK_SPEC = {"kind": "kaldi-native-fbank", "bins": NUM_BINS, "shift_ms": 10, "window_ms": 25,
              "dither": 0.0, "snip_edges": False, "high_freq": -400, "scale": 32768.0}  # fmt: skip
FBANK_TAG = hashlib.sha256(json.dumps(FBANK_SPEC, sort_keys=True).encode()).hexdigest()[:10]


def fbank(samples: np.ndarray, sample_rate: int = 16000, num_bins: int = NUM_BINS) -> np.ndarray:
    """(frames, num_bins) float32 log-mel filterbank energies of mono float audio in [-1, 1]."""
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = sample_rate
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = False  # frame i centred at i*shift: times map to frames simply
    opts.mel_opts.num_bins = num_bins
    opts.mel_opts.high_freq = -400  # Kaldi's default band edge below Nyquist
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(sample_rate, (np.asarray(samples, np.float32) * 32768.0).tolist())
    fb.input_finished()
    n = fb.num_frames_ready
    if n == 0:
        return np.zeros((0, num_bins), np.float32)
    return np.stack([fb.get_frame(i) for i in range(n)]).astype(np.float32)


def fbank_path(audio_path: str | Path) -> Path:
    """Where the corpus stores the fbank of `audio_path`: <id>.fbank-<FBANK_TAG>.npy."""
    audio_path = Path(audio_path)
    return audio_path.with_name(f"{audio_path.stem}.fbank-{FBANK_TAG}.npy")


def cache_fbank(audio_path: str | Path, samples: np.ndarray) -> None:
    """Store the fbank of the audio as written (`samples` as read back from the file)."""
    np.save(fbank_path(audio_path), fbank(samples))


def fbank_of(audio_path: str | Path, samples: np.ndarray | None = None) -> np.ndarray:
    """The fbank of the file's audio (`samples`, or read from the file when needed): the
    stored one when the corpus wrote it (checked against the audio's frame count), computed
    otherwise (e.g. LibriSpeech)."""
    path = fbank_path(audio_path)
    if not path.exists():
        if samples is None:
            from reprise.speech.corpus import read_audio

            samples = read_audio(audio_path)
        return fbank(samples)
    if samples is not None:
        n = len(samples)
    else:  # the frame count from the header: training need not read the audio
        import soundfile as sf

        n = sf.info(str(audio_path)).frames
    hop = int(FRAME_SHIFT * 16000)
    frames = (n + hop // 2) // hop  # Kaldi's count without snip_edges
    try:
        fb = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is not a stored fbank ({e}); rebuild the speech corpus") from None
    if fb.dtype != np.float32 or fb.shape != (frames, NUM_BINS):
        raise DataError(
            f"{path}: expected a float32 ({frames}, {NUM_BINS}) fbank for its audio, got "
            f"{fb.dtype} {fb.shape}; rebuild the speech corpus"
        )
    return fb


def frame_energy_db(samples: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """Per-10-ms-frame energy in dB (for the VAD-style endpointer)."""
    hop = int(round(FRAME_SHIFT * sample_rate))
    n = len(samples) // hop
    x = np.asarray(samples[: n * hop], np.float64).reshape(n, hop)
    return 10 * np.log10(np.mean(x**2, axis=1) + 1e-12)


class CMVN:
    """Global per-dimension mean and standard deviation, estimated on train features."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)

    @classmethod
    def fit(cls, feats: list[np.ndarray]) -> CMVN:
        x = np.concatenate(feats).astype(np.float64)
        return cls(x.mean(0), np.maximum(x.std(0), 1e-5))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    def state(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state(cls, s: dict) -> CMVN:
        return cls(np.array(s["mean"]), np.array(s["std"]))


def spec_augment(
    x,
    generator,
    freq_masks: int = 2,
    freq_width: int = 15,
    time_masks: int = 2,
    time_frac: float = 0.05,
):
    """SpecAugment (Park et al. 2019) without time warping, on one (T, F) tensor: zero
    `freq_masks` bands of up to `freq_width` bins and `time_masks` spans of up to
    `time_frac` x T frames (features are normalised, so zero is the mean)."""
    import torch

    x = x.clone()
    t, f = x.shape
    for _ in range(freq_masks):
        w = int(torch.randint(0, freq_width + 1, (1,), generator=generator))
        s = int(torch.randint(0, max(1, f - w), (1,), generator=generator))
        x[:, s : s + w] = 0
    tw = max(1, int(time_frac * t))
    for _ in range(time_masks):
        w = int(torch.randint(0, tw + 1, (1,), generator=generator))
        s = int(torch.randint(0, max(1, t - w), (1,), generator=generator))
        x[s : s + w, :] = 0
    return x
