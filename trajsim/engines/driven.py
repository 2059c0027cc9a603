"""What the engines that keep a state vector share (the hybrid engine, the grouped engine):
their blocks, whether a state keeps to one parity sector (``one_sector``, for their cost
models) and the unit around their trajectories; and, for an engine that keeps its state in
Python between compiled no-jump stretches (the grouped engine; the hybrid engine's whole
event loop is compiled, ``compiled.hybrid_loop``), the loss schedule and the event loop of a
trajectory (``drive``).

A trajectory object (``Trajectory``'s subclasses) knows its physics:

    N, j, key                     spins, the j column, the block its samples' observables need
    t                             the current time
    advance_through(times, first, last, meter) -> (k, jumped, states)
                                  no-jump evolution through the stops, making the S_y
                                  measurements among them (``Meter``), stopping at
                                  a jump (one that makes its jumps itself records them in
                                  events); the states at times[first:k], at a measurement
                                  the state after it
    event(t, loss, scripted)                    a jump or a loss at t, appended to events
    observables(key, states) -> values          the columns after N and j

and ``drive`` runs it through the sample and measurement times, recording its events (row,
t, kind, channel, N, 2j after, 2j before) in ``events``: the stops up to the next loss go
through one call; at equal times a loss comes first, then a measurement, then a sample.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..compiled import NO_INSTRUMENT, Instrument, rng_states
from ..memory import memory_budget
from ..point import measurement_times
from ..stats import UnitStats
from . import Outcomes, PointSetup, UnitResult, WorkUnit, trajectory_frame


@dataclass
class Blocks:
    """Blocks by key, built on first use (``build(key)``) and shared by threads.  Past
    ``budget`` bytes (a block's ``nbytes``) the least recently used are dropped (a trajectory
    holding one keeps it alive) and rebuilt when needed: the same bits, as building is
    deterministic."""

    build: Callable
    budget: float = field(default_factory=memory_budget)
    blocks: OrderedDict = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, key):
        with self.lock:
            if key not in self.blocks:
                self.blocks[key] = self.build(key)
                while len(self.blocks) > 1 and sum(b.nbytes for b in self.blocks.values()) \
                        > self.budget:
                    self.blocks.popitem(last=False)
            self.blocks.move_to_end(key)
            return self.blocks[key]

    def __len__(self) -> int:
        return len(self.blocks)


class Trajectory:
    """The loss schedule every driven trajectory shares: ``setup`` (a PointSetup), ``scripted``
    (scripted losses done), ``poisson`` (the next Poisson loss) and N (spins now); and where
    its events go (set by ``drive``): its ``row`` in the unit and the unit's ``events``."""

    setup: PointSetup
    scripted: int
    poisson: float
    N: int
    row: int
    events: list

    def next_loss(self) -> tuple[float, bool]:
        """(time, scripted?) of the next loss: the Poisson one or the next scripted one."""
        times = self.setup.script_times
        if self.N == 0:  # an empty ensemble: later scripted losses are no-ops
            return np.inf, False
        if self.scripted < times.size and times[self.scripted] <= self.poisson:
            return times[self.scripted], True
        return self.poisson, False


def one_sector(point: dict) -> bool:
    """Whether a trajectory's state keeps to one parity sector between jumps (``krylov.Generator``
    then works on half the block): not from a coherent spin state, nor after an S_y
    measurement, which mix the parities of k."""
    return measurement_times(point).size == 0 and point["initial_state"]["kind"] != "css"


@dataclass
class Meter:
    """One trajectory's S_y instrument (``setup.instrument``): which stops are measurements,
    the outcome stream, where the outcomes of measurement q go (outcomes[q per_time:(q + 1)
    per_time], the spins then in outcome_N[q]) and how many were made; ``idle`` measures at
    none of its stops."""

    measured: np.ndarray
    instrument: Instrument
    stream: np.ndarray
    outcomes: np.ndarray
    outcome_N: np.ndarray
    made: int = 0

    @classmethod
    def idle(cls, stops: int) -> Meter:
        """A meter that measures at none of ``stops`` stops."""
        return cls(np.zeros(stops, np.bool_), Instrument(NO_INSTRUMENT, np.zeros(0)),
                   np.zeros(4, np.uint64), np.zeros(0), np.zeros(0, np.int64))

    def stretch_end(self, k: int, last: int) -> int:
        """One past the next measurement at or after stop k, at most last."""
        following = np.flatnonzero(self.measured[k:last])
        return k + int(following[0]) + 1 if following.size else last

    def slot(self) -> np.ndarray:
        """Where the next measurement's outcomes go."""
        per_time = self.instrument.per_time
        return self.outcomes[self.made * per_time:(self.made + 1) * per_time]

    def made_with(self, count: int, N: int) -> None:
        """count more measurements made, with N spins."""
        self.outcome_N[self.made:self.made + count] = N
        self.made += count


