"""Record detectors: declarations, honest scoring, exact outcome laws, and the report section."""

import numpy as np
import pandas as pd
import pytest

import trajsim
from trajsim import detectors, discrimination, exact


def test_threshold_turns_after_hold_consecutive_outcomes():
    signal = np.array([0, 5, 0, 5, 5, 5, 0, 0, 5, 0, 0.0])
    assert detectors.threshold_declarations(signal, 1.0, 2, False).tolist() == [
        False, False, False, False, True, True, True, False, False, False, False]


def test_cusum_accumulates_evidence_and_restarts():
    llr = np.array([1.0, 1.0, -0.5, 1.5, -1.0, -2.0, 0.2, -3.0])
    # S = 1, 2, 1.5, 3 > 2.5: odd, restart; then S = 1, 3 > 2.5: even again; S = 0.2, 0
    assert detectors.cusum_declarations(llr, 2.5, False).tolist() == [
        False, False, False, True, True, False, False, False]


def _record(times, losses, declared_pattern, start_odd=False):
    rec = detectors.Record(np.asarray(times, float), np.zeros(len(times)), np.zeros(len(times)),
                           np.asarray(losses, float), start_odd)
    return rec, np.asarray(declared_pattern, bool)


def test_scoring_counts_only_changes_after_the_loss():
    times = np.arange(1, 11) * 0.5  # outcomes at 0.5, 1.0, ..., 5.0
    # already declared odd before the loss at 1.2 (a false alarm at 1.0): no detection
    early = _record(times, [1.2], [0, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    # changes at 2.0, after the loss at 1.2: detected with latency 0.8
    late = _record(times, [1.2], [0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
    result = detectors.score([early[0], late[0]], [early[1], late[1]], window=3.0, settle=0.0)
    assert result["losses"] == 2 and result["detected"] == 1
    assert result["latency_median"] == pytest.approx(0.8)
    assert result["false_alarms"] == 1  # the change at 1.0 in quiet time


def test_exact_outcome_laws_are_normalised_and_match_the_steady_states():
    law = detectors.OutcomeLaw(12, 2.0, 0.7)
    y = np.linspace(-15, 15, 30001)
    for odd, N in ((False, 12), (True, 11)):
        density = np.exp(law.log_density(y, odd))
        assert np.trapezoid(density, y) == pytest.approx(1.0, abs=1e-6)
        my, p = exact.sy_distribution(N, 2.0)
        assert np.trapezoid(density * y**2, y) == pytest.approx(p @ my**2 + 0.49, rel=1e-6)
    lattice = detectors.OutcomeLaw(12, 2.0, 0.0)
    assert lattice.llr(np.array([0.0, 0.5])).tolist() == [-detectors.LLR_CLIP, detectors.LLR_CLIP]


def test_auto_threshold_minimises_the_single_outcome_error():
    law = detectors.OutcomeLaw(40, 2.5, 1.0)
    theta = law.auto_threshold()
    edges = discrimination._grid(40, 1.0)
    centres = (edges[1:] + edges[:-1]) / 2
    pe = discrimination.outcome_probabilities(40, 2.5, 1.0, edges)
    po = discrimination.outcome_probabilities(39, 2.5, 1.0, edges)

    def total_error(t):
        return pe[centres**2 > t].sum() + po[centres**2 <= t].sum()

    assert total_error(theta) <= min(total_error(theta * f) for f in (0.7, 0.9, 1.1, 1.4)) + 1e-3


@pytest.fixture(scope="module")
def projective_run():
    return trajsim.run({"model": {"N": 12, "r": 2.0}, "initial_state": {"kind": "steady"},
                        "loss": {"rate_per_spin": 0.02}, "time": {"t_end": 20.0, "n_samples": 41},
                        "measurement": {"kind": "projective", "period": 0.5},
                        "run": {"trajectories": 60, "seed": 5, "unit_size": 10}},
                       progress=False)


def test_projective_records_reveal_the_parity_at_the_first_outcome_after_a_loss(projective_run):
    """Integer vs half-integer outcomes: the CUSUM (exact likelihoods) declares the new parity
    at the first post-loss outcome, never earlier, with no false alarm."""
    point = projective_run.manifest["scenario"]
    settings = {**point["detection"], "window": 3.0, "settle": 3.0}
    summary, _, recs, _ = detectors.analyse_point(projective_run.measurements,
                                                       projective_run.events, point, settings)
    cusum = summary.set_index("detector").loc["cusum"]
    scored, visible, waits = 0, 0, []
    for rec in recs:
        for k, t in enumerate(rec.losses):
            t_next = rec.losses[k + 1] if k + 1 < rec.losses.size else np.inf
            if min(t + 3.0, t_next) > rec.times[-1]:
                continue
            scored += 1
            first = rec.times[np.searchsorted(rec.times, t)]
            before = rec.times[rec.times < t]
            t_prev = rec.losses[k - 1] if k else -np.inf
            # the parity at the next outcome differs from the one at the last outcome (no other
            # loss in between): a perfect record changes its declaration exactly then
            if first < t_next and t_prev < (before[-1] if before.size else 0.0):
                visible += 1
                waits.append(first - t)
    assert cusum.losses == scored > 20 and cusum.false_alarms == 0
    assert cusum.detected == visible and cusum.latency_min == pytest.approx(min(waits))
    assert cusum.latency_median == pytest.approx(np.median(waits))


def test_latency_is_never_below_the_time_to_the_next_outcome(projective_run):
    point = projective_run.manifest["scenario"]
    recs = detectors.records(projective_run.measurements, projective_run.events,
                             detectors.OutcomeLaw(12, 2.0, 0.0), 12)
    rng = np.random.default_rng(3)
    noisy = [rng.random(rec.times.size) < 0.5 for rec in recs]  # a detector that guesses
    lat = []
    for rec, declared in zip(recs, noisy, strict=True):
        changes = declared != np.concatenate([[rec.start_odd], declared[:-1]])
        for k, t in enumerate(rec.losses):
            hits = np.flatnonzero((rec.times >= t) & changes
                                  & (declared == (rec.start_odd ^ (k % 2 == 0))))
            if hits.size:
                lat.append((rec.times[hits[0]] - t,
                            rec.times[np.searchsorted(rec.times, t)] - t))
    assert lat and all(latency >= wait for latency, wait in lat)
    result = detectors.score(recs, noisy, window=point["detection"]["window"], settle=3.0)
    assert result["latency_min"] >= 0


@pytest.mark.slow
def test_report_has_the_record_section_and_warns_without_losses(projective_run, tmp_path):
    folder = projective_run.report()
    table = pd.read_csv(folder / "record_detection.csv")
    assert set(table.detector) == {"threshold", "cusum", "bayes"}  # N = 12: the filter applies
    assert (table.single_shot_error == 0).all() and (table.outcomes_for_99pct == 1).all()
    bayes = table.set_index("detector").loc["bayes"]
    assert bayes.false_alarms == 0 and bayes.p_detect >= table.p_detect.max() - 1e-12
    html = (folder / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in html
    assert "measurement record" in (folder / "report.md").read_text()
    quiet = trajsim.run({"model": {"N": 6, "r": 1.0}, "time": {"t_end": 2.0, "n_samples": 5},
                         "run": {"trajectories": 4}}, tmp_path / "quiet", progress=False)
    assert "no spin loss" in (quiet.report() / "report.md").read_text()


def test_measured_bandwidth_is_the_largest_rate_detected_90_percent():
    from trajsim.report import measured_bandwidth

    manifest = {"scenario": {"model": {"N": 10}, "time": {"t_end": 1.0},
                             "sweep": {"loss.rate_per_spin": [0.01, 0.02, 0.04]}}}
    summary = pd.DataFrame({"detector": ["cusum"] * 3, "point": [0, 1, 2],
                            "p_detect": [0.97, 0.92, 0.6], "p_detect_low": [0.9, 0.85, 0.5],
                            "p_detect_high": [1.0, 0.96, 0.7], "gap": [1.0] * 3})
    row = measured_bandwidth(summary, manifest).iloc[0]
    assert row.bandwidth_rate_per_spin == 0.02 and row.losses_per_unit_time == pytest.approx(0.2)
    assert row.next_rate == 0.04 and row.next_p_detect == 0.6


def test_the_bayes_filter_detects_scripted_losses():
    """Scripted losses only (rate_per_spin 0): the filter's prior expects as many losses over the
    run (``detectors.loss_prior``) and, with projective outcomes that tell the parity at once,
    detects every loss at the first outcome after it.  With a prior of no loss it detected none."""
    result = trajsim.run({"model": {"N": 8, "r": 1.5}, "initial_state": {"kind": "steady"},
                          "loss": {"times": [5.0]}, "time": {"t_end": 10.0, "n_samples": 21},
                          "measurement": {"kind": "projective", "period": 0.5},
                          "run": {"trajectories": 20, "seed": 2}}, progress=False)
    point = result.manifest["scenario"]
    assert detectors.loss_prior(point) == pytest.approx(1 / 80)
    summary, *_ = detectors.analyse_point(result.measurements, result.events, point,
                                          {**point["detection"], "window": 3.0, "settle": 3.0})
    bayes = summary.set_index("detector").loc["bayes"]
    assert bayes.losses == 20 and bayes.p_detect == 1.0
