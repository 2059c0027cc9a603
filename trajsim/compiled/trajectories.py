"""The compiled trajectory loop: start trajectories, then run each from event to event (jump,
loss, measurement, sample) until it is done, needs a block, or fills its event buffer."""

from __future__ import annotations

import numba as nb
import numpy as np

from .fpenv import flush_subnormals, restore_fp_state
from .kernels import _decay, _from_dicke, _jump, _lose_spin, _measure, _record, waiting_time
from .layout import (
    B_LOC,
    B_LOSS_MINUS,
    B_N,
    B_NLOC,
    B_TWO_J,
    BUFFER_FULL,
    DONE,
    FRESH,
    I_BLOCK,
    I_MASK,
    I_MEAS,
    I_NEED_N,
    I_NEED_TWO_J,
    I_NEV,
    I_SAMPLE,
    I_SCRIPT,
    I_STATUS,
    L_TARGET,
    L_TWO_JP,
    NEED_BLOCK,
    NO_BLOCK,
    T_NEXT_POISSON,
    T_TIME,
    T_U,
)
from .streams import _uniform


@nb.njit(cache=True, nogil=True)
def start_trajectories(blk_int, V, b0, init_weights, init_states, loss_rate, st_f, st_i, rng, c):
    """Draw each trajectory's initial pure state from the initial ensemble (Dicke-basis rows of
    init_states with probabilities init_weights) and its first Poisson loss time."""
    D = blk_int[b0, B_TWO_J] + 1
    cumulative = np.cumsum(init_weights)
    for i in range(st_f.shape[0]):
        x = _uniform(rng[i]) * cumulative[-1]
        a = min(np.searchsorted(cumulative, x), len(init_weights) - 1)
        psi = init_states[a, :D].copy()
        st_i[i, I_BLOCK] = b0
        st_i[i, I_MASK] = _from_dicke(blk_int, V, b0, psi, c[i])
        st_f[i, T_TIME] = 0.0
        st_f[i, T_U] = _uniform(rng[i])
        rate = loss_rate * blk_int[b0, B_N]
        st_f[i, T_NEXT_POISSON] = -np.log(_uniform(rng[i])) / rate if rate > 0 else np.inf
        st_i[i, I_STATUS] = FRESH


@nb.njit(cache=True, nogil=True)
def advance(packed, t_grid, script_times, loss_rate, st_f, st_i, rng, c, samples, ev_t, ev_i,
            shots, rng_meas, meas_times, instrument, sigma, outcomes, outcome_N):
    """Run every unfinished trajectory until it is done, needs a block, or fills its event buffer
    (subnormal numbers flushed to zero meanwhile, see fpenv.py)."""
    fp_state = flush_subnormals()
    blk_int, blk_f, ch_int, lam, V, A, loc_int, loc_f, my, Ry, E = packed
    work = np.zeros_like(c[0])
    w = np.zeros(c.shape[1])  # real scratch: no-jump weights
    psi = np.zeros_like(c[0])
    psi1 = np.zeros_like(c[0])
    for i in range(st_f.shape[0]):
        if st_i[i, I_STATUS] != DONE:
            st_i[i, I_STATUS] = _run(
                blk_int, blk_f, ch_int, lam, E, V, A, loc_int, loc_f, my, Ry, t_grid, script_times,
                loss_rate, st_f[i], st_i[i], rng[i], c[i], samples[i], ev_t[i], ev_i[i],
                work, w, psi, psi1, shots, rng_meas[i], meas_times, instrument, sigma, outcomes[i],
                outcome_N[i],
            )
    restore_fp_state(fp_state)


