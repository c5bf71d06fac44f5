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


# --- own data: snakemake cecu2si2 --config cecu2si2_data=mydata.yaml ----------------------
# The same steps on the user's files (own_data.py describes mydata.yaml), into
# results/<scale>/cecu2si2-<name>/, with a table of fitted values and no verdicts. The rules
# are named cecu2si2own_<step>: the same steps, with inputs the user chooses.

from reprise.papers.cecu2si2 import own_data as cecu2si2_own_data

CECU2SI2_OWN = (
    cecu2si2_own_data.read_spec(config["cecu2si2_data"])
    if config.get("cecu2si2_data")
    else None
)


CECU2SI2_OWN_TARGETS = []
if CECU2SI2_OWN:
    OWN_FILES = CECU2SI2_OWN["files"]
    OWN_DIR = f"{RESULTS}/cecu2si2-{CECU2SI2_OWN['name']}"
    OWN_PARAMS = cecu2si2_own_data.step_params(
        CFG.scale_section("cecu2si2"), CECU2SI2_OWN, reprise_papers.steps("cecu2si2"), PLOT
    )
    OWN_FIGURES = {
        n: [f"{OWN_DIR}/figures/{n}.{fmt}" for fmt in PLOT["formats"]]
        for n in ("cuts", "edcs", "hybridisation", "fermi_surface", "kz_map", "kf_vs_kz")
    }

    rule cecu2si2own_no_truth:
        output:
            f"{OWN_DIR}/data/no_truth.json",
        shell:
            "echo '{{}}' > {output}"

    rule cecu2si2own_calibrate:
        input:
            gold=OWN_FILES["gold"],
        output:
            fermi=f"{OWN_DIR}/data/fermi_level.nc",
            edges=f"{OWN_DIR}/tables/gold_edges.parquet",
        params:
            cfg=OWN_PARAMS["calibrate"],
            io=io_args,
        log:
            f"{OWN_DIR}/logs/calibrate.log",
        shell:
            reprise_step("cecu2si2", "calibrate")

    if "cut" in OWN_FILES:

        rule cecu2si2own_analyse:
            input:
                cut=OWN_FILES["cut"],
                fermi=rules.cecu2si2own_calibrate.output.fermi,
            output:
                spectra=f"{OWN_DIR}/data/cut_k.nc",
                mdc=f"{OWN_DIR}/tables/mdc_fits.parquet",
                edc=f"{OWN_DIR}/tables/edc_fits.parquet",
                bands=f"{OWN_DIR}/tables/hybridisation_fits.parquet",
            params:
                cfg=OWN_PARAMS["analyse"],
                io=io_args,
            log:
                f"{OWN_DIR}/logs/analyse.log",
            shell:
                reprise_step("cecu2si2", "analyse")

        rule cecu2si2own_figures_cuts:
            input:
                spectra=rules.cecu2si2own_analyse.output.spectra,
                mdc=rules.cecu2si2own_analyse.output.mdc,
                edc=rules.cecu2si2own_analyse.output.edc,
                bands=rules.cecu2si2own_analyse.output.bands,
                truth=rules.cecu2si2own_no_truth.output,
            output:
                cuts=OWN_FIGURES["cuts"],
                edcs=OWN_FIGURES["edcs"],
                hybridisation=OWN_FIGURES["hybridisation"],
            params:
                cfg=OWN_PARAMS["figures_cuts"],
                io=io_args,
            log:
                f"{OWN_DIR}/logs/figures_cuts.log",
            shell:
                reprise_step("cecu2si2", "figures_cuts")

        CECU2SI2_OWN_TARGETS += [
            rules.cecu2si2own_figures_cuts.output,
            rules.cecu2si2own_analyse.output.bands,
        ]

    if "map" in OWN_FILES:

        rule cecu2si2own_maps:
            input:
                map=OWN_FILES["map"],
                hvscan=OWN_FILES["hvscan"],
                fermi=rules.cecu2si2own_calibrate.output.fermi,
            output:
                surface=f"{OWN_DIR}/data/fermi_surface.nc",
                kzmap=f"{OWN_DIR}/data/kz_map.nc",
                kf=f"{OWN_DIR}/tables/kf_vs_kz.parquet",
                v0=f"{OWN_DIR}/tables/inner_potential.parquet",
                flatness=f"{OWN_DIR}/tables/kf_flatness.parquet",
            params:
                cfg=OWN_PARAMS["maps"],
                io=io_args,
            log:
                f"{OWN_DIR}/logs/maps.log",
            shell:
                reprise_step("cecu2si2", "maps")

        rule cecu2si2own_figures_maps:
            input:
                surface=rules.cecu2si2own_maps.output.surface,
                kzmap=rules.cecu2si2own_maps.output.kzmap,
                kf=rules.cecu2si2own_maps.output.kf,
                v0=rules.cecu2si2own_maps.output.v0,
                truth=rules.cecu2si2own_no_truth.output,
            output:
                fermi_surface=OWN_FIGURES["fermi_surface"],
                kz_map=OWN_FIGURES["kz_map"],
                kf_vs_kz=OWN_FIGURES["kf_vs_kz"],
            params:
                cfg=OWN_PARAMS["figures_maps"],
                io=io_args,
            log:
                f"{OWN_DIR}/logs/figures_maps.log",
            shell:
                reprise_step("cecu2si2", "figures_maps")

        CECU2SI2_OWN_TARGETS += [
            rules.cecu2si2own_figures_maps.output,
            rules.cecu2si2own_maps.output.v0,
        ]

    rule cecu2si2own_table:
        input:
            tables=[t for t in CECU2SI2_OWN_TARGETS if str(t).endswith(".parquet")],
        output:
            fitted=f"{OWN_DIR}/fitted_values.csv",
        params:
            cfg=OWN_PARAMS["table"],
            io=io_args,
        log:
            f"{OWN_DIR}/logs/table.log",
        shell:
            reprise_step("cecu2si2", "table")

    CECU2SI2_OWN_TARGETS.append(rules.cecu2si2own_table.output)


rule cecu2si2:
    input:
        CECU2SI2_OWN_TARGETS
        or [
            rules.cecu2si2_evaluate.output.metrics,
            rules.cecu2si2_evaluate.output.summary,
            rules.cecu2si2_figures_maps.output,
            rules.cecu2si2_figures_cuts.output,
        ],
