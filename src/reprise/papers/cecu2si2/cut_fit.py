"""The hybridisation fit of the cut itself: the measured counts near a band's bend against
the resolution- and Fermi-cutoff-convolved spectral function of a two-level Anderson model.

Peak positions chained from MDC and EDC fits are biased where the band bends: an EDC at fixed
q sums a band dispersing across the k bin and the resolution, the Fermi edge removes the
part above E_F, and with different c and f widths the peaks of A(k, ω) are not at E−(k).
Fitting the counts with the model that made them removes all three at once:

    A = −Im[G_cc + w_f G_ff] / π,  G_cc = 1 / (z_c − V² / z_f),  G_ff = 1 / (z_f − V² / z_c)
    z_c = ω − ε_c(q) + iΓ_c(ω),  z_f = ω − ε_f + iΓ_f,  Γ_c = g0 + g2 ω²
    ε_c = e0 + b q² + c4 q⁴   (a real band is no exact parabola: 0.8 meV off over a window)
    counts = [(amp A + bg0 + bg1 ω) f(ω)] ⊗ Gauss_E(resolution) ⊗ Gauss_k(dk) + dark

integrated over each pixel's width in E and k, and resampled as the calibration resampled
the measurement (each column linearly at E + its energy_shift), on the pixels of a window
around the bend (all branches of a band share the parameters).
Errors are the Poisson-weighted covariance (model variance), scaled up by the reduced χ².
The chained point fit (hybridisation.fit_band) seeds it and chooses the window.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter1d, uniform_filter1d
from scipy.optimize import least_squares

from reprise.papers.cecu2si2.hybridisation import MAX_V_REL_ERR, PARAMS, with_derived
from reprise.papers.cecu2si2.lineshapes import FWHM_PER_SIGMA, K_B, fermi_dirac

SHAPE = ("c4", "g0", "g2", "gamma_f", "w_f", "dk")
LINEAR = ("amp", "bg0", "bg1", "dark")
NAMES = PARAMS + SHAPE + LINEAR
K_PER_DK = 3  # k samples per dk_guess: a column as wide as the k resolution is 3 samples
FINE_STEP = 2.5e-4  # eV: the model's energy grid, fine enough for the narrow f peak


def bend_window(seed: dict, deep_energy: float, q_range) -> tuple[float, float]:
    """The q interval around the bend (ε_c = ε_f) reaching down to deep_energy on the
    dispersing side and as far beyond on the flat side, inside the band's q_range."""
    e0, b, eps_f = seed["e0"], seed["b"], seed["eps_f"]
    with np.errstate(invalid="ignore"):
        q_bend = np.sqrt((eps_f - e0) / b)
        q_deep = np.sqrt((deep_energy - e0) / b)
    if not (np.isfinite(q_bend) and np.isfinite(q_deep)):
        return (np.nan, np.nan)
    half = abs(q_bend - q_deep)
    return (max(q_bend - half, q_range[0]), min(q_bend + half, q_range[1]))


