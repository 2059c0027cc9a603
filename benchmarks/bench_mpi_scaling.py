"""MPI scaling of `trajsim run`: strong and weak scaling at 1 and 2 ranks, per-unit overheads,
and the efficiency they project for 1000 ranks.

Strong scaling uses a sweep whose points differ ~10x in cost (odd N = 21 vs 61 in the sensing
regime, r = 2.5, from the steady state).  Wall times include process start-up, as a user sees
them.  Run from the repository root with mpirun on PATH:

    python benchmarks/bench_mpi_scaling.py [--trajectories 96]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SWEEP = """
name: scaling
model: {{N: 21, r: 2.5}}
initial_state: {{kind: steady}}
time: {{t_end: {t_end}, n_samples: 101}}
run: {{trajectories: {trajectories}, seed: 1, unit_size: 4, store: trajectories}}
sweep: {{model.N: [21, 61]}}
"""

PING = """
import time
from mpi4py import MPI
from trajsim.distribute import _poll
comm = MPI.COMM_WORLD
n = 200
start = time.perf_counter()
for _ in range(n):
    if comm.rank == 0:
        _poll(lambda: comm.Iprobe(source=1))
        comm.recv(source=1)
        comm.send(None, dest=1)
    else:
        comm.send(("done", None), dest=0)
        _poll(lambda: comm.Iprobe(source=0))
        comm.recv(source=0)
if comm.rank == 0:
    print((time.perf_counter() - start) / n)
"""


def mpirun():
    return shutil.which("mpirun", path=os.path.dirname(sys.executable)) or "mpirun"


def timed_run(scenario: Path, ranks: int, out: Path) -> tuple[float, float]:
    """Wall time of `mpirun -n ranks trajsim run` (one thread per rank, also for one rank), and
    the compute phase alone (from the manifest: hand-out to last unit, without start-up)."""
    start = time.perf_counter()
    subprocess.run([mpirun(), "-n", str(ranks), sys.executable, "-m", "trajsim", "run",
                    str(scenario), "--out", str(out), "--threads", "1"], check=True,
                   capture_output=True)
    wall = time.perf_counter() - start
    return wall, json.loads((out / "manifest.json").read_text())["timings"]["compute_s"]


def unit_overheads(trajectories: int) -> dict[str, float]:
    """Seconds per unit: compute, Parquet/npz writing, and reading + merging its statistics."""
    from trajsim import runner
    from trajsim import scenario as sc
    from trajsim.engines import engine_for
    from trajsim.stats import UnitStats
    from trajsim.store import RunDirectory, unit_identity

    scen = sc.resolve(__import__("yaml").safe_load(
        SWEEP.format(t_end=20.0, trajectories=trajectories)))
    units = [u for u in runner.work_units(scen) if u.point == 1][:8]
    point_engine = engine_for(scen.points[1])
    setup = point_engine.build(scen.points[1])
    point_engine.run_unit(setup, units[0], 1, True)  # builds the block, loads kernels
    with tempfile.TemporaryDirectory() as tmp:
        directory = RunDirectory(tmp)
        t_compute = t_write = t_merge = 0.0
        for unit in units:
            t0 = time.perf_counter()
            result = point_engine.run_unit(setup, unit, 1, True)
            t1 = time.perf_counter()
            directory.write_unit(unit.point, unit.unit, unit_identity(scen.hash(), scen.point_hash(1)),
                                 result.stats.to_arrays(), result.frames)
            t2 = time.perf_counter()
            stats = UnitStats.from_arrays(directory.load_unit_arrays(unit.point, unit.unit))
            _ = stats + stats  # the merge is what is timed
            t_merge += time.perf_counter() - t2
            t_compute += t1 - t0
            t_write += t2 - t1
    n = len(units)
    return {"compute": t_compute / n, "write": t_write / n, "merge": t_merge / n}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trajectories", type=int, default=96)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        strong = tmp / "strong.yaml"
        strong.write_text(SWEEP.format(t_end=20.0, trajectories=args.trajectories))
        weak1 = tmp / "weak1.yaml"
        weak1.write_text(SWEEP.format(t_end=20.0, trajectories=args.trajectories // 2))
        subprocess.run([sys.executable, "-m", "trajsim", "run", str(strong), "--out",
                        str(tmp / "warm"), "--trajectories", "4"], check=True,
                       capture_output=True)  # compile cache
        (t1, c1), (t2, c2) = timed_run(strong, 1, tmp / "s1"), timed_run(strong, 2, tmp / "s2")
        (w1, cw1), (w2, cw2) = timed_run(weak1, 1, tmp / "w1"), (t2, c2)  # 2 ranks, twice the work
        ping = float(subprocess.run([mpirun(), "-n", "2", sys.executable, "-c", PING],
                                    check=True, capture_output=True, text=True).stdout)
    over = unit_overheads(args.trajectories)
    print(f"strong scaling, {2 * args.trajectories} trajectories, N = 21 and 61 (cost ratio "
          f"~10): wall 1 rank {t1:.2f} s, 2 ranks {t2:.2f} s, efficiency {t1 / (2 * t2):.1%}; "
          f"compute phase {c1:.2f} s vs {c2:.2f} s, efficiency {c1 / (2 * c2):.1%}")
    print(f"weak scaling: 1 rank / {args.trajectories} traj {w1:.2f} s, 2 ranks / "
          f"{2 * args.trajectories} traj {w2:.2f} s, efficiency {w1 / w2:.1%}; compute phase "
          f"{cw1:.2f} s vs {cw2:.2f} s, efficiency {cw1 / cw2:.1%}")
    print(f"per unit (4 trajectories, N = 61): compute {over['compute'] * 1e3:.1f} ms, write "
          f"{over['write'] * 1e3:.1f} ms, load+merge {over['merge'] * 1e3:.2f} ms, "
          f"request round trip {ping * 1e3:.2f} ms")
    # Projection: P ranks, units of length T (compute + write), coordinator serves one request
    # per round trip, rank 0 merges every unit at the end, the last wave leaves ranks idle T/2.
    T = over["compute"] + over["write"]
    for P, T_unit, n_units in ((1000, T, 10**5), (1000, 10.0, 10**5)):
        work = n_units * T_unit
        busy = P * ping / T_unit  # coordinator utilisation from requests
        wall = work / P + T_unit / 2 + n_units * over["merge"] + 2.0
        print(f"projection P = {P}, unit {T_unit:.3g} s, {n_units} units: coordinator load "
              f"{busy:.0%}, efficiency {(work / P) / wall:.0%}" + (
                  " (coordinator saturated: use larger units)" if busy >= 1 else ""))
    print(f"{os.cpu_count()} cores, numpy {np.__version__}")


if __name__ == "__main__":
    main()
