"""Angle -> momentum for a hemispherical analyser, with kz from the inner potential V0.

Geometry: the slit measures the angle θ along the in-plane direction at `azimuth` (degrees
from kx); the sample tilt τ turns the perpendicular direction. For an electron of kinetic
energy E_kin (eV), with K = 0.5123 Å⁻¹ eV^-½:

    k_slit = K √E_kin sin θ
    k_perp = K √E_kin cos θ sin τ
    kz     = K √(E_kin cos²θ cos²τ + V0)        (free-electron final state)
"""

from __future__ import annotations

import numpy as np

from reprise.papers.cecu2si2.lattice import K_FREE


def kinetic_energy(hv, work_function: float, energy):
    """E_kin of a photoelectron from `energy` (eV, relative to E_F)."""
    return np.asarray(hv, dtype=float) - work_function + np.asarray(energy, dtype=float)


def k_slit(ekin, theta_deg):
    return K_FREE * np.sqrt(ekin) * np.sin(np.radians(theta_deg))


def kz(ekin, theta_deg, v0: float, tilt_deg=0.0):
    normal = np.cos(np.radians(theta_deg)) * np.cos(np.radians(tilt_deg))
    return K_FREE * np.sqrt(ekin * normal**2 + v0)


def k_vector(ekin, theta_deg, tilt_deg, azimuth_deg: float, v0: float) -> np.ndarray:
    """(kx, ky, kz) in Å⁻¹ for every broadcast (ekin, θ, τ): shape (..., 3)."""
    ekin, theta, tilt = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (ekin, theta_deg, tilt_deg))
    )
    ks = k_slit(ekin, theta)
    kp = K_FREE * np.sqrt(ekin) * np.cos(np.radians(theta)) * np.sin(np.radians(tilt))
    phi = np.radians(azimuth_deg)
    kx = ks * np.cos(phi) - kp * np.sin(phi)
    ky = ks * np.sin(phi) + kp * np.cos(phi)
    return np.stack([kx, ky, kz(ekin, theta, v0, tilt)], axis=-1)


def angles_of(kx, ky, ekin, azimuth_deg: float):
    """The inverse of k_vector in the plane: (θ, τ) in degrees that reach (kx, ky); NaN where
    the momentum is beyond the photoelectron's reach."""
    phi = np.radians(azimuth_deg)
    ks = kx * np.cos(phi) + ky * np.sin(phi)
    kp = -kx * np.sin(phi) + ky * np.cos(phi)
    kmax = K_FREE * np.sqrt(ekin)
    with np.errstate(invalid="ignore"):
        theta = np.arcsin(ks / kmax)
        tilt = np.arcsin(kp / (kmax * np.cos(theta)))
    return np.degrees(theta), np.degrees(tilt)


def slit_position(point_xy, azimuth_deg: float) -> tuple[float, float]:
    """(along, across): a point's in-plane position projected on the slit direction."""
    phi = np.radians(azimuth_deg)
    x, y = point_xy[0], point_xy[1]
    return x * np.cos(phi) + y * np.sin(phi), -x * np.sin(phi) + y * np.cos(phi)
