"""cecu2si2 on cuts it was not built on (issue 23): an independent generator, not the
project's simulator: its own hybridised Green's function (constant c and f widths), Fermi
factor, Gaussian energy and k resolution and Poisson noise, written straight in k. Random V
(5-30 meV), eps_f (-5..10 meV), band, temperature and resolution; prints the error and the
pull (error / quoted sigma) of V and eps_f per draw. A measurement, not yet a test: on
2026-12-01 the pulls were far from unit width (see issue 23's closing note).

    python benchmarks/cecu2si2_independent.py SEED DRAWS
"""

import sys
import warnings

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from reprise.papers.cecu2si2 import cut_fit, dispersion, hybridisation

warnings.filterwarnings("ignore")

with open("config/papers/cecu2si2.yaml") as fh:
    cfg = yaml.safe_load(fh)["smoke"]
crystal, disp = cfg["crystal"], cfg["dispersion"]
KB = 8.617333e-5


def gauss(y, step, fwhm, axis):
    s = fwhm / 2.3548 / step
    n = int(4 * s) + 1
    x = np.arange(-n, n + 1)
    g = np.exp(-(x**2) / (2 * s * s))
    g /= g.sum()
    return np.apply_along_axis(lambda v: np.convolve(v, g, mode="same"), axis, y)


rng = np.random.default_rng(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
rows = []
for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 10):
    V = rng.uniform(0.005, 0.030)
    ef = rng.uniform(-0.005, 0.010)
    T = rng.uniform(5, 30)
    R = rng.uniform(0.003, 0.012)
    e0 = rng.uniform(-0.5, -0.25)
    b = rng.uniform(3, 8)
    centre = dispersion.band_center(crystal, "X", 0.0)
    E = np.arange(-0.25, 0.04, 0.0005)
    k = np.arange(centre - 0.6, centre + 0.6001, 0.004)
    q = np.abs(k - centre)
    ec = e0 + b * q**2
    w = E[:, None]
    G = 1 / (w - ec[None] - V**2 / (w - ef + 0.002j) + 0.01j)
    A = -G.imag / (1 + np.exp(np.clip(w / (KB * T), -60, 60)))
    A = gauss(gauss(A, 0.0005, R, 0), 0.004, 0.012, 1)
    counts = rng.poisson(A / A.max() * 2000 + 5).astype(float)
    ck = xr.DataArray(
        counts,
        dims=("energy", "k"),
        coords={"energy": E, "k": k},
        attrs=dict(temperature=T, energy_resolution=R, azimuth=0.0),
    )
    bands = {"x": {"center": "X", "branches": [-1], "q_range": [0.05, 0.55], "width_guess": 0.02}}
    mdc = dispersion.mdc_fits(ck, bands, crystal, disp["mdc"])
    edc = dispersion.edc_fits(ck, bands, crystal, disp["edc"], mdc)
    pts = pd.concat([mdc.assign(energy_err=np.nan), edc.assign(q_err=np.nan)])
    f = hybridisation.fit_band(pts, disp["hybridisation"])
    if len(sys.argv) > 3:
        win = cut_fit.bend_window(f, disp["hybridisation"]["deep_energy"], bands["x"]["q_range"])
        f = cut_fit.fit_cut(ck, [(centre, -1, win)], f, disp["cut"])
    rows.append(
        dict(
            V=V,
            ef=ef,
            T=T,
            R=R,
            Vfit=f["V"],
            Verr=f["V_err"],
            effit=f["eps_f"],
            eferr=f["eps_f_err"],
            ok=f["fit_ok"],
            nedc=len(edc),
        )
    )
    r = rows[-1]
    pull_v, pull_f = (r["Vfit"] - V) / r["Verr"], (r["effit"] - ef) / r["eferr"]
    print(
        f"V={V * 1e3:5.1f} ef={ef * 1e3:5.1f} T={T:4.1f} R={R * 1e3:4.1f} | "
        f"dV/V={(r['Vfit'] - V) / V:+.3f} pullV={pull_v:+6.1f} "
        f"def={1e3 * (r['effit'] - ef):+.2f}meV pullef={pull_f:+6.1f} ok={r['ok']}",
        flush=True,
    )
