"""The engine seam: how the runner and the scenario ask a simulation engine for one sweep
point's work and its price.

An engine is a module-level object (``DICKE`` in ``jumps``, ``RECORD`` in ``record``,
``HYBRID`` in ``hybrid``, ``GROUPED`` in ``grouped``) with

    build(point) -> setup            once per point, shared by the threads of a process
    columns(point) -> names          the per-sample columns it produces (OBSERVABLES first)
    tables(point, keep) -> names     the partitioned tables its units write (store.PARTITIONED)
    run_unit(setup, unit, seed, keep) -> UnitResult
                                     trajectories unit.first .. unit.first + unit.count - 1,
                                     each from the random stream (seed, point, trajectory) only
    why_not(point) -> reason | None  whether it can run the point (the record engine may not)
    seconds(point) -> (per trajectory, set-up)   its CPU cost model
    events(point) -> jumps           expected jumps (events) per trajectory
    check(point, label, unit_size)   its memory and time limits: one ScenarioError line

``UnitResult`` holds the unit's ``UnitStats`` and, when ``keep``, its ``trajectories``,
``events`` and (with an S_y instrument) ``measurements`` tables (README, "Output directory").
``engine_for(point)`` picks a point's engine; ``resolve_engine``, ``cost_estimate``,
``auto_unit_size`` and ``check_point`` are what ``scenario`` and ``trajsim validate`` ask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from .. import dicke, exact
from ..compiled import COPIES, OBSERVABLES, PROJECTIVE, WEAK, Instrument
from ..compiled import readout, streams
from ..compiled.streams import _uniform
from ..errors import ScenarioError
from ..memory import memory_budget
from ..point import UNIT_SIZE_DEFAULT, Point, measurement_times
from ..stats import UnitStats


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

    @cached_property
    def schedule(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(stops, measured, sample_of, is_sample), the same for every trajectory: the union of
        the sample and measurement times, the indices of the stops that are measurements, the
        sample index of each stop (where it is one) and which stops are samples."""
        meas_times = self.instrument.times if self.instrument else np.zeros(0)
        stops = np.union1d(self.t_grid, meas_times)
        return (stops, np.flatnonzero(np.isin(stops, meas_times)),
                np.searchsorted(self.t_grid, stops), np.isin(stops, self.t_grid))

    @cached_property
    def is_measured(self) -> np.ndarray:
        """Per stop of ``schedule``: whether it is a measurement."""
        stops, measured = self.schedule[:2]
        return np.isin(np.arange(stops.size), measured)

    def stretch_end(self, k: int) -> int:
        """The end of the stretch of stops from stop k: one past the next measurement at or
        after it, or all the stops."""
        stops, measured = self.schedule[:2]
        following = np.searchsorted(measured, k)
        return int(measured[following]) + 1 if following < measured.size else stops.size


