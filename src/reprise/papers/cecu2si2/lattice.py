"""The body-centred tetragonal lattice of CeCu2Si2 (I4/mmm): symmetry points and zone sections.

Momenta are in Å⁻¹ in the conventional tetragonal frame (kx, ky along a, kz along c). The
reciprocal lattice of the bct cell is G = (2π/a)(h, k, 0) + (2π/c)(0, 0, l) with h + k + l
even, so Γ repeats along kz every 4π/c and Z = (0, 0, 2π/c) sits half-way.
"""

from __future__ import annotations

import itertools

import numpy as np

# k [Å⁻¹] = K_FREE * sqrt(E [eV]) for a free electron: sqrt(2 m_e) / ħ.
K_FREE = 0.5123
# ħ²/m_e in eV·Å²: m*/m_e = HBAR2_ME * k_F / v_F with v_F = dE/dk in eV·Å.
HBAR2_ME = 7.62


def points(a: float, c: float) -> dict[str, np.ndarray]:
    """High-symmetry points (kx, ky, kz) in Å⁻¹ of the bct zone: Γ (also G), Z, X, N, P.
    X, N and Z are half-way to the reciprocal-lattice vectors (1,1,0), (1,0,1) and (0,0,2);
    P = (π/a, π/a, π/c) is where three zones meet."""
    gamma = np.array([0.0, 0.0, 0.0])
    return {
        "G": gamma,
        "Γ": gamma,
        "Z": np.array([0.0, 0.0, 2 * np.pi / c]),
        "X": np.array([np.pi / a, np.pi / a, 0.0]),
        "N": np.array([np.pi / a, 0.0, np.pi / c]),
        "P": np.array([np.pi / a, np.pi / a, np.pi / c]),
    }


def reciprocal_lattice(a: float, c: float, reach: int = 2) -> np.ndarray:
    """Reciprocal lattice vectors with |h|, |k| <= reach and |l| <= 2 reach, shape (n, 3)."""
    r = range(-reach, reach + 1)
    hkl = [
        (h, k, l)
        for h, k, l in itertools.product(r, r, range(-2 * reach, 2 * reach + 1))
        if (h + k + l) % 2 == 0
    ]
    return np.array(hkl, dtype=float) * np.array([2 * np.pi / a, 2 * np.pi / a, 2 * np.pi / c])


def _clip(poly: np.ndarray, normal: np.ndarray, bound: float) -> np.ndarray:
    """Keep the part of convex polygon `poly` (n, 2) with normal · p <= bound."""
    eps = 1e-9 * (1 + abs(bound) + np.abs(normal).sum())
    if len(poly) == 0 or not np.abs(normal).sum() > eps:  # a bisector parallel to the plane
        return poly if bound >= -eps else poly[:0]
    dist = poly @ normal - bound
    out = []
    for i in range(len(poly)):
        j = (i + 1) % len(poly)
        if dist[i] <= eps:
            out.append(poly[i])
        if (dist[i] < -eps and dist[j] > eps) or (dist[i] > eps and dist[j] < -eps):
            out.append(poly[i] + dist[i] / (dist[i] - dist[j]) * (poly[j] - poly[i]))
    return np.array(out).reshape(-1, 2)


def zone_sections(
    a: float, c: float, origin, u, v, extent: tuple[float, float, float, float]
) -> list[np.ndarray]:
    """Brillouin-zone boundaries cut by the plane origin + s u + t v.

    Each Wigner–Seitz cell of the reciprocal lattice meets the plane in a convex polygon
    (half-planes of its bisectors); returns those polygons as (n, 2) arrays of (s, t) that
    fall inside extent = (s_min, s_max, t_min, t_max)."""
    origin, u, v = (np.asarray(x, dtype=float) for x in (origin, u, v))
    neighbours = reciprocal_lattice(a, c)
    neighbours = neighbours[neighbours.any(axis=1)]
    s0, s1, t0, t1 = extent
    # Cells that can meet the window: centres near the plane and near the window.
    reach = 2 * np.pi / a + 2 * np.pi / c
    span = max(abs(s0), abs(s1), abs(t0), abs(t1)) + reach + float(np.linalg.norm(origin))
    n = int(np.ceil(span / min(2 * np.pi / a, 4 * np.pi / c))) + 1
    centres = reciprocal_lattice(a, c, reach=n)
    rel = centres - origin
    s, t = rel @ u, rel @ v
    off_plane = np.linalg.norm(rel - np.outer(s, u) - np.outer(t, v), axis=1)
    near = (off_plane <= reach) & (s >= s0 - reach) & (s <= s1 + reach)
    near &= (t >= t0 - reach) & (t <= t1 + reach)
    box = np.array([[s0, t0], [s1, t0], [s1, t1], [s0, t1]])
    polygons = []
    for g0 in centres[near]:
        poly = box
        for d in neighbours:
            # |p - g0|² <= |p - g0 - d|²  <=>  2 (p - g0) · d <= |d|²
            normal = 2 * np.array([u @ d, v @ d])
            poly = _clip(poly, normal, d @ d - 2 * (origin - g0) @ d)
            if len(poly) == 0:
                break
        if len(poly) >= 3 and not any(
            len(p) == len(poly) and np.allclose(p, poly) for p in polygons
        ):  # cells above and below the plane can cut it in the same polygon
            polygons.append(poly)
    return polygons
