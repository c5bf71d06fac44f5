"""The bad-input table: every way a user can hand reprise bad input, one row per case.

A row is (id, what is run, the expected message fragment). What is run is either the argv
of `reprise ...` (run in-process) or a call on the test's folder (a loader, as a step calls
it). Every row must end in one line `reprise: error: ...` (exit status 2) or one ReproError,
containing the fragment, never advising to turn off the checkpoint protection, and leaving
no file in the outputs' folder. Paths in argv: {in} holds the bad files `bad_files` writes,
{out} is where outputs go, {ro} is a read-only folder. A new case is one line.
"""

import copy
import json
import os
import pickle
import random
import re
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from reprise import cli, config, io, papers
from reprise.claims import validated_config
from reprise.data.digits import prepare
from reprise.data.download import digest
from reprise.data.prepared import load_split
from reprise.errors import ReproError
from reprise.models import build_model, load_model
from reprise.papers.flexit.runs import check_runs
from reprise.resume import Resume
from reprise.speech import librispeech
from reprise.speech.corpus import load_manifest, read_audio
from reprise.speech.train import load_file
from reprise.speech.zoo import check_models
from reprise.yamlconf import deep_merge
from tests.conftest import run
from tests.test_io import RunsCode
from tests.test_speech_corpus import _tarball

SMOKE = validated_config(yaml.safe_load(Path("config/config.yaml").read_text()))
ZOO = yaml.safe_load(Path("config/speech.yaml").read_text())["smoke"]["models"]


def step(paper, name, params=None, inputs=(), outputs=None, drop=()):
    """argv of `reprise <paper> <name>`: the shipped smoke params of its sections (or
    `params`), the given inputs, and each declared output under {out} (or `outputs`)."""
    declared = papers.steps(paper)[name]
    if params is None:
        shipped = {**SMOKE.scale_section(paper), "plot": SMOKE.main["plot"]}
        params = {s: shipped[s] for s in declared.sections if s in shipped}
    argv = [paper, name, "--params", json.dumps(params)]
    for key, path in inputs:
        argv += ["--input", f"{key}={path}"]
    if outputs is None:
        outputs = [(n, f"{{out}}/{n}.x") for n in declared.output_names if n not in drop]
    for key, path in outputs:
        argv += ["--output", f"{key}={path}"]
    return argv


def calibrate(gold="{in}/gold.h5", **kw):
    return step("cecu2si2", "calibrate", inputs=[("gold", gold)], **kw)


def attack_te(model):
    return step("memorization", "attack_te", inputs=[("models", model), ("test", "{in}/test.pt")])


def override(paper, section):
    return ["validate", "--set", f"overrides.{paper}.smoke.{section}"]


def decode(model):
    """flexit's decode step on one run, reading the speech model `model`."""
    flexit = SMOKE.scale_section("flexit")
    params = {"runs": {"baseline": flexit["runs"]["baseline"]}, "decode": flexit["decode"]}
    return step("flexit", "decode", params, inputs=[("model", model), ("corpus", "{in}")])


def flexit_runs(change: dict, drop: str | None = None):
    """flexit's shipped smoke lists with `change` merged (and run `drop` removed), checked
    against the speech zoo as the workflow checks them."""

    def call(d):
        section = deep_merge(copy.deepcopy(SMOKE.scale_section("flexit")), change)
        section["runs"].pop(drop, None)
        check_runs(section, ZOO, "smoke")

    return call


def libri(raw: str):
    """LibriSpeech prepared from the tarball {in}/<raw>/dev-clean.tar.gz into {out}/ls (its
    checksum taken as the official one)."""

    def call(d):
        tarball = d / "in" / raw / "dev-clean.tar.gz"
        with mock.patch.dict(librispeech.MD5, {"dev-clean": digest(tarball)}):
            librispeech.prepare(tarball.parent, d / "out" / "ls", ["dev-clean"])

    return call


IMPLEMENTED = ", ".join(papers.available())

