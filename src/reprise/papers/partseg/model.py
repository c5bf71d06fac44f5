"""Part segmentation by disentangling appearance and shape (Liu et al., CVPR 2021), and a
SCOPS-like baseline, in one file.

An image x and a thin-plate-spline warp of it, x' = T(x), show the same object in two
shapes. A shape encoder gives K part maps plus background (softmax over K+1 channels); an
appearance encoder gives a feature map. The bottleneck squeezes the appearance map into one
vector per part (its part-map-weighted mean) and expands it by painting each vector into
the part map of the *other* view; with coordinate channels a decoder then reconstructs
that view. Appearance must travel through K+1 vectors, so the geometry has to come from the
part maps: the parts become the regions of uniform appearance that move with the object.

Losses: reconstruction (L2 and SSIM, or a perceptual loss from a weights file), ArcFace
part classification of the per-part vectors, concentration, background, smoothness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

# --- thin-plate-spline warps ------------------------------------------------------------------


def control_grid(n: int) -> torch.Tensor:
    """n×n control points on [-1, 1]² as (n², 2) (x, y), the grid_sample convention."""
    t = torch.linspace(-1, 1, n)
    y, x = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([x.flatten(), y.flatten()], 1)


def _tps_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """U(r) = r² log r² between point sets a (B, N, 2) and b (B, M, 2) -> (B, N, M)."""
    r2 = (a[:, :, None] - b[:, None]).pow(2).sum(-1)
    return r2 * torch.log(r2.clamp_min(1e-12))


def tps_fit(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """The thin-plate spline f with f(src_i) = dst_i, as (B, N+3, 2) coefficients: N kernel
    weights, then the affine part (constant, x, y). src, dst: (B, N, 2)."""
    b, n, _ = src.shape
    k = _tps_kernel(src, src)
    p = torch.cat([src.new_ones(b, n, 1), src], -1)
    top = torch.cat([k, p], 2)
    bottom = torch.cat([p.transpose(1, 2), src.new_zeros(b, 3, 3)], 2)
    rhs = torch.cat([dst, dst.new_zeros(b, 3, 2)], 1)
    return torch.linalg.solve(torch.cat([top, bottom], 1), rhs)


def tps_apply(coef: torch.Tensor, src: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """f(points) for the spline fitted on control points `src`; points (B, M, 2)."""
    k = _tps_kernel(points, src)
    p = torch.cat([points.new_ones(*points.shape[:2], 1), points], -1)
    return torch.cat([k, p], -1) @ coef


def pixel_grid(h: int, w: int) -> torch.Tensor:
    """Pixel centres in grid_sample coordinates (align_corners=False), (h·w, 2) (x, y)."""
    ys = (torch.arange(h) + 0.5) / h * 2 - 1
    xs = (torch.arange(w) + 0.5) / w * 2 - 1
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([x.flatten(), y.flatten()], 1)


@dataclass
class Warp:
    """A batch of TPS warps: output pixel p samples the input at f(p)."""

    src: torch.Tensor  # (B, N, 2) control points in the output image
    dst: torch.Tensor  # (B, N, 2) where they sample the input

    @classmethod
    def random(cls, b, gen, points=3, rotation=15.0, scale=0.1, shift=0.05, jitter=0.05):
        """Random global similarity plus local jitter of an n×n control grid."""
        src = control_grid(points).expand(b, -1, -1)

        def u(*shape):
            return torch.rand(*shape, generator=gen) * 2 - 1

        a = torch.deg2rad(rotation * u(b))[:, None]
        s = (1 + scale * u(b))[:, None]
        rot = torch.stack([torch.cat([a.cos(), -a.sin()], 1), torch.cat([a.sin(), a.cos()], 1)], 1)
        dst = s[..., None] * src @ rot.transpose(1, 2) + shift * u(b, 1, 2)
        return cls(src, dst + jitter * u(b, src.shape[1], 2))

    def inverse(self) -> Warp:
        return Warp(self.dst, self.src)

    def grid(self, h: int, w: int) -> torch.Tensor:
        pts = pixel_grid(h, w).to(self.src).expand(self.src.shape[0], -1, -1)
        return tps_apply(tps_fit(self.src, self.dst), self.src, pts).view(-1, h, w, 2)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Warp images or maps (B, C, H, W); outside the input is zero."""
        g = self.grid(*x.shape[-2:])
        return F.grid_sample(x, g, mode="bilinear", padding_mode="zeros", align_corners=False)


