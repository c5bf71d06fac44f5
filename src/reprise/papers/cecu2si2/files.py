"""ARPES files: the labelled-array data model, NetCDF/HDF5 I/O, and what a file must carry.

A measurement is an xarray DataArray of photoelectron counts named `intensity`, saved as
NetCDF4 (HDF5) with h5netcdf. Coordinates:

    energy  eV, relative to the nominal Fermi level: E_kin − (hν − work_function)
    angle   degrees along the analyser slit
    tilt    degrees, the sample tilt perpendicular to the slit (Fermi-surface maps)
    hv      eV, photon energy (photon-energy scans, and gold references at several hν)

Simulated files and real beamline files go through the same `load`, which refuses a file
that lacks a dimension or attribute its kind needs, naming every one that is missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from reprise.errors import DataError
from reprise.io import atomic_path

ENGINE = "h5netcdf"
VARIABLE = "intensity"

# What every momentum-resolved measurement carries: geometry, sample and instrument.
ANALYSER = ("azimuth", "work_function", "temperature", "energy_resolution", "angle_resolution")
# kind -> (dims in order, attrs). `hv` and `tilt` are attributes unless they are dimensions.
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "cut": (("energy", "angle"), ("hv", "tilt", *ANALYSER)),
    "map": (("tilt", "energy", "angle"), ("hv", *ANALYSER)),
    "hvscan": (("hv", "energy", "angle"), ("tilt", *ANALYSER)),
    "gold": (("hv", "energy", "angle"), ("temperature", "energy_resolution")),
}

UNITS = {
    "energy": "eV",
    "angle": "deg",
    "tilt": "deg",
    "hv": "eV",
    "azimuth": "deg",
    "work_function": "eV",
    "temperature": "K",
    "energy_resolution": "eV (FWHM)",
    "angle_resolution": "deg (FWHM)",
}


def requirements(kind: str) -> str:
    dims, attrs = KINDS[kind]
    text = f"a {kind} needs dims ({', '.join(dims)}) and attrs {', '.join(attrs)}"
    return text + (" (or dims (energy, angle) and an attr hv)" if kind == "gold" else "")


def check(da: xr.DataArray, kind: str, where: str) -> xr.DataArray:
    """Refuse an array that misses dims, coordinates or attrs of its kind; order its dims."""
    if kind not in KINDS:
        raise DataError(f"{where}: unknown measurement kind {kind!r}; known: {', '.join(KINDS)}")
    dims, attrs = KINDS[kind]
    scalars = {
        n: float(da[n])
        for n in da.coords
        if da[n].ndim == 0 and n not in da.attrs and np.issubdtype(da[n].dtype, np.number)
    }
    da = da.drop_vars(list(scalars)).assign_attrs(scalars)  # scalar coords count as attrs
    if kind == "gold" and "hv" not in da.dims and "hv" in da.attrs:  # one photon energy
        da = da.expand_dims(hv=[float(da.attrs["hv"])])
    missing_dims = [d for d in dims if d not in da.dims]
    extra_dims = [d for d in da.dims if d not in dims]
    missing_coords = [d for d in dims if d in da.dims and d not in da.coords]
    missing_attrs = [a for a in attrs if a not in da.attrs]
    problems = []
    if missing_dims:
        problems.append(f"missing dims {missing_dims}")
    if extra_dims:
        problems.append(f"unexpected dims {extra_dims}")
    if missing_coords:
        problems.append(f"dims without coordinates {missing_coords}")
    if missing_attrs:
        problems.append(f"missing attrs {missing_attrs}")
    if problems:
        raise DataError(f"{where}: {'; '.join(problems)} ({requirements(kind)})")
    bad = [a for a in attrs if not _is_number(da.attrs[a])]
    if bad:
        raise DataError(f"{where}: attrs {bad} must be numbers ({describe_units(bad)})")
    da = da.transpose(*dims).astype(float)
    for d in dims:
        axis = da[d].values
        if axis.size < 2 or not np.all(np.diff(axis) > 0) or not np.isfinite(axis).all():
            raise DataError(f"{where}: coordinate {d!r} must be finite and strictly increasing")
    return da


def _is_number(x) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and np.isfinite(x)


def describe_units(names) -> str:
    return ", ".join(f"{n} in {UNITS[n]}" for n in names)


def _read(path: Path) -> xr.Dataset:
    try:
        with xr.open_dataset(path, engine=ENGINE) as ds:
            return ds.load()
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is not a readable NetCDF4/HDF5 file: {e}") from None


def load(path: str | Path, kind: str) -> xr.DataArray:
    """Read a measurement (NetCDF4/HDF5) and check it against its kind."""
    path = Path(path)
    ds = _read(path)
    names = list(ds.data_vars)
    if VARIABLE in names:
        da = ds[VARIABLE]
    elif len(names) == 1:
        da = ds[names[0]]
    else:
        raise DataError(
            f"{path}: expected a variable {VARIABLE!r} (or exactly one variable), found {names}"
        )
    da.attrs = {**ds.attrs, **da.attrs}
    return check(da, kind, str(path)).rename(VARIABLE)


def save(da: xr.DataArray, path: str | Path) -> None:
    """Write one array (or a Dataset) as NetCDF4/HDF5, atomically."""
    ds = da.to_dataset(name=VARIABLE) if isinstance(da, xr.DataArray) else da
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine=ENGINE)


def load_dataset(path: str | Path, variables: tuple[str, ...]) -> xr.Dataset:
    """Read a Dataset this pipeline wrote (calibration, converted maps) and check its variables."""
    path = Path(path)
    ds = _read(path)
    missing = [v for v in variables if v not in ds.variables]
    if missing:
        raise DataError(f"{path}: missing variables {missing}")
    return ds
