"""S_y instruments in both engines (jump trajectories and the record-level engine) against the
exact instrument references (trajsim.instruments): outcome distributions, the first outcome
after a loss, joint distributions of successive outcomes, and the ensemble after unread
measurements."""

import itertools

import numpy as np
import pandas as pd
import pytest
from conftest import assert_frequency_matches

import trajsim
from trajsim import dicke, exact, instruments
from trajsim.scenario import MIN_SIGMA
from trajsim.model import Rates

T1, T_LOSS, T2 = 0.4, 0.7, 1.0
EDGES = np.array([-np.inf, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, np.inf])


ENGINES = ["jumps", "record"]


def scenario(N, kind, trajectories, sigma=None, times=(T1, T2), loss_times=(T_LOSS,),
             engine="jumps"):
    return {"model": {"N": N, "r": 0.8, "gamma_coll": 0.1},
            "initial_state": {"kind": "css", "theta": 2.0, "phi": 0.3},
            "loss": {"times": list(loss_times)},
            "time": {"t_end": 1.2, "n_samples": 13},
            "measurement": {"kind": kind, "times": list(times), "sigma": sigma},
            "run": {"trajectories": trajectories, "seed": 17, "unit_size": 500, "engine": engine}}


def records(N, kind, trajectories, sigma=None, engine="jumps"):
    """outcomes[trajectory, measurement] and the run."""
    result = trajsim.run(scenario(N, kind, trajectories, sigma, engine=engine), progress=False)
    table = result.measurements
    return table.pivot(index="trajectory", columns="t", values="outcome").to_numpy(), result


def exact_start(N):
    rates = Rates(r=0.8, gamma_coll=0.1)
    propagator = exact.Propagator(rates, N, N, loss_times=[T_LOSS])
    psi = dicke.coherent_spin_state(N, 2.0, 0.3)
    vec = propagator.advance(propagator.initial(np.outer(psi, psi.conj())), 0.0, T1)
    return propagator, vec, psi


def outcomes_for(kind, N, sigma=None):
    """(labels per outcome, the outcome weights, a function mapping outcomes to labels)."""
    if kind == "projective":
        values = instruments.outcome_values(N)
        return values, [instruments.projective(v) for v in values], \
            lambda o: np.searchsorted(values, o - 1e-9)
    bins = list(itertools.pairwise(EDGES))
    return np.arange(len(bins)), [instruments.weak(a, b, sigma) for a, b in bins], \
        lambda o: np.searchsorted(EDGES, o) - 1


@pytest.mark.parametrize("N, engine", [(6, "jumps"), (7, "jumps"), (7, "record"),
                                       pytest.param(6, "record", marks=pytest.mark.slow)])
def test_projective_first_outcome_and_after_a_loss(N, engine):
    """One run: the first outcome, the outcome after the scripted loss and their joint law."""
    outcomes, result = records(N, "projective", 4000, engine=engine)
    propagator, vec, _ = exact_start(N)
    labels, weights, label_of = outcomes_for("projective", N)
    joint = instruments.joint_distribution(propagator, vec, T1, T2, weights, weights)
    first, second = label_of(outcomes[:, 0]), label_of(outcomes[:, 1])
    assert np.allclose(outcomes, np.round(2 * outcomes) / 2)  # outcomes are m_y values exactly
    assert_frequency_matches(first[:, None] == np.arange(len(labels)), joint.sum(axis=1),
                             f"first outcome, N={N}")
    assert_frequency_matches(second[:, None] == np.arange(len(labels)), joint.sum(axis=0),
                             f"outcome after the loss, N={N}")
    pairs = first * len(labels) + second
    assert_frequency_matches(pairs[:, None] == np.arange(len(labels) ** 2), joint.ravel(),
                             f"joint outcomes, N={N}")
    m = result.measurements
    assert (m.groupby("t").N.unique().map(list).to_dict() == {T1: [N], T2: [N - 1]})


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("N", [6, 7])
def test_weak_outcomes_binned(N, engine):
    sigma = 0.7
    outcomes, _ = records(N, "weak", 4000, sigma=sigma, engine=engine)
    propagator, vec, _ = exact_start(N)
    labels, weights, label_of = outcomes_for("weak", N, sigma)
    joint = instruments.joint_distribution(propagator, vec, T1, T2, weights, weights)
    assert joint.sum() == pytest.approx(1.0, abs=1e-9)
    first, second = label_of(outcomes[:, 0]), label_of(outcomes[:, 1])
    assert_frequency_matches(first[:, None] == labels, joint.sum(axis=1), f"weak first, N={N}")
    assert_frequency_matches(second[:, None] == labels, joint.sum(axis=0), f"weak second, N={N}")
    pairs = first * len(labels) + second
    assert_frequency_matches(pairs[:, None] == np.arange(len(labels) ** 2), joint.ravel(),
                             f"weak joint, N={N}")


