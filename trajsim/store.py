"""Run directory: Parquet outputs, the manifest, and the rules that keep a user's results safe.

    DIR/manifest.json          resolved scenario, version, seed, ranks, timings, status per point
    DIR/summary.parquet        point, t, <obs>_mean, <obs>_sem, xi2
    DIR/trajectories.parquet/  partitioned: one part per work unit (store: trajectories)
    DIR/events.parquet/        partitioned: one part per work unit (store: trajectories)
    DIR/j_distribution.parquet point, t, j, probability, sem: the distribution of total spin j
    DIR/points.parquet         point and its swept parameter values
    DIR/units/                 checkpoints: per-unit partial statistics (.npz) and commit records
                               (.json); a hand-out log of the units given to each worker
    DIR/.trajsim.lock          held (flock) by the one process writing the directory

Safety rules (README, "Your results are safe"):
- trajsim writes only into a new or empty directory, or one holding a manifest of the same
  scenario; it never writes or deletes a file whose name and place it did not generate.
- Every file is written under a temporary name of trajsim's own pattern and renamed, so a killed
  run leaves whole files only; a resume deletes only such temporary files, in the places trajsim
  writes them.  Files get the permissions of the user's umask.
- A unit is finished once its commit record exists, names this scenario and point (by hash), and
  every file of the unit has the SHA-256 the record gives; anything else is recomputed.
- One process writes a directory at a time: an exclusive ``flock`` on ``.trajsim.lock``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .errors import TrajsimError, printable

MANIFEST = "manifest.json"
#: The tables of the output contract: DIR/<name>.parquet (a file, or a partitioned directory).
TABLES = ("summary", "trajectories", "events", "measurements", "j_distribution", "points")
LOCK = ".trajsim.lock"
HANDOUT_LOG = "handout.log"
#: Tables written as one part per work unit.
PARTITIONED = ("trajectories", "events", "measurements")
_TMP_MARK = ".trajsim-"  # temporary files: .<name>.trajsim-<random>.tmp
#: Keys every manifest written by trajsim has; a manifest without them is damaged.
MANIFEST_KEYS = ("scenario", "scenario_hash", "status", "points")


class RunDirectoryError(TrajsimError):
    """The output directory cannot be used as asked; the message is one line for the user."""


def _tag(target: str, nonce: str) -> str:
    return hashlib.sha256(f"trajsim temporary file {target} {nonce}".encode()).hexdigest()[:16]


def temporary_name(path: Path) -> Path:
    """A fresh temporary file name for ``path``: .<name>.trajsim-<nonce><tag>.tmp, whose tag (a
    hash of the name and nonce) marks it as trajsim's (``is_own_temporary``)."""
    nonce = uuid.uuid4().hex
    return path.parent / f".{path.name}{_TMP_MARK}{nonce}{_tag(path.name, nonce)}.tmp"


def is_own_temporary(path: Path) -> bool:
    """Whether ``path`` is a temporary file trajsim made: a user's file of a similar name lacks
    the tag, so resume never deletes it."""
    match = re.fullmatch(rf"\.(.+){re.escape(_TMP_MARK)}([0-9a-f]{{32}})([0-9a-f]{{16}})\.tmp",
                         path.name)
    return bool(match) and _tag(match[1], match[2]) == match[3]


