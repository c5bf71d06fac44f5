"""Fermi-level calibration from a polycrystalline-gold reference.

Per detector channel (or a bin of adjacent channels) and photon energy, the gold spectrum is
fitted with a Fermi–Dirac edge times a linear density of states, plus a constant above the
edge, convolved with a Gaussian. The fitted E_F(θ) are then smoothed by a weighted
polynomial in θ: the correction subtracted from the energy axis of every measurement.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from reprise.errors import DataError
from reprise.papers.cecu2si2.lineshapes import Fit, fit_curve, gold_edge, poisson_sigma

EDGE_PARAMS = ("ef", "fwhm", "above", "below", "slope")
HV_TOLERANCE = 0.5  # eV: a measurement uses the gold reference taken at its photon energy


def fit_edge(energy, counts, temperature: float, fwhm_guess: float) -> Fit:
    """Fit one gold spectrum; E_F and the Gaussian FWHM come back with their errors."""
    energy, counts = np.asarray(energy, dtype=float), np.asarray(counts, dtype=float)
    n = max(len(counts) // 10, 1)
    below, above = float(np.median(counts[:n])), float(np.median(counts[-n:]))
    if not below > above:
        return Fit.failed(EDGE_PARAMS)
    half = np.nonzero(counts < (below + above) / 2)[0]
    ef0 = float(energy[half[half > n][0]]) if np.any(half > n) else float(energy.mean())

    def model(e, ef, fwhm, above_, below_, slope):
        return gold_edge(e, ef, fwhm, above_, below_, slope, temperature)

    fit = fit_curve(
        model,
        energy,
        counts,
        p0=[ef0, max(fwhm_guess, 1e-4), above, below - above, 0.0],
        names=EDGE_PARAMS,
        sigma=poisson_sigma(counts),
    )
    inside = energy[0] < fit["ef"] < energy[-1] and abs(fit["fwhm"]) < energy[-1] - energy[0]
    return fit if inside else Fit.failed(EDGE_PARAMS)


def fit_gold(gold: xr.DataArray, channel_bin: int) -> pd.DataFrame:
    """One edge fit per photon energy and bin of `channel_bin` adjacent channels."""
    rows = []
    angles = gold["angle"].values
    n_bins = len(angles) // channel_bin
    for hv in gold["hv"].values:
        spectra = gold.sel(hv=hv).values
        for b in range(n_bins):
            sl = slice(b * channel_bin, (b + 1) * channel_bin)
            fit = fit_edge(
                gold["energy"].values,
                spectra[:, sl].sum(axis=1),
                gold.attrs["temperature"],
                gold.attrs["energy_resolution"],
            )
            rows.append({"hv": float(hv), "angle": float(angles[sl].mean()), **fit.row()})
    return pd.DataFrame(rows)


def smooth_correction(edges: pd.DataFrame, degree: int) -> xr.Dataset:
    """Weighted polynomial E_F(θ) per photon energy, with the fit's coefficient covariance."""
    hvs = np.sort(edges["hv"].unique())
    coeffs = np.full((len(hvs), degree + 1), np.nan)
    errors = np.full(len(hvs), np.nan)
    for i, hv in enumerate(hvs):
        e = edges[(edges["hv"] == hv) & edges["fit_ok"]]
        deg = min(degree, len(e) - 2)  # keep a degree of freedom when few channels fitted
        if deg < 0:
            continue  # no usable gold edge: no calibration at this photon energy (NaN)
        w = 1 / e["ef_err"].to_numpy()
        coeffs[i, degree - deg :] = np.polyfit(e["angle"], e["ef"], deg, w=w)
        coeffs[i, : degree - deg] = 0.0
        # residual scatter of the channels about the curve, a measure of calibration accuracy
        fitted = np.polyval(coeffs[i], e["angle"])
        errors[i] = float(np.sqrt(np.mean((e["ef"] - fitted) ** 2)))
    return xr.Dataset(
        {
            "coefficients": (("hv", "power"), coeffs),
            "scatter": ("hv", errors),
        },
        coords={"hv": hvs, "power": np.arange(degree, -1, -1)},
        attrs={"description": "E_F(angle) = polyval(coefficients, angle [deg]) in eV"},
    )


def fermi_level(calib: xr.Dataset, hv: float, angles) -> np.ndarray:
    """E_F on the energy axis at `angles` for the gold reference taken at photon energy hv."""
    hvs = calib["hv"].values
    i = int(np.argmin(np.abs(hvs - hv)))
    if abs(hvs[i] - hv) > HV_TOLERANCE:
        raise DataError(
            f"no gold reference within {HV_TOLERANCE} eV of hv = {hv:g} eV "
            f"(calibrated photon energies: {', '.join(f'{h:g}' for h in hvs)})"
        )
    return np.polyval(calib["coefficients"].values[i], np.asarray(angles, dtype=float))


def shift_energy(values: np.ndarray, energy: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Resample values (..., energy, angle) at energy + shift[angle] (linear, NaN outside):
    the spectrum on an energy axis whose zero is E_F."""
    step = energy[1] - energy[0]
    if not np.allclose(np.diff(energy), step, rtol=1e-4, atol=1e-9):
        raise DataError("the energy axis must be uniformly spaced to apply the calibration")
    pos = (energy[:, None] + shift[None, :] - energy[0]) / step  # fractional index (E, angle)
    pos = np.where(np.isfinite(pos), pos, -1.0)  # no calibration: no data
    i0 = np.clip(np.floor(pos).astype(int), 0, len(energy) - 2)
    w = pos - i0
    cols = np.arange(len(shift))[None, :]
    out = values[..., i0, cols] * (1 - w) + values[..., i0 + 1, cols] * w
    out[..., (pos < 0) | (pos > len(energy) - 1)] = np.nan
    return out


def correct(da: xr.DataArray, calib: xr.Dataset) -> xr.DataArray:
    """The measurement with its energy axis referred to the calibrated E_F, channel by channel
    (and photon energy by photon energy for an hν scan). A single frame keeps each channel's
    shift as the coordinate energy_shift (angle): the linear resampling averages two energy
    pixels in the proportion it sets, a broadening a fit of the counts can model."""
    energy, angles = da["energy"].values, da["angle"].values
    if "hv" in da.dims:
        frames = [
            shift_energy(da.sel(hv=hv).values, energy, fermi_level(calib, hv, angles))
            for hv in da["hv"].values
        ]
        values = np.stack(frames, axis=da.dims.index("hv"))
    else:
        shift = fermi_level(calib, da.attrs["hv"], angles)
        return da.copy(data=shift_energy(da.values, energy, shift)).assign_coords(
            energy_shift=("angle", shift)
        )
    return da.copy(data=values)
