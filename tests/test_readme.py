"""The README is tested: its python blocks run in a fresh copy of the scenarios, and the numbers
it quotes about the quick start hold."""

import os
import re
import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from trajsim import cli, exact

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"^```python\n(.*?)^```", README, flags=re.S | re.M)
#: Blocks that run a long simulation (the Fig. 3 sweep from Python): the slow tier.
SLOW = ("fig3_even_odd",)


@pytest.fixture(scope="module")
def fresh_copy(tmp_path_factory):
    """A fresh directory with the scenarios and the quick-start run, as the README's first
    command leaves it (its report: ``test_the_quick_start_report_answers_first``)."""
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(REPO / "scenarios", root / "scenarios")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert cli.main(["run", "scenarios/quickstart.yaml", "--out", "runs/quickstart",
                         "--resume"]) == 0
        yield root
    finally:
        os.chdir(cwd)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", [pytest.param(i, marks=pytest.mark.slow)
                                   if any(s in b for s in SLOW) else i
                                   for i, b in enumerate(BLOCKS)])
def test_a_readme_python_block_runs(fresh_copy, index):
    namespace: dict = {}
    for block in BLOCKS[:index]:  # earlier blocks define what later ones use (fast ones only)
        if not any(s in block for s in SLOW):
            exec(compile(block, f"README block {BLOCKS.index(block)}", "exec"), namespace)
    os.chdir(fresh_copy)
    exec(compile(BLOCKS[index], f"README block {index}", "exec"), namespace)


def test_the_quoted_quick_start_numbers_hold(fresh_copy):
    """'the even-N dark state (N = 24) has <Sy^2> ~ 0.16 ... the odd-N state an order of
    magnitude higher'."""
    assert "`⟨Sy²⟩ ≈ 0.16`" in README
    assert exact.steady_observables(24, 1.5)["Sy2"] == pytest.approx(0.16, abs=0.005)
    assert exact.steady_observables(23, 1.5)["Sy2"] > 8 * exact.steady_observables(24, 1.5)["Sy2"]
    import trajsim

    summary = trajsim.open_run(fresh_copy / "runs/quickstart").summary
    traj = trajsim.open_run(fresh_copy / "runs/quickstart").trajectories
    # per-trajectory time averages are independent: their spread gives the standard error
    before = traj[(traj.t > 2) & (traj.t < 4)].groupby("trajectory").Sy2.mean()
    after = traj[traj.t > 5].groupby("trajectory").Sy2.mean()
    # the order of magnitude is the exact steady states' (above); the measured ensemble, whose
    # odd-N trajectories are heavy-tailed, shows the jump itself beyond 5 standard errors
    assert after.mean() - before.mean() > 5 * np.hypot(before.sem(), after.sem())
    assert summary.N_mean.iloc[-1] == 23


@pytest.mark.slow  # the exact Bayesian filter over 200 records: ~10 s
def test_the_quick_start_report_answers_first(fresh_copy):
    os.chdir(fresh_copy)
    assert cli.main(["report", "runs/quickstart"]) == 0
    text = (fresh_copy / "runs/quickstart/report/report.md").read_text()
    assert "N = 24 spins at r = 1.5" in text.split("##")[0]
    assert np.isfinite(float(re.search(r"detects (\d+) %", text)[1]))