def _atomic(path: Path, write) -> None:
    """Write through ``write(tmp)`` to a temporary file next to ``path``, then rename it.

    The temporary file is created with mode 0666 so that the umask decides its permissions (as
    for any file the user creates), and its name follows trajsim's own pattern.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write df atomically.  A text column with no rows (a unit without events) would be typed
    null, which the parts with text cannot be read together with: it is written as text."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    if any(pa.types.is_null(f.type) for f in table.schema):
        table = table.cast(pa.schema([pa.field(f.name, pa.string()) if pa.types.is_null(f.type)
                                      else f for f in table.schema],
                                     metadata=table.schema.metadata))
    _atomic(path, lambda tmp: pq.write_table(table, tmp))


def write_text(path: Path, text: str) -> None:
    _atomic(path, lambda tmp: Path(tmp).write_text(text))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_parts(parts: list[Path], columns) -> pd.DataFrame:
    """The rows of the given Parquet parts, in order, as one table."""
    if not parts:
        raise OSError("no committed part")
    dataset = ds.dataset([str(p) for p in parts], format="parquet")
    return dataset.to_table(columns=columns).to_pandas()


#: In a folder of whole files trajsim writes (DIR/report/): the names and SHA-256 it wrote.
OWNED_RECORD = ".trajsim-files.json"


def write_owned(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (name -> content) into ``folder``, each atomically, and record their
    checksums in OWNED_RECORD.  A file already there that trajsim did not write (not in the
    record, or changed since) is the user's: nothing is written and a one-line
    RunDirectoryError names it."""
    folder.mkdir(exist_ok=True)
    try:
        owned = json.loads((folder / OWNED_RECORD).read_text())
        owned = {str(k): str(v) for k, v in owned.items()} if isinstance(owned, dict) else {}
    except (OSError, ValueError):
        owned = {}
    for name in files:
        target = folder / name
        if target.is_symlink() or (target.exists() and (
                not target.is_file() or owned.get(name) != sha256(target))):
            raise RunDirectoryError(f"{target}: not written by this trajsim (or changed "
                                    "since); trajsim never replaces your files: move it (or an "
                                    "older trajsim's report folder) away and run again")
    for name, content in files.items():
        _atomic(folder / name, lambda tmp, content=content: Path(tmp).write_bytes(content))
        owned[name] = hashlib.sha256(content).hexdigest()
        write_text(folder / OWNED_RECORD, json.dumps(owned, indent=1, sort_keys=True))


def run_directory_above(path: Path) -> Path | None:
    """The trajsim run directory holding ``path`` (the path itself or a parent), if any."""
    for folder in [path, *path.parents]:
        if (folder / MANIFEST).is_file():
            return folder
    return None


def unit_identity(scenario_hash: str, point_hash: str, first: int | None = None,
                  count: int | None = None) -> dict:
    """What a unit's commit record names: the hashes of its scenario and of its point, and
    (since runs can be extended) its first trajectory and count, with hashes that leave out
    run.trajectories.  Records of older runs name the full hashes only."""
    identity = {"scenario": scenario_hash, "point": point_hash}
    return identity if first is None else {**identity, "first": first, "count": count}


