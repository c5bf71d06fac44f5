"""The hybridisation-band fit: E−(q) = ½[ε_c + ε_f − √((ε_c − ε_f)² + 4V²)] through the
measured dispersion of one band, with a local parabola ε_c(q) = e0 + b q² for the bare
conduction band (q from the pocket centre). Gives V and ε_f with their standard errors, and
from them k_F, v_F and m*/m_e = 7.62 eV·Å² · k_F / v_F with propagated errors.

MDC points carry an error in q, EDC points an error in E; each residual is divided by the
combined error along E, σ² = σ_E² + (dE/dq · σ_q)² (effective variance).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from reprise.papers.cecu2si2.lattice import HBAR2_ME
from reprise.papers.cecu2si2.model import hybridised

PARAMS = ("e0", "b", "V", "eps_f")
DERIVED = ("k_F", "v_F", "m_star")
MAX_V_REL_ERR = 0.5  # a V known to worse than ±50% is not determined by the points


def lower_band(q, e0, b, V, eps_f, c4=0.0):
    """E−(q) with ε_c = e0 + b q² (+ c4 q⁴, the cut fit's band shape)."""
    q2 = np.asarray(q) ** 2
    return hybridised(e0 + b * q2 + c4 * q2**2, eps_f, V)


def _slope(q, p, h=1e-5):
    return (lower_band(q + h, *p) - lower_band(q - h, *p)) / (2 * h)


def derived(p) -> np.ndarray:
    """(k_F, v_F, m*) of the fitted E− (p: PARAMS, optionally c4): E− = 0 where ε_c = V²/ε_f,
    i.e. c4 x² + b x = V²/ε_f − e0 for x = q² (the root that is b x without c4)."""
    e0, b, V, eps_f, *rest = p
    c4 = rest[0] if rest else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        target = V**2 / eps_f - e0
        q2 = 2 * target / (b + np.sign(b) * np.sqrt(b**2 + 4 * c4 * target))
        kf = np.sqrt(q2) if eps_f > 0 and q2 > 0 else np.nan
    vf = float(_slope(kf, p)) if np.isfinite(kf) else np.nan
    mass = HBAR2_ME * kf / abs(vf) if np.isfinite(vf) and vf != 0 else np.nan
    return np.array([kf, vf, mass])


def fit_band(points: pd.DataFrame, cfg: dict) -> dict:
    """Fit one band's dispersion points (columns q, energy, q_err, energy_err; NaN errors
    count as zero). cfg: V_guess, eps_f_guess, deep_energy (points below it seed the
    parabola). Returns values, errors, derived quantities and fit statistics; NaNs (and
    fit_ok False) when the points cannot determine the four parameters."""
    # float columns: an empty table of EDC peaks concatenated with MDC peaks is of dtype object
    p = points[["q", "energy", "q_err", "energy_err"]].astype(float).dropna(subset=["q", "energy"])
    q, e = p["q"].to_numpy(), p["energy"].to_numpy()
    sq = p["q_err"].fillna(0).to_numpy()
    se = p["energy_err"].fillna(0).to_numpy()
    result = {n: np.nan for n in PARAMS + DERIVED}
    result |= {f"{n}_err": np.nan for n in PARAMS + DERIVED}
    result |= {"n_points": len(p), "chi2_red": np.nan, "fit_ok": False}
    deep = e < cfg["deep_energy"]
    if len(p) < 2 * len(PARAMS) or deep.sum() < 3 or not np.all(sq + se > 0):
        return result
    # Deep points follow the bare band: a parabola in q seeds e0 and b.
    b0, e00 = np.polyfit(q[deep] ** 2, e[deep], 1)

    def residuals(par):
        sigma = np.sqrt(se**2 + (_slope(q, par) * sq) ** 2)
        return (lower_band(q, *par) - e) / sigma

    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for scale_v in (0.5, 1.0, 2.0):  # a few starts: V and ε_f trade off near E_F
            for scale_f in (0.5, 1.0, 2.0):
                x0 = [e00, b0, cfg["V_guess"] * scale_v, cfg["eps_f_guess"] * scale_f]
                try:
                    r = least_squares(residuals, x0, method="lm", max_nfev=4000)
                except (ValueError, np.linalg.LinAlgError):
                    continue
                if np.all(np.isfinite(r.x)) and (best is None or r.cost < best.cost):
                    best = r
    if best is None:
        return result
    par = best.x.copy()
    par[2] = abs(par[2])  # E− depends on V²
    dof = len(q) - len(PARAMS)
    chi2_red = 2 * best.cost / dof
    try:
        cov = np.linalg.inv(best.jac.T @ best.jac) * max(1.0, chi2_red)
    except np.linalg.LinAlgError:
        return result | {"chi2_red": chi2_red}
    errors = np.sqrt(np.clip(np.diag(cov), 0, None))
    # Points that miss the band's bend (a window off the band, only the bare parabola) leave
    # V free: a minimum exists but says nothing, so the fit is not ok.
    constrained = errors[2] < MAX_V_REL_ERR * par[2]
    ok = bool(np.all(np.isfinite(par)) and np.all(np.isfinite(errors)) and constrained)
    result |= dict(zip(PARAMS, par, strict=True))
    result |= {f"{n}_err": v for n, v in zip(PARAMS, errors, strict=True)}
    return with_derived(result, cov) | {"chi2_red": chi2_red, "fit_ok": ok}


def with_derived(result: dict, cov, names=PARAMS) -> dict:
    """result (the four PARAMS, or `names`: PARAMS and c4) with k_F, v_F, m* and their
    errors, the covariance cov of `names` propagated through numerical gradients (NaN
    errors without one)."""
    par = np.array([result[n] for n in names], dtype=float)
    values_d = derived(par) if np.isfinite(par).all() else np.full(len(DERIVED), np.nan)
    errors_d = np.full(len(DERIVED), np.nan)
    if cov is not None and np.isfinite(par).all():
        grad = np.zeros((len(DERIVED), len(names)))
        for j in range(len(names)):
            h = 1e-6 * max(abs(par[j]), 1e-3)
            step = np.zeros(len(names))
            step[j] = h
            grad[:, j] = (derived(par + step) - derived(par - step)) / (2 * h)
        errors_d = np.sqrt(np.clip(np.diag(grad @ cov @ grad.T), 0, None))
    out = dict(result) | dict(zip(DERIVED, values_d, strict=True))
    return out | {f"{n}_err": v for n, v in zip(DERIVED, errors_d, strict=True)}
