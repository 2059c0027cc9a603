"""Crash consistency end to end: kill -9 at random moments (also during the merge), damage
random unit files at random, resume; the run always ends byte-identical to an uninterrupted one."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

SCENARIO = """
name: crash
model: {N: 31, r: 2.0}
initial_state: {kind: steady}
loss: {rate_per_spin: 0.01}
time: {t_end: 10.0, n_samples: 41}
run: {trajectories: 96, seed: 8, unit_size: 4}
"""
UNITS = 24


def trajsim(*args):
    return [sys.executable, "-m", "trajsim", *map(str, args)]


def data_files(out):
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))
            if p.is_file()}


def kill(job):
    try:
        os.killpg(job.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    job.wait()


def damage(out, rng):
    """Flip a byte in, truncate or delete one of the unit files, chosen at random."""
    files = sorted(p for p in out.rglob("*") if p.is_file()
                   and (p.parent.name == "units" and p.suffix in (".npz", ".json")
                        or p.name.startswith("part-")))
    if not files:
        return
    path = files[rng.integers(len(files))]
    data = bytearray(path.read_bytes())
    action = rng.integers(3)
    if action == 0 and data:
        data[rng.integers(len(data))] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(data))
    elif action == 1:
        path.write_bytes(bytes(data[:rng.integers(len(data) + 1)]))
    else:
        path.unlink()


@pytest.mark.slow
def test_kills_and_damage_then_resume_end_identical(tmp_path):
    scenario = tmp_path / "crash.yaml"
    scenario.write_text(SCENARIO)
    started = time.time()
    subprocess.run(trajsim("run", scenario, "--out", tmp_path / "reference"), check=True,
                   capture_output=True)
    duration = time.time() - started
    reference = data_files(tmp_path / "reference")
    rng = np.random.default_rng(2026)
    out = tmp_path / "run"
    for cycle in range(6):
        job = subprocess.Popen(trajsim("run", scenario, "--out", out, "--resume"),
                               start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        if cycle == 0:  # every unit committed: the merge is running now
            deadline = time.time() + 120
            while len(list(out.glob("units/*.json"))) < UNITS and time.time() < deadline:
                time.sleep(0.001)
        else:
            time.sleep(rng.uniform(0.0, duration))
        kill(job)
        for _ in range(rng.integers(1, 4)):
            damage(out, rng)
    res = subprocess.run(trajsim("run", scenario, "--out", out, "--resume"),
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert data_files(out) == reference
