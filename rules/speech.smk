# Speech data and the model zoo shared by the speech papers (reprise.speech; it knows no
# paper). A paper reads the corpus with `input: corpus=SPEECH_CORPUS`, lists it in
# PAPER_DATA["<paper>"], and takes a zoo model with `speech_model(name)` (rules/common.smk).
LIBRISPEECH = f"{DATA}/prepared/librispeech"
LIBRISPEECH_SUBSETS = ["train-clean-100", "dev-clean", "test-clean"]


rule speech_corpus:
    output:
        directory(SPEECH_CORPUS),
    params:
        sizes=json.dumps(SPEECH_CFG["sizes"], sort_keys=True),
        seed=SPEECH_CFG["seed"],
        synth=json.dumps(SPEECH_CFG["synth"], sort_keys=True),
    log:
        f"{DATA}/logs/speech-corpus-{SCALE}.log",
    threads: 2
    # The zoo is the main job's longest work: build its corpus first, while both cores are
    # free (a 2-thread job otherwise waits until every other job is done), then train it early.
    priority: 100
    conda:
        CONDA_ENV
    shell:
        "python -m reprise.speech corpus --out {output:q} --sizes {params.sizes:q} "
        "--seed {params.seed} --synth {params.synth:q} --workers {threads} > {log} 2>&1"


wildcard_constraints:
    speech_model="|".join(SPEECH_MODELS),
    speech_warmup="|".join(sorted(set(SPEECH_WARMUPS.values()))) or "(?!)",  # none: no match


# The CTC-only first epochs that several zoo models share (SPEECH_WARMUPS), run once and
# named after the first of them; first, as they hold up every model that continues from them.
rule speech_warmup:
    input:
        corpus=SPEECH_CORPUS,
    output:
        speech_warmup("{speech_warmup}"),
    params:
        cfg=lambda wildcards: speech_model_config(wildcards.speech_warmup),
    log:
        f"{RESULTS}/speech/logs/warmup-{{speech_warmup}}.log",
    threads: 1
    priority: 60
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        "python -m reprise.speech warmup --corpus {input.corpus:q} --config {params.cfg:q} "
        "--out {output:q} --threads {threads} > {log} 2>&1"


rule speech_model:
    input:
        unpack(speech_model_inputs),
    output:
        model=speech_model("{speech_model}"),
    params:
        cfg=lambda wildcards: speech_model_config(wildcards.speech_model),
        start=lambda wildcards, input: (
            f"--start {shlex.quote(input.start)}" if "start" in input.keys() else ""
        ),
    log:
        f"{RESULTS}/speech/logs/model-{{speech_model}}.log",
    threads: 1
    priority: 50
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        "python -m reprise.speech train --corpus {input.corpus:q} --config {params.cfg:q} "
        "--out {output.model:q} {params.start} --threads {threads} > {log} 2>&1"


rule speech_models:
    input:
        [speech_model(name) for name in SPEECH_MODELS],


# LibriSpeech (paper scale, optional): the official tarballs under <data>/raw/librispeech/,
# checksum-verified, converted to the corpus's manifest format.
rule librispeech_corpus:
    input:
        [f"{DATA}/raw/librispeech/{s}.tar.gz" for s in LIBRISPEECH_SUBSETS],
    output:
        directory(LIBRISPEECH),
    params:
        raw=lambda wildcards, input: str(Path(input[0]).parent),
        subsets=",".join(LIBRISPEECH_SUBSETS),
    log:
        f"{DATA}/logs/librispeech-corpus.log",
    conda:
        CONDA_ENV
    shell:
        "python -m reprise.speech librispeech --raw {params.raw:q} --out {output:q} "
        "--subsets {params.subsets} > {log} 2>&1"


# Downloads run on the submitting node (compute nodes often have no internet access).
localrules:
    librispeech_fetch,


rule librispeech_fetch:
    output:
        f"{DATA}/raw/librispeech/{{subset}}.tar.gz",
    log:
        f"{DATA}/logs/librispeech-fetch-{{subset}}.log",
    conda:
        CONDA_ENV
    shell:
        "python -m reprise.speech librispeech-fetch {wildcards.subset} "
        "--raw $(dirname {output:q}) > {log} 2>&1"
