"""Cost of S_y measurements in the trajectory engine: seconds per trajectory without an
instrument, with k = 1 copy (the outcome kernel alone: no back-action), and with projective
and weak (sigma = 1) measurements (outcome kernel plus the back-action's extra jumps), at
N = 40 and 200, r = 2.5, from the steady state, 20 outcomes in 10/Gamma.  Prints a Markdown
table with the cost per outcome.                    python benchmarks/bench_measurements.py
"""

from __future__ import annotations

import datetime
import platform
import time

import numpy as np

from trajsim import compiled, exact
from trajsim.model import Rates

R, T_END, PERIOD = 2.5, 10.0, 0.5


def per_trajectory(N: int, instrument, n_traj: int) -> tuple[float, float]:
    """(seconds, jumps) per trajectory on one thread, blocks built and kernels loaded first."""
    table = compiled.BlockTable(Rates(r=R), sy_basis=True)
    table.ensure(N, N)
    weights, states = exact.steady_ensemble(N, N, R)
    t = np.linspace(0, T_END, 21)

    def go(seed, n):
        return compiled.simulate(table, N, N, weights, states, t, np.zeros(0), 0.0,
                               compiled.rng_states(seed, 0, np.arange(n)),
                               rng_meas=compiled.rng_states(seed, 0, np.arange(n), stream=1),
                               instrument=instrument)

    go(0, 1)
    start = time.perf_counter()
    _, events = go(1, n_traj)
    return (time.perf_counter() - start) / n_traj, events["t"].size / n_traj


def main():
    times = PERIOD * np.arange(1, int(T_END / PERIOD) + 1)
    setups = {"none": None,
              "copies (1)": compiled.Instrument(compiled.COPIES, times),
              "projective": compiled.Instrument(compiled.PROJECTIVE, times),
              "weak, sigma 1": compiled.Instrument(compiled.WEAK, times, 1.0)}
    print(f"# {platform.processor() or platform.machine()}, {datetime.date.today()}, one thread")
    print("| N | instrument | ms per trajectory | jumps per trajectory | µs per outcome "
          "(vs none) |")
    print("|---|---|---|---|---|")
    for N, n_traj in ((40, 400), (200, 40)):
        base = None
        for name, instrument in setups.items():
            seconds, jumps = per_trajectory(N, instrument, n_traj)
            base = seconds if base is None else base
            extra = (seconds - base) / times.size * 1e6 if instrument else 0.0
            print(f"| {N} | {name} | {seconds * 1e3:.3f} | {jumps:.1f} | {extra:.1f} |")


if __name__ == "__main__":
    main()
