"""Resume state of a long step, so a job killed mid-run (preempted, timed out, cancelled)
continues from its last save when it is run again.

Snakemake deletes a failed job's declared outputs, so the state is never one of them: it lives
in `<first output>.resume/`, a directory beside the outputs that no rule declares. The CLI
removes it once the step has succeeded. A state saved for other params, seed or inputs is
ignored (with a warning), so a changed config never continues a stale run.

The state is untrusted input like any checkpoint: a file that is unreadable, not a
checkpoint, or refused (it would run code) stops the step with one error naming it and the
directory to delete; the step never silently starts over from a state it could not read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from reprise.errors import CheckpointError
from reprise.io import load_checkpoint, save_checkpoint

log = logging.getLogger("reprise")


def resume_dir(first_output: Path) -> Path:
    """Where the step writing `first_output` keeps its resume state."""
    return first_output.with_name(first_output.name + ".resume")


def fingerprint(params: dict, seed: int, inputs: list[Path]) -> str:
    """What a saved state must match to be resumed: the params, the seed and each input's
    path, size and modification time (a rebuilt input starts the step over)."""
    files = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in inputs]
    blob = json.dumps([params, seed, files], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class Resume:
    """A step's resume state: `load()` at the start, `save(state)` after each epoch.

    `Resume()` (no directory) saves nothing and loads nothing, for steps run outside the CLI."""

    directory: Path | None = None
    key: str = ""

    @property
    def path(self) -> Path | None:
        return None if self.directory is None else self.directory / "state.pt"

    def save(self, state: dict) -> None:
        if self.path is not None:
            save_checkpoint(self.path, {"fingerprint": self.key, "state": state})

    def load(self) -> dict | None:
        """The last saved state of this same run, or None to start from the beginning."""
        if self.path is None or not self.path.is_file():
            return None
        try:
            saved = load_checkpoint(self.path, what="resume state")
        except CheckpointError as e:
            raise CheckpointError(f"{e}; delete {self.directory} to start the step over") from None
        if not {"fingerprint", "state"} <= saved.keys():
            raise CheckpointError(
                f"resume state {self.path} is not one reprise saved (no fingerprint and state); "
                f"delete {self.directory} to start the step over"
            )
        if saved.get("fingerprint") != self.key:
            log.warning("starting over: %s was saved for other params, seed or inputs", self.path)
            return None
        return saved["state"]

    def clear(self) -> None:
        """Drop the state once the step's outputs are written."""
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
