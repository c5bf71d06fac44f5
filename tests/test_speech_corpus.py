"""The synthesised speech corpus, the fbank features and the LibriSpeech loader."""

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from reprise.errors import ConfigError, DataError
from reprise.speech import corpus, features, librispeech
from reprise.speech.__main__ import main as speech_main
from reprise.speech.tokens import Tokenizer, token_end_times

SIZES = {"train": {"command": 3, "dictation": 1}, "test": {"command": 2}}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("speech") / "corpus"
    corpus.build(out, SIZES, seed=0, workers=2)
    return out


def test_grammars_have_the_brief_lengths():
    rng = np.random.default_rng(0)
    assert all(2 <= len(corpus.command_text(rng).split()) <= 6 for _ in range(500))
    assert all(10 <= len(corpus.dictation_text(rng).split()) <= 30 for _ in range(200))


def test_manifest_audio_and_exact_word_times(tiny):
    df = corpus.load_manifest(tiny)
    assert len(df) == 6 and sorted(df.split.unique()) == ["test", "train"]
    counts = df.groupby(["split", "domain"]).size().to_dict()
    assert counts == {("train", "command"): 3, ("train", "dictation"): 1, ("test", "command"): 2}
    for r in df.itertuples():
        x = corpus.read_audio(r.audio_path)
        assert len(x) / corpus.SAMPLE_RATE == pytest.approx(r.duration, abs=1e-4)
        assert r.text.split() == list(r.words)
        s, e = np.array(r.starts), np.array(r.ends)
        assert (s < e).all() and (e[:-1] < s[1:]).all() and e[-1] < r.duration
        # words are loud, the pauses between them only noise
        i0, i1 = int(s[0] * 16000), int(e[0] * 16000)
        gap = x[int(e[0] * 16000) : int(s[1] * 16000)] if len(s) > 1 else x[:i0]
        assert np.sqrt(np.mean(x[i0:i1] ** 2)) > 3 * np.sqrt(np.mean(gap**2) + 1e-12)


def test_corpus_is_fixed_by_seed_whatever_the_workers(tiny, tmp_path):
    corpus.build(tmp_path / "again", SIZES, seed=0, workers=1)
    a, b = corpus.load_manifest(tiny), corpus.load_manifest(tmp_path / "again")
    assert a.drop(columns="audio_path").equals(b.drop(columns="audio_path"))
    assert np.array_equal(corpus.read_audio(a.audio_path[0]), corpus.read_audio(b.audio_path[0]))


def test_a_word_does_not_depend_on_what_was_said_before():
    # espeak-ng carries state between syntheses; the engine must not let it through
    from reprise.speech.tts import Espeak

    engine = Espeak.get()
    first = engine.synth("seven", "en-us+m1", 175, 50)
    utterance = engine.synth_words(["turn", "off", "seven"], "en+f5", 160, 40)
    for w in ["alpha", "bravo", "charlie", "open the door"]:
        engine.synth(w, "en-gb-x-rp+f2", 190, 60)
    assert np.array_equal(engine.synth("seven", "en-us+m1", 175, 50), first)
    again = engine.synth_words(["turn", "off", "seven"], "en+f5", 160, 40)
    assert all(np.array_equal(a, b) for a, b in zip(utterance, again, strict=True))
    with pytest.raises(DataError, match="voice"):
        engine.synth("seven", "xx-nowhere", 175, 50)


def test_a_breathy_voice_is_the_same_in_every_process():
    """f-variant voices add noise from rand(), which espeak-ng seeds from the clock (whole
    seconds): two processes a second apart must still synthesise the same samples."""
    import subprocess
    import sys
    import time

    code = (
        "import hashlib; from reprise.speech.tts import Espeak; x = Espeak.get()"
        ".synth('seven open', 'en+f5', 175, 50); print(hashlib.md5(x.tobytes()).hexdigest())"
    )
    runs = []
    for _ in range(2):
        runs.append(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True))
        time.sleep(1.1)
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout


def test_bad_sizes_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="domain"):
        corpus.build(tmp_path / "c", {"train": {"cmd": 2}})
    with pytest.raises(ConfigError, match="splits"):
        corpus.build(tmp_path / "c", {"valid": {"command": 2}})
    assert speech_main(["corpus", "--out", str(tmp_path / "c"), "--sizes", "{"]) == 2
    assert not (tmp_path / "c").exists()  # no partial output


def test_cli_builds_the_corpus(tmp_path):
    sizes = json.dumps({"dev": {"command": 1}})
    assert speech_main(["corpus", "--out", str(tmp_path / "c"), "--sizes", sizes]) == 0
    assert len(corpus.load_manifest(tmp_path / "c")) == 1


def test_fbank_shape_and_cmvn(tiny):
    df = corpus.load_manifest(tiny)
    feats = [features.fbank(corpus.read_audio(p)) for p in df.audio_path]
    for f, d in zip(feats, df.duration, strict=True):
        assert f.shape[1] == 80 and abs(f.shape[0] - d / 0.01) <= 2
    cmvn = features.CMVN.fit(feats)
    z = np.concatenate([cmvn(f) for f in feats])
    assert np.allclose(z.mean(0), 0, atol=1e-4) and np.allclose(z.std(0), 1, atol=1e-3)


