"""Real-time training under attack: the victim, the data stream, and the four runs.

Online, the victim takes one SGD step per incoming batch; federated, one step per round on
the mean of the clients' updates (benign clients' gradients, plus the poisoner's). Each
setting runs four times from the same burn-in model, on the same stream:

    trigger_alone   the poisoned trigger at once
    full            poisoned accumulative phase (until the secret rule or max_steps), trigger
    clean           the clean stream for as many steps as `full` took, and one more
    clean_trigger   that clean phase, then the poisoned trigger

Accuracy on the validation batch and the test set is recorded after every step. The loop
saves its whole state after each step, so a killed run resumes to the same result.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from reprise.data.prepared import ImageData
from reprise.errors import ConfigError
from reprise.metrics import accuracy
from reprise.papers.poisoning.attack import Poisoner
from reprise.papers.poisoning.gradcos import Grads, loss_grad
from reprise.resume import Resume
from reprise.training.state import rng_state, set_rng_state

log = logging.getLogger("reprise")
RUNS = ("trigger_alone", "full", "clean", "clean_trigger")


class Victim:
    """A model trained one step at a time by SGD with momentum (the real-time learner)."""

    def __init__(self, model, lr: float, momentum: float = 0.9, weight_decay: float = 0.0):
        self.model = model
        self.opt = torch.optim.SGD(
            model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
        )

    def step(self, grads: Grads) -> None:
        for p, g in zip(self.model.parameters(), grads, strict=True):
            p.grad = g.detach().clone()
        self.opt.step()

    def learn(self, x, y) -> None:
        """One update on a batch, as the victim trains: train mode (BatchNorm stats move)."""
        self.model.train()
        self.step(loss_grad(self.model, x, y))

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])


@dataclass(frozen=True)
class Stream:
    """Batch t of a fixed, seeded order over the data (wrapping around)."""

    data: ImageData
    batch_size: int
    seed: int

    @functools.cached_property
    def order(self) -> torch.Tensor:
        digest = hashlib.sha256(f"reprise-stream:{self.seed}".encode()).digest()
        gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
        return torch.randperm(len(self.data), generator=gen)

    def batch(self, t: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        order = self.order
        idx = order[torch.arange(t * self.batch_size, (t + 1) * self.batch_size) % len(order)]
        return self.data.x[idx].to(device), self.data.y[idx].to(device)


def secret_ok(val_acc: float, start_acc: float, secret: dict) -> bool:
    """Whether the accumulative phase is still secret: validation accuracy has dropped by at
    most `max_drop` from its start and the validation error is at most `max_error` (a
    null bound is not checked; the official code's rule is max_error 0.18)."""
    drop, error = secret.get("max_drop"), secret.get("max_error")
    if drop is not None and start_acc - val_acc > drop:
        return False
    return not (error is not None and 1.0 - val_acc > error)


class Online:
    """One victim step per batch; the poisoner perturbs incoming batches and the trigger."""

    def __init__(self, stream: Stream, poisoner: Poisoner):
        self.stream, self.poisoner = stream, poisoner

    def clean(self, victim: Victim, t: int) -> None:
        victim.learn(*self.stream.batch(t, _device(victim)))

    def poison(self, victim: Victim, t: int):
        x, y = self.stream.batch(t, _device(victim))
        victim.model.train()
        x_poison = self.poisoner.accumulative_batch(victim.model, x, y)
        victim.learn(x_poison, y)
        return x, x_poison, y

    def trigger(self, victim: Victim, t: int) -> None:
        victim.model.train()
        victim.learn(self.poisoner.trigger(victim.model), self.poisoner.trigger_batch[1])


class Federated:
    """One step per round on the mean update of `clients` benign clients (each the gradient
    of its own batch) and, when poisoning, the poisoner's update. With 0 benign clients (the
    official code's simulation) the poisoner's update is the round's whole update and a
    clean round changes nothing."""

    def __init__(self, stream, poisoner, clients: int, lam: float, clip, trigger_scale: float):
        if clients < 0:
            raise ConfigError(f"federated.clients = {clients}; expected >= 0")
        self.stream, self.poisoner, self.clients = stream, poisoner, clients
        self.lam, self.clip, self.trigger_scale = lam, clip, trigger_scale

    def _round(self, victim: Victim, t: int, extra: Grads | None) -> None:
        model = victim.model.train()
        updates = [
            loss_grad(model, *self.stream.batch(t * self.clients + i, _device(victim)))
            for i in range(self.clients)
        ]
        if extra is not None:
            updates.append(extra)
        if not updates:
            return
        victim.step([torch.stack(gs).mean(0) for gs in zip(*updates, strict=True)])

    def clean(self, victim, t):
        self._round(victim, t, None)

    def poison(self, victim, t):
        victim.model.train()
        self._round(victim, t, self.poisoner.federated_update(victim.model, self.lam, self.clip))

    def trigger(self, victim, t):
        victim.model.train()
        self._round(victim, t, self.poisoner.trigger_update(victim.model, self.trigger_scale))


def _device(victim: Victim):
    return next(victim.model.parameters()).device


def simulate(
    setting,
    new_victim: Callable[[], Victim],
    evaluate: Callable[[torch.nn.Module], tuple[float, float]],
    max_steps: int,
    secret: dict,
    resume: Resume | None = None,
    unit: str = "step",
) -> tuple[list[dict], dict[str, list[torch.Tensor]]]:
    """The four runs; returns one row per (run, step) and the full run's accumulative-phase
    batches (clean and poisoned images as uint8, labels) for the detection experiment.

    `new_victim()` is a fresh victim at the burn-in weights (called once per run, and on
    resuming); `evaluate(model)` gives
    (validation accuracy, test accuracy)."""
    resume = resume or Resume()
    state = resume.load()
    if state is None:
        state = {"run": 0, "t": 0, "victim": None, "rows": [], "steps": None, "stopped": False}
        state["batches"] = {"clean": [], "poisoned": [], "labels": []}
    else:
        set_rng_state(state["rng"])
        run = RUNS[state["run"]]
        log.info("resumed from %s after %s %d of run %s", resume.path, unit, state["t"], run)
    rows, batches = state["rows"], state["batches"]

    def record(run, step, phase, model):
        val_acc, test_acc = evaluate(model)
        rows.append(
            {"run": run, "step": step, "phase": phase, "val_acc": val_acc, "test_acc": test_acc}
        )
        log.info("%s %s %d (%s): val %.4f, test %.4f", run, unit, step, phase, val_acc, test_acc)
        return val_acc

    victim = None  # the current run's learner, carried across its steps
    while state["run"] < 3:  # clean_trigger is finished inside the clean run
        run, t = RUNS[state["run"]], state["t"]
        if victim is None:
            victim = new_victim()
            if state["victim"] is None:
                record(run, 0, "start", victim.model)
            else:
                victim.load_state_dict(state["victim"])
        done = False
        if run == "trigger_alone":
            setting.trigger(victim, t)
            record(run, 1, "trigger", victim.model)
            done = True
        elif run == "full" and t < max_steps and not state["stopped"]:
            x, x_poison, y = setting.poison(victim, t) or (None, None, None)
            if x is not None:
                batches["clean"].append(_bytes(x))
                batches["poisoned"].append(_bytes(x_poison))
                batches["labels"].append(y.cpu())
            val_acc = record(run, t + 1, "accumulative", victim.model)
            start = next(r["val_acc"] for r in rows if r["run"] == run and r["step"] == 0)
            state["stopped"] = not secret_ok(val_acc, start, secret)
            if state["stopped"]:
                log.info("secret rule: the accumulative phase stops after %s %d", unit, t + 1)
        elif run == "full":
            state["steps"] = t
            setting.trigger(victim, t)
            record(run, t + 1, "trigger", victim.model)
            done = True
        elif run == "clean" and t < state["steps"]:
            setting.clean(victim, t)
            record(run, t + 1, "accumulative", victim.model)
        else:  # the end of the clean phase: the trigger on a copy, one more clean step
            branch = copy.deepcopy(victim)
            setting.trigger(branch, t)
            phase = [dict(r, run="clean_trigger") for r in rows if r["run"] == "clean"]
            rows.extend(phase)
            record("clean_trigger", t + 1, "trigger", branch.model)
            setting.clean(victim, t)
            record(run, t + 1, "clean", victim.model)
            done = True
        state = {**state, "t": 0 if done else t + 1, "run": state["run"] + done}
        state["victim"] = None if done else victim.state_dict()
        victim = None if done else victim
        state["rng"] = rng_state()
        resume.save(state)
    return rows, batches


def _bytes(x: torch.Tensor) -> torch.Tensor:
    """Images as the uint8 a data pipeline would store (the detection step reads these)."""
    return (x.detach().cpu() * 255).round().to(torch.uint8)


def evaluator(val: ImageData, test: ImageData, accel=None):
    """evaluate(model) -> (validation accuracy, test accuracy), in eval mode."""

    def evaluate(model):
        return accuracy(model, val, accel=accel), accuracy(model, test, accel=accel)

    return evaluate