class Engine:
    """What the engines share: their per-unit tables are ``partitioned_tables``; every engine
    can run every point of its model unless its ``why_not`` says why."""

    @staticmethod
    def why_not(point: dict) -> str | None:
        return None

    @staticmethod
    def tables(point: dict, keep: bool) -> tuple[str, ...]:
        return partitioned_tables(point, keep)


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
    amplitudes a[m] of its Kraus operator in the S_y basis, or None (copies: no back-action):
    ``readout.sy_kraus``."""
    a = readout.sy_kraus(np.asarray(probabilities, float), np.asarray(my, float),
                         instrument.kind, instrument.sigma, stream, out)
    return None if instrument.kind == COPIES else a


def measurement_frame(point: int, trajectory, t, outcome, N) -> pd.DataFrame:
    """The measurements table of a unit (both engines), one row per outcome."""
    return pd.DataFrame({"point": np.full(len(t), point, np.int64),
                         "trajectory": np.asarray(trajectory, np.int64), "t": t,
                         "outcome": outcome, "N": np.asarray(N, np.int64)})


def pick(weights, stream: np.ndarray) -> int:
    """Index drawn with probability proportional to weights (a jump channel, a Kraus operator,
    an ensemble member): ``streams.pick``."""
    return int(streams.pick(np.asarray(weights, float), stream))


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


def engine_for(point: dict):
    """The engine of a point: the hybrid engine for ``model.kind: hybrid``, the grouped one for
    ``model.groups``, else ``run.engine`` as resolved (jumps or record)."""
    if point["model"].get("kind") == "hybrid":
        return HYBRID
    if point["model"].get("groups"):
        return GROUPED
    return RECORD if point["run"].get("engine") == "record" else DICKE


#: CPU seconds a work unit costs besides its trajectories (tables, Parquet, checksums): the quick
#: start's 13 units take 1.3 CPU s for 200 trajectories of ~110 jumps (2026-11-25); with
#: COMPLEX_FACTOR within 30 % of one-thread runs of most shipped scenarios (2026-12-04,
#: docs/benchmarks.md).
UNIT_OVERHEAD_S = 0.05


def cost_estimate(point: dict) -> dict:
    """Expected jumps (events) and CPU seconds of one trajectory and of the point with its
    engine (``run.engine`` as resolved; each engine's ``seconds`` and ``events``), and every work
    unit UNIT_OVERHEAD_S.  Within ~30 % on most shipped scenarios (docs/benchmarks.md)."""
    engine = engine_for(point)
    per_trajectory, setup = engine.seconds(point)
    n, size = point["run"]["trajectories"], point["run"]["unit_size"]
    return {"engine": point["run"]["engine"], "jumps_per_trajectory": engine.events(point),
            "cpu_s_per_trajectory": per_trajectory,
            "cpu_s": setup + per_trajectory * n + -(-n // size) * UNIT_OVERHEAD_S}


#: run.unit_size: auto aims at units of this many CPU seconds, and at least AUTO_MIN_UNITS units
#: per point (docs/benchmarks.md, "MPI scaling").
AUTO_UNIT_S = 10.0
AUTO_MIN_UNITS = 40


def auto_unit_size(point: dict) -> int:
    """``run.unit_size: auto``: trajectories per unit for units of ~AUTO_UNIT_S CPU seconds
    (``cost_estimate``; a unit's fixed cost is ~UNIT_OVERHEAD_S), but at least AUTO_MIN_UNITS
    units per point, so that ranks and threads share the work.  It depends on the scenario only,
    never on the rank count, so outputs stay the same for any number of ranks."""
    per_trajectory = engine_for(point).seconds(point)[0]
    by_cost = max(1, int(AUTO_UNIT_S / max(per_trajectory, 1e-9)))
    by_count = max(1, point["run"]["trajectories"] // AUTO_MIN_UNITS)
    return min(by_cost, by_count)


def resolve_engine(point: dict, label: str) -> str:
    """``run.engine`` resolved: auto takes the record-level engine for a point with an S_y
    instrument that it can run (``RECORD.why_not``) and that it runs cheaper
    (``cost_estimate``)."""
    asked = point["run"]["engine"]
    special = "model.kind: hybrid" if point["model"]["kind"] == "hybrid" else \
        "model.groups" if point["model"].get("groups") else None
    if special:
        if asked == "record":
            raise ScenarioError(f"{label}run.engine: the record-level engine runs the symmetric "
                                f"spin model only; use run.engine: jumps for {special}")
        return "jumps"
    why_not = RECORD.why_not(point)
    if asked == "record" and why_not:
        raise ScenarioError(f"{label}run.engine: the record-level engine cannot run this point: "
                            f"{why_not}; use run.engine: jumps")
    if asked != "auto":
        return asked
    if why_not or point["measurement"]["kind"] == "none":
        return "jumps"
    size = point["run"]["unit_size"]
    run = {**point["run"], "unit_size": UNIT_SIZE_DEFAULT if size == "auto" else size}
    costs = {engine: cost_estimate({**point, "run": {**run, "engine": engine}})["cpu_s"]
             for engine in ("jumps", "record")}
    return "record" if costs["record"] < costs["jumps"] else "jumps"


def check_point(point: dict, label: str) -> None:
    """Refuse a point that cannot fit: its engine's limits (``check``: blocks beyond the memory
    budget, too many jumps, a trajectory beyond a day) and a work unit beyond memory."""
    unit_size = min(point["run"]["unit_size"], point["run"]["trajectories"])
    engine_for(point).check(point, label, unit_size)
    needed, budget = _unit_bytes(point, unit_size), memory_budget()
    if needed > budget:
        raise ScenarioError(f"{label}time.n_samples: {point['time']['n_samples']} samples and "
                            f"{measurement_times(point).size} measurement times need about "
                            f"{needed / 2**30:.3g} GiB per work unit of {unit_size} "
                            f"trajectories; at most {budget / 2**30:.0f} GiB is available "
                            "(fewer samples or measurements, or a smaller run.unit_size)")


def _unit_bytes(point: dict, unit_size: int) -> float:
    """Memory of one work unit's per-sample arrays (observables, their table copies, the j
    histogram) and of its measurement outcomes (with their table: ~6 numbers each)."""
    columns = len(OBSERVABLES) + 1
    samples = point["time"]["n_samples"] * (4 * columns + point["model"]["N"] + 1)
    meas = point["measurement"]
    outcomes = measurement_times(point).size * (meas["shots"] if meas["kind"] == "copies" else 1)
    return 8.0 * unit_size * (samples + 6 * outcomes)


from .grouped import GROUPED  # noqa: E402  (the engines import the seam above)
from .hybrid import HYBRID  # noqa: E402
from .jumps import DICKE  # noqa: E402
from .record import RECORD  # noqa: E402
