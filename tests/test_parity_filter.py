"""The exact Bayesian parity filter is calibrated on simulated records and is the best detector."""

import itertools

import numpy as np
import pytest
from scipy.linalg import expm

import trajsim
from trajsim import detectors, engines, parity_filter
from trajsim.exact import Propagator, steady_density_matrix
from trajsim.instruments import _sy_basis
from trajsim.model import Rates
from trajsim.parity_filter import LadderUnavailable, ParityFilter, filter_declarations

SCENARIOS = {
    "N8": {"model": {"N": 8, "r": 1.5}, "initial_state": {"kind": "steady"},
           "loss": {"rate_per_spin": 0.03}, "time": {"t_end": 20.0, "n_samples": 21},
           "measurement": {"kind": "weak", "period": 0.5, "sigma": 0.7},
           "run": {"trajectories": 300, "seed": 8, "unit_size": 50}},
    # Fig. 4(b) with a weak readout of one-spin resolution (scenarios/parity_sensing_weak.yaml)
    "N40": {"model": {"N": 40, "r": 2.5}, "initial_state": {"kind": "steady"},
            "loss": {"rate_per_spin": 0.002}, "time": {"t_end": 50.0, "n_samples": 11},
            "measurement": {"kind": "weak", "period": 0.5, "sigma": 1.0},
            "run": {"trajectories": 48, "seed": 40, "unit_size": 8}},
}


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def filtered(request):
    scenario = SCENARIOS[request.param]
    result = trajsim.run(scenario, progress=False)
    point = trajsim.load_scenario(scenario).points[0]
    model, meas = point["model"], point["measurement"]
    _, weights, states = engines.initial_ensemble(point)
    rho0 = (states.T * weights) @ states.conj()
    bayes = ParityFilter(Rates.of(model), model["N"], rho0, point["loss"]["rate_per_spin"],
                         meas["period"], meas["sigma"])
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
    result, point, posterior, _ = filtered
    N = point["model"]["N"]
    law = detectors.OutcomeLaw(N, point["model"]["r"], point["measurement"]["sigma"])
    recs = detectors.records(result.measurements, result.events, law, N)

    def roc(declarations):
        scores = [detectors.score(recs, d, window=3.0, settle=3.0) for d in declarations]
        return np.array([[s["false_alarms"], s["p_detect"], s["losses"]] for s in scores])

    bayes = roc([[filter_declarations(posterior[k], level, False) for k in sorted(posterior)]
                 for level in (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9)])
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


def dense_posteriors(rates, N0, rho0, loss_rate, sigma, outcomes, times):
    """The filter's definition, built independently: every block N0 .. 0 in one vector,
    propagated by a dense expm of the whole ladder's generator (``exact.Propagator``)."""
    P = Propagator(rates, N0, N0, loss_rate=loss_rate)
    G, blocks = P.G.toarray(), list(P.layout.offsets.items())
    vec = np.zeros(P.layout.size, complex)
    vec[: rho0.size] = rho0.ravel()

    def traces(v):
        return {N: np.trace(v[o:o + (N + 1) ** 2].reshape(N + 1, N + 1)).real
                for (N, _), o in blocks}

    steps, out, now = {}, [], 0.0
    for y, t in zip(outcomes, times):
        tau = round(t - now, 12)
        if tau not in steps:
            steps[tau] = expm(G * tau)
        predicted = steps[tau] @ vec
        now, measured = t, predicted.copy()
        for (N, _), o in blocks:
            my, U = _sy_basis(N)
            amplitude = (np.abs(my - y) < 1e-9).astype(float) if sigma == 0 else \
                np.exp(-((y - my) ** 2) / (4 * sigma**2))
            rho = measured[o:o + (N + 1) ** 2].reshape(N + 1, N + 1)
            measured[o:o + (N + 1) ** 2] = (
                U @ ((U.conj().T @ rho @ U) * np.outer(amplitude, amplitude)) @ U.conj().T).ravel()
        if sum(traces(measured).values()) <= 0:
            measured = predicted
        weights = traces(measured)
        vec = measured / sum(weights.values())
        out.append(sum(w for N, w in weights.items() if N % 2) / sum(weights.values()))
    return np.array(out)