def _ensemble_check(result, reference, label):
    summary = result.summary
    for name in ("N", "Sx", "Sy", "Sz", "Sy2", "Sz2", "SySz"):
        tol = 5 * summary[f"{name}_sem"] + 1e-9 * (1 + np.abs(reference[name]))
        bad = np.abs(summary[f"{name}_mean"] - reference[name]) > tol
        assert not bad.any(), (label, name, summary.t[bad].tolist())


@pytest.mark.parametrize("engine", ["jumps", pytest.param("record", marks=pytest.mark.slow)])
@pytest.mark.parametrize("kind, sigma", [("projective", None),
                                         pytest.param("weak", 0.7, marks=pytest.mark.slow)])
def test_the_ensemble_after_measurements_is_the_non_selective_instrument(kind, sigma, engine):
    result = trajsim.run(scenario(7, kind, 3000, sigma, times=(0.3, 0.6, 0.9), engine=engine),
                         progress=False)
    propagator, _, psi = exact_start(7)
    reference = instruments.measured_evolution(
        propagator, np.outer(psi, psi.conj()), result.summary.t.to_numpy(),
        np.array([0.3, 0.6, 0.9]), instruments.non_selective(kind, sigma))
    _ensemble_check(result, reference, kind)


@pytest.mark.slow
@pytest.mark.parametrize("sigma, limit", [(1e3, "unmeasured"), (MIN_SIGMA, "projective")])
def test_weak_limits(sigma, limit):
    """sigma -> infinity leaves the ensemble unmeasured; sigma -> 0 is projective."""
    times = np.array([0.3, 0.6, 0.9])
    result = trajsim.run(scenario(6, "weak", 3000, sigma, times=tuple(times)), progress=False)
    propagator, _, psi = exact_start(6)
    rho0 = np.outer(psi, psi.conj())
    t = result.summary.t.to_numpy()
    if limit == "unmeasured":
        reference = exact.evolve(Rates(r=0.8, gamma_coll=0.1), 6, 6, rho0, t, loss_times=[T_LOSS])
    else:
        reference = instruments.measured_evolution(propagator, rho0, t, times,
                                                   instruments.non_selective("projective"))
    _ensemble_check(result, reference, limit)


def test_copies_leave_the_state_alone_and_follow_the_born_rule():
    """k copies: k outcomes per time from the state, and the trajectories are those of an
    unmeasured run (the same jump stream, bit for bit)."""
    copies = trajsim.run({**scenario(7, "copies", 2000), "measurement":
                          {"kind": "copies", "times": [T1, T2], "shots": 3}}, progress=False)
    plain = trajsim.run({**scenario(7, "none", 2000), "measurement": {"kind": "none"}},
                        progress=False)
    pd.testing.assert_frame_equal(
        copies.trajectories.drop(columns=[]).reset_index(drop=True),
        plain.trajectories.reset_index(drop=True), check_exact=False, rtol=1e-12, atol=1e-12)
    m = copies.measurements
    assert len(m) == 2000 * 2 * 3
    propagator, vec, _ = exact_start(7)
    labels, weights, label_of = outcomes_for("projective", 7)
    p = instruments.distribution(propagator, vec, weights)
    first = label_of(m[m.t == T1].outcome.to_numpy())
    assert_frequency_matches(first[:, None] == np.arange(len(labels)), p, "copies")


