"""The exact Bayesian parity filter: P(N odd | measurement record) for j = N/2 models.

The observer knows the model (Eq. (2) with gamma_coll and one-axis twisting; no local
dissipation, so every state stays in the blocks j = N/2 of N0, N0 - 1, ...), the initial state,
the spin-loss rate (losses are not observed: a Poisson prior) and the instrument.  Its state is
the unnormalised block density matrices of ``exact.Propagator`` (Eq. (2) with loss): between
outcomes it evolves exactly (a dense matrix exponential for the outcome spacing), each outcome
y acts with its Kraus operator in every block,

    weak:        rho_y[m, m'] <- rho_y[m, m'] exp(-((y - m_y)^2 + (y - m_y')^2) / (4 sigma^2)),
    projective:  rho_y <- P_y rho_y P_y,

(in the S_y eigenbasis, ``instruments``), and the posterior is P(odd) = sum over odd N of
Tr rho_N / sum over all N.  No detector reading the same record does better: it is the bound the
others are measured against.

Size limit: the state has sum_k (N0 - k + 1)^2 entries and the propagator is dense, so the
filter runs up to N0 = ``MAX_N`` (a few milliseconds per outcome there).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import expm

from .exact import Propagator
from .instruments import _sy_basis
from .model import Rates

MAX_N = 16


class ParityFilter:
    """Posterior parity of a record of S_y outcomes at uniformly spaced times."""

    def __init__(self, rates: Rates, N0: int, rho0: np.ndarray, loss_rate: float,
                 spacing: float, sigma: float):
        if N0 > MAX_N:
            raise ValueError(f"the exact parity filter runs up to N = {MAX_N}")
        self.propagator = Propagator(rates, N0, N0, loss_rate=loss_rate)
        self.step = expm(self.propagator.G.toarray() * spacing)
        self.start = self.propagator.initial(rho0)
        self.sigma = sigma
        self.blocks = list(self.propagator.layout.offsets.items())

    def posteriors(self, outcomes: np.ndarray) -> np.ndarray:
        """P(odd | outcomes 1..i) after each outcome i (the first one spacing after t = 0).  An
        outcome impossible under the filter's model (a hybrid run's record read with its Eq. (11)
        reduction can hold one) is skipped."""
        vec = self.start.copy()
        out = np.empty(outcomes.size)
        for i, y in enumerate(outcomes):
            predicted = self.step @ vec
            vec = self._measured(predicted, y)
            odd, total = self._weights(vec)
            if total <= 0:
                vec = predicted
                odd, total = self._weights(vec)
            vec /= total
            out[i] = odd / total
        return out

    def _measured(self, vec: np.ndarray, y: float) -> np.ndarray:
        """The outcome's Kraus operator applied in every block."""
        vec = vec.copy()
        for (_, two_j), offset in self.blocks:
            size = (two_j + 1) ** 2
            rho = vec[offset:offset + size].reshape(two_j + 1, two_j + 1)
            my, U = _sy_basis(two_j)
            rho = U @ ((U.conj().T @ rho @ U) * self._kraus(my, y)) @ U.conj().T
            vec[offset:offset + size] = rho.ravel()
        return vec

    def _weights(self, vec: np.ndarray) -> tuple[float, float]:
        """(odd, total): the traces of the odd-N blocks and of all blocks."""
        odd = total = 0.0
        for (N, two_j), offset in self.blocks:
            weight = np.trace(vec[offset:offset + (two_j + 1) ** 2].reshape(two_j + 1,
                                                                           two_j + 1)).real
            total += weight
            odd += weight if N % 2 else 0.0
        return odd, total

    def _kraus(self, my: np.ndarray, y: float) -> np.ndarray:
        """The outcome's weights W[m, m'] = M_y(m) M_y(m') in the S_y basis (up to a constant)."""
        if self.sigma == 0:
            amplitude = (np.abs(my - y) < 1e-9).astype(float)
        else:
            amplitude = np.exp(-((y - my) ** 2) / (4 * self.sigma**2))
        return np.outer(amplitude, amplitude)


def filter_declarations(posterior: np.ndarray, level: float, start_odd: bool) -> np.ndarray:
    """Declared parity after each outcome: odd once P(odd) > level, even once P(odd) < 1 - level
    (level 1/2: the MAP decision; higher levels trade latency for fewer false alarms)."""
    declared = np.empty(posterior.size, bool)
    state = start_odd
    for i, p in enumerate(posterior):
        state = True if p > level else False if p < 1 - level else state
        declared[i] = state
    return declared
