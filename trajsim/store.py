"""Run directory: Parquet outputs and the manifest (design.md, output contract).

    DIR/manifest.json          resolved scenario, version, seed, ranks, timings, status per point
    DIR/summary.parquet        point, t, <obs>_mean, <obs>_sem, xi2
    DIR/trajectories.parquet/  partitioned: one part per work unit (store: trajectories)
    DIR/events.parquet/        partitioned: one part per work unit (store: trajectories)
    DIR/j_distribution.parquet point, t, j, probability, sem: the distribution of total spin j
    DIR/points.parquet         point and its swept parameter values
    DIR/units/                 per-unit partial statistics; a unit is finished once its file exists

Every file is written to a temporary name and renamed, so a killed run leaves only whole files.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "manifest.json"


class RunDirectoryError(ValueError):
    """The output directory cannot be used as asked; the message is one line for the user."""


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    _atomic(path, lambda tmp: pq.write_table(table, tmp))


class RunDirectory:
    """One run's output directory."""

    def __init__(self, path):
        self.path = Path(path)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def read_manifest(self) -> dict:
        try:
            return json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            raise RunDirectoryError(f"{self.path}: no {MANIFEST}; not a trajsim run directory") from None
        except json.JSONDecodeError:
            raise RunDirectoryError(f"{self.manifest_path}: damaged (not JSON)") from None

    def write_manifest(self, manifest: dict) -> None:
        text = json.dumps(manifest, indent=2, sort_keys=True)
        _atomic(self.manifest_path, lambda tmp: Path(tmp).write_text(text))

    def prepare(self, scenario_hash: str, resume: bool) -> dict | None:
        """Check that the directory may take this run; returns the old manifest when resuming."""
        if self.path.exists() and not self.path.is_dir():
            raise RunDirectoryError(f"{self.path}: exists and is not a directory")
        if not self.manifest_path.exists():
            if self.path.exists() and any(self.path.iterdir()) and not resume:
                raise RunDirectoryError(f"{self.path}: not empty and not a trajsim run; "
                                        "choose a new --out directory")
            return None
        old = self.read_manifest()
        if old.get("scenario_hash") != scenario_hash:
            raise RunDirectoryError(f"{self.path}: holds a run of a different scenario "
                                    f"('{old.get('scenario', {}).get('name', '?')}'); "
                                    "choose a new --out directory")
        if not resume:
            raise RunDirectoryError(f"{self.path}: already holds this run; add --resume to "
                                    "continue it, or choose a new --out directory")
        for stale in self.path.rglob(".*.tmp"):  # left by a killed run
            stale.unlink()
        return old

    # ------------------------------------------------------------------ work units

    def _unit_name(self, point: int, unit: int) -> str:
        return f"part-p{point:05d}-u{unit:06d}.parquet"

    def unit_stats_path(self, point: int, unit: int) -> Path:
        return self.path / "units" / f"p{point:05d}-u{unit:06d}.npz"

    def load_unit_stats(self, point: int, unit: int) -> dict | None:
        """Partial statistics of a finished unit, or None if missing or damaged."""
        try:
            with np.load(self.unit_stats_path(point, unit)) as data:
                return {key: data[key] for key in data.files}
        except (OSError, ValueError, EOFError, KeyError):
            return None

    def unit_finished(self, point: int, unit: int, with_parts: bool) -> bool:
        """A unit counts as finished only if its statistics load and its Parquet parts are whole."""
        stats = self.load_unit_stats(point, unit)
        if stats is None:
            return False
        for name in ("trajectories", "events") if with_parts else ():
            part = self.path / f"{name}.parquet" / self._unit_name(point, unit)
            try:
                rows = pq.read_metadata(part).num_rows
            except (OSError, pa.ArrowException):
                return False
            if rows != int(stats.get(f"rows_{name}", -1)):
                return False
        return True

    def remove_unit(self, point: int, unit: int) -> None:
        """Delete a unit's files (a unit past a point's target-precision cut)."""
        for name in ("trajectories", "events"):
            (self.path / f"{name}.parquet" / self._unit_name(point, unit)).unlink(missing_ok=True)
        self.unit_stats_path(point, unit).unlink(missing_ok=True)

    def write_unit(self, point: int, unit: int, stats: dict, frames: dict[str, pd.DataFrame]):
        """Write a unit's Parquet parts, then its statistics (which mark it finished)."""
        for name, df in frames.items():
            write_parquet(df, self.path / f"{name}.parquet" / self._unit_name(point, unit))

        def save(tmp):
            with open(tmp, "wb") as fh:
                np.savez(fh, **stats)

        _atomic(self.unit_stats_path(point, unit), save)

    def write_table(self, name: str, df: pd.DataFrame) -> None:
        write_parquet(df, self.path / f"{name}.parquet")
