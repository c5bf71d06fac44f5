"""Speed of reprise's RNN-T loss (forward and backward recursions: compiled loops on a CPU,
tensor steps over anti-diagonals on a GPU) against a straightforward per-cell loop (a
benchmark, never a test).

    python benchmarks/bench_rnnt.py [--batch 4 --frames 60 --tokens 20 --vocab 30] [--threads 1]
    python benchmarks/bench_rnnt.py --paper       # B=32, T=500, U=100, V=1000 (GPU)

All compute log P(y|x) from the same log-softmaxed lattice and backpropagate: reprise's loss
by its backward recursion (on a CPU both ways, compiled and anti-diagonal), the loop through
autograd. The time is forward + backward of the
recursion (the log-softmax is shared and timed apart). The loop is a Python double loop over
cells, per utterance: at paper sizes it runs on `--loop-batch` utterances and is scaled
linearly to the batch (said in the output). Medians over `--rounds`, alternating the two.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import torch

from reprise.speech.loss import forward_score, forward_score_loop, lattice


def timed(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--tokens", type=int, default=20)
    p.add_argument("--vocab", type=int, default=30)
    p.add_argument("--paper", action="store_true", help="B=32, T=500, U=100, V=1000")
    p.add_argument("--loop-batch", type=int, default=None, help="utterances the loop runs")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args()
    if a.paper:
        a.batch, a.frames, a.tokens, a.vocab = 32, 500, 100, 1000
        a.loop_batch = a.loop_batch or 1
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(a.batch, a.frames, a.tokens + 1, a.vocab, generator=g).to(dev)
    y = torch.randint(2, a.vocab, (a.batch, a.tokens), generator=g).to(dev)
    t_len = torch.full((a.batch,), a.frames, device=dev)
    u_len = torch.full((a.batch,), a.tokens, device=dev)
    nb = a.loop_batch or a.batch

    def run(score, b):
        x = logits[:b].detach().requires_grad_(True)
        blank, emit = lattice(x, y[:b])
        score(blank, emit, t_len[:b], u_len[:b]).sum().backward()

    cpu = dev.type == "cpu"
    diagonal = functools.partial(forward_score, compiled=False)
    compiled = functools.partial(forward_score, compiled=True)
    if cpu:
        run(compiled, 1)  # compile, or load numba's cache, before timing
    soft, vec, comp, loop = [], [], [], []
    for _ in range(a.rounds):
        soft.append(timed(lambda: lattice(logits, y), dev))
        vec.append(timed(lambda: run(diagonal, a.batch), dev))
        if cpu:
            comp.append(timed(lambda: run(compiled, a.batch), dev))
        loop.append(timed(lambda: run(forward_score_loop, nb), dev) * a.batch / nb)
    v, lo = statistics.median(vec), statistics.median(loop)
    print(f"device {dev}, threads {a.threads}; B={a.batch} T={a.frames} U={a.tokens} V={a.vocab}")
    print(f"log-softmax + gather (shared): {statistics.median(soft) * 1e3:.1f} ms")
    print(f"anti-diagonal recursions, fwd+bwd: {v * 1e3:.1f} ms per batch")
    if cpu:
        c = statistics.median(comp)
        print(f"compiled recursions (the CPU's default), fwd+bwd: {c * 1e3:.1f} ms per batch")
    scaled = f" (measured on {nb} utterance(s), scaled x{a.batch / nb:g})" if nb != a.batch else ""
    print(f"per-cell loop, fwd+bwd: {lo * 1e3:.1f} ms per batch{scaled}")
    also = f", compiled {lo / statistics.median(comp):.1f}x" if cpu else ""
    print(f"speed-up over the loop: anti-diagonal {lo / v:.1f}x{also}")


if __name__ == "__main__":
    main()
