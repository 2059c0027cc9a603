"""trajsim vs QuTiP 5 mcsolve on Eq. (2), side by side in one process (docs/method.md).

Problems: N = 200 and N = 20, r = 2.5, t in [0, 2/Gamma], 51 samples, from |N/2, -N/2>
(QuTiP: vern7 with the collapse-time tolerances of QUTIP_TOLERANCES, and at N = 20 also its
'diag' and 'adams' methods);
a 50/Gamma odd-N trajectory at N = 201 (the sensing regime, ~66 000 jumps); N = 2000/2001,
where QuTiP cannot run.  Prints a Markdown table of seconds per trajectory and ratios.

    python benchmarks/bench_vs_qutip.py [--qutip-trajectories 2] [--skip-qutip-200]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time

import numpy as np

from trajsim import compiled, dicke
from trajsim.model import Rates

R = 2.5
#: mcsolve settings that find every collapse time at N = 200 (its defaults raise "Could not find
#: the collapse time"; so did norm_t_tol 1e-10, norm_steps 100, norm_tol 1e-6 for one seed in
#: two, issue 14); 'diag' fails at N = 200 with the same error whatever the tolerances.
QUTIP_TOLERANCES = {"norm_steps": 50, "norm_t_tol": 1e-9, "norm_tol": 1e-5, "atol": 1e-10,
                    "rtol": 1e-8}
#: Trajectories behind trajsim's per-trajectory means: jump counts fluctuate strongly (many
#: trajectories fall into the dark state at once), and 200 gave a mean 20 % low at N = 200.
MEAN_OVER = 4000


def trajsim_per_trajectory(N, t_end, n_samples, n_traj, r=R):
    """Seconds per trajectory (one thread, blocks built beforehand) and mean jumps per trajectory."""
    table = compiled.BlockTable(Rates(r=r))
    table.ensure(N, N)
    psi = dicke.dicke_state(N, -N)[None, :]
    t = np.linspace(0, t_end, n_samples)
    compiled.simulate(table, N, N, np.ones(1), psi, t, np.zeros(0), 0.0,
                    compiled.rng_states(0, 0, np.arange(1)))  # warm-up: load compiled kernels
    start = time.perf_counter()
    _, events = compiled.simulate(table, N, N, np.ones(1), psi, t, np.zeros(0), 0.0,
                                compiled.rng_states(1, 0, np.arange(n_traj)))
    return (time.perf_counter() - start) / n_traj, events["t"].size / n_traj


def qutip_per_trajectory(N, t_end, n_samples, n_traj, method):
    import qutip

    j = N / 2
    Sigma = np.cosh(R) * qutip.jmat(j, "-") - np.sinh(R) * qutip.jmat(j, "+")
    psi0 = qutip.basis(N + 1, N)  # |j, -j> (QuTiP orders m from +j down)
    t = np.linspace(0, t_end, n_samples)
    options = {"method": method, "progress_bar": False, "map": "serial", **QUTIP_TOLERANCES}
    if method == "diag":  # no ODE integrator: no atol, rtol
        del options["atol"], options["rtol"]
    e_ops = [qutip.jmat(j, "y") ** 2]
    start = time.perf_counter()
    res = qutip.mcsolve(qutip.qzero(N + 1), psi0, t, [Sigma], e_ops=e_ops, ntraj=n_traj,
                        options=options, seeds=1)
    elapsed = (time.perf_counter() - start) / n_traj
    jumps = np.mean([len(c) for c in res.col_times])
    return elapsed, jumps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qutip-trajectories", type=int, default=2)
    parser.add_argument("--skip-qutip-200", action="store_true")
    args = parser.parse_args()
    rows = []

    def row(problem, ours, peer_name, peer):
        ratio = f"{peer[0] / ours[0]:,.0f}×" if peer else "—"
        peer_txt = f"{peer[0]:.4g} s ({peer[1]:.0f} jumps)" if peer else "cannot run"
        rows.append(f"| {problem} | {ours[0]:.3g} s ({ours[1]:.0f} jumps) | {peer_name} | "
                    f"{peer_txt} | {ratio} |")
        print(rows[-1], flush=True)

    print("| problem | trajsim per trajectory | peer | peer per trajectory | speed-up |")
    print("|---|---|---|---|---|")
    ours20 = trajsim_per_trajectory(20, 2.0, 51, MEAN_OVER)
    for method in ("diag", "vern7", "adams"):
        row("N=20, r=2.5, t≤2/Γ, 51 samples", ours20, f"QuTiP mcsolve {method}",
            qutip_per_trajectory(20, 2.0, 51, 20, method))
    ours200 = trajsim_per_trajectory(200, 2.0, 51, MEAN_OVER)
    peer = None if args.skip_qutip_200 else qutip_per_trajectory(
        200, 2.0, 51, args.qutip_trajectories, "vern7")
    row("N=200, r=2.5, t≤2/Γ, 51 samples", ours200, "QuTiP mcsolve vern7", peer)
    row("N=201, r=2.5, t≤50/Γ, 1001 samples (odd, sensing)",
        trajsim_per_trajectory(201, 50.0, 1001, 4), "—", None)
    row("N=2000, r=2.5, t≤2/Γ, 51 samples", trajsim_per_trajectory(2000, 2.0, 51, 8), "—", None)
    row("N=2001, r=2.5, t≤2/Γ, 51 samples (odd)", trajsim_per_trajectory(2001, 2.0, 51, 2), "—",
        None)
    print(f"\n{platform.processor() or platform.machine()}, {platform.python_version()}, "
          f"{datetime.date.today()}, one thread")


if __name__ == "__main__":
    main()
