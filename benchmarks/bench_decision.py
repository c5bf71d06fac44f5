"""Speed of the lockstep HopSkipJump (reprise.attacks.decision) against foolbox 3.3.4's and
ART 1.20.1's HopSkipJump (a benchmark, never a test).

    pip install -e ".[bench]"        # foolbox, eagerpy, adversarial-robustness-toolbox
    python benchmarks/bench_decision.py [--images 20] [--iterations 5] [--threads 1]
                                        [--repeats 3] [--channels-last] [--device cpu]

All three attack the same model (a small CNN trained for a few epochs on scikit-learn's
digits) on the same images from the same starting points (found by reprise's procedure),
with the same HSJA settings (L2, γ = 1, 100 initial gradient samples, geometric step
search). Each library runs `--iterations` HSJA iterations; the model counts every image it
is asked about, so queries per image are exact for all three. reprise then runs to the same
per-image query count. The contenders run in `--repeats` interleaved rounds, each from the
same random state, and each keeps its fastest round.

Reported per contender: queries per image, queries per second (per CPU second of this
process on a CPU, BLAS and torch held to `--threads`; wall seconds on a GPU), median L2,
seconds, and the share of them spent inside the model's forward; then reprise's median L2
at each library's query count, the speed ratios, and the most the ratio to ART could be if
reprise spent no time outside the model. `--channels-last` converts the shared model (all
three libraries use it) to channels_last.

Measured (docs/autoda.md has the tables): 20 images, 1 thread, a loaded 2-core CPU:
reprise 30,000-46,000 queries/s, 2.7-3.8x ART (11,300-13,600), 1.7-2.5x foolbox batched,
9.5-14x foolbox per image; reprise spends 86-90% of its time in the model, ART 57%, which
bounds the ratio to ART at 3.0-4.4x. 100 images, idle: 4.4x ART in the default layout, 5.1x
with `--channels-last` (bound 5.7x).

Two library quirks (foolbox 3.3.4, ART 1.20.1) explain differences in median L2:
- foolbox batched normalises the gradient estimates by the norm over the whole batch, so
  "foolbox/1" (one image per call) is the reference for the algorithm;
- ART's iteration is bisect, estimate, step: its result is the last step, not bisected
  back to the boundary, so it lies farther from x than the iterate it came from.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from reprise.attacks.decision import Oracle, hop_skip_jump, l2, start_points
from reprise.models import build_model
from reprise.runtime import set_threads


class Counting(torch.nn.Module):
    """The model, counting the rows it is asked about and the seconds spent in its forward."""

    def __init__(self, model, clock):
        super().__init__()
        self.model, self.clock, self.rows, self.secs = model, clock, 0, 0.0
        self.train(model.training)  # foolbox reads the wrapper's mode (warns in train mode)

    def forward(self, x):
        t = self.clock()
        out = self.model(x.float())  # ART sends float64 samples
        _sync(out)
        self.rows += len(x)
        self.secs += self.clock() - t
        return out


def _sync(t: torch.Tensor) -> None:
    if t.is_cuda:
        torch.cuda.synchronize(t.device)


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


def run_foolbox(counting, x, y, x0, iterations, per_image=False):
    """foolbox's HSJA on the batch, or image by image: batched, it divides every image's
    gradient estimate by the norm over the whole batch (`ep.norms.l2(flatten(grad))` has no
    axis), so each image steps ~1/sqrt(batch) too short; one image at a time is the
    algorithm as published."""
    import foolbox as fb

    fmodel = fb.PyTorchModel(counting, bounds=(0, 1))
    attack = fb.attacks.HopSkipJumpAttack(steps=iterations, gamma=1.0, constraint="l2")
    parts = [slice(i, i + 1) for i in range(len(x))] if per_image else [slice(None)]
    adv = [
        attack.run(fmodel, x[p], fb.criteria.Misclassification(y[p]), starting_points=x0[p])
        for p in parts
    ]
    return torch.cat(adv)


def run_art(counting, x, y, x0, iterations):
    from art.attacks.evasion import HopSkipJump
    from art.estimators.classification import PyTorchClassifier

    clf = PyTorchClassifier(
        counting,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=tuple(x.shape[1:]),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="gpu" if x.is_cuda else "cpu",
    )
    attack = HopSkipJump(clf, max_iter=iterations, max_eval=10000, init_eval=100, verbose=False)
    adv = attack.generate(x.cpu().numpy(), y=y.cpu().numpy(), x_adv_init=x0.cpu().numpy())
    return torch.from_numpy(adv).to(x.device)


def median_l2(adv, x, y, model) -> float:
    with torch.no_grad():
        ok = model(adv).argmax(1) != y
    d = (adv - x).flatten(1).norm(dim=1)
    return float(torch.where(ok, d, torch.inf).median())


class Fastest(dict):
    """name: (result, Counting, seconds) of the fastest run so far; every run starts from the
    same random state (ART draws from numpy's global generator, foolbox from torch's)."""

    def __init__(self, model, clock):
        super().__init__()
        self.model, self.clock = model, clock

    def run(self, name, run) -> None:
        np.random.seed(0)
        torch.manual_seed(0)
        counting = Counting(self.model, self.clock)
        t = self.clock()
        out = run(counting)
        secs = self.clock() - t
        if name not in self or secs < self[name][2]:
            self[name] = (out, counting, secs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="rounds; each contender's fastest")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--channels-last", action="store_true", help="the (shared) model in channels_last"
    )
    args = ap.parse_args()
    set_threads(args.threads)
    threadpool_limits(args.threads)  # numpy's BLAS was loaded (with torch) before set_threads
    dev = torch.device(args.device)
    clock = time.process_time if dev.type == "cpu" else time.perf_counter
    model, pool_x, pool_y = digits_model(args.seed)
    model, pool_x, pool_y = model.to(dev), pool_x.to(dev), pool_y.to(dev)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    with torch.no_grad():
        ok = model(pool_x).argmax(1) == pool_y
    x, y = pool_x[ok][: args.images], pool_y[ok][: args.images]
    gen = torch.Generator(device=dev).manual_seed(args.seed)
    starts = Oracle(model, x, y, 100)
    x0 = start_points(starts, pool_x[ok][100:], pool_y[ok][100:], gen)
    keep = torch.isfinite(starts.best_l2)  # the libraries need adversarial starting points
    x, y, x0 = x[keep], y[keep], x0[keep]
    n = len(x)
    runs = {
        "foolbox": lambda c: run_foolbox(c, x, y, x0, args.iterations),
        "foolbox/1": lambda c: run_foolbox(c, x, y, x0, args.iterations, per_image=True),
        "art": lambda c: run_art(c, x, y, x0, args.iterations),
    }
    fastest = Fastest(model, clock)
    for name, run in runs.items():  # the first round sets the query counts to compare at
        fastest.run(name, run)
    queries = {name: c.rows / n for name, (_, c, _) in fastest.items()}
    budget = int(round(max(queries.values())))
    grid = sorted({int(round(q)) for q in queries.values()} | {budget})
    state = gen.get_state()

    def ours(counting):
        oracle = Oracle(counting, x, y, budget, record=grid)
        oracle.best_l2, oracle.best = l2(x0, x), x0.clone()  # the same, already paid, start
        hop_skip_jump(oracle, x0, torch.Generator(dev).set_state(state))
        oracle.finish()
        return oracle

    runs = {"reprise": ours, **runs}
    fastest.run("reprise", ours)
    for _ in range(args.repeats - 1):  # rounds, so that a load on the machine hits all alike
        for name, run in runs.items():
            fastest.run(name, run)
    oracle = fastest["reprise"][0]
    at = {q: float(oracle.trace[i].median()) for i, q in enumerate(grid)}
    rows = {}  # name: (queries/img, queries/s, median L2, seconds, share of seconds in model)
    for name in runs:
        out, c, secs = fastest[name]
        med = at[budget] if name == "reprise" else median_l2(out, x, y, model)
        rows[name] = (c.rows / n, c.rows / secs, med, secs, c.secs / secs)
    same = Oracle(model, x, y, 10**9)  # reprise for the same number of iterations
    same.best_l2, same.best = l2(x0, x), x0.clone()
    hop_skip_jump(same, x0, torch.Generator(dev).manual_seed(args.seed), iterations=args.iterations)
    unit = "CPU s" if dev.type == "cpu" else "s"
    print(
        f"{'':10s} {'queries/img':>12s} {'queries/s':>10s} {'median L2':>10s} {unit:>8s}"
        f" {'in model':>9s}"
    )
    ours_rate, ours_model_secs = rows["reprise"][1], fastest["reprise"][1].secs
    for name, (q, rate, med, s, share) in rows.items():
        line = f"{name:10s} {q:12.0f} {rate:10.0f} {med:10.4f} {s:8.2f} {share:9.0%}"
        if name != "reprise":
            line += (
                f"   reprise at {q:.0f} queries: median L2 {at[int(round(q))]:.4f};"
                f" speed ratio {ours_rate / rate:.1f}x"
            )
        print(line)
    print(
        f"reprise, {args.iterations} iterations: {float(same.queries.float().mean()):.0f} "
        f"queries/img, median L2 {float(same.best_l2.median()):.4f}"
    )
    art_secs_per_query = rows["art"][3] / (rows["art"][0] * n)
    print(
        f"bound: reprise's model time alone ({ours_model_secs:.2f} {unit}) allows at most "
        f"{art_secs_per_query * fastest['reprise'][1].rows / ours_model_secs:.1f}x ART's rate"
    )
    print(
        f"images {n}, model small_cnn (digits{', channels_last' if args.channels_last else ''}), "
        f"device {dev}, threads {args.threads}, best of {args.repeats}"
    )


if __name__ == "__main__":
    main()
