"""Jump trajectories vs the record-level engine on a 50/Gamma detection study.

N = 41 (odd: the sensing regime), r = 3, 4, 5, from the steady state, projective S_y outcomes
every 0.5/Gamma, Poisson spin loss 0.002 per spin per 1/Gamma (Fig. 4(b)), one thread, through
the public API.  The record-level engine's one-off set-up (matrix exponentials of each block's
coherence sectors, eigenmodes for the random loss times) is separated from its per-trajectory
cost by timing runs of two sizes.  Prints a Markdown table.

    python benchmarks/bench_record_engine.py [--N 41] [--r 3 4 5] [--jump-trajectories 16]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time

import trajsim


def study(N: int, r: float, engine: str, trajectories: int) -> dict:
    return {"model": {"N": N, "r": r}, "initial_state": {"kind": "steady"},
            "loss": {"rate_per_spin": 0.002}, "time": {"t_end": 50.0, "n_samples": 11},
            "measurement": {"kind": "projective", "period": 0.5},
            "run": {"trajectories": trajectories, "unit_size": trajectories, "store": "summary",
                    "engine": engine, "seed": 1}}


def wall(scenario: dict) -> float:
    start = time.perf_counter()
    trajsim.run(scenario, progress=False, threads=1)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, default=41)
    parser.add_argument("--r", type=float, nargs="+", default=[3.0, 4.0, 5.0])
    parser.add_argument("--jump-trajectories", type=int, default=16)
    parser.add_argument("--record-trajectories", type=int, default=32)
    args = parser.parse_args()
    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, one thread, "
          f"N = {args.N}, 50/Gamma, projective every 0.5/Gamma, loss 0.002 per spin")
    print("| r | jumps: s per trajectory | record: s per trajectory | record: set-up s "
          "| auto chooses |")
    print("|---|---|---|---|---|")
    wall(study(args.N, args.r[0], "jumps", 1))  # load the compiled kernels
    for r in args.r:
        n = args.jump_trajectories
        jumps = wall(study(args.N, r, "jumps", n)) / n
        small, large = 2, args.record_trajectories
        t_small = wall(study(args.N, r, "record", small))
        per = (wall(study(args.N, r, "record", large)) - t_small) / (large - small)
        chosen = trajsim.load_scenario(study(args.N, r, "auto", 1000)).points[0]["run"]["engine"]
        print(f"| {r:g} | {jumps:.3g} | {per:.3g} | {t_small - small * per:.3g} | {chosen} |",
              flush=True)


if __name__ == "__main__":
    main()
