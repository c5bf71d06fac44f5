"""Fitted values against the simulation's ground truth: the metrics the claims read and the
per-band table of V, ε_f, m* and V0 (fitted ± error, truth, pull)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from reprise.papers.cecu2si2 import BANDS, METRICS
from reprise.papers.cecu2si2.calibration import fermi_level
from reprise.papers.cecu2si2.simulate import axis, fermi_offset

NAN = float("nan")


def _row(band, quantity, unit, value, error, truth) -> dict:
    diff = value - truth
    return {
        "band": band,
        "quantity": quantity,
        "unit": unit,
        "fitted": value,
        "error": error,
        "truth": truth,
        "difference": diff,
        "pull": diff / error if error and np.isfinite(error) and error > 0 else NAN,
    }


def _fermi_level_error(truth: dict, calib: xr.Dataset) -> float:
    """rms over channels and photon energies of calibrated minus simulated E_F (eV)."""
    m = truth["measurement"]
    angles = axis(*m["angles"]["range"], m["angles"]["step"])
    errors = [
        fermi_level(calib, hv, angles) - fermi_offset(angles, hv, m, m["cut"]["hv"])
        for hv in calib["hv"].values
    ]
    return float(np.sqrt(np.nanmean(np.square(errors))))


def metrics_and_summary(
    truth: dict, fits: pd.DataFrame, v0: pd.DataFrame, flatness: pd.DataFrame, calib
) -> tuple[dict, pd.DataFrame]:
    fits = fits.set_index("band")
    flat = flatness.set_index("band")
    metrics, rows = {}, []
    for b in BANDS:
        f = fits.loc[b] if b in fits.index else pd.Series(dtype=float)
        true_v = truth["model"]["bands"][b]["V"]
        cut = truth["bands"][b]["cut"]
        V, V_err = f.get("V", NAN), f.get("V_err", NAN)
        ef, ef_err = f.get("eps_f", NAN), f.get("eps_f_err", NAN)
        metrics |= {
            f"V_{b}_meV": 1e3 * V,
            f"V_{b}_err_meV": 1e3 * V_err,
            f"V_{b}_rel_error": (V - true_v) / true_v,
            f"eps_f_{b}_meV": 1e3 * ef,
            f"eps_f_{b}_err_meV": 1e3 * ef_err,
            f"eps_f_{b}_error_meV": 1e3 * (ef - cut["eps_f_eff"]),
            f"m_star_{b}": f.get("m_star", NAN),
            f"m_star_{b}_err": f.get("m_star_err", NAN),
            f"m_star_{b}_true": cut["m_star"],
            f"kf_kz_chi2_{b}": flat.loc[b, "chi2_red_constant"] if b in flat.index else NAN,
            f"kf_kz_modulation_{b}": flat.loc[b, "modulation"] if b in flat.index else NAN,
        }
        rows += [
            _row(b, "V", "meV", 1e3 * V, 1e3 * V_err, 1e3 * true_v),
            _row(b, "eps_f", "meV", 1e3 * ef, 1e3 * ef_err, 1e3 * cut["eps_f_eff"]),
            _row(b, "k_F", "1/Å", f.get("k_F", NAN), f.get("k_F_err", NAN), cut["k_F"]),
            _row(b, "v_F", "eV·Å", abs(f.get("v_F", NAN)), f.get("v_F_err", NAN), abs(cut["v_F"])),
            _row(b, "m_star", "m_e", f.get("m_star", NAN), f.get("m_star_err", NAN), cut["m_star"]),
        ]
    mx, mz = metrics["m_star_x"], metrics["m_star_z"]
    ratio = mx / mz
    ratio_err = abs(ratio) * np.hypot(metrics["m_star_x_err"] / mx, metrics["m_star_z_err"] / mz)
    v = v0.iloc[0]
    metrics |= {
        "mass_ratio_x_over_z": ratio,
        "mass_ratio_x_over_z_err": ratio_err,
        "mass_ratio_true": metrics["m_star_x_true"] / metrics["m_star_z_true"],
        "V0_eV": v["V0"],
        "V0_err_eV": v["V0_err"],
        "V0_error_eV": v["V0"] - truth["inner_potential"],
        "fermi_level_rms_error_meV": 1e3 * _fermi_level_error(truth, calib),
    }
    rows += [
        _row("x/z", "m_star ratio", "", ratio, ratio_err, metrics["mass_ratio_true"]),
        _row("all", "V0", "eV", v["V0"], v["V0_err"], truth["inner_potential"]),
    ]
    assert set(metrics) == set(METRICS), set(metrics) ^ set(METRICS)
    metrics = {k: float(x) if np.isfinite(x) else None for k, x in metrics.items()}
    return metrics, pd.DataFrame(rows)
