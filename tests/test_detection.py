"""Detection statistics on synthetic event streams with known answers."""

import numpy as np
import pandas as pd
import pytest

from trajsim import detection, load_scenario
from trajsim.detection import Detector


def test_wilson_interval_known_values():
    low, high = detection.wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    low, high = detection.wilson_interval(0, 20)
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(0.1611, abs=1e-4)


def test_a_wilson_interval_holds_its_proportion():
    """Every interval holds k/n, also at k = 0 and k = n, where the formula's ends came out
    beyond it by rounding (5.6e-17 above 0 at n = 3, 1.1e-16 below 1 at n = 10) and a
    report's error bar crashed matplotlib (found by the hostile fuzz with a sweep); no
    interval at n = 0."""
    for n in range(1, 60):
        k = np.arange(n + 1)
        low, high = detection.wilson_interval(k, n)
        assert np.all(low <= k / n) and np.all(k / n <= high), n
        assert low[0] == 0.0 and high[-1] == 1.0
    assert np.isnan(detection.wilson_interval(0, 0)).all()


def test_poisson_rate_interval_known_values():
    low, high = detection.poisson_rate_interval(0, 10.0)
    assert low == 0 and high == pytest.approx(0.36889, rel=1e-4)
    low, high = detection.poisson_rate_interval(4, 2.0)
    assert (low, high) == pytest.approx((1.0899 / 2, 10.2416 / 2), rel=1e-3)


def test_debounced_classifier_ignores_short_spikes():
    t = np.arange(0, 10, 0.1)
    signal = np.where((t >= 2) & (t < 2.3), 5.0, 0.1)  # 0.3 long spike: shorter than hold
    signal = np.where(t >= 6, 5.0, signal)  # a real change at t = 6
    declared = detection.declared_parity(t, signal, Detector(threshold=1.0, hold=0.5, smooth=0.0, window=3.0, settle=3.0), False)
    assert not declared[t < 6.5 - 1e-9].any()
    assert declared[t >= 6.5 - 1e-9].all()


def synthetic_run():
    """Two trajectories of N0 = 10 on t = 0..20 (step 0.1): trajectory 0 loses a spin at t = 3
    (signal rises at 3.2) and another at t = 12 (signal falls at 12.5); trajectory 1 loses none
    but its signal has a spurious excursion over [15, 16)."""
    t = np.round(np.arange(0, 20.0001, 0.1), 10)
    sig0 = np.where((t >= 3.2) & (t < 12.5), 9.0, 0.2)
    sig1 = np.where((t >= 15) & (t < 16), 9.0, 0.2)
    traj = pd.DataFrame({"point": 0, "trajectory": np.repeat([0, 1], t.size),
                         "t": np.tile(t, 2), "Sy2": np.concatenate([sig0, sig1])})
    events = pd.DataFrame({"point": [0, 0], "trajectory": [0, 0], "t": [3.0, 12.0],
                           "kind": ["loss", "loss"], "channel": ["lost_down", "lost_up"],
                           "N": [9, 8], "j": [4.5, 4.0]})
    return traj, events


def test_detection_latency_and_false_flips_on_a_synthetic_stream():
    traj, events = synthetic_run()
    detector = Detector(threshold=1.0, hold=0.5, smooth=0.0, window=5.0, settle=2.0)
    timeline = detection.parity_timeline(events, {0: 10}, traj)
    assert timeline.N_true.tolist()[:31] == [10] * 30 + [9]  # t = 3.0 sees the loss
    classified = detection.classify(timeline, traj.Sy2, detector)
    found = detection.loss_detections(classified, events, detector)
    assert found.detected.tolist() == [True, True]
    assert found.latency.to_numpy() == pytest.approx([0.7, 1.0])  # 3.2+0.5-3, 12.5+0.5-12
    flips = detection.false_flips(classified, events, detector)
    # quiet time counts sample steps with both ends quiet: trajectory 1 all 20; trajectory 0
    # [0, 2.9] + [5, 11.9] + [14, 20] = 15.8 (the steps into each loss are not quiet)
    assert flips.false_flips.item() == 2 and flips.quiet_time.item() == pytest.approx(35.8)
    summary = detection.summarize(found, flips)
    assert summary.p_detect.item() == 1.0 and summary.losses.item() == 2
    assert summary.rate.item() == pytest.approx(2 / 35.8)


