"""The exact Bayesian parity filter: P(N odd | measurement record) for j = N/2 models.

The observer knows the model (Eq. (2) with gamma_coll and one-axis twisting; no local
dissipation, so every state stays in the blocks j = N/2 of N0, N0 - 1, ...), the initial state,
the spin-loss rate (losses are not observed: a Poisson prior) and the instrument.  Its state is
the unnormalised density matrices rho_N of the levels N that carry posterior mass: between
outcomes they evolve exactly under Eq. (11) with loss (``ladder.LossLadder``: the eigenmodes of
each level, the losses within the interval analytically), each outcome y acts with its Kraus
operator in every level,

    weak:        rho_y[m, m'] <- rho_y[m, m'] exp(-((y - m_y)^2 + (y - m_y')^2) / (4 sigma^2)),
    projective:  rho_y <- P_y rho_y P_y,

(in the S_y eigenbasis, ``instruments``), and the posterior is P(odd) = sum over odd N of
Tr rho_N / sum over all N.  Levels whose mass falls below ``MASS_TOL`` of the total are dropped;
a level enters when the ladder carries mass into it.  No detector reading the same record does
better: it is the bound the others are measured against.
"""

from __future__ import annotations

import numpy as np

from .instruments import _sy_basis
from .ladder import LadderUnavailable, LossLadder, ladder_bytes, trace
from .memory import memory_budget
from .model import Rates

__all__ = ["LadderUnavailable", "ParityFilter", "filter_declarations"]

#: Levels with less posterior mass than this (relative) are dropped.
MASS_TOL = 1e-12


class ParityFilter:
    """Posterior parity of a record of S_y outcomes (at multiples of ``spacing`` unless the
    times are given)."""

    def __init__(self, rates: Rates, N0: int, rho0: np.ndarray, loss_rate: float,
                 spacing: float, sigma: float):
        need, budget = ladder_bytes(N0, loss_rate, spacing), memory_budget()
        if need > budget:
            raise LadderUnavailable(f"the parity filter at N = {N0} needs about "
                                    f"{need / 2**30:.3g} GiB; {budget / 2**30:.0f} GiB is "
                                    "available")
        self.rates, self.N0, self.loss_rate = rates, N0, loss_rate
        self.spacing, self.sigma = spacing, sigma
        self.start = {N0: np.asarray(rho0, complex).ravel().copy()}
        self._ladders: dict[float, LossLadder] = {}

    def posteriors(self, outcomes: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
        """P(odd | outcomes 1..i) after each outcome i, at ``times`` (default: spacing,
        2 spacing, ...); outcomes of shape (steps,) or, for B records at the same times,
        (steps, B), each column filtered on its own (in one pass: the ladder's products act
        on all columns at once).  An outcome impossible under the filter's model (a hybrid
        run's record read with its Eq. (11) reduction can hold one) is skipped."""
        outcomes = np.asarray(outcomes, float)
        if times is None:
            times = self.spacing * np.arange(1, len(outcomes) + 1)
        records = outcomes.reshape(len(outcomes), -1)
        levels = {N: np.repeat(x[:, None], records.shape[1], axis=1)
                  for N, x in self.start.items()}
        now, out = 0.0, np.empty(records.shape)
        for i, (y, t) in enumerate(zip(records, times, strict=True)):
            predicted = self._advance(levels, t - now)
            now = t
            levels = {N: self._measured(N, x, y) for N, x in predicted.items()}
            mass = {N: trace(N, x) for N, x in levels.items()}
            impossible = sum(mass.values()) <= 0
            for N, x in levels.items():
                x[:, impossible] = predicted[N][:, impossible]
                mass[N] = np.where(impossible, trace(N, predicted[N]), mass[N])
            total = sum(mass.values())
            kept = {N: mass[N] > MASS_TOL * total for N in levels}
            levels = {N: np.where(kept[N], x / total, 0.0) for N, x in levels.items()
                      if kept[N].any()}
            odd = sum((np.where(kept[N], mass[N], 0.0) for N in levels if N % 2),
                      np.zeros(records.shape[1]))
            out[i] = odd / sum(np.where(kept[N], mass[N], 0.0) for N in levels)
        return out.reshape(outcomes.shape)

    def _advance(self, levels: dict, tau: float) -> dict:
        """Every level through the interval tau, losses within it included (one
        ``LossLadder`` per distinct tau)."""
        if tau <= 0:
            return levels
        key = float(f"{tau:.12g}")
        if key not in self._ladders:
            self._ladders[key] = LossLadder(self.rates, self.loss_rate, key)
        return self._ladders[key].advance(levels)

    def _measured(self, N: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each column's outcome (y[b]) Kraus operator applied to its rho_N (x[:, b])."""
        my, U = _sy_basis(N)
        rho = x.T.reshape(-1, N + 1, N + 1)
        weights = self._kraus(my, y)
        return (U @ ((U.conj().T @ rho @ U) * weights) @ U.conj().T).reshape(len(y), -1).T

    def _kraus(self, my: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The outcomes' weights W[b, m, m'] = M_y(m) M_y(m') in the S_y basis (up to a
        constant)."""
        if self.sigma == 0:
            amplitude = (np.abs(my[None, :] - y[:, None]) < 1e-9).astype(float)
        else:
            amplitude = np.exp(-((y[:, None] - my[None, :]) ** 2) / (4 * self.sigma**2))
        return amplitude[:, :, None] * amplitude[:, None, :]


def filter_declarations(posterior: np.ndarray, level: float, start_odd: bool) -> np.ndarray:
    """Declared parity after each outcome: odd once P(odd) > level, even once P(odd) < 1 - level
    (level 1/2: the MAP decision; higher levels trade latency for fewer false alarms)."""
    declared = np.empty(posterior.size, bool)
    state = start_odd
    for i, p in enumerate(posterior):
        state = True if p > level else False if p < 1 - level else state
        declared[i] = state
    return declared
