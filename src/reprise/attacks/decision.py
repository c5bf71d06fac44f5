"""Decision-based (label-only) L2 attacks that run a whole batch of images in lockstep.

Every attack talks to the model through an `Oracle`, which is the only thing that sees
labels: it counts each image's queries exactly, stops an image at its budget, keeps the
best adversarial point each image has queried and records the best L2 after given query
counts. All images advance together and each oracle call queries all of them at once,
sent to the model in chunks of `batch_size` rows (4096 on a GPU, CPU_BATCH on the CPU,
whose cache a smaller chunk fits); the per-image semantics are those of the sequential
algorithms, one query after another, and the chunking never changes a label.

    oracle = Oracle(model, x, y, budget=1000, record=[100, 500, 1000])
    x_adv = start_points(oracle, pool_x, pool_y, gen)           # noisy x, else another image
    ATTACKS["hsja"](oracle, x_adv, gen)                           # or boundary, sign_opt, ...
    oracle.finish(); oracle.trace                                  # best L2 at each record count

An oracle never holds a non-adversarial point as best: `oracle.best[i]` is the clean image
with `best_l2[i] = inf` until a query of image i is adversarial.

Baselines (settings as the AutoDA evaluation ran them):
- HopSkipJump (Chen et al. 2020), L2, geometric step-size search;
- Boundary (Brendel et al. 2018), foolbox 2's schedule: up to 25 directions a step, a
  spherical query every 10th step, steps adapted from the success statistics;
- Sign-OPT (Cheng et al. 2020), sign gradient of the boundary distance along a direction;
- Evolutionary (Dong et al. 2019) with a diagonal covariance and coordinate selection.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

# Rows per model call on CPU: the activations of a small model stay in the core's cache
# (small_cnn on 8x8 digits, 1 thread: 512 rows ~18% faster than 4096, identical labels).
CPU_BATCH = 512


def l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).flatten(1).norm(dim=1)


class Oracle:
    """Label-only access to `model` for images x with labels y (untargeted)."""

    def __init__(self, model, x, y, budget: int, record=(), batch_size: int | None = None):
        self.model, self.x, self.y = model, x, y
        self.budget = int(budget)
        self.batch_size = batch_size or (CPU_BATCH if x.device.type == "cpu" else 4096)
        n = len(x)
        self.queries = torch.zeros(n, dtype=torch.long, device=x.device)
        self.best = x.clone()
        self.best_l2 = torch.full((n,), math.inf, device=x.device)
        self.record = torch.tensor(sorted(set(int(q) for q in record)), device=x.device)
        self.trace = torch.full((len(self.record), n), math.inf, device=x.device)

    def remaining(self, rows=None) -> torch.Tensor:
        q = self.queries if rows is None else self.queries[rows]
        return self.budget - q

    @torch.inference_mode()
    def labels(self, x: torch.Tensor) -> torch.Tensor:
        out = [self.model(chunk).argmax(1) for chunk in x.split(self.batch_size)]
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=x.device)

    def __call__(self, cand: torch.Tensor, rows=None, candidate: bool = True) -> torch.Tensor:
        """Query `cand` (n × k × image, or n × image for k = 1) for the images `rows`
        (indices; all by default). Returns n × k (or n) booleans: adversarial. Queries past
        an image's budget are not made and read False. `candidate=False` marks probes (e.g.
        gradient estimates) that do not count as found adversarial points."""
        rows = torch.arange(len(self.x), device=self.x.device) if rows is None else rows
        single = cand.dim() == self.x.dim()
        cand = (cand[:, None] if single else cand).clamp(0, 1)
        n, k = cand.shape[:2]
        allowed = self.remaining(rows).clamp(0, k)
        made = torch.arange(k, device=cand.device)[None] < allowed[:, None]
        adv = torch.zeros(n, k, dtype=torch.bool, device=cand.device)
        if bool((allowed == k).all()):  # every query made: no copy of the candidates
            adv = self.labels(cand.flatten(0, 1)).view(n, k) != self.y[rows, None]
        elif made.any():
            pred = self.labels(cand[made])
            adv[made] = pred != self.y[rows].repeat_interleave(allowed)
        self._update(rows, cand, adv if candidate else None, allowed)
        return adv[:, 0] if single else adv

    def _update(self, rows, cand, adv, allowed):
        """`adv` None: probes, which never become the best point (no distances needed)."""
        n, k = cand.shape[:2]
        if adv is None:
            dist = torch.full((n, k), math.inf, device=cand.device)
        else:
            gap = (cand - self.x[rows, None]).flatten(2).norm(dim=2)
            dist = torch.where(adv, gap, math.inf)
        running = torch.cummin(torch.cat([self.best_l2[rows, None], dist], 1), 1).values[:, 1:]
        q0 = self.queries[rows]
        if len(self.record):
            r = self.record[None]
            hit = (r > q0[:, None]) & (r <= (q0 + allowed)[:, None])
            at = (r - q0[:, None] - 1).clamp(0, k - 1)
            vals = running.gather(1, at)
            self.trace[:, rows] = torch.where(hit.T, vals.T, self.trace[:, rows])
        best_d, best_j = dist.min(1)
        better = best_d < self.best_l2[rows]
        if better.any():
            self.best[rows[better]] = cand[better, best_j[better]]
            self.best_l2[rows[better]] = best_d[better]
        self.queries[rows] += allowed

    def finish(self) -> None:
        """Images that stopped before a record count keep their final best there."""
        if len(self.record):
            later = self.record[:, None] > self.queries[None]
            self.trace = torch.where(later, self.best_l2[None], self.trace)

    def active(self) -> torch.Tensor:
        """Indices of images that have an adversarial point and budget left."""
        return torch.nonzero(torch.isfinite(self.best_l2) & (self.queries < self.budget)).flatten()


def start_points(oracle: Oracle, pool_x, pool_y, gen, tries: int = 100) -> torch.Tensor:
    """AutoDA's starting points: x + r·N(0, 1) (r uniform in [0, 1]), clipped, until
    misclassified (at most `tries` queries), else an image of another class that the model
    also misclassifies. Every query counts. Rows with no start keep x (best_l2 inf)."""
    x = oracle.x
    for _ in range(tries):
        rows = torch.nonzero(~torch.isfinite(oracle.best_l2) & (oracle.remaining() > 0)).flatten()
        if len(rows) == 0:
            break
        r = torch.rand(len(rows), device=x.device, generator=gen).view(-1, *[1] * (x.dim() - 1))
        oracle(x[rows] + r * torch.randn(x[rows].shape, device=x.device, generator=gen), rows)
    for _ in range(tries):
        rows = torch.nonzero(~torch.isfinite(oracle.best_l2) & (oracle.remaining() > 0)).flatten()
        if len(rows) == 0 or len(pool_x) == 0:
            break
        other = torch.rand(len(rows), len(pool_y), device=x.device, generator=gen)
        other = other.masked_fill(pool_y[None] == oracle.y[rows, None], -1).argmax(1)
        oracle(pool_x[other], rows)
    return oracle.best.clone()


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (v.dim() - 1))


def _bcast(s: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return s.view(-1, *[1] * (like.dim() - 1))


def boundary_search(oracle, rows, x, adv, tol) -> torch.Tensor:
    """Bisect the blend (1-a)·x + a·adv between a clean x (a=0) and an adversarial `adv`
    (a=1) until the bracket is below `tol` (per row); returns the adversarial end."""
    lo = torch.zeros(len(rows), device=x.device)
    hi = torch.ones(len(rows), device=x.device)
    while True:
        todo = torch.nonzero((hi - lo > tol) & (oracle.remaining(rows) > 0)).flatten()
        if len(todo) == 0:
            break
        mid = (lo[todo] + hi[todo]) / 2
        m = _bcast(mid, x)
        ok = oracle((1 - m) * x[todo] + m * adv[todo], rows[todo])
        hi[todo] = torch.where(ok, mid, hi[todo])
        lo[todo] = torch.where(ok, lo[todo], mid)
    h = _bcast(hi, x)
    return (1 - h) * x + h * adv


def hop_skip_jump(
    oracle, x_adv, gen, gamma=1.0, init_evals=100, max_evals=10000, iterations=None, chunk=2**22
):
    """HopSkipJump, L2: bisect to the boundary, estimate the gradient from `init_evals·√t`
    sign queries at radius δ_1 = 0.1, δ_t = √d·θ·dist, step dist/√t along it (halved until
    adversarial), bisect again; until the budget (or `iterations`) is spent."""
    rows = oracle.active()
    if len(rows) == 0:
        return
    x, adv = oracle.x[rows], x_adv[rows]
    d = x[0].numel()
    theta = gamma / d**1.5
    adv = boundary_search(oracle, rows, x, adv, theta)
    t = 0
    while True:
        keep = oracle.remaining(rows) > 0
        rows, x, adv = rows[keep], x[keep], adv[keep]
        if len(rows) == 0 or t == iterations:
            return
        t += 1
        dist = l2(adv, x)
        delta = _bcast(math.sqrt(d) * theta * dist if t > 1 else torch.full_like(dist, 0.1), x)
        k = min(int(init_evals * math.sqrt(t)), max_evals)
        grad = torch.zeros_like(x)
        fsum = torch.zeros(len(rows), device=x.device)
        samples = []
        per = max(1, chunk // max(1, len(rows) * d))
        for j in range(0, k, per):
            kk = min(per, k - j)
            u = _unit(torch.randn((len(rows) * kk, *x.shape[1:]), device=x.device, generator=gen))
            u = u.view(len(rows), kk, *x.shape[1:])
            probe = (adv[:, None] + delta[:, None] * u).clamp(0, 1)
            u = (probe - adv[:, None]) / delta[:, None]
            f = oracle(probe, rows, candidate=False).float() * 2 - 1
            samples.append((u, f))
            fsum += f.sum(1)
        mean = fsum / k
        for u, f in samples:  # the baseline removes the mean sign unless all agree
            w = torch.where(mean.abs()[:, None] == 1, f, f - mean[:, None])
            grad += (w.view(*w.shape, *[1] * (x.dim() - 1)) * u).sum(1)
        grad = _unit(grad)
        eps = dist / math.sqrt(t)
        step = adv.clone()
        todo = torch.arange(len(rows), device=x.device)
        while len(todo):
            cand = (adv[todo] + _bcast(eps[todo], x) * grad[todo]).clamp(0, 1)
            ok = oracle(cand, rows[todo])
            step[todo[ok]] = cand[ok]
            eps[todo] = torch.where(ok, eps[todo], eps[todo] / 2)
            todo = todo[~ok & (oracle.remaining(rows[todo]) > 0) & (eps[todo] > 1e-12)]
        adv = boundary_search(oracle, rows, x, step, theta)


class Window:
    """Per-image sliding windows of booleans (the deques of the sequential versions)."""

    def __init__(self, n: int, size: int, device):
        self.buf = torch.zeros(n, size, device=device)
        self.count = torch.zeros(n, dtype=torch.long, device=device)
        self.size = size

    def push(self, rows, values):
        self.buf[rows, self.count[rows] % self.size] = values.float()
        self.count[rows] += 1

    def full(self):
        return self.count >= self.size

    def mean(self):
        return self.buf.sum(1) / self.size

    def clear(self, rows):
        self.count[rows] = 0
        self.buf[rows] = 0


def boundary(
    oracle, x_adv, gen, spherical_step=1e-2, source_step=1e-2, adaptation=1.5, directions=25
):
    """Boundary attack as foolbox 2 runs it: each step tries up to `directions` random
    orthogonal moves plus a move toward x, one query each, and takes the first adversarial
    one; every 10th step each move is preceded by a spherical-only query whose success rate
    (window 100) scales both steps, and the step success rate (window 30) the source step."""
    rows = oracle.active()
    if len(rows) == 0:
        return
    x, adv = oracle.x[rows], x_adv[rows].clone()
    n, dev = len(rows), x.device
    sph = torch.full((n,), spherical_step, device=dev)
    src = torch.full((n,), source_step, device=dev)
    step = torch.ones(n, dtype=torch.long, device=dev)
    tried = torch.zeros(n, dtype=torch.long, device=dev)
    win_sph, win_step = Window(n, 100, dev), Window(n, 30, dev)
    while True:
        live = torch.nonzero(oracle.remaining(rows) > 0).flatten()
        if len(live) == 0:
            return
        xs, a = x[live], adv[live]
        source = xs - a
        norm = _bcast(l2(a, xs), xs)
        unit = source / norm
        p = torch.randn(a.shape, device=dev, generator=gen)
        p = p - _bcast((p * unit).flatten(1).sum(1), p) * unit
        p = p * _bcast(sph[live], p) * norm / _bcast(p.flatten(1).norm(dim=1), p)
        D = 1 / torch.sqrt(sph[live] ** 2 + 1)
        spherical = (xs + _bcast(D, xs) * (p - source)).clamp(0, 1)
        new_src = xs - spherical
        new_norm = _bcast(new_src.flatten(1).norm(dim=1), xs)
        length = (_bcast(src[live], xs) * norm + (new_norm - norm)).clamp_min(0) / new_norm
        cand = (spherical + length * new_src).clamp(0, 1)
        do_sph = step[live] % 10 == 0
        go = torch.ones(len(live), dtype=torch.bool, device=dev)
        if do_sph.any():
            s_rows = live[do_sph]
            ok_s = oracle(spherical[do_sph], rows[s_rows])
            win_sph.push(s_rows, ok_s)
            go[do_sph] = ok_s
        ok = torch.zeros(len(live), dtype=torch.bool, device=dev)
        if go.any():
            ok[go] = oracle(cand[go], rows[live[go]])
        win_step.push(live[do_sph & go], ok[do_sph & go])
        adv[live[ok]] = cand[ok]
        tried[live] += 1
        done = live[ok | (tried[live] >= directions)]
        step[done] += 1
        tried[done] = 0
        ready = done[(win_step.full() & win_sph.full())[done]]
        if len(ready):
            p_sph, p_step = win_sph.mean()[ready], win_step.mean()[ready]
            up, down = p_sph > 0.5, p_sph < 0.2
            scale = torch.where(up, adaptation, torch.where(down, 1 / adaptation, 1.0))
            sph[ready] *= scale
            src[ready] *= scale
            win_sph.clear(ready[up | down])
            up, down = p_step > 0.5, p_step < 0.2
            src[ready] *= torch.where(up, adaptation, torch.where(down, 1 / adaptation, 1.0))
            win_step.clear(ready[up | down])


def evolutionary(oracle, x_adv, gen, mu=0.01, sigma=0.03, decay=0.99, c=0.001):
    """Evolutionary attack: perturb K = d/20 coordinates drawn by the diagonal covariance,
    biased toward x by μ, projected to the biased distance; on success update the
    evolution path and the covariance; adapt μ from the success rate of 30 steps."""
    rows = oracle.active()
    if len(rows) == 0:
        return
    x, adv = oracle.x[rows], x_adv[rows].clone()
    n, dev = len(rows), x.device
    d = x[0].numel()
    K = max(1, d // 20)
    path = torch.zeros(n, d, device=dev)
    cov = torch.ones(n, d, device=dev)
    mus = torch.full((n,), mu, device=dev)
    win = Window(n, 30, dev)
    while True:
        live = torch.nonzero(oracle.remaining(rows) > 0).flatten()
        if len(live) == 0:
            return
        xs, a = x[live].flatten(1), adv[live].flatten(1)
        source = xs - a
        norm = source.norm(dim=1, keepdim=True)
        pick = torch.multinomial(cov[live], K, replacement=False, generator=gen)
        mask = torch.zeros_like(a).scatter_(1, pick, 1.0)
        pert = torch.randn(a.shape, device=dev, generator=gen) * mask * cov[live].sqrt()
        biased = a + mus[live, None] * source
        cand = biased + sigma * norm * pert / pert.norm(dim=1, keepdim=True).clamp_min(1e-12)
        cand = xs - _unit(xs - cand) * (xs - biased).norm(dim=1, keepdim=True)
        cand = cand.clamp(0, 1).view(-1, *x.shape[1:])
        ok = oracle(cand, rows[live])
        win.push(live, ok)
        good = live[ok]
        adv[good] = cand[ok]
        path[good] = decay * path[good] + math.sqrt(1 - decay**2) * pert[ok]
        cov[good] = (1 - c) * cov[good] + c * path[good] ** 2
        ready = live[win.full()[live]]
        if len(ready):
            mus[ready] *= torch.exp(win.mean()[ready] - 0.2)
            win.clear(ready)


def sign_opt(oracle, x_adv, gen, k=200, beta=1e-3, alpha=0.2, tol=1e-3):
    """Sign-OPT: minimise g(θ), the distance from x to the boundary along direction θ.
    The gradient sign comes from k single queries at x + g·(θ + βu)/|θ + βu|; a step
    θ - α·ĝ is taken when x + g·θ' is adversarial (g' then bisected), with α doubled on
    success and halved on failure."""
    rows = oracle.active()
    if len(rows) == 0:
        return
    x = oracle.x[rows]
    n, dev = len(rows), x.device
    theta = _unit(x_adv[rows] - x)
    g = l2(x_adv[rows], x)
    g = _distance_search(oracle, rows, x, theta, g, tol)
    step = torch.full((n,), alpha, device=dev)
    while True:
        live = torch.nonzero(oracle.remaining(rows) > 0).flatten()
        if len(live) == 0:
            return
        xs, th, gl = x[live], theta[live], g[live]
        u = torch.randn((len(live), k, *x.shape[1:]), device=dev, generator=gen)
        probe_dir = th[:, None] + beta * u
        probe_dir = probe_dir / probe_dir.flatten(2).norm(dim=2).view(
            len(live), k, *[1] * (x.dim() - 1)
        )
        probe = xs[:, None] + gl.view(-1, 1, *[1] * (x.dim() - 1)) * probe_dir
        adv = oracle(probe, rows[live], candidate=False)
        sign = torch.where(adv, -1.0, 1.0).view(len(live), k, *[1] * (x.dim() - 1))
        grad = (sign * u).mean(1)
        new = _unit(th - _bcast(step[live], th) * grad)
        ok = oracle(xs + _bcast(gl, xs) * new, rows[live])
        good = live[ok]
        if len(good):
            theta[good] = new[ok]
            g[good] = _distance_search(oracle, rows[good], x[good], new[ok], gl[ok], tol)
        step[good] *= 2
        step[live[~ok]] /= 2


def _distance_search(oracle, rows, x, theta, hi, tol):
    """Bisect the distance along unit direction θ, with x + hi·θ adversarial, to relative
    precision `tol`; returns the adversarial end."""
    lo = torch.zeros_like(hi)
    hi = hi.clone()
    while True:
        todo = torch.nonzero((hi - lo > tol * hi) & (oracle.remaining(rows) > 0)).flatten()
        if len(todo) == 0:
            return hi
        mid = (lo[todo] + hi[todo]) / 2
        ok = oracle(x[todo] + _bcast(mid, x) * theta[todo], rows[todo])
        hi[todo] = torch.where(ok, mid, hi[todo])
        lo[todo] = torch.where(ok, lo[todo], mid)


Attack = Callable[..., None]
ATTACKS: dict[str, Attack] = {
    "hsja": hop_skip_jump,
    "boundary": boundary,
    "sign_opt": sign_opt,
    "evolutionary": evolutionary,
}
