"""Runner: scenario points -> work units -> trajectories on all local cores -> run directory.

A work unit is (point, a block of ``run.unit_size`` consecutive trajectories).  Trajectory i of
point p draws from a random stream keyed by (seed, p, i) only, each unit's partial statistics
(count, mean, sum of squared deviations) are merged in unit order (Chan et al.), and unit
boundaries depend on the scenario alone: every output file is the same for any number of threads.
Finished units are skipped on --resume.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm import tqdm

from . import __version__, dicke, distribute, exact
from .engine import CHANNELS, LOSS_CODE, OBSERVABLES, BlockTable, rng_states, simulate
from .model import Rates
from .scenario import Scenario
from .squeezing import moments_from_columns, wineland_xi2
from .store import RunDirectory, RunDirectoryError


@dataclass(frozen=True)
class WorkUnit:
    point: int
    unit: int
    first: int
    count: int


def work_units(scenario: Scenario) -> list[WorkUnit]:
    size = scenario.resolved["run"]["unit_size"]
    units = []
    for p, point in enumerate(scenario.points):
        n = point["run"]["trajectories"]
        units += [WorkUnit(p, u, first, min(size, n - first))
                  for u, first in enumerate(range(0, n, size))]
    return units


def initial_ensemble(point: dict) -> tuple[int, np.ndarray, np.ndarray]:
    """(2j, weights, Dicke-basis states) of the initial state: a pure state or an ensemble."""
    N, init = point["model"]["N"], point["initial_state"]
    if init["kind"] == "steady":
        weights, states = exact.steady_state(N, N, point["model"]["r"])
        return N, weights, states
    if init["kind"] == "css":
        psi = dicke.coherent_spin_state(N, init["theta"], init["phi"])
        return N, np.ones(1), psi[None, :]
    two_j = N if init["j"] is None else round(2 * init["j"])
    two_m = -two_j if init["m"] is None else round(2 * init["m"])
    return two_j, np.ones(1), dicke.dicke_state(two_j, two_m)[None, :]


@dataclass
class PointSetup:
    """Everything the engine needs for one sweep point, built once and shared by its units."""

    point: dict
    rates: Rates
    table: BlockTable
    two_j: int
    weights: np.ndarray
    states: np.ndarray
    t_grid: np.ndarray
    script_times: np.ndarray
    loss_rate: float

    @classmethod
    def build(cls, point: dict) -> PointSetup:
        m = point["model"]
        rates = Rates(m["Gamma"], m["r"], m["gamma_coll"], m["gamma_phi"], m["gamma_rel"])
        two_j, weights, states = initial_ensemble(point)
        if np.all(states.imag == 0):
            states = np.ascontiguousarray(states.real)
        t_grid = np.linspace(0.0, point["time"]["t_end"], point["time"]["n_samples"])
        script = np.sort(np.asarray(point["loss"]["times"], float))
        return cls(point, rates, BlockTable(rates), two_j, weights, states, t_grid, script,
                   float(point["loss"]["rate_per_spin"]))


@dataclass
class UnitResult:
    stats: dict
    frames: dict = field(default_factory=dict)


def run_unit(setup: PointSetup, unit: WorkUnit, seed: int, keep_trajectories: bool) -> UnitResult:
    """Simulate one work unit: partial statistics, and per-trajectory tables if kept."""
    index = np.arange(unit.first, unit.first + unit.count)
    samples, events = simulate(setup.table, setup.point["model"]["N"], setup.two_j,
                               setup.weights, setup.states, setup.t_grid, setup.script_times,
                               setup.loss_rate, rng_states(seed, unit.point, index))
    mean = samples.mean(axis=0)
    stats = {"n": np.array(unit.count), "mean": mean, "M2": ((samples - mean) ** 2).sum(axis=0)}
    if not keep_trajectories:
        return UnitResult(stats)
    stats["rows_trajectories"] = np.array(samples.shape[0] * samples.shape[1])
    stats["rows_events"] = np.array(events["t"].size)
    n, S = samples.shape[:2]
    traj = pd.DataFrame({"point": np.full(n * S, unit.point, np.int64),
                         "trajectory": np.repeat(index, S), "t": np.tile(setup.t_grid, n)})
    for k, name in enumerate(OBSERVABLES):
        column = samples[:, :, k].ravel()
        traj[name] = column.astype(np.int64) if name == "N" else column
    codes = events["channel"]
    ev = pd.DataFrame({
        "point": np.full(codes.size, unit.point, np.int64),
        "trajectory": index[events["row"]].astype(np.int64),
        "t": events["t"],
        "kind": np.where(codes >= LOSS_CODE, "loss", "jump").astype(object),
        "channel": np.asarray(CHANNELS, dtype=object)[codes],
        "N": events["N"].astype(np.int64),
        "j": events["two_j"] / 2.0,
    })
    return UnitResult(stats, {"trajectories": traj, "events": ev})


def merge_stats(parts: list[dict]) -> tuple[int, np.ndarray, np.ndarray]:
    """Combine (n, mean, M2) partials in the given order (Chan, Golub & LeVeque)."""
    n, mean, M2 = 0, None, None
    for part in parts:
        nb, mb, Mb = int(part["n"]), part["mean"], part["M2"]
        if mean is None:
            n, mean, M2 = nb, mb.copy(), Mb.copy()
            continue
        delta = mb - mean
        total = n + nb
        mean = mean + delta * (nb / total)
        M2 = M2 + Mb + delta**2 * (n * nb / total)
        n = total
    return n, mean, M2


def summary_frame(point_index: int, t_grid: np.ndarray, parts: list[dict]) -> pd.DataFrame:
    """Per sample: mean and standard error of every observable, and the ensemble xi^2."""
    n, mean, M2 = merge_stats(parts)
    sem = np.sqrt(M2 / (n - 1) / n) if n > 1 else np.full_like(mean, np.nan)
    df = pd.DataFrame({"point": np.full(t_grid.size, point_index, np.int64), "t": t_grid})
    for k, name in enumerate(OBSERVABLES):
        df[f"{name}_mean"] = mean[:, k]
        df[f"{name}_sem"] = sem[:, k]
    means = {name: mean[:, k] for k, name in enumerate(OBSERVABLES)}
    S, SS = moments_from_columns(means)
    df["xi2"] = wineland_xi2(means["N"], S, SS)
    return df


def points_frame(scenario: Scenario) -> pd.DataFrame:
    df = pd.DataFrame({"point": np.arange(len(scenario.points), dtype=np.int64)})
    for key in scenario.swept:
        section, name = key.split(".")
        df[key] = [point[section][name] for point in scenario.points]
    return df


def local_threads() -> int:
    return len(os.sched_getaffinity(0))


def run(scenario: Scenario, out, resume: bool = False, threads: int | None = None,
        progress: bool | None = None) -> RunDirectory:
    """Run every unfinished work unit of the scenario and write the run directory.

    The same call on every MPI rank under mpirun (one thread per rank); otherwise a thread pool
    over all local cores.  Rank 0 checks the directory, hands out units and merges the results.
    """
    comm = distribute.world()
    rank, ranks = (comm.rank, comm.size) if comm else (0, 1)
    threads = 1 if comm else threads or local_threads()
    directory = RunDirectory(out)
    units = work_units(scenario)
    keep = scenario.resolved["run"]["store"] == "trajectories"
    todo, error, manifest = [], None, {}
    if rank == 0:
        try:
            manifest = _start_manifest(directory, scenario, resume, ranks, threads, units)
            todo = [u for u in units if not directory.unit_finished(u.point, u.unit, keep)]
        except RunDirectoryError as err:
            error = str(err)
    if comm:
        error = comm.bcast(error, root=0)
    if error:
        raise RunDirectoryError(error)

    setups: dict[int, PointSetup] = {}
    lock = threading.Lock()
    seed = scenario.resolved["run"]["seed"]

    def work(unit: WorkUnit) -> WorkUnit:
        with lock:  # one setup (and block table) per point, shared by the threads
            if unit.point not in setups:
                setups[unit.point] = PointSetup.build(scenario.points[unit.point])
        result = run_unit(setups[unit.point], unit, seed, keep)
        directory.write_unit(unit.point, unit.unit, result.stats, result.frames)
        return unit

    started = time.time()
    show = rank == 0 and (progress if progress is not None else os.isatty(2))
    with tqdm(total=sum(u.count for u in todo), unit="traj", disable=not show,
              desc=scenario.name) as bar:
        if comm:
            distribute.run_mpi(comm, todo, work, lambda unit: bar.update(unit.count))
        else:
            distribute.run_local(todo, work, lambda unit: bar.update(unit.count), threads)
    if rank == 0:
        _finish(directory, scenario, manifest, units, len(todo), time.time() - started)
    return directory


def _start_manifest(directory, scenario, resume, ranks, threads, units) -> dict:
    directory.prepare(scenario.hash(), resume)
    manifest = {
        "trajsim_version": __version__, "schema_version": 1, "scenario": scenario.resolved,
        "scenario_hash": scenario.hash(), "seed": scenario.resolved["run"]["seed"],
        "ranks": ranks, "threads_per_rank": threads, "status": "running",
        "points": [{"point": p, "units": sum(u.point == p for u in units), "status": "running"}
                   for p in range(len(scenario.points))],
    }
    directory.write_manifest(manifest)
    return manifest


def _finish(directory, scenario, manifest, units, computed_units, compute_s) -> None:
    """Merge every point's unit statistics in unit order; write summary, points, manifest."""
    started = time.time()
    summaries = []
    for p, point in enumerate(scenario.points):
        parts = [directory.load_unit_stats(u.point, u.unit) for u in units if u.point == p]
        t_grid = np.linspace(0.0, point["time"]["t_end"], point["time"]["n_samples"])
        summaries.append(summary_frame(p, t_grid, parts))
        manifest["points"][p]["status"] = "done"
    directory.write_table("summary", pd.concat(summaries, ignore_index=True))
    directory.write_table("points", points_frame(scenario))
    manifest["status"] = "done"
    manifest["timings"] = {"compute_s": round(compute_s, 3),
                           "merge_s": round(time.time() - started, 3),
                           "units_computed": computed_units, "units_total": len(units)}
    directory.write_manifest(manifest)
