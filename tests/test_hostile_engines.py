"""Hostile input against the newer engines and the report (issue #24): every case either runs
with correct values or is refused with one line naming the key; no NaN in a summary; the
report never replaces a file it did not write and reads only committed parts."""

import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import trajsim
from trajsim import cli
from trajsim.compiled.streams import U_MIN
from trajsim.engines import hybrid as hybrid_engine
from trajsim.model import Rates, build_block
from trajsim.scenario import MIN_SIGMA, ScenarioError
from trajsim.squeezing import wineland_xi2
from trajsim.store import OWNED_RECORD, RunDirectory


def run_dict(tmp_path, scenario: dict, name="run"):
    return trajsim.run(trajsim.load_scenario(scenario), tmp_path / name, threads=1,
                       progress=False)


def assert_no_nan(result):
    """No NaN in any summary column (xi2 is +inf where the mean spin vanishes: documented)."""
    summary = result.summary
    bad = [c for c in summary.columns if summary[c].isna().any()]
    assert not bad, f"NaN in {bad}"


# ---------------------------------------------------------------- 1: r = 0 with spin loss

def test_r_zero_with_a_loss_stays_in_the_dark_state(tmp_path):
    """At r = 0, Sigma = S-: |j, -j> is dark, and losing one of its (down) spins leaves the
    all-down state of N - 1 spins: Sz = -(N - 1)/2 and <Sy^2> = (N - 1)/4 exactly."""
    result = run_dict(tmp_path, {"model": {"N": 4}, "loss": {"times": [0.5]},
                                 "time": {"t_end": 1, "n_samples": 11},
                                 "run": {"trajectories": 4}})
    late = result.summary[result.summary.t >= 0.5]
    assert np.allclose(late.N_mean, 3) and np.allclose(late.Sz_mean, -1.5)
    assert np.allclose(late.Sy2_mean, 0.75)
    assert_no_nan(result)


@pytest.mark.parametrize("N", [3, 4, 5, 6])
def test_r_zero_blocks_have_the_exact_spectrum(N):
    """K = Gamma S+ S- is diagonal at r = 0: eigenvalues j(j+1) - m(m-1), including the zero
    mode the small-eigenvalue refinement (which assumes none) must leave alone."""
    block = build_block(N, N, Rates(r=0.0))
    lam = np.sort(np.concatenate(block.lam))
    j, m = N / 2, np.arange(-N / 2, N / 2 + 1)
    assert np.allclose(lam, np.sort(j * (j + 1) - m * (m - 1)), atol=1e-12)


def test_r_zero_with_random_losses_runs(tmp_path):
    result = run_dict(tmp_path, {"model": {"N": 5}, "loss": {"rate_per_spin": 0.5},
                                 "time": {"t_end": 2}, "run": {"trajectories": 8}})
    assert result.summary.N_mean.iloc[-1] < 5
    assert_no_nan(result)


# ---------------------------------------------------------------- 2: an emptied ensemble

EMPTIED = {"model": {"N": 1, "r": 0.5}, "loss": {"rate_per_spin": 100, "times": [0.5]},
           "time": {"t_end": 1, "n_samples": 11}, "run": {"trajectories": 4}}


@pytest.mark.filterwarnings("error::RuntimeWarning")  # numpy's 0/0 used to reach the user
@pytest.mark.parametrize("variant", [
    {},
    {"measurement": {"kind": "projective", "period": 0.2}, "run": {"engine": "record"}},
    {"measurement": {"kind": "weak", "sigma": 0.5, "period": 0.2}, "run": {"engine": "jumps"}},
    {"model": {"kind": "hybrid", "g": 0.1}},
])
def test_losses_that_empty_the_ensemble_leave_N_zero(tmp_path, variant):
    """An empty ensemble is a valid state: later samples have N = 0, no spin moments, xi2 =
    +inf; the scripted loss after the Poisson ones is a no-op."""
    scenario = {key: dict(value) for key, value in EMPTIED.items()}
    for section, values in variant.items():
        scenario.setdefault(section, {}).update(values)
    result = run_dict(tmp_path, scenario)
    last = result.summary.iloc[-1]
    assert last.N_mean == 0 and last.Sy2_mean == 0 and last.Sz_mean == 0
    assert last.xi2 == np.inf
    assert_no_nan(result)
    losses = result.events[result.events.kind == "loss"]
    assert (losses.groupby("trajectory").size() == 1).all()  # one spin, one loss


