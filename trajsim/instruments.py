"""Exact S_y instruments on block density matrices: the oracles of measurement records.

In a block of spin j the S_y eigenbasis is |j, m_y> = sum_k i^k R[k, m] |j, k>
(``dicke.sy_eigenbasis``, m_y = m - j).  Every outcome of the instruments of the trajectory
engine (``compiled.kernels._measure_sy``) acts on a block as

    rho -> U (U^dag rho U  ∘  W) U^dag,        U[k, m] = i^k R[k, m],

with a real matrix W over (m_y, m_y'); its probability is the trace of the result:

- projective, outcome v:      W = e_v e_v^T (blocks without the value v give zero);
- weak (Kraus operator M_y = (2 pi sigma^2)^(-1/4) exp(-(y - S_y)^2 / (4 sigma^2))), outcome y in
  [a, b):  W[m, m'] = exp(-(m_y - m_y')^2 / (8 sigma^2)) [Phi((b - mu) / sigma) - Phi((a - mu) / sigma)],
  mu = (m_y + m_y') / 2 (the integral of M_y rho M_y^dag over the bin);
- non-selective (all outcomes summed): W = identity (projective: dephasing in the S_y basis),
  W[m, m'] = exp(-(m_y - m_y')^2 / (8 sigma^2)) (weak), all ones (copies: no back-action).

Combined with ``exact.Propagator`` (Eq. (11) with spin loss between measurements) this gives the
exact distribution of one outcome and the joint distribution of successive outcomes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
from scipy.special import ndtr

from . import dicke
from .exact import Propagator, expectations

#: W(two_j) -> the (2j+1) x (2j+1) real matrix of one outcome (or of the whole instrument).
Weights = Callable[[int], np.ndarray]


@cache
def _sy_basis(two_j: int) -> tuple[np.ndarray, np.ndarray]:
    """(m_y values m - j, U) with U[k, m] = i^k R[k, m]."""
    _, R = dicke.sy_eigenbasis(two_j)
    return np.arange(two_j + 1) - two_j / 2, (1j ** np.arange(two_j + 1))[:, None] * R


def projective(value: float) -> Weights:
    """The projective outcome m_y = value."""
    def weights(two_j: int) -> np.ndarray:
        my, _ = _sy_basis(two_j)
        return np.diag((np.abs(my - value) < 1e-9).astype(float))
    return weights


def weak(a: float, b: float, sigma: float) -> Weights:
    """A weak outcome y in [a, b) (a = -inf, b = inf allowed)."""
    def weights(two_j: int) -> np.ndarray:
        my, _ = _sy_basis(two_j)
        mu = (my[:, None] + my[None, :]) / 2
        overlap = np.exp(-((my[:, None] - my[None, :]) ** 2) / (8 * sigma**2))
        return overlap * (ndtr((b - mu) / sigma) - ndtr((a - mu) / sigma))
    return weights


def non_selective(kind: str, sigma: float | None = None) -> Weights:
    """Every outcome of the instrument, summed (the ensemble after an unread measurement)."""
    if kind == "weak":
        return weak(-np.inf, np.inf, sigma)
    if kind == "projective":
        return lambda two_j: np.identity(two_j + 1)
    return lambda two_j: np.ones((two_j + 1, two_j + 1))


def apply(propagator: Propagator, vec: np.ndarray, weights: Weights) -> np.ndarray:
    """The (unnormalised) state after the outcome ``weights``; its trace is its probability."""
    out = np.zeros_like(vec)
    for (N, two_j), offset in propagator.layout.offsets.items():
        size = (two_j + 1) ** 2
        rho = vec[offset:offset + size].reshape(two_j + 1, two_j + 1)
        _, U = _sy_basis(two_j)
        rho_y = (U.conj().T @ rho @ U) * weights(two_j)
        out[offset:offset + size] = (U @ rho_y @ U.conj().T).ravel()
    return out


def trace(propagator: Propagator, vec: np.ndarray) -> float:
    return float(sum(np.trace(rho).real for rho in propagator.blocks(vec).values()))


def outcome_values(two_j0: int) -> np.ndarray:
    """Every possible projective outcome after any number of losses from 2j0: the m_y of
    integer and half-integer spins up to j0."""
    return np.arange(-two_j0, two_j0 + 1) / 2


def distribution(propagator: Propagator, vec: np.ndarray, outcomes: list[Weights]) -> np.ndarray:
    """Probabilities of the given outcomes of one measurement of the state ``vec``."""
    return np.array([trace(propagator, apply(propagator, vec, w)) for w in outcomes])


def joint_distribution(propagator: Propagator, vec: np.ndarray, t1: float, t2: float,
                       first: list[Weights], second: list[Weights]) -> np.ndarray:
    """P(first outcome a at t1, second outcome b at t2) for ``vec`` at t1 (t2 > t1), with the
    evolution (and any scripted or Poisson loss) in between: [a, b]."""
    return np.array([distribution(propagator,
                                  propagator.advance(apply(propagator, vec, w), t1, t2), second)
                     for w in first])


def measured_evolution(propagator: Propagator, rho0: np.ndarray, t_grid: np.ndarray,
                       times: np.ndarray, instrument: Weights) -> dict:
    """Ensemble observables on t_grid when ``instrument`` (non-selective) acts at ``times``;
    a sample at a measurement time sees the state after it (as in the trajectory engine)."""
    vec, t_now, rows = propagator.initial(rho0), 0.0, []
    pending = sorted(times)
    for t in t_grid:
        while pending and pending[0] <= t:
            vec = apply(propagator, propagator.advance(vec, t_now, pending[0]), instrument)
            t_now = pending.pop(0)
        vec = propagator.advance(vec, t_now, t)
        t_now = t
        rows.append(expectations(propagator.blocks(vec)))
    return {name: np.array([row[name] for row in rows]) for name in rows[0]}