def test_missed_loss_when_the_signal_never_follows():
    traj, events = synthetic_run()
    traj = traj.assign(Sy2=0.2)  # the detector never sees anything
    detector = Detector(threshold=1.0, hold=0.5, smooth=0.0, window=5.0, settle=2.0)
    classified = detection.classify(detection.parity_timeline(events, {0: 10}, traj),
                                    traj.Sy2, detector)
    found = detection.loss_detections(classified, events, detector)
    # the first loss (to odd) is missed; after the second the truth is even again: "detected"
    # at once because the declared parity never left even
    assert found.detected.tolist() == [False, True] and found.latency.iloc[1] == 0.0


@pytest.mark.slow
def test_report_end_to_end(tmp_path):
    """A small sensing run: report files exist, every loss is accounted for, and the automatic
    threshold separates the exact even and odd steady <Sy^2> (odd N: <Sy^2> >= 1/4)."""
    import subprocess
    import sys

    scenario = tmp_path / "sense.yaml"
    scenario.write_text("model: {N: 12, r: 2.0}\nloss: {rate_per_spin: 0.01, times: [2.0]}\n"
                        "time: {t_end: 12.0, n_samples: 241}\nrun: {trajectories: 16, seed: 3}\n")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "trajsim"]
    run = subprocess.run(cmd + ["run", scenario, "--out", out], capture_output=True, check=False)
    assert run.returncode == 0
    res = subprocess.run(cmd + ["report", out], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    folder = out / "report"
    for name in ("report.md", "report.html", "detection.csv", "losses.csv", "roc.csv",
                 "traces.png", "histogram.png", "roc.png"):
        assert (folder / name).stat().st_size > 0, name
    summary = pd.read_csv(folder / "detection.csv")
    events = pd.read_parquet(out / "events.parquet")
    assert summary.losses.item() <= (events.kind == "loss").sum()
    from trajsim import exact
    from trajsim.report import auto_threshold
    even, odd = exact.steady_observables(12, 2.0)["Sy2"], exact.steady_observables(11, 2.0)["Sy2"]
    assert even < auto_threshold(12, 2.0) < min(odd, 0.25)


def test_report_refuses_unfinished_or_foreign_directories(tmp_path):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "trajsim", "report", tmp_path], capture_output=True,
                         text=True, check=False)
    assert res.returncode == 2 and "not a trajsim run directory" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_bootstrap_median_interval_covers_the_median():
    values = np.random.default_rng(1).exponential(size=400)
    low, high = detection.bootstrap_median(values)
    assert low < np.median(values) < high and high - low < 0.4
    assert detection.bootstrap_median(np.array([0.7, 0.7])) == (0.7, 0.7)


def test_bandwidth_solves_the_following_probability():
    latencies = np.array([0.5, 0.5, 0.5, 0.5])
    rate = detection.bandwidth(latencies, 1.0, error=0.1)
    assert rate == pytest.approx(-np.log(0.9) / 0.5)  # exp(-rate * 0.5) = 0.9
    assert detection.bandwidth(latencies, 0.85, error=0.1) == 0.0  # cannot reach 90 % at all


def test_trailing_mean_smooths_causally():
    t = np.arange(6.0)
    assert detection.trailing_mean(t, np.array([0, 0, 3, 3, 3, 3.0]), 1.5).tolist() == [
        0, 0, 1.5, 3, 3, 3]


def test_the_roc_is_the_monotone_envelope_of_the_settings():
    from trajsim.report import roc_envelope

    x, y, envelope = roc_envelope([0.3, 0.0, 0.2, np.inf, 0.1], [0.5, 0.2, 0.8, 1.0, 0.1])
    assert x.tolist() == [0.0, 0.1, 0.2, 0.3]  # sorted, the setting without an ARL dropped
    assert y.tolist() == [0.2, 0.1, 0.8, 0.5] and envelope.tolist() == [0.2, 0.2, 0.8, 0.8]


def test_a_summary_only_run_gets_the_headline_and_the_ensemble(tmp_path):
    import trajsim

    result = trajsim.run({"model": {"N": 6, "r": 1.0}, "loss": {"times": [1.0]},
                          "time": {"t_end": 2.0, "n_samples": 21},
                          "run": {"trajectories": 8, "store": "summary"},
                          "sweep": {"loss.rate_per_spin": [0.0, 0.1]}},
                         tmp_path / "run", threads=1, progress=False)
    folder = result.report()
    text = (folder / "report.md").read_text()
    assert "N = 6 spins at r = 1" in text and "run.store: summary" in text
    assert "ensemble.png" in text and (folder / "ensemble.png").stat().st_size > 0
    assert not (folder / "detection.csv").exists()


