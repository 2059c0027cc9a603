"""A user's results are safe: never overwritten or mixed, damage detected and recomputed, one
writer per directory, the umask respected, and user errors told apart from bugs (issue #11).

In-process: trajsim.runner.run and trajsim.cli.main are called directly (the kernels are cached).
"""

import json
import os
import stat

import pandas as pd
import pytest

from trajsim import cli, runner, store
from trajsim.errors import TrajsimError
from trajsim.scenario import load
from trajsim.store import RunDirectory, RunDirectoryError

SMALL = {
    "name": "safety",
    "model": {"N": 5, "r": 0.7, "gamma_coll": 0.1},
    "initial_state": {"kind": "css", "theta": 2.0, "phi": 0.3},
    "loss": {"rate_per_spin": 0.05},
    "time": {"t_end": 1.0, "n_samples": 6},
    "run": {"trajectories": 24, "seed": 4, "unit_size": 6},
}


def data_files(out) -> dict[str, bytes]:
    """Every Parquet file of a run directory (the manifest holds timings and differs)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))
            if p.is_file()}


def run(out, resume=False, **changes):
    scenario = load({**SMALL, **changes})
    return runner.run(scenario, out, resume=resume, threads=2, progress=False)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    run(out)
    return data_files(out)


@pytest.fixture
def finished(tmp_path, reference):
    out = tmp_path / "run"
    run(out)
    assert data_files(out) == reference
    return out


# ---------------------------------------------------------------- 1, 2: never overwrite or mix

@pytest.mark.parametrize("resume", [False, True])
def test_a_folder_with_the_users_files_is_refused(tmp_path, resume):
    mine = tmp_path / "d"
    (mine / "units").mkdir(parents=True)
    (mine / "summary.parquet").write_text("mine")
    (mine / "units" / "p00000-u000000.npz").write_text("mine too")
    with pytest.raises(RunDirectoryError, match="holds no trajsim run"):
        run(mine, resume=resume)
    assert (mine / "summary.parquet").read_text() == "mine"
    assert (mine / "units" / "p00000-u000000.npz").read_text() == "mine too"
    assert sorted(p.name for p in mine.iterdir()) == ["summary.parquet", "units"]


def test_an_empty_out_path_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="--out"):
        run("", resume=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_manifest_deleted_then_another_scenario_is_refused(finished):
    (finished / "manifest.json").unlink()
    before = data_files(finished)
    with pytest.raises(RunDirectoryError, match="holds no trajsim run"):
        run(finished, resume=True, run={**SMALL["run"], "seed": 5})
    assert data_files(finished) == before


def test_a_unit_of_another_scenario_is_recomputed(finished, tmp_path, reference):
    """Units name their scenario and point: one copied in from another run does not count."""
    other = tmp_path / "other"
    run(other, run={**SMALL["run"], "seed": 5})
    for relative in ("units/p00000-u000001.npz", "units/p00000-u000001.json",
                     "trajectories.parquet/part-p00000-u000001.parquet",
                     "events.parquet/part-p00000-u000001.parquet"):
        (finished / relative).write_bytes((other / relative).read_bytes())
    run(finished, resume=True)
    assert data_files(finished) == reference
    assert json.loads((finished / "manifest.json").read_text())["timings"]["units_computed"] == 1


# ---------------------------------------------------------------- 3: damage of any kind

def _flip_bytes(path, offset, count=8):
    data = bytearray(path.read_bytes())
    offset = offset % (len(data) - count)
    data[offset:offset + count] = bytes(b ^ 0xFF for b in data[offset:offset + count])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["part bytes", "npz truncated", "npz bit flip",
                                    "record garbage", "part deleted"])
def test_damaged_units_are_recomputed(finished, reference, damage):
    part = finished / "trajectories.parquet" / "part-p00000-u000002.parquet"
    npz = finished / "units" / "p00000-u000003.npz"
    if damage == "part bytes":  # inside a data page: the file still parses, the values change
        _flip_bytes(part, len(part.read_bytes()) // 3)
    elif damage == "npz truncated":
        npz.write_bytes(npz.read_bytes()[:200])
    elif damage == "npz bit flip":
        _flip_bytes(npz, 300, 1)
    elif damage == "record garbage":
        (finished / "units" / "p00000-u000003.json").write_text("{not json")
    else:
        part.unlink()
    run(finished, resume=True)
    assert data_files(finished) == reference
    assert json.loads((finished / "manifest.json").read_text())["timings"]["units_computed"] == 1


# ---------------------------------------------------------------- extending a run

def test_a_run_extended_with_resume_equals_a_direct_run(tmp_path, reference, capsys):
    """20 trajectories (units of 6: the last one holds 2), then 24 with --resume: every Parquet
    file equals the direct 24-trajectory run's; only the short unit and the new ones run."""
    out = tmp_path / "grown"
    run(out, run={**SMALL["run"], "trajectories": 20})
    with pytest.raises(RunDirectoryError, match="add --resume to continue or extend"):
        run(out)
    run(out, resume=True)
    assert data_files(out) == reference
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["timings"]["units_computed"] == 1 and manifest["interruptions"] == []
    with pytest.raises(RunDirectoryError, match="^run.trajectories: .* cannot shrink"):
        run(out, resume=True, run={**SMALL["run"], "trajectories": 12})
    with pytest.raises(RunDirectoryError, match="different scenario"):
        run(out, resume=True, run={**SMALL["run"], "trajectories": 30, "seed": 5})


