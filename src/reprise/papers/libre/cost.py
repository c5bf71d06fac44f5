"""Inference cost: seconds per batch of the plain DNN, LiBRe and MC dropout on the same batch
(no gradients, after warm-up; the median of `repeats` runs), and the ratios to the DNN."""

from __future__ import annotations

import statistics
import time

import torch


@torch.no_grad()
def seconds_per_batch(model, x: torch.Tensor, repeats: int) -> float:
    model.eval()
    model(x)  # warm-up: allocations, kernel selection
    times = []
    for _ in range(repeats):
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model(x)
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cost_table(models: dict, x: torch.Tensor, repeats: int) -> dict:
    """{<name>_seconds, <name>_over_dnn} for models {"dnn": ..., "libre": ..., ...}."""
    seconds = {name: seconds_per_batch(m, x, repeats) for name, m in models.items()}
    out = {f"{name}_seconds": s for name, s in seconds.items()}
    out |= {f"{name}_over_dnn": s / seconds["dnn"] for name, s in seconds.items() if name != "dnn"}
    return out
