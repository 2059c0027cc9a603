"""Runner: scenario points -> work units -> trajectories on all local cores -> run directory.

A work unit is (point, a block of ``run.unit_size`` consecutive trajectories).  Trajectory i of
point p draws from a random stream keyed by (seed, p, i) only, each unit's partial statistics
(count, mean, sum of squared deviations) are merged in unit order (Chan et al.), and unit
boundaries depend on the scenario alone: every output file is the same for any number of threads.
Finished units are skipped on --resume.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from . import __version__, distribute
from .compiled import OBSERVABLES
from .engines import WorkUnit, engine_for
from .hybrid import truncation_warning
from .scenario import SCHEMA_VERSION, Scenario
from .squeezing import moments_from_columns, wineland_xi2
from .stats import UnitStats
from .store import RunDirectory, unit_identity

log = logging.getLogger("trajsim")


def work_units(scenario: Scenario) -> list[WorkUnit]:
    units = []
    for p, point in enumerate(scenario.points):
        n, size = point["run"]["trajectories"], point["run"]["unit_size"]
        units += [WorkUnit(p, u, first, min(size, n - first))
                  for u, first in enumerate(range(0, n, size))]
    return units


def unit_identities(scenario: Scenario):
    """identities(p, u): what unit u of point p is committed as (first), and what an older
    trajsim committed it as (the full hashes, before runs could be extended)."""
    units = {(u.point, u.unit): u for u in work_units(scenario)}
    family, full = scenario.family_hash(), scenario.hash()
    points = [(scenario.point_family_hash(p), scenario.point_hash(p))
              for p in range(len(scenario.points))]

    def identities(p: int, u: int) -> list[dict]:
        unit = units[p, u]
        return [unit_identity(family, points[p][0], unit.first, unit.count),
                unit_identity(full, points[p][1])]

    return identities


def j_distribution_frame(point_index: int, t_grid: np.ndarray, stats: UnitStats) -> pd.DataFrame:
    """Long table of P(j) per sample with its binomial standard error, for the j that occur."""
    counts, n = stats.j_counts, stats.n
    seen = np.flatnonzero(counts.sum(axis=0))
    p = counts[:, seen] / n
    return pd.DataFrame({
        "point": np.full(p.size, point_index, np.int64),
        "t": np.repeat(t_grid, seen.size),
        "j": np.tile(seen / 2.0, t_grid.size),
        "probability": p.ravel(),
        "sem": np.sqrt(p * (1 - p) / max(n - 1, 1)).ravel(),
    })


def summary_frame(point_index: int, t_grid: np.ndarray, stats: UnitStats,
                  columns: tuple[str, ...]) -> pd.DataFrame:
    """Per sample: mean and standard error of every column, and the ensemble xi^2."""
    mean, sem = stats.mean, stats.sem
    df = pd.DataFrame({"point": np.full(t_grid.size, point_index, np.int64), "t": t_grid})
    for k, name in enumerate(columns):
        df[f"{name}_mean"] = mean[:, k]
        df[f"{name}_sem"] = sem[:, k]
    means = {name: mean[:, k] for k, name in enumerate(columns)}
    S, SS = moments_from_columns(means)
    df["xi2"] = wineland_xi2(means["N"], S, SS)
    return df


def points_frame(scenario: Scenario) -> pd.DataFrame:
    df = pd.DataFrame({"point": np.arange(len(scenario.points), dtype=np.int64)})
    for key in scenario.swept:
        section, name = key.split(".")
        df[key] = [point[section][name] for point in scenario.points]
    return df


class Scheduler:
    """Hands out work units in order, merges their statistics as they finish, and decides, per
    point, how many units count.

    Each point's statistics are the sum of its units 0, 1, 2, ... in unit order (the same bytes
    for any finishing order), merged as soon as the prefix of finished units grows, so the end of
    a run only writes the tables.  With ``run.target_sem`` a point stops at the first unit
    boundary m (m >= 2) where the largest standard error over the sample grid of the target
    observable, computed from units 0..m-1, is at most the target; units past the cut are
    dropped.  Thread-safe.
    """

    def __init__(self, scenario: Scenario, units: list[WorkUnit], finished: set):
        self.units = units
        self.finished = set(finished)
        self.cut = {p: 0 for p in range(len(scenario.points))}
        for u in units:
            self.cut[u.point] += 1
        self.target = scenario.resolved["run"].get("target_sem")
        self.reached = dict.fromkeys(self.cut, False)
        self._prefix = dict.fromkeys(self.cut, 0)
        self.totals: dict[int, UnitStats] = {}
        self._queue = [u for u in units if (u.point, u.unit) not in self.finished]
        self._next = 0
        self._lock = threading.Lock()
        self.load_stats = None

    def start(self, load_stats) -> None:
        """Take finished units (a resume) into account; load_stats(point, unit) -> UnitStats."""
        self.load_stats = load_stats
        for p in self.cut:
            self._advance(p)

    def next_unit(self) -> WorkUnit | None:
        with self._lock:
            while self._next < len(self._queue):
                unit = self._queue[self._next]
                self._next += 1
                if unit.unit < self.cut[unit.point]:
                    return unit
            return None

    def done(self, unit: WorkUnit) -> None:
        with self._lock:
            self.finished.add((unit.point, unit.unit))
            self._advance(unit.point)

    def complete(self, p: int) -> bool:
        """Whether every unit of point p up to its cut is merged."""
        return self._prefix[p] == self.cut[p]

    def _advance(self, p: int) -> None:
        index = OBSERVABLES.index(self.target["observable"]) if self.target else None
        while self._prefix[p] < self.cut[p] and (p, self._prefix[p]) in self.finished:
            stats = self.load_stats(p, self._prefix[p])
            self.totals[p] = self.totals[p] + stats if p in self.totals else stats
            self._prefix[p] += 1
            if index is not None and self._prefix[p] >= 2 and self.totals[p].n > 1 \
                    and self.totals[p].sem[:, index].max() <= self.target["value"]:
                self.cut[p], self.reached[p] = self._prefix[p], True


def local_threads() -> int:
    return len(os.sched_getaffinity(0))


def run(scenario: Scenario, out, resume: bool = False, threads: int | None = None,
        progress: bool | None = None) -> RunDirectory:
    """Run every unfinished work unit of the scenario and write the run directory.

    The same call on every MPI rank under mpirun (one thread per rank); otherwise a thread pool
    over all local cores.  Rank 0 takes the directory (lock, checks), hands out units and merges
    the results.
    """
    comm = distribute.world()
    rank, ranks = (comm.rank, comm.size) if comm else (0, 1)
    threads = 1 if comm else threads or local_threads()
    directory = RunDirectory(out)
    units = work_units(scenario)
    keep = scenario.resolved["run"]["store"] == "trajectories"
    identities = unit_identities(scenario)
    engines = [engine_for(point) for point in scenario.points]
    parts = [engine.tables(point, keep) for engine, point in zip(engines, scenario.points,
                                                                  strict=True)]
    manifest: dict = {}
    scheduler: Scheduler | None = None

    def take_directory() -> None:
        nonlocal scheduler
        scenario.check_resources()
        directory.lock()
        try:
            old = directory.prepare(scenario.hash(), scenario.family_hash(),
                                    scenario.resolved["run"]["trajectories"], resume)
            log.info("%s: estimated cost ~%.3g CPU s (from the measured costs per "
                     "jump or per record event; 'trajsim validate' shows each point)", scenario.name,
                     sum(row["cpu_s"] for row in scenario.cost()))
            finished = {(u.point, u.unit) for u in units
                        if directory.unit_finished(u.point, u.unit, identities(u.point, u.unit),
                                                   parts[u.point])}
            manifest.update(_start_manifest(scenario, ranks, threads, units))
            if old is not None and old["scenario_hash"] != scenario.hash():
                log.info("%s: extending the run from %d to %d trajectories per point",
                         directory.path, old["scenario"]["run"]["trajectories"],
                         scenario.resolved["run"]["trajectories"])
                manifest["interruptions"] = old.get("interruptions", [])
            elif old is not None:
                manifest["interruptions"] = _interruptions(directory, old, units, finished)
            directory.write_manifest(manifest)
            scheduler = Scheduler(scenario, units, finished)
            scheduler.start(lambda p, u: UnitStats.from_arrays(directory.load_unit_arrays(p, u)))
        except BaseException:
            directory.unlock()
            raise

    distribute.on_root(comm, take_directory)
    try:
        computed = _compute(scenario, engines, directory, scheduler, comm, threads, keep,
                            identities, show=rank == 0 and (progress if progress is not None
                                                else os.isatty(2)))
        if rank == 0:
            manifest["timings"] = {"compute_s": computed[1], "units_computed": computed[0],
                                   "units_total": len(units)}
            _finish(directory, scenario, manifest, scheduler)
    except BaseException as err:
        if rank == 0 and manifest:  # the manifest keeps how the run ended
            manifest.update(status="interrupted" if isinstance(err, KeyboardInterrupt)
                            else "failed", failure=f"{type(err).__name__}: {err}")
            with contextlib.suppress(OSError):
                directory.write_manifest(manifest)
        raise
    finally:
        directory.unlock()
    return directory


def _compute(scenario, engines, directory, scheduler, comm, threads, keep, identities, show):
    """Compute the unfinished units on every rank/thread: (units computed, seconds)."""
    setups: dict = {}
    lock = threading.Lock()
    seed = scenario.resolved["run"]["seed"]

    def work(unit: WorkUnit) -> WorkUnit:
        with lock:  # one setup (and block table) per point, shared by the threads
            if unit.point not in setups:
                setups[unit.point] = engines[unit.point].build(scenario.points[unit.point])
        result = engines[unit.point].run_unit(setups[unit.point], unit, seed, keep)
        directory.write_unit(unit.point, unit.unit, identities(unit.point, unit.unit)[0],
                             result.stats.to_arrays(), result.frames)
        return unit

    def hand_out(worker: str) -> WorkUnit | None:
        unit = scheduler.next_unit()
        if unit is not None:
            directory.log_handout(unit.point, unit.unit, worker)
        return unit

    started = time.time()
    computed: list[WorkUnit] = []
    todo = [] if scheduler is None else [u for u in scheduler.units
                                         if (u.point, u.unit) not in scheduler.finished]
    with tqdm(total=sum(u.count for u in todo), unit="traj", disable=not show,
              desc=scenario.name) as bar:
        def on_done(unit: WorkUnit) -> None:
            scheduler.done(unit)
            computed.append(unit)
            bar.update(unit.count)

        # trajsim's threads and ranks are the parallelism; BLAS inside them runs on one thread
        # (as mpi_jobs/ sets), since a threaded BLAS sums in another order for another thread
        # count: the hybrid engine's expm differed in its last bits between 1 and 2 threads.
        with threadpool_limits(limits=1, user_api="blas"):
            if comm:
                distribute.run_mpi(comm, hand_out, work, on_done)
            else:
                distribute.run_local(hand_out, work, on_done, threads)
    return len(computed), round(time.time() - started, 3)


def _start_manifest(scenario, ranks, threads, units) -> dict:
    return {
        "trajsim_version": __version__, "schema_version": SCHEMA_VERSION,
        "scenario": scenario.resolved,
        "scenario_hash": scenario.hash(), "scenario_family": scenario.family_hash(),
        "seed": scenario.resolved["run"]["seed"],
        "ranks": ranks, "threads_per_rank": threads, "status": "running",
        "points": [{"point": p, "units": sum(u.point == p for u in units),
                    "unit_size": point["run"]["unit_size"], "status": "running"}
                   for p, point in enumerate(scenario.points)],
    }


def _interruptions(directory, old: dict, units, finished) -> list:
    """The old manifest's record of earlier interruptions, plus this resume's if units were
    missing: how the previous run ended, and which worker had each unfinished unit."""
    history = old.get("interruptions", [])
    missing = [u for u in units if (u.point, u.unit) not in finished]
    if not missing:
        return history
    handed = directory.handouts()
    in_progress = [{"point": u.point, "unit": u.unit, "worker": handed[u.point, u.unit]}
                   for u in missing if (u.point, u.unit) in handed]
    log.warning("%s: the previous run ended with status '%s'%s; %d of %d units missing or "
                "damaged%s; recomputing them", directory.path, old.get("status"),
                f" ({old['failure']})" if old.get("failure") else "", len(missing), len(units),
                "; unfinished when it stopped: " + ", ".join(
                    f"point {d['point']} unit {d['unit']} ({d['worker']})"
                    for d in in_progress[:8]) if in_progress else "")
    return history + [{"previous_status": old.get("status"), "failure": old.get("failure"),
                       "units_missing": len(missing), "in_progress": in_progress}]


def _check_truncation(record: dict, p: int, point, top: float) -> None:
    """A hybrid point's largest mean weight in the top two Fock levels, into its manifest record,
    with a warning above ``hybrid.WARN_TOP_WEIGHT`` (``hybrid.truncation_warning``)."""
    record["top_fock_max"] = top
    warning = truncation_warning(top, point["model"]["n_max"],
                                 f"point {p}: the trajectories hold up to")
    if warning:
        log.warning(warning)


def _finish(directory, scenario, manifest, scheduler: Scheduler) -> None:
    """Write summary, j_distribution, points and the manifest from the statistics the scheduler
    merged in unit order while the units finished (O(points) here).

    Units past a point's cut (target standard error reached earlier) are dropped with their files.
    """
    started = time.time()
    summaries, j_tables = [], []
    for p, point in enumerate(scenario.points):
        if not scheduler.complete(p):
            raise RuntimeError(f"point {p}: units missing at the end of the run")
        kept = [u for u in scheduler.units if u.point == p and u.unit < scheduler.cut[p]]
        for u in scheduler.units:
            if u.point == p and u.unit >= scheduler.cut[p]:
                directory.remove_unit(u.point, u.unit)
        stats = scheduler.totals[p]
        t_grid = point.time_grid()
        columns = engine_for(point).columns(point)
        summaries.append(summary_frame(p, t_grid, stats, columns))
        if "top_fock" in columns:
            _check_truncation(manifest["points"][p], p, point,
                              float(stats.mean[:, columns.index("top_fock")].max()))
        j_tables.append(j_distribution_frame(p, t_grid, stats))
        manifest["points"][p].update(status="done", trajectories=sum(u.count for u in kept),
                                     target_sem_reached=scheduler.reached[p])
    directory.write_table("summary", pd.concat(summaries, ignore_index=True))
    directory.write_table("j_distribution", pd.concat(j_tables, ignore_index=True))
    directory.write_table("points", points_frame(scenario))
    manifest["status"] = "done"
    manifest["timings"]["merge_s"] = round(time.time() - started, 3)
    directory.write_manifest(manifest)
