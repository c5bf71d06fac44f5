"""The periodic Anderson model the measurements are simulated from (the ground truth).

Conduction bands c_b (tight binding on the bct lattice) hybridise with one flat f level ε_f,
each through its own V_b: H(k) has ε_b(k) on the diagonal and V_b between c_b and f. With
z_b = ω − ε_b(k) + iΓ_c(ω) and z_f = ω − ε_f + iΓ_f, its Green's function is

    G_ff = 1 / (z_f − Σ_b V_b² / z_b)          G_bb = 1 / z_b + (V_b / z_b)² G_ff

where Γ_c(ω) = γ0 + γ2 ω² is a Fermi-liquid-like self-energy. Near one band's pocket the
others are far away and its quasiparticles follow the two-level hybridisation bands
E±(k) = ½[ε_c + ε_f ± √((ε_c − ε_f)² + 4V²)]. Energies in eV from E_F, momenta in Å⁻¹.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from reprise.papers.cecu2si2.lattice import HBAR2_ME, points


@dataclass(frozen=True)
class Band:
    """A tight-binding conduction band on the bct lattice, centred on a symmetry point.

    ε_c = e0 + s [2t (2 − cos k'x a − cos k'y a) + 4 t_z (1 − cos(k'x a/2) cos(k'y a/2)
    cos(k'z c/2))] with k' = k − centre and s = +1 for electrons, −1 for holes. The t_z
    (body-centre) hopping is the only kz dispersion: t_z = 0 makes the band two-dimensional.
    """

    name: str
    center: str  # a symmetry point of lattice.points: "X" or "Z"
    carrier: str  # "electron" (minimum at the centre) or "hole" (maximum)
    e0: float
    t: float
    tz: float
    V: float
    weight: float

    def eps_c(self, k: np.ndarray, a: float, c: float) -> np.ndarray:
        """Bare conduction-band energy at momenta k (..., 3)."""
        kx, ky, kz = np.moveaxis(np.asarray(k, dtype=float) - points(a, c)[self.center], -1, 0)
        inplane = 2 * self.t * (2 - np.cos(kx * a) - np.cos(ky * a))
        vertical = 4 * self.tz * (1 - np.cos(kx * a / 2) * np.cos(ky * a / 2) * np.cos(kz * c / 2))
        sign = 1.0 if self.carrier == "electron" else -1.0
        return self.e0 + sign * (inplane + vertical)


def hybridised(eps_c, eps_f: float, V: float, branch: int = -1):
    """E±(k) = ½[ε_c + ε_f ± √((ε_c − ε_f)² + 4V²)]; branch −1 is the lower band E−."""
    eps_c = np.asarray(eps_c, dtype=float)
    return 0.5 * (eps_c + eps_f + branch * np.sqrt((eps_c - eps_f) ** 2 + 4 * V**2))


@dataclass(frozen=True)
class Model:
    """Bands + the f level + broadening: everything the spectral function needs."""

    a: float
    c: float
    bands: tuple[Band, ...]
    eps_f: float
    gamma_f: float
    f_weight: float
    gamma0: float
    gamma2: float

    @classmethod
    def from_params(cls, crystal: dict, model: dict) -> Model:
        se = model["self_energy"]
        bands = tuple(Band(name=name, **b) for name, b in model["bands"].items())
        return cls(
            a=crystal["a"],
            c=crystal["c"],
            bands=bands,
            eps_f=model["f_level"]["energy"],
            gamma_f=model["f_level"]["width"],
            f_weight=model["f_level"]["weight"],
            gamma0=se["gamma0"],
            gamma2=se["gamma2"],
        )

    def band(self, name: str) -> Band:
        return next(b for b in self.bands if b.name == name)

    def band_energies(self, k: np.ndarray) -> dict[str, np.ndarray]:
        """ε_c of every band at momenta k (..., 3)."""
        return {b.name: b.eps_c(k, self.a, self.c) for b in self.bands}

    def spectral(self, eps_c: dict[str, np.ndarray], omega: np.ndarray) -> np.ndarray:
        """Photoemission weight −Im[Σ_b weight_b G_bb + f_weight G_ff] / π at energies omega,
        given each band's ε_c (from band_energies, broadcast against omega)."""
        omega = np.asarray(omega, dtype=float)
        gamma_c = self.gamma0 + self.gamma2 * omega**2
        zc = {b.name: omega - eps_c[b.name] + 1j * gamma_c for b in self.bands}
        g_ff = 1 / (
            omega - self.eps_f + 1j * self.gamma_f - sum(b.V**2 / zc[b.name] for b in self.bands)
        )
        total = self.f_weight * g_ff
        for b in self.bands:
            total = total + b.weight * (1 / zc[b.name] + (b.V / zc[b.name]) ** 2 * g_ff)
        return -total.imag / np.pi

    def hamiltonian(self, k: np.ndarray) -> np.ndarray:
        """H(k) (..., n+1, n+1): the bands' ε_c on the diagonal, then f; V_b couples c_b to f."""
        eps = self.band_energies(k)
        n = len(self.bands)
        h = np.zeros((*np.shape(k)[:-1], n + 1, n + 1))
        for i, b in enumerate(self.bands):
            h[..., i, i] = eps[b.name]
            h[..., i, n] = h[..., n, i] = b.V
        h[..., n, n] = self.eps_f
        return h


def fermi_crossing(model: Model, path, q_range: tuple[float, float], band_name: str):
    """Band `band_name`'s first Fermi crossing along path(q) -> k (..., 3), q in q_range:
    (k_F, v_F, m*/m_e), v_F = dE/dq in eV·Å; NaNs where it does not cross E_F.

    A state crosses E_F where H(k) has a zero eigenvalue, i.e. det H(k(q)) changes sign. The
    crossing is this band's if the zero-energy state's conduction weight is mostly its own
    (another band's pocket can overlap the branch: its crossing is skipped)."""
    index = [b.name for b in model.bands].index(band_name)

    def det(q):
        return np.linalg.det(model.hamiltonian(path(q)))

    def energy_near_ef(q):
        e = np.linalg.eigvalsh(model.hamiltonian(path(q)))
        return float(e[np.argmin(np.abs(e))])

    def own(q):
        e, vec = np.linalg.eigh(model.hamiltonian(path(q)))
        weights = vec[: len(model.bands), np.argmin(np.abs(e))] ** 2
        return int(np.argmax(weights)) == index

    qs = np.linspace(*q_range, 800)
    d = det(qs)
    for i in np.nonzero(np.diff(np.sign(d)) != 0)[0]:
        kf = brentq(lambda q: float(det(q)), qs[i], qs[i + 1], xtol=1e-12)
        if not own(kf):
            continue
        h = 1e-5
        vf = (energy_near_ef(kf + h) - energy_near_ef(kf - h)) / (2 * h)
        return kf, vf, HBAR2_ME * kf / abs(vf)
    return np.nan, np.nan, np.nan