class CutModel:
    """The model counts on the pixels (energy rows × k columns) of a momentum-space cut."""

    def __init__(
        self, energy, k, centre: float, temperature: float, resolution: float, shift=None, dk=0.015
    ):
        self.energy, self.k = np.asarray(energy, float), np.asarray(k, float)
        self.k_step = float(np.median(np.diff(self.k)))
        # a column integrates over its width: sharp MDC peaks are as narrow as the k
        # resolution dk; n_sub samples across each column, averaged in counts()
        self.n_sub = max(1, int(np.ceil(K_PER_DK * abs(self.k_step) / dk)))
        offsets = (np.arange(self.n_sub) + 0.5) / self.n_sub - 0.5
        width = np.gradient(self.k)[:, None]  # the detector's columns: k ∝ sin θ
        self.q2 = ((self.k[:, None] + width * offsets[None, :]).ravel() - centre) ** 2
        self.temperature, self.resolution = temperature, resolution
        step = float(np.median(np.diff(self.energy)))
        self.sub = max(1, int(np.ceil(step / FINE_STEP)))
        pad = int(np.ceil(3 * resolution / (step / self.sub))) + self.sub
        n = (len(self.energy) - 1) * self.sub + 1 + 2 * pad
        self.fine = self.energy[0] + (np.arange(n) - pad) * step / self.sub
        # The calibration resampled column j linearly at E + shift_j: a calibrated pixel is
        # (1 − φ) × the pixel φ steps below + φ × the one 1 − φ above, φ = frac(shift/step).
        phi = np.mod(np.zeros(len(self.k)) if shift is None else shift, step) / step
        phi = np.repeat(phi, self.n_sub)[None, :]
        rows = (pad + self.sub * np.arange(len(self.energy)))[:, None]
        self.take = [(rows - phi * self.sub, 1 - phi), (rows + (1 - phi) * self.sub, phi)]
        self.e_sigma = resolution / FWHM_PER_SIGMA / (step / self.sub)
        self.f = fermi_dirac(self.fine, temperature)[:, None]
        # the background terms (bg0, bg1, dark) do not depend on the fit's parameters
        bg = np.broadcast_to(self.f, (len(self.fine), len(self.q2)))
        self.background = self.resolved(np.stack([bg, self.fine[:, None] * bg, np.ones_like(bg)]))

    def shapes(self, p) -> np.ndarray:
        """The terms the linear parameters multiply (amp, bg0, bg1, dark), each resolved in
        energy: (4, rows, columns × n_sub samples)."""
        e0, b, V, eps_f, c4, g0, g2, gamma_f, w_f = p[: len(PARAMS) + len(SHAPE) - 1]
        w = self.fine[:, None]
        zc = w - (e0 + b * self.q2[None, :] + c4 * self.q2[None, :] ** 2) + 1j * (g0 + g2 * w**2)
        zf = w - eps_f + 1j * gamma_f
        a = -(1 / (zc - V**2 / zf) + w_f / (zf - V**2 / zc)).imag / np.pi
        return np.concatenate([self.resolved((a * self.f)[None]), self.background])

    def resolved(self, terms: np.ndarray) -> np.ndarray:
        """Terms on the fine energy grid (n, fine, samples) -> on the cut's pixels (n, rows,
        samples): the energy resolution, each pixel's width, the calibration's resampling."""
        out = gaussian_filter1d(terms, self.e_sigma, axis=1, mode="nearest")
        if self.sub > 1:  # a pixel integrates over its width: a box of one energy step
            out = uniform_filter1d(out, self.sub + 1 - self.sub % 2, axis=1, mode="nearest")
        total = 0.0
        for pos, weight in self.take:  # linear in the fine grid at fractional positions
            i0 = np.clip(np.floor(pos).astype(int), 0, out.shape[1] - 2)
            t = (pos - i0)[None]
            lo = np.take_along_axis(out, np.broadcast_to(i0, (out.shape[0], *i0.shape)), 1)
            hi = np.take_along_axis(out, np.broadcast_to(i0 + 1, (out.shape[0], *i0.shape)), 1)
            total = total + weight[None] * ((1 - t) * lo + t * hi)
        return total

    def counts(self, p) -> np.ndarray:
        """Model counts: the terms times the linear parameters, ⊗ the k resolution, averaged
        over each column's width."""
        n = len(PARAMS) + len(SHAPE)
        total = np.tensordot(np.asarray(p[n:], float), self.shapes(p), axes=1)
        sigma = p[n - 1] / FWHM_PER_SIGMA / abs(self.k_step / self.n_sub)
        return self.columns(gaussian_filter1d(total, sigma, axis=1, mode="nearest"))

    def columns(self, values: np.ndarray) -> np.ndarray:
        """(..., rows, columns × n_sub) samples -> (..., rows, columns): each column's mean."""
        return values.reshape(*values.shape[:-1], len(self.k), self.n_sub).mean(-1)


def analyse_cut(ck: xr.DataArray, bands: dict, crystal: dict, cfg: dict):
    """The analysis of a momentum-space cut: MDC and EDC peak fits, each band's point fit
    and its cut fit. cfg: the dispersion section. Returns (mdc, edc, fits) tables."""
    import pandas as pd

    from reprise.papers.cecu2si2 import dispersion, hybridisation

    mdc = dispersion.mdc_fits(ck, bands, crystal, cfg["mdc"])
    edc = dispersion.edc_fits(ck, bands, crystal, cfg["edc"], mdc)
    rows = []
    for name, band in bands.items():
        points = pd.concat(
            [
                mdc[mdc["band"] == name].assign(energy_err=np.nan),
                edc[edc["band"] == name].assign(q_err=np.nan),
            ]
        )
        seed = hybridisation.fit_band(points, cfg["hybridisation"])
        rows.append({"band": name, **fit_band_cut(ck, band, crystal, seed, cfg)})
    return mdc, edc, pd.DataFrame(rows)


def fit_band_cut(ck: xr.DataArray, band: dict, crystal: dict, seed: dict, cfg: dict) -> dict:
    """A band's cut fit (its branches jointly) seeded by its point fit `seed`; the point
    fit's V and ε_f stay in the result as points_V, points_eps_f (± errors) for comparison.
    cfg: the dispersion section (hybridisation.deep_energy, cut)."""
    from reprise.papers.cecu2si2.dispersion import band_center

    centre = band_center(crystal, band["center"], ck.attrs["azimuth"])
    window = bend_window(seed, cfg["hybridisation"]["deep_energy"], band["q_range"])
    fit = fit_cut(ck, [(centre, s, window) for s in band["branches"]], seed, cfg["cut"])
    kept = {f"points_{n}{e}": seed[f"{n}{e}"] for n in ("V", "eps_f") for e in ("", "_err")}
    return fit | kept | {"points_fit_ok": seed["fit_ok"], "points_chi2_red": seed["chi2_red"]}


