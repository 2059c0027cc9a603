"""Exact single-shot parity discrimination against sampled decisions."""

import numpy as np
import pytest

from trajsim import discrimination, exact


def test_projective_outcomes_tell_the_parity_at_once():
    """m_y is an integer for even N and a half-integer for odd N."""
    assert discrimination.single_shot_error(40, 2.5, 0.0) == 0.0
    assert discrimination.outcomes_for_confidence(40, 2.5, 0.0) == 1


def test_coarse_resolution_leaves_only_the_variance_contrast():
    errors = [discrimination.single_shot_error(40, 2.5, s) for s in (0.5, 1.0, 2.0, 8.0)]
    assert errors == sorted(errors) and 0.3 < errors[0] and errors[-1] > 0.49
    assert discrimination.decision_error(40, 2.5, 1.0, 1) == pytest.approx(errors[1], rel=1e-9)


@pytest.mark.parametrize("n", [1, 12])
def test_decision_error_matches_sampled_decisions(n):
    """Draw n outcomes of the N and N - 1 steady states, decide by the summed log-likelihood
    ratio of the same outcome bins, and count errors (5 binomial standard errors)."""
    N, r, sigma, draws = 40, 2.5, 1.0, 40_000
    rng = np.random.default_rng(11)
    edges = discrimination._grid(N, sigma)
    pe = discrimination.outcome_probabilities(N, r, sigma, edges)
    po = discrimination.outcome_probabilities(N - 1, r, sigma, edges)
    with np.errstate(divide="ignore", invalid="ignore"):  # far tails: never drawn
        llr = np.nan_to_num(np.clip(np.log(po) - np.log(pe), -20, 20))
    wrong = 0
    for n_spins, odd in ((N, False), (N - 1, True)):
        my, p = exact.sy_distribution(n_spins, r)
        y = rng.choice(my, size=(draws, n), p=p) + sigma * rng.standard_normal((draws, n))
        bins = np.clip(np.searchsorted(edges, y) - 1, 0, len(pe) - 1)
        total = llr[bins].sum(axis=1)
        wrong += np.sum(total < 0) if odd else np.sum(total > 0)
    rate = wrong / (2 * draws)
    expected = discrimination.decision_error(N, r, sigma, n)
    assert abs(rate - expected) < 5 * np.sqrt(expected * (1 - expected) / (2 * draws))


def test_integer_power_by_squaring_equals_numpys():
    from trajsim.discrimination import _power

    z = np.exp(1j * np.linspace(0, 3, 7)) * np.linspace(0.5, 1.0, 7)
    for n in (1, 2, 7, 64, 195):
        assert np.allclose(_power(z, n), z**n, rtol=1e-12, atol=1e-300)
