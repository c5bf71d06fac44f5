"""Steps of cecu2si2: simulate -> calibrate -> analyse (a cut) | maps (Fermi-surface map and
photon-energy scan) -> evaluate -> figures. The analysis steps read files in the documented
format (files.py), simulated or measured.

The registry is read at every snakemake start, so this module imports no xarray or scipy at
the top: each step imports what it needs."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from reprise.io import read_json, read_table, write_json, write_table
from reprise.steps import Steps

log = logging.getLogger("reprise")
STEPS = Steps()


@STEPS.register(
    outputs=("cut", "map", "hvscan", "gold", "truth"), sections=("crystal", "model", "measurement")
)
def simulate(params, inputs, outputs, rt):
    """Simulate a beamtime from the periodic Anderson model, with its ground truth."""
    from reprise.papers.cecu2si2 import files
    from reprise.papers.cecu2si2.model import Model
    from reprise.papers.cecu2si2.simulate import ground_truth, measurements

    model = Model.from_params(params["crystal"], params["model"])
    for name, da in measurements(model, params["measurement"]).items():
        files.save(da, outputs[name])
    truth = ground_truth(model, params["crystal"], params["model"], params["measurement"])
    write_json(outputs["truth"], truth)


@STEPS.register(inputs=("gold",), outputs=("fermi", "edges"), sections=("calibration",))
def calibrate(params, inputs, outputs, rt):
    """Fermi level per detector channel and photon energy from a polycrystalline-gold file."""
    from reprise.papers.cecu2si2 import calibration, files

    cfg = params["calibration"]
    gold = files.load(inputs["gold"], "gold")
    edges = calibration.fit_gold(gold, cfg["channel_bin"])
    log.info("gold edges: %d fitted, %d failed", edges["fit_ok"].sum(), (~edges["fit_ok"]).sum())
    files.save(calibration.smooth_correction(edges, cfg["degree"]), outputs["fermi"])
    write_table(outputs["edges"], edges)


def _calibrated(path, kind, fermi_path):
    from reprise.papers.cecu2si2 import calibration, files

    fermi = files.load_dataset(fermi_path, ("coefficients",))
    return calibration.correct(files.load(path, kind), fermi)


@STEPS.register(
    inputs=("cut", "fermi"),
    outputs=("spectra", "mdc", "edc", "bands"),
    sections=("crystal", "bands", "dispersion"),
)
def analyse(params, inputs, outputs, rt):
    """A high-symmetry cut: MDC and EDC fits, the hybridisation fit and m* per band."""
    import xarray as xr

    from reprise.papers.cecu2si2 import cut_fit, dispersion, files

    cfg, crystal = params["dispersion"], params["crystal"]
    bands = dispersion.analysis_bands(params["bands"])
    ck = dispersion.to_momentum(_calibrated(inputs["cut"], "cut", inputs["fermi"]))
    mdc, edc, fits = cut_fit.analyse_cut(ck, bands, crystal, cfg)
    for fit in fits.to_dict("records"):
        log.info(
            "band %s: %s", fit["band"], {k: fit[k] for k in ("V", "eps_f", "m_star", "fit_ok")}
        )
    spectra = xr.Dataset(
        {"intensity": ck, "fd_divided": dispersion.fd_divided(ck, cfg["edc"]["max_kt"])}
    )
    files.save(spectra, outputs["spectra"])
    write_table(outputs["mdc"], mdc)
    write_table(outputs["edc"], edc)
    write_table(outputs["bands"], fits)


@STEPS.register(
    inputs=("map", "hvscan", "fermi"),
    outputs=("surface", "kzmap", "kf", "v0", "flatness"),
    sections=("crystal", "bands", "fermi_surface", "kz"),
)
def maps(params, inputs, outputs, rt):
    """The Fermi-surface map in (kx, ky), symmetrised; the photon-energy scan: V0 from the kz
    periodicity, the k∥–kz map and k_F against kz per band."""
    from reprise.papers.cecu2si2 import files, kz
    from reprise.papers.cecu2si2.dispersion import analysis_bands
    from reprise.papers.cecu2si2.fermi_surface import fermi_surface

    fs = fermi_surface(_calibrated(inputs["map"], "map", inputs["fermi"]), params["fermi_surface"])
    files.save(fs, outputs["surface"])
    cfg, crystal = params["kz"], params["crystal"]
    scan = _calibrated(inputs["hvscan"], "hvscan", inputs["fermi"])
    wf = scan.attrs["work_function"]
    bands = analysis_bands(params["bands"])
    if cfg["periodic_band"] not in bands:
        raise ValueError(
            f"kz.periodic_band {cfg['periodic_band']!r} is not one of the bands {list(bands)}"
        )
    points = kz.kf_by_hv(scan, bands, crystal, cfg["window"])
    v0 = kz.fit_v0(
        points[points["band"] == cfg["periodic_band"]],
        crystal["c"],
        wf,
        cfg["v0_range"],
        cfg["v0_step"],
    )
    log.info("inner potential: %s", v0)
    points = kz.with_kz(points, v0["V0"], wf)
    files.save(kz.kz_map(scan, cfg["window"], v0["V0"]), outputs["kzmap"])
    write_table(outputs["kf"], points)
    write_table(outputs["v0"], pd.DataFrame([v0]))
    write_table(outputs["flatness"], kz.flatness(points, crystal["c"]))


@STEPS.register(
    inputs=("truth", "bands", "v0", "flatness", "fermi"), outputs=("metrics", "summary")
)
def evaluate(params, inputs, outputs, rt):
    """Fitted values ± errors against the simulation's ground truth; the claims' metrics."""
    from reprise.papers.cecu2si2 import files
    from reprise.papers.cecu2si2.evaluate import summary
    from reprise.papers.cecu2si2.metrics import METRICS, Fits

    fits = Fits(
        truth=read_json(inputs["truth"]),
        fits=read_table(inputs["bands"]).set_index("band"),
        v0=read_table(inputs["v0"]),
        flatness=read_table(inputs["flatness"]).set_index("band"),
        calibration=files.load_dataset(inputs["fermi"], ("coefficients",)),
    )
    write_table(outputs["summary"], summary(fits))
    write_json(outputs["metrics"], METRICS.compute(fits))


@STEPS.register(
    inputs=("surface", "kzmap", "kf", "v0", "truth"),
    outputs=("fermi_surface*", "kz_map*", "kf_vs_kz*"),
    sections=("crystal", "plot"),
)
def figures_maps(params, inputs, outputs, rt):
    """Fermi-surface map with the zone, k∥–kz map, k_F against kz."""
    from reprise.papers.cecu2si2 import figures, files
    from reprise.plots import use_style

    opts = use_style(params["plot"])
    crystal = params["crystal"]
    v0 = read_table(inputs["v0"]).iloc[0]
    surface = files.load_dataset(inputs["surface"], ("symmetrised",))
    kzmap = files.load_dataset(inputs["kzmap"], ("intensity", "kz"))
    truth, kf = _truth(inputs), read_table(inputs["kf"])
    _save_all(
        outputs,
        opts,
        fermi_surface=lambda: figures.fermi_surface(surface, crystal, v0),
        kz_map=lambda: figures.kz_map(kzmap, crystal),
        kf_vs_kz=lambda: figures.kf_vs_kz(kf, truth, crystal),
    )


@STEPS.register(
    inputs=("spectra", "mdc", "edc", "bands", "truth"),
    outputs=("cuts*", "edcs*", "hybridisation*"),
    sections=("crystal", "bands", "plot"),
)
def figures_cuts(params, inputs, outputs, rt):
    """The high-symmetry cut with MDC/EDC fits, FD-divided EDCs, hybridisation fits."""
    from reprise.papers.cecu2si2 import figures, files
    from reprise.papers.cecu2si2.dispersion import analysis_bands
    from reprise.plots import use_style

    opts = use_style(params["plot"])
    spectra = files.load_dataset(inputs["spectra"], ("intensity", "fd_divided"))
    mdc, edc, fits = (read_table(inputs[n]) for n in ("mdc", "edc", "bands"))
    bands, crystal = analysis_bands(params["bands"]), params["crystal"]
    truth = _truth(inputs)
    _save_all(
        outputs,
        opts,
        cuts=lambda: figures.cuts(spectra, mdc, edc, bands, crystal),
        edcs=lambda: figures.edcs(spectra, edc, bands, crystal),
        hybridisation=lambda: figures.hybridisation(mdc, edc, fits, truth),
    )


@STEPS.register(inputs=("tables*",), outputs=("fitted",))
def table(params, inputs, outputs, rt):
    """Own data: the fitted values ± errors of the hybridisation fits and V0 in one CSV
    (tables: the analyse step's band fits and/or the maps step's V0), no verdicts."""
    from reprise.papers.cecu2si2.own_data import fitted_values

    found = {"bands": None, "v0": None}
    for path in inputs["tables"]:
        t = read_table(path)
        found["v0" if "V0" in t.columns else "bands"] = t
    fitted_values(found["bands"], found["v0"]).to_csv(outputs["fitted"], index=False)


def _truth(inputs) -> dict:
    """The simulation's truth; measured data has none (no input, or an empty file)."""
    path = inputs.get("truth")
    return read_json(path) if path and Path(path).is_file() and Path(path).stat().st_size else {}


def _save_all(outputs, opts, **draw) -> None:
    """Draw every figure first, then save: a figure that fails leaves no file behind."""
    import matplotlib.pyplot as plt

    from reprise.plots import save_figure

    figs = {}
    try:
        for name, make in draw.items():
            figs[name] = make()
    except BaseException:
        for fig in figs.values():
            plt.close(fig)
        raise
    for name, fig in figs.items():
        save_figure(fig, outputs[name], opts)
