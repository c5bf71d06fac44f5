"""A paper's metrics, declared once: key, description and the function that computes it.

    METRICS = MetricTable()

    @METRICS.metric("trigger_drop", "accuracy drop of the trigger step (points)")
    def trigger_drop(tables):
        return ...

    @METRICS.group({"V_x_meV": "fitted V of the X band", "V_z_meV": "... of the Z band"})
    def hybridisation(tables):
        return {"V_x_meV": ..., "V_z_meV": ...}

`METRICS` reads as a mapping key -> description (what claims may name), and
`METRICS.compute(*args)` calls every function with the evaluate step's arguments and returns
each declared key (None where a value was not measured; reprise.io.write_json turns NaN
into null).

A metric measured from wall-clock time (an inference-time ratio, a real-time factor) is
declared `timed=True` (or listed in a group's `timed`): it is the one kind of value that two
identical runs do not reproduce bit for bit, and `METRICS.timed` names them for the tests
that compare runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any


class MetricTable(Mapping[str, str]):
    def __init__(self) -> None:
        self._descriptions: dict[str, str] = {}
        self._groups: list[tuple[tuple[str, ...], Callable, bool]] = []
        self.timed: set[str] = set()

    def _declare(self, descriptions: Mapping[str, str]) -> tuple[str, ...]:
        for key in descriptions:
            if key in self._descriptions:
                raise ValueError(f"metric {key!r} is declared twice")
        self._descriptions.update(descriptions)
        return tuple(descriptions)

    def metric(self, key: str, description: str, timed: bool = False):
        """One metric: the function returns its value (`timed`: measured from wall-clock
        time)."""

        def deco(fn: Callable) -> Callable:
            self._groups.append((self._declare({key: description}), fn, False))
            self.timed.update([key] if timed else [])
            return fn

        return deco

    def group(self, descriptions: Mapping[str, str], timed: tuple[str, ...] = ()):
        """Several metrics computed together: the function returns {key: value} for each
        (`timed`: those measured from wall-clock time)."""
        if unknown := set(timed) - set(descriptions):
            raise ValueError(f"timed metrics {sorted(unknown)} are not in the group")

        def deco(fn: Callable) -> Callable:
            self._groups.append((self._declare(descriptions), fn, True))
            self.timed.update(timed)
            return fn

        return deco

    def compute(self, *args, **kwargs) -> dict[str, Any]:
        """Every declared metric, in declaration order."""
        out: dict[str, Any] = {}
        for keys, fn, many in self._groups:
            values = fn(*args, **kwargs)
            if not many:
                values = {keys[0]: values}
            if set(values) != set(keys):
                wrong = sorted(set(values) ^ set(keys))
                raise RuntimeError(f"{fn.__name__} returned other metrics than declared: {wrong}")
            out.update({k: values[k] for k in keys})
        return out

    def __getitem__(self, key: str) -> str:
        return self._descriptions[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._descriptions)

    def __len__(self) -> int:
        return len(self._descriptions)
