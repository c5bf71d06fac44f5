"""Data steps of the speech core, for rules (no paper involved):

    python -m reprise.speech corpus --out DIR --sizes JSON [--seed N] [--workers N] [--synth JSON]
    python -m reprise.speech librispeech --raw DIR --out DIR [--subsets a,b] [--alignments DIR]
    python -m reprise.speech librispeech-fetch SUBSET --raw DIR
    python -m reprise.speech train --corpus DIR --config JSON --out FILE [--threads N] [--seed N]

`train` is the model zoo's one training job (rule speech_model): the papers that share a
model configuration share its checkpoint. It resumes after a kill from `<out>.resume/`.

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
    t = sub.add_parser("train", help="train one transducer of the model zoo")
    t.add_argument("--corpus", required=True, help="a corpus folder (manifest.parquet)")
    t.add_argument("--config", required=True, help="speech config JSON (see train.DEFAULTS)")
    t.add_argument("--out", required=True, help="the checkpoint to write (.pt)")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
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
        elif args.cmd == "train":
            train_model(args)
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


def train_model(args) -> None:
    """One zoo model: train with resume state beside the output, then write the bundle."""
    from pathlib import Path

    from reprise.io import check_writable, save_checkpoint
    from reprise.resume import Resume, fingerprint, resume_dir
    from reprise.runtime import Runtime
    from reprise.speech import train

    try:
        cfg = json.loads(args.config)
    except json.JSONDecodeError as e:
        raise ReproError(f"--config is not valid JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise ReproError("--config must be a JSON object of speech config sections")
    train.merge(cfg)  # unknown sections or keys stop here, before any work
    out = Path(args.out)
    manifest = Path(args.corpus) / "manifest.parquet"
    if not manifest.is_file():
        raise ReproError(f"--corpus {args.corpus}: no manifest.parquet (build it: speech_corpus)")
    check_writable(out)
    import torch  # noqa: F401  (before setup: it seeds the loaded torch)

    resume = Resume(resume_dir(out), fingerprint(cfg, args.seed, [manifest]))
    rt = Runtime(args.threads, args.seed, args.device, resume).setup()
    t0, c0 = time.perf_counter(), time.process_time()
    bundle = train.train(args.corpus, cfg, resume=rt.resume, device=rt.device)
    save_checkpoint(out, bundle)
    rt.resume.clear()
    # the step logs' closing line (benchmarks/bench_smoke.py reads it): "speech <model> done"
    log.info(
        "speech %s done in %.1f s (cpu %.1f s)",
        out.stem,
        time.perf_counter() - t0,
        time.process_time() - c0,
    )


if __name__ == "__main__":
    from reprise.runtime import end_process
    from reprise.stepserver import run_remote

    code = run_remote(__spec__.name, sys.argv[1:])  # in the warm step server, if one runs
    end_process(main() if code is None else code)
