"""Line shapes and the one curve-fitting wrapper every analysis step uses.

A fit never raises on bad data: too few points, a singular covariance or a diverging
optimiser all come back as a `Fit` with ok=False and NaN values, which the steps write as
a failed fit (a finding), not an error.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import expit

K_B = 8.617333262e-5  # Boltzmann constant, eV/K
FWHM_PER_SIGMA = 2 * np.sqrt(2 * np.log(2))


def fermi_dirac(energy, temperature: float):
    """Occupation f(E) at `temperature` (K), energy in eV relative to E_F."""
    return expit(-np.asarray(energy, dtype=float) / (K_B * max(temperature, 1e-3)))


def smooth(values, step: float, fwhm: float, axis: int = -1):
    """Convolve with a unit-area Gaussian of `fwhm` along a uniform axis of spacing `step`."""
    if fwhm <= 0:
        return np.asarray(values, dtype=float)
    sigma = fwhm / FWHM_PER_SIGMA / abs(step)
    return gaussian_filter1d(np.asarray(values, dtype=float), sigma, axis=axis, mode="nearest")


def lorentzian(x, center, hwhm, amplitude):
    return amplitude * hwhm**2 / ((x - center) ** 2 + hwhm**2)


def peak_on_line(x, center, hwhm, amplitude, offset, slope):
    """A Lorentzian on a linear background: the MDC and EDC peak model."""
    return lorentzian(x, center, hwhm, amplitude) + offset + slope * (x - center)


def broadened_fermi(energy, temperature: float, fwhm: float, oversample: int = 4):
    """f(E) convolved with the Gaussian resolution, on a uniform energy grid."""
    return broadened(energy, lambda e: fermi_dirac(e, temperature), fwhm, oversample)


def gold_edge(energy, ef, fwhm, above, below, slope, temperature: float):
    """Polycrystalline gold: (below + slope·(E − E_F)) · f(E − E_F) + above, ⊗ Gaussian."""

    def sharp(e):
        return (below + slope * (e - ef)) * fermi_dirac(e - ef, temperature) + above

    return broadened(energy, sharp, abs(fwhm))


def broadened(energy, sharp, fwhm: float, oversample: int = 4):
    """sharp(E) ⊗ Gaussian(fwhm), evaluated on a padded fine grid and sampled at `energy`."""
    energy = np.asarray(energy, dtype=float)
    step = (energy[-1] - energy[0]) / max(len(energy) - 1, 1) / oversample
    pad = 4 * abs(fwhm) + 10 * abs(step)
    fine = np.arange(energy[0] - pad, energy[-1] + pad + step / 2, step)
    return np.interp(energy, fine, smooth(sharp(fine), step, abs(fwhm)))


@dataclass(frozen=True)
class Fit:
    """Fitted parameters with standard errors; NaN everywhere when the fit failed."""

    names: tuple[str, ...]
    values: np.ndarray
    errors: np.ndarray
    cov: np.ndarray
    chi2_red: float
    ok: bool

    def __getitem__(self, name: str) -> float:
        return float(self.values[self.names.index(name)])

    def error(self, name: str) -> float:
        return float(self.errors[self.names.index(name)])

    def row(self, prefix: str = "") -> dict[str, float]:
        """{name: value, name_err: error} for a results table."""
        out = {"fit_ok": self.ok, "chi2_red": self.chi2_red}
        for n, v, e in zip(self.names, self.values, self.errors, strict=True):
            out[f"{prefix}{n}"] = float(v)
            out[f"{prefix}{n}_err"] = float(e)
        return out

    @classmethod
    def failed(cls, names) -> Fit:
        n = len(names)
        nan = np.full(n, np.nan)
        return cls(tuple(names), nan, nan, np.full((n, n), np.nan), np.nan, False)


def fit_curve(f, x, y, p0, names, sigma=None, bounds=(-np.inf, np.inf)) -> Fit:
    """Least-squares fit of y ≈ f(x, *p). Errors are the covariance's, scaled up by the
    reduced χ² when the model does not describe the scatter (never scaled down)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    sigma = np.ones_like(y) if sigma is None else np.asarray(sigma, dtype=float)
    good = np.isfinite(x) & np.isfinite(y) & np.isfinite(sigma) & (sigma > 0)
    x, y, sigma = x[good], y[good], sigma[good]
    if len(y) <= len(p0):
        return Fit.failed(names)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            # a good fit converges in well under 100 evaluations; noise alone should not
            # keep the optimiser busy for thousands
            p, cov = curve_fit(
                f,
                x,
                y,
                p0=p0,
                sigma=sigma,
                absolute_sigma=True,
                bounds=bounds,
                maxfev=100 * (len(p0) + 1),
            )
    except (RuntimeError, ValueError, np.linalg.LinAlgError):
        return Fit.failed(names)
    chi2_red = float(np.sum(((f(x, *p) - y) / sigma) ** 2) / (len(y) - len(p)))
    cov = cov * max(1.0, chi2_red)
    errors = np.sqrt(np.diag(cov)) if np.all(np.isfinite(cov)) else np.full(len(p), np.nan)
    ok = bool(np.all(np.isfinite(p)) and np.all(np.isfinite(errors)))
    if not ok:
        return Fit.failed(names)
    return Fit(tuple(names), p, errors, cov, chi2_red, ok)


def poisson_sigma(counts):
    """Standard deviation of Poisson counts (at least 1, so empty pixels still weigh)."""
    return np.sqrt(np.maximum(np.asarray(counts, dtype=float), 1.0))
