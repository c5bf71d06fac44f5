"""Beamline measurements simulated from the periodic Anderson model (model.py).

Each frame (one photon energy, one tilt) is computed on a grid finer than the detector's,
then goes through the detector: Fermi–Dirac occupation at the sample temperature, a
background of inelastic electrons, Gaussian energy and angle resolution, pixel binning, an
angle-dependent Fermi-level offset of the energy axis, dark counts and Poisson noise.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.optimize import brentq

from reprise.papers.cecu2si2 import momentum
from reprise.papers.cecu2si2.lattice import points
from reprise.papers.cecu2si2.lineshapes import fermi_dirac, smooth
from reprise.papers.cecu2si2.model import Model, fermi_crossing

FILES = ("cut", "map", "hvscan", "gold")  # also the order of their noise streams


def axis(lo: float, hi: float, step: float) -> np.ndarray:
    """A uniform axis from lo to hi (inclusive where hi falls on the grid)."""
    return lo + step * np.arange(int(np.floor((hi - lo) / step + 1e-9)) + 1)


def fermi_offset(theta, hv, cfg: dict, hv_ref: float):
    """The analyser's Fermi-level offset δ(θ, hν) in eV: where E_F appears on the energy axis."""
    o = cfg["fermi_offset"]
    theta = np.asarray(theta, dtype=float)
    return (
        o["constant"]
        + o["linear"] * theta
        + o["quadratic"] * theta**2
        + o["per_hv"] * (hv - hv_ref)
    )


def _fine(grid: np.ndarray, factor: int, pad: int) -> np.ndarray:
    """Sub-pixel samples of a uniform recorded grid, `pad` extra samples on either side."""
    step = (grid[1] - grid[0]) / factor
    start = grid[0] - step * ((factor - 1) / 2 + pad)
    return start + step * np.arange(len(grid) * factor + 2 * pad)


def _binned(values: np.ndarray, factor: int, pad: int, axis_: int) -> np.ndarray:
    """Drop the padding and average each detector pixel's sub-samples."""
    values = np.moveaxis(values, axis_, -1)[..., pad : values.shape[axis_] - pad]
    values = values.reshape(*values.shape[:-1], -1, factor).mean(-1)
    return np.moveaxis(values, -1, axis_)


class Beamline:
    """The instrument and the sample environment of the measurement config."""

    def __init__(self, model: Model, cfg: dict):
        self.model = model
        self.cfg = cfg
        self.angles = axis(*cfg["angles"]["range"], cfg["angles"]["step"])
        self.hv_ref = cfg["cut"]["hv"]

    def frame(self, hv: float, tilt: float, energies: np.ndarray) -> np.ndarray:
        """Noise-free intensity (energy, angle) on the recorded grids, arbitrary units."""
        c, m = self.cfg, self.model
        ov = c["oversample"]
        e_step = (energies[1] - energies[0]) / ov
        a_step = c["angles"]["step"] / ov
        e_pad = int(np.ceil(3 * c["energy_resolution"] / e_step)) + 1
        a_pad = int(np.ceil(3 * c["angle_resolution"] / a_step)) + 1
        e_fine = _fine(energies, ov, e_pad)
        a_fine = _fine(self.angles, ov, a_pad)
        omega = e_fine[:, None] - fermi_offset(a_fine, hv, c, self.hv_ref)[None, :]
        # k moves with E_kin only through √E_kin: ε_c is linear in ω to ~1e-6 eV over the
        # window, so the bands are evaluated on its first and last rows and interpolated.
        edges = omega[[0, -1]]
        ekin = momentum.kinetic_energy(hv, c["work_function"], edges)
        k = momentum.k_vector(ekin, a_fine[None, :], tilt, c["azimuth"], c["inner_potential"])
        w = (omega - edges[0]) / (edges[1] - edges[0])
        eps = {n: e[0] + w * (e[1] - e[0]) for n, e in m.band_energies(k).items()}
        bg = c["background"]
        signal = m.spectral(eps, omega) + bg["level"] * (1 + bg["slope"] * np.maximum(-omega, 0))
        signal *= fermi_dirac(omega, c["temperature"])
        signal = smooth(signal, e_step, c["energy_resolution"], axis=0)
        signal = smooth(signal, a_step, c["angle_resolution"], axis=1)
        return _binned(_binned(signal, ov, e_pad, 0), ov, a_pad, 1)

    def gold_frame(self, hv: float, energies: np.ndarray) -> np.ndarray:
        """Polycrystalline gold: a flat metallic edge, no momentum dependence."""
        c, g = self.cfg, self.cfg["gold"]
        ov = c["oversample"]
        e_step = (energies[1] - energies[0]) / ov
        e_pad = int(np.ceil(3 * c["energy_resolution"] / e_step)) + 1
        e_fine = _fine(energies, ov, e_pad)
        omega = e_fine[:, None] - fermi_offset(self.angles, hv, c, self.hv_ref)[None, :]
        signal = (1 + g["dos_slope"] * omega) * fermi_dirac(omega, c["temperature"])
        signal = smooth(signal, e_step, c["energy_resolution"], axis=0)
        return _binned(signal, ov, e_pad, 0)

    def attrs(self, **extra) -> dict:
        c = self.cfg
        keys = ("work_function", "temperature", "energy_resolution", "angle_resolution")
        return {**{k: float(c[k]) for k in keys}, "azimuth": float(c["azimuth"]), **extra}


