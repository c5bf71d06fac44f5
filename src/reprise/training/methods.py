"""Training methods: what loss one batch contributes. Standard, PGD-AT, TRADES and CCAT.

A method is a small object with one job, `loss(model, batch)`. Hooks extend it per sample
without forking the training loop: each batch carries the indices of its samples into the
training set (`batch.idx`), so a hook can keep per-sample state (temporal ensembling's soft
labels), add a term to the outer loss, and add a term to the attack's inner maximisation.
Trainable parts a hook needs (e.g. an RR head) belong in the model, so the optimiser and the
checkpoints hold them.

Order within a batch: hooks' `start_batch` -> the attack (objective + hooks' `attack_extra`)
-> forward passes -> base loss + hooks' `loss`.

How papers plug in (sketches; the papers' own modules hold the real thing):
- temporal ensembling: a Hook holding soft labels P (N x K) in its state_dict; start_batch
  updates P[b.idx] from the clean softmax in eval mode; attack_extra returns
  `lambda out, x_adv: w(b.epoch) * ((out.logits.softmax(1) - P[b.idx]) ** 2).mean(1)`;
  loss adds the same term on b.adv.logits (b.clean.logits under TRADES).
- random labels: train on `ImageData(x, random_labels(y, k, rate, seed), classes)`.
- a rejection head: a model wrapper exposing features/head plus the head (so the optimiser
  and checkpoints hold it); loss adds λ·BCE on b.adv.features and b.adv.logits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from reprise.attacks import PGD, Extra, Forward, forward
from reprise.models.base import evaluating


@dataclass
class Batch:
    x: torch.Tensor  # clean (augmented) inputs in [0, 1]
    y: torch.Tensor  # training labels (noisy ones if the data carry them)
    idx: torch.Tensor  # indices of these samples in the training set (on the data's device)
    epoch: int  # 0-based
    x_adv: torch.Tensor | None = None  # set by adversarial methods
    clean: Forward | None = None  # model outputs on x, where the method computed them
    adv: Forward | None = None  # model outputs on x_adv


class Hook:
    """A per-sample extension of a method; every part is optional (defaults do nothing)."""

    def start_epoch(self, model: nn.Module, data, epoch: int) -> None:
        """Before the epoch's first batch (data: the ImageData being trained on)."""

    def start_batch(self, model: nn.Module, batch: Batch) -> None:
        """Before the attack: e.g. update per-sample state from the clean inputs."""

    def attack_extra(self, batch: Batch) -> Extra | None:
        """A per-sample term the attack also maximises: (out, x_adv) -> tensor (N,)."""
        return None

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor | float:
        """A term added to the method's loss; batch.clean/adv hold the method's outputs."""
        return 0.0

    def epoch_metrics(self) -> dict[str, float]:
        """Extra columns of the epoch's row in the metrics table."""
        return {}

    def state_dict(self) -> dict:
        """Per-sample state to checkpoint (tensors and plain values only)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Called on resume with the saved state (tensors on CPU: move them as needed)."""

    def config(self) -> dict:
        """Hyperparameters (plain values): a checkpoint of other settings is not resumed."""
        return {}


class Method:
    """Base: `base_loss` is the method's own loss; hooks are applied around it."""

    name = "method"

    def __init__(self, hooks: list[Hook] | tuple[Hook, ...] = ()):
        self.hooks = list(hooks)

    def base_loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        for h in self.hooks:
            h.start_batch(model, batch)
        total = self.base_loss(model, batch)
        for h in self.hooks:
            total = total + h.loss(model, batch)
        return total

    def attack_extra(self, batch: Batch) -> Extra | None:
        """The sum of the hooks' attack terms (None when no hook adds one)."""
        terms = [t for t in (h.attack_extra(batch) for h in self.hooks) if t is not None]
        if not terms:
            return None
        return lambda out, x_adv: sum(t(out, x_adv) for t in terms)

    def start_epoch(self, model: nn.Module, data, epoch: int) -> None:
        for h in self.hooks:
            h.start_epoch(model, data, epoch)

    def epoch_metrics(self) -> dict[str, float]:
        return {k: v for h in self.hooks for k, v in h.epoch_metrics().items()}

    def state_dict(self) -> dict:
        return {"hooks": [h.state_dict() for h in self.hooks]}

    def load_state_dict(self, state: dict) -> None:
        for h, s in zip(self.hooks, state["hooks"], strict=True):
            h.load_state_dict(s)

    def config(self) -> dict:
        hooks = [{"hook": type(h).__name__, **h.config()} for h in self.hooks]
        return {"method": self.name, **self.own_config(), "hooks": hooks}

    def own_config(self) -> dict:
        return {}


