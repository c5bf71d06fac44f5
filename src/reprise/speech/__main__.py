"""Data steps of the speech core, for rules (no paper involved):

    python -m reprise.speech corpus --out DIR --sizes JSON [--seed N] [--workers N]
    python -m reprise.speech librispeech --raw DIR --out DIR [--subsets a,b] [--alignments DIR]
    python -m reprise.speech librispeech-fetch SUBSET --raw DIR

Bad input stops with one line `reprise.speech: error: ...` and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from reprise.errors import ReproError


def main(argv: list[str] | None = None) -> int:
    from reprise.runtime import configure_logging

    p = argparse.ArgumentParser(prog="python -m reprise.speech")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("corpus", help="synthesise the two-domain corpus")
    c.add_argument("--out", required=True)
    c.add_argument("--sizes", required=True, help='{"train": {"command": 200, ...}, ...}')
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--workers", type=int, default=1)
    ls = sub.add_parser("librispeech", help="LibriSpeech tarballs -> manifest + audio")
    ls.add_argument("--raw", required=True, help="folder with the official .tar.gz files")
    ls.add_argument("--out", required=True)
    ls.add_argument("--subsets", default="train-clean-100,dev-clean,test-clean")
    ls.add_argument("--alignments", default=None, help="folder of published word alignments")
    lf = sub.add_parser("librispeech-fetch", help="download + verify one official tarball")
    lf.add_argument("subset")
    lf.add_argument("--raw", required=True)
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
            corpus.build(args.out, sizes, args.seed, workers=max(1, args.workers))
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


if __name__ == "__main__":
    sys.exit(main())
