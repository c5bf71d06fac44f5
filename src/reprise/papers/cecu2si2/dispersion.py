"""Dispersions from a calibrated cut: momentum conversion, Lorentzian MDC fits and
Fermi–Dirac-divided EDC fits, band by band and branch by branch.

A band is analysed along one or both sides (branches) of its pocket centre on the cut: q is
the distance from the centre, so an electron pocket at X and a hole pocket at Z give the
same kind of table (band, branch, E, q ± error).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from reprise.papers.cecu2si2 import momentum
from reprise.papers.cecu2si2.lattice import points
from reprise.papers.cecu2si2.lineshapes import (
    K_B,
    Fit,
    broadened,
    broadened_fermi,
    fermi_dirac,
    fit_curve,
    peak_on_line,
    poisson_sigma,
)

PEAK = ("center", "hwhm", "amplitude", "offset", "slope")


def to_momentum(cut: xr.DataArray) -> xr.DataArray:
    """A calibrated cut (energy, angle) in momentum along the slit (energy, k). The columns
    stay the detector's: k is each angle's k∥ at E_F (not uniform, as sin θ), and each energy
    row is interpolated from its own E_kin onto it (a shift of under 1e-3 of k∥ in the
    window: a resampling onto a uniform grid would average neighbouring columns, a k
    resolution that changes from column to column). NaN beyond the detector's edges."""
    a = cut.attrs
    energy, angle = cut["energy"].values, cut["angle"].values
    k_rows = momentum.k_slit(
        momentum.kinetic_energy(a["hv"], a["work_function"], energy)[:, None], angle[None, :]
    )
    k = momentum.k_slit(momentum.kinetic_energy(a["hv"], a["work_function"], 0.0), angle)
    values = np.stack(
        [
            np.interp(k, kr, row, left=np.nan, right=np.nan)
            for kr, row in zip(k_rows, cut.values, strict=True)
        ]
    )
    coords = {"energy": energy, "k": k}
    if "energy_shift" in cut.coords:  # the calibration's resampling, for the cut fit
        coords["energy_shift"] = ("k", cut["energy_shift"].values)
    return xr.DataArray(values, dims=("energy", "k"), coords=coords, attrs=dict(a))


def analysis_bands(entries) -> dict[str, dict]:
    """The config's list of bands as {name: band}, in order. Each band: name, center (a
    point of the bct zone, lattice.points, or its in-plane [kx, ky] or [kx, ky, kz] in
    Å⁻¹), branches, q_range, width_guess, optionally edc_q_range."""
    bands = {}
    for entry in entries:
        band = {k: v for k, v in entry.items() if k != "name"}
        if entry["name"] in bands:
            raise ValueError(f"bands: the name {entry['name']!r} is given twice")
        bands[entry["name"]] = band
    return bands


def band_center(crystal: dict, center, azimuth: float) -> float:
    """Position of a band's pocket centre along the slit (Å⁻¹): center names a point of the
    bct zone or gives its momentum [kx, ky(, kz)] in Å⁻¹."""
    if isinstance(center, str):
        known = points(crystal["a"], crystal["c"])
        if center not in known:
            raise ValueError(f"band centre {center!r}: expected one of {sorted(known)} or [kx, ky]")
        point = known[center]
    else:
        point = np.asarray(center, dtype=float)
    along, _ = momentum.slit_position(point, azimuth)
    return float(along)


def branch_window(centre: float, sign: int, q_range) -> tuple[float, float]:
    """The k interval (low, high) of one side of a pocket: q_range away from its centre."""
    return tuple(sorted((centre + sign * q_range[0], centre + sign * q_range[1])))