class Standard(Method):
    """Cross-entropy on clean inputs."""

    name = "standard"

    def base_loss(self, model, batch):
        batch.clean = forward(model, batch.x)
        return F.cross_entropy(batch.clean.logits.float(), batch.y)


class PGDAT(Method):
    """PGD adversarial training (Madry et al. 2018): cross-entropy on PGD examples."""

    name = "pgd_at"

    def __init__(self, attack: PGD, hooks=()):
        super().__init__(hooks)
        self.attack = attack

    def base_loss(self, model, batch):
        batch.x_adv = self.attack(model, batch.x, batch.y, extra=self.attack_extra(batch))
        batch.adv = forward(model, batch.x_adv)
        return F.cross_entropy(batch.adv.logits.float(), batch.y)

    def own_config(self):
        return {"attack": asdict(self.attack)}


class TRADES(Method):
    """TRADES (Zhang et al. 2019): CE(f(x), y) + β·KL(f(x) ‖ f(x_adv)), where x_adv maximises
    the KL term by PGD from x + 0.001·N(0, I). The attack runs in eval mode whatever
    `attack.bn` says, as in Zhang et al.'s and Pang et al.'s code (attack_trades: BNeval=True),
    so a config can share one training attack between PGD-AT (train-mode BN) and TRADES."""

    name = "trades"

    def __init__(self, attack: PGD, beta: float = 6.0, hooks=()):
        super().__init__(hooks)
        self.attack, self.beta = replace(attack, bn="eval"), beta

    def base_loss(self, model, batch):
        with torch.no_grad(), evaluating(model):
            p_clean = F.softmax(model(batch.x).float(), dim=1)

        def kl(logits_adv, _y):
            return F.kl_div(F.log_softmax(logits_adv, dim=1), p_clean, reduction="none").sum(1)

        x_init = batch.x + 0.001 * torch.randn_like(batch.x)
        batch.x_adv = self.attack(
            model, batch.x, batch.y, loss=kl, x_init=x_init, extra=self.attack_extra(batch)
        )
        batch.clean, batch.adv = forward(model, batch.x), forward(model, batch.x_adv)
        logits, logits_adv = batch.clean.logits.float(), batch.adv.logits.float()
        robust = F.kl_div(
            F.log_softmax(logits_adv, dim=1), F.softmax(logits, dim=1), reduction="batchmean"
        )
        return F.cross_entropy(logits, batch.y) + self.beta * robust

    def own_config(self):
        return {"attack": asdict(self.attack), "beta": self.beta}


def wrong_class_confidence(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Log-probability of the most likely wrong class, per sample (CCAT's attack objective)."""
    logp = F.log_softmax(logits, dim=1)
    return logp.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)


def ccat_weight(delta: torch.Tensor, eps: float, norm: str, rho: float):
    """|delta| / eps (in the attack's norm) and CCAT's interpolation weight
    lam = (1 - min(1, |delta| / eps)) ** rho, per sample."""
    flat = delta.flatten(1).float()
    size = flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)
    rel = size / max(eps, 1e-12)
    return rel, (1 - rel.clamp(max=1)) ** rho


def ccat_target(y: torch.Tensor, delta: torch.Tensor, eps: float, norm: str, k: int, rho: float):
    """CCAT's label for x + delta: one-hot(y) at delta = 0, uniform at |delta| >= eps,
    interpolated by lam (ccat_weight)."""
    lam = ccat_weight(delta, eps, norm, rho)[1]
    return lam[:, None] * F.one_hot(y, k) + (1 - lam[:, None]) / k


