"""Adversarial Training with Rectified Rejection (Pang et al., arXiv:2105.14785).

AT models (PGD-AT, TRADES, CCAT), each with and without the rectified-rejection (RR) head,
are attacked (PGD with CE/CW loss, multi-target PGD, adaptive PGD and adaptive CW) and
corrupted; Con, R-Con, T-Con and baseline scores (energy, KD, LID, GDA) are judged on how
well they tell correctly from wrongly classified inputs. Metrics are of the first backbone.
"""

AT_METHODS = ("pgd_at", "trades", "ccat")
SCORES = ("con", "rcon", "tcon", "energy", "kd", "lid", "gda")
COUPLED_THRESHOLD = 0.5  # the coupled rule accepts when both Con and R-Con exceed it


def backbone_datasets(data: dict, backbones) -> dict[str, str]:
    """backbone -> the dataset it trains on: `data.dataset`, or the dataset of `data.extra`
    ({dataset: [backbone, ...]}) that lists it."""
    from reprise.errors import ConfigError

    out = dict.fromkeys(backbones, data["dataset"])
    listed: set[str] = set()
    for dataset, names in data.get("extra", {}).items():
        for name in names:
            if name not in out or name in listed:
                what = "twice in data.extra" if name in listed else "not one of the backbones"
                raise ConfigError(
                    f"data.extra.{dataset}: backbone {name!r} is {what} "
                    f"(backbones: {', '.join(backbones)})"
                )
            out[name] = dataset
            listed.add(name)
    if data["dataset"] not in out.values():
        raise ConfigError(f"data.extra lists every backbone: none trains on {data['dataset']}")
    return out


from reprise.papers.rejection.metrics import METRICS  # noqa: E402, F401  (reads the names above)