def mdc_peak(x, y, lo: float, hi: float, guess: float | None, width: float) -> tuple[Fit, bool]:
    """One Lorentzian on a linear background fitted to counts y(x) on lo < x < hi (Poisson
    weights); the guess defaults to the maximum. Returns the fit and whether it is accepted."""
    inside = (x > lo) & (x < hi) & np.isfinite(y)
    x, y = x[inside], y[inside]
    if len(y) <= len(PEAK):
        return Fit.failed(PEAK), False
    guess = float(x[np.argmax(y)]) if guess is None else guess
    base = float(np.min(y))
    p0 = [guess, width, max(float(np.max(y)) - base, 1.0), base, 0.0]
    fit = fit_curve(peak_on_line, x, y, p0, PEAK, sigma=poisson_sigma(y))
    return fit, _accept(fit, lo, hi)


def _accept(fit: Fit, lo: float, hi: float) -> bool:
    """A peak inside its window, narrower than the window, above the background."""
    return (
        fit.ok
        and lo < fit["center"] < hi
        and 0 < abs(fit["hwhm"]) < (hi - lo)
        and fit["amplitude"] > 2 * fit.error("amplitude")
    )


def mdc_fits(ck: xr.DataArray, bands: dict, crystal: dict, cfg: dict) -> pd.DataFrame:
    """Lorentzian fits of momentum distribution curves, tracked from deep energies towards
    E_F. cfg: energy_range, energy_bin (rows summed per MDC)."""
    energy = ck["energy"].values
    lo_e, hi_e = cfg["energy_range"]
    rows_per = cfg["energy_bin"]
    idx = np.nonzero((energy >= lo_e) & (energy <= hi_e))[0]
    groups = [idx[i : i + rows_per] for i in range(0, len(idx) - rows_per + 1, rows_per)]
    k = ck["k"].values
    out = []
    for name, b in bands.items():
        centre = band_center(crystal, b["center"], ck.attrs["azimuth"])
        for sign in b["branches"]:
            lo, hi = branch_window(centre, sign, b["q_range"])
            guess = None
            for g in groups[::-1]:  # deepest energy first: bands are sharpest there
                mdc = ck.values[g].sum(axis=0)
                fit, ok = mdc_peak(k, mdc, lo, hi, guess, b["width_guess"])
                if ok:
                    guess = fit["center"]
                row = peak_row(fit, ok, "k") | {"n_summed": len(g)}
                row["q"], row["q_err"] = sign * (row["k"] - centre), row.pop("k_err")
                out.append(
                    {"band": name, "branch": int(sign), "energy": float(energy[g].mean()), **row}
                )
    return pd.DataFrame(out)


def fd_divided(ck: xr.DataArray, max_kt: float) -> xr.DataArray:
    """EDCs divided by the resolution-broadened Fermi–Dirac function, NaN above
    E_F + max_kt·k_BT where the division only amplifies noise: the states just above E_F."""
    a = ck.attrs
    energy = ck["energy"].values
    fd = broadened_fermi(energy, a["temperature"], a["energy_resolution"])
    keep = energy <= max_kt * K_B * a["temperature"]
    return ck.copy(data=np.where(keep[:, None], ck.values / fd[:, None], np.nan))


def edc_model(temperature: float, fwhm: float):
    """[Lorentzian + linear background] × Fermi–Dirac, ⊗ Gaussian resolution: the EDC peak
    model fitted to raw counts, so the peak position carries no bias from dividing by f."""

    def model(e, center, hwhm, amplitude, offset, slope):
        def sharp(x):
            return peak_on_line(x, center, hwhm, amplitude, offset, slope) * fermi_dirac(
                x, temperature
            )

        return broadened(e, sharp, fwhm)

    return model


