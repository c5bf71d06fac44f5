"""A classifier with an auxiliary head on its penultimate features.

    z = model.features(x)        # the backbone's features, as before
    logits = model.head(z)       # the classifier head, as before (== model(x))
    a = model.aux(z)             # the auxiliary head: N x outputs (raw, no activation)

The auxiliary head is a small MLP, Linear(d -> h), BatchNorm1d, ReLU, Linear(h -> outputs)
with h = d/2 by default: e.g. the rectified-rejection head of Pang et al. 2021 (one output,
a sigmoid on top). It lives inside the model, so the optimiser, the checkpoints and
`load_model` hold it, and attacks see the same `features`/`head` split as for any model.
"""

from __future__ import annotations

from torch import nn

from reprise.errors import ConfigError


class AuxHead(nn.Sequential):
    def __init__(self, feature_dim: int, outputs: int = 1, hidden: int | None = None, bn=True):
        hidden = hidden or max(1, feature_dim // 2)
        if outputs < 1 or hidden < 1:
            raise ConfigError(
                f"model.aux_head: outputs = {outputs}, hidden = {hidden}; expected >= 1"
            )
        super().__init__(
            nn.Linear(feature_dim, hidden),
            nn.BatchNorm1d(hidden) if bn else nn.Identity(),
            nn.ReLU(),
            nn.Linear(hidden, outputs),
        )


class WithAuxHead(nn.Module):
    """`base` (an ImageClassifier) plus `aux`, an AuxHead on its features."""

    def __init__(self, base: nn.Module, **aux_options):
        super().__init__()
        self.base = base
        self.aux = AuxHead(base.feature_dim, **aux_options)

    @property
    def feature_dim(self) -> int:
        return self.base.feature_dim

    @property
    def head(self) -> nn.Module:  # a property, so the state dict holds the head once
        return self.base.head

    def features(self, x):
        return self.base.features(x)

    def forward(self, x):
        return self.base(x)
