"""The photon-energy scan: k_F at every hν, the inner potential V0 from the kz periodicity,
the k∥–kz map, and the quasi-2D versus 3D test (does k_F change with kz?).

kz = K √(E_kin cos²θ + V0): V0 is the value that makes the k_F of the pocket centred on Z
periodic with the reciprocal-lattice period 4π/c, largest at Z = (0, 0, 2π/c):
k_F(kz) = A + B cos(kz c / 2) with B < 0, fitted for (A, B, V0).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr
from scipy.optimize import OptimizeWarning, curve_fit

from reprise.papers.cecu2si2 import momentum
from reprise.papers.cecu2si2.dispersion import band_center, branch_window, mdc_peak
from reprise.papers.cecu2si2.fermi_surface import window_sum


def kz_map(corrected_scan: xr.DataArray, window: float, v0: float) -> xr.Dataset:
    """Intensity at E_F over (hv, angle) with its k∥ and kz (V0 = v0) as 2-D coordinates."""
    a = corrected_scan.attrs
    plane = window_sum(corrected_scan, window).transpose("hv", "angle")
    ekin = momentum.kinetic_energy(plane["hv"].values, a["work_function"], 0.0)[:, None]
    theta = plane["angle"].values[None, :]
    kpar = momentum.k_slit(ekin, theta) * np.ones_like(plane.values)
    kz = momentum.kz(ekin, theta, v0, a["tilt"]) * np.ones_like(plane.values)
    return xr.Dataset(
        {"intensity": (("hv", "angle"), plane.values)},
        coords={
            "hv": plane["hv"].values,
            "angle": plane["angle"].values,
            "k_par": (("hv", "angle"), kpar),
            "kz": (("hv", "angle"), kz),
        },
        attrs={
            "inner_potential": float(v0),
            "window": float(window),
            "azimuth": float(a["azimuth"]),
        },
    )


def kf_by_hv(corrected_scan: xr.DataArray, bands: dict, crystal: dict, window: float):
    """One Lorentzian MDC fit at E_F per band branch and photon energy: k_F ± error."""
    a = corrected_scan.attrs
    plane = window_sum(corrected_scan, window).transpose("hv", "angle")
    counts = plane.values * corrected_scan.sel(energy=slice(-window, window)).sizes["energy"]
    rows = []
    for name, b in bands.items():
        centre = band_center(crystal, b["center"], a["azimuth"])
        for sign in b["branches"]:
            lo, hi = branch_window(centre, sign, b["q_range"])
            for i, hv in enumerate(plane["hv"].values):
                ekin = momentum.kinetic_energy(hv, a["work_function"], 0.0)
                k = momentum.k_slit(ekin, plane["angle"].values)
                fit, ok = mdc_peak(k, counts[i], lo, hi, None, b["width_guess"])
                kf = sign * (fit["center"] - centre) if ok else np.nan
                theta = np.degrees(np.arcsin(fit["center"] / momentum.k_slit(ekin, 90.0)))
                rows.append(
                    {
                        "band": name,
                        "branch": int(sign),
                        "hv": float(hv),
                        "theta": float(theta) if ok else np.nan,
                        "k_F": kf,
                        "k_F_err": fit.error("center") if ok else np.nan,
                        "fit_ok": ok,
                    }
                )
    return pd.DataFrame(rows)


def _kz(hv, theta, v0, work_function):
    return momentum.kz(momentum.kinetic_energy(hv, work_function, 0.0), theta, v0)


def fit_v0(points: pd.DataFrame, c: float, work_function: float, v0_range, v0_step: float):
    """V0 ± error from the Z-pocket k_F(hν): grid search (A, B linear at each V0, B < 0) then
    a joint least-squares refinement of (A, B, V0). NaNs when the points cannot fix it."""
    p = points.dropna(subset=["k_F", "k_F_err"])
    out = {
        "V0": np.nan,
        "V0_err": np.nan,
        "A": np.nan,
        "A_err": np.nan,
        "B": np.nan,
        "B_err": np.nan,
        "chi2_red": np.nan,
        "n_points": len(p),
        "fit_ok": False,
    }
    if len(p) < 5:
        return out
    hv, theta = p["hv"].to_numpy(), p["theta"].to_numpy()
    y, w = p["k_F"].to_numpy(), 1 / p["k_F_err"].to_numpy()

    def model(x, a, b, v0):
        return a + b * np.cos(_kz(x[0], x[1], v0, work_function) * c / 2)

    best = None
    for v0 in np.arange(v0_range[0], v0_range[1] + v0_step / 2, v0_step):
        design = np.stack([np.ones_like(y), np.cos(_kz(hv, theta, v0, work_function) * c / 2)], 1)
        coef, *_ = np.linalg.lstsq(design * w[:, None], y * w, rcond=None)
        chi2 = float(np.sum(((design @ coef - y) * w) ** 2))
        if coef[1] < 0 and (best is None or chi2 < best[0]):
            best = (chi2, coef[0], coef[1], v0)
    if best is None:
        return out
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            par, cov = curve_fit(
                model,
                np.stack([hv, theta]),
                y,
                p0=best[1:],
                sigma=1 / w,
                absolute_sigma=True,
                maxfev=4000,
            )
    except (RuntimeError, ValueError):
        return out
    chi2_red = float(np.sum(((model(np.stack([hv, theta]), *par) - y) * w) ** 2) / (len(y) - 3))
    err = np.sqrt(np.diag(cov) * max(1.0, chi2_red))
    ok = bool(np.all(np.isfinite(err)) and v0_range[0] <= par[2] <= v0_range[1] and par[1] < 0)
    out |= {
        "V0": par[2],
        "V0_err": err[2],
        "A": par[0],
        "A_err": err[0],
        "B": par[1],
        "B_err": err[1],
        "chi2_red": chi2_red,
        "fit_ok": ok,
    }
    return out


def with_kz(points: pd.DataFrame, v0: float, work_function: float) -> pd.DataFrame:
    """Each k_F point with the kz of its crossing."""
    return points.assign(kz=_kz(points["hv"], points["theta"], v0, work_function))


FLATNESS = (
    "band",
    "n_points",
    "k_F_mean",
    "k_F_mean_err",
    "chi2_red_constant",
    "variation",
    "modulation",
    "modulation_err",
    "modulation_sigma",
)


def flatness(points: pd.DataFrame, c: float) -> pd.DataFrame:
    """Per band: is k_F constant in kz? Weighted mean, reduced χ² of a constant, and the
    fitted cos(kz c/2) modulation with its error (relative to the mean)."""
    rows = []
    for band, g in points.dropna(subset=["k_F", "k_F_err", "kz"]).groupby("band"):
        y, w = g["k_F"].to_numpy(), 1 / g["k_F_err"].to_numpy()
        row = {"band": band, "n_points": len(g)}
        if len(g) < 4:
            rows.append(row)
            continue
        mean = float(np.sum(y * w**2) / np.sum(w**2))
        design = np.stack([np.ones_like(y), np.cos(g["kz"].to_numpy() * c / 2)], 1)
        coef, *_ = np.linalg.lstsq(design * w[:, None], y * w, rcond=None)
        cov = np.linalg.inv((design * w[:, None]).T @ (design * w[:, None]))
        resid = float(np.sum(((design @ coef - y) * w) ** 2) / (len(y) - 2))
        b_err = float(np.sqrt(cov[1, 1] * max(1.0, resid)))
        rows.append(
            row
            | {
                "k_F_mean": mean,
                "k_F_mean_err": float(1 / np.sqrt(np.sum(w**2))),
                "chi2_red_constant": float(np.sum(((y - mean) * w) ** 2) / (len(y) - 1)),
                "variation": float((y.max() - y.min()) / mean),
                "modulation": float(abs(coef[1]) / coef[0]),
                "modulation_err": b_err / abs(coef[0]),
                "modulation_sigma": float(abs(coef[1]) / b_err),
            }
        )
    return pd.DataFrame(rows, columns=list(FLATNESS))