@nb.njit(cache=True)
def _run(blk_int, blk_f, ch_int, lam, E, V, A, loc_int, loc_f, my, Ry, t_grid, script_times,
         loss_rate, sf, si, s, c, samples, ev_t, ev_i, work, w, psi, psi1, shots, s_meas,
         meas_times, instrument, sigma, outcomes, outcome_N):
    n_samples = t_grid.shape[0]
    cap = ev_t.shape[0]
    per_time = outcomes.shape[0] // max(meas_times.shape[0], 1)  # outcomes per measurement
    while True:
        b, mask = si[I_BLOCK], si[I_MASK]
        if blk_int[b, B_N] == 0:  # the ensemble is empty: later scripted losses are no-ops
            si[I_SCRIPT] = script_times.shape[0]
        t = sf[T_TIME]
        tau = waiting_time(blk_int, lam, b, c, mask, sf[T_U], w)
        t_loss = sf[T_NEXT_POISSON]
        scripted = si[I_SCRIPT] < script_times.shape[0] and script_times[si[I_SCRIPT]] <= t_loss
        if scripted:
            t_loss = script_times[si[I_SCRIPT]]
        is_loss = t_loss <= t + tau
        t_event = t_loss if is_loss else t + tau
        q = si[I_MEAS]
        is_meas = q < meas_times.shape[0] and meas_times[q] < t_event
        if is_meas:
            t_event = meas_times[q]
        while si[I_SAMPLE] < n_samples and t_grid[si[I_SAMPLE]] < t_event:
            _record(blk_int, lam, E, V, my, Ry, b, c, mask, t_grid[si[I_SAMPLE]] - t, work, w,
                    psi, samples[si[I_SAMPLE]], shots, s_meas)
            si[I_SAMPLE] += 1
        if si[I_SAMPLE] == n_samples:
            return DONE
        if is_meas:  # S_y instrument with its back-action; the jump clock runs on (u rescaled)
            sf[T_U] = min(sf[T_U] / _decay(blk_int, lam, E, b, c, mask, t_event - t, w), 1.0)
            si[I_MASK] = _measure(blk_int, V, Ry, b, c, mask, psi, psi1, instrument, sigma, s_meas,
                                  outcomes[q * per_time:(q + 1) * per_time])
            outcome_N[q] = blk_int[b, B_N]
            si[I_MEAS] = q + 1
            sf[T_TIME] = t_event
            continue
        if cap > 0 and si[I_NEV] == cap:
            return BUFFER_FULL
        if is_loss:
            for side in range(2):
                tb = blk_int[b, B_LOSS_MINUS + side]
                if tb == NO_BLOCK:
                    si[I_NEED_N] = blk_int[b, B_N] - 1
                    si[I_NEED_TWO_J] = blk_int[b, B_TWO_J] - 1 + 2 * side
                    return NEED_BLOCK
            n_dt = _decay(blk_int, lam, E, b, c, mask, t_event - t, w)
            sf[T_U] = min(sf[T_U] / n_dt, 1.0)
            tb, code = _lose_spin(blk_int, blk_f, V, b, c, mask, _uniform(s), psi, psi1)
            si[I_MASK] = _from_dicke(blk_int, V, tb, psi1, c)
            si[I_BLOCK] = tb
            if scripted:
                si[I_SCRIPT] += 1
            rate = loss_rate * blk_int[tb, B_N]  # N changed: restart the memoryless clock
            sf[T_NEXT_POISSON] = t_event - np.log(_uniform(s)) / rate if rate > 0 else np.inf
        else:
            for row in range(blk_int[b, B_LOC], blk_int[b, B_LOC] + blk_int[b, B_NLOC]):
                if loc_int[row, L_TARGET] == NO_BLOCK:
                    si[I_NEED_N] = blk_int[b, B_N]
                    si[I_NEED_TWO_J] = loc_int[row, L_TWO_JP]
                    return NEED_BLOCK
            _decay(blk_int, lam, E, b, c, mask, tau, w)
            code = _jump(blk_int, ch_int, lam, V, A, loc_int, loc_f, si, c, _uniform(s), work, w,
                         psi, psi1)
            sf[T_U] = _uniform(s)
        sf[T_TIME] = t_event
        two_j_before = blk_int[b, B_TWO_J]
        b = si[I_BLOCK]
        if cap > 0:  # a zero-length buffer means: do not record events
            k = si[I_NEV]
            ev_t[k] = t_event
            ev_i[k, 0] = code
            ev_i[k, 1] = blk_int[b, B_N]
            ev_i[k, 2] = blk_int[b, B_TWO_J]
            ev_i[k, 3] = two_j_before
            si[I_NEV] = k + 1
