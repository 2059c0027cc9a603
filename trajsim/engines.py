"""The engine seam: how the runner asks a simulation engine for one sweep point's work.

An engine is a module-level object with

    build(point) -> setup            once per point, shared by the threads of a process
    columns(point) -> names          the per-sample columns it produces (OBSERVABLES first)
    tables(point, keep) -> names     the partitioned tables its units write (store.PARTITIONED)
    run_unit(setup, unit, seed, keep) -> UnitResult
                                     trajectories unit.first .. unit.first + unit.count - 1,
                                     each from the random stream (seed, point, trajectory) only

``UnitResult`` holds the unit's ``UnitStats`` and, when ``keep``, its ``trajectories``,
``events`` and (with an S_y instrument) ``measurements`` tables (README, "Output directory").  ``engine_for(point)`` picks the engine of a
point's model; today that is ``DICKE``, the exact jump trajectories of Eq. (2)/(11) in the
Dicke blocks (N, j) of ``trajsim.engine``.  A new engine (say, the hybrid cavity model of Eq. 9)
is a sibling implementation with the same three calls and the same output layout (the
record-level engine and the hybrid engine of Eq. (9) are).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import dicke, exact
from .engine import (
    CHANNELS,
    COPIES,
    LOSS_CODE,
    OBSERVABLES,
    PROJECTIVE,
    WEAK,
    BlockTable,
    Instrument,
    rng_states,
    simulate,
)
from .engine.streams import _gaussian, _uniform
from .scenario import Point, measurement_times
from .stats import UnitStats


@dataclass(frozen=True)
class WorkUnit:
    """Trajectories first .. first + count - 1 of one point: the unit of parallel work,
    checkpointing and merging."""

    point: int
    unit: int
    first: int
    count: int


@dataclass
class UnitResult:
    stats: UnitStats
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)


def initial_ensemble(point: dict) -> tuple[int, np.ndarray, np.ndarray]:
    """(2j, weights, Dicke-basis states) of the initial state: a pure state or an ensemble
    (the Eq. (2) steady state of j = N/2: the dark state, or Eq. (16) as LMG eigenstates)."""
    N, init = point["model"]["N"], point["initial_state"]
    if init["kind"] == "steady":
        weights, states = exact.steady_ensemble(N, N, point["model"]["r"])
        return N, weights, states
    if init["kind"] == "css":
        psi = dicke.coherent_spin_state(N, init["theta"], init["phi"])
        return N, np.ones(1), psi[None, :]
    two_j = N if init["j"] is None else round(2 * init["j"])
    two_m = -two_j if init["m"] is None else round(2 * init["m"])
    return two_j, np.ones(1), dicke.dicke_state(two_j, two_m)[None, :]


@dataclass
class PointSetup:
    """What every engine's set-up holds for its point: the sample times, the loss schedule
    (scripted times, sorted; the Poisson rate per spin) and the S_y instrument."""

    point: Point
    t_grid: np.ndarray
    script_times: np.ndarray
    loss_rate: float
    instrument: Instrument | None

    @staticmethod
    def of(point: Point) -> dict:
        """The fields above for ``point``, to pass on to a subclass's constructor."""
        return {"point": point, "t_grid": point.time_grid(),
                "script_times": np.sort(np.asarray(point["loss"]["times"], float)),
                "loss_rate": float(point["loss"]["rate_per_spin"]),
                "instrument": instrument(point)}


@dataclass
class DickeSetup(PointSetup):
    """Everything the Dicke-block engine needs for one sweep point."""

    table: BlockTable
    two_j: int
    weights: np.ndarray
    states: np.ndarray
    shots: int  # the per-sample Sy2_shots readout (measurement.kind none)


class Engine:
    """What the engines share: their per-unit tables are ``partitioned_tables``."""

    @staticmethod
    def tables(point: dict, keep: bool) -> tuple[str, ...]:
        return partitioned_tables(point, keep)


class DickeEngine(Engine):
    """Exact jump trajectories of Eq. (2)/(11) with spin loss in the Dicke blocks (N, j)."""

    @staticmethod
    def columns(point: dict) -> tuple[str, ...]:
        """The observables, and Sy2_shots with ``measurement.shots`` and no instrument."""
        return OBSERVABLES + (("Sy2_shots",) if readout_shots(point) else ())

    @staticmethod
    def build(point: Point) -> DickeSetup:
        two_j, weights, states = initial_ensemble(point)
        if np.all(states.imag == 0):
            states = np.ascontiguousarray(states.real)
        shots, common = readout_shots(point), PointSetup.of(point)
        table = BlockTable(point.rates(), sy_basis=bool(shots or common["instrument"]))
        return DickeSetup(**common, table=table, two_j=two_j, weights=weights, states=states,
                          shots=shots)

    @staticmethod
    def run_unit(setup: DickeSetup, unit: WorkUnit, seed: int, keep: bool) -> UnitResult:
        index = np.arange(unit.first, unit.first + unit.count)
        samples, events = simulate(setup.table, setup.point["model"]["N"], setup.two_j,
                                   setup.weights, setup.states, setup.t_grid,
                                   setup.script_times, setup.loss_rate,
                                   rng_states(seed, unit.point, index), record_events=keep,
                                   shots=setup.shots,
                                   rng_meas=rng_states(seed, unit.point, index, stream=1)
                                   if setup.shots or setup.instrument else None,
                                   instrument=setup.instrument)
        stats = UnitStats.of(samples, setup.point["model"]["N"])
        if not keep:
            return UnitResult(stats)
        traj = trajectory_frame(unit.point, index, setup.t_grid, samples,
                                DickeEngine.columns(setup.point))
        codes = events["channel"]
        ev = pd.DataFrame({
            "point": np.full(codes.size, unit.point, np.int64),
            "trajectory": index[events["row"]].astype(np.int64),
            "t": events["t"],
            "kind": np.where(codes >= LOSS_CODE, "loss", "jump").astype(object),
            "channel": np.asarray(CHANNELS, dtype=object)[codes],
            "N": events["N"].astype(np.int64),
            "j": events["two_j"] / 2.0,
            "j_before": events["two_j_before"] / 2.0,
        })
        frames = {"trajectories": traj, "events": ev}
        if setup.instrument:
            outcomes = events["outcomes"]
            frames["measurements"] = measurement_frame(
                unit.point, index[outcomes["row"]], outcomes["t"], outcomes["outcome"],
                outcomes["N"])
        return UnitResult(stats, frames)


