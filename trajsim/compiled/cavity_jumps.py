"""The hybrid engine's compiled stretch: no-jump Krylov steps, the cavity's jumps, the S_y
measurements and the observables at the samples, between the events that need Python (a loss,
a jump of a spin channel, the end of the stretch, a full event buffer).

A state is x = psi.ravel() on Fock ⊗ V_j (index n spins + k).  Between jumps it evolves by
``krylov.advance_through`` in its parity sector of n + k when it lies in one, else in the whole
space (``krylov.Generator.parts``, ``krylov.part_of``).  A cavity jump
applies F_c ⊗ 1, F_c = sqrt(kappa_c) L_c with L_c one of ``hybrid.cavity_channels``, each
coupling n only to n - 1 and n + 1: lower[c, n] = F_c[n, n - 1], upper[c, n] = F_c[n, n + 1];
channel c is drawn with probability ||F_c psi||^2 over their sum, the state renormalised, and
the next no-jump threshold u drawn from the trajectory's stream.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .bands import band_expectations
from .krylov import UNLIMITED, _norm2, advance_through, part_of
from .readout import measure_spins
from .streams import _uniform, pick

#: ``advance``'s outcomes: the stretch done, a jump for Python to make (a block with spin
#: channels), the event buffer full (the state is the one after its last jump).
DONE, JUMPED, FULL = 0, 1, 2


@nb.njit(cache=True, nogil=True)
def cavity_jump(x, lower, upper, spins, stream):
    """Apply F_c ⊗ 1 to x = psi.ravel() (module docstring) for c drawn with probability
    ||F_c psi||^2 over their sum, normalised; returns c."""
    fock = x.size // spins
    phis = np.zeros((lower.shape[0], x.size), np.complex128)
    weights = np.empty(lower.shape[0])
    for c in range(lower.shape[0]):
        for n in range(fock):
            row = phis[c, n * spins:(n + 1) * spins]
            if n > 0:
                below = x[(n - 1) * spins:n * spins]
                for k in range(spins):
                    row[k] += lower[c, n] * below[k]
            if n + 1 < fock:
                above = x[(n + 1) * spins:(n + 2) * spins]
                for k in range(spins):
                    row[k] += upper[c, n] * above[k]
        weights[c] = _norm2(phis[c])
    c = pick(weights, stream)
    scale = 1.0 / math.sqrt(weights[c])
    for i in range(x.size):
        x[i] = phis[c, i] * scale
    return c


@nb.njit(cache=True, nogil=True)
def advance(parts, anorm, x, t, u, times, first, last, step, stream, lower, upper, spins,
            jumps, sampled, measured, readout, B, C, used_b, used_c, values, events):
    """Evolve x from t through times[first:last] (``krylov.advance_through`` in its part),
    making the cavity's jumps (if ``jumps``; else stopping at a jump) and recording each as
    (t, channel) in events, and an S_y measurement at each stop i where measured[i]
    (``readout.measure_spins`` with readout = (U, my, kind, sigma, its stream, outcomes): the
    measurements' outcomes into the rows of outcomes in turn; u redrawn after each), with the
    observables (``bands.band_expectations``) of the state at each stop i where sampled[i] in
    values[i - first] (after the measurement at a measured stop; B, C, used_b, used_c: those of
    ``engines.hybrid.observable_bands``).  ``parts``: (sector 0, sector 1, whole space:
    ``krylov.Generator.parts``).
    Returns (k, t, u, outcome, events recorded): k the first stop not reached; x the state at
    t, u its threshold."""
    U, my, kind, sigma, meas_stream, outcomes = readout
    count, k, made = 0, first, 0
    psi = np.zeros((1, x.size // spins, spins), np.complex128)
    flat = psi.reshape(-1)
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
                band_expectations(psi, B, C, used_b, used_c,
                                  values[k + i - first:k + i - first + 1])
        k = k_new
        if at_measurement:
            measure_spins(x, U, my, kind, sigma, meas_stream, outcomes[made])
            made += 1
            u = _uniform(stream)
            if sampled[end]:
                flat[:] = x
                band_expectations(psi, B, C, used_b, used_c,
                                  values[end - first:end - first + 1])
        if not jumped:
            if k == last:
                return k, t, u, DONE, count
            continue
        if not jumps:
            return k, t, u, JUMPED, count
        events[count, 0], events[count, 1] = t, cavity_jump(x, lower, upper, spins, stream)
        count += 1
        u = _uniform(stream)
        if count == events.shape[0]:
            return k, t, u, FULL, count
