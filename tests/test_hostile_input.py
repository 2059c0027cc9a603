"""Hostile and careless scenario input (issue #11, items 11-17): one ScenarioError naming the
key, never another exception, never a hang; and a Hypothesis fuzz of loading and --set."""

import os
import time

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trajsim.errors import TrajsimError
from trajsim.scenario import (
    SCHEMA,
    ScenarioError,
    load,
    override,
    parse_override,
    parse_yaml,
    resolve,
)

BASE = "model: {N: 4}\ntime: {t_end: 1}\n"


def load_text(tmp_path, text, overrides=()):
    """Load and check a scenario as ``trajsim validate`` does (resources included)."""
    path = tmp_path / "s.yaml"
    path.write_text(text)
    scenario = load(path, [parse_override(o) for o in overrides])
    scenario.check_resources()
    return scenario


# ---------------------------------------------------------------- 11: whole floats are integers

WHOLE_FLOATS = ("model: {N: 4.0}\ntime: {t_end: 1, n_samples: 11.0}\n"
                "run: {trajectories: 4.0, unit_size: 2.0, seed: 1.0}\n")
PLAIN = ("model: {N: 7}\ntime: {t_end: 1, n_samples: 11}\n"
         "run: {trajectories: 4, unit_size: 2, seed: 1}\n")


@pytest.mark.parametrize("text, overrides", [(WHOLE_FLOATS, []), (PLAIN, ["model.N=4.0"])])
def test_whole_floats_are_read_as_integers(tmp_path, text, overrides):
    scenario = load_text(tmp_path, text, overrides)
    point = scenario.points[0]
    assert point["model"]["N"] == 4 and isinstance(point["model"]["N"], int)
    for key in ("trajectories", "unit_size", "seed"):
        assert isinstance(point["run"][key], int)
    assert isinstance(point["time"]["n_samples"], int)
    plain = load_text(tmp_path, PLAIN.replace("N: 7", "N: 4"))
    assert scenario.hash() == plain.hash()


def test_whole_floats_in_a_sweep_are_integers(tmp_path):
    scenario = load_text(tmp_path, BASE + "sweep: {model.N: [4.0, 5.0]}\n")
    assert [p["model"]["N"] for p in scenario.points] == [4, 5]
    assert scenario.resolved["sweep"]["model.N"] == [4, 5]


# ---------------------------------------------------------------- 12-15: a table of bad input

BOMB = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"{chr(98 + k)}: &{chr(98 + k)} [*{chr(97 + k)}, *{chr(97 + k)}, *{chr(97 + k)}, "
    f"*{chr(97 + k)}, *{chr(97 + k)}, *{chr(97 + k)}, *{chr(97 + k)}, *{chr(97 + k)}, "
    f"*{chr(97 + k)}, *{chr(97 + k)}]\n" for k in range(9))