def test_xi2_is_infinite_without_a_mean_spin():
    mean = np.zeros((2, 3))
    second = np.zeros((2, 3, 3))
    with np.errstate(all="raise"):
        assert np.all(wineland_xi2(np.array([0.0, 2.0]), mean, second) == np.inf)


# ---------------------------------------------------------------- 3, 4: schedules and sigma

@pytest.mark.parametrize("measurement, key", [
    ({"kind": "projective", "period": 5}, "measurement.period"),
    ({"kind": "projective", "times": [1.0, 5.0]}, "measurement.times"),
    ({"kind": "weak", "period": 0.5, "sigma": 1e-170}, "measurement.sigma"),
    ({"kind": "weak", "period": 0.5, "sigma": MIN_SIGMA / 2}, "measurement.sigma"),
])
def test_impossible_instruments_are_refused_naming_the_key(measurement, key):
    with pytest.raises(ScenarioError, match=f"^{key}:"):
        trajsim.load_scenario({"model": {"N": 4}, "time": {"t_end": 2},
                               "measurement": measurement})


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("engine", ["jumps", "record"])
def test_the_sharpest_weak_readout_runs_and_reports(tmp_path, engine):
    result = run_dict(tmp_path, {"model": {"N": 4, "r": 1.0}, "loss": {"times": [1.0]},
                                 "time": {"t_end": 2}, "run": {"trajectories": 4,
                                                               "engine": engine},
                                 "measurement": {"kind": "weak", "sigma": MIN_SIGMA,
                                                 "period": 0.5}})
    assert_no_nan(result)
    twice = 2 * result.measurements.outcome  # y = m_y + sigma z: 2 m_y has the parity of N
    assert np.all(np.abs(twice - np.round(twice)) < 20 * MIN_SIGMA)
    assert np.all(np.round(twice) % 2 == result.measurements.N % 2)
    assert result.report().is_dir()


# ---------------------------------------------------------------- 6, 7: reports that crashed

def test_a_copies_run_can_be_reported(tmp_path):
    result = run_dict(tmp_path, {"model": {"N": 4, "r": 1.0}, "loss": {"times": [1.0]},
                                 "time": {"t_end": 2}, "run": {"trajectories": 4},
                                 "measurement": {"kind": "copies", "shots": 3, "period": 0.5}})
    assert (result.report() / "record_detection.csv").is_file()


def test_the_shipped_twisting_scenario_can_be_reported(tmp_path):
    scenario = trajsim.load_scenario("scenarios/oat_twisting.yaml", {"run.trajectories": 4})
    folder = trajsim.run(scenario, tmp_path / "oat", threads=1, progress=False).report()
    assert "Gamma = 0" in (folder / "report.md").read_text()


# ---------------------------------------------------------------- 8, 9: the report's files

@pytest.fixture
def reported(tmp_path):
    result = run_dict(tmp_path, {"model": {"N": 4, "r": 1.0}, "loss": {"rate_per_spin": 0.3},
                                 "time": {"t_end": 3}, "run": {"trajectories": 8,
                                                               "unit_size": 4},
                                 "measurement": {"kind": "projective", "period": 0.5}})
    result.report()
    return result


