"""The Python driver: ``simulate`` runs trajectories with the compiled loop, building blocks
and draining event buffers between its calls."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dicke import OBSERVABLES
from .blocks import BlockTable
from .layout import (
    DONE,
    I_BLOCK,
    I_MEAS,
    I_NEV,
    I_STATUS,
    NEED_BLOCK,
    NO_INSTRUMENT,
)
from .trajectories import advance, start_trajectories


@dataclass(frozen=True)
class Instrument:
    """A schedule of S_y measurements: kind (PROJECTIVE, WEAK or COPIES), sorted times, the
    resolution sigma (WEAK) and the outcomes per time (COPIES: the number of copies)."""

    kind: int
    times: np.ndarray
    sigma: float = 0.0
    per_time: int = 1


def simulate(table: BlockTable, N0: int, two_j0: int, init_weights: np.ndarray,
             init_states: np.ndarray, t_grid: np.ndarray, script_times: np.ndarray,
             loss_rate: float, rng: np.ndarray, event_capacity: int | None = None,
             record_events: bool = True, shots: int = 0, rng_meas: np.ndarray | None = None,
             instrument: Instrument | None = None):
    """Run len(rng) trajectories from block (N0, j0).

    Events are buffered per trajectory (``event_capacity`` each, default: 2^21 in all) and
    drained whenever a buffer fills; with ``record_events=False`` none are kept (long runs in
    the sensing regime make tens of millions of jumps per trajectory).  With ``shots > 0`` the
    samples get one more column, Sy2_shots, drawn from the separate streams ``rng_meas`` (the
    readout does not disturb the trajectory, and the trajectory does not depend on the shots);
    the table must keep the S_y eigenbasis (``BlockTable(..., sy_basis=True)``).
    An ``instrument`` measures S_y at its times with back-action (``_measure_sy``), drawing from
    ``rng_meas``; it needs the S_y eigenbasis too.

    Returns (samples[trajectory, sample, observable], events) where events is a dict of arrays
    (trajectory row, t, channel code, N and 2j after the event, 2j before it), ordered by
    trajectory then time; with an instrument, events["outcomes"] is a dict of arrays (row, t,
    outcome, N at that time), ordered by trajectory, time and copy.
    """
    n = len(rng)
    rng = rng.copy()
    event_capacity = event_capacity or int(np.clip(2**21 // n, 64, 4096))
    if not record_events:
        event_capacity = 0
    b0 = table.ensure(N0, two_j0)
    if instrument is None:
        instrument = Instrument(NO_INSTRUMENT, np.zeros(0))
    measured = instrument.kind != NO_INSTRUMENT  # see _measure_overload
    dtype = complex if table.rates.chi != 0 or measured else init_states.dtype
    c = np.zeros((n, N0 + 1), dtype=dtype)
    st_f = np.zeros((n, 3))
    st_i = np.zeros((n, I_MEAS + 1), np.int64)
    n_meas = instrument.times.size
    outcomes = np.zeros((n, n_meas * instrument.per_time))
    outcome_N = np.zeros((n, n_meas), np.int64)
    samples = np.zeros((n, len(t_grid), len(OBSERVABLES) + (shots > 0)))
    rng_meas = np.zeros((n, 4), np.uint64) if rng_meas is None else rng_meas.copy()
    ev_t = np.zeros((n, event_capacity))
    ev_i = np.zeros((n, event_capacity, 4), np.int64)
    packed = table.snapshot([(N0, two_j0)])
    start_trajectories(packed[0], packed[4], b0, init_weights, init_states, loss_rate, st_f, st_i,
                       rng, c)
    chunks = []
    while True:
        advance(packed, t_grid, script_times, loss_rate, st_f, st_i, rng, c, samples, ev_t, ev_i,
                shots, rng_meas, instrument.times, instrument.kind, instrument.sigma, outcomes,
                outcome_N)
        for i in np.flatnonzero(st_i[:, I_NEV]):
            k = st_i[i, I_NEV]
            chunks.append((np.full(k, i), ev_t[i, :k].copy(), ev_i[i, :k].copy()))
            st_i[i, I_NEV] = 0
        running = st_i[:, I_STATUS] != DONE
        if not running.any():
            break
        waiting = st_i[:, I_STATUS] == NEED_BLOCK
        required = set()
        for b in np.unique(st_i[running, I_BLOCK]):
            required |= table.neighbourhood(*table.keys[b], losses=False)
        for b in np.unique(st_i[waiting, I_BLOCK]):
            required |= table.neighbourhood(*table.keys[b], losses=True)
        packed = table.snapshot(sorted(required))
    if chunks:
        rows = np.concatenate([ch[0] for ch in chunks])
        order = np.argsort(rows, kind="stable")
        ints = np.concatenate([ch[2] for ch in chunks])[order]
        events = {"row": rows[order], "t": np.concatenate([ch[1] for ch in chunks])[order],
                  "channel": ints[:, 0], "N": ints[:, 1], "two_j": ints[:, 2],
                  "two_j_before": ints[:, 3]}
    else:
        events = {"row": np.zeros(0, np.int64), "t": np.zeros(0), "channel": np.zeros(0, np.int64),
                  "N": np.zeros(0, np.int64), "two_j": np.zeros(0, np.int64),
                  "two_j_before": np.zeros(0, np.int64)}
    if n_meas:
        k = instrument.per_time
        events["outcomes"] = {"row": np.repeat(np.arange(n), n_meas * k),
                              "t": np.tile(np.repeat(instrument.times, k), n),
                              "outcome": outcomes.ravel(),
                              "N": np.repeat(outcome_N, k, axis=1).ravel()}
    return samples, events
