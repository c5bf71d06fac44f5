"""Data steps of the speech core, for rules (no paper involved):

    python -m reprise.speech corpus --out DIR --sizes JSON [--seed N] [--workers N] [--synth JSON]
    python -m reprise.speech librispeech --raw DIR --out DIR [--subsets a,b] [--alignments DIR]
    python -m reprise.speech librispeech-fetch SUBSET --raw DIR
    python -m reprise.speech train --corpus DIR --config JSON --out FILE [--threads N] [--seed N]
                                   [--start WARMUP]
    python -m reprise.speech warmup --corpus DIR --config JSON --out FILE [--threads N] [--seed N]

`train` is the model zoo's one training job (rule speech_model): the papers that share a
model configuration share its checkpoint. `warmup` runs only a config's CTC-only first epochs
(rule speech_warmup), which models differing only in their transducer loss share
(zoo.shared_warmups); `train --start` continues from it to the same checkpoint a training
from scratch writes. Both resume after a kill from `<out>.resume/`.

Bad input stops with one line `reprise.speech: error: ...` and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from reprise.errors import ReproError

log = logging.getLogger("reprise")


def main(argv: list[str] | None = None) -> int:
    from reprise.runtime import configure_logging

    p = argparse.ArgumentParser(prog="python -m reprise.speech")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("corpus", help="synthesise the two-domain corpus")
    c.add_argument("--out", required=True)
    c.add_argument("--sizes", required=True, help='{"train": {"command": 200, ...}, ...}')
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--workers", type=int, default=1)
    c.add_argument("--synth", default="{}", help='ranges, e.g. {"dictation_words": [10, 14]}')
    ls = sub.add_parser("librispeech", help="LibriSpeech tarballs -> manifest + audio")
    ls.add_argument("--raw", required=True, help="folder with the official .tar.gz files")
    ls.add_argument("--out", required=True)
    ls.add_argument("--subsets", default="train-clean-100,dev-clean,test-clean")
    ls.add_argument("--alignments", default=None, help="folder of published word alignments")
    lf = sub.add_parser("librispeech-fetch", help="download + verify one official tarball")
    lf.add_argument("subset")
    lf.add_argument("--raw", required=True)
    training = argparse.ArgumentParser(add_help=False)
    training.add_argument("--corpus", required=True, help="a corpus folder (manifest.parquet)")
    training.add_argument("--config", required=True, help="speech config JSON (train.DEFAULTS)")
    training.add_argument("--out", required=True, help="the checkpoint to write (.pt)")
    training.add_argument("--threads", type=int, default=1)
    training.add_argument("--seed", type=int, default=0)
    training.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    t = sub.add_parser("train", parents=[training], help="train one transducer of the zoo")
    t.add_argument("--start", help="a warm-up (`warmup`) of this config to continue from")
    sub.add_parser("warmup", parents=[training], help="only the CTC epochs, to share")
    args = p.parse_args(argv)
    configure_logging()
    try:
        if args.cmd == "corpus":
            from reprise.speech import corpus

            try:
                sizes = json.loads(args.sizes)
            except json.JSONDecodeError as e:
                raise ReproError(f"--sizes is not valid JSON: {e}") from None
            if not isinstance(sizes, dict):
                raise ReproError("--sizes must be a JSON object {split: {domain: count}}")
            try:
                synth = json.loads(args.synth)
            except json.JSONDecodeError as e:
                raise ReproError(f"--synth is not valid JSON: {e}") from None
            if not isinstance(synth, dict):
                raise ReproError("--synth must be a JSON object {range name: [low, high]}")
            cfg = corpus.SynthConfig.from_dict(synth)
            corpus.build(args.out, sizes, args.seed, cfg, workers=max(1, args.workers))
        elif args.cmd in ("train", "warmup"):
            train_model(args, warmup=args.cmd == "warmup")
        elif args.cmd == "librispeech":
            from reprise.speech import librispeech

            librispeech.prepare(args.raw, args.out, args.subsets.split(","), args.alignments)
        else:
            from reprise.speech import librispeech

            librispeech.fetch(args.subset, args.raw)
    except ReproError as e:
        print(f"reprise.speech: error: {e}", file=sys.stderr)
        return 2
    return 0


def train_model(args, warmup: bool = False) -> None:
    """One zoo model (rule speech_model), from scratch or from the `--start` warm-up; with
    `warmup`, only its CTC-only first epochs (rule speech_warmup), whose state the models
    that share them start from. Resume state lives beside the output until it is written."""
    from pathlib import Path

    from reprise.io import check_writable, save_checkpoint
    from reprise.resume import Resume, fingerprint, resume_dir
    from reprise.runtime import Runtime
    from reprise.speech import train, zoo

    try:
        cfg = json.loads(args.config)
    except json.JSONDecodeError as e:
        raise ReproError(f"--config is not valid JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise ReproError("--config must be a JSON object of speech config sections")
    ctc_epochs = train.merge(cfg)["train"]["ctc_epochs"]  # unknown keys stop here, unworked
    if warmup and ctc_epochs == 0:
        raise ReproError("warmup: the config has no CTC-only epochs (train.ctc_epochs) to share")
    out = Path(args.out)
    manifest = Path(args.corpus) / "manifest.parquet"
    if not manifest.is_file():
        raise ReproError(f"--corpus {args.corpus}: no manifest.parquet (build it: speech_corpus)")
    check_writable(out)
    import torch  # noqa: F401  (before setup: it seeds the loaded torch)

    resume = Resume(resume_dir(out), fingerprint(cfg, args.seed, [manifest]))
    shared = fingerprint(zoo.warmup_config(cfg), args.seed, [manifest])
    start = _warmup_state(args.start, shared) if getattr(args, "start", None) else None
    rt = Runtime(args.threads, args.seed, args.device, resume).setup()
    if start is not None and rt.resume.load() is None:
        rt.resume.save(start)  # as if this training had run the warm-up's epochs itself
    t0, c0 = time.perf_counter(), time.process_time()
    until = ctc_epochs if warmup else None
    bundle = train.train(args.corpus, cfg, resume=rt.resume, device=rt.device, until=until)
    save_checkpoint(out, {"warmup": shared, "state": rt.resume.load()} if warmup else bundle)
    rt.resume.clear()
    # the step logs' closing line (benchmarks/bench_smoke.py reads it): "speech <model> done"
    log.info(
        "speech %s done in %.1f s (cpu %.1f s)",
        f"warmup-{out.stem}" if warmup else out.stem,
        time.perf_counter() - t0,
        time.process_time() - c0,
    )


def _warmup_state(path, key: str) -> dict:
    """The training state a warm-up file holds, if it was warmed up for this very config's
    CTC epochs (the same recipe, seed and corpus); one error otherwise."""
    from reprise.errors import CheckpointError
    from reprise.io import load_checkpoint

    saved = load_checkpoint(path, what="speech warm-up")
    if not isinstance(saved, dict) or not {"warmup", "state"} <= saved.keys():
        raise CheckpointError(
            f"--start {path} is not a speech warm-up; expected the file "
            "`python -m reprise.speech warmup` writes"
        )
    if saved["warmup"] != key:
        raise CheckpointError(
            f"--start {path} is the warm-up of another config, seed or corpus than this "
            "model's CTC epochs; expected one of the same recipe (zoo.warmup_config)"
        )
    return saved["state"]


if __name__ == "__main__":
    from reprise.runtime import end_process
    from reprise.stepserver import run_remote

    code = run_remote(__spec__.name, sys.argv[1:])  # in the warm step server, if one runs
    end_process(main() if code is None else code)