def test_the_report_never_replaces_a_users_file(reported, capsys):
    folder = reported.path / "report"
    (folder / "notes.txt").write_text("mine")  # not a name the report writes: untouched
    assert cli.main(["report", str(reported.path)]) == 0  # its own files: replaced
    assert (folder / "notes.txt").read_text() == "mine"
    for name in ("report.md", "roc.csv"):
        original = (folder / name).read_bytes()
        (folder / name).write_text("mine")
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        assert cli.main(["report", str(reported.path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and name in err[0]
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
        (folder / name).write_bytes(original)


def test_the_report_records_what_it_wrote(reported):
    folder = reported.path / "report"
    owned = set(pd.read_json(folder / OWNED_RECORD, typ="series").index)
    assert owned == {p.name for p in folder.iterdir()} - {OWNED_RECORD}


def _stray(reported, table):
    folder = reported.path / f"{table}.parquet"
    shutil.copy(sorted(folder.iterdir())[0], folder / "part-p00000-u000099.parquet")
    (folder / "zz-junk.parquet").write_bytes(b"not parquet")


@pytest.mark.parametrize("table", ["events", "measurements", "trajectories"])
def test_stray_part_files_are_never_read(reported, table):
    before = RunDirectory(reported.path).read_table(table)
    _stray(reported, table)
    pd.testing.assert_frame_equal(RunDirectory(reported.path).read_table(table), before)


def test_stray_part_files_leave_the_report_unchanged(reported):
    before = (reported.path / "report" / "record_detection.csv").read_bytes()
    for table in ("events", "measurements"):
        _stray(reported, table)
    shutil.rmtree(reported.path / "report")
    reported.report()
    assert (reported.path / "report" / "record_detection.csv").read_bytes() == before


# ---------------------------------------------------------------- 10: odd input


@pytest.mark.parametrize("text, key", [
    ("model: {N: %s}\ntime: {t_end: 1}\n" % ("9" * 5000), "4300 digits"),
    ("model: {N: 4, kind: %s}\ntime: {t_end: 1}\n" % ("x" * 100_000), "model.kind"),
    ('name: "ab\\0c\\u202ed"\nmodel: {N: 4}\ntime: {t_end: 1}\n', "name"),
    ("model: 5\ntime: {t_end: 1}\n", "model: 5 is not allowed; expected a section of keys"),
    ("model: {N: 4}\ntime: {t_end: 1}\nsweep: {model.r: []}\n", "expected a list of at least"),
    ("model: {N: 4}\ntime: {t_end: 2021-13-45}\n", "a value YAML cannot read"),
])
def test_odd_values_give_one_short_escaped_line(tmp_path, capsys, text, key):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and key in err and len(err) < 500
    assert "\x00" not in err and "\u202e" not in err and "is not of type" not in err


def test_a_huge_integer_in_set_is_one_line(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text("model: {N: 4}\ntime: {t_end: 1}\n")
    assert cli.main(["validate", str(path), "--set", "model.N=" + "9" * 5000]) == 2
    assert "--set model.N" in capsys.readouterr().err


def test_scenario_paths_that_are_not_files(tmp_path, capsys):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path, "/dev/zero"):
        assert cli.main(["validate", str(path)]) == 2
        assert "not a regular file" in capsys.readouterr().err


def test_steady_out_on_a_directory_is_refused(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text("model: {N: 4, r: 0.5}\ntime: {t_end: 1}\n")
    (tmp_path / "table").mkdir()
    assert cli.main(["steady", str(path), "--out", str(tmp_path / "table"), "--force"]) == 2
    err = capsys.readouterr().err
    assert "is a directory" in err and "Errno" not in err


@pytest.mark.parametrize("model, why", [
    ("{Gamma: 0, groups: [{N: 2, delta: 0.3}, {N: 2}]}", "dissipation"),
    ("{groups: [{N: 2}, {N: 2}]}", "not unique"),  # a steady state in every block of total J
    ("{N: 1, Gamma: 0, gamma_phi: 1e-300}", "gamma_phi"),  # the LU is singular
    ("{N: 2, Gamma: 0, gamma_phi: 1.0}", "gamma_phi")])  # the LU returned one of many
def test_steady_without_a_unique_state_is_one_line(tmp_path, capsys, model, why):
    path = tmp_path / "s.yaml"
    path.write_text(f"model: {model}\ntime: {{t_end: 1}}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cli.main(["steady", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model" in err and why in err


def test_a_sweep_over_classes_prints_its_values(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text("model: {groups: [{N: 2, delta: 0.3}, {N: 2}]}\n"
                    "time: {t_end: 0.5, n_samples: 3}\nrun: {trajectories: 2}\n"
                    "sweep: {model.groups: [[{N: 2, delta: 0.1}, {N: 2}], [{N: 3}, {N: 1}]]}\n")
    assert cli.main(["run", str(path), "--out", str(tmp_path / "run"), "--threads", "1"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert any("[{" in line and "N: 3" in line for line in table)


def test_a_hybrid_ensemble_far_faster_dephased_than_it_evolves(tmp_path):
    """gamma_phi = 1e6 on a hybrid point: the shared no-jump path, whose norm decays at
    ~gamma_phi, stepped on to a state that underflowed to zero and divided by its norm (a
    ZeroDivisionError by t = 0.05); it now ends where every trajectory has jumped.  The
    trajectories jump ~5 000 times by t = 0.01 (dephasing), and the all-down state they start
    in stays there (a product of sigma_z eigenstates), but for the cavity's O(g^2 t^2)."""
    model = {"kind": "hybrid", "N": 2, "r": 0.5, "g": 0.1, "gamma_phi": 1e6}
    point = trajsim.load_scenario({"model": model, "time": {"t_end": 0.05}}).points[0]
    path, _ = hybrid_engine.HYBRID.build(point).shared_path()
    assert path.checkpoint(U_MIN) is not None  # every trajectory jumps on it
    result = run_dict(tmp_path, {"model": model, "time": {"t_end": 0.01, "n_samples": 3},
                                 "run": {"trajectories": 2}})
    events = pd.read_parquet(tmp_path / "run" / "events.parquet")
    assert set(events.channel) == {"dephasing"} and len(events) > 4000
    assert np.allclose(result.summary.Sz_mean, -1.0, atol=1e-6)
    assert_no_nan(result)


# ---------------------------------------------------------------- end to end fuzz

SMALL = st.sampled_from([0, 1e-300, 1e-3, 0.3, 1.0, 2.5, 5.0])
MEASUREMENTS = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"kind": st.sampled_from(["projective", "weak", "copies"])},
                          optional={"period": st.sampled_from([0.1, 0.5, 1.0, 3.0]),
                                    "times": st.lists(st.sampled_from([0.25, 0.5, 1.0, 1.5,
                                                                       2.0, 9.0]), max_size=3),
                                    "sigma": st.sampled_from([1e-300, 0.005, 0.01, 0.5, 3.0,
                                                              1e6]),
                                    "shots": st.sampled_from([0, 1, 3])}))
DETECTION = st.fixed_dictionaries({}, optional={
    "threshold": st.sampled_from(["auto", 1e-9, 0.5, 1e6]), "hold": st.sampled_from([0, 0.5, 5]),
    "smooth": st.sampled_from([0, 0.3, 10]), "window": st.sampled_from([1e-3, 3]),
    "settle": st.sampled_from([0, 3])})
SPIN = st.fixed_dictionaries({"N": st.integers(1, 6)}, optional={
    "r": SMALL, "Gamma": st.sampled_from([0.0, 1.0, 1e3]), "gamma_phi": SMALL,
    "gamma_rel": SMALL, "gamma_coll": SMALL})
HYBRID = st.fixed_dictionaries({"kind": st.just("hybrid"), "N": st.integers(1, 4),
                                "g": st.sampled_from([0.0, 1e-300, 0.05, 0.3, 30.0])},
                               optional={"r": st.sampled_from([0, 0.5, -1.0]),
                                         "kappa_sqz": st.sampled_from([1.0, 5.0, 1e3]),
                                         "kappa_int": st.sampled_from([0.0, 0.5, 1e3]),
                                         "Delta_c": st.sampled_from([0.0, 1.0, 1e3]),
                                         "gamma_phi": st.sampled_from([0.0, 1e-300, 0.3, 50.0]),
                                         "gamma_rel": st.sampled_from([0.0, 0.3]),
                                         "cavity_basis": st.sampled_from(["fock",
                                                                          "reservoir"]),
                                         "n_max": st.sampled_from(["auto", 1, 6])})
CLASS = st.fixed_dictionaries({"N": st.integers(1, 3)}, optional={
    "delta": st.sampled_from([0.0, 1e-300, 0.3, -2.0]), "weight": st.sampled_from([0.5, 1, 3])})
GROUPED = st.fixed_dictionaries({"groups": st.lists(CLASS, min_size=1, max_size=3)}, optional={
    "r": SMALL, "Gamma": st.sampled_from([0.0, 1.0]), "gamma_coll": SMALL})
BROADENED = st.fixed_dictionaries({
    "N": st.sampled_from([2, 4, 6]),
    "broadening": st.fixed_dictionaries({
        "distribution": st.sampled_from(["gaussian", "lorentzian", "uniform"]),
        "width": st.sampled_from([0.0, 1e-300, 0.3, 30.0]), "groups": st.integers(1, 3)})},
    optional={"r": SMALL, "Gamma": st.sampled_from([0.0, 1.0])})
SCENARIOS = st.fixed_dictionaries({
    "model": SPIN | HYBRID | GROUPED | BROADENED,
    "time": st.fixed_dictionaries({"t_end": st.sampled_from([0.5, 2.0]),
                                   "n_samples": st.sampled_from([2, 11])}),
    "loss": st.fixed_dictionaries({}, optional={
        "rate_per_spin": st.sampled_from([0, 0.2, 50]),
        "times": st.lists(st.sampled_from([0.0, 0.3, 0.5, 1.0]), max_size=3)}),
    "measurement": MEASUREMENTS, "detection": DETECTION,
    "run": st.fixed_dictionaries({"trajectories": st.just(2)}, optional={
        "engine": st.sampled_from(["auto", "jumps", "record"]),
        "store": st.sampled_from(["trajectories", "summary"])}),
}, optional={"initial_state": st.sampled_from([{"kind": "steady"}, {"kind": "css"},
                                               {"kind": "dicke", "m": 0}]),
             "sweep": st.sampled_from([
                 {"model.r": [0.0, 0.5]}, {"loss.rate_per_spin": [0.0, 0.2]},
                 {"model.broadening": [{"distribution": "gaussian", "width": 0.0, "groups": 2},
                                       {"distribution": "uniform", "width": 0.3,
                                        "groups": 2}]}])})


def _one_line(status, err):
    """Exit 0, or exit 2 with exactly one line: never a traceback (exit 1)."""
    assert status in (0, 2), err
    if status == 2:
        assert err.count("\n") == 1 and "Traceback" not in err, err


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("TRAJSIM_E2E_FUZZ_EXAMPLES", "12")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(SCENARIOS)
def test_fuzz_validate_run_report(capsys, scenario):
    """validate -> steady -> a 2-trajectory run -> report on the newer keys: exit 0 or one line
    with exit 2, and no NaN in a summary (TRAJSIM_E2E_FUZZ_EXAMPLES=500 for a longer
    search)."""
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a user would see them: a bug here
        warnings.simplefilter("error", UserWarning)
        path = Path(tmp) / "s.yaml"
        path.write_text(yaml.safe_dump(scenario))
        capsys.readouterr()
        status = cli.main(["validate", str(path)])
        _one_line(status, capsys.readouterr().err)
        if status:
            return
        _one_line(cli.main(["steady", str(path)]), capsys.readouterr().err)
        cost = sum(c["cpu_s"] for c in trajsim.load_scenario(str(path)).cost())
        assume(cost < 20)
        status = cli.main(["run", str(path), "--out", f"{tmp}/run", "--threads", "1"])
        _one_line(status, capsys.readouterr().err)
        if status:
            return
        summary = pd.read_parquet(f"{tmp}/run/summary.parquet")
        assert not summary.isna().any().any(), summary.columns[summary.isna().any()].tolist()
        _one_line(cli.main(["report", f"{tmp}/run"]), capsys.readouterr().err)
