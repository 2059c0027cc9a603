"""Local dissipation (Eq. 11): trajsim trajectories vs QuTiP PIQS density-matrix evolution.

Same problem for both: N spins from |N/2, -N/2>, r = ln(N)/8, Gamma = 1, gamma_phi = 0.005,
gamma_rel = 0.001, t in [0, 2/Gamma], 21 samples.  PIQS integrates the full permutation-invariant
density matrix (size ~N^3); trajsim runs trajectories in (N, j, psi).  Also trajsim alone at
N = 1000 over 200/Gamma: time per trajectory, blocks built and their memory.

    python benchmarks/bench_local_vs_piqs.py [--piqs-max-N 40]
"""

from __future__ import annotations

import argparse
import datetime
import resource
import time

import numpy as np

from trajsim import compiled, dicke
from trajsim.model import Rates


def rates_for(N):
    return Rates(r=np.log(N) / 8, gamma_phi=0.005, gamma_rel=0.001)


def trajsim_run(N, t_end, n_traj, n_samples=21):
    table = compiled.BlockTable(rates_for(N))
    psi = dicke.dicke_state(N, -N)[None, :]
    t = np.linspace(0, t_end, n_samples)
    start = time.perf_counter()
    samples, _events = compiled.simulate(table, N, N, np.ones(1), psi, t, np.zeros(0), 0.0,
                                      compiled.rng_states(1, 0, np.arange(n_traj)))
    return (time.perf_counter() - start) / n_traj, table, samples


def piqs_run(N, t_end):
    import qutip
    from qutip import piqs

    rates = rates_for(N)
    start = time.perf_counter()
    system = piqs.Dicke(N=N, emission=rates.gamma_rel, dephasing=2 * rates.gamma_phi)
    Sigma = np.cosh(rates.r) * piqs.jspin(N, "-") - np.sinh(rates.r) * piqs.jspin(N, "+")
    L = system.liouvillian() + qutip.lindblad_dissipator(Sigma)
    Sz = piqs.jspin(N, "z")
    qutip.mesolve(L, piqs.dicke(N, N / 2, -N / 2), np.linspace(0, t_end, 21), e_ops=[Sz])
    return time.perf_counter() - start, L.shape[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--piqs-max-N", type=int, default=40)
    args = parser.parse_args()
    trajsim_run(10, 2.0, 4)  # load compiled kernels
    print("| N | PIQS mesolve (dim) | trajsim per trajectory | trajsim, 1000 trajectories |")
    print("|---|---|---|---|")
    for N in (10, 20, 40, 80):
        per, _, _ = trajsim_run(N, 2.0, 200)
        if N <= args.piqs_max_N:
            seconds, dim = piqs_run(N, 2.0)
            piqs_txt = f"{seconds:.3g} s ({dim})"
        else:
            piqs_txt = "not run"
        print(f"| {N} | {piqs_txt} | {per * 1e3:.3g} ms | {per * 1e3:.3g} s |", flush=True)
    per, table, samples = trajsim_run(1000, 200.0, 8, 101)
    print(f"\nN = 1000, 200/Γ, 101 samples: {per:.3g} s per trajectory (block builds included), "
          f"{len(table.keys)} blocks built, {table.nbytes() / 1e6:.0f} MB of blocks, peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB, mean j at the end "
          f"{samples[:, -1, 1].mean():.1f}")
    print(f"{datetime.date.today()}")


if __name__ == "__main__":
    main()