ROWS = [
    # 1. a step without (all of) its config sections
    ("params-missing", calibrate(params={}), "--params lacks section 'calibration'"),
    ("params-extra", calibrate(params={"crystal": {}}), "does not read 'crystal'"),
    ("params-not-json", [*calibrate()[:3], "{oops", *calibrate()[4:]], "not valid JSON"),
    ("params-a-list", [*calibrate()[:3], "[1]", *calibrate()[4:]], "must be a JSON object"),
    # 2, 3. outputs that cannot be written, refused before the step runs
    (
        "output-read-only",
        calibrate(outputs=[("fermi", "{ro}/f.h5"), ("edges", "{ro}/e.pq")]),
        "directory {ro} is not writable",
    ),
    (
        "output-is-a-dir",
        calibrate(outputs=[("fermi", "{in}"), ("edges", "{out}/e.pq")]),
        "output {in} is an existing directory",
    ),
    (
        "output-under-a-file",
        calibrate(outputs=[("fermi", "{in}/rand.pt/f"), ("edges", "{out}/e")]),
        "{in}/rand.pt is not a directory",
    ),
    ("output-missing", calibrate(drop=("edges",)), "missing --output edges=PATH"),
    ("output-unknown", calibrate() + ["--output", "extra={out}/x"], "unknown --output 'extra'"),
    ("input-missing", calibrate(gold="{in}/none.h5"), "{in}/none.h5 does not exist"),
    ("arpes-not-hdf5", calibrate(gold="{in}/rand.pt"), "is not a readable NetCDF4/HDF5 file"),
    # 5, 6. checkpoints, through a step and through the loaders
    ("ckpt-code-step", attack_te("{in}/evil.pt"), "{in}/evil.pt was refused"),
    ("ckpt-random-step", attack_te("{in}/rand.pt"), "{in}/rand.pt is not a checkpoint: not a zip"),
    ("ckpt-wrong-shape", attack_te("{in}/shape.pt"), "{in}/shape.pt does not fit its recorded"),
    ("ckpt-code", lambda d: io.load_checkpoint(d / "in/evil.pt"), "GLOBAL posix.system"),
    ("ckpt-code-legacy", lambda d: io.load_checkpoint(d / "in/legacy.pt"), "was refused"),
    ("ckpt-plain-pickle", lambda d: io.load_checkpoint(d / "in/plain.pkl"), "was refused"),
    ("ckpt-text", lambda d: load_model(d / "in/gold.h5"), "is not a checkpoint"),
    ("ckpt-empty", lambda d: load_model(d / "in/empty.pt"), "empty.pt is empty (0 bytes)"),
    ("ckpt-truncated", lambda d: load_model(d / "in/trunc.pt"), "truncated or corrupt?"),
    ("ckpt-a-list", lambda d: load_model(d / "in/list.pt"), "holds a list, expected a dict"),
    ("ckpt-no-model", lambda d: load_model(d / "in/state.pt"), "holds no model"),
    ("ckpt-a-dir", lambda d: load_model(d / "in"), "checkpoint {in} is a directory"),
    ("ckpt-missing", lambda d: load_model(d / "in/none.pt"), "none.pt does not exist"),
    # 10. untrusted resume state stops the step (reprise.resume)
    ("resume-code", lambda d: Resume(d / "in/resume", "k").load(), "resume/state.pt was refused"),
    ("resume-random", lambda d: Resume(d / "in/rnd", "k").load(), "delete {in}/rnd to start the"),
    # dataset files
    ("split-random", lambda d: load_split(d / "in/rand.pt"), "is not a prepared dataset split"),
    ("split-code", lambda d: load_split(d / "in/evil.pt"), "prepared dataset split {in}/evil"),
    ("split-foreign", lambda d: load_split(d / "in/state.pt"), "has no 'x' entry"),
    ("split-missing", lambda d: load_split(d / "in/none.pt"), "(run its prepare rule)"),
    ("dataset-unknown", ["data", "prepare", "mnist", "--root", "{out}"], "known datasets"),
    ("dataset-none", ["data", "prepare", "--root", "{out}"], "needs a DATASET"),
    # 7, 8, 9. config: the file a value came from, the key, what can run
    ("config-missing", ["validate", "--config", "{in}/none.yaml"], "{in}/none.yaml does not exist"),
    ("config-not-yaml", ["validate", "--config", "{in}/bad.yaml"], "{in}/bad.yaml is not valid"),
    (
        "config-file-override",
        ["validate", "--config", "{in}/over.yaml"],
        "{in}/over.yaml (overrides.cecu2si2) over config/papers/cecu2si2.yaml: smoke.calib",
    ),
    (
        "config-set-override",
        override("cecu2si2", "calibration.degree=-1"),
        "--set (overrides.cecu2si2) over config/papers/cecu2si2.yaml",
    ),
    (
        "config-paper-dir",
        ["validate", "--set", "paper_config_dir={in}/papers"],
        "{in}/papers/cecu2si2.yaml: title = 3",
    ),
    (
        "config-unknown-key",
        override("cecu2si2", "calibration.chanel_bin=3"),
        "unknown key 'smoke.calibration.chanel_bin'",
    ),
    (
        "config-unknown-paper",
        ["validate", "--set", "papers=[nosuchpaper]"],
        f"not implemented in this checkout; implemented: {IMPLEMENTED}",
    ),
    ("config-not-a-paper", ["validate", "--set", "papers=[nope]"], f"implemented: {IMPLEMENTED}"),
    ("config-papers-not-list", ["validate", "--set", "papers=rejection"], 'papers = "rejection"'),
    ("config-seeds-empty", ["validate", "--set", "seeds=[]"], "seeds = []"),
    ("config-seeds-repeat", ["validate", "--set", "seeds=[1, 1]"], "uniqueItems"),
    ("config-runs-empty", override("rejection", "runs=[]"), "smoke.runs = []"),
    ("config-runs-unknown", override("rejection", "runs=[nope]"), 'smoke.runs.0 = "nope"'),
    ("config-attack-bn", override("rejection", "attack.bn=batch"), 'smoke.attack.bn = "batch"'),
    ("config-json-bad", ["validate", "--config-json", "{x"], "--config-json is not valid JSON"),
    ("config-bad-scale", ["validate", "--set", "scale=huge"], 'scale = "huge"'),
    # the new papers' config values of the wrong type
    ("autoda-batch-type", override("autoda", "search.batch=many"), 'smoke.search.batch = "many"'),
    ("b3d-chunks-type", override("b3d", "chunks=0"), "smoke.chunks = 0 is not allowed; expected a"),
    ("b3d-per-chunk-type", override("b3d", "population.per_chunk=four"), "expected a value of"),
    ("partseg-steps-type", override("partseg", "train.steps=1.5"), "smoke.train.steps = 1.5"),
    ("partseg-lr-type", override("partseg", "train.lr=fast"), "expected a value of type number"),
    ("libre-epochs-type", override("libre", "finetune.epochs=[1]"), "smoke.finetune.epochs = [1]"),
    ("poisoning-steps-type", override("poisoning", "online.max_steps=two"), "online.max_steps"),
    ("poisoning-rounds-neg", override("poisoning", "federated.rounds=-1"), "expected integer >= 0"),
    ("flexit-model-type", override("flexit", "runs.baseline.model=7"), "runs.baseline.model = 7"),
    ("upl-chunk-zero", override("upl", "runs.base.segment=0"), "smoke.runs.base.segment = 0"),
    ("upl-silence-type", override("upl", "endpointers.vad300=soon"), 'vad300 = "soon" is not'),
    # config lists naming what is not there
    (
        "autoda-target-unknown",
        override("autoda", "targets=[nope]"),
        'smoke.targets.0 = "nope" is not allowed; expected a key of smoke.models',
    ),
    (
        "libre-detector-unknown",
        override("libre", "detectors=[libre, nope]"),
        'smoke.detectors.1 = "nope" is not allowed; expected a key of smoke.methods',
    ),
    (
        "libre-transfer-unknown",
        override("libre", "evaluation.transfer=[nope]"),
        "expected a key of smoke.evaluation.attacks",
    ),
    (
        "partseg-tsne-run-unknown",
        override("partseg", "evaluation.tsne_run=nope"),
        'smoke.evaluation.tsne_run = "nope" is not allowed; expected a key of smoke.runs',
    ),
    (
        "flexit-run-model-unknown",
        flexit_runs({"runs": {"baseline": {"model": "nope"}}}),
        "runs.baseline decodes model 'nope'; there is no model 'nope' in config/speech.yaml",
    ),
    (
        "flexit-sweep-run-unknown",
        flexit_runs({"sweeps": {"command_br": {"runs": ["flexit", "nope"]}}}),
        "sweeps.command_br names run 'nope', which is not in runs",
    ),
    ("flexit-no-baseline", flexit_runs({}, drop="baseline"), "runs needs an entry 'baseline'"),
    (
        "upl-run-model-unknown",
        lambda d: check_models("upl.yaml", {"base": {"model": "nope", "segment": 2}}, ZOO, "smoke"),
        "upl.yaml: runs.base decodes model 'nope'; there is no model 'nope'",
    ),
    # speech models, through flexit's decode step and the loader
    ("speech-ckpt-random", decode("{in}/rand.pt"), "{in}/rand.pt is not a speech model: not a zip"),
    ("speech-ckpt-code", decode("{in}/evil.pt"), "speech model {in}/evil.pt was refused"),
    ("speech-ckpt-foreign", decode("{in}/shape.pt"), "{in}/shape.pt is not a speech transducer"),
    ("speech-ckpt-config", lambda d: load_file(d / "in/speech.pt"), "does not fit its recorded"),
    # audio and the corpus
    ("audio-not-audio", lambda d: read_audio(d / "in/gold.h5"), "is not a readable audio file"),
    ("audio-8khz", lambda d: read_audio(d / "in/8k.wav"), "expected mono 16000 Hz audio, got 8000"),
    ("manifest-not-parquet", lambda d: load_manifest(d / "in/gold.h5"), "is not a speech manifest"),
    ("manifest-missing", lambda d: load_manifest(d / "in/none"), "build the speech corpus first"),
    ("librispeech-not-audio", libri("ls_text"), "84-121123-0000.flac is not readable audio"),
    ("librispeech-8khz", libri("ls_8k"), "84-121123-0000.flac is 8000 Hz, expected 16000"),
]


