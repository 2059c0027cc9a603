"""The exact Bayesian parity filter is calibrated on simulated records and is the best detector."""

import itertools

import numpy as np
import pytest

import trajsim
from trajsim import detectors, engines
from trajsim.model import Rates
from trajsim.parity_filter import ParityFilter, filter_declarations

SCENARIO = {"model": {"N": 8, "r": 1.5}, "initial_state": {"kind": "steady"},
            "loss": {"rate_per_spin": 0.03}, "time": {"t_end": 20.0, "n_samples": 21},
            "measurement": {"kind": "weak", "period": 0.5, "sigma": 0.7},
            "run": {"trajectories": 300, "seed": 8, "unit_size": 50}}


@pytest.fixture(scope="module")
def filtered():
    result = trajsim.run(SCENARIO, progress=False)
    point = trajsim.load_scenario(SCENARIO).points[0]
    _, weights, states = engines.initial_ensemble(point)
    rho0 = (states.T * weights) @ states.conj()
    bayes = ParityFilter(Rates.of(point["model"]), 8, rho0, 0.03, 0.5, 0.7)
    table = result.measurements.sort_values(["trajectory", "t"])
    posterior = {traj: bayes.posteriors(g.outcome.to_numpy())
                 for traj, g in table.groupby("trajectory")}
    truth = {traj: (g.N.to_numpy() % 2 == 1) for traj, g in table.groupby("trajectory")}
    return result, point, posterior, truth


@pytest.mark.slow
def test_posterior_is_calibrated(filtered):
    """In each posterior bin the fraction truly odd equals the mean posterior, within 5
    standard errors taken across trajectories (outcomes of one trajectory are correlated)."""
    _, _, posterior, truth = filtered
    edges = np.linspace(0, 1, 11)
    for low, high in itertools.pairwise(edges):
        residuals, counts = [], []
        for traj in posterior:
            inside = (posterior[traj] >= low) & (posterior[traj] < high)
            residuals.append(np.sum(truth[traj][inside] - posterior[traj][inside]))
            counts.append(inside.sum())
        residuals, counts = np.array(residuals), np.array(counts)
        if counts.sum() < 50:
            continue
        mean = residuals.sum() / counts.sum()
        se = np.sqrt(len(counts) / (len(counts) - 1) * np.sum((residuals - mean * counts) ** 2)) \
            / counts.sum()
        assert abs(mean) <= 5 * se + 1e-3, (low, high, mean, se)


@pytest.mark.slow
def test_the_filter_detects_at_least_as_well_at_the_same_false_alarms(filtered):
    """Along the ROC (false alarms, detection probability), the filter's curve lies above every
    CUSUM and threshold setting within its range, up to 3 binomial standard errors."""
    result, _, posterior, _ = filtered
    law = detectors.OutcomeLaw(8, 1.5, 0.7)
    recs = detectors.records(result.measurements, result.events, law, 8)

    def roc(declarations):
        scores = [detectors.score(recs, d, window=3.0, settle=3.0) for d in declarations]
        return np.array([[s["false_alarms"], s["p_detect"], s["losses"]] for s in scores])

    bayes = roc([[filter_declarations(posterior[k], level, False) for k in sorted(posterior)]
                 for level in (0.5, 0.55, 0.6, 0.65, 0.7, 0.75)])
    bayes = bayes[np.argsort(bayes[:, 0])]
    others = np.vstack([
        roc([[detectors.cusum_declarations(x.llr, h, False) for x in recs]
             for h in (0.5, 1.0, 2.0, 4.0)]),
        roc([[detectors.threshold_declarations(x.signal, law.auto_threshold() * f, hold, False)
              for x in recs] for f in (0.5, 1.0, 2.0) for hold in (1, 2)])])
    compared = 0
    for false_alarms, p_detect, losses in others:
        if bayes[0, 0] <= false_alarms <= bayes[-1, 0]:
            compared += 1
            best = np.interp(false_alarms, bayes[:, 0], bayes[:, 1])
            assert best >= p_detect - 3 * np.sqrt(p_detect * (1 - p_detect) / losses), \
                (false_alarms, p_detect, best)
    assert compared >= 4


def test_an_outcome_impossible_under_the_filter_model_is_skipped():
    """A hybrid run's record read with its Eq. (11) reduction can hold outcomes that model
    forbids; the filter skips them (its posterior is that of the prediction) instead of
    dividing by zero."""
    pf = ParityFilter(Rates(r=0.5), 1, np.diag([1.0, 0.0]), 0.1, 0.5, 0.0)  # one spin, down
    posterior = pf.posteriors(np.array([0.5, 5.0, -0.5]))
    assert np.all(np.isfinite(posterior))
    odd, total = pf._weights(pf.step @ pf._measured(pf.step @ pf.start, 0.5))
    assert posterior[1] == pytest.approx(odd / total)
    assert 0 < posterior[1] < 1
