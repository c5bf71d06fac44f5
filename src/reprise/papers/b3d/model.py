"""The population's classifiers and a whole group of them evaluated as one.

    TinyCNN: conv3x3(c) relu | conv3x3 stride 2 (2c) relu | flatten | linear -> logits
    TinyMLP: flatten | linear(width) relu | linear(width) relu | linear -> logits

The MLP is the smoke model: on CPU a convolution with a handful of channels runs at a few
percent of a matmul's speed, and B3D spends millions of queries per model.

`Group` stacks G independently initialised TinyCNNs (torch.func.stack_module_state) and runs
them with vmap(functional_call): G models, each on its own batch, in one call. On CPU vmap
turns the convolutions into grouped convolutions, so a group trains at the cost of one wide
model instead of G Python-level forward/backward passes. No BatchNorm: running statistics
do not vmap, and these models are small enough to train without it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, stack_module_state

from reprise.errors import ConfigError


class TinyCNN(nn.Module):
    def __init__(self, in_channels: int, size: int, num_classes: int, width: int = 8):
        super().__init__()
        self.spec = {
            "in_channels": in_channels,
            "size": size,
            "num_classes": num_classes,
            "width": width,
        }
        c, half = width, (size + 1) // 2
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * c * half * half, num_classes)

    def forward(self, x):
        return self.head(self.body(x - 0.5))  # inputs in [0, 1], centred


class TinyMLP(nn.Module):
    def __init__(self, in_channels: int, size: int, num_classes: int, width: int = 64):
        super().__init__()
        self.spec = {
            "in_channels": in_channels,
            "size": size,
            "num_classes": num_classes,
            "width": width,
        }
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * size * size, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
        )
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(self.body(x - 0.5))


ARCHS = {"cnn": TinyCNN, "mlp": TinyMLP}


def build(arch: str, **spec) -> nn.Module:
    if arch not in ARCHS:
        raise ConfigError(f"population.arch = {arch!r}; expected one of {sorted(ARCHS)}")
    return ARCHS[arch](**spec)


class Group(nn.Module):
    """G models of one architecture as one module: params are G-stacked leaves; forward maps
    G×N×C×H×W inputs (model g sees x[g]) to G×N×K logits. spec = {arch, in_channels, size,
    num_classes, width}."""

    def __init__(self, spec: dict, seeds: list[int]):
        super().__init__()
        self.spec = dict(spec)
        models = []
        for seed in seeds:  # each model's initialisation comes from its own seed
            with torch.random.fork_rng():  # leaves the caller's random stream alone
                torch.manual_seed(seed)
                models.append(build(**spec))
        params, _ = stack_module_state(models)
        self.params = nn.ParameterDict(
            {k.replace(".", "/"): nn.Parameter(v) for k, v in params.items()}
        )
        # the architecture without weights; not a submodule, so not in the state dict
        object.__setattr__(self, "base", copy.deepcopy(models[0]).to("meta"))

    @property
    def size(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def _named(self) -> dict[str, torch.Tensor]:
        return {k.replace("/", "."): v for k, v in self.params.items()}

    def forward(self, x):
        def one(p, xi):
            return functional_call(self.base, p, (xi,))

        return torch.vmap(one)(self._named(), x)

    def member(self, g: int) -> dict[str, torch.Tensor]:
        """The state dict of model g (loads into build(**spec))."""
        return {k: v[g].detach().clone() for k, v in self._named().items()}
