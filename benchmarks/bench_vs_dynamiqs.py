"""trajsim vs dynamiqs ``jssesolve`` (CPU JAX) on Eq. (2), side by side in one process.

The problem of bench_vs_qutip.py: r = 2.5, t in [0, 2/Gamma], 51 samples, from |N/2, -N/2>,
N = 20 and 200.  dynamiqs integrates the no-click evolution with an ODE method and finds click
times to within the largest step DTMAX (``dq.method.Event``): Tsit5 at N = 20; at N = 200 the no-click
equation is stiff (||K|| ~ e^{2r} j^2), so Kvaerno5.  One trajectory per call (batch 1) and,
at N = 20, a batch of 16 as dynamiqs intends (a batch waits for its longest trajectory).  The
first call of each shape compiles (JIT, reported separately).  Needs ``pip install dynamiqs``
(not a test extra: it pulls in JAX).

    python benchmarks/bench_vs_dynamiqs.py [--skip-200] [--calls 8]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time

import numpy as np
from bench_vs_qutip import MEAN_OVER, R, trajsim_per_trajectory

#: Largest no-click step: bounds the click-time error (the Newton root finder of
#: ``dq.method.Event`` aborted with "Terminating differential equation solve because an event
#: occurred" here, dynamiqs 0.3.7).
DTMAX = 1e-3


def dynamiqs_run(N: int, batch: int, seed: int, stiff: bool):
    """(seconds, clicks per trajectory) of one jssesolve call with ``batch`` trajectories."""
    import dynamiqs as dq
    import jax

    j = N / 2
    Sp = dq.asqarray(_raising(N))
    Sigma = np.cosh(R) * Sp.dag() - np.sinh(R) * Sp
    psi0 = dq.basis(N + 1, 0)  # |j, -j>: index k = j + m
    noclick = dq.method.Kvaerno5() if stiff else dq.method.Tsit5()
    method = dq.method.Event(noclick_method=noclick, dtmax=DTMAX)
    keys = jax.random.split(jax.random.PRNGKey(seed), batch)
    tsave = np.linspace(0.0, 2.0, 51)
    start = time.perf_counter()
    result = dq.jssesolve(dq.zeros(N + 1), [Sigma], psi0, tsave, keys, method=method,
                          exp_ops=[dq.asqarray(_sy2(N))], save_states=False)
    result.expects.block_until_ready()
    elapsed = time.perf_counter() - start
    clicks = np.isfinite(np.asarray(result.clicktimes)).sum() / batch
    return elapsed, clicks, j


def _raising(N: int) -> np.ndarray:
    """J+ in the Dicke basis k = j + m (k = 0 is m = -j)."""
    j = N / 2
    m = np.arange(N + 1) - j
    return np.diag(np.sqrt(j * (j + 1) - m[:-1] * (m[:-1] + 1)), -1)


def _sy2(N: int) -> np.ndarray:
    Jp = _raising(N)
    Sy = (Jp - Jp.T) / 2j
    return Sy @ Sy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-200", action="store_true")
    parser.add_argument("--calls", type=int, default=8,
                        help="timed calls per case (many trajectories make no click at all)")
    args = parser.parse_args()
    print("| problem | trajsim per trajectory | dynamiqs | JIT (first call) | dynamiqs per trajectory "
          "| speed-up |")
    print("|---|---|---|---|---|---|")
    cases = [(20, 1, False), (20, 16, False)] + ([] if args.skip_200 else [(200, 1, True)])
    for N, batch, stiff in cases:
        ours = trajsim_per_trajectory(N, 2.0, 51, MEAN_OVER)
        first, _, _ = dynamiqs_run(N, batch, 0, stiff)
        n_calls = 2 if stiff else args.calls  # N = 200: a minute per call
        calls = [dynamiqs_run(N, batch, seed, stiff) for seed in range(1, 1 + n_calls)]
        elapsed = float(np.mean([c[0] for c in calls]))
        clicks = float(np.mean([c[1] for c in calls]))
        per = elapsed / batch
        name = f"jssesolve Event({'Kvaerno5' if stiff else 'Tsit5'}), batch {batch}"
        print(f"| N={N}, r={R}, t≤2/Γ, 51 samples | {ours[0] * 1e3:.3g} ms ({ours[1]:.0f} jumps) "
              f"| {name} | {first - elapsed:.3g} s | {per:.3g} s ({clicks:.0f} clicks) "
              f"| {per / ours[0]:,.0f}× |", flush=True)
    print(f"\n{platform.processor() or platform.machine()}, {platform.python_version()}, "
          f"{datetime.date.today()}, one process")


if __name__ == "__main__":
    main()