def radial_start(x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """x plus a random direction scaled to a radius uniform in [0, eps] (in `norm`), clipped
    to [0, 1]: CCAT's random start, whose targets then span the whole interpolation (a
    uniform point of the L∞ box lies almost always at its edge, where the target is uniform)."""
    d = torch.randn_like(x)
    flat = d.flatten(1)
    size = flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)
    radius = eps * torch.rand(len(x), device=x.device, dtype=x.dtype)
    return (x + d * (radius / size.clamp_min(1e-12)).view(-1, *[1] * (x.ndim - 1))).clamp(0, 1)


class CCAT(Method):
    """Confidence-calibrated adversarial training (Stutz et al. 2020), as Pang et al. 2021
    train it: the attack maximises the confidence of the most likely wrong class, starting
    at x for a random half of the batch and at `radial_start` for the other,
    and the adversarial input's target is `ccat_target` (confident near x, uniform at the
    ball's edge). Loss: CE(f(x), y) + ratio·KL(target ‖ f(x_adv)). The attack is theirs:
    sign steps with momentum, backtracking of the step size, steps kept while the true-class
    cross-entropy does not fall (reprise.attacks.backtracking; `attack` gives ε, the initial
    step size and the steps). Each epoch's row gets where the attack left the inputs: the
    mean interpolation weight, the median |δ|/ε and the share at the ball's edge."""

    name = "ccat"

    def __init__(
        self,
        attack: PGD,
        rho: float = 10.0,
        ratio: float = 1.0,
        hooks=(),
        momentum: float = 0.9,
        backtrack: float = 1.5,
    ):
        super().__init__(hooks)
        self.attack, self.rho, self.ratio = attack, rho, ratio
        self.momentum, self.backtrack = momentum, backtrack
        self._rel, self._lam = [], []

    def start_epoch(self, model, data, epoch):
        super().start_epoch(model, data, epoch)
        self._rel, self._lam = [], []

    def epoch_metrics(self):
        out = super().epoch_metrics()
        if self._rel:
            rel, lam = torch.cat(self._rel), torch.cat(self._lam)
            out |= {
                "ccat_lambda_mean": float(lam.mean()),
                "ccat_delta_over_eps_median": float(rel.median()),
                "ccat_at_edge": float((rel >= 0.99).float().mean()),
            }
        return out

    def base_loss(self, model, batch):
        from reprise.attacks.backtracking import momentum_pgd

        a = self.attack
        from_x = torch.rand(len(batch.x), device=batch.x.device) < 0.5
        x_init = radial_start(batch.x, a.eps, a.norm)
        x_init[from_x] = batch.x[from_x]
        batch.x_adv = momentum_pgd(
            model,
            batch.x,
            batch.y,
            eps=a.eps,
            step_size=a.step_size,
            steps=a.steps,
            norm=a.norm,
            loss=wrong_class_confidence,
            momentum=self.momentum,
            backtrack=self.backtrack,
            x_init=x_init,
            extra=self.attack_extra(batch),
            accept=lambda logits, y: F.cross_entropy(logits, y, reduction="none"),
            bn=a.bn,
        )
        batch.clean, batch.adv = forward(model, batch.x), forward(model, batch.x_adv)
        logits = batch.clean.logits.float()
        k = logits.shape[1]
        delta = (batch.x_adv - batch.x).detach()
        rel, lam = ccat_weight(delta, a.eps, a.norm, self.rho)
        self._rel.append(rel.cpu())
        self._lam.append(lam.cpu())
        target = ccat_target(batch.y, delta, a.eps, a.norm, k, self.rho)
        log_p_adv = F.log_softmax(batch.adv.logits.float(), dim=1)
        robust = F.kl_div(log_p_adv, target, reduction="batchmean")
        return F.cross_entropy(logits, batch.y) + self.ratio * robust

    def own_config(self):
        return {
            "attack": asdict(self.attack),
            "rho": self.rho,
            "ratio": self.ratio,
            "momentum": self.momentum,
            "backtrack": self.backtrack,
        }


METHODS = {"standard": Standard, "pgd_at": PGDAT, "trades": TRADES, "ccat": CCAT}
