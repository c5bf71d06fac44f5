"""Procedural objects with parts and exact ground truth: the smoke stand-in for CelebA/CUB.

Each object is drawn in its own frame (units of the image size, origin at the object's
centre, y down) from ellipses and triangles, then placed by a similarity transform (rotation,
scale, translation). The same transform maps the canonical landmarks into the image, so the
landmarks and part masks are exact, not annotated. Painter's order decides occlusion; the
mask is the label of the last shape covering a pixel centre. Images are rendered at
`SUPERSAMPLE`× and averaged (anti-aliasing); the mask is read at the pixel centres.

Categories:
- faces: skin, hair, eyes, nose, mouth; landmarks as MAFL's five (eye centres, nose tip,
  mouth corners); error normalised by the inter-ocular distance.
- birds: body, head, beak, wing, tail; landmarks beak, eye, wing centre, tail tip, belly;
  error normalised by the edge length sqrt(w·h) of the object's bounding box.

Numpy only (no torch): the data step stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reprise.errors import DataError
from reprise.io import atomic_path

SUPERSAMPLE = 3  # odd, so the middle sample of each pixel is its centre (read for the mask)


@dataclass(frozen=True)
class Category:
    parts: tuple[str, ...]  # label 1.. (0 is background)
    landmarks: tuple[str, ...]
    norm: str  # "interocular" or "box"


CATEGORIES = {
    "faces": Category(
        ("skin", "hair", "eye", "nose", "mouth"),
        ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right"),
        "interocular",
    ),
    "birds": Category(
        ("body", "head", "beak", "wing", "tail"),
        ("beak", "eye", "wing", "tail_tip", "belly"),
        "box",
    ),
}


def _u(rng, lo, hi, n):
    return rng.uniform(lo, hi, n).astype(np.float32)


def _col(c):
    """(N, 3) colours -> (N, 1, 1, 3) for broadcasting over the pixel grid."""
    return c[:, None, None, :]


class Canvas:
    """N images being painted at once: object-frame coordinates of every sample, the RGB
    canvas and the label canvas."""

    def __init__(self, n: int, size: int, rng: np.random.Generator, pose: dict):
        s = size * SUPERSAMPLE
        grid = (np.arange(s, dtype=np.float32) + 0.5) / s  # sample centres in [0, 1]
        gx, gy = np.meshgrid(grid, grid)  # image frame, units of the image size
        self.n, self.size, self.rng = n, size, rng
        self.angle = np.deg2rad(_u(rng, -pose["rotation"], pose["rotation"], n))
        self.scale = _u(rng, *pose["scale"], n)
        self.flip = np.where(rng.random(n) < pose.get("flip", 0.0), -1.0, 1.0).astype(np.float32)
        t = pose["translation"]
        self.centre = 0.5 + np.stack([_u(rng, -t, t, n), _u(rng, -t, t, n)], 1)
        # object frame = R(-angle)(p - centre) / scale, x mirrored when flipped
        dx, dy = gx[None] - self.centre[:, 0, None, None], gy[None] - self.centre[:, 1, None, None]
        c, si = np.cos(self.angle)[:, None, None], np.sin(self.angle)[:, None, None]
        sc = self.scale[:, None, None]
        self.x = (c * dx + si * dy) / sc * self.flip[:, None, None]
        self.y = (-si * dx + c * dy) / sc
        self.gx, self.gy = gx, gy
        self.rgb = np.zeros((n, s, s, 3), np.float32)
        self.label = np.zeros((n, s, s), np.uint8)

    def to_image(self, px, py):
        """Object-frame points (N, ...) -> pixel coordinates (x, y), pixel centres at i+0.5."""
        px = px * self.flip.reshape((-1,) + (1,) * (px.ndim - 1))
        c = np.cos(self.angle).reshape((-1,) + (1,) * (px.ndim - 1))
        si = np.sin(self.angle).reshape((-1,) + (1,) * (px.ndim - 1))
        sc = self.scale.reshape((-1,) + (1,) * (px.ndim - 1))
        cx = self.centre[:, 0].reshape(c.shape)
        cy = self.centre[:, 1].reshape(c.shape)
        x = cx + sc * (c * px - si * py)
        y = cy + sc * (si * px + c * py)
        return x * self.size, y * self.size

    def paint(self, inside, colour, label, amp=None):
        """Paint the samples `inside` (N, S, S) with `colour` (N, 3), modulated by stripes
        fixed to the object (random frequency, orientation, phase; amplitude `amp`)."""
        n, iy, ix = np.nonzero(inside)  # only the covered samples: parts are small
        col = colour[n]
        if amp is not None:
            r = self.rng
            f, th, ph = _u(r, 8, 30, self.n), _u(r, 0, np.pi, self.n), _u(r, 0, 2 * np.pi, self.n)
            x, y = self.x[n, iy, ix], self.y[n, iy, ix]
            wave = np.sin(f[n] * (np.cos(th[n]) * x + np.sin(th[n]) * y) + ph[n])
            col = np.clip(col * (1 + amp[n] * wave)[:, None], 0, 1)
        self.rgb[n, iy, ix] = col
        if label is not None:
            self.label[n, iy, ix] = label

    def ellipse(self, cx, cy, a, b, angle=None, frame="object"):
        x, y = (self.x, self.y) if frame == "object" else (self.gx[None], self.gy[None])
        dx, dy = x - cx[:, None, None], y - cy[:, None, None]
        if angle is not None:
            c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
            dx, dy = c * dx + s * dy, -s * dx + c * dy
        return (dx / a[:, None, None]) ** 2 + (dy / b[:, None, None]) ** 2 <= 1.0

    def triangle(self, p0, p1, p2):
        """Inside the object-frame triangle with vertices p_i = (x (N,), y (N,))."""

        def side(a, b):
            return (b[0] - a[0])[:, None, None] * (self.y - a[1][:, None, None]) - (b[1] - a[1])[
                :, None, None
            ] * (self.x - a[0][:, None, None])

        s0, s1, s2 = side(p0, p1), side(p1, p2), side(p2, p0)
        return ((s0 >= 0) & (s1 >= 0) & (s2 >= 0)) | ((s0 <= 0) & (s1 <= 0) & (s2 <= 0))

    def background(self, clutter: int):
        """Base colour with a gradient, then `clutter` random ellipses in the image frame."""
        r, n = self.rng, self.n
        base = _u(r, 0.0, 1.0, 3 * n).reshape(n, 3)
        grad = _u(r, -0.3, 0.3, 2 * n).reshape(n, 2)
        g = grad[:, 0, None, None] * (self.gx - 0.5) + grad[:, 1, None, None] * (self.gy - 0.5)
        self.rgb = np.clip(_col(base) + g[..., None], 0, 1).astype(np.float32)
        for _ in range(clutter):
            shape = self.ellipse(
                _u(r, 0, 1, n),
                _u(r, 0, 1, n),
                _u(r, 0.03, 0.15, n),
                _u(r, 0.03, 0.15, n),
                _u(r, 0, np.pi, n),
                frame="image",
            )
            keep = r.random(n) < 0.8  # a random number of clutter shapes per image
            self.paint(shape & keep[:, None, None], _u(r, 0, 1, 3 * n).reshape(n, 3), None)

    def finish(self, noise: float):
        s, k = self.size, SUPERSAMPLE
        img = self.rgb.reshape(self.n, s, k, s, k, 3).mean((2, 4))
        img = img + self.rng.normal(0, noise, img.shape).astype(np.float32)
        images = np.clip(np.round(img * 255), 0, 255).astype(np.uint8).transpose(0, 3, 1, 2)
        masks = self.label[:, k // 2 :: k, k // 2 :: k].copy()
        return images, masks


# natural hair colours: black, dark brown, brown, auburn, blond, grey
HAIR = np.array(
    [[0.08, 0.06, 0.05], [0.25, 0.15, 0.08], [0.45, 0.30, 0.15], [0.55, 0.22, 0.10],
     [0.85, 0.72, 0.45], [0.65, 0.65, 0.65]],
    np.float32,
)  # fmt: skip


def _pick(rng, palette, n, tint):
    """One palette colour per image with a random tint."""
    base = palette[rng.integers(len(palette), size=n)]
    return np.clip(base + _u(rng, -tint, tint, 3 * n).reshape(n, 3), 0, 1).astype(np.float32)


def _skin_tones(rng, n):
    """Skin-like tones (light to dark) with a random tint, so skin is not just any colour."""
    t = _u(rng, 0, 1, n)[:, None]
    light, dark = np.array([0.96, 0.80, 0.68]), np.array([0.40, 0.25, 0.15])
    tint = _u(rng, -0.08, 0.08, 3 * n).reshape(n, 3)
    return np.clip(light * (1 - t) + dark * t + tint, 0, 1).astype(np.float32)


def draw_faces(cv: Canvas):
    r, n = cv.rng, cv.n
    z = np.zeros(n, np.float32)
    hair_col = _pick(r, HAIR, n, 0.08)
    skin_col = _skin_tones(r, n)
    fw, fh = _u(r, 0.22, 0.27, n), _u(r, 0.28, 0.33, n)  # face half-width/height
    hair = cv.ellipse(z, -0.05 + z, fw + _u(r, 0.03, 0.06, n), fh + _u(r, 0.0, 0.04, n))
    cv.paint(hair, hair_col, 2, _u(r, 0, 0.3, n))
    cv.paint(cv.ellipse(z, 0.02 + z, fw, fh), skin_col, 1, _u(r, 0, 0.08, n))
    fringe = hair & (cv.y < _u(r, -0.22, -0.16, n)[:, None, None])
    cv.paint(fringe, hair_col, 2, _u(r, 0, 0.3, n))
    ex, ey = _u(r, 0.085, 0.115, n), _u(r, -0.07, -0.03, n)
    ea, eb = _u(r, 0.035, 0.05, n), _u(r, 0.022, 0.032, n)
    sclera = np.clip(0.9 + _u(r, -0.1, 0.1, 3 * n).reshape(n, 3), 0, 1)
    iris = _u(r, 0, 0.5, 3 * n).reshape(n, 3)
    for side in (-1, 1):
        cv.paint(cv.ellipse(side * ex, ey, ea, eb), sclera, 3)
        cv.paint(cv.ellipse(side * ex, ey, 0.6 * eb, 0.6 * eb), iris, 3)
    top, tip, hw = ey + 0.03, _u(r, 0.07, 0.10, n), _u(r, 0.03, 0.045, n)
    nose_col = np.clip(skin_col * _u(r, 0.6, 0.8, n)[:, None], 0, 1)
    cv.paint(cv.triangle((z, top), (-hw, tip), (hw, tip)), nose_col, 4)
    my, mw, mh = _u(r, 0.16, 0.20, n), _u(r, 0.07, 0.10, n), _u(r, 0.022, 0.035, n)
    lips = np.stack([_u(r, 0.5, 0.9, n), _u(r, 0.05, 0.3, n), _u(r, 0.1, 0.35, n)], 1)
    cv.paint(cv.ellipse(z, my, mw, mh), lips, 5)
    # MAFL's five, in the object frame; the nose point is 3/4 down the nose, inside it
    px = np.stack([-ex, ex, z, -0.85 * mw, 0.85 * mw], 1)  # corners just inside the lips
    py = np.stack([ey, ey, top + 0.75 * (tip - top), my, my], 1)
    return px, py


def draw_birds(cv: Canvas):
    r, n = cv.rng, cv.n
    z = np.zeros(n, np.float32)
    body_col = _u(r, 0, 1, 3 * n).reshape(n, 3)
    wing_col = np.clip(body_col * _u(r, 0.3, 0.7, n)[:, None] + _u(r, 0, 0.4, n)[:, None], 0, 1)
    head_col = np.where(
        r.random(n)[:, None] < 0.5, body_col, _u(r, 0, 1, 3 * n).reshape(n, 3)
    ).astype(np.float32)
    beak_col = np.stack([_u(r, 0.8, 1, n), _u(r, 0.5, 0.85, n), _u(r, 0, 0.2, n)], 1)
    tail_col = np.clip(wing_col * _u(r, 0.7, 1.0, n)[:, None], 0, 1)
    ba, bb = _u(r, 0.20, 0.25, n), _u(r, 0.11, 0.15, n)
    tilt = np.deg2rad(_u(r, -15, 0, n))
    tx, ty, tw = _u(r, -0.40, -0.34, n), _u(r, 0.06, 0.14, n), _u(r, 0.05, 0.08, n)
    cv.paint(cv.triangle((-0.12 + z, -0.02 + z), (tx, ty - tw), (tx, ty + tw)), tail_col, 5)
    cv.paint(cv.ellipse(z, 0.04 + z, ba, bb, tilt), body_col, 1, _u(r, 0, 0.2, n))
    hx, hy, hr = ba - 0.02 + _u(r, -0.02, 0.02, n), _u(r, -0.16, -0.10, n), _u(r, 0.075, 0.095, n)
    bl = _u(r, 0.08, 0.12, n)  # beak length
    beak = cv.triangle(
        (hx + 0.6 * hr, hy - 0.5 * hr), (hx + 0.6 * hr, hy + 0.5 * hr), (hx + hr + bl, hy)
    )
    cv.paint(beak, beak_col, 3)
    cv.paint(cv.ellipse(hx, hy, hr, hr), head_col, 2, _u(r, 0, 0.15, n))
    ex, ey = hx + 0.35 * hr, hy - 0.2 * hr
    cv.paint(cv.ellipse(ex, ey, 0.22 * hr, 0.22 * hr), np.zeros((n, 3), np.float32) + 0.05, 2)
    wx, wy = _u(r, -0.06, 0.0, n), _u(r, -0.03, 0.02, n)
    wa, wb = _u(r, 0.13, 0.17, n), _u(r, 0.045, 0.065, n)
    cv.paint(cv.ellipse(wx, wy, wa, wb, tilt - np.deg2rad(10)), wing_col, 4, _u(r, 0, 0.3, n))
    # beak: a third of the way from the head to the tip (the tip itself is sub-pixel thin);
    # body: the belly, 0.8 of the half-height below the centre in the body's tilted frame
    belly = 0.8 * bb
    px = np.stack([hx + hr + 0.33 * bl, ex, wx, tx + 0.03, -np.sin(tilt) * belly], 1)
    py = np.stack([hy, ey, wy, ty, 0.04 + np.cos(tilt) * belly], 1)
    return px, py


DRAW = {"faces": draw_faces, "birds": draw_birds}


def generate(category: str, n: int, size: int, seed: int, cfg: dict) -> dict:
    """n objects of `category` at size×size: images (N,3,H,W) uint8, masks (N,H,W) uint8
    (0 background, 1.. the category's parts), landmarks (N,L,2) float32 (x, y) in pixels
    (pixel centres at i + 0.5) and the normaliser of the landmark error per image."""
    if category not in CATEGORIES:
        raise DataError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
    rng = np.random.default_rng(seed)
    out = {k: [] for k in ("images", "masks", "landmarks")}
    chunk = 256  # bounds memory: the supersampled canvases are chunk×(3·size)²×3 floats
    for start in range(0, n, chunk):
        cv = Canvas(min(chunk, n - start), size, rng, cfg["pose"])
        cv.background(cfg["clutter"])
        px, py = DRAW[category](cv)
        x, y = cv.to_image(px, py)
        images, masks = cv.finish(cfg["noise"])
        out["images"].append(images)
        out["masks"].append(masks)
        out["landmarks"].append(np.stack([x, y], -1).astype(np.float32))
    data = {k: np.concatenate(v) for k, v in out.items()}
    data["norm"] = normaliser(category, data["landmarks"], data["masks"])
    return data


def normaliser(category: str, landmarks: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per-image length that divides the landmark error: inter-ocular distance (faces) or
    the edge length sqrt(w·h) of the foreground's bounding box (birds)."""
    if CATEGORIES[category].norm == "interocular":
        return np.linalg.norm(landmarks[:, 0] - landmarks[:, 1], axis=-1).astype(np.float32)
    fg = masks > 0
    rows, cols = fg.any(2), fg.any(1)

    def extent(a):
        idx = np.arange(a.shape[1])
        return np.where(a, idx, -1).max(1) - np.where(a, idx, a.shape[1]).min(1) + 1

    return np.sqrt(extent(rows) * extent(cols)).astype(np.float32)


def save(path: str | Path, category: str, data: dict) -> None:
    cat = CATEGORIES[category]
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            **data,
            category=np.array(category),
            parts=np.array(cat.parts),
            landmark_names=np.array(cat.landmarks),
        )


def load(path: str | Path) -> dict:
    """A generated split (no pickle: plain arrays only)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is not a partseg data split: {e}") from None
    need = {"images", "masks", "landmarks", "norm", "category", "parts", "landmark_names"}
    if missing := need - set(data):
        raise DataError(f"{path} lacks {sorted(missing)}; expected the arrays {sorted(need)}")
    data["category"] = str(data["category"])
    return data