def drive(tr, setup: PointSetup, row: int, rng_meas: np.ndarray, samples: np.ndarray,
          outcomes: np.ndarray, outcome_N: np.ndarray, events: list) -> None:
    """Run trajectory ``tr`` (module docstring): samples[sample, column], its outcomes and
    events (appended)."""
    stops, _, sample_of, is_sample = setup.schedule
    meter = Meter(setup.is_measured, setup.instrument, rng_meas, outcomes,
                  outcome_N) if setup.instrument else Meter.idle(stops.size)
    tr.row, tr.events = row, events
    k, states = 0, {}  # states: key -> [(samples, states)]
    while k < stops.size:
        t_loss, is_scripted = tr.next_loss()
        cut = int(np.searchsorted(stops, t_loss, "left"))
        if cut > k:  # the stops before the next loss
            k_new, jumped, psis = tr.advance_through(stops, k, cut, meter)
            taken = np.arange(k, k_new)[is_sample[k:k_new]]
            if taken.size:
                samples[sample_of[taken], 0], samples[sample_of[taken], 1] = tr.N, tr.j
                states.setdefault(tr.key, []).append(
                    (sample_of[taken], psis[is_sample[k:k_new]]))
            k = k_new
            if jumped:
                tr.event(tr.t, False, False)
            continue
        _, jumped, _ = tr.advance_through(np.array([t_loss]), 0, 1, Meter.idle(1))  # loss
        tr.event(tr.t if jumped else t_loss, not jumped, is_scripted)
    for key, taken in states.items():  # the observables, one pass per block
        rows = np.concatenate([r for r, _ in taken])
        psis = taken[0][1] if len(taken) == 1 else np.concatenate([p for _, p in taken])
        samples[rows, 2:] = tr.observables(key, psis)


def run_unit(setup: PointSetup, unit: WorkUnit, seed: int, keep: bool, columns,
             start: Callable, drive: Callable = drive) -> UnitResult:
    """Trajectories unit.first .. of a driven engine: ``start(setup, rng)`` makes each one's
    trajectory object from its random stream (stream 1 feeds its S_y outcomes), which
    ``drive`` (this module's, or an engine's own with its signature) runs."""
    index = np.arange(unit.first, unit.first + unit.count)
    rng = rng_states(seed, unit.point, index)
    rng_meas = rng_states(seed, unit.point, index, stream=1)
    samples = np.zeros((unit.count, setup.t_grid.size, len(columns)))
    record, events = Outcomes.of(setup.instrument, unit.count), []
    for row in range(unit.count):
        drive(start(setup, rng[row]), setup, row, rng_meas[row], samples[row],
              record.values[row], record.N[row], events)
    stats = UnitStats.of(samples, setup.point["model"]["N"])
    if not keep:
        return UnitResult(stats)
    frames = {"trajectories": trajectory_frame(unit.point, index, setup.t_grid, samples,
                                               columns),
              "events": events_frame(unit.point, index, events)}
    if setup.instrument:
        frames["measurements"] = record.frame(unit.point, index)
    return UnitResult(stats, frames)


def events_frame(point: int, index: np.ndarray, events: list) -> pd.DataFrame:
    """The unit's events table (README, "Output directory"), one row per jump or loss, in
    trajectory and time order (as appended): events are (row, t, kind, channel, N, 2j after,
    2j before)."""
    column = list(zip(*events)) if events else [()] * 7
    return pd.DataFrame({
        "point": np.full(len(events), point, np.int64),
        "trajectory": index[np.asarray(column[0], np.int64)].astype(np.int64),
        "t": np.asarray(column[1], float),
        "kind": np.asarray(column[2], object),
        "channel": np.asarray(column[3], object),
        "N": np.asarray(column[4], np.int64),
        "j": np.asarray(column[5], float) / 2.0,
        "j_before": np.asarray(column[6], float) / 2.0,
    })