# --- encoders, bottleneck, decoder --------------------------------------------------------------


def conv(cin, cout, stride=1, dilation=1, norm=False):
    """3×3 conv + ReLU; GroupNorm only where absolute colour should not matter (the shape
    encoder): it would erase the colours the appearance path must carry to the decoder."""
    layers = [nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation)]
    if norm:
        layers.append(nn.GroupNorm(4, cout))
    return nn.Sequential(*layers, nn.ReLU(inplace=True))


class ShapeEncoder(nn.Module):
    """Image -> K+1 part logits at half resolution; dilations widen the receptive field to
    the whole object, so a pixel's part can depend on where it sits in the object."""

    def __init__(self, parts: int, width: int):
        super().__init__()
        self.body = nn.Sequential(
            conv(3, width, stride=2, norm=True),
            conv(width, width, norm=True),
            conv(width, width, dilation=2, norm=True),
            conv(width, width, dilation=4, norm=True),
        )
        self.head = nn.Conv2d(width, parts + 1, 1)

    def forward(self, x):
        return self.head(self.body(x))


class AppearanceEncoder(nn.Module):
    """Image -> appearance feature map at half resolution (local: colour and texture)."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(conv(3, width, stride=2), conv(width, width))

    def forward(self, x):
        return self.body(x)


def squeeze(parts: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """Per-part appearance vectors f_k = Σ P_k F / Σ P_k: (B, K+1, H, W), (B, C, H, W) ->
    (B, K+1, C)."""
    mass = parts.sum((2, 3)).clamp_min(1e-6)
    return torch.einsum("bkhw,bchw->bkc", parts, feats) / mass[..., None]


def expand(parts: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """Paint each part's vector into its part map: Σ_k P_k f_k -> (B, C, H, W)."""
    return torch.einsum("bkhw,bkc->bchw", parts, vectors)


def coord_channels(x: torch.Tensor) -> torch.Tensor:
    """(x, y) in [-1, 1] as two channels, so the decoder knows where it paints."""
    b, _, h, w = x.shape
    return pixel_grid(h, w).to(x).T.reshape(1, 2, h, w).expand(b, -1, -1, -1)


class Decoder(nn.Module):
    """Painted appearance (+ coordinates) at half resolution -> RGB image at full resolution
    (the last conv predicts the 2×2 sub-pixels of each cell)."""

    def __init__(self, cin: int, width: int):
        super().__init__()
        self.body = nn.Sequential(
            conv(cin + 2, width),
            conv(width, width, dilation=2),
            nn.Conv2d(width, 3 * 4, 3, padding=1),
            nn.PixelShuffle(2),
        )

    def forward(self, z):
        return torch.sigmoid(self.body(torch.cat([z, coord_channels(z)], 1)))