def flat_window(
    ck: xr.DataArray, centre: float, sign: int, mdc: pd.DataFrame, band: dict, cfg: dict
) -> tuple[float, float]:
    """The q window of a branch's flat part, beyond k_F, chosen from the data.

    On the steep part (just inside k_F) an EDC at fixed q sums a band that disperses across
    the k bin and the angle resolution, and the Fermi edge cuts off the part above E_F: the
    peak sits deeper than E−(q). Beyond k_F the band is flat and the peak is unbiased.
    The side is where the MDC peaks move as E rises to E_F; k_F is the peak of the MDC at
    E_F (±k_BT), seeded by extrapolating the MDC peaks nearest E_F. NaNs if either fails."""
    m = mdc[mdc["fit_ok"]].dropna(subset=["q", "energy"]).nlargest(6, "energy")
    if len(m) < 3:
        return (np.nan, np.nan)
    slope, q0 = np.polyfit(m["energy"], m["q"], 1)  # q(E) near E_F, extrapolated to E = 0
    energy, k = ck["energy"].values, ck["k"].values
    at_ef = np.abs(energy) <= K_B * ck.attrs["temperature"]
    lo, hi = branch_window(centre, sign, band["q_range"])
    fit, ok = mdc_peak(
        k, ck.values[at_ef].sum(axis=0), lo, hi, centre + sign * q0, band["width_guess"]
    )
    if not ok:
        return (np.nan, np.nan)
    kf, span, margin = sign * (fit["center"] - centre), cfg["q_span"], cfg["k_bin"]
    lo, hi = (kf + margin, kf + margin + span) if slope > 0 else (kf - margin - span, kf - margin)
    return (max(lo, band["q_range"][0], 0.0), min(hi, band["q_range"][1]))


def edc_fits(
    ck: xr.DataArray, bands: dict, crystal: dict, cfg: dict, mdc: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Peak fits of EDCs at fixed q with edc_model. cfg: q_step, k_bin (Å⁻¹ summed per
    EDC), energy_range (the fit window), q_span (the flat part's width). The q window is a
    band's edc_q_range if the config gives one, else the flat part from the MDC peaks."""
    a = ck.attrs
    k, energy = ck["k"].values, ck["energy"].values
    window = (energy >= cfg["energy_range"][0]) & (energy <= cfg["energy_range"][1])
    x = energy[window]
    model = edc_model(a["temperature"], a["energy_resolution"])
    out = []
    for name, b in bands.items():
        centre = band_center(crystal, b["center"], a["azimuth"])
        for sign in b["branches"]:
            if "edc_q_range" in b:
                q_window = b["edc_q_range"]
            else:
                m = mdc[(mdc["band"] == name) & (mdc["branch"] == sign)]
                q_window = flat_window(ck, centre, sign, m, b, cfg)
            for q in np.arange(*q_window, cfg["q_step"]) if np.isfinite(q_window).all() else []:
                cols = np.abs(k - (centre + sign * q)) <= cfg["k_bin"] / 2
                edc = ck.values[window][:, cols]
                if not cols.any() or np.isnan(edc).any():
                    fit = Fit.failed(PEAK)
                else:
                    edc = edc.sum(axis=1)
                    p0 = [x[np.argmax(edc)], 0.005, float(edc.max()), float(edc.min()), 0.0]
                    fit = fit_curve(model, x, edc, p0, PEAK, sigma=poisson_sigma(edc))
                ok = _accept(fit, x[0], x[-1])
                out.append(
                    {
                        "band": name,
                        "branch": int(sign),
                        "q": float(q),
                        "n_summed": int(cols.sum()),
                        **peak_row(fit, ok, "energy"),
                    }
                )
    columns = ["band", "branch", "q", "n_summed", *peak_row(Fit.failed(PEAK), False, "energy")]
    return pd.DataFrame(out, columns=columns)  # no window found: no rows, same columns


def peak_row(fit: Fit, ok: bool, position: str) -> dict:
    """A peak fit as table columns (NaN where it was rejected)."""
    nan = np.nan
    return {
        position: fit["center"] if ok else nan,
        f"{position}_err": fit.error("center") if ok else nan,
        "hwhm": abs(fit["hwhm"]) if ok else nan,
        "amplitude": fit["amplitude"] if ok else nan,
        "offset": fit["offset"] if ok else nan,
        "slope": fit["slope"] if ok else nan,
        "fit_ok": ok,
    }
