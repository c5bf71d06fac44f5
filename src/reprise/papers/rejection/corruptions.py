"""Procedural corruptions: the smoke stand-in for CIFAR-10-C (Hendrycks & Dietterich 2019).

Five families named as their CIFAR-10-C counterparts, five severities each, applied to
images in [0, 1] of any size (N × C × H × W). They are generated here, not read from
CIFAR-10-C, and tables label them `procedural`:

- gaussian_noise: additive N(0, σ²), σ = 0.08 … 0.38 (a fixed generator per severity).
- gaussian_blur: a Gaussian kernel of σ = 0.03 … 0.12 of the image side.
- contrast: pull towards each image's mean, x' = m + c·(x − m), c = 0.75 … 0.15 (CIFAR-10-C's).
- brightness: x + b, b = 0.1 … 0.5, clipped.
- jpeg_compression: JPEG-like quantisation of 8×8 block DCT coefficients with the IJG
  luminance table at quality 80 … 40 (CIFAR-10-C's qualities), per channel, no chroma step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from reprise.errors import ConfigError

SEVERITIES = (1, 2, 3, 4, 5)
NOISE_SIGMA = (0.08, 0.12, 0.18, 0.26, 0.38)
BLUR_SIGMA = (0.03, 0.05, 0.07, 0.09, 0.12)  # fraction of the image side
CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)
BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)
JPEG_QUALITY = (80, 65, 58, 50, 40)
JPEG_LUMINANCE = torch.tensor(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=torch.float64,
)


def gaussian_noise(x, s, seed):
    g = torch.Generator().manual_seed(seed * 10 + s)
    return x + NOISE_SIGMA[s - 1] * torch.randn(x.shape, generator=g, dtype=x.dtype)


def gaussian_blur(x, s, seed):
    sigma = BLUR_SIGMA[s - 1] * x.shape[-1]
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    padded = F.pad(x, (radius,) * 4, mode="replicate")
    rows = F.conv2d(padded, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(rows, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def contrast(x, s, seed):
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return m + CONTRAST[s - 1] * (x - m)


def brightness(x, s, seed):
    return x + BRIGHTNESS[s - 1]


def jpeg_compression(x, s, seed):
    q = JPEG_QUALITY[s - 1]
    scale = 5000 / q if q < 50 else 200 - 2 * q
    table = ((JPEG_LUMINANCE * scale + 50) / 100).floor().clamp(min=1)
    n, c, h, w = x.shape
    ph, pw = -h % 8, -w % 8
    img = F.pad(x.double() * 255 - 128, (0, pw, 0, ph), mode="replicate")
    blocks = img.unfold(2, 8, 8).unfold(3, 8, 8)  # n c bh bw 8 8
    d = dct_matrix(8)
    coeff = d @ blocks @ d.T
    restored = d.T @ ((coeff / table).round() * table) @ d
    out = restored.permute(0, 1, 2, 4, 3, 5).reshape(n, c, h + ph, w + pw)
    return ((out[..., :h, :w] + 128) / 255).to(x.dtype)


def dct_matrix(n: int) -> torch.Tensor:
    """The orthonormal DCT-II matrix: coefficients = D @ block @ D.T."""
    k, i = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)).double() * math.sqrt(2 / n)
    d[0] /= math.sqrt(2)
    return d


FAMILIES = {
    f.__name__: f for f in (gaussian_noise, gaussian_blur, contrast, brightness, jpeg_compression)
}


def corrupt(x: torch.Tensor, family: str, severity: int, seed: int = 0) -> torch.Tensor:
    """x (N × C × H × W in [0, 1]) under `family` at `severity` (1..5), clipped to [0, 1]."""
    if family not in FAMILIES:
        raise ConfigError(
            f"corruptions.names: unknown procedural corruption {family!r}; "
            f"expected one of {', '.join(FAMILIES)}"
        )
    if severity not in SEVERITIES:
        raise ConfigError(f"corruptions.severities: {severity} is not one of {SEVERITIES}")
    return FAMILIES[family](x.float(), severity, seed).clamp(0, 1)


def split_name(family: str, severity: int) -> str:
    """`<corruption>-<severity>`, the naming of reprise.data's cifar10c splits."""
    return f"{family}-{severity}"