def _counts(expected: np.ndarray, mean_counts: float, dark: float, rng) -> np.ndarray:
    """Scale to `mean_counts` per pixel, add dark counts and draw Poisson noise."""
    scale = mean_counts / max(float(expected.mean()), 1e-300)
    return rng.poisson(expected * scale + dark * mean_counts).astype(float)


def measurements(model: Model, cfg: dict) -> dict[str, xr.DataArray]:
    """The four files a beamtime produces: cut, Fermi-surface map, hν scan, gold reference."""
    beam = Beamline(model, cfg)
    rngs = dict(zip(FILES, np.random.default_rng(cfg["seed"]).spawn(len(FILES)), strict=True))
    dark = cfg["background"]["dark"]
    angle = {"angle": beam.angles}
    out = {}

    c = cfg["cut"]
    e = axis(*c["energy_range"], c["energy_step"])
    data = _counts(beam.frame(c["hv"], 0.0, e), c["counts"], dark, rngs["cut"])
    out["cut"] = xr.DataArray(
        data,
        dims=("energy", "angle"),
        coords={"energy": e, **angle},
        attrs=beam.attrs(hv=float(c["hv"]), tilt=0.0),
    )

    c = cfg["map"]
    e = axis(*c["energy_range"], c["energy_step"])
    tilts = axis(*c["tilt_range"], c["tilt_step"])
    frames = np.stack([beam.frame(c["hv"], t, e) for t in tilts])
    out["map"] = xr.DataArray(
        _counts(frames, c["counts"], dark, rngs["map"]),
        dims=("tilt", "energy", "angle"),
        coords={"tilt": tilts, "energy": e, **angle},
        attrs=beam.attrs(hv=float(c["hv"])),
    )

    c = cfg["hv_scan"]
    e = axis(*c["energy_range"], c["energy_step"])
    hvs = axis(*c["hv_range"], c["hv_step"])
    frames = np.stack([beam.frame(hv, 0.0, e) for hv in hvs])
    out["hvscan"] = xr.DataArray(
        _counts(frames, c["counts"], dark, rngs["hvscan"]),
        dims=("hv", "energy", "angle"),
        coords={"hv": hvs, "energy": e, **angle},
        attrs=beam.attrs(tilt=0.0),
    )

    c = cfg["gold"]
    e = axis(*c["energy_range"], c["energy_step"])
    gold_hvs = np.unique(np.concatenate([hvs, [cfg["cut"]["hv"], cfg["map"]["hv"]]]))
    frames = np.stack([beam.gold_frame(hv, e) for hv in gold_hvs])
    out["gold"] = xr.DataArray(
        _counts(frames, c["counts"], dark, rngs["gold"]),
        dims=("hv", "energy", "angle"),
        coords={"hv": gold_hvs, "energy": e, **angle},
        attrs={
            "temperature": float(cfg["temperature"]),
            "energy_resolution": float(cfg["energy_resolution"]),
        },
    )
    for name, da in out.items():
        da.attrs["source"] = f"reprise cecu2si2 simulate ({name})"
    return out


