"""The hybrid engine (Eq. 9) vs QuTiP 5 mcsolve on the same problem, and its reach in 1 s.

Problem: N spins in j = N/2 from |N/2, -N/2>, the cavity from the reservoir's squeezed vacuum,
r = 0.5, kappa_sqz = 1, kappa_int = 0.05, g = 0.3 kappa / sqrt(N) (sqrt(N) g / kappa = 0.3),
t in [0, 20/kappa], 41 samples of <Sy^2> and <a^dag a>.  trajsim runs its engine in one thread
(blocks built beforehand, then timed); QuTiP mcsolve runs the same Hamiltonian and collapse
operators in Fock(n_max) ⊗ V_{N/2} with its default ODE method (adams) and tolerances
atol 1e-8, rtol 1e-6, serial map.  Then the cost per trajectory, the block set-up and its memory
as N and n_max grow (REACH).  Prints Markdown tables.

    python benchmarks/bench_hybrid.py [--qutip-trajectories 10] [--skip-reach]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time

import numpy as np

from trajsim.engines import WorkUnit
from trajsim.engines.hybrid import HYBRID
from trajsim.engines.hybrid import hybrid_block_bytes, hybrid_sizes
from trajsim.scenario import load

R, KAPPA_SQZ, KAPPA_INT, T_END, SAMPLES = 0.5, 1.0, 0.05, 20.0, 41
#: (N, n_max) for the reach table: per-trajectory cost, set-up and memory as the space grows.
REACH = ((20, 10), (50, 10), (100, 10), (200, 10), (20, 20), (50, 20), (100, 20), (20, 40),
         (50, 40))


def scenario(N: int, n_max: int, trajectories: int) -> dict:
    return {"name": "bench", "model": {"kind": "hybrid", "N": N, "r": R, "g": 0.3 / np.sqrt(N),
                                       "kappa_sqz": KAPPA_SQZ, "kappa_int": KAPPA_INT,
                                       "n_max": n_max},
            "time": {"t_end": T_END, "n_samples": SAMPLES},
            "run": {"trajectories": trajectories, "unit_size": trajectories, "store": "summary"}}


def trajsim_per_trajectory(N: int, n_max: int, n_traj: int) -> tuple[float, float]:
    """(seconds per trajectory, block set-up seconds), one thread."""
    point = load(scenario(N, n_max, n_traj)).points[0]
    start = time.perf_counter()
    setup = HYBRID.build(point)
    setup.block(N, N)
    built = time.perf_counter() - start
    HYBRID.run_unit(setup, WorkUnit(0, 0, 10**6, 1), 0, False)  # warm-up: compiled kernels
    start = time.perf_counter()
    HYBRID.run_unit(setup, WorkUnit(0, 0, 0, n_traj), 1, False)
    return (time.perf_counter() - start) / n_traj, built


def qutip_per_trajectory(N: int, n_max: int, n_traj: int) -> float:
    import qutip

    j, g = N / 2, 0.3 / np.sqrt(N)
    a = qutip.tensor(qutip.destroy(n_max + 1), qutip.qeye(N + 1))
    Sm = qutip.tensor(qutip.qeye(n_max + 1), qutip.jmat(j, "-"))
    Sy = qutip.tensor(qutip.qeye(n_max + 1), qutip.jmat(j, "y"))
    H = g * (a.dag() * Sm + a * Sm.dag())
    c_ops = [np.sqrt(KAPPA_SQZ) * (np.cosh(R) * a + np.sinh(R) * a.dag()),
             np.sqrt(KAPPA_INT) * a]
    vac = qutip.squeeze(n_max + 1, R) * qutip.basis(n_max + 1, 0)
    psi0 = qutip.tensor(vac.unit(), qutip.basis(N + 1, N))  # |j, -j>: QuTiP orders m from +j
    options = {"progress_bar": False, "map": "serial", "atol": 1e-8, "rtol": 1e-6}
    start = time.perf_counter()
    qutip.mcsolve(H, psi0, np.linspace(0, T_END, SAMPLES), c_ops, e_ops=[Sy * Sy, a.dag() * a],
                  ntraj=n_traj, options=options)
    return (time.perf_counter() - start) / n_traj


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qutip-trajectories", type=int, default=10)
    parser.add_argument("--skip-reach", action="store_true")
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {datetime.date.today()}")
    print("| N | n_max | trajsim s/trajectory | block set-up s | QuTiP mcsolve s/trajectory | ratio |")
    print("|---|---|---|---|---|---|")
    for N, n_max in ((4, 8), (20, 10)):
        ours, built = trajsim_per_trajectory(N, n_max, 200)
        theirs = qutip_per_trajectory(N, n_max, args.qutip_trajectories)
        print(f"| {N} | {n_max} | {ours:.3g} | {built:.3g} | {theirs:.3g} | {theirs / ours:.0f} |")
    if args.skip_reach:
        return
    print("\n| N | n_max | sector size d | levels | s/trajectory | block set-up s | block MB |")
    print("|---|---|---|---|---|---|---|")
    for N, n_max in REACH:
        point = load(scenario(N, n_max, 1)).points[0]
        d, count = hybrid_sizes(point)
        ours, built = trajsim_per_trajectory(N, n_max, 10)
        print(f"| {N} | {n_max} | {d} | {count} | {ours:.3g} | {built:.3g} | "
              f"{hybrid_block_bytes(point) / 1e6:.0f} |", flush=True)


if __name__ == "__main__":
    main()
