"""The grouped engine's stretch between losses in compiled code: a trajectory of classes of
spins in eigenmodes (``modes``) through its stops, with the jumps on the way (``modes.run``)
and the S_y measurements of the total spin at the stops that are measurements
(``readout.measure_classes``), after each of which the state is set anew in modes (``start``)
with a fresh no-jump threshold u (0 where no channel could jump).  It returns to Python at a
full event buffer or at the end.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .krylov import _dot, _matvec, _norm2
from .modes import amplitudes, run as run_modes
from .readout import measure_classes
from .streams import _uniform


@nb.njit(cache=True, nogil=True)
def start(WT, bounds, offsets, perm, runs, data, psi, c, y, n, known):
    """psi (normalised, in the product order) set in modes: amplitudes c = V^-1 psi (y = c,
    every mode in use: n), and known = [0, ||psi||^2, its derivative 2 Re <psi|A psi>] with A =
    -i H_eff as ``krylov.Generator`` runs."""
    amplitudes(WT, bounds, offsets, psi[perm], c)
    y[:] = c
    for b in range(bounds.size - 1):
        n[b] = bounds[b + 1] - bounds[b]
    Apsi = np.empty_like(psi)
    _matvec(runs, data, psi, Apsi, 0, psi.size)
    known[0], known[1], known[2] = 0.0, _norm2(psi), 2.0 * _dot(psi, Apsi).real


@nb.njit(cache=True, nogil=True)
def run(eigenmodes, generator, meter, c, clock, times, first, last, measured, X, y, scratch,
        n, known, rng, work, event_t, event_q, meas_stream, outcomes, made):
    """Evolve the state in modes (c, clock = [t0, s, u], y, n, known: ``modes.run``) through
    times[first:last]; X[i] gets the state at times[first + i] in the sectors' order, after
    the measurement at a stop where measured[first + i].  eigenmodes = (mu, VT, GT, WT, JT,
    jumps, bounds, offsets, perm), generator = (runs, data) of A, meter = (rotations, starts,
    dims, index, my, kind, sigma, per_time, can_jump) (``readout.measure_classes``); the
    outcomes of measurement q go to outcomes[q per_time:(q + 1) per_time], q from ``made``.
    Returns (k, jumps recorded in event_t, event_q, measurements made in all): k = last
    unless the event buffer filled first."""
    mu, VT, GT, WT, JT, jumps, bounds, offsets, perm = eigenmodes
    runs, data = generator
    rotations, starts, dims, index, my, kind, sigma, per_time, can_jump = meter
    x = np.empty(perm.size, np.complex128)
    count, k = 0, first
    while k < last:
        end = k  # through the next measurement
        while end < last - 1 and not measured[end]:
            end += 1
        k, got = run_modes(mu, VT, GT, JT, jumps, bounds, offsets, c, clock, times, k,
                           end + 1, X[k - first:], y, scratch, n, known, rng, work,
                           event_t[count:], event_q[count:])
        count += got
        if k <= end:  # the event buffer is full
            break
        if measured[end]:
            row = X[end - first]
            x[perm] = row
            measure_classes(x, rotations, starts, dims, index, my, kind, sigma, meas_stream,
                            outcomes[made * per_time:(made + 1) * per_time])
            made += 1
            row[:] = x[perm]
            start(WT, bounds, offsets, perm, runs, data, x, c, y, n, known)
            clock[0] += clock[1]
            clock[1] = 0.0
            u = _uniform(rng)
            clock[2] = u if can_jump else 0.0
    return k, count, made
