"""Speed of the lockstep HopSkipJump (reprise.attacks.decision) against foolbox 3.3.4's and
ART 1.20.1's HopSkipJump (a benchmark, never a test).

    pip install -e ".[bench]"        # foolbox, eagerpy, adversarial-robustness-toolbox
    python benchmarks/bench_decision.py [--images 20] [--iterations 5] [--threads 1]

All three attack the same model (a small CNN trained for a few epochs on scikit-learn's
digits) on the same images from
the same starting points (found by reprise's procedure), with the same HSJA settings (L2,
γ = 1, 100 initial gradient samples, geometric step search). Each library runs
`--iterations` HSJA iterations; the model counts every image it is asked about, so queries
per image are exact for all three. reprise then runs to the same per-image query count.
Reported: queries per second, median L2 at that query count, and the speed ratios.

Two library quirks (foolbox 3.3.4, ART 1.20.1) explain differences in median L2:
- foolbox batched normalises the gradient estimates by the norm over the whole batch, so
  "foolbox/1" (one image per call) is the reference for the algorithm;
- ART's iteration is bisect, estimate, step: its result is the last step, not bisected
  back to the boundary, so it lies farther from x than the iterate it came from.
"""

from __future__ import annotations

import argparse
import time

import torch

from reprise.attacks.decision import Oracle, hop_skip_jump, start_points
from reprise.models import build_model
from reprise.runtime import set_threads


class Counting(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.rows = model, 0

    def forward(self, x):
        self.rows += len(x)
        return self.model(x.float())  # ART sends float64 samples


def digits_model(seed: int):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32)[:, None]
    y = torch.tensor(d.target)
    torch.manual_seed(seed)
    model = build_model("small_cnn", 10, width=0.5, in_channels=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(4):
        for idx in torch.randperm(1400).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval(), x[1400:], y[1400:]


def run_foolbox(model, x, y, x0, iterations, per_image=False):
    """foolbox's HSJA on the batch, or image by image: batched, it divides every image's
    gradient estimate by the norm over the whole batch (`ep.norms.l2(flatten(grad))` has no
    axis), so each image steps ~1/sqrt(batch) too short; one image at a time is the
    algorithm as published."""
    import foolbox as fb

    counting = Counting(model)
    fmodel = fb.PyTorchModel(counting, bounds=(0, 1))
    attack = fb.attacks.HopSkipJumpAttack(steps=iterations, gamma=1.0, constraint="l2")
    t = time.perf_counter()
    parts = [slice(i, i + 1) for i in range(len(x))] if per_image else [slice(None)]
    adv = [
        attack.run(fmodel, x[p], fb.criteria.Misclassification(y[p]), starting_points=x0[p])
        for p in parts
    ]
    return torch.cat(adv), counting.rows, time.perf_counter() - t


def run_art(model, x, y, x0, iterations):
    from art.attacks.evasion import HopSkipJump
    from art.estimators.classification import PyTorchClassifier

    counting = Counting(model)
    clf = PyTorchClassifier(
        counting,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=tuple(x.shape[1:]),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="gpu" if x.is_cuda else "cpu",
    )
    attack = HopSkipJump(clf, max_iter=iterations, max_eval=10000, init_eval=100, verbose=False)
    t = time.perf_counter()
    adv = attack.generate(x.cpu().numpy(), y=y.cpu().numpy(), x_adv_init=x0.cpu().numpy())
    return torch.from_numpy(adv).to(x.device), counting.rows, time.perf_counter() - t


def median_l2(adv, x, y, model) -> float:
    with torch.no_grad():
        ok = model(adv).argmax(1) != y
    d = (adv - x).flatten(1).norm(dim=1)
    return float(torch.where(ok, d, torch.inf).median())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    set_threads(args.threads)
    dev = torch.device(args.device)
    model, pool_x, pool_y = digits_model(args.seed)
    model, pool_x, pool_y = model.to(dev), pool_x.to(dev), pool_y.to(dev)
    with torch.no_grad():
        ok = model(pool_x).argmax(1) == pool_y
    x, y = pool_x[ok][: args.images], pool_y[ok][: args.images]
    gen = torch.Generator(device=dev).manual_seed(args.seed)
    starts = Oracle(model, x, y, 100)
    x0 = start_points(starts, pool_x[ok][100:], pool_y[ok][100:], gen)
    keep = torch.isfinite(starts.best_l2)  # the libraries need adversarial starting points
    x, y, x0 = x[keep], y[keep], x0[keep]
    n = len(x)
    results = {}
    contenders = {
        "foolbox": run_foolbox,
        "foolbox/1": lambda *a: run_foolbox(*a, per_image=True),
        "art": run_art,
    }
    for name, fn in contenders.items():
        adv, rows, secs = fn(model, x, y, x0, args.iterations)
        results[name] = (rows / n, rows / secs, median_l2(adv, x, y, model), secs)
    budget = int(round(max(r[0] for r in results.values())))
    grid = sorted({int(round(r[0])) for r in results.values()} | {budget})
    counting = Counting(model)
    oracle = Oracle(counting, x, y, budget, record=grid)
    oracle.best_l2 = (x0 - x).flatten(1).norm(dim=1)  # the same, already paid, start
    oracle.best = x0.clone()
    t = time.perf_counter()
    hop_skip_jump(oracle, x0, gen)
    secs = time.perf_counter() - t
    oracle.finish()
    at = {q: float(oracle.trace[i].median()) for i, q in enumerate(grid)}
    same = Oracle(model, x, y, 10**9)  # reprise for the same number of iterations
    same.best_l2, same.best = oracle.best_l2.new_tensor((x0 - x).flatten(1).norm(dim=1)), x0.clone()
    hop_skip_jump(same, x0, torch.Generator(dev).manual_seed(args.seed), iterations=args.iterations)
    same_q = float(same.queries.float().mean())
    print(f"{'':10s} {'queries/img':>12s} {'queries/s':>10s} {'median L2':>10s} {'seconds':>8s}")
    ours_rate = counting.rows / secs
    mine = at[budget]
    print(f"{'reprise':10s} {counting.rows / n:12.0f} {ours_rate:10.0f} {mine:10.4f} {secs:8.2f}")
    for name, (q, rate, med, s) in results.items():
        ref = at[int(round(q))]
        print(
            f"{name:10s} {q:12.0f} {rate:10.0f} {med:10.4f} {s:8.2f}   "
            f"reprise at {q:.0f} queries: median L2 {ref:.4f}; speed ratio {ours_rate / rate:.1f}x"
        )
    print(
        f"reprise, {args.iterations} iterations: {same_q:.0f} queries/img, "
        f"median L2 {float(same.best_l2.median()):.4f}"
    )
    print(f"images {n}, model small_cnn (digits), device {dev}")


if __name__ == "__main__":
    main()
