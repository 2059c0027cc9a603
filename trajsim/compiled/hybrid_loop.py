"""The hybrid engine's event loop in compiled code: one trajectory of Eq. (9) through the stops
of its schedule, with its no-jump stretches, every jump (the cavity's and the local spin
channels'), its spin losses, its S_y measurements and its samples' observables; it returns to
Python only for a block that is not built yet (NEED_BLOCK) or a full event buffer (FULL).

A state is x = psi.ravel() on Fock ⊗ V_j (index n (2j + 1) + k), in the first fock (2j + 1)
entries of a buffer.  Between events it evolves by ``krylov.advance_through`` in its parity
sector of n + k when it lies in one, else in the whole space (``krylov.Generator.parts``,
``krylov.part_of``).  A jump applies J_c with probability ||J_c psi||^2 over their sum: the
cavity's J_c = F_c ⊗ 1, F_c = sqrt(kappa_c) L_c with L_c one of ``hybrid.cavity_channels``, each
coupling n only to n - 1 and n + 1 (lower[c, n] = F_c[n, n - 1], upper[c, n] = F_c[n, n + 1]),
and the local spin channels' J_c = 1 ⊗ K_c, K_c: V_j -> V_j' (sqrt(rate) folded in).  At the
loss schedule's times (scripted, or a Poisson process of rate gamma_loss N, redrawn after each
loss) one of the block's loss Kraus operators 1 ⊗ K is applied, drawn alike.  After a jump, a
loss or an S_y measurement (``readout.measure_spins``) the state is normalised and the no-jump
threshold u drawn anew from the trajectory's stream.  At equal times a loss comes first, then a
measurement, then a sample, whose observables are ``bands.band_expectations``.

Block b (``where[N, 2j]``, -1 if not built) is ``table[b]`` = (parts, anorm, channels, losses,
B, used_b, U, my): its generator (``krylov.Generator.parts``), its spin channels and loss
Kraus operators as (codes, 2j after, offsets, rows, cols, values), operator c's entries
K[rows[e], cols[e]] = values[e] for e in [offsets[c], offsets[c + 1]) (codes: their event
channels), the spin observables' bands and the S_y basis of its j (``engines.hybrid``).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numba.typed import List

from .bands import band_expectations
from .krylov import UNLIMITED, _norm2, advance_through, part_of
from .readout import measure_spins
from .streams import _uniform, pick

#: ``run``'s outcomes.
DONE, NEED_BLOCK, FULL = 0, 1, 2
#: The trajectory's state between calls: floats (time, threshold u, next Poisson loss) and
#: integers (next stop, spins N, 2j, scripted losses made, measurements made).
T_TIME, T_U, T_POISSON = range(3)
S_STOP, S_N, S_TWO_J, S_SCRIPTED, S_MADE = range(5)


@nb.njit(cache=True)
def new_table(block):
    """A table holding block (``run``'s typed list, made in compiled code so that its methods
    come from Numba's cache: from Python each process compiled them anew, 0.5 s)."""
    table = List()
    table.append(block)
    return table


@nb.njit(cache=True)
def add_block(table, block):
    """Append block to table; returns its index."""
    table.append(block)
    return len(table) - 1


@nb.njit(cache=True, nogil=True)
def _cavity_apply(x, lower, upper, c, spins, out):
    """out[:x.size] = (F_c ⊗ 1) x (module docstring)."""
    fock = x.size // spins
    for n in range(fock):
        row = out[n * spins:(n + 1) * spins]
        row[:] = 0.0
        if n > 0:
            below = x[(n - 1) * spins:n * spins]
            for k in range(spins):
                row[k] += lower[c, n] * below[k]
        if n + 1 < fock:
            above = x[(n + 1) * spins:(n + 2) * spins]
            for k in range(spins):
                row[k] += upper[c, n] * above[k]


@nb.njit(cache=True, nogil=True)
def _spin_apply(x, spins, operators, c, out):
    """out[:fock (2j' + 1)] = (1 ⊗ K_c) x for operator c of ``operators`` (module docstring)."""
    _, after, offsets, rows, cols, values = operators
    fock, width = x.size // spins, after[c] + 1
    out[:fock * width] = 0.0
    for e in range(offsets[c], offsets[c + 1]):
        r, k, value = rows[e], cols[e], values[e]
        for n in range(fock):
            out[n * width + r] += value * x[n * spins + k]


@nb.njit(cache=True, nogil=True)
def jump(x, spins, lower, upper, channels, buffer, stream):
    """Apply J_c (module docstring) to the state x[:fock spins] of buffer, c drawn with
    probability ||J_c psi||^2 over their sum, normalised; returns (c's code, 2j after)
    (cavity channel c has code c).  A loss is a jump without the cavity's channels (lower and
    upper without rows), the block's losses for channels."""
    cavity, fock = lower.shape[0], lower.shape[1]
    size = x.size
    phis = np.zeros((cavity + channels[0].size, fock * (spins + 2)), np.complex128)
    weights = np.empty(cavity + channels[0].size)
    for c in range(cavity):
        _cavity_apply(x, lower, upper, c, spins, phis[c])
        weights[c] = _norm2(phis[c, :size])
    for c in range(channels[0].size):
        _spin_apply(x, spins, channels, c, phis[cavity + c])
        weights[cavity + c] = _norm2(phis[cavity + c, :fock * (channels[1][c] + 1)])
    c = pick(weights, stream)
    if c < cavity:
        code, two_j = c, spins - 1
    else:
        code, two_j = channels[0][c - cavity], channels[1][c - cavity]
    _normalised(phis[c, :fock * (two_j + 1)], weights[c], buffer)
    return code, two_j


@nb.njit(cache=True, nogil=True)
def _normalised(phi, norm2, buffer):
    """buffer[:phi.size] = phi / sqrt(norm2)."""
    scale = 1.0 / math.sqrt(norm2)
    for i in range(phi.size):
        buffer[i] = phi[i] * scale


@nb.njit(cache=True, nogil=True)
def advance(block, C, used_c, readout, x, t, u, times, first, last, sampled, measured,
            sample_of, N, step, stream, meas_stream, outcomes, outcome_N, made, samples):
    """Evolve x (one block's state) from t through times[first:last] without jumping, making
    the S_y measurement (readout: (kind, sigma)) at each stop i where measured[i] (its outcomes
    into outcomes[made], N into outcome_N[made], made counting them; u redrawn after it) and
    writing (N, j, the observables) at each stop i where sampled[i] into samples[sample_of[i]]
    (after the measurement at a measured stop).
    Returns (k, t, u, jumped, made): k the first stop not reached, x the state at t; jumped: a
    jump is due at t."""
    parts, anorm, _, _, B, used_b, U, my = block
    kind, sigma = readout
    spins = B.shape[2]
    psi = np.zeros((1, x.size // spins, spins), np.complex128)
    flat = psi.reshape(-1)
    k = first
    while True:
        end = k  # through the next measurement
        while end < last - 1 and not measured[end]:
            end += 1
        runs, data, layers, band, idx = parts[part_of(x, parts)]
        y = x[idx]
        k_new, t, jumped, Y = advance_through(runs, data, anorm, layers, band, y, t, u, times,
                                              k, end + 1, step, UNLIMITED)
        x[idx] = y
        at_measurement = not jumped and measured[end]
        for i in range(k_new - k - at_measurement):
            if sampled[k + i]:
                flat[:] = 0.0
                flat[idx] = Y[i]
                _sample(psi, B, C, used_b, used_c, N, spins, samples, sample_of[k + i])
        k = k_new
        if at_measurement:
            measure_spins(x, U, my, kind, sigma, meas_stream, outcomes[made])
            outcome_N[made] = N
            made += 1
            u = _uniform(stream)
            if sampled[end]:
                flat[:] = x
                _sample(psi, B, C, used_b, used_c, N, spins, samples, sample_of[end])
        if jumped or k == last:
            return k, t, u, jumped, made


@nb.njit(cache=True, nogil=True)
def _sample(psi, B, C, used_b, used_c, N, spins, samples, row):
    """samples[row] = (N, j, the observables of psi)."""
    samples[row, 0], samples[row, 1] = N, 0.5 * (spins - 1)
    band_expectations(psi, B, C, used_b, used_c, samples[row:row + 1, 2:])


@nb.njit(cache=True, nogil=True)
def _record(events, count, t, code, N, two_j, before):
    """events[count] = (t, code, N, 2j after, 2j before); returns count + 1."""
    row = events[count]
    row[0], row[1], row[2], row[3], row[4] = t, code, N, two_j, before
    return count + 1


@nb.njit(cache=True, nogil=True)
def run(table, where, schedule, cavity, losses, readout, x, state_f, state_i, step, stream,
        meas_stream, outcomes, outcome_N, samples, events):
    """Run a trajectory (module docstring) from its state (state_f, state_i, step, x) through
    the stops of schedule = (stops, sampled, sample_of, measured) (``advance``), cavity =
    (lower, upper, C, used_c), losses = (scripted times, rate per spin), recording each event
    as (t, code, N, 2j after, 2j before) in events.  Returns (outcome, events recorded); the
    state saved for the next call."""
    stops, sampled, sample_of, measured = schedule
    lower, upper, C, used_c = cavity
    script_times, loss_rate = losses
    fock = lower.shape[1]
    t, u, poisson = state_f[T_TIME], state_f[T_U], state_f[T_POISSON]
    k, N, two_j = state_i[S_STOP], state_i[S_N], state_i[S_TWO_J]
    scripted, made = state_i[S_SCRIPTED], state_i[S_MADE]
    alone, at = np.zeros(1, np.bool_), np.zeros(1)
    count, outcome = 0, DONE
    while k < stops.size:
        b = where[N, two_j]
        if b < 0:
            outcome = NEED_BLOCK
            break
        block = table[b]
        spins = two_j + 1
        state = x[:fock * spins]
        t_loss, is_scripted = np.inf, False
        if N > 0 and scripted < script_times.size and script_times[scripted] <= poisson:
            t_loss, is_scripted = script_times[scripted], True
        elif N > 0:
            t_loss = poisson
        cut = np.searchsorted(stops, t_loss)
        if cut > k:  # the stops before the next loss
            k, t, u, jumped, made = advance(block, C, used_c, readout, state, t, u, stops, k, cut,
                                            sampled, measured, sample_of, N, step, stream,
                                            meas_stream, outcomes, outcome_N, made, samples)
        else:  # the loss is due first
            at[0] = t_loss
            _, t, u, jumped, _ = advance(block, C, used_c, readout, state, t, u, at, 0, 1, alone,
                                         alone, sample_of, N, step, stream, meas_stream,
                                         outcomes, outcome_N, made, samples)
            if not jumped:
                before = two_j
                code, two_j = jump(state, spins, lower[:0], upper[:0], block[3], x, stream)
                N -= 1
                if is_scripted:
                    scripted += 1
                else:
                    rate = loss_rate * N
                    poisson = t - math.log(_uniform(stream)) / rate if rate > 0 else np.inf
                count = _record(events, count, t, code, N, two_j, before)
                u = _uniform(stream)
                if count == events.shape[0]:
                    outcome = FULL
                    break
                continue
        if not jumped:
            continue
        before = two_j
        code, two_j = jump(state, spins, lower, upper, block[2], x, stream)
        count = _record(events, count, t, code, N, two_j, before)
        u = _uniform(stream)
        if count == events.shape[0]:
            outcome = FULL
            break
    state_f[T_TIME], state_f[T_U], state_f[T_POISSON] = t, u, poisson
    state_i[S_STOP], state_i[S_N], state_i[S_TWO_J] = k, N, two_j
    state_i[S_SCRIPTED], state_i[S_MADE] = scripted, made
    return outcome, count
