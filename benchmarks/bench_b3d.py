"""B3D query throughput: one batched oracle call per NES step against a per-query loop.

    python benchmarks/bench_b3d.py [--threads 1] [--rounds 3] [--loop-queries 2000]

For each population model (the smoke MLP on 8×8 digits, the paper CNN on 32×32 colour
images) and the same weights, it times
- batched: one NES step of B3D for all K classes (K·k·B stamped queries in one forward pass
  through reprise.papers.b3d.reverse.nes_grad, estimate included);
- loop: the same kind of query, one input per forward call of the plain model (the classic
  black-box attack loop), on `--loop-queries` queries.
Both report queries per second (median over rounds, wall and process CPU); the ratio is
batched / loop. Random inputs: throughput does not depend on pixel values.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from reprise.papers.b3d.model import Group, build
from reprise.papers.b3d.population import stamp
from reprise.papers.b3d.reverse import Oracle, ReverseConfig, nes_grad

MODELS = {
    "mlp 1x8x8 (smoke)": {"arch": "mlp", "in_channels": 1, "size": 8, "width": 32},
    "cnn 3x32x32 (paper)": {"arch": "cnn", "in_channels": 3, "size": 32, "width": 16},
}


def timed(f, rounds):
    f()  # warm-up
    wall, cpu = [], []
    for _ in range(rounds):
        t, c = time.perf_counter(), time.process_time()
        f()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def bench(spec: dict, cfg: ReverseConfig, rounds: int, loop_queries: int) -> dict:
    spec = {**spec, "num_classes": 10}
    group = Group(spec, [0])
    single = build(**spec)
    single.load_state_dict(group.member(0))
    k, c, s = spec["num_classes"], spec["in_channels"], spec["size"]
    x = torch.rand(1, cfg.batch, c, s, s)
    theta_m, theta_p = torch.zeros(1, k, s, s), torch.zeros(1, k, c, s, s)
    lam, gen = torch.full((1, k), cfg.lambda0), torch.Generator().manual_seed(0)
    per_step = k * cfg.samples * cfg.batch

    def batched():
        nes_grad(Oracle(group), x, theta_m, theta_p, lam, cfg, gen)

    masks = torch.bernoulli(torch.full((loop_queries, s, s), 0.5), generator=gen)
    pats = torch.rand(loop_queries, c, s, s, generator=gen)
    queries = stamp(x[0, torch.arange(loop_queries) % cfg.batch], masks, pats)

    @torch.no_grad()
    def loop():
        for q in queries:
            single(q[None]).softmax(-1)

    (bw, bc), (lw, lc) = timed(batched, rounds), timed(loop, rounds)
    return {
        "batched q/s": per_step / bw,
        "loop q/s": loop_queries / lw,
        "ratio (wall)": (per_step / bw) / (loop_queries / lw),
        "ratio (cpu)": (per_step / bc) / (loop_queries / lc),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--loop-queries", type=int, default=2000)
    ap.add_argument("--samples", type=int, default=10, help="NES draws k per step")
    ap.add_argument("--batch", type=int, default=16, help="inputs B per step")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = ReverseConfig(samples=args.samples, batch=args.batch)
    print(f"threads {args.threads}, k={cfg.samples}, B={cfg.batch}, K=10 classes per step")
    for name, spec in MODELS.items():
        r = bench(spec, cfg, args.rounds, args.loop_queries)
        print(
            f"{name:22s} "
            + "  ".join(
                f"{key} {v:,.0f}" if "q/s" in key else f"{key} {v:.1f}x" for key, v in r.items()
            )
        )


if __name__ == "__main__":
    main()
