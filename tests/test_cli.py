"""The trajsim command end to end: outputs, determinism, compile cache, and bad input."""

import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from trajsim import cli, dicke, exact
from trajsim.model import Rates

REPO = Path(__file__).resolve().parents[1]
SMALL = """
name: small
model: {N: 7, r: 0.8, Gamma: 1.0, gamma_coll: 0.2}
initial_state: {kind: dicke, m: -1.5}
loss: {rate_per_spin: 0.05, times: [1.0]}
time: {t_end: 2.0, n_samples: 11}
run: {trajectories: 600, seed: 11, store: trajectories, unit_size: 50}
"""


def trajsim(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "trajsim.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, check=False)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("small")
    scenario = base / "small.yaml"
    scenario.write_text(SMALL)
    res = trajsim("run", scenario, "--out", base / "run", "--threads", "2")
    assert res.returncode == 0, res.stderr
    return scenario, base / "run"


def test_output_contract(small_run):
    _, out = small_run
    summary = pd.read_parquet(out / "summary.parquet")
    observables = ["N", "j", "Sx", "Sy", "Sz", "Sx2", "Sy2", "Sz2", "SxSy", "SxSz", "SySz"]
    expected = ["point", "t"] + [f"{o}_{s}" for o in observables for s in ("mean", "sem")] + ["xi2"]
    assert list(summary.columns) == expected
    traj = pd.read_parquet(out / "trajectories.parquet")
    assert list(traj.columns) == ["point", "trajectory", "t"] + observables
    assert len(traj) == 600 * 11 and sorted(traj.trajectory.unique()) == list(range(600))
    events = pd.read_parquet(out / "events.parquet")
    assert list(events.columns) == ["point", "trajectory", "t", "kind", "channel", "N", "j",
                                    "j_before"]
    assert set(events.kind) == {"jump", "loss"}
    scripted = events[(events.kind == "loss") & (events.t == 1.0)]
    assert len(scripted) == 600 and scripted.N.max() == 6  # Poisson losses may come first
    points = pd.read_parquet(out / "points.parquet")
    assert list(points.point) == [0]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["scenario"]["model"]["N"] == 7
    # the summary is the mean of the stored trajectories
    grouped = traj.groupby("t")["Sy2"].mean().to_numpy()
    assert np.allclose(summary["Sy2_mean"], grouped, rtol=1e-12)


def test_j_distribution_file(tmp_path):
    """Local dephasing spreads j; j_distribution.parquet holds P(j) per sample (sums to 1)."""
    scenario = tmp_path / "local.yaml"
    scenario.write_text(SMALL.replace("gamma_coll: 0.2}", "gamma_coll: 0.2, gamma_phi: 0.4}"))
    res = trajsim("run", scenario, "--out", tmp_path / "run", "--trajectories", "100")
    assert res.returncode == 0, res.stderr
    dist = pd.read_parquet(tmp_path / "run" / "j_distribution.parquet")
    assert list(dist.columns) == ["point", "t", "j", "probability", "sem"]
    assert np.allclose(dist.groupby("t").probability.sum(), 1.0)
    at_start = dist[(dist.t == 0) & (dist.probability > 0)]
    assert at_start.set_index("j").probability.to_dict() == {3.5: 1.0}
    summary = pd.read_parquet(tmp_path / "run" / "summary.parquet")
    mean_j = (dist.j * dist.probability).groupby(dist.t).sum().to_numpy()
    assert np.allclose(mean_j, summary.j_mean)
    events = pd.read_parquet(tmp_path / "run" / "events.parquet")
    local = events[events.channel == "dephasing"]
    assert len(local) > 0 and set(local.j - local.j_before) <= {-1.0, 0.0, 1.0}


def test_summary_matches_exact_evolution(small_run):
    _, out = small_run
    summary = pd.read_parquet(out / "summary.parquet")
    psi = dicke.dicke_state(7, -3)
    ref = exact.evolve(Rates(r=0.8, gamma_coll=0.2), 7, 7, np.outer(psi, psi),
                       summary.t.to_numpy(), loss_rate=0.05, loss_times=[1.0])
    for name in ("N", "Sz", "Sx2", "Sy2"):
        tol = 5 * summary[f"{name}_sem"] + 1e-9 * (1 + np.abs(ref[name]))
        assert np.all(np.abs(summary[f"{name}_mean"] - ref[name]) <= tol), name


def test_one_axis_twisting_scenario_matches_exact_evolution(tmp_path):
    """scenarios/oat_twisting.yaml (App. G) through the CLI, against the exact master equation."""
    res = trajsim("run", REPO / "scenarios" / "oat_twisting.yaml", "--out", tmp_path / "oat",
                  "--set", "model.N=8", "--set", "time.n_samples=11", "--trajectories", "800")
    assert res.returncode == 0, res.stderr
    summary = pd.read_parquet(tmp_path / "oat" / "summary.parquet")
    psi = dicke.coherent_spin_state(8, np.pi / 2, 0.0)
    ref = exact.evolve(Rates(Gamma=0.0, chi=1.0, gamma_coll=0.01, gamma_rel=0.01), 8, 8,
                       np.outer(psi, psi.conj()), summary.t.to_numpy())
    for name in ("Sx", "Sz", "Sx2", "Sy2", "Sz2", "j"):
        tol = 5 * summary[f"{name}_sem"] + 1e-9 * (1 + np.abs(ref[name]))
        assert np.all(np.abs(summary[f"{name}_mean"] - ref[name]) <= tol), name


def test_new_default_keys_keep_old_run_directories_resumable():
    """model.chi and .kind, measurement.kind/period/times/sigma and run.engine joined schema v1
    later: at their defaults they are not part of the scenario hash, so a run directory written
    before them (manifest hash without them) still resumes."""
    import hashlib

    from trajsim import scenario as sc

    resolved = sc.resolve(yaml.safe_load(SMALL)).resolved
    before = {**resolved, "model": {k: v for k, v in resolved["model"].items()
                                    if k not in ("chi", "kind")},
              "measurement": {"shots": 0},
              "run": {k: v for k, v in resolved["run"].items() if k != "engine"}}
    text = json.dumps(before, sort_keys=True, separators=(",", ":"))
    assert sc.resolve(yaml.safe_load(SMALL)).hash() == hashlib.sha256(text.encode()).hexdigest()
    untwisted = SMALL.replace("r: 0.8", "r: 0.0")
    twisted = untwisted.replace("gamma_coll: 0.2", "gamma_coll: 0.2, chi: 1.0")
    assert sc.resolve(yaml.safe_load(twisted)).hash() != sc.resolve(yaml.safe_load(untwisted)).hash()
    point = sc.resolve(yaml.safe_load(SMALL)).points[0]
    point_before = {**point, "model": before["model"], "measurement": {"shots": 0},
                    "run": before["run"]}
    text = json.dumps(point_before, sort_keys=True, separators=(",", ":"))
    assert sc.resolve(yaml.safe_load(SMALL)).point_hash(0) == hashlib.sha256(text.encode()).hexdigest()
    measured = SMALL + "measurement: {kind: projective, period: 0.5}\n"
    assert sc.resolve(yaml.safe_load(measured)).hash() != sc.resolve(yaml.safe_load(SMALL)).hash()


def test_identical_files_for_one_thread_and_all_cores(small_run, tmp_path):
    scenario, out = small_run
    res = trajsim("run", scenario, "--out", tmp_path / "one", "--threads", "1")
    assert res.returncode == 0, res.stderr
    for name in ("summary.parquet", "points.parquet"):
        assert filecmp.cmp(out / name, tmp_path / "one" / name, shallow=False), name
    for name in ("trajectories.parquet", "events.parquet"):
        parts = sorted(p.name for p in (out / name).iterdir())
        assert parts == sorted(p.name for p in (tmp_path / "one" / name).iterdir())
        _, mismatch, errors = filecmp.cmpfiles(out / name, tmp_path / "one" / name, parts,
                                                   shallow=False)
        assert not mismatch and not errors, (name, mismatch, errors)


def test_sweep_points(tmp_path):
    scenario = tmp_path / "sweep.yaml"
    scenario.write_text(SMALL.replace("m: -1.5", "theta: 2.0").replace("dicke", "css")
                        + "sweep: {model.N: [4, 5], model.r: [0.5, 1.0]}\n")
    res = trajsim("run", scenario, "--out", tmp_path / "run", "--trajectories", "20")
    assert res.returncode == 0, res.stderr
    points = pd.read_parquet(tmp_path / "run" / "points.parquet")
    assert points.to_dict("list") == {"point": [0, 1, 2, 3], "model.N": [4, 4, 5, 5],
                                      "model.r": [0.5, 1.0, 0.5, 1.0]}
    summary = pd.read_parquet(tmp_path / "run" / "summary.parquet")
    assert summary.groupby("point").N_mean.first().tolist() == [4, 4, 5, 5]


def assert_fresh_and_cached_runs_agree(tmp_path, text: str) -> None:
    """Run the scenario ``text`` twice with a new Numba cache (the first run compiles, the
    second loads): every Parquet file must have the same bytes."""
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(text)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    for name in ("fresh", "cached"):
        res = subprocess.run([sys.executable, "-m", "trajsim.cli", "run", scenario, "--out",
                              tmp_path / name, "--threads", "1"], env=env, capture_output=True,
                             text=True, check=False)
        assert res.returncode == 0, res.stderr
    files = sorted(p for p in (tmp_path / "fresh").rglob("*.parquet") if p.is_file())
    assert len(files) >= 5
    for path in files:
        relative = path.relative_to(tmp_path / "fresh")
        assert path.read_bytes() == (tmp_path / "cached" / relative).read_bytes(), relative


@pytest.mark.slow
def test_fresh_compilation_and_cached_kernels_give_identical_files(tmp_path):
    """The first run on a machine compiles the kernels, later runs (and other MPI ranks) load them
    from Numba's cache: both must write the same bytes."""
    assert_fresh_and_cached_runs_agree(
        tmp_path, SMALL.replace("trajectories: 600", "trajectories: 40")  # complex amplitudes
        .replace("{kind: dicke, m: -1.5}", "{kind: css, theta: 2.0, phi: 0.3}"))


GROUPED = """
name: grouped_small
model: {r: 1.3, gamma_coll: 0.2, groups: [{N: 3, delta: 0.6}, {N: 4, delta: -0.2, weight: 0.7}]}
time: {t_end: 3, n_samples: 7}
loss: {rate_per_spin: 0.1, times: [1.5]}
measurement: {kind: weak, sigma: 0.8, period: 0.5}
run: {trajectories: 30}
"""


@pytest.mark.slow
def test_fresh_compilation_and_cached_kernels_give_identical_grouped_files(tmp_path):
    """The same for the grouped engine, whose eigenmode kernels vectorise (``compiled.modes``)."""
    assert_fresh_and_cached_runs_agree(tmp_path, GROUPED)


HYBRID_SCENARIO = """
name: hybrid_small
model: {kind: hybrid, N: 40, r: 0.4, g: 0.08, kappa_int: 0.1, n_max: auto}
time: {t_end: 4, n_samples: 9}
loss: {rate_per_spin: 0.01}
measurement: {kind: weak, sigma: 2.0, times: [3.5]}
run: {trajectories: 30}
"""


@pytest.mark.slow
def test_fresh_compilation_and_cached_kernels_give_identical_hybrid_files(tmp_path):
    """The same for the hybrid engine's Krylov steps (windows of the Dicke index, the shared
    no-jump path, a loss and a measurement)."""
    assert_fresh_and_cached_runs_agree(tmp_path, HYBRID_SCENARIO)


def test_second_run_does_not_recompile(small_run, tmp_path):
    """Numba's on-disk cache: a fresh process loads every kernel instead of compiling it, and
    compiles none of a typed list's methods (made from Python, they are compiled in every
    process, outside the cache: 0.3-0.5 s), running the spin engine and the hybrid engine."""
    scenario, _ = small_run
    hybrid = {"name": "h", "model": {"kind": "hybrid", "N": 3, "g": 0.3, "n_max": 4,
                                     "gamma_phi": 0.2},
              "loss": {"times": [0.5]}, "time": {"t_end": 1.0, "n_samples": 3},
              "run": {"trajectories": 4}}

    def process(out):
        code = f"""
import importlib, pkgutil, sys
from numba.typed import typedlist
import trajsim.compiled
from trajsim import runner, scenario
runner.run(scenario.load({str(scenario)!r}), {str(out / 'spin')!r}, threads=1)
runner.run(scenario.load({hybrid!r}), {str(out / 'hybrid')!r}, threads=1)
modules = [importlib.import_module('trajsim.compiled.' + m.name)
           for m in pkgutil.iter_modules(trajsim.compiled.__path__)]
compiled = [f for module in modules for f in vars(module).values() if hasattr(f, 'stats')]
assert len(compiled) > 60, len(compiled)  # the check below looks at every kernel
misses = {{f.__name__: dict(f.stats.cache_misses) for f in compiled if f.stats.cache_misses}}
lists = {{name: f.signatures for name, f in vars(typedlist).items()
         if isinstance(getattr(f, 'signatures', None), list) and f.signatures}}
print(misses, lists)
sys.exit(1 if misses or lists else 0)
"""
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=False)

    process(tmp_path / "first")  # fills the cache with the hybrid kernels (small_run: spin)
    res = process(tmp_path / "again")
    assert res.returncode == 0, res.stdout + res.stderr