def trajectory_frame(point: int, index: np.ndarray, t_grid: np.ndarray, samples: np.ndarray,
                     columns) -> pd.DataFrame:
    """The trajectories table of a unit (both engines): samples[trajectory, sample, column]."""
    n, S = samples.shape[:2]
    traj = pd.DataFrame({"point": np.full(n * S, point, np.int64),
                         "trajectory": np.repeat(index, S), "t": np.tile(t_grid, n)})
    for k, name in enumerate(columns):
        column = samples[:, :, k].ravel()
        traj[name] = column.astype(np.int64) if name == "N" else column
    return traj


@dataclass
class Outcomes:
    """A unit's S_y outcomes for engines that keep them per trajectory and scheduled time (the
    record-level and hybrid engines): values[row, time * per_time + shot], N[row, time]."""

    times: np.ndarray
    per_time: int
    values: np.ndarray
    N: np.ndarray

    @classmethod
    def of(cls, instrument: Instrument | None, rows: int) -> Outcomes:
        times = instrument.times if instrument else np.zeros(0)
        per_time = instrument.per_time if instrument else 1
        return cls(times, per_time, np.zeros((rows, times.size * per_time)),
                   np.zeros((rows, times.size), np.int64))

    def frame(self, point: int, index: np.ndarray) -> pd.DataFrame:
        """The measurements table of trajectories ``index`` (the rows)."""
        return measurement_frame(point, np.repeat(index, self.values.shape[1]),
                                 np.tile(np.repeat(self.times, self.per_time), len(index)),
                                 self.values.ravel(),
                                 np.repeat(self.N, self.per_time, axis=1).ravel())


def sy_outcome(probabilities: np.ndarray, my: np.ndarray, instrument: Instrument,
               stream: np.ndarray, out: np.ndarray) -> np.ndarray | None:
    """Draw one S_y measurement from the probabilities of the S_y eigenvalues my (the state's
    weights in the S_y basis, unnormalised) into ``out`` (per_time outcomes), and return the
    amplitudes a[m] of its Kraus operator in the S_y basis: the indicator of the outcome
    (projective), exp(-(y - m_y)^2 / (4 sigma^2)) with y = m_y + sigma z (weak), or None
    (copies: no back-action).  For the engines that keep a state in Python (record, hybrid)."""
    cumulative = np.cumsum(np.maximum(probabilities, 0.0))
    for shot in range(out.size):
        m = min(int(np.searchsorted(cumulative, _uniform(stream) * cumulative[-1])), my.size - 1)
        out[shot] = my[m]
    if instrument.kind == COPIES:
        return None
    if instrument.kind == PROJECTIVE:
        return (np.arange(my.size) == m).astype(float)
    out[0] += instrument.sigma * _gaussian(stream)
    return np.exp(-((out[0] - my) ** 2) / (4.0 * instrument.sigma**2))


def measurement_frame(point: int, trajectory, t, outcome, N) -> pd.DataFrame:
    """The measurements table of a unit (both engines), one row per outcome."""
    return pd.DataFrame({"point": np.full(len(t), point, np.int64),
                         "trajectory": np.asarray(trajectory, np.int64), "t": t,
                         "outcome": outcome, "N": np.asarray(N, np.int64)})


def next_poisson_loss(t: float, rate_per_spin: float, N: int, stream: np.ndarray) -> float:
    """The next Poisson loss after t (rate gamma_loss N; memoryless, so redrawn after a loss)."""
    rate = rate_per_spin * N
    return t - np.log(_uniform(stream)) / rate if rate > 0 else np.inf


def partitioned_tables(point: dict, keep: bool) -> tuple[str, ...]:
    """The per-unit tables of a point (both engines): trajectories and events when ``keep``,
    measurements too with an S_y instrument."""
    if not keep:
        return ()
    return ("trajectories", "events") + (("measurements",) if instrument(point) else ())


def readout_shots(point: dict) -> int:
    """Shots of the per-sample Sy2_shots readout (kept from before instruments existed)."""
    meas = point["measurement"]
    return meas["shots"] if meas["kind"] == "none" else 0


def instrument(point: dict) -> Instrument | None:
    """The point's S_y instrument and its schedule (scenario key ``measurement``), or None."""
    meas = point["measurement"]
    kind = {"projective": PROJECTIVE, "weak": WEAK, "copies": COPIES}.get(meas["kind"])
    if kind is None:
        return None
    return Instrument(kind, measurement_times(point), float(meas["sigma"] or 0.0),
                      meas["shots"] if kind == COPIES else 1)


DICKE = DickeEngine()


def engine_for(point: dict):
    """The engine of a point: the hybrid engine for ``model.kind: hybrid``, else ``run.engine``
    as resolved by the scenario (jumps or record)."""
    if point["model"].get("kind") == "hybrid":
        from .hybrid_engine import HYBRID  # imports this module

        return HYBRID
    if point["run"].get("engine") == "record":
        from .record_engine import RECORD  # imports this module

        return RECORD
    return DICKE
