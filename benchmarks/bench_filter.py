"""The exact Bayesian parity filter (``trajsim.parity_filter``) at N = 20, 40, 60: set-up, cost
per outcome and peak memory, one core.

Problem: Fig. 4(b)'s reservoir (r = 2.5, Gamma = 1), 0.002 losses per spin per 1/Gamma, a weak
S_y readout (sigma = 1) every 0.5/Gamma over 50/Gamma (100 outcomes); records simulated by
trajsim (two trajectories from the steady state).  Each N runs in a fresh process with
OPENBLAS_NUM_THREADS=1 (CPU time = wall time); the peak is /proc/self/status VmHWM.  Columns:
set-up = the first outcome (the eigenmodes of the levels N .. N - depth and the first column);
per level = the rest of the first record, in which the levels below enter as the posterior
reaches them (each a new column), per level that entered; per outcome = the second record, every
column built; levels = columns built.  ``--outcomes`` shortens the records (50/Gamma: 100).
Prints a Markdown table.

    python benchmarks/bench_filter.py [--outcomes 100] [N ...]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time

import numpy as np

SPACING, T_END, SIGMA, R, LOSS = 0.5, 50.0, 1.0, 2.5, 0.002


def row(N: int, outcomes: int) -> str:
    import trajsim
    from trajsim.exact import steady_density_matrix
    from trajsim.ladder import ladder_bytes
    from trajsim.model import Rates
    from trajsim.parity_filter import ParityFilter

    result = trajsim.run({"model": {"N": N, "r": R}, "initial_state": {"kind": "steady"},
                          "loss": {"rate_per_spin": LOSS}, "time": {"t_end": T_END, "n_samples": 2},
                          "measurement": {"kind": "weak", "period": SPACING, "sigma": SIGMA},
                          "run": {"trajectories": 2, "seed": N}}, progress=False)
    table = result.measurements.sort_values(["trajectory", "t"])
    records = [g.outcome.to_numpy()[:outcomes] for _, g in table.groupby("trajectory")]
    bayes = ParityFilter(Rates(r=R), N, steady_density_matrix(N, N, R), LOSS, SPACING, SIGMA)
    start = time.process_time()
    bayes.posteriors(records[0][:1])
    setup = time.process_time() - start
    start = time.process_time()
    bayes.posteriors(records[0])
    entering = time.process_time() - start
    start = time.process_time()
    bayes.posteriors(records[1])
    per_outcome = (time.process_time() - start) / records[1].size
    levels = len(next(iter(bayes._ladders.values()))._columns)
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
    return (f"| {N} | {records[0].size} | {setup:.3g} | {entering / max(levels - 1, 1):.3g} | "
            f"{1e3 * per_outcome:.3g} | {levels} | "
            f"{peak:.0f} | {ladder_bytes(N, LOSS, SPACING) / 2**20:.0f} |")


def main() -> None:
    if len(sys.argv) > 3 and sys.argv[1] == "--row":
        print(row(int(sys.argv[2]), int(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outcomes", type=int, default=100)
    parser.add_argument("sizes", nargs="*", type=int, default=[20, 40, 60])
    args = parser.parse_args()
    outcomes, sizes = args.outcomes, args.sizes
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{datetime.date.today()}, one core (OPENBLAS_NUM_THREADS=1)\n")
    print("| N | outcomes | set-up (s) | per level (s) | per outcome (ms) | levels | peak (MB) | "
          "ladder_bytes (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    for N in sizes:
        out = subprocess.run([sys.executable, __file__, "--row", str(N), str(outcomes)],
                             env=env, check=True, capture_output=True, text=True).stdout
        print(out.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
