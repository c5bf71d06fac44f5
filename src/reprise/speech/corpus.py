"""A synthesised two-domain speech corpus with exact word times.

Every word is spoken on its own by espeak-ng, trimmed to its voiced part, and the words are
concatenated with random pauses: each word's start and end time is known exactly, so emission
delays and alignment restrictions need no forced aligner.

Domains
- "command": 2-6 words from a small voice-command grammar (`command_text`);
- "dictation": 10-30-word sentences generated from a phrase grammar (`dictation_text`). The
  text is generated, not read from a dependency: no text corpus ships with the project's
  dependencies, and generated text keeps the vocabulary bounded at smoke scale.

Each utterance draws a voice (accent + variant), rate, pitch, a noise level (white noise at a
random SNR), leading and trailing silence. Output: `<out>/audio/<id>.flac` (16 kHz, 16 bit,
written with soundfile), its fbank beside it (`features.fbank_path`: computed once here, read
by every training and decoding job), and `<out>/manifest.parquet` with one row per utterance:
id, split, domain, text, words, starts, ends (seconds), duration, speech_end, voice, rate,
pitch, snr_db, path (relative to <out>). Splits are fixed by the generator's seed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reprise.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
SPLITS = ("train", "dev", "test")
DOMAINS = ("command", "dictation")
TEXT_SOURCE = "generated: reprise.speech.corpus command and dictation grammars"

# --- text ---------------------------------------------------------------------------------
DEVICES = ("lights", "fan", "heater", "radio", "music", "alarm", "television", "oven")
ROOMS = ("kitchen", "bedroom", "garage", "office", "hallway", "bathroom")
NAMES = ("mom", "david", "sarah", "john", "emma", "alex", "grandma")
NUMBERS = ("one", "two", "three", "five", "ten", "twenty", "thirty")
UNITS = ("seconds", "minutes", "hours")
ARTISTS = ("jazz", "rock", "the news", "the radio", "some music", "my playlist")


def command_text(rng: np.random.Generator) -> str:
    """One voice command of 2-6 words."""
    pick = lambda xs: xs[rng.integers(len(xs))]  # noqa: E731
    forms = [
        lambda: f"turn {pick(('on', 'off'))} the {pick(DEVICES)}",
        lambda: f"turn {pick(('on', 'off'))} the {pick(ROOMS)} {pick(DEVICES)}",
        lambda: f"call {pick(NAMES)}",
        lambda: f"call {pick(NAMES)} now",
        lambda: f"set a timer for {pick(NUMBERS)} {pick(UNITS)}",
        lambda: f"play {pick(ARTISTS)}",
        lambda: f"stop the {pick(DEVICES)}",
        lambda: "what time is it",
        lambda: f"open the {pick(ROOMS)} door",
        lambda: f"send a message to {pick(NAMES)}",
        lambda: f"volume {pick(('up', 'down'))}",
        lambda: "next song",
    ]
    return pick(forms)()


SUBJECTS = (
    "the old man",
    "my sister",
    "a young doctor",
    "the children",
    "our neighbour",
    "the teacher",
    "a small dog",
    "the team",
    "my friend",
    "the driver",
)
VERBS = (
    "found",
    "painted",
    "carried",
    "watched",
    "cleaned",
    "opened",
    "bought",
    "followed",
    "remembered",
    "described",
)
OBJECTS = (
    "a green boat",
    "the heavy box",
    "an empty house",
    "the long road",
    "a bright lamp",
    "the wooden table",
    "a quiet garden",
    "the red car",
    "some fresh bread",
    "the map",
)
ADJUNCTS = (
    "after the rain",
    "near the river",
    "before dinner",
    "in the morning",
    "without a word",
    "with great care",
    "for a long time",
    "under the bridge",
    "at the station",
    "during the summer",
)
LINKS = ("and then", "because", "while", "but later", "so")


def dictation_text(rng: np.random.Generator, lo: int = 10, hi: int = 30) -> str:
    """One sentence of `lo`-`hi` words: clauses joined by links, with adjuncts."""
    pick = lambda xs: xs[rng.integers(len(xs))]  # noqa: E731
    target = int(rng.integers(lo, hi + 1))
    words: list[str] = []
    while True:
        clause = f"{pick(SUBJECTS)} {pick(VERBS)} {pick(OBJECTS)}".split()
        for _ in range(int(rng.integers(0, 3))):
            clause += pick(ADJUNCTS).split()
        joined = words + (pick(LINKS).split() if words else []) + clause
        if len(joined) > hi:
            break
        words = joined
        if len(words) >= target:
            break
    while len(words) < lo:  # pad with adjuncts (each 2-4 words) up to the minimum
        words += pick(ADJUNCTS).split()
    return " ".join(words[:hi])


# --- audio --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SynthConfig:
    """Ranges the corpus draws from per utterance (seconds, dB, espeak units)."""

    rate: tuple[int, int] = (140, 210)  # words per minute
    pitch: tuple[int, int] = (25, 75)
    pause: tuple[float, float] = (0.02, 0.25)  # between words
    lead: tuple[float, float] = (0.05, 0.4)  # silence before the first word
    trail: tuple[float, float] = (0.2, 1.0)  # silence after the last word
    snr_db: tuple[float, float] = (15.0, 40.0)
    # dictation sentence length in words (the brief's 10-30; smoke uses shorter sentences:
    # the transducer lattice grows with length squared)
    dictation_words: tuple[int, int] = (10, 30)

    @classmethod
    def from_dict(cls, d: dict) -> SynthConfig:
        fields = cls.__dataclass_fields__
        bad = sorted(set(d) - set(fields))
        if bad:
            raise ConfigError(f"speech synth: unknown keys {bad}; expected {sorted(fields)}")
        out = {}
        for k, v in d.items():
            if not (isinstance(v, list | tuple) and len(v) == 2 and v[0] <= v[1]):
                raise ConfigError(f"speech synth.{k}: expected a range [low, high], got {v!r}")
            out[k] = tuple(v)
        return cls(**out)


def _trim(x: np.ndarray, rel: float = 0.02, frame: int = 160) -> np.ndarray:
    """The voiced span of one synthesised word: frames whose peak exceeds `rel` x its max."""
    if len(x) == 0:
        return x
    n = len(x) // frame * frame
    peaks = np.abs(x[:n].reshape(-1, frame)).max(axis=1) if n else np.abs(x)[None]
    keep = np.nonzero(peaks > rel * np.abs(x).max())[0]
    if len(keep) == 0:
        return x[:0]
    return x[keep[0] * frame : (keep[-1] + 1) * frame]


class WordSynth:
    """Word-by-word synthesis at 16 kHz, float32 in [-1, 1]: an utterance's words in one call
    (one espeak-ng child, `Espeak.synth_words`), each resampled and trimmed to its voice."""

    def __init__(self):
        from scipy.signal import firwin

        from reprise.speech.tts import Espeak

        self.engine = Espeak.get()
        g = np.gcd(SAMPLE_RATE, self.engine.sample_rate)
        self.up, self.down = SAMPLE_RATE // g, self.engine.sample_rate // g
        # resample_poly's own anti-aliasing filter, designed once instead of once per call
        half = 10 * max(self.up, self.down)
        self.fir = firwin(2 * half + 1, 1.0 / max(self.up, self.down), window=("kaiser", 5.0))

    def words(self, words: list[str], voice: str, rate: int, pitch: int) -> list[np.ndarray]:
        from scipy.signal import resample_poly

        out = []
        for w, raw in zip(words, self.engine.synth_words(words, voice, rate, pitch), strict=True):
            x = resample_poly(raw.astype(np.float32) / 32768.0, self.up, self.down, window=self.fir)
            x = _trim(x.astype(np.float32))
            if len(x) == 0:
                raise DataError(f"espeak-ng produced no audio for {w!r} ({voice})")
            out.append(x)
        return out


def synthesise(
    text: str, rng: np.random.Generator, synth: WordSynth, cfg: SynthConfig, voice: str
) -> tuple[np.ndarray, dict]:
    """Audio of `text` and its metadata (word start/end times in seconds)."""
    rate = int(rng.integers(cfg.rate[0], cfg.rate[1] + 1))
    pitch = int(rng.integers(cfg.pitch[0], cfg.pitch[1] + 1))
    u = lambda r: float(rng.uniform(*r))  # noqa: E731
    pieces = [np.zeros(int(u(cfg.lead) * SAMPLE_RATE), np.float32)]
    pos = len(pieces[0])
    starts, ends = [], []
    words = text.split()
    for i, x in enumerate(synth.words(words, voice, rate, pitch)):
        if i:
            gap = np.zeros(int(u(cfg.pause) * SAMPLE_RATE), np.float32)
            pieces.append(gap)
            pos += len(gap)
        starts.append(pos / SAMPLE_RATE)
        pieces.append(x)
        pos += len(x)
        ends.append(pos / SAMPLE_RATE)
    pieces.append(np.zeros(int(u(cfg.trail) * SAMPLE_RATE), np.float32))
    audio = np.concatenate(pieces)
    speech = np.concatenate([p for p in pieces if p.any()])
    snr = u(cfg.snr_db)
    noise_rms = np.sqrt(np.mean(speech**2)) / 10 ** (snr / 20)
    audio = audio + rng.normal(0.0, noise_rms, len(audio)).astype(np.float32)
    audio *= 0.5 / max(np.abs(audio).max(), 1e-6)  # same peak level for every utterance
    meta = dict(
        words=words,
        starts=starts,
        ends=ends,
        duration=len(audio) / SAMPLE_RATE,
        speech_end=ends[-1],
        voice=voice,
        rate=rate,
        pitch=pitch,
        snr_db=snr,
    )
    return audio.astype(np.float32), meta


def _synth_jobs(jobs: list[tuple], out: str, seed: int, cfg: SynthConfig) -> list[dict]:
    """Synthesise utterances (split, domain, index) into `out`; one rng per utterance, so
    the corpus does not depend on how the jobs are shared among workers."""
    import soundfile as sf

    from reprise.speech.features import cache_fbank
    from reprise.speech.tts import voices

    synth, pool, rows = WordSynth(), voices(), []
    for split, domain, i in jobs:
        rng = np.random.default_rng([seed, SPLITS.index(split), DOMAINS.index(domain), i])
        text = (
            command_text(rng) if domain == "command" else dictation_text(rng, *cfg.dictation_words)
        )
        uid = f"{split}-{domain}-{i:06d}"
        audio, meta = synthesise(text, rng, synth, cfg, pool[rng.integers(len(pool))])
        path = f"audio/{uid}.flac"
        sf.write(Path(out) / path, audio, SAMPLE_RATE, subtype="PCM_16")
        # the fbank of the audio as stored (16-bit), the one every reader would compute
        cache_fbank(Path(out) / path, read_audio(Path(out) / path))
        rows.append(
            dict(
                id=uid, split=split, domain=domain, text=" ".join(meta["words"]), path=path, **meta
            )
        )
    return rows


def check_sizes(sizes: dict) -> None:
    for split, per in sizes.items():
        if split not in SPLITS or not isinstance(per, dict):
            raise ConfigError(
                f"corpus sizes: expected {{split: {{domain: count}}}} with splits "
                f"{SPLITS}, got {split!r}: {per!r}"
            )
        for domain, n in per.items():
            if domain not in DOMAINS or not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise ConfigError(
                    f"corpus sizes[{split}]: expected a count >= 0 per domain "
                    f"{DOMAINS}, got {domain!r}: {n!r}"
                )


def build(
    out: str | Path, sizes: dict, seed: int = 0, cfg: SynthConfig | None = None, workers: int = 1
) -> Path:
    """Synthesise the corpus into `out` (a directory); returns the manifest's path.

    sizes: {split: {domain: count}}, e.g. {"train": {"command": 200, "dictation": 50}, ...}.
    Written atomically: into `<out>.tmp`, renamed to `out` when complete."""
    import multiprocessing as mp
    import shutil

    import pandas as pd

    cfg = cfg or SynthConfig()
    check_sizes(sizes)
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "audio").mkdir(parents=True)
    jobs = [
        (split, domain, i)
        for split in SPLITS
        for domain in DOMAINS
        for i in range(sizes.get(split, {}).get(domain, 0))
    ]
    shares = [jobs[w::workers] for w in range(workers)]
    if workers > 1:  # fork: espeak-ng is first initialised in each worker, never shared
        with mp.get_context("fork").Pool(workers) as p:
            parts = p.starmap(_synth_jobs, [(j, str(tmp), seed, cfg) for j in shares])
    else:
        parts = [_synth_jobs(jobs, str(tmp), seed, cfg)]
    order = {j: k for k, j in enumerate(jobs)}
    rows = sorted(
        (r for part in parts for r in part),
        key=lambda r: order[(r["split"], r["domain"], int(r["id"].rsplit("-", 1)[1]))],
    )
    for split in SPLITS:
        log.info("synthesised %s: %d utterances", split, sum(r["split"] == split for r in rows))
    pd.DataFrame(rows).to_parquet(tmp / "manifest.parquet", index=False)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out / "manifest.parquet"


def load_manifest(path: str | Path):
    """The manifest as a DataFrame (checked), with an `audio_path` column (absolute)."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        path = path / "manifest.parquet"
    if not path.is_file():
        raise DataError(f"{path} is missing: build the speech corpus first")
    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(
            f"{path} is not a speech manifest (not a readable parquet file: {e})"
        ) from None
    need = {"id", "split", "domain", "text", "words", "starts", "ends", "duration", "path"}
    if missing := need - set(df.columns):
        raise DataError(f"{path} is not a speech manifest: columns {sorted(missing)} missing")
    df["audio_path"] = [str(path.parent / p) for p in df["path"]]
    return df


def read_audio(path: str | Path) -> np.ndarray:
    import soundfile as sf

    try:
        x, sr = sf.read(path, dtype="float32")
    except (RuntimeError, OSError) as e:  # soundfile's LibsndfileError is a RuntimeError
        raise DataError(f"{path} is not a readable audio file ({e})") from None
    if sr != SAMPLE_RATE or x.ndim != 1:
        raise DataError(f"{path}: expected mono {SAMPLE_RATE} Hz audio, got {sr} Hz, {x.shape}")
    return x
