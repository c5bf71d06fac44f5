"""metrics.json of cecu2si2: every metric declared once, beside the function that computes it
from the fits and the simulation's ground truth (evaluate step). NaN is written as null."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from reprise.metric_table import MetricTable
from reprise.papers.cecu2si2 import BANDS

NAN = float("nan")


@dataclass
class Fits:
    """What the evaluate step compares: the truth (dict) and the analysis' tables."""

    truth: dict
    fits: Any  # hybridisation fits per band (pandas, indexed by band)
    v0: Any  # one row: V0, V0_err
    flatness: Any  # per band: chi2_red_constant, modulation (indexed by band)
    calibration: Any  # the gold calibration (xarray)

    def band(self, b: str) -> dict:
        return dict(self.fits.loc[b]) if b in self.fits.index else {}

    def true_cut(self, b: str) -> dict:
        """The truth of band b on the cut; NaN where it has none (JSON null: e.g. no k_F,
        a band that does not cross E_F)."""
        return {k: NAN if v is None else v for k, v in self.truth["bands"][b]["cut"].items()}


def _finite(values: dict) -> dict:
    return {k: float(x) if math.isfinite(x) else None for k, x in values.items()}


METRICS = MetricTable()


def band_fit(b: str, t: Fits) -> dict:
    f, cut = t.band(b), t.true_cut(b)
    true_v = t.truth["model"]["bands"][b]["V"]
    V, ef = f.get("V", NAN), f.get("eps_f", NAN)
    flat = t.flatness
    return _finite(
        {
            f"V_{b}_meV": 1e3 * V,
            f"V_{b}_err_meV": 1e3 * f.get("V_err", NAN),
            f"V_{b}_rel_error": (V - true_v) / true_v,
            f"eps_f_{b}_meV": 1e3 * ef,
            f"eps_f_{b}_err_meV": 1e3 * f.get("eps_f_err", NAN),
            f"eps_f_{b}_error_meV": 1e3 * (ef - cut["eps_f_eff"]),
            f"m_star_{b}": f.get("m_star", NAN),
            f"m_star_{b}_err": f.get("m_star_err", NAN),
            f"m_star_{b}_true": cut["m_star"],
            f"kf_kz_chi2_{b}": flat.loc[b, "chi2_red_constant"] if b in flat.index else NAN,
            f"kf_kz_modulation_{b}": flat.loc[b, "modulation"] if b in flat.index else NAN,
        }
    )


for _b in BANDS:
    METRICS.group(
        {
            key.format(b=_b): text.format(B=_b.upper())
            for key, text in {
                "V_{b}_meV": "fitted hybridisation V of the {B} band (meV)",
                "V_{b}_err_meV": "its standard error (meV)",
                "V_{b}_rel_error": "(fitted V - simulated V) / simulated V, {B} band",
                "eps_f_{b}_meV": "fitted f level of the {B} band (meV above E_F)",
                "eps_f_{b}_err_meV": "its standard error (meV)",
                "eps_f_{b}_error_meV": "fitted - simulated f level seen by the {B} band (meV)",
                "m_star_{b}": "effective mass m*/m_e of the {B} band from the fit (7.62 k_F / v_F)",
                "m_star_{b}_err": "its standard error",
                "m_star_{b}_true": "m*/m_e of the {B} band in the simulation",
                "kf_kz_chi2_{b}": "reduced chi2 of a kz-independent k_F for the {B} band",
                "kf_kz_modulation_{b}": "relative cos(kz c/2) modulation of k_F, {B} band",
            }.items()
        }
    )(partial(band_fit, _b))


@METRICS.group(
    {
        "mass_ratio_x_over_z": "m*(X band) / m*(Z pockets) from the fits",
        "mass_ratio_x_over_z_err": "its standard error",
        "mass_ratio_true": "m*(X) / m*(Z) in the simulation",
    }
)
def mass_ratio(t: Fits) -> dict:
    x, z = t.band("x"), t.band("z")
    mx, mz = x.get("m_star", NAN), z.get("m_star", NAN)
    ratio = mx / mz
    err = abs(ratio) * np.hypot(x.get("m_star_err", NAN) / mx, z.get("m_star_err", NAN) / mz)
    true = t.true_cut("x")["m_star"] / t.true_cut("z")["m_star"]
    return _finite(
        {"mass_ratio_x_over_z": ratio, "mass_ratio_x_over_z_err": err, "mass_ratio_true": true}
    )


@METRICS.group(
    {
        "V0_eV": "inner potential fitted from the kz periodicity (eV)",
        "V0_err_eV": "its standard error (eV)",
        "V0_error_eV": "fitted - simulated inner potential (eV)",
    }
)
def inner_potential(t: Fits) -> dict:
    v = t.v0.iloc[0]
    return _finite(
        {
            "V0_eV": v["V0"],
            "V0_err_eV": v["V0_err"],
            "V0_error_eV": v["V0"] - t.truth["inner_potential"],
        }
    )


@METRICS.metric("fermi_level_rms_error_meV", "rms error of the gold Fermi-level calibration (meV)")
def fermi_level_error(t: Fits) -> float | None:
    """rms over channels and photon energies of calibrated minus simulated E_F."""
    from reprise.papers.cecu2si2.calibration import fermi_level
    from reprise.papers.cecu2si2.simulate import axis, fermi_offset

    m = t.truth["measurement"]
    angles = axis(*m["angles"]["range"], m["angles"]["step"])
    errors = [
        fermi_level(t.calibration, hv, angles) - fermi_offset(angles, hv, m, m["cut"]["hv"])
        for hv in t.calibration["hv"].values
    ]
    return _finite({"e": 1e3 * float(np.sqrt(np.nanmean(np.square(errors))))})["e"]