HOSTILE = {
    # 12: sizes that cannot fit
    "10**15 trajectories": (BASE + "run: {trajectories: 1000000000000000}", "run.trajectories"),
    "10**9 samples": ("model: {N: 4}\ntime: {t_end: 1, n_samples: 1000000000}", "time.n_samples"),
    "odd N, endless time": ("model: {N: 41, r: 3}\ntime: {t_end: 1.0e300}", "time.t_end"),
    "odd N, long at large r": ("model: {N: 41, r: 4}\ntime: {t_end: 1.0e8}", "time.t_end"),
    "copies beyond memory": (BASE.replace("t_end: 1", "t_end: 1000") + "measurement: "
                             "{kind: copies, period: 0.001, shots: 1000000}", "time.n_samples"),
    "events beyond memory": ("model: {N: 41, r: 4}\ntime: {t_end: 5000}\nrun: {unit_size: 64}",
                             "run.store"),
    # 13: alias bombs
    "alias bomb": (BOMB + BASE, "expands"),
    "alias bomb in a sweep": (BOMB.replace("\n", "\n  ").replace("a: &a", "sweep:\n  a: &a", 1)
                              + "\n" + BASE, "expands"),
    # 14: overflow
    "N 1e400": ("model: {N: 1e400}\ntime: {t_end: 1}", "model.N"),
    "N 1.0e308": ("model: {N: 1.0e308}\ntime: {t_end: 1}", "model.N"),
    "m 1.0e308": ("model: {N: 4}\ninitial_state: {m: 1.0e308}\ntime: {t_end: 1}",
                  "initial_state.m"),
    "j 1.0e308": ("model: {N: 4}\ninitial_state: {j: 1.0e308}\ntime: {t_end: 1}",
                  "initial_state.j"),
    "r 400 with chi": ("model: {N: 4, Gamma: 0, r: 400, chi: 1}\ntime: {t_end: 1}", "model.r"),
    "t_end 1e400": ("model: {N: 4}\ntime: {t_end: 1e400}", "time.t_end"),
    "r 1e308": ("model: {N: 4, r: 1.0e308}\ntime: {t_end: 1}", "model.r"),
    "Gamma 1e308": ("model: {N: 4, Gamma: 1.0e308}\ntime: {t_end: 1}", "model.Gamma"),
    # 15: values JSON cannot hold, odd keys, deep nesting, duplicates
    "a date": ("model: {N: 2021-01-01}\ntime: {t_end: 1}", "model.N"),
    "binary": ("model: {N: !!binary aGVsbG8=}\ntime: {t_end: 1}", "model.N"),
    "a set": ("model: {N: !!set {a: null}}\ntime: {t_end: 1}", "model.N"),
    "a date in a sweep": (BASE + "sweep: {model.r: [2021-01-01]}", "sweep.model.r"),
    "integer sweep key": (BASE + "sweep: {1: [1, 2]}", "sweep.1"),
    "null sweep key": (BASE + "sweep: {null: [1, 2]}", "sweep"),
    "nested 900 deep": ("a: " + "[" * 900 + "]" * 900 + "\n" + BASE, "nested too deeply"),
    "nested 40 deep": ("a: " + "[" * 40 + "]" * 40 + "\n" + BASE, "nested too deeply"),
    "duplicate key": ("model: {N: 4, N: 5}\ntime: {t_end: 1}", "duplicate key 'N'"),
    "duplicate section": ("model: {N: 4}\ntime: {t_end: 1}\nmodel: {N: 5}", "duplicate key 'model'"),
    "a tag PyYAML would run": ("!!python/object/apply:os.system ['true']", "not valid YAML"),
    # the hybrid model (issue 15)
    "hybrid, endless time": ("model: {kind: hybrid, N: 4, g: 0.1}\ntime: {t_end: 1.0e300}",
                             "time.t_end"),
    "hybrid, 10**6 spins": ("model: {kind: hybrid, N: 1000000, g: 0.1}\ntime: {t_end: 1}",
                            "model.N"),
    "hybrid, r 5": ("model: {kind: hybrid, N: 4, g: 0.1, r: 5}\ntime: {t_end: 1}", "model.r"),
    "hybrid key on the spin model": (BASE.replace("N: 4", "N: 4, kappa_sqz: 2"),
                                     "model.kappa_sqz"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_input_is_one_line_naming_the_key(tmp_path, case):
    text, expected = HOSTILE[case]
    started = time.perf_counter()
    with pytest.raises(ScenarioError) as caught:
        load_text(tmp_path, text)
    assert time.perf_counter() - started < 5, "validation must not hang"
    message = str(caught.value)
    assert expected in message and "\n" not in message, message


@pytest.mark.parametrize("content, expected", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a UTF-8 text file"),
    ("model: {N: 4}\ntime: {t_end: 1}\n".encode("utf-16"), "not a UTF-8 text file"),
])
def test_binary_files_are_named(tmp_path, content, expected):
    path = tmp_path / "weird.yaml"
    path.write_bytes(content)
    with pytest.raises(ScenarioError, match=expected) as caught:
        load(path)
    assert "weird.yaml" in str(caught.value)


@pytest.mark.parametrize("text", ["model.N=2021-01-01", "model.r=!!binary aGVsbG8=",
                                  "model.r=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"])
def test_hostile_overrides_are_one_line(tmp_path, text):
    with pytest.raises(ScenarioError) as caught:
        load_text(tmp_path, BASE, [text])
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------- 16: numbers as physicists write them

def test_scientific_notation_is_a_number(tmp_path):
    scenario = load_text(tmp_path, "model: {N: 4, gamma_phi: 1e-3, Gamma: 2E+0}\n"
                                   "time: {t_end: 5e1}\n", ["loss.rate_per_spin=2.5e-4"])
    point = scenario.points[0]
    assert point["model"]["gamma_phi"] == 1e-3 and point["model"]["Gamma"] == 2.0
    assert point["time"]["t_end"] == 50.0 and point["loss"]["rate_per_spin"] == 2.5e-4


# ---------------------------------------------------------------- 17: --set and sweeps

def test_set_on_a_swept_key_replaces_its_axis(tmp_path):
    text = BASE + "sweep: {model.N: [4, 5], model.r: [0.5, 1.0]}\n"
    scenario = load_text(tmp_path, text, ["model.N=6"])
    assert [(p["model"]["N"], p["model"]["r"]) for p in scenario.points] == [(6, 0.5), (6, 1.0)]
    assert list(scenario.swept) == ["model.r"]
    scenario = load_text(tmp_path, text, ["sweep.model.r=[2.5]"])
    assert [(p["model"]["N"], p["model"]["r"]) for p in scenario.points] == [(4, 2.5), (5, 2.5)]
    scenario = load_text(tmp_path, BASE, ["sweep.loss.rate_per_spin=[0.01, 0.02]"])
    assert [p["loss"]["rate_per_spin"] for p in scenario.points] == [0.01, 0.02]
    with pytest.raises(ScenarioError, match="sweep.model.r"):
        load_text(tmp_path, BASE, ["sweep.model.r=2.5"])  # an axis is a list


# ---------------------------------------------------------------- fuzz

KEYS = st.sampled_from(["model", "time", "N", "r", "t_end", "sweep", "model.N", "run", "seed",
                        "trajectories", "loss", "times", "kind", "x", ""])
LEAVES = (st.none() | st.booleans() | st.integers(-10**20, 10**20)
          | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
DOCUMENTS = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(KEYS, inner, max_size=5), max_leaves=30)


def scenario_like():
    """Mostly valid scenarios with random values put in: they reach the deep checks."""
    section = st.dictionaries(st.sampled_from(sorted(
        {k for node in SCHEMA["properties"].values() for k in node.get("properties", {})})),
        LEAVES, max_size=4)
    return st.fixed_dictionaries({"model": section.map(lambda d: {"N": 3, **d}),
                                  "time": section.map(lambda d: {"t_end": 1.0, **d})},
                                 optional={"run": section, "loss": section,
                                           "initial_state": section, "sweep": DOCUMENTS})


def _load_or_refuse(document, overrides=()):
    started = time.perf_counter()
    try:
        text = yaml.safe_dump(document)
        raw = parse_yaml(text, "fuzz")
        if isinstance(raw, dict):
            for key, value in overrides:
                override(raw, key, value)
        resolve(raw).check_resources()
    except TrajsimError as err:
        assert "\n" not in str(err)
    assert time.perf_counter() - started < 2.0


#: TRAJSIM_FUZZ_EXAMPLES=3000 for a longer search (passed on 2026-11-25).
FUZZ = settings(max_examples=int(os.environ.get("TRAJSIM_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(DOCUMENTS | scenario_like())
def test_fuzz_loading_returns_a_scenario_or_a_user_error(document):
    _load_or_refuse(document)


@FUZZ
@given(st.lists(st.text(max_size=40), max_size=3))
def test_fuzz_set_strings_return_a_scenario_or_a_user_error(texts):
    overrides = []
    try:
        overrides = [parse_override(text) for text in texts]
    except TrajsimError as err:
        assert "\n" not in str(err)
        return
    _load_or_refuse({"model": {"N": 3}, "time": {"t_end": 1.0}}, overrides)


def test_cost_estimate_follows_the_odd_jump_rate(tmp_path):
    """Odd N in the sensing regime jumps at the exact steady rate (2j+1)/sum 1/lambda; the
    estimate is that rate times t_end, times the fitted cost of a jump."""
    from trajsim import exact
    from trajsim.engines import UNIT_OVERHEAD_S
    from trajsim.engines.jumps import seconds_per_jump

    scenario = load_text(tmp_path, "model: {N: 21, r: 2.5}\ntime: {t_end: 4}\n"
                                   "run: {trajectories: 10}\n")
    [cost] = scenario.cost()
    lam = np.concatenate(exact.build_block(21, 21, exact.Rates(r=2.5)).lam)
    assert cost["jumps_per_trajectory"] == pytest.approx(4 * 22 / np.sum(1 / lam), rel=1e-9)
    per_trajectory = (cost["jumps_per_trajectory"] + 101) * seconds_per_jump(21)  # 101 samples
    assert cost["cpu_s"] == pytest.approx(10 * per_trajectory + UNIT_OVERHEAD_S)  # one unit
    even = load_text(tmp_path, "model: {N: 20, r: 2.5}\ntime: {t_end: 4}\n")
    assert even.cost()[0]["jumps_per_trajectory"] == 0.0  # the dark state, no loss: no jumping
    lossy = load_text(tmp_path, "model: {N: 21, r: 2.5}\ntime: {t_end: 4}\n"
                                "loss: {rate_per_spin: 0.01, times: [1.0]}\n")
    kappa, rate = 0.21, cost["jumps_per_trajectory"] / 4  # odd for 1, Poisson decay, flip at 1
    bias = np.exp(-2 * kappa)  # E[parity sign] at t = 1, before the scripted flip
    odd = (1 + (1 - bias) / (2 * kappa)) / 2 + 3 * (1 - bias * (1 - np.exp(-6 * kappa)) / (6 * kappa)) / 2
    assert lossy.cost()[0]["jumps_per_trajectory"] == pytest.approx(rate * odd, rel=1e-9)


NUMBERS = (st.none() | st.integers(-10**6, 10**9) | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([0, 1e-300, 1e300, -0.0, 5.0, "auto"]))


@FUZZ
@given(st.fixed_dictionaries({}, optional={key: NUMBERS for key in (
    "N", "r", "g", "kappa_sqz", "kappa_int", "Delta_c", "n_max", "gamma_phi", "gamma_rel",
    "cavity_basis")}),
       st.sampled_from([{}, {"rate_per_spin": 0.1}, {"times": [0.5]}]),
       st.sampled_from([{}, {"kind": "weak", "period": 0.1, "sigma": 0.5}]))
def test_fuzz_hybrid_models_return_a_scenario_or_a_user_error(model, loss, measurement):
    """model.kind: hybrid with random and extreme values: a scenario or one line, quickly."""
    _load_or_refuse({"model": {"kind": "hybrid", "N": 3, "g": 0.1, **model},
                     "time": {"t_end": 1.0}, "loss": loss, "measurement": measurement})
