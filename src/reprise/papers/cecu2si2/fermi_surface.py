"""Fermi-surface maps: intensity in a window around E_F, converted from (tilt, angle) to
(kx, ky) and symmetrised with the fourfold symmetry of the tetragonal lattice."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from scipy.ndimage import map_coordinates

from reprise.papers.cecu2si2 import momentum


def window_sum(da: xr.DataArray, window: float) -> xr.DataArray:
    """Mean intensity over |E − E_F| <= window (a calibrated energy axis)."""
    sel = da.sel(energy=slice(-window, window))
    if sel.sizes["energy"] == 0:
        sel = da.sel(energy=0.0, method="nearest").expand_dims("energy")
    return sel.mean("energy", skipna=True)


def _fractional_index(axis: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of values on a uniform axis in index units (NaN stays NaN)."""
    return (values - axis[0]) / (axis[1] - axis[0])


def symmetrise(image: np.ndarray) -> np.ndarray:
    """Average over the eight operations of C4v on a square grid centred on k = 0."""
    ops = []
    for rotated in (np.rot90(image, r) for r in range(4)):
        ops += [rotated, rotated.T]
    with warnings.catch_warnings():  # points no operation reaches stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack(ops), axis=0)


def fermi_surface(corrected_map: xr.DataArray, cfg: dict) -> xr.Dataset:
    """The map at E_F on a (ky, kx) grid: raw and symmetrised. cfg: window, k_max, k_step."""
    a = corrected_map.attrs
    plane = window_sum(corrected_map, cfg["window"]).transpose("tilt", "angle")
    n = int(round(cfg["k_max"] / cfg["k_step"]))
    k = np.linspace(-n * cfg["k_step"], n * cfg["k_step"], 2 * n + 1)
    kx, ky = np.meshgrid(k, k)  # image rows are ky
    ekin = momentum.kinetic_energy(a["hv"], a["work_function"], 0.0)
    theta, tilt = momentum.angles_of(kx, ky, ekin, a["azimuth"])
    rows = _fractional_index(plane["tilt"].values, tilt)
    cols = _fractional_index(plane["angle"].values, theta)
    inside = (rows >= 0) & (rows <= plane.sizes["tilt"] - 1) & (cols >= 0)
    inside &= cols <= plane.sizes["angle"] - 1
    image = map_coordinates(
        np.nan_to_num(plane.values), [np.nan_to_num(rows), np.nan_to_num(cols)], order=1
    )
    image = np.where(inside, image, np.nan)
    return xr.Dataset(
        {
            "intensity": (("ky", "kx"), image),
            "symmetrised": (("ky", "kx"), symmetrise(image)),
        },
        coords={"kx": k, "ky": k},
        attrs={
            "hv": float(a["hv"]),
            "window": float(cfg["window"]),
            "work_function": float(a["work_function"]),
        },
    )