def test_token_times_follow_the_words(tiny):
    df = corpus.load_manifest(tiny)
    r = df.iloc[0]
    for tok in (Tokenizer("char"), Tokenizer.train(df.text.tolist(), "unigram", 40)):
        t = token_end_times(tok, list(r.words), list(r.starts), list(r.ends))
        assert len(t) == len(tok.encode(r.text)) and np.all(np.diff(t) >= 0)
        assert t[-1] == pytest.approx(r.ends[-1])


# --- LibriSpeech, on a tiny tarball in the official layout ----------------------------------
def _tarball(path, subset="dev-clean", rate=16000, flac=None):
    """A LibriSpeech tarball of two utterances; `flac`: their bytes (default: silence at
    `rate` Hz)."""
    if flac is None:
        buf = io.BytesIO()
        sf.write(buf, np.zeros(rate // 2, np.float32), rate, format="FLAC")
        flac = buf.getvalue()
    trans = b"84-121123-0000 GO DO YOU HEAR\n84-121123-0001 BUT IN LESS THAN FIVE MINUTES\n"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in [
            (f"LibriSpeech/{subset}/84/121123/84-121123.trans.txt", trans),
            (f"LibriSpeech/{subset}/84/121123/84-121123-0000.flac", flac),
            (f"LibriSpeech/{subset}/84/121123/84-121123-0001.flac", flac),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_librispeech_tarball_to_manifest(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    _tarball(raw / "dev-clean.tar.gz")
    from reprise.data.download import digest

    monkeypatch.setitem(librispeech.MD5, "dev-clean", digest(raw / "dev-clean.tar.gz"))
    al = tmp_path / "align" / "84" / "121123"
    al.mkdir(parents=True)
    (al / "84-121123.alignment.txt").write_text(
        '84-121123-0000 ",GO,DO,,YOU,HEAR," "0.2,0.4,0.6,0.7,0.9,1.1,1.3"\n'
    )
    librispeech.prepare(raw, tmp_path / "ls", ["dev-clean"], tmp_path / "align")
    df = corpus.load_manifest(tmp_path / "ls")
    assert df.id.tolist() == ["84-121123-0000", "84-121123-0001"]
    assert df.text[0] == "go do you hear" and set(df.split) == {"dev"}
    r = df.iloc[0]
    assert list(r.starts) == [0.2, 0.4, 0.7, 0.9] and list(r.ends) == [0.4, 0.6, 0.9, 1.1]
    assert r.aligned and not df.aligned[1] and df.duration[1] == pytest.approx(0.5)
    assert corpus.read_audio(r.audio_path).shape == (8000,)


def test_librispeech_refuses_bad_archives(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    with pytest.raises(DataError, match="missing"):
        librispeech.prepare(raw, tmp_path / "ls", ["dev-clean"])
    _tarball(raw / "dev-clean.tar.gz")
    with pytest.raises(DataError, match="md5"):  # not the official file
        librispeech.prepare(raw, tmp_path / "ls", ["dev-clean"])
    with pytest.raises(DataError, match="no subset"):
        librispeech.raw_file("dev-noisy")
    assert not (tmp_path / "ls").exists()


def test_stored_fbanks_are_what_readers_would_compute(tiny, tmp_path):
    df = corpus.load_manifest(tiny)
    for p in df.audio_path:
        x = corpus.read_audio(p)
        assert features.fbank_path(p).is_file()
        assert np.array_equal(features.fbank_of(p, x), features.fbank(x))
        assert np.array_equal(features.fbank_of(p), features.fbank(x))  # audio not passed
    # a corpus without stored fbanks (LibriSpeech's) gets them computed
    x = corpus.read_audio(df.audio_path[0])
    assert np.array_equal(features.fbank_of(tmp_path / "other.flac", x), features.fbank(x))
    (tmp_path / "copy.flac").write_bytes(Path(df.audio_path[0]).read_bytes())
    assert np.array_equal(features.fbank_of(tmp_path / "copy.flac"), features.fbank(x))


def test_a_damaged_stored_fbank_is_named(tiny, tmp_path):
    src = corpus.load_manifest(tiny).audio_path[0]
    audio = tmp_path / "a.flac"
    audio.write_bytes(Path(src).read_bytes())
    x = corpus.read_audio(audio)
    np.save(features.fbank_path(audio), features.fbank(x)[:-1])  # one frame short
    for samples in (x, None):  # the frame count from the samples, or from the file
        with pytest.raises(DataError, match=r"a\.fbank-.*expected a float32"):
            features.fbank_of(audio, samples)
    features.fbank_path(audio).write_bytes(b"not numpy")
    with pytest.raises(DataError, match="not a stored fbank"):
        features.fbank_of(audio, x)
