"""Cost of one quantum jump vs N in the sensing regime, and the in-block mat-vec's GFLOP/s.

Odd N at r = 2.5 (see ``per_jump`` for the states), one thread, blocks built beforehand.  The mat-vec row times the one product
per jump that applies Sigma in the eigenbasis (2 D_s^2 flops for a sector of D_s amplitudes),
repeated on one state.  Prints a Markdown table.

    python benchmarks/bench_per_jump.py [--jumps 20000] [--N 21 51 101 201 401 801 2001]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time

import numba as nb
import numpy as np

from trajsim import compiled, dicke, exact
from trajsim.compiled.kernels import _apply_channel
from trajsim.compiled.layout import B_D0
from trajsim.model import Rates
from trajsim.engines.jumps import _odd_jump_rate

R = 2.5


@nb.njit(cache=True)
def _matvec_loop(blk_int, ch_int, A, b, ch, c, mask, out, repeats):
    total = 0.0
    for _ in range(repeats):
        total += _apply_channel(blk_int, ch_int, A, b, ch, c, mask, out)
    return total


def per_jump(N: int, jumps: int) -> tuple[float, float]:
    """(microseconds per jump, jumps timed) in one call of simulate.

    From the odd-N steady state over the time that gives ``jumps`` in 4 trajectories where its
    jump rate is >= 10 Gamma; at larger N (the steady state is nearly dark) from |N/2, -N/2>
    over 1/Gamma, with as many trajectories as give ``jumps`` (~40-100 jumps each)."""
    table = compiled.BlockTable(Rates(r=R))
    table.ensure(N, N)
    rate = _odd_jump_rate(N, R)
    if rate >= 10:
        weights, states = exact.steady_ensemble(N, N, R)
        n_traj, t_end = 4, jumps / 4 / rate
    else:
        weights, states = np.ones(1), dicke.dicke_state(N, -N)[None, :]
        n_traj, t_end = 1, 1.0

    def run(seed, n):
        start = time.perf_counter()
        _, events = compiled.simulate(table, N, N, weights, states, np.array([0.0, t_end]),
                                    np.zeros(0), 0.0, compiled.rng_states(seed, 0, np.arange(n)))
        return time.perf_counter() - start, events["t"].size

    jumps_one = run(0, 1)[1]  # also the warm-up (compiled kernels loaded)
    if rate < 10:
        n_traj = -(-jumps // max(jumps_one, 1))
    elapsed, n_jumps = run(1, n_traj)
    return 1e6 * elapsed / n_jumps, n_jumps


def matvec_gflops(N: int) -> float:
    """GFLOP/s of the in-block product A_Sigma c for the larger sector of block (N, N/2)."""
    table = compiled.BlockTable(Rates(r=R))
    b = table.ensure(N, N)
    packed = table.packed()
    blk_int, ch_int, A = packed[0], packed[2], packed[5]
    D0 = blk_int[b, B_D0]
    c = np.random.default_rng(0).normal(size=N + 1)
    out = np.zeros(N + 1)
    repeats = max(1, int(2e8 / (2 * D0 * D0)))
    _matvec_loop(blk_int, ch_int, A, b, 0, c, 1, out, 1)
    start = time.perf_counter()
    _matvec_loop(blk_int, ch_int, A, b, 0, c, 1, out, repeats)
    return 2 * D0 * D0 * repeats / (time.perf_counter() - start) / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jumps", type=int, default=20000)
    parser.add_argument("--N", type=int, nargs="+", default=[21, 51, 101, 201, 401, 801, 2001])
    args = parser.parse_args()
    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"numba {nb.__version__}, one thread, r = {R}, odd N")
    print("| N | µs per jump | jumps timed | mat-vec GFLOP/s |")
    print("|---|---|---|---|")
    for N in args.N:
        us, n = per_jump(N, args.jumps if N <= 401 else max(2000, args.jumps // 10))
        print(f"| {N} | {us:.2f} | {n} | {matvec_gflops(N):.2f} |", flush=True)


if __name__ == "__main__":
    main()