@pytest.fixture(scope="module")
def digits_test(tmp_path_factory):
    path = tmp_path_factory.mktemp("digits") / "test.pt"
    prepare(path.parent, "test", path)
    return path


def bad_files(d: Path, digits_test: Path) -> dict:
    """The bad inputs the rows name, and the folders {in}, {out}, {ro}."""
    bad, out, ro = d / "in", d / "out", d / "ro"
    for folder in (bad, out, ro, bad / "resume", bad / "rnd", bad / "papers"):
        folder.mkdir()
    (bad / "rand.pt").write_bytes(random.Random(0).randbytes(4096).replace(b"\x80", b"\x81"))
    (bad / "rnd" / "state.pt").write_bytes((bad / "rand.pt").read_bytes())
    (bad / "gold.h5").write_text("not an ARPES file\n")
    (bad / "empty.pt").write_bytes(b"")
    (bad / "bad.yaml").write_text("scale: [smoke\n")
    (bad / "test.pt").symlink_to(digits_test)
    payload = {"spec": {}, "state_dict": {}, "x": RunsCode(d / "ran")}
    torch.save(payload, bad / "evil.pt")
    torch.save(payload, bad / "legacy.pt", _use_new_zipfile_serialization=False)
    (bad / "plain.pkl").write_bytes(pickle.dumps(payload))
    torch.save({"fingerprint": "k", "state": payload}, bad / "resume" / "state.pt")
    torch.save([1, 2], bad / "list.pt")
    io.save_checkpoint(bad / "state.pt", {"fingerprint": "k", "state": {}})
    (bad / "trunc.pt").write_bytes((bad / "state.pt").read_bytes()[:200])
    model = build_model("small_cnn", num_classes=10)
    weights = {
        k: torch.zeros(3) if k.endswith("weight") else v for k, v in model.state_dict().items()
    }
    io.save_checkpoint(bad / "shape.pt", {"spec": model.spec, "state_dict": weights})
    over = {
        "papers": ["cecu2si2"],
        "overrides": {"cecu2si2": {"smoke": {"calibration": {"degree": -1}}}},
    }
    (bad / "over.yaml").write_text(
        yaml.safe_dump({**yaml.safe_load(Path("config/config.yaml").read_text()), **over})
    )
    for src in Path("config/papers").glob("*.yaml"):
        text = src.read_text()
        if src.stem == "cecu2si2":
            text = re.sub(r"^title:.*$", "title: 3", text, count=1, flags=re.M)
        (bad / "papers" / src.name).write_text(text)
    sf.write(bad / "8k.wav", np.zeros(800, np.float32), 8000)
    for name, kw in (("ls_text", {"flac": b"not audio\n"}), ("ls_8k", {"rate": 8000})):
        (bad / name).mkdir()
        _tarball(bad / name / "dev-clean.tar.gz", **kw)
    speech = {"model": {}, "config": {}, "model_config": {"nope": 1}, "tokenizer": {}, "cmvn": {}}
    io.save_checkpoint(bad / "speech.pt", speech)
    ro.chmod(0o555)
    return {"in": str(bad), "out": str(out), "ro": str(ro)}