def inner_branch(model: Model, band_name: str, azimuth: float) -> tuple[float, float]:
    """(centre along the slit, sign): the band's Fermi crossing between its centre and
    normal emission, the one a cut through normal emission sees best."""
    center = points(model.a, model.c)[model.band(band_name).center]
    along, _ = momentum.slit_position(center, azimuth)
    return along, (-1.0 if along > 0 else 1.0)


def crossing_on_cut(model: Model, cfg: dict, band_name: str, hv: float) -> dict:
    """The true k_F (from the pocket centre), v_F, m*/m_e and kz of a band at E_F on a cut
    through normal emission at photon energy hv, and the f level the band sees (eps_f_eff).

    k_F is the band's own crossing: the first E_F crossing along its branch whose state is
    mostly this band's conduction character (other bands' crossings on the same branch
    are skipped); NaN where the band does not cross E_F (a strong V can keep the heavy
    branch on one side of E_F). eps_f_eff is ε_f plus the second-order shift from the
    other bands, Σ_o V_o² / (ε_f − ε_o(k)), at the band's bend (ε_c(k) = ε_f): there the
    hybridisation fit measures ε_f, and there the other bands are far (at k_F they need
    not be)."""
    along, sign = inner_branch(model, band_name, cfg["azimuth"])
    ekin = momentum.kinetic_energy(hv, cfg["work_function"], 0.0)
    kmax = momentum.k_slit(ekin, 90.0)

    def path(q):
        theta = np.degrees(np.arcsin((along + sign * q) / kmax))
        return momentum.k_vector(ekin, theta, 0.0, cfg["azimuth"], cfg["inner_potential"])

    reach = kmax - abs(along) if sign > 0 else abs(along)
    kf, vf, mass = fermi_crossing(model, path, (1e-4, min(reach, 1.2) - 1e-4), band_name)
    out = {"k_F": kf, "v_F": vf, "m_star": mass}
    out["kz"] = float(path(kf)[2]) if np.isfinite(kf) else np.nan
    return out | {"eps_f_eff": seen_f_level(model, band_name, path, (1e-4, reach - 1e-4))}


def seen_f_level(model: Model, band_name: str, path, q_range) -> float:
    """ε_f + Σ_o V_o² / (ε_f − ε_o) at the first q in q_range where the bare band ε_c(path(q))
    crosses ε_f (the bend of the hybridised band); NaN if it does not."""
    qs = np.linspace(*q_range, 2000)
    gap = model.band_energies(path(qs))[band_name] - model.eps_f
    change = np.nonzero(np.diff(np.sign(gap)) != 0)[0]
    if len(change) == 0:
        return np.nan
    i = change[0]
    q = brentq(
        lambda x: float(model.band_energies(path(x))[band_name] - model.eps_f),
        qs[i],
        qs[i + 1],
        xtol=1e-12,
    )
    eps = model.band_energies(path(q))
    others = (b for b in model.bands if b.name != band_name)
    return model.eps_f + float(sum(b.V**2 / (model.eps_f - eps[b.name]) for b in others))


def ground_truth(model: Model, crystal: dict, model_cfg: dict, cfg: dict) -> dict:
    """Every physical parameter of the simulation plus the quantities the analysis recovers."""
    hvs = axis(*cfg["hv_scan"]["hv_range"], cfg["hv_scan"]["hv_step"])
    derived = {}
    for band in model.bands:
        derived[band.name] = {
            "cut": crossing_on_cut(model, cfg, band.name, cfg["cut"]["hv"]),
            "hv_scan": [
                {"hv": float(hv), **crossing_on_cut(model, cfg, band.name, hv)} for hv in hvs
            ],
        }
    return {
        "crystal": crystal,
        "model": model_cfg,
        "measurement": cfg,
        "inner_potential": cfg["inner_potential"],
        "bands": derived,
    }
