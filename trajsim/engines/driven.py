"""What the engines that keep a state vector share (the hybrid engine, the grouped engine):
their blocks, whether a state keeps to one parity sector (``one_sector``, for their cost
models) and the unit around their trajectories; and, for an engine that keeps its state in
Python between compiled no-jump stretches (the grouped engine; the hybrid engine's whole
event loop is compiled, ``compiled.hybrid_loop``), the loss schedule and the event loop of a
trajectory (``drive``).

A trajectory object (``Trajectory``'s subclasses) knows its physics:

    N, j, key                     spins, the j column, the block its samples' observables need
    t                             the current time
    advance_through(times, first, last) -> (k, jumped, states, values)
                                  no-jump evolution, stopping at a jump (compiled); one
                                  that makes its jumps itself records them in events;
                                  the states at times[first:k] (None if their values are
                                  known) or their observables (values, else None)
    measure(instrument, stream, out) -> state   one S_y measurement now
    event(t, loss, scripted)                    a jump or a loss at t, appended to events
    observables(key, states) -> values          the columns after N and j

and ``drive`` runs it through the sample and measurement times, recording its events (row,
t, kind, channel, N, 2j after, 2j before) in ``events``: the stops up to the next
measurement or loss go through one compiled call; at equal times a loss comes first, then a
measurement, then a sample.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..compiled import rng_states
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


def drive(tr, setup: PointSetup, row: int, rng_meas: np.ndarray, samples: np.ndarray,
          outcomes: np.ndarray, outcome_N: np.ndarray, events: list) -> None:
    """Run trajectory ``tr`` (module docstring): samples[sample, column], its outcomes and
    events (appended)."""
    meas_times = setup.instrument.times if setup.instrument else np.zeros(0)
    per_time = setup.instrument.per_time if setup.instrument else 1
    stops, _, sample_of, is_sample = setup.schedule
    tr.row, tr.events = row, events
    k, q, states = 0, 0, {}  # states: key -> [(samples, states)]

    def keep(first: int, count: int, psis: np.ndarray | None,
             values: np.ndarray | None = None) -> None:
        chosen = is_sample[first:first + count]
        taken = np.arange(first, first + count)[chosen]
        if taken.size:
            samples[sample_of[taken], 0], samples[sample_of[taken], 1] = tr.N, tr.j
            if values is not None:  # observables known already
                samples[sample_of[taken], 2:] = values[:count][chosen]
            else:
                states.setdefault(tr.key, []).append(
                    (sample_of[taken], psis[:count][chosen]))  # a copy: psis may be live

    while k < stops.size:
        t_loss, is_scripted = tr.next_loss()
        last = setup.stretch_end(k)
        cut = min(last, int(np.searchsorted(stops, t_loss, "left")))
        if cut > k:  # the stops before the next measurement (inclusive) or loss
            k_new, jumped, psis, values = tr.advance_through(stops, k, cut)
            at_measurement = k_new == last and q < meas_times.size and stops[last - 1] == \
                meas_times[q]
            keep(k, k_new - k - at_measurement, psis, values)
            if at_measurement:
                after = tr.measure(setup.instrument, rng_meas,
                                   outcomes[q * per_time:(q + 1) * per_time])
                outcome_N[q], q = tr.N, q + 1
                keep(last - 1, 1, after[None])
            k = k_new
            if jumped:
                tr.event(tr.t, False, False)
            continue
        _, jumped, *_ = tr.advance_through(np.array([t_loss]), 0, 1)  # the loss is due first
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
