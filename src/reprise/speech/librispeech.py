"""LibriSpeech (Panayotov et al., 2015) for paper scale: the official openslr tarballs,
checksum-verified, converted to the corpus manifest format (reprise.speech.corpus).

Archive layout: LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac and
<speaker>-<chapter>.trans.txt ("<utt id> WORDS..." per line). Subsets map to splits by their
prefix (train-*, dev-*, test-*); every utterance is in the "dictation" domain.

Word times: from published word alignments when given (the Montreal-Forced-Aligner-derived
format of github.com/CorentinJ/librispeech-alignments: per chapter a
<speaker>-<chapter>.alignment.txt with lines `<utt id> ",w1,w2,..." "t1,t2,..."`, each t the
end time of its entry, "" entries being silences); otherwise left empty, and the manifest's
`aligned` column says so (Ar-RNNT and emission delays need aligned utterances).

    python -m reprise.speech librispeech-fetch dev-clean --raw data/raw/librispeech
"""

from __future__ import annotations

import logging
import re
import tarfile
from pathlib import Path

from reprise.data.download import RawFile, fetch_file, verify
from reprise.errors import DataError

log = logging.getLogger(__name__)

URL = "https://www.openslr.org/resources/12/{}.tar.gz"
MD5 = {  # https://www.openslr.org/resources/12/md5sum.txt
    "dev-clean": "42e2234ba48799c1f50f24a7926300a1",
    "dev-other": "c8d0bcc9cca99d4f8b62fcc847357931",
    "test-clean": "32fa31d27d2e1cad72775fee3f4849a9",
    "test-other": "fb5a50374b501bb3bac4815ee91d3135",
    "train-clean-100": "2a93770f6d5c6c964bc36631d331a522",
    "train-clean-360": "c0e676e450a7ff2f54aeade5171606fa",
    "train-other-500": "d1a0fd59409feb2c614ce4d30c387708",
}
_UTT = re.compile(r"^\d+-\d+-\d+$")


def raw_file(subset: str) -> RawFile:
    if subset not in MD5:
        raise DataError(f"LibriSpeech has no subset {subset!r}; subsets: {', '.join(MD5)}")
    return RawFile(URL.format(subset), f"{subset}.tar.gz", MD5[subset])


def fetch(subset: str, raw: str | Path) -> Path:
    return fetch_file(raw_file(subset), Path(raw))


def read_alignments(folder: str | Path) -> dict[str, tuple[list, list, list]]:
    """{utt id: (words, starts, ends)} from every *.alignment.txt under `folder`."""
    out = {}
    for f in Path(folder).rglob("*.alignment.txt"):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3:
                raise DataError(f'{f}:{n}: expected `<utt> ",w1,..." "t1,..."`, got {line!r}')
            uid, words, times = parts[0], parts[1].strip('"').split(","), parts[2].strip('"')
            ends = [float(t) for t in times.split(",")]
            if len(words) != len(ends):
                raise DataError(f"{f}:{n}: {len(words)} entries but {len(ends)} times")
            w, s, e, prev = [], [], [], 0.0
            for word, end in zip(words, ends, strict=True):
                if word:
                    w.append(word.lower())
                    s.append(prev)
                    e.append(end)
                prev = end
            out[uid] = (w, s, e)
    return out


def prepare(raw: str | Path, out: str | Path, subsets: list[str], alignments=None) -> Path:
    """Verify and unpack `subsets` from `raw` into `out` (audio/ + manifest.parquet); a
    refused file leaves nothing behind (the unpacking goes to `<out>.tmp`, removed)."""
    import shutil

    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _unpack(Path(raw), tmp, subsets, read_alignments(alignments) if alignments else {})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out / "manifest.parquet"


def _unpack(raw: Path, tmp: Path, subsets: list[str], aligned: dict) -> None:
    import pandas as pd
    import soundfile as sf

    rows = []
    for subset in subsets:
        rf = raw_file(subset)
        path = raw / rf.filename
        if not path.is_file():
            raise DataError(
                f"{path} is missing: run `python -m reprise.speech librispeech-fetch "
                f"{subset} --raw {raw}`, or place the official file there"
            )
        verify(path, rf)
        split = subset.split("-")[0]
        texts, audio = {}, []
        try:
            with tarfile.open(path, "r:gz") as tar:
                for m in tar:
                    name = Path(m.name)
                    if not m.isfile() or subset not in name.parts:
                        continue
                    if name.name.endswith(".trans.txt"):
                        for line in tar.extractfile(m).read().decode().splitlines():
                            if line.strip():
                                uid, _, text = line.partition(" ")
                                texts[uid] = text.strip().lower()
                    elif name.suffix == ".flac" and _UTT.match(name.stem):
                        dest = tmp / "audio" / subset / name.name
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        dest.write_bytes(tar.extractfile(m).read())
                        audio.append(name.stem)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise DataError(f"{path} is not a readable LibriSpeech tarball: {e}") from None
        for uid in sorted(audio):
            if uid not in texts:
                raise DataError(f"{path}: {uid}.flac has no transcript line")
            rel = f"audio/{subset}/{uid}.flac"
            try:
                info = sf.info(tmp / rel)
            except (RuntimeError, OSError) as e:  # soundfile's LibsndfileError
                raise DataError(f"{path}: {uid}.flac is not readable audio ({e})") from None
            if info.samplerate != 16000:
                raise DataError(f"{path}: {uid}.flac is {info.samplerate} Hz, expected 16000")
            words = texts[uid].split()
            w, s, e = aligned.get(uid, (words, [], []))
            if w != words:
                raise DataError(f"alignment of {uid} has words {w}, transcript {words}")
            rows.append(
                dict(
                    id=uid,
                    split=split,
                    domain="dictation",
                    text=texts[uid],
                    path=rel,
                    words=words,
                    starts=s,
                    ends=e,
                    duration=info.duration,
                    speech_end=e[-1] if e else info.duration,
                    aligned=bool(e),
                    subset=subset,
                )
            )
        log.info("LibriSpeech %s: %d utterances", subset, len(audio))
    if not rows:
        raise DataError(f"no utterances found in {subsets} under {raw}")
    pd.DataFrame(rows).to_parquet(tmp / "manifest.parquet", index=False)
