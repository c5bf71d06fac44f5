"""Heavy quasiparticles of CeCu2Si2 by ARPES (Wu et al., arXiv:2105.12394, PRL 127, 067002).

The measured data are not public, so the pipeline simulates beamline measurements from a
periodic Anderson model with known ground truth (simulate), then runs on them the analysis a
physicist runs on real files: Fermi-level calibration from gold (calibrate), dispersions and
the hybridisation fit of a high-symmetry cut (analyse), the Fermi-surface map
(fermi-surface), the photon-energy scan with V0 and the kz test (kz-scan), and the
comparison with the ground truth (evaluate). The analysis steps accept real measured files
in the same format (see files.py and the README).

This module stays free of xarray and torch: it only declares the metrics.
"""

BANDS = ("x", "z")  # the quasi-2D electron band at X and the 3D hole pockets at Z

METRICS = {
    **{
        key.format(b=b): text.format(B=b.upper())
        for b in BANDS
        for key, text in {
            "V_{b}_meV": "fitted hybridisation V of the {B} band (meV)",
            "V_{b}_err_meV": "its standard error (meV)",
            "V_{b}_rel_error": "(fitted V - simulated V) / simulated V, {B} band",
            "eps_f_{b}_meV": "fitted f level of the {B} band (meV above E_F)",
            "eps_f_{b}_err_meV": "its standard error (meV)",
            "eps_f_{b}_error_meV": "fitted - simulated f level seen by the {B} band (meV)",
            "m_star_{b}": "effective mass m*/m_e of the {B} band from the fit (7.62 k_F / v_F)",
            "m_star_{b}_err": "its standard error",
            "m_star_{b}_true": "m*/m_e of the {B} band in the simulation",
            "kf_kz_chi2_{b}": "reduced chi2 of a kz-independent k_F for the {B} band",
            "kf_kz_modulation_{b}": "relative cos(kz c/2) modulation of k_F, {B} band",
        }.items()
    },
    "mass_ratio_x_over_z": "m*(X band) / m*(Z pockets) from the fits",
    "mass_ratio_x_over_z_err": "its standard error",
    "mass_ratio_true": "m*(X) / m*(Z) in the simulation",
    "V0_eV": "inner potential fitted from the kz periodicity (eV)",
    "V0_err_eV": "its standard error (eV)",
    "V0_error_eV": "fitted - simulated inner potential (eV)",
    "fermi_level_rms_error_meV": "rms error of the gold Fermi-level calibration (meV)",
}