class ArcFace(nn.Module):
    """Additive angular margin classifier (Deng et al.): part vector k must lie closer in
    angle to class k's weight than to any other by the margin m; s scales the logits."""

    def __init__(self, dim: int, classes: int, margin: float = 0.5, scale: float = 30.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, dim) / math.sqrt(dim))
        self.margin, self.scale = margin, scale

    def forward(self, feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = F.normalize(feats, dim=-1) @ F.normalize(self.weight, dim=-1).T
        theta = torch.acos(cos.clamp(-1 + 1e-6, 1 - 1e-6))
        target = F.one_hot(labels, cos.shape[-1]).bool()
        logits = torch.where(target, torch.cos(theta + self.margin), cos)
        return F.cross_entropy(self.scale * logits, labels)


# --- part-map geometry --------------------------------------------------------------------------


def centroids(parts: torch.Tensor) -> torch.Tensor:
    """Centre of mass of each map, (B, K, H, W) -> (B, K, 2) (x, y) in [-1, 1]."""
    b, k, h, w = parts.shape
    grid = pixel_grid(h, w).to(parts)
    p = parts.flatten(2)
    return (p @ grid) / p.sum(-1, keepdim=True).clamp_min(1e-6)


def concentration(parts: torch.Tensor) -> torch.Tensor:
    """SCOPS's concentration: the spatial variance of each (normalised) part map around its
    centroid, summed over x and y, averaged over parts and images."""
    b, k, h, w = parts.shape
    grid = pixel_grid(h, w).to(parts)
    p = parts.flatten(2)
    p = p / p.sum(-1, keepdim=True).clamp_min(1e-6)
    mu = p @ grid
    d2 = (grid[None, None] - mu[:, :, None]).pow(2).sum(-1)
    return (p * d2).sum(-1).mean()


def gaussian_concentration(parts: torch.Tensor, std: float) -> torch.Tensor:
    """The improved concentration: besides a small variance, each part map should look like
    one isotropic Gaussian of width `std` at its own centroid (cross-entropy of the
    normalised part map against that Gaussian). The variance alone is as happy with two far
    blobs that share a centroid as with one; this term is not, and it keeps small parts
    from dissolving into thin rims."""
    b, k, h, w = parts.shape
    grid = pixel_grid(h, w).to(parts)
    p = parts.flatten(2)
    p = p / p.sum(-1, keepdim=True).clamp_min(1e-6)
    mu = (p @ grid).detach()  # the target follows the part; it does not pull the part
    d2 = (grid[None, None] - mu[:, :, None]).pow(2).sum(-1)
    logq = F.log_softmax(-d2 / (2 * std**2), dim=-1)
    return -(p * logq).sum(-1).mean() / (h * w) ** 0.5


def background_loss(parts: torch.Tensor) -> torch.Tensor:
    """The image border is background: mean (1 - P_0) over the outermost ring."""
    bg = parts[:, 0]
    ring = torch.ones_like(bg[0], dtype=torch.bool)
    ring[1:-1, 1:-1] = False
    return (1 - bg[:, ring]).mean()


def smoothness(parts: torch.Tensor) -> torch.Tensor:
    """Total variation of the part maps: parts are contiguous regions."""
    dx = (parts[..., 1:] - parts[..., :-1]).abs().mean()
    dy = (parts[..., 1:, :] - parts[..., :-1, :]).abs().mean()
    return dx + dy


# --- reconstruction -----------------------------------------------------------------------------


def ssim(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Mean structural similarity over the valid area (uniform window, images in [0, 1])."""
    c1, c2 = 0.01**2, 0.03**2
    pool = nn.AvgPool2d(window, 1, window // 2, count_include_pad=False)
    ma, mb = pool(a), pool(b)
    va, vb = pool(a * a) - ma**2, pool(b * b) - mb**2
    cov = pool(a * b) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return (s * mask).sum() / (mask.sum() * a.shape[1]).clamp_min(1)


class Perceptual(nn.Module):
    """L2 between VGG-style feature maps at several depths (the paper's reconstruction loss).
    The network is built from a weights file (a state dict of 3×3 convs `features.<i>.weight`
    /`.bias`, as torchvision's VGG19 saves it), loaded with weights_only=True; there is no
    download: place the file and name it in the config."""

    def __init__(self, path: str, layers: int = 8, weights: tuple[float, ...] = ()):
        super().__init__()
        from reprise.errors import CheckpointError
        from reprise.io import load_checkpoint

        state = load_checkpoint(path)
        state = state.get("state_dict", state)
        convs = sorted({int(k.split(".")[1]) for k in state if k.startswith("features.")})[:layers]
        if not convs:
            raise CheckpointError(
                f"{path} has no `features.<i>.weight` tensors: expected a VGG state dict"
            )
        self.blocks = nn.ModuleList()
        for i in convs:
            w = state[f"features.{i}.weight"]
            c = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], padding=w.shape[2] // 2)
            c.weight.data.copy_(w)
            c.bias.data.copy_(state[f"features.{i}.bias"])
            self.blocks.append(c)
        self.weights = list(weights) or [1.0] * len(self.blocks)
        self.requires_grad_(False)
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        self.register_buffer("mean", mean.view(1, 3, 1, 1))
        self.register_buffer("std", std.view(1, 3, 1, 1))

    def forward(self, a, b, mask):
        a, b = (a - self.mean) / self.std, (b - self.mean) / self.std
        loss = ((a - b).pow(2) * mask).mean()
        for i, (conv_, w) in enumerate(zip(self.blocks, self.weights, strict=False)):
            a, b = F.relu(conv_(a)), F.relu(conv_(b))
            if i in (1, 3):  # VGG pools after its 2nd and 4th conv
                a, b, mask = F.max_pool2d(a, 2), F.max_pool2d(b, 2), F.max_pool2d(mask, 2)
            loss = loss + w * ((a - b).pow(2) * mask).mean()
        return loss


# --- the models -----------------------------------------------------------------------------------


@dataclass
class Config:
    method: str = "ups"  # the paper's model; "scops": the SCOPS-like baseline
    parts: int = 4
    width: int = 32
    bottleneck: bool = True  # False: the decoder gets the other view's appearance map as is
    weights: dict = field(default_factory=dict)  # loss name -> weight (0 or absent = off)
    concentration: str = "improved"  # or "plain" (SCOPS's variance only)
    gaussian_std: float = 0.15  # width of the improved concentration's target, in [-1, 1] units
    arc_margin: float = 0.5
    arc_scale: float = 30.0
    perceptual: str | None = None  # a VGG weights file; None -> L2 (+ SSIM) reconstruction


def geometry_losses(cfg: Config, parts: torch.Tensor) -> dict[str, torch.Tensor]:
    """Concentration (+ the improved term), background and smoothness of (B, K+1, H, W)."""
    fg = parts[:, 1:]
    out = {
        "concentration": concentration(fg),
        "background": background_loss(parts),
        "smoothness": smoothness(parts),
    }
    if cfg.concentration == "improved":
        out["gaussian"] = gaussian_concentration(fg, cfg.gaussian_std)
    return out


class PartSegmenter(nn.Module):
    """The paper's model: shape and appearance encoders, squeeze-expand bottleneck, decoder,
    cross-reconstruction between an image and its warp."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.shape = ShapeEncoder(cfg.parts, cfg.width)
        self.appearance = AppearanceEncoder(cfg.width)
        cin = cfg.width if cfg.bottleneck else cfg.width + cfg.parts + 1
        self.decoder = Decoder(cin, cfg.width)
        self.arcface = ArcFace(cfg.width, cfg.parts, cfg.arc_margin, cfg.arc_scale)
        self.perceptual = Perceptual(cfg.perceptual) if cfg.perceptual else None

    def part_maps(self, x):
        return self.shape(x).softmax(1)

    def features(self, x):
        """Part maps and per-part appearance vectors of images x."""
        parts = self.part_maps(x)
        return parts, squeeze(parts, self.appearance(x))

    def decode(self, parts, feats, vectors):
        """Reconstruct the view with `parts` from the other view's appearance."""
        if self.cfg.bottleneck:
            return self.decoder(expand(parts, vectors))
        return self.decoder(torch.cat([feats, parts], 1))  # ablation: no squeeze, no expand

    def reconstruction(self, out, x, mask):
        if self.perceptual is not None:
            return {"perceptual": self.perceptual(out, x, mask)}
        rec = {"l2": ((out - x).pow(2) * mask).sum() / (mask.sum() * 3).clamp_min(1)}
        if self.cfg.weights.get("ssim", 0):
            rec["ssim"] = 1 - ssim(out, x, mask)
        return rec

    def losses(self, x, warp: Warp):
        """All weighted terms for images x and their warps; returns (total, parts)."""
        xw, valid = warp(x), warp(torch.ones_like(x[:, :1]))
        valid = (valid > 0.999).float()
        p1, a1 = self.part_maps(x), self.appearance(x)
        p2, a2 = self.part_maps(xw), self.appearance(xw)
        f1, f2 = squeeze(p1, a1), squeeze(p2, a2)
        terms = {}
        # cross-reconstruction: each view from its own shape and the other view's appearance;
        # the original image has no invalid area, but its appearance map is unwarped
        for target, parts, feats, vectors, mask in (
            (x, p1, a2, f2, torch.ones_like(valid)),
            (xw, p2, a1, f1, valid),
        ):
            for k, v in self.reconstruction(
                self.decode(parts, feats, vectors), target, mask
            ).items():
                terms[k] = terms.get(k, 0) + v / 2
        if self.cfg.weights.get("arcface", 0):
            k = self.cfg.parts
            vec = torch.cat([f1[:, 1:], f2[:, 1:]]).reshape(-1, f1.shape[-1])
            labels = torch.arange(k, device=x.device).repeat(len(vec) // k)
            terms["arcface"] = self.arcface(vec, labels)  # background (k = 0) is skipped
        for parts in (p1, p2):
            for k, v in geometry_losses(self.cfg, parts).items():
                terms[k] = terms.get(k, 0) + v / 2
        return weighted(terms, self.cfg.weights), terms


class Scops(nn.Module):
    """SCOPS-like baseline (Hung et al. 2019): part maps from a shape encoder alone, trained
    by concentration, equivariance to the warp and semantic consistency: the image's feature
    map must be explained by one learned basis vector per part, shared by all images. SCOPS
    takes these features from an ImageNet VGG; with no download here they come from a fixed,
    randomly initialised conv layer on the image (plus the colours themselves)."""

    def __init__(self, cfg: Config, feature_dim: int = 16, seed: int = 0):
        super().__init__()
        self.cfg = cfg
        self.shape = ShapeEncoder(cfg.parts, cfg.width)
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("filters", torch.randn(feature_dim, 3, 5, 5, generator=gen) / 8.66)
        self.basis = nn.Parameter(torch.rand(cfg.parts + 1, feature_dim + 3) * 0.1)

    def part_maps(self, x):
        return self.shape(x).softmax(1)

    def semantic_features(self, x):
        v = torch.cat([F.relu(F.conv2d(x, self.filters, padding=2)), x], 1)
        v = F.avg_pool2d(v, 2)  # to the part maps' resolution
        return v / v.norm(dim=1, keepdim=True).clamp_min(1e-6)

    def losses(self, x, warp: Warp):
        xw = warp(x)
        p1, p2 = self.part_maps(x), self.part_maps(xw)
        valid = (warp(torch.ones_like(p1[:, :1])) > 0.999).float()
        terms = {"equivariance": ((warp(p1) - p2).pow(2) * valid).sum() / valid.sum().clamp_min(1)}
        basis = self.basis
        gram = F.normalize(basis[1:], dim=1) @ F.normalize(basis[1:], dim=1).T
        terms["orthogonality"] = (gram - torch.eye(len(gram), device=x.device)).pow(2).mean()
        terms["semantic"] = 0
        for img, parts in ((x, p1), (xw, p2)):
            v = self.semantic_features(img)
            terms["semantic"] = (
                terms["semantic"]
                + (v - expand(parts, basis[None].expand(len(x), -1, -1))).pow(2).mean() / 2
            )
        for parts in (p1, p2):
            for k, v in geometry_losses(self.cfg, parts).items():
                terms[k] = terms.get(k, 0) + v / 2
        return weighted(terms, self.cfg.weights), terms

    def features(self, x):
        """Part maps and, as part features, the semantic features pooled per part."""
        parts = self.part_maps(x)
        return parts, squeeze(parts, self.semantic_features(x))


def weighted(terms: dict, weights: dict) -> torch.Tensor:
    return sum(
        weights.get(k, 1.0 if k in ("l2", "perceptual") else 0.0) * v for k, v in terms.items()
    )


def build(cfg: Config) -> nn.Module:
    from reprise.errors import ConfigError

    if cfg.method not in ("ups", "scops"):
        raise ConfigError(f"model method {cfg.method!r} is unknown; expected 'ups' or 'scops'")
    if cfg.concentration not in ("improved", "plain"):
        raise ConfigError(
            f"concentration {cfg.concentration!r} is unknown; expected 'improved' or 'plain'"
        )
    return Scops(cfg) if cfg.method == "scops" else PartSegmenter(cfg)
