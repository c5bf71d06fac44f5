"""Heavy quasiparticles of CeCu2Si2 by ARPES (Wu et al., arXiv:2105.12394, PRL 127, 067002).

The measured data are not public, so the pipeline simulates beamline measurements from a
periodic Anderson model with known ground truth (simulate), then runs on them the analysis a
physicist runs on real files: Fermi-level calibration from gold (calibrate), dispersions and
the hybridisation fit of a high-symmetry cut (analyse), the Fermi-surface map
(fermi-surface), the photon-energy scan with V0 and the kz test (kz-scan), and the
comparison with the ground truth (evaluate). The analysis steps accept real measured files
in the same format (see files.py and the README).

This module stays free of xarray and torch: it names the bands, and METRICS (metrics.py)
declares what the evaluate step writes.
"""

BANDS = ("x", "z")  # the quasi-2D electron band at X and the 3D hole pockets at Z

from reprise.papers.cecu2si2.metrics import METRICS  # noqa: E402, F401  (reads BANDS)
