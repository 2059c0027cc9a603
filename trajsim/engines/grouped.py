"""Jump trajectories of classes of identical spins (``groups``), the core of issue 23's engine:
not yet an ``Engine`` (no scenario key reaches it); ``trajectory`` is tested against the
product-space density matrix.

Between events psi evolves under A = -i H_eff, H_eff = H - (i/2)(Gamma Sigma^dag Sigma +
gamma_coll S_w+ S_w-) on the product of the classes' blocks, stored by diagonals and propagated by
``compiled.krylov`` (the hybrid engine's propagator) until ||psi||^2 reaches the uniform u drawn
after the last event; then a jump by Sigma or S_w- (drawn with probability ||L psi||^2).  A
spin is lost at the Poisson rate gamma N: from class k with probability N_k / N, by the class's
loss Kraus operator s with probability ||K_s psi||^2 (``dicke.loss_kraus``, which sum to one
within the class), after which the state lives in the product with N_k - 1.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import scipy.sparse as sp

from .. import dicke, groups
from ..compiled import krylov
from ..compiled.streams import _uniform
from ..model import Rates
from . import next_poisson_loss, pick

#: The observables sampled, of the total spin; then the spins N_k of each class.
COLUMNS = ("N", "Sz", "Sx2", "Sy2", "Sz2")


@dataclass(frozen=True)
class GroupedBlock:
    """The classes at their current sizes: A = -i H_eff by diagonals, its max row sum, the jump
    channels (name, sqrt(rate) L) and the losses (class, Kraus operator, classes after)."""

    classes: tuple
    offsets: np.ndarray
    data: np.ndarray
    anorm: float
    channels: list
    losses: list
    observables: dict


@cache
def block(classes: tuple, rates: Rates) -> GroupedBlock:
    """The block of these class sizes (cached)."""
    ops = groups.operators(classes, rates.r)
    channels = [(name, np.sqrt(rate) * ops[key]) for name, rate, key in
                (("Sigma", rates.Gamma, "Sigma"), ("S-", rates.gamma_coll, "S-w")) if rate > 0]
    decay = sum((L.conj().T @ L for _, L in channels), sp.csr_matrix(ops["H"].shape))
    A = (-1j * ops["H"] - 0.5 * decay).tocsr()
    diagonals = A.todia()
    losses = []
    for k, g in enumerate(classes):
        if g.N == 0:
            continue
        after = classes[:k] + (replace(g, N=g.N - 1),) + classes[k + 1:]
        for up in (False, True):
            losses.append((k, groups.embedded(classes, k, dicke.loss_kraus(g.N, g.N, g.N - 1,
                                                                          up)), after))
    S = {a: ops[f"S{a}"] for a in "xyz"}
    observables = {"Sz": S["z"], **{f"S{a}2": (S[a] @ S[a]).tocsr() for a in "xyz"}}
    return GroupedBlock(classes, diagonals.offsets.astype(np.int64),
                        np.ascontiguousarray(diagonals.data, np.complex128),
                        float(abs(A).sum(axis=1).max()) if A.nnz else 0.0, channels, losses,
                        observables)


def trajectory(classes: tuple, rates: Rates, psi0: np.ndarray, t_grid: np.ndarray,
               loss_rate: float, stream: np.ndarray) -> tuple[np.ndarray, list]:
    """One trajectory: (samples[t, COLUMNS + N_k of each class], events [(t, 'jump' | 'loss',
    name)])."""
    b = block(classes, rates)
    x = np.asarray(psi0, complex) / np.linalg.norm(psi0)
    u, t, k = _uniform(stream), 0.0, 0
    step = np.array([krylov.initial_step(b.anorm), 0.0])
    N = sum(g.N for g in classes)
    t_loss = next_poisson_loss(0.0, loss_rate, N, stream)
    samples, events = np.empty((t_grid.size, len(COLUMNS) + len(classes))), []
    while k < t_grid.size:
        last = max(int(np.searchsorted(t_grid, t_loss, "left")), k)
        if last > k:
            k_new, t, jumped, X = krylov.advance_through(b.offsets, b.data, b.anorm, x, t, u,
                                                         t_grid, k, last, step)
            for i, psi in enumerate(X[:k_new - k]):
                psi = psi / np.linalg.norm(psi)
                samples[k + i] = [N] + [np.vdot(psi, O @ psi).real
                                        for O in b.observables.values()] + \
                    [g.N for g in b.classes]
            k = k_new
            if not jumped:
                continue
        else:
            _, t_reached, jumped, _ = krylov.advance_through(b.offsets, b.data, b.anorm, x, t, u,
                                                             np.array([t_loss]), 0, 1, step)
            t = t_reached if jumped else t_loss
        if jumped:
            phis = [L @ x for _, L in b.channels]
            c = pick([np.vdot(p, p).real for p in phis], stream)
            events.append((t, "jump", b.channels[c][0]))
        else:
            phis = [K @ x for _, K, _ in b.losses]
            c = pick([b.classes[cls].N * np.vdot(p, p).real
                       for (cls, _, _), p in zip(b.losses, phis)], stream)
            events.append((t, "loss", f"class {b.losses[c][0]}"))
            b, N = block(b.losses[c][2], rates), N - 1
            t_loss = next_poisson_loss(t, loss_rate, N, stream)
        x = phis[c] / np.linalg.norm(phis[c])
        u = _uniform(stream)
    return samples, events