class RunDirectory:
    """One run's output directory."""

    def __init__(self, path):
        if str(path).strip() == "":
            raise RunDirectoryError("--out: give a directory path (it is empty)")
        self.path = Path(path)
        self._lock_fd: int | None = None

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    # ------------------------------------------------------------------ manifest

    def read_manifest(self) -> dict:
        """The manifest, checked to be one trajsim wrote, or a one-line RunDirectoryError."""
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except (FileNotFoundError, NotADirectoryError):
            raise RunDirectoryError(f"{self.path}: no {MANIFEST}; not a trajsim run "
                                    "directory") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RunDirectoryError(f"{self.manifest_path}: damaged (not JSON); the run cannot be "
                                    "identified, so it cannot be resumed or reported") from None
        if not isinstance(manifest, dict) or any(k not in manifest for k in MANIFEST_KEYS) \
                or not isinstance(manifest["scenario"], dict):
            raise RunDirectoryError(f"{self.manifest_path}: damaged (not a trajsim manifest: it "
                                    f"lacks {', '.join(MANIFEST_KEYS)}); the run cannot be "
                                    "identified, so it cannot be resumed or reported")
        return manifest

    def write_manifest(self, manifest: dict) -> None:
        write_text(self.manifest_path, json.dumps(manifest, indent=2, sort_keys=True))

    # ------------------------------------------------------------------ taking the directory

    def _foreign_content(self) -> bool:
        """Whether the directory exists and holds anything but trajsim's lock file."""
        return self.path.is_dir() and any(p.name != LOCK for p in self.path.iterdir())

    def check_usable(self) -> None:
        """Refuse, before creating anything, a path that is a file or a non-empty foreign folder."""
        if self.path.exists() and not self.path.is_dir():
            raise RunDirectoryError(f"{self.path}: exists and is not a directory")
        if not self.manifest_path.exists() and self._foreign_content():
            raise RunDirectoryError(f"{self.path}: not empty and holds no trajsim run (no "
                                    f"{MANIFEST}); trajsim writes only into a new or empty "
                                    "directory or its own run directory: choose a new --out")

    def lock(self) -> None:
        """Take the directory for this process (exclusive flock, released when it exits)."""
        self.check_usable()
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunDirectoryError(f"{self.path}: in use by another trajsim process (PID "
                                    f"{holder}); one process writes a run directory at a time: "
                                    "wait for it or stop it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock; the file stays (it is trajsim's)
            self._lock_fd = None

    def prepare(self, scenario_hash: str, family_hash: str, trajectories: int,
                resume: bool) -> dict | None:
        """Check, holding the lock, that the directory may take this run: the same scenario,
        or (with resume) the same one with more trajectories (``Scenario.family_hash``).

        Returns the old manifest when resuming (None for a new run), after deleting the temporary
        files of an interrupted run.
        """
        self.check_usable()
        if not self.manifest_path.exists():
            return None
        old = self.read_manifest()
        before = old["scenario"].get("run", {}).get("trajectories")
        if old["scenario_hash"] != scenario_hash:
            name = printable(old["scenario"].get("name", "?"), 80)
            if old.get("scenario_family") != family_hash:
                raise RunDirectoryError(f"{self.path}: holds a run of a different scenario "
                                        f"('{name}'); choose a new --out directory")
            if trajectories < before:
                raise RunDirectoryError(f"run.trajectories: {self.path} holds {before} "
                                        f"trajectories per point; a run cannot shrink (give "
                                        f"at least {before}, or choose a new --out directory)")
        if not resume:
            more = (f" (it has {before} trajectories per point)"
                    if before is not None and trajectories > before else "")
            raise RunDirectoryError(f"{self.path}: already holds this run{more}; add --resume "
                                    "to continue or extend it, or choose a new --out directory")
        for folder in (self.path, self.path / "units",
                       *(self.path / f"{name}.parquet" for name in PARTITIONED)):
            if folder.is_dir():
                for stale in folder.glob(f".*{_TMP_MARK}*.tmp"):
                    if is_own_temporary(stale):
                        stale.unlink(missing_ok=True)
        return old

    # ------------------------------------------------------------------ work units

    @staticmethod
    def _part_name(point: int, unit: int) -> str:
        return f"part-p{point:05d}-u{unit:06d}.parquet"

    def _unit_path(self, point: int, unit: int, suffix: str) -> Path:
        return self.path / "units" / f"p{point:05d}-u{unit:06d}{suffix}"

    def _unit_files(self, point: int, unit: int, parts) -> list[Path]:
        """The unit's files: a part of each named partitioned table, and its statistics."""
        return [self.path / f"{name}.parquet" / self._part_name(point, unit) for name in parts] \
            + [self._unit_path(point, unit, ".npz")]

    def load_unit_arrays(self, point: int, unit: int) -> dict:
        """The arrays (partial statistics) of a finished, verified unit."""
        with np.load(self._unit_path(point, unit, ".npz")) as data:
            return {key: data[key] for key in data.files}

    def unit_finished(self, point: int, unit: int, identities: list[dict], parts) -> bool:
        """Whether the unit's commit record names one of ``identities`` (scenario and point
        hashes, first trajectory and count),
        and the unit's statistics and a part of each table in ``parts`` have the checksums the
        record gives: whatever the damage to a unit (missing, truncated, bit-flipped, from
        another scenario), it is not finished."""
        try:
            record = json.loads(self._unit_path(point, unit, ".json").read_text())
            files = self._unit_files(point, unit, parts)
            if not isinstance(record, dict) or record.get("identity") not in identities \
                    or set(record.get("sha256", {})) != {self._relative(f) for f in files}:
                return False
            return all(sha256(f) == record["sha256"][self._relative(f)] for f in files)
        except (OSError, ValueError):
            return False

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.path).as_posix()

    def remove_unit(self, point: int, unit: int) -> None:
        """Delete a unit's files, its commit record first (a unit past a point's target cut)."""
        self._unit_path(point, unit, ".json").unlink(missing_ok=True)
        for path in self._unit_files(point, unit, PARTITIONED):
            path.unlink(missing_ok=True)

    def write_unit(self, point: int, unit: int, identity: dict, arrays: dict[str, np.ndarray],
                   frames: dict[str, pd.DataFrame]) -> None:
        """Write a unit's Parquet parts and arrays (partial statistics), then its commit record
        (which marks it finished) with the SHA-256 of each file."""
        for name, df in frames.items():
            write_parquet(df, self.path / f"{name}.parquet" / self._part_name(point, unit))

        def save(tmp):
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

        _atomic(self._unit_path(point, unit, ".npz"), save)
        files = self._unit_files(point, unit, frames)
        record = {"identity": identity,
                  "sha256": {self._relative(f): sha256(f) for f in files}}
        write_text(self._unit_path(point, unit, ".json"), json.dumps(record, sort_keys=True))

    def check_finished(self, manifest: dict, identities, parts: list) -> None:
        """Refuse, in one line, a finished run whose units are not all whole (a unit's file
        deleted, truncated or changed since the run): the tables would be incomplete.
        ``identities(p, u)`` lists what unit u of point p may be committed as, ``parts[p]``
        names the partitioned tables the units of point p write."""
        try:
            default = manifest["scenario"]["run"]["unit_size"]  # manifests before unit_size: auto
            kept = [-(-int(entry["trajectories"]) // int(entry.get("unit_size", default)))
                    for entry in manifest["points"]]
        except (KeyError, TypeError, ValueError):
            raise RunDirectoryError(f"{self.manifest_path}: damaged (its points or run settings "
                                    "are unreadable)") from None
        for p, units in enumerate(kept):
            for u in range(units):
                if not self.unit_finished(p, u, identities(p, u), parts[p]):
                    raise RunDirectoryError(
                        f"{self.path}: work unit {u} of point {p} is missing or damaged; repair "
                        f"the run with 'trajsim run SCENARIO.yaml --out {self.path} --resume'")

    def committed_parts(self, name: str) -> list[Path]:
        """The parts of partitioned table ``name`` that the units' commit records name, in
        (point, unit) order (the checksums are checked by ``check_finished``)."""
        parts = []
        for record_path in sorted((self.path / "units").glob("p*-u*.json")):
            unit = re.fullmatch(r"p(\d{5})-u(\d{6})", record_path.stem)
            try:
                record = json.loads(record_path.read_text())
                names = list(record["sha256"]) if unit and isinstance(record, dict) else []
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a damaged record commits nothing
            part = f"{name}.parquet/{self._part_name(int(unit[1]), int(unit[2]))}" if unit else ""
            if part in names:
                parts.append(self.path / part)
        return parts

    # ------------------------------------------------------------------ hand-out log

    def log_handout(self, point: int, unit: int, worker: str) -> None:
        """Append 'point unit worker' when a unit is handed out (rank 0 only): after a kill, the
        units handed out but not finished name the workers that were computing them."""
        path = self.path / "units" / HANDOUT_LOG
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as fh:
            fh.write(f"{point} {unit} {worker}\n")

    def handouts(self) -> dict[tuple[int, int], str]:
        """(point, unit) -> the worker it was last handed to, from the hand-out log."""
        last = {}
        try:
            lines = (self.path / "units" / HANDOUT_LOG).read_text(errors="replace").splitlines()
        except OSError:
            return last
        for line in lines:
            fields = line.split(maxsplit=2)
            if len(fields) == 3 and fields[0].isdigit() and fields[1].isdigit():
                last[int(fields[0]), int(fields[1])] = fields[2]
        return last

    def write_table(self, name: str, df: pd.DataFrame) -> None:
        write_parquet(df, self.path / f"{name}.parquet")

    def read_table(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """One table of the output contract (TABLES), whole, or a one-line RunDirectoryError."""
        if name not in TABLES:
            raise ValueError(f"{name!r} is not one of the tables {TABLES}")
        path = self.path / f"{name}.parquet"
        if not path.exists():
            why = {"measurements": "the run has no S_y instrument (measurement.kind: none) "
                                   "or kept only its summary (run.store: summary)"}.get(
                name, "run with run.store: trajectories to keep it" if name in PARTITIONED
                else "is the run finished?")
            raise RunDirectoryError(f"{path}: missing; {why}")
        try:
            if name in PARTITIONED:  # only the parts a commit record names: never a stray file
                return _read_parts(self.committed_parts(name), columns)
            return pd.read_parquet(path, columns=columns)
        except (OSError, ValueError, pa.ArrowException) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise RunDirectoryError(f"{path}: cannot be read ({reason}); repair the run with "
                                    f"'trajsim run SCENARIO.yaml --out {self.path} --resume'") from None