def test_the_report_answers_first_with_a_compact_table(tmp_path):
    import trajsim
    from trajsim.report import detector_table

    result = trajsim.run({"model": {"N": 6, "r": 1.0}, "loss": {"times": [1.0]},
                          "time": {"t_end": 6.0, "n_samples": 31},
                          "measurement": {"kind": "weak", "sigma": 0.5, "period": 0.25},
                          "run": {"trajectories": 16}}, tmp_path / "run", threads=1,
                         progress=False)
    text = (result.report() / "report.md").read_text()
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []  # no figure left open (a long session once hit pyplot's 20)
    headline = text.split("## ")[0]
    assert "weakly (σ = 0.5) every 0.25/Γ" in headline and "16 trajectories" in headline
    assert "detects" in headline and "Warning" not in headline
    summary = pd.read_csv(result.path / "report" / "record_detection.csv")
    table = detector_table(summary, "1/Γ", swept=False)
    assert 5 <= len(table.columns) <= 8 and len(table) == summary.detector.nunique()
    assert "| detector | detected [95 %] | median latency (1/Γ) |" in text


def test_a_swept_mapping_is_labelled_by_what_varies():
    """A sweep over model.broadening labels its points by the entries that change
    ('model.broadening.width=0.3'), as its figures' axis; other keys as before."""
    from trajsim.report import _labels, _swept
    base = {"model": {"N": 4, "broadening": {"distribution": "gaussian", "width": 0.0,
                                             "groups": 2}}, "time": {"t_end": 1.0}}
    for sweep, labels in (
            ({"model.broadening": [{"distribution": "gaussian", "width": 0.0, "groups": 2},
                                   {"distribution": "gaussian", "width": 0.3, "groups": 2}]},
             ["model.broadening.width=0", "model.broadening.width=0.3"]),
            ({"model.r": [1.0, 2.5]}, ["model.r=1", "model.r=2.5"])):
        points = load_scenario({**base, "sweep": sweep}).points
        manifest = {"scenario": {"sweep": sweep}}
        assert _labels(manifest, points) == labels
        assert _swept(manifest, points) == [labels[0].split("=")[0]]
    assert _labels({"scenario": {"sweep": {}}}, [{}, {}]) == ["point 0", "point 1"]


def test_the_answer_follows_a_sweep_along_one_name():
    """The headline's second sentence: the best detector from the sweep's first point to its
    last (detection with its interval, false alarms per 100 time units)."""
    from trajsim.report import _answer
    row = {"detector": "threshold", "latency_median": 1.0, "false_alarms": 4, "arl_low": 3.0,
           "quiet_time": 100.0, "losses": 50}
    summary = pd.DataFrame([
        {**row, "point": 0, "label": "model.r=1", "p_detect": 0.9, "p_detect_low": 0.8,
         "p_detect_high": 0.95, "arl": 50.0},
        {**row, "point": 1, "label": "model.r=2", "p_detect": 0.6, "p_detect_low": 0.5,
         "p_detect_high": 0.7, "arl": 25.0}])
    text = _answer(summary, "1/Γ", True, "model.r")
    assert text.startswith("The best record detector (at model.r=1), threshold, detects 90 %")
    assert text.endswith("Along model.r (1 → 2) it detects 90 % [80–95] → 60 % [50–70] of the "
                         "losses, with 2 → 4 false alarms per 100/Γ.")
    assert "Along" not in _answer(summary, "1/Γ", True)  # a grid, or no sweep


def test_a_log_sweep_axis_is_labelled_at_the_swept_values():
    """A swept rate gets a log axis whose labels are the swept values (0.005, 0.02, 0.08):
    matplotlib's minor labels 2e-2 3e-2 4e-2 6e-2 ran together between them."""
    from trajsim.report import _figure, _sweep_axis
    scenario = {"name": "t", "model": {"N": 4}, "time": {"t_end": 1.0},
                "sweep": {"loss.rate_per_spin": [0.005, 0.02, 0.08]}}
    fig, ax = _figure()
    x = _sweep_axis(ax, {"scenario": scenario}, pd.Series([0, 1, 2]))
    assert list(x) == [0.005, 0.02, 0.08] and ax.get_xscale() == "log"
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.005", "0.02", "0.08"]
    assert not any(t.get_text() for t in ax.get_xticklabels(minor=True))
