"""C members of a few pre-trained layers, computed together as ONE op per layer.

Layout: member c of a feature map owns channels [c·ch, (c+1)·ch) of an N × (C·ch) × H × W
tensor (vectors: N × (C·d)). Then a convolution of all members is one grouped convolution
(groups = C), a linear layer one batched matmul, BatchNorm one BatchNorm over C·ch channels,
GroupNorm one GroupNorm with C times the groups, and ReLU, pooling and flattening act on the
layout unchanged. The input of the first stacked layer is repeated C times along channels.

Each weight (and norm scale/shift) becomes `Members`: either a deep ensemble, C free copies
of the pre-trained tensor (LiBRe), or a mean-field Gaussian N(μ, exp(ψ)²) with μ = the
pre-trained tensor, sampled afresh for each member on every pass (the VI baselines). A
mean-field tensor also has the closed-form KL of its density to a prior N(0, σ_p²), the
ELBO's complexity term (`kl_to_prior`); an ensemble has no density and no KL.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from reprise.errors import ConfigError
from reprise.models.bottleneck_resnet import Bottleneck
from reprise.models.resnet import BasicBlock

POSTERIORS = ("ensemble", "mean_field")


class Members(nn.Module):
    """C versions of one pre-trained tensor t; calling it gives them as C × t.shape."""

    def __init__(self, t: torch.Tensor, members: int, posterior: str, psi_init=(-6.0, -5.0)):
        super().__init__()
        self.members, self.posterior = members, posterior
        t = t.detach().clone()
        if posterior == "ensemble":
            self.value = nn.Parameter(t.expand(members, *t.shape).clone())
        elif posterior == "mean_field":
            self.mu = nn.Parameter(t)
            self.psi = nn.Parameter(torch.empty_like(t).uniform_(*psi_init))
        else:
            raise ConfigError(f"posterior = {posterior!r}; expected one of {POSTERIORS}")

    def forward(self) -> torch.Tensor:
        if self.posterior == "ensemble":
            return self.value
        noise = torch.randn((self.members, *self.mu.shape), device=self.mu.device)
        return self.mu + self.psi.exp() * noise

    def kl(self, prior_var: float) -> torch.Tensor:
        """Σ over elements of KL(N(μ, σ²) ‖ N(0, s²)) = log(s/σ) + (σ² + μ²)/(2s²) − 1/2, with
        σ = exp(ψ) and s² = prior_var; 0 for an ensemble."""
        if self.posterior == "ensemble":
            return self.value.new_zeros(())
        ratio = ((2 * self.psi).exp() + self.mu.pow(2)) / (2 * prior_var)
        return (0.5 * math.log(prior_var) - self.psi + ratio - 0.5).sum()


class StackedConv2d(nn.Module):
    def __init__(self, conv: nn.Conv2d, members: int, posterior: str):
        super().__init__()
        self.members = members
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.groups = conv.groups * members
        self.weight = Members(conv.weight, members, posterior)
        self.bias = None if conv.bias is None else Members(conv.bias, members, posterior)

    def forward(self, x):
        b = None if self.bias is None else self.bias().flatten()
        w = self.weight().flatten(0, 1)  # (C·out) × in/groups × k × k
        return F.conv2d(x, w, b, self.stride, self.padding, self.dilation, self.groups)


class StackedLinear(nn.Module):
    def __init__(self, linear: nn.Linear, members: int, posterior: str):
        super().__init__()
        self.members = members
        self.weight = Members(linear.weight, members, posterior)
        self.bias = None if linear.bias is None else Members(linear.bias, members, posterior)

    def forward(self, x):
        x = x.view(len(x), self.members, -1)
        out = torch.einsum("nci,coi->nco", x, self.weight())
        if self.bias is not None:
            out = out + self.bias()
        return out.flatten(1)


class StackedBatchNorm2d(nn.Module):
    """BatchNorm over C·ch channels: per-member statistics and affine parameters, started
    from the pre-trained running statistics."""

    def __init__(self, bn: nn.BatchNorm2d, members: int, posterior: str):
        super().__init__()
        self.eps, self.momentum = bn.eps, bn.momentum
        self.weight = Members(bn.weight, members, posterior)
        self.bias = Members(bn.bias, members, posterior)
        self.register_buffer("running_mean", bn.running_mean.repeat(members))
        self.register_buffer("running_var", bn.running_var.repeat(members))

    def forward(self, x):
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight().flatten(),
            self.bias().flatten(),
            self.training,
            self.momentum,
            self.eps,
        )


class StackedGroupNorm(nn.Module):
    def __init__(self, gn: nn.GroupNorm, members: int, posterior: str):
        super().__init__()
        self.groups, self.eps = gn.num_groups * members, gn.eps
        self.weight = Members(gn.weight, members, posterior)
        self.bias = Members(gn.bias, members, posterior)

    def forward(self, x):
        return F.group_norm(
            x, self.groups, self.weight().flatten(), self.bias().flatten(), self.eps
        )


class StackedBasicBlock(nn.Module):
    """ResNet's BasicBlock with every conv and norm stacked; the identity shortcut acts on
    the stacked layout as it is."""

    def __init__(self, block: BasicBlock, members: int, posterior: str):
        super().__init__()
        s = lambda m: stack(m, members, posterior)  # noqa: E731
        self.conv1, self.norm1 = s(block.conv1), s(block.norm1)
        self.conv2, self.norm2 = s(block.conv2), s(block.norm2)
        self.shortcut = s(block.shortcut)

    forward = BasicBlock.forward  # the same layers by the same names, stacked


class StackedBottleneck(nn.Module):
    """The ImageNet ResNets' Bottleneck, every conv and norm stacked (the authors' LiBRe on
    ResNet-50: layer4[-1], whose shortcut is the identity)."""

    def __init__(self, block: Bottleneck, members: int, posterior: str):
        super().__init__()
        s = lambda m: stack(m, members, posterior)  # noqa: E731
        self.conv1, self.bn1 = s(block.conv1), s(block.bn1)
        self.conv2, self.bn2 = s(block.conv2), s(block.bn2)
        self.conv3, self.bn3 = s(block.conv3), s(block.bn3)
        self.downsample = None if block.downsample is None else s(block.downsample)

    forward = Bottleneck.forward  # the same layers by the same names, stacked


# layers that act on each channel alone: the stacked layout passes through them unchanged
LAYOUT_FREE = (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Identity)
STACKED = {
    nn.Conv2d: StackedConv2d,
    nn.Linear: StackedLinear,
    nn.BatchNorm2d: StackedBatchNorm2d,
    nn.GroupNorm: StackedGroupNorm,
    BasicBlock: StackedBasicBlock,
    Bottleneck: StackedBottleneck,
}


def stack(module: nn.Module, members: int, posterior: str) -> nn.Module:
    """The C-member version of a pre-trained module (a layer, a Sequential, a residual block)."""
    if isinstance(module, nn.Sequential):
        return nn.Sequential(*(stack(m, members, posterior) for m in module))
    if isinstance(module, LAYOUT_FREE):
        return module
    if type(module) in STACKED:
        return STACKED[type(module)](module, members, posterior)
    raise ConfigError(f"cannot make {type(module).__name__} Bayesian (no stacked version)")


def member_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The parameters new to the posterior, which get their own learning rate: an ensemble's
    copies, or a mean-field posterior's ψ (its μ continues the pre-trained weights, as in the
    authors' code)."""
    own = []
    for m in module.modules():
        if isinstance(m, Members):
            own.append(m.value if m.posterior == "ensemble" else m.psi)
    return own


def kl_to_prior(module: nn.Module, prior_var: float) -> torch.Tensor:
    """The KL of all the mean-field tensors in `module` to the prior N(0, prior_var), summed
    (a zero tensor when there are none)."""
    if not prior_var > 0:
        raise ConfigError(f"prior variance = {prior_var}; expected a positive number")
    terms = [m.kl(prior_var) for m in module.modules() if isinstance(m, Members)]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def prior_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The mean-field μ and ψ: their prior is the KL term's, so they get no weight decay."""
    return [
        p
        for m in module.modules()
        if isinstance(m, Members) and m.posterior == "mean_field"
        for p in (m.mu, m.psi)
    ]