def test_a_run_of_an_older_trajsim_still_resumes(finished, reference):
    """Commit records before runs could be extended name only the full hashes: still whole."""
    for record in (finished / "units").glob("*.json"):
        data = json.loads(record.read_text())
        scenario = load(SMALL)
        data["identity"] = {"scenario": scenario.hash(), "point": scenario.point_hash(0)}
        record.write_text(json.dumps(data, sort_keys=True))
    run(finished, resume=True)
    manifest = json.loads((finished / "manifest.json").read_text())
    assert manifest["timings"]["units_computed"] == 0 and data_files(finished) == reference


# ---------------------------------------------------------------- 4: temporary files

def test_resume_deletes_only_its_own_temporary_files(finished):
    users = [finished / ".notes.tmp", finished / "units" / ".draft.tmp",
             finished / "mine" / ".x.trajsim-1.tmp",
             finished / "units" / f".p00000-u000001.npz.trajsim-{'0' * 48}.tmp"]
    for path in users:
        path.parent.mkdir(exist_ok=True)
        path.write_text("mine")
    own = store.temporary_name(finished / "units" / "p00000-u000001.npz")
    own.write_text("left by a killed run")
    run(finished, resume=True)
    assert all(path.read_text() == "mine" for path in users)
    assert not own.exists()


# ---------------------------------------------------------------- 5: trajsim steady --out

def test_steady_never_writes_into_a_run_directory(finished, tmp_path, capsys):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("model: {N: 4, r: 0.5}\ntime: {t_end: 1}\n")
    before = (finished / "summary.parquet").read_bytes()
    assert cli.main(["steady", str(scenario), "--out", str(finished / "summary.csv")]) == 2
    assert "inside the run directory" in capsys.readouterr().err
    assert (finished / "summary.parquet").read_bytes() == before
    table = tmp_path / "table.csv"
    (tmp_path / "table.parquet").write_text("mine")
    assert cli.main(["steady", str(scenario), "--out", str(table)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "table.parquet").read_text() == "mine" and not table.exists()
    assert cli.main(["steady", str(scenario), "--out", str(table), "--force"]) == 0
    assert pd.read_parquet(tmp_path / "table.parquet").N.tolist() == [4]


# ---------------------------------------------------------------- 6: one writer

def test_a_second_writer_is_refused_naming_the_holder(finished, capsys, tmp_path):
    holder = RunDirectory(finished)
    holder.lock()
    try:
        scenario = tmp_path / "s.yaml"
        scenario.write_text(json.dumps(SMALL))
        assert cli.main(["run", str(scenario), "--out", str(finished), "--resume"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"PID {os.getpid()}" in err[0], err
    finally:
        holder.unlock()
    run(finished, resume=True)  # released: the directory can be taken again


# ---------------------------------------------------------------- 7: permissions

def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        run(tmp_path / "run")
    finally:
        os.umask(old)
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


# ---------------------------------------------------------------- 18, 19: damaged directories, bugs

@pytest.mark.parametrize("damage", ["status only", "a list", "not JSON", "part deleted",
                                    "no parts"])
def test_report_on_a_damaged_directory_is_one_line(finished, damage, capsys):
    manifest = finished / "manifest.json"
    if damage == "status only":
        manifest.write_text('{"status": "done"}')
    elif damage == "a list":
        manifest.write_text("[]")
    elif damage == "not JSON":
        manifest.write_text("{")
    elif damage == "part deleted":
        (finished / "trajectories.parquet" / "part-p00000-u000002.parquet").unlink()
    else:
        for part in (finished / "trajectories.parquet").iterdir():
            part.unlink()
    assert cli.main(["report", str(finished)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("damaged" in err[0] or "--resume" in err[0]), err
    if damage.startswith("part") or damage == "no parts":
        assert "--resume" in err[0]
    assert not (finished / "report").exists()


@pytest.mark.parametrize("manifest", ["[]", '{"status": "done"}'])
def test_resume_on_a_damaged_manifest_is_refused(finished, manifest):
    (finished / "manifest.json").write_text(manifest)
    with pytest.raises(RunDirectoryError, match="damaged"):
        run(finished, resume=True)


def test_a_bug_is_a_traceback_not_a_user_error(monkeypatch, tmp_path, capsys):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("model: {N: 4}\ntime: {t_end: 1}\n")

    def broken(*args, **kwargs):
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr("trajsim.scenario.resolve", broken)
    with pytest.raises(ValueError, match="internal inconsistency"):
        cli.main(["validate", str(scenario)])
    monkeypatch.undo()
    assert cli.main(["validate", str(tmp_path / "missing.yaml")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_debug_works_after_the_subcommand(tmp_path):
    with pytest.raises(TrajsimError, match="no such scenario file"):
        cli.main(["validate", str(tmp_path / "missing.yaml"), "--debug"])
