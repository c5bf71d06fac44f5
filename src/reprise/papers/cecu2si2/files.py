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

import logging
from pathlib import Path

import numpy as np
import xarray as xr

from reprise.errors import DataError
from reprise.io import atomic_path

ENGINE = "h5netcdf"
VARIABLE = "intensity"
KINETIC = 2.0  # eV: an energy axis this far from E_F is kinetic energy, not E − E_F
MAX_ANGLE = 90.0  # deg: no analyser sees past the sample plane
RADIANS = 1.6  # deg: a whole angle axis within ±π/2 ≈ ±1.6 is in radians, not degrees

log = logging.getLogger("reprise")

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
        single = d == "hv" and kind == "gold" and axis.size == 1  # a gold at one photon energy
        if (axis.size < 2 and not single) or not np.all(np.diff(axis) > 0):
            raise DataError(f"{where}: coordinate {d!r} must be finite and strictly increasing")
        if not np.isfinite(axis).all():
            raise DataError(f"{where}: coordinate {d!r} must be finite and strictly increasing")
    return plausible(da, where)


def plausible(da: xr.DataArray, where: str) -> xr.DataArray:
    """Refuse what no fit can make right: no counts, negative counts, angles in radians, an
    energy axis that is not E − E_F. NaN pixels stay NaN (every fit skips them), counted."""
    counts = da.values
    finite = np.isfinite(counts)
    if not finite.any() or not np.any(counts[finite] > 0):
        raise DataError(f"{where}: all counts are zero or missing (expected photoelectron counts)")
    if np.any(counts[finite] < 0):
        raise DataError(
            f"{where}: {int(np.sum(counts[finite] < 0))} pixels have negative counts "
            f"(min {counts[finite].min():g}); expected counts ≥ 0 (raw, not background-subtracted)"
        )
    if not finite.all():
        log.warning("%s: %d of %d pixels are NaN, masked", where, (~finite).sum(), counts.size)
    angle = da["angle"].values
    if np.abs(angle).max() > MAX_ANGLE:
        raise DataError(
            f"{where}: angles reach {np.abs(angle).max():g} deg; expected |angle| ≤ 90 deg"
        )
    if np.abs(angle).max() <= RADIANS:
        raise DataError(
            f"{where}: angles span [{angle[0]:g}, {angle[-1]:g}], which looks like radians; "
            "expected degrees (multiply by 180/π)"
        )
    energy = da["energy"].values
    if energy[0] > KINETIC or energy[-1] < -KINETIC:
        hv = da["hv"].values if "hv" in da.dims else np.array([da.attrs["hv"]])
        w = da.attrs.get("work_function")
        if hv.size > 1:  # an hν scan: the offset changes with each photon energy
            offset = f"(hv − {w:g} eV) at each hv" if w is not None else "(hv − work_function)"
        else:
            offset = f"{hv[0] - w:g} eV" if w is not None else f"({hv[0]:g} eV − work_function)"
        raise DataError(
            f"{where}: the energy axis [{energy[0]:g}, {energy[-1]:g}] eV is far from E_F, "
            f"like kinetic energy; expected E − E_F: energy = E_kin − (hv − work_function)"
            f" = E_kin − {offset}"
        )
    if not energy[0] < 0 < energy[-1]:
        raise DataError(
            f"{where}: the Fermi level (energy 0) is outside the energy window "
            f"[{energy[0]:g}, {energy[-1]:g}] eV; expected a window that contains E_F"
        )
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