def fill(text: str, where: dict) -> str:
    """{in}, {out}, {ro} replaced (not str.format: --params holds JSON braces)."""
    for key, path in where.items():
        text = text.replace("{" + key + "}", path)
    return text


def _read_only(monkeypatch, folder: str) -> None:
    """Permission bits do not bind root (CI containers often run as root): there, make
    os.access report the read-only folder as a non-root user would see it."""
    if os.geteuid() == 0:
        access = os.access
        monkeypatch.setattr(
            os, "access", lambda p, mode: False if str(p) == folder else access(p, mode)
        )


@pytest.mark.parametrize("case, run, fragment", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_is_one_clear_error_and_no_output(
    tmp_path, capsys, monkeypatch, digits_test, case, run, fragment
):
    where = bad_files(tmp_path, digits_test)
    _read_only(monkeypatch, where["ro"])
    if callable(run):
        with pytest.raises(ReproError) as e:
            run(tmp_path)
        message = str(e.value)
    else:
        assert cli.main([fill(a, where) for a in run]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("reprise: error: "), err
        message = err[0]
    assert fill(fragment, where) in message, message
    assert "\n" not in message and "weights_only" not in message
    assert not (tmp_path / "ran").exists()  # no pickled code ran
    left = [p for f in ("out", "ro") for p in (tmp_path / f).rglob("*")]
    assert not left, f"{case} left {left}"


def test_every_step_refuses_missing_params(capsys):
    """Item 1 for every step of every paper: no --params is one error naming a section."""
    for paper in papers.available():
        for name, declared in papers.steps(paper).items():
            if not declared.sections:
                continue
            argv = step(paper, name, params={}, inputs=[(n, "x") for n in declared.input_names])
            assert cli.main([fill(a, {"out": "/nonexistent"}) for a in argv]) == 2, (paper, name)
            assert "--params lacks section" in capsys.readouterr().err, (paper, name)


def test_required_sections_are_the_schemas():
    """check_step_params refuses a missing section the paper's schema requires."""
    with pytest.raises(ReproError, match="lacks section 'calibration'"):
        config.check_step_params("cecu2si2", {}, ("calibration",))


def test_snakemake_names_the_configfile_a_bad_value_came_from(project_copy):
    """Item 7 through the workflow: the message names the --configfile, not the paper file."""
    bad = project_copy / "mine.yaml"
    bad.write_text(yaml.safe_dump({"overrides": {"rejection": {"smoke": {"runs": []}}}}))
    p = run(["snakemake", "-n", "--configfile", str(bad)], project_copy, check=False, merge=True)
    assert p.returncode != 0 and "Job stats" not in p.stdout
    assert f"{bad} (overrides.rejection) over config/papers/rejection.yaml: smoke.runs" in p.stdout