@pytest.mark.parametrize("kind", ["copies", "none"])
def test_record_engine_with_nothing_conditioned_is_the_exact_evolution(kind):
    """Without back-action and with a scripted loss, every record-level trajectory carries the
    exact ensemble state: its samples equal exact.evolve to 1e-10."""
    measurement = ({"kind": "copies", "times": [T1, T2], "shots": 2} if kind == "copies"
                   else {"kind": "none"})
    result = trajsim.run({**scenario(7, kind, 3, engine="record"), "measurement": measurement},
                         progress=False)
    _, _, psi = exact_start(7)
    t = result.summary.t.to_numpy()
    reference = exact.evolve(Rates(r=0.8, gamma_coll=0.1), 7, 7, np.outer(psi, psi.conj()), t,
                             loss_times=[T_LOSS])
    traj = result.trajectories
    for name in ("N", "Sx", "Sy", "Sz", "Sx2", "Sy2", "Sz2", "SxSy", "SxSz", "SySz"):
        values = traj.pivot(index="trajectory", columns="t", values=name).to_numpy()
        assert np.abs(values - reference[name]).max() < 1e-10, name
    events = result.events
    assert events.kind.eq("loss").all() and events.t.eq(T_LOSS).all() and len(events) == 3


def test_record_engine_choice():
    """auto takes the record-level engine only with an instrument and only where it is cheaper;
    asking for it where it cannot run is one line naming run.engine."""
    base = scenario(7, "projective", 10, engine="auto")
    assert trajsim.load_scenario(base).points[0]["run"]["engine"] == "jumps"  # r = 0.8: cheap
    sensing = {**base, "model": {"N": 9, "r": 4.0}, "time": {"t_end": 50.0, "n_samples": 11},
               "loss": {"times": []},  # odd N throughout: ~10^5 jumps per trajectory
               "measurement": {"kind": "projective", "period": 0.5},
               "run": {**base["run"], "trajectories": 1000}}
    assert trajsim.load_scenario(sensing).points[0]["run"]["engine"] == "record"
    plain = {**sensing, "measurement": {"kind": "none"}}
    assert trajsim.load_scenario(plain).points[0]["run"]["engine"] == "jumps"
    local = {**sensing, "model": {"N": 9, "r": 4.0, "gamma_phi": 0.1}}
    assert trajsim.load_scenario(local).points[0]["run"]["engine"] == "jumps"
    with pytest.raises(trajsim.TrajsimError, match="run.engine: .*local dephasing"):
        trajsim.load_scenario({**local, "run": {**local["run"], "engine": "record"}})
    big = {**sensing, "model": {"N": 121, "r": 4.0}}  # dense propagators of ~17 GiB
    assert trajsim.load_scenario(big).points[0]["run"]["engine"] == "jumps"
    with pytest.raises(trajsim.TrajsimError, match="run.engine: .* GiB"):
        trajsim.load_scenario({**big, "run": {**big["run"], "engine": "record"}})
    # auto and jumps hash alike (run directories from before run.engine still resume)
    assert trajsim.load_scenario(base).hash() == trajsim.load_scenario(
        {**base, "run": {**base["run"], "engine": "jumps"}}).hash()


def test_measurement_keys_are_checked():
    with pytest.raises(trajsim.TrajsimError, match="period or times"):
        trajsim.load_scenario({**scenario(4, "projective", 1), "measurement": {"kind": "projective"}})
    with pytest.raises(trajsim.TrajsimError, match="measurement.sigma"):
        trajsim.load_scenario(scenario(4, "weak", 1))
    with pytest.raises(trajsim.TrajsimError, match="measurement.shots"):
        trajsim.load_scenario({**scenario(4, "projective", 1),
                               "measurement": {"kind": "projective", "period": 1, "shots": 2}})
    loaded = trajsim.load_scenario({**scenario(4, "projective", 1),
                                    "measurement": {"kind": "projective", "period": 0.5,
                                                    "times": [0.25, 1.0]}})
    from trajsim.scenario import measurement_times

    assert measurement_times(loaded.points[0]).tolist() == [0.25, 0.5, 1.0]


def test_report_of_a_record_engine_run_says_what_its_conditional_signal_is(tmp_path):
    run = {**scenario(5, "projective", 40, times=(0.3, 0.6, 0.9), engine="record"),
           "loss": {"rate_per_spin": 0.2}}
    trajsim.run(run, tmp_path / "rec", progress=False)
    from trajsim.report import write_report

    text = (write_report(tmp_path / "rec") / "report.md").read_text()
    assert "Detection from the measurement record" in text
    assert "record-level engine (run.engine: record) hold ⟨Sy²⟩ conditioned" in text
