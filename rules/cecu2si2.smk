# CeCu2Si2 by ARPES (arXiv:2105.12394): a simulated beamtime with known ground truth, then
# the analysis a physicist runs on real files: simulate -> calibrate -> analyse (the cut) |
# maps (Fermi-surface map, photon-energy scan) -> evaluate -> figures. It reads no dataset.

PAPER_DATA["cecu2si2"] = []


rule cecu2si2_simulate:
    output:
        cut=result("cecu2si2", "data", "cut.nc"),
        map=result("cecu2si2", "data", "map.nc"),
        hvscan=result("cecu2si2", "data", "hvscan.nc"),
        gold=result("cecu2si2", "data", "gold.nc"),
        truth=result("cecu2si2", "data", "truth.json"),
    params:
        cfg=step_params("cecu2si2", "simulate"),
        io=io_args,
    log:
        log_file("cecu2si2", "simulate"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("cecu2si2", "simulate")


rule cecu2si2_calibrate:
    input:
        gold=rules.cecu2si2_simulate.output.gold,
    output:
        fermi=result("cecu2si2", "data", "fermi_level.nc"),
        edges=result("cecu2si2", "tables", "gold_edges.parquet"),
    params:
        cfg=step_params("cecu2si2", "calibrate"),
        io=io_args,
    log:
        log_file("cecu2si2", "calibrate"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("cecu2si2", "calibrate")


rule cecu2si2_analyse:
    input:
        cut=rules.cecu2si2_simulate.output.cut,
        fermi=rules.cecu2si2_calibrate.output.fermi,
    output:
        spectra=result("cecu2si2", "data", "cut_k.nc"),
        mdc=result("cecu2si2", "tables", "mdc_fits.parquet"),
        edc=result("cecu2si2", "tables", "edc_fits.parquet"),
        bands=result("cecu2si2", "tables", "hybridisation_fits.parquet"),
    params:
        cfg=step_params("cecu2si2", "analyse"),
        io=io_args,
    log:
        log_file("cecu2si2", "analyse"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("cecu2si2", "analyse")


rule cecu2si2_maps:
    input:
        map=rules.cecu2si2_simulate.output.map,
        hvscan=rules.cecu2si2_simulate.output.hvscan,
        fermi=rules.cecu2si2_calibrate.output.fermi,
    output:
        surface=result("cecu2si2", "data", "fermi_surface.nc"),
        kzmap=result("cecu2si2", "data", "kz_map.nc"),
        kf=result("cecu2si2", "tables", "kf_vs_kz.parquet"),
        v0=result("cecu2si2", "tables", "inner_potential.parquet"),
        flatness=result("cecu2si2", "tables", "kf_flatness.parquet"),
    params:
        cfg=step_params("cecu2si2", "maps"),
        io=io_args,
    log:
        log_file("cecu2si2", "maps"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("cecu2si2", "maps")


rule cecu2si2_evaluate:
    input:
        truth=rules.cecu2si2_simulate.output.truth,
        bands=rules.cecu2si2_analyse.output.bands,
        v0=rules.cecu2si2_maps.output.v0,
        flatness=rules.cecu2si2_maps.output.flatness,
        fermi=rules.cecu2si2_calibrate.output.fermi,
    output:
        metrics=metrics_json("cecu2si2"),
        summary=result("cecu2si2", "tables", "band_parameters.parquet"),
    params:
        cfg=step_params("cecu2si2", "evaluate"),
        io=io_args,
    log:
        log_file("cecu2si2", "evaluate"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("cecu2si2", "evaluate")


rule cecu2si2_figures_maps:
    input:
        surface=rules.cecu2si2_maps.output.surface,
        kzmap=rules.cecu2si2_maps.output.kzmap,
        kf=rules.cecu2si2_maps.output.kf,
        v0=rules.cecu2si2_maps.output.v0,
        truth=rules.cecu2si2_simulate.output.truth,
    output:
        fermi_surface=figure("cecu2si2", "fermi_surface"),
        kz_map=figure("cecu2si2", "kz_map"),
        kf_vs_kz=figure("cecu2si2", "kf_vs_kz"),
    params:
        cfg=step_params("cecu2si2", "figures_maps"),
        io=io_args,
    log:
        log_file("cecu2si2", "figures_maps"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("cecu2si2", "figures_maps")


rule cecu2si2_figures_cuts:
    input:
        spectra=rules.cecu2si2_analyse.output.spectra,
        mdc=rules.cecu2si2_analyse.output.mdc,
        edc=rules.cecu2si2_analyse.output.edc,
        bands=rules.cecu2si2_analyse.output.bands,
        truth=rules.cecu2si2_simulate.output.truth,
    output:
        cuts=figure("cecu2si2", "cuts"),
        edcs=figure("cecu2si2", "edcs"),
        hybridisation=figure("cecu2si2", "hybridisation"),
    params:
        cfg=step_params("cecu2si2", "figures_cuts"),
        io=io_args,
    log:
        log_file("cecu2si2", "figures_cuts"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("cecu2si2", "figures_cuts")


rule cecu2si2:
    input:
        rules.cecu2si2_evaluate.output.metrics,
        rules.cecu2si2_evaluate.output.summary,
        rules.cecu2si2_figures_maps.output,
        rules.cecu2si2_figures_cuts.output,
