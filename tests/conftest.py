"""Shared helpers: honest statistical comparisons against exact values."""

import numpy as np
import pytest


def assert_within_sem(samples: np.ndarray, exact: np.ndarray, label: str, n_sem: float = 5.0):
    """Every sample-time ensemble mean lies within n_sem standard errors of the exact value.

    samples: (trajectories, times).  Where every trajectory agrees (standard error 0, e.g. at t=0)
    the comparison falls back to floating-point agreement (1e-9 relative).
    """
    mean = samples.mean(axis=0)
    sem = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
    tol = n_sem * sem + 1e-9 * (1.0 + np.abs(exact))
    bad = np.flatnonzero(np.abs(mean - exact) > tol)
    assert bad.size == 0, (
        f"{label}: {bad.size} sample(s) off, first at index {bad[0]}: "
        f"mean {mean[bad[0]]:.6g} ± {sem[bad[0]]:.3g} vs exact {exact[bad[0]]:.6g}"
    )


@pytest.fixture
def within_sem():
    return assert_within_sem


def assert_frequency_matches(indicators: np.ndarray, p: np.ndarray, label: str, n_sem: float = 5.0):
    """Empirical frequencies (trajectories, times) of an event against its exact probability p,
    within n_sem binomial standard errors sqrt(p(1-p)/n) taken at the exact p (so an event too
    rare to be seen in the sample is compared honestly too)."""
    n = indicators.shape[0]
    freq = indicators.mean(axis=0)
    tol = n_sem * np.sqrt(p * (1 - p) / n) + 1e-9
    bad = np.flatnonzero(np.abs(freq - p) > tol)
    assert bad.size == 0, (f"{label}: {bad.size} sample(s) off, first at index {bad[0]}: "
                           f"{freq[bad[0]]:.5g} vs exact {p[bad[0]]:.5g}")
