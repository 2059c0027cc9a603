"""The results of a run: its directory's tables and manifest, read through ``store``."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import pandas as pd

from .store import RunDirectory


def _table(name: str) -> cached_property:
    """A table of the output contract, read through ``store`` on first use."""
    return cached_property(lambda self: self._directory.read_table(name))


class RunResult:
    """The results of one trajsim run, read lazily from its run directory.

    Parameters
    ----------
    path : str or Path
        The run directory (it holds ``manifest.json``).

    Attributes
    ----------
    path : Path
        The run directory.
    manifest : dict
        The resolved scenario, its hash, version, seed, ranks, timings and status.
    summary : pandas.DataFrame
        ``point, t``, ``<observable>_mean``, ``<observable>_sem`` and ``xi2`` per sample.
    points : pandas.DataFrame
        ``point`` and its swept parameter values (columns named by key, e.g. ``model.N``).
    sweep_summary : pandas.DataFrame
        ``summary`` with each point's swept parameter values as columns.
    trajectories, events, measurements, j_distribution : pandas.DataFrame
        Per-trajectory samples, every jump and loss, every S_y measurement outcome (with an
        instrument), and P(j) per sample (README, "Output directory"); the first three exist
        with ``run.store: trajectories``.
    """

    def __init__(self, path, _keep_alive=None):
        self._directory = RunDirectory(path)
        self._keep_alive = _keep_alive  # a temporary directory lives as long as its result
        self.manifest  # noqa: B018 - a damaged or foreign directory is refused now, not later

    def __repr__(self) -> str:
        return (f"RunResult('{self.path}': {self.name}, {len(self.manifest['points'])} point(s), "
                f"{self.manifest['status']})")

    @property
    def path(self) -> Path:
        return self._directory.path

    @cached_property
    def manifest(self) -> dict:
        return self._directory.read_manifest()

    @property
    def name(self) -> str:
        return self.manifest["scenario"].get("name", "?")

    summary = _table("summary")
    points = _table("points")
    trajectories = _table("trajectories")
    events = _table("events")
    measurements = _table("measurements")
    j_distribution = _table("j_distribution")

    @cached_property
    def sweep_summary(self) -> pd.DataFrame:
        return self.summary.merge(self.points, on="point", how="left")

    def report(self) -> Path:
        """Write the parity-detection report into ``path/report`` and return that folder.

        Returns
        -------
        Path
            The folder holding report.md, report.html, the CSV tables and the figures.
        """
        from .report import write_report

        return write_report(self.path)
