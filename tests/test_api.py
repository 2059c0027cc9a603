"""The Python API as a notebook uses it: trajsim.run / open_run / load_scenario and RunResult,
the same bytes as the command line, and mergeable UnitStats."""

import gc
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import trajsim
from trajsim.stats import UnitStats

REPO = Path(__file__).resolve().parents[1]
SCENARIO = {
    "name": "notebook",
    "model": {"N": 6, "r": 0.9, "gamma_coll": 0.1},
    "initial_state": {"kind": "css", "theta": 2.2, "phi": 0.4},
    "loss": {"rate_per_spin": 0.05, "times": [0.5]},
    "time": {"t_end": 1.5, "n_samples": 7},
    "run": {"trajectories": 30, "seed": 7, "unit_size": 8},
    "sweep": {"model.N": [6, 7]},
}


def parquet_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))
            if p.is_file()}


def test_a_dict_scenario_gives_the_command_lines_bytes(tmp_path):
    result = trajsim.run(SCENARIO, tmp_path / "api", threads=2, progress=False)
    yaml_file = tmp_path / "notebook.yaml"
    yaml_file.write_text(json.dumps(SCENARIO))  # JSON is YAML
    res = subprocess.run([sys.executable, "-m", "trajsim", "run", yaml_file, "--out",
                          tmp_path / "cli"], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert parquet_files(tmp_path / "api") == parquet_files(tmp_path / "cli")
    opened = trajsim.open_run(tmp_path / "cli")
    pd.testing.assert_frame_equal(opened.summary, result.summary)
    assert opened.manifest["scenario_hash"] == result.manifest["scenario_hash"]
    assert list(opened.points.columns) == ["point", "model.N"]
    table = opened.sweep_summary
    assert len(table) == 2 * 7 and (table.groupby("point")["model.N"].first() == [6, 7]).all()
    assert set(opened.trajectories.trajectory) == set(range(30))
    assert {"jump", "loss"} <= set(opened.events.kind)
    assert np.allclose(opened.j_distribution.groupby(["point", "t"]).probability.sum(), 1.0)


def test_out_none_runs_in_a_temporary_directory_that_lives_with_the_result():
    result = trajsim.run(SCENARIO, trajectories=8, seed=3, progress=False)
    path = result.path
    assert result.manifest["scenario"]["run"]["trajectories"] == 8
    assert result.manifest["seed"] == 3 and result.summary.Sz_mean.notna().all()
    del result
    gc.collect()
    assert not path.exists()


def test_load_scenario_takes_overrides_in_every_form():
    by_dict = trajsim.load_scenario(SCENARIO, {"model.r": 1.1, "sweep.model.N": [8]})
    by_text = trajsim.load_scenario(SCENARIO, ["model.r=1.1", "sweep.model.N=[8]"])
    by_pairs = trajsim.load_scenario(SCENARIO, [("model.r", 1.1), ("sweep.model.N", [8])])
    assert by_dict.hash() == by_text.hash() == by_pairs.hash()
    assert [(p["model"]["N"], p["model"]["r"]) for p in by_dict.points] == [(8, 1.1)]
    assert trajsim.load_scenario(by_dict) is by_dict
    with pytest.raises(trajsim.TrajsimError, match="model.r"):
        trajsim.load_scenario(SCENARIO, {"model.r": "strong"})


def test_open_run_refuses_what_is_not_a_run(tmp_path):
    with pytest.raises(trajsim.TrajsimError, match="not a trajsim run directory"):
        trajsim.open_run(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(trajsim.TrajsimError, match="not a trajsim run directory"):
        trajsim.open_run(tmp_path / "file")


def test_numpy_values_read_as_the_numbers_they_hold():
    """A notebook's np.int64, np.float32, 0-d arrays and np.linspace sweeps are numbers and
    lists; the scenario is the one written with Python's own."""
    written = {**SCENARIO, "model": {"N": np.int64(6), "r": np.float64(0.9),
                                     "gamma_coll": np.array(0.1)},
               "sweep": {"model.N": np.arange(6, 8)}}
    by_numpy = trajsim.load_scenario(written, {"time.t_end": np.float32(1.5)})
    assert by_numpy.hash() == trajsim.load_scenario(SCENARIO).hash()
    with pytest.raises(trajsim.TrajsimError, match="model.r"):
        trajsim.load_scenario({**SCENARIO, "model": {"N": 6, "r": np.array([1.0, 2.0])}})


@pytest.mark.parametrize("threads", [0, -2, 1.5, True, "2"])
def test_bad_thread_counts_are_refused(threads):
    with pytest.raises(trajsim.TrajsimError, match="threads"):
        trajsim.run(SCENARIO, threads=threads)


def _content_digest(df: pd.DataFrame) -> str:
    """SHA-256 of a table's columns, dtypes and every value's bits (independent of the Parquet
    writer's metadata, so a pyarrow upgrade alone does not change it)."""
    digest = hashlib.sha256(repr(list(zip(df.columns, map(str, df.dtypes)))).encode())
    digest.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


#: The quick start's tables as written by main on 2026-11-25 (numba 0.68.1, numpy 2.4.6): a
#: refactoring must leave every value's bits unchanged.  Changed once on purpose, by the kernels'
#: fixed-order sums and vectorised exp (issue 14): the same 22 512 events with times within
#: 5e-12 and samples within 1.4e-8 of the previous ones.
QUICKSTART = {"summary": "58cb3e384edc3c5c", "trajectories": "fa49353256c0c9bf",
              "events": "670cb6284faa8c52", "j_distribution": "89f3491bb2802574",
              "points": "cef481d2707ddf04"}


@pytest.mark.slow
def test_quickstart_tables_are_unchanged(tmp_path):
    """The quick start as it was before its weak readout (issue 20) still gives these bits."""
    scenario = yaml.safe_load((REPO / "scenarios" / "quickstart.yaml").read_text())
    del scenario["measurement"]
    result = trajsim.run(scenario, tmp_path / "qs", progress=False)
    tables = {name: getattr(result, name) for name in QUICKSTART}
    assert {name: _content_digest(df) for name, df in tables.items()} == QUICKSTART


def test_unit_stats_add_up_to_the_statistics_of_all_samples():
    rng = np.random.default_rng(5)
    samples = rng.normal(size=(23, 4, 11))
    samples[:, :, 1] = rng.integers(0, 3, size=(23, 4)) / 2  # j
    parts = [UnitStats.of(samples[a:b], N=4) for a, b in ((0, 7), (7, 8), (8, 23))]
    whole = UnitStats.of(samples, N=4)
    merged = parts[0] + parts[1] + parts[2]  # in unit order, as runs add them
    assert merged.n == 23
    assert np.allclose(merged.mean, whole.mean, rtol=1e-13, atol=1e-14)
    assert np.allclose(merged.M2, whole.M2, rtol=1e-12)
    assert np.allclose(merged.sem, samples.std(axis=0, ddof=1) / np.sqrt(23), rtol=1e-12)
    assert (merged.j_counts == whole.j_counts).all() and merged.j_counts.sum(axis=1).tolist() == [23] * 4
    again = UnitStats.from_arrays(merged.to_arrays())
    assert again.n == merged.n and (again.M2 == merged.M2).all()
    assert np.isnan(UnitStats.of(samples[:1], N=4).sem).all()


def test_a_run_made_on_a_bigger_machine_can_be_read_and_reported(tmp_path, monkeypatch):
    """Memory is checked when a run starts, not when its directory is read."""
    result = trajsim.run(SCENARIO, tmp_path / "run", trajectories=8, progress=False)
    monkeypatch.setattr("trajsim.engines.jumps.memory_budget", lambda: 1.0)  # a tiny machine
    with pytest.raises(trajsim.TrajsimError, match="GiB"):
        trajsim.run(SCENARIO, tmp_path / "other", trajectories=8, progress=False)
    from trajsim.report import load_run

    manifest, traj, _ = load_run(result.path)
    assert manifest["status"] == "done" and len(traj) == 2 * 8 * 7


def test_the_readme_scenario_table_is_generated_from_the_defaults():
    """scenario.DEFAULTS is the one place defaults live: the README holds the table that
    ``python -m trajsim.scenario_table`` prints, and the table covers every key."""
    from trajsim import scenario_table
    from trajsim.scenario import DEFAULTS

    text = (REPO / "README.md").read_text()
    readme = text[text.index("| key | meaning | allowed | default |"):].split("\n\n")[0]
    assert readme == scenario_table.table(), "regenerate: python -m trajsim.scenario_table"
    documented = {key for keys, *_ in scenario_table.ROWS for key in keys}
    assert {f"{section}.{key}" for section, values in DEFAULTS.items() if section != "sweep"
            for key in values} <= documented


def test_points_are_typed_and_read_like_mappings():
    scenario = trajsim.load_scenario(SCENARIO)
    point = scenario.points[1]
    assert point["model"]["N"] == 7 and dict(point)["model"]["N"] == 7
    assert point.rates().gamma_coll == 0.1 and point.rates().r == 0.9
    assert point.time_grid().tolist() == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
    assert point.detection()["hold"] == 0.5
    with pytest.raises(AttributeError):
        point.values = {}  # frozen


def test_auto_unit_size_resolves_per_point_and_resumes(tmp_path):
    """run.unit_size: auto becomes a number per point (units of ~10 CPU s, at least 40 per
    point), recorded in the manifest; a finished run of it checks as whole on --resume."""
    from trajsim.engines import AUTO_MIN_UNITS

    scenario = trajsim.load_scenario(SCENARIO, {"run.unit_size": "auto", "run.trajectories": 120,
                                                "sweep.model.N": [4, 5]})
    assert [p["run"]["unit_size"] for p in scenario.points] == [120 // AUTO_MIN_UNITS] * 2
    result = trajsim.run(scenario, tmp_path / "auto", progress=False)
    assert [(p["unit_size"], p["units"]) for p in result.manifest["points"]] == [(3, 40)] * 2
    again = trajsim.run(scenario, tmp_path / "auto", resume=True, progress=False)
    pd.testing.assert_frame_equal(again.summary, result.summary)
    with pytest.raises(trajsim.TrajsimError, match="run.unit_size"):
        trajsim.load_scenario(SCENARIO, {"run.unit_size": "big"})


def test_units_without_events_read_together_with_units_with_events():
    """The even-N dark state never jumps, so only the units with a Poisson loss have events: a
    unit's empty text columns are written as text, and the table reads as one (it used to fail
    with 'Unsupported cast from large_string to null')."""
    scenario = {"name": "dark", "model": {"N": 4, "r": 1.0}, "initial_state": {"kind": "steady"},
                "loss": {"rate_per_spin": 0.05}, "time": {"t_end": 1.0, "n_samples": 3},
                "run": {"trajectories": 16, "unit_size": 2}}
    result = trajsim.run(scenario, threads=1)
    units = result.trajectories.trajectory // 2
    with_events = set(result.events.trajectory // 2)
    assert 0 < len(with_events) < units.nunique()
    assert "loss" in set(result.events.kind) and result.events.channel.notna().all()


def test_the_import_paths_from_before_the_engines_package_still_work():
    """trajsim.engine (now trajsim.compiled), trajsim.record_engine and trajsim.hybrid_engine
    (now in trajsim.engines): the same module objects, not second copies."""
    import trajsim.compiled.kernels
    import trajsim.engine.kernels
    from trajsim import engines
    from trajsim.hybrid_engine import HYBRID
    from trajsim.record_engine import RECORD

    assert trajsim.engine.kernels is trajsim.compiled.kernels
    assert HYBRID is engines.hybrid.HYBRID and RECORD is engines.record.RECORD
