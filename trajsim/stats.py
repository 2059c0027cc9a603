"""Mergeable partial statistics of a block of trajectories (threads, MPI ranks, resume and
``run.target_sem`` all combine them the same way).

Per sample and observable: the count n, the mean and M2 = sum of squared deviations, combined
pairwise by Chan, Golub & LeVeque (1979):

    delta = mean_b - mean_a,  n = n_a + n_b,
    mean = mean_a + delta n_b / n,  M2 = M2_a + M2_b + delta^2 n_a n_b / n,

and the histogram of total spin j per sample.  Floating-point addition is not associative, so
runs add units in unit order: the same bytes for any number of threads or ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dicke import OBSERVABLES


@dataclass(frozen=True)
class UnitStats:
    """Statistics of n trajectories: ``mean``, ``M2`` (samples, columns), ``j_counts``
    (samples, N + 1) with j_counts[s, 2j] the number of trajectories in total spin j."""

    n: int
    mean: np.ndarray
    M2: np.ndarray
    j_counts: np.ndarray

    @classmethod
    def of(cls, samples: np.ndarray, N: int) -> UnitStats:
        """Statistics of samples[trajectory, sample, column] (columns start with OBSERVABLES)."""
        mean = samples.mean(axis=0)
        two_j = np.rint(2 * samples[:, :, OBSERVABLES.index("j")]).astype(np.int64)
        counts = np.zeros((samples.shape[1], N + 1), np.int64)
        np.add.at(counts, (np.broadcast_to(np.arange(samples.shape[1]), two_j.shape), two_j), 1)
        return cls(samples.shape[0], mean, ((samples - mean) ** 2).sum(axis=0), counts)

    def __add__(self, other: UnitStats) -> UnitStats:
        delta = other.mean - self.mean
        total = self.n + other.n
        return UnitStats(total, self.mean + delta * (other.n / total),
                         self.M2 + other.M2 + delta**2 * (self.n * other.n / total),
                         self.j_counts + other.j_counts)

    @property
    def sem(self) -> np.ndarray:
        """Standard error of the mean, sqrt(M2 / (n - 1) / n) (NaN for one trajectory)."""
        if self.n < 2:
            return np.full_like(self.mean, np.nan)
        return np.sqrt(self.M2 / (self.n - 1) / self.n)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"n": np.array(self.n), "mean": self.mean, "M2": self.M2,
                "j_counts": self.j_counts}

    @classmethod
    def from_arrays(cls, arrays: dict) -> UnitStats:
        return cls(int(arrays["n"]), arrays["mean"], arrays["M2"], arrays["j_counts"])

