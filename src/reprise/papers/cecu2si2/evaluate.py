"""Fitted values against the simulation's ground truth: the per-band table of V, ε_f, m* and
V0 (fitted ± error, truth, pull). The metrics the claims read are in metrics.py."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reprise.papers.cecu2si2 import BANDS
from reprise.papers.cecu2si2.metrics import Fits, mass_ratio

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


def summary(t: Fits) -> pd.DataFrame:
    """Per band and quantity: fitted ± error, the simulated truth, difference and pull."""
    rows = []
    for b in BANDS:
        f, cut = t.band(b), t.true_cut(b)
        true_v = t.truth["model"]["bands"][b]["V"]
        rows += [
            _row(b, "V", "meV", 1e3 * f.get("V", NAN), 1e3 * f.get("V_err", NAN), 1e3 * true_v),
            _row(
                b,
                "eps_f",
                "meV",
                1e3 * f.get("eps_f", NAN),
                1e3 * f.get("eps_f_err", NAN),
                1e3 * cut["eps_f_eff"],
            ),
            _row(b, "k_F", "1/Å", f.get("k_F", NAN), f.get("k_F_err", NAN), cut["k_F"]),
            _row(b, "v_F", "eV·Å", abs(f.get("v_F", NAN)), f.get("v_F_err", NAN), abs(cut["v_F"])),
            _row(b, "m_star", "m_e", f.get("m_star", NAN), f.get("m_star_err", NAN), cut["m_star"]),
        ]
    ratio = mass_ratio(t)
    v = t.v0.iloc[0]
    rows += [
        _row(
            "x/z",
            "m_star ratio",
            "",
            *(
                NAN if ratio[k] is None else ratio[k]
                for k in ("mass_ratio_x_over_z", "mass_ratio_x_over_z_err", "mass_ratio_true")
            ),
        ),
        _row("all", "V0", "eV", v["V0"], v["V0_err"], t.truth["inner_potential"]),
    ]
    return pd.DataFrame(rows)