def simulated_record(N, r, loss_rate, sigma, times, seed):
    """Outcomes of one trajectory simulated by trajsim at the given times."""
    kind = {"kind": "projective"} if sigma == 0 else {"kind": "weak", "sigma": sigma}
    result = trajsim.run({"model": {"N": N, "r": r}, "initial_state": {"kind": "steady"},
                          "loss": {"rate_per_spin": loss_rate},
                          "time": {"t_end": float(times[-1]), "n_samples": 2},
                          "measurement": {**kind, "times": [float(t) for t in times]},
                          "run": {"trajectories": 1, "seed": seed}}, progress=False)
    return result.measurements.sort_values("t").outcome.to_numpy()


@pytest.mark.parametrize("N, r, loss_rate, sigma, uniform", [
    (8, 1.5, 0.03, 0.7, True), (9, 2.5, 0.05, 0.0, True), (12, 2.0, 0.02, 1.0, False),
    (7, 1.0, 0.2, 0.5, False)])
def test_the_filter_equals_the_dense_filter(N, r, loss_rate, sigma, uniform):
    """On records simulated with losses (projective and weak, uniform and listed times) the
    posteriors equal those of the whole-ladder dense filter to 1e-9."""
    times = 0.5 * np.arange(1, 31) if uniform else \
        np.cumsum(np.random.default_rng(N).choice([0.25, 0.5, 1.5], 30))
    outcomes = simulated_record(N, r, loss_rate, sigma, times, seed=N)
    rates = Rates(r=r)
    rho0 = steady_density_matrix(N, N, r)
    reference = dense_posteriors(rates, N, rho0, loss_rate, sigma, outcomes, times)
    bayes = ParityFilter(rates, N, rho0, loss_rate, 0.5, sigma)
    posterior = bayes.posteriors(outcomes, None if uniform else times)
    np.testing.assert_allclose(posterior, reference, rtol=0, atol=1e-9)


def test_an_outcome_impossible_under_the_filter_model_is_skipped():
    """A hybrid run's record read with its Eq. (11) reduction can hold outcomes that model
    forbids; the filter skips them (its posterior is that of the prediction) instead of
    dividing by zero."""
    rho0 = np.diag([1.0, 0.0])  # one spin, down
    pf = ParityFilter(Rates(r=0.5), 1, rho0, 0.1, 0.5, 0.0)
    outcomes = np.array([0.5, 5.0, -0.5])
    posterior = pf.posteriors(outcomes)
    assert np.all(np.isfinite(posterior))
    reference = dense_posteriors(Rates(r=0.5), 1, rho0, 0.1, 0.0, outcomes, [0.5, 1.0, 1.5])
    np.testing.assert_allclose(posterior, reference, rtol=0, atol=1e-12)
    assert 0 < posterior[1] < 1


@pytest.mark.parametrize("sigma", [0.0, 0.8])
def test_records_filtered_together_are_filtered_as_each_alone(sigma):
    """Columns of outcomes at shared times (the report's batch) give each record's own
    posterior: with losses at different times, a projective record whose levels drop out
    where the others' do not, and one outcome that only one record makes impossible."""
    N, r, loss_rate = 6, 1.0, 0.05
    times = 0.5 * np.arange(1, 21)
    rates, rho0 = Rates(r=r), steady_density_matrix(N, N, r)
    records = np.stack([simulated_record(N, r, loss_rate, sigma, times, seed=s)
                        for s in range(4)], axis=1)
    if sigma == 0:
        records[7, 2] = 9.0  # no S_y eigenvalue of any level
    bayes = ParityFilter(rates, N, rho0, loss_rate, 0.5, sigma)
    together = bayes.posteriors(records, times)
    assert together.shape == records.shape and np.all(np.isfinite(together))
    for b in range(records.shape[1]):
        np.testing.assert_allclose(together[:, b], bayes.posteriors(records[:, b], times),
                                   rtol=0, atol=1e-12)
    assert len({tuple(np.round(column, 6)) for column in together.T}) == records.shape[1]


def test_a_filter_beyond_the_memory_budget_is_refused(monkeypatch):
    """One line naming the size and the budget; nothing is built."""
    monkeypatch.setattr(parity_filter, "memory_budget", lambda: 2.0**30)
    with pytest.raises(LadderUnavailable, match=r"N = 60 needs about .* GiB; 1 GiB"):
        ParityFilter(Rates(r=2.5), 60, np.eye(61) / 61, 0.002, 0.5, 1.0)