def fit_cut(ck: xr.DataArray, windows, seed: dict, cfg: dict) -> dict:
    """Fit one band's pixels: windows is a list of (centre, sign, (q_lo, q_hi)) per branch;
    seed holds e0, b, V, eps_f (the point fit). cfg: energy_range (the fit's energies,
    the top at least a few k_BT above E_F), dk_guess (Å⁻¹ FWHM). Returns the fit like
    hybridisation.fit_band (values, errors, k_F, v_F, m*, chi2_red, fit_ok, n_pixels)."""
    a = ck.attrs
    energy, k = ck["energy"].values, ck["k"].values
    rows = (energy >= cfg["energy_range"][0]) & (energy <= cfg["energy_range"][1])
    rows &= energy <= 6 * K_B * a["temperature"] + 2 * a["energy_resolution"]
    pad = 3 * cfg["dk_max"]
    parts = []
    for centre, sign, (lo, hi) in windows:
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            continue
        k_lo, k_hi = sorted((centre + sign * lo, centre + sign * hi))
        cols = (k >= k_lo - pad) & (k <= k_hi + pad)
        inside = (k[cols] >= k_lo) & (k[cols] <= k_hi)
        data = ck.values[rows][:, cols]
        shift = ck["energy_shift"].values[cols] if "energy_shift" in ck.coords else None
        model = CutModel(
            energy[rows],
            k[cols],
            centre,
            a["temperature"],
            a["energy_resolution"],
            shift,
            cfg["dk_guess"],
        )
        mask = inside[None, :] & np.isfinite(data)
        parts.append((model, data, mask))
    nan = {n: np.nan for n in PARAMS} | {f"{n}_err": np.nan for n in PARAMS}
    failed = with_derived(nan, None) | {"chi2_red": np.nan, "fit_ok": False, "n_pixels": 0}
    n_pix = sum(int(m.sum()) for _, _, m in parts)
    if not parts or n_pix < 10 * len(NAMES) or not np.isfinite([seed[n] for n in PARAMS]).all():
        return failed
    x0 = _start(parts, seed, cfg)
    lo_b = [
        -np.inf,
        -np.inf,
        0.0,
        -0.1,
        -np.inf,
        1e-4,
        0.0,
        FINE_STEP,
        0.0,
        0.0,
        0.0,
        -np.inf,
        -np.inf,
        0,
    ]
    hi_b = [np.inf, np.inf, 0.3, 0.1, np.inf, 0.3, 100.0, 0.05, 10.0, cfg["dk_max"]] + [np.inf] * 4
    x0 = np.clip(x0, np.array(lo_b) + 1e-9, np.array(hi_b) - 1e-9)
    weights = [np.sqrt(np.maximum(d, 1.0)) for _, d, _ in parts]

    def residuals(p):
        return np.concatenate(
            [((m.counts(p) - d) / w)[mk] for (m, d, mk), w in zip(parts, weights, strict=True)]
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            r = least_squares(residuals, x0, bounds=(lo_b, hi_b), x_scale="jac", max_nfev=300)
            # Pearson weights from the fitted model: unbiased where counts are low
            weights = [np.sqrt(np.maximum(m.counts(r.x), 1.0)) for m, _, _ in parts]
            r = least_squares(residuals, r.x, bounds=(lo_b, hi_b), x_scale="jac", max_nfev=300)
        except (ValueError, np.linalg.LinAlgError):
            return failed
    dof = n_pix - len(NAMES)
    chi2_red = 2 * r.cost / dof
    try:
        cov = np.linalg.pinv(r.jac.T @ r.jac) * max(1.0, chi2_red)
    except np.linalg.LinAlgError:
        return failed | {"chi2_red": chi2_red}
    npar = len(PARAMS)
    par, pcov = r.x[:npar], cov[:npar, :npar]
    errors = np.sqrt(np.clip(np.diag(pcov), 0, None))
    out = dict(zip(PARAMS, par, strict=True)) | {
        f"{n}_err": e for n, e in zip(PARAMS, errors, strict=True)
    }
    out |= {n: float(v) for n, v in zip(NAMES[npar:], r.x[npar:], strict=True)}
    ok = bool(np.all(np.isfinite(errors)) and errors[2] < MAX_V_REL_ERR * par[2] and r.success)
    band = (*PARAMS, "c4")  # k_F, v_F, m* of the fitted band shape, c4 included
    k = len(band)
    fit = with_derived(out, cov[:k, :k], band)
    return fit | {"chi2_red": chi2_red, "fit_ok": ok, "n_pixels": n_pix}


def _start(parts, seed: dict, cfg: dict) -> np.ndarray:
    """The seed's band, typical widths, and the linear parameters by linear least squares."""
    shape = [seed["e0"], seed["b"], abs(seed["V"]), seed["eps_f"], 0.0, 0.01, 0.0, 0.002, 0.2]
    shape.append(cfg["dk_guess"])
    cols, y = [], []
    for m, d, mk in parts:
        cols.append(m.columns(m.shapes(shape))[:, mk].T)
        y.append(d[mk])
    lin, *_ = np.linalg.lstsq(np.concatenate(cols), np.concatenate(y), rcond=None)
    lin[0], lin[3] = max(lin[0], 1e-6), max(lin[3], 0.0)
    return np.array(shape + list(lin))
