"""The model zoo as papers and rules see it: each run of a speech paper decodes a zoo model
by name; models that share their first (CTC-only) epochs start from one warm-up."""

from __future__ import annotations

import json

from reprise.errors import ConfigError


def check_models(where: str, runs: dict, zoo, scale: str) -> None:
    """Every run's `model` is in `zoo` (config/speech.yaml's models at `scale`); `where`
    names the paper's config file in the one-line error."""
    for name, run in runs.items():
        if run["model"] not in zoo:
            raise ConfigError(
                f"{where}: runs.{name} decodes model {run['model']!r}; there is no model "
                f"{run['model']!r} in config/speech.yaml ({scale}) models: {', '.join(zoo)}"
            )


# The first `ctc_epochs` of a training fit the encoder with CTC alone (speech.train): they
# read neither the transducer loss's settings nor the decoder's, so models whose configs
# differ only there run the same first epochs, bit for bit, and can start from one shared
# warm-up (rule speech_warmup) instead of each running them again.
TRANSDUCER_ONLY = {"train": ("loss", "buffers", "ctc_weight"), "tokens": ("eos_delay",)}


def warmup_config(cfg: dict) -> dict:
    """`cfg` (a speech config, or part of one) without what the CTC-only epochs never read."""
    out = {sec: dict(vals) for sec, vals in cfg.items() if sec != "decode"}
    for sec, keys in TRANSDUCER_ONLY.items():
        for key in keys:
            out.get(sec, {}).pop(key, None)
    return out


def shared_warmups(configs: dict[str, dict]) -> dict[str, str]:
    """{model: the warm-up it starts from} for each model of `configs` ({name: speech
    config}) whose CTC-only epochs another model runs too; a warm-up is named after the
    first model of its group. Models with no CTC epochs, or none to share them with, are
    absent: they train from scratch."""
    groups: dict[str, list[str]] = {}
    for name, cfg in configs.items():
        if cfg.get("train", {}).get("ctc_epochs", 0) > 0:
            key = json.dumps(warmup_config(cfg), sort_keys=True)
            groups.setdefault(key, []).append(name)
    return {name: names[0] for names in groups.values() if len(names) > 1 for name in names}