BAD = {
    "unknown key": ("model: {N: 4, gama_coll: 0.1}\ntime: {t_end: 1}", "did you mean 'gamma_coll'"),
    "negative N": ("model: {N: -3}\ntime: {t_end: 1}", "model.N"),
    "non-integer N": ("model: {N: 4.5}\ntime: {t_end: 1}", "model.N"),
    "negative rate": ("model: {N: 4, gamma_coll: -1}\ntime: {t_end: 1}", "model.gamma_coll"),
    "NaN rate": ("model: {N: 4, Gamma: .nan}\ntime: {t_end: 1}", "model.Gamma"),
    "|m| > j": ("model: {N: 4}\ninitial_state: {m: -3}\ntime: {t_end: 1}", "initial_state.m"),
    "one sample": ("model: {N: 4}\ntime: {t_end: 1, n_samples: 1}", "time.n_samples"),
    "not YAML": ("model: {N: 4\ntime: [", "not valid YAML"),
    "empty": ("", "empty"),
    "too large": ("model: {N: 10000000}\ntime: {t_end: 1}", "GiB"),
    "sweep typo": ("model: {N: 4}\ntime: {t_end: 1}\nsweep: {model.rr: [1, 2]}", "did you mean 'model.r'"),
    "sweep value": ("model: {N: 4}\ntime: {t_end: 1}\nsweep: {model.N: [4, -1]}", "sweep point 1"),
    "missing section": ("model: {N: 4}", "'time' is a required property"),
    "twisting with squeezing": ("model: {N: 4, r: 0.5, chi: 1.0}\ntime: {t_end: 1}", "model.chi"),
    "no N": ("model: {r: 1}\ntime: {t_end: 1}", "model: 'N' is a required property"),
    "groups N": ("model: {N: 5, groups: [{N: 2}, {N: 2}]}\ntime: {t_end: 1}", "model.N: 5"),
    "groups local": ("model: {gamma_phi: 0.1, groups: [{N: 2}]}\ntime: {t_end: 1}",
                     "model.gamma_phi"),
    "groups weight": ("model: {groups: [{N: 2, weight: 0}]}\ntime: {t_end: 1}",
                      "model.groups.0.weight"),
    "groups steady": ("model: {groups: [{N: 2}]}\ninitial_state: {kind: steady}\n"
                      "time: {t_end: 1}", "initial_state.kind"),
    "groups record": ("model: {groups: [{N: 2}]}\nrun: {engine: record}\ntime: {t_end: 1}",
                      "run.engine"),
    "groups empty": ("model: {groups: []}\ntime: {t_end: 1}", "model.groups"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_one_line_exit_2(case, tmp_path, capsys):
    text, expected = BAD[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    for command in (["validate", path], ["run", path, "--out", tmp_path / "out"]):
        assert cli.main([str(arg) for arg in command]) == 2, case
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (case, lines)
        assert not (tmp_path / "out").exists()


def test_bad_input_end_to_end():
    """One case through a real process: the exit status and the single line on stderr."""
    res = trajsim("validate", REPO / "scenarios" / "missing.yaml")
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "no such scenario file" in res.stderr and "Traceback" not in res.stderr


def test_steady_without_dissipation_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "undamped.yaml"
    path.write_text("model: {N: 4, Gamma: 0, chi: 1.0}\ntime: {t_end: 1}")
    assert cli.main(["steady", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no unique steady state" in err


def test_missing_file_and_bad_override(tmp_path, capsys):
    assert cli.main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "no such scenario file" in capsys.readouterr().err
    path = tmp_path / "ok.yaml"
    path.write_text("model: {N: 4}\ntime: {t_end: 1}")
    assert cli.main(["validate", str(path), "--set", "model.r"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert cli.main(["validate", str(path), "--set", "model.Gama=2"]) == 2
    assert "did you mean 'Gamma'" in capsys.readouterr().err


def test_existing_results_are_never_overwritten(small_run, tmp_path):
    scenario, out = small_run
    before = (out / "summary.parquet").read_bytes()
    res = trajsim("run", scenario, "--out", out)
    assert res.returncode == 2 and "--resume" in res.stderr
    other = tmp_path / "other.yaml"
    other.write_text(SMALL.replace("seed: 11", "seed: 12"))
    res = trajsim("run", other, "--out", out, "--resume")
    assert res.returncode == 2 and "different scenario" in res.stderr
    assert (out / "summary.parquet").read_bytes() == before
