# Speech data shared by the speech papers (reprise.speech; it knows no paper). A paper reads
# the corpus with `input: corpus=SPEECH_CORPUS` and lists it in PAPER_DATA["<paper>"].
import yaml as _yaml

SPEECH_CFG = _yaml.safe_load(open(Path(workflow.basedir) / "config" / "speech.yaml"))[SCALE]
SPEECH_CORPUS = f"{DATA}/prepared/speech-{SCALE}"
LIBRISPEECH = f"{DATA}/prepared/librispeech"
LIBRISPEECH_SUBSETS = ["train-clean-100", "dev-clean", "test-clean"]


rule speech_corpus:
    output:
        directory(SPEECH_CORPUS),
    params:
        sizes=json.dumps(SPEECH_CFG["sizes"], sort_keys=True),
        seed=SPEECH_CFG["seed"],
    log:
        f"{DATA}/logs/speech-corpus-{SCALE}.log",
    threads: 2
    conda:
        CONDA_ENV
    shell:
        "python -m reprise.speech corpus --out {output:q} --sizes {params.sizes:q} "
        "--seed {params.seed} --workers {threads} > {log} 2>&1"


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
