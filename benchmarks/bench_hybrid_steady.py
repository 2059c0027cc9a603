"""The Eq. (9) steady state: trajsim's iterative solver (trajsim.hybrid_steady) against its own
sparse LU (hybrid.steady_state) and QuTiP 5 `steadystate` on the same Liouvillian.

Problem: the shipped scenarios/hybrid_parity_sensing.yaml (r = 1, kappa_sqz = 0.98,
kappa_int = 0.02, sqrt(8) g / kappa = 0.5) at N spins, the cavity cut at n_max in the Fock basis
of a (45: the scenario's automatic cut-off) or of the reservoir's mode b.  Each row runs in a
fresh process (one BLAS thread): wall time, GMRES iterations, peak memory (VmHWM, ~0.2 GB of it
Python, NumPy and SciPy), <Sy^2>.  QuTiP's `steadystate` ('direct': sparse LU of the whole
Liouvillian with its trace row) on the same H and collapse operators where it fits in time.
Prints a Markdown table.

    python benchmarks/bench_hybrid_steady.py [--qutip-max-dim 150]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

#: (N, n_max, basis) of the table.
CASES = ((8, 10, "fock"), (8, 20, "fock"), (8, 45, "fock"), (9, 45, "fock"), (8, 28, "reservoir"),
         (16, 45, "fock"), (40, 10, "reservoir"), (41, 10, "reservoir"))
G8 = 0.1768  # the scenario's g at N = 8


def cavity(N: int, n_max: int, basis: str):
    from trajsim import hybrid

    return hybrid.Cavity(g=G8 * (8 / N) ** 0.5, kappa_sqz=0.98, r=1.0, kappa_int=0.02,
                         n_max=n_max, basis=basis)


def peak_bytes() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))


def one(N: int, n_max: int, basis: str, solver: str) -> dict:
    """One row in this process: 'trajsim', 'lu' or 'qutip'."""
    from trajsim import hybrid, hybrid_steady

    c = cavity(N, n_max, basis)
    iterations = []
    if solver == "trajsim":
        gmres = hybrid_steady.gmres

        def counting(*args, **kwargs):
            return gmres(*args, **kwargs, callback=lambda _: iterations.append(1),
                         callback_type="pr_norm")
        hybrid_steady.gmres = counting
    start = time.perf_counter()
    if solver == "qutip":
        import qutip as qt

        ops = hybrid.operators(N, c)
        H = c.g * (ops["a"].T @ ops["S-"] + ops["a"] @ ops["S+"])
        jumps = [qt.Qobj(sp_kron(L, N) * rate ** 0.5) for _, rate, L in hybrid.cavity_channels(c)]
        rho = qt.steadystate(qt.Qobj(H), jumps, method="direct").full()
    elif solver == "lu":
        rho = hybrid.steady_state(N, c)
    else:
        rho = hybrid_steady.steady_state(N, c)[(N, N)]
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "iterations": len(iterations), "peak_GB": peak_bytes() / 1e9,
            "Sy2": hybrid.spin_observables(rho, N)["Sy2"]}


def sp_kron(L, N: int):
    import scipy.sparse as sp

    return sp.kron(sp.csr_matrix(L), sp.identity(N + 1), format="csr")


def child(N: int, n_max: int, basis: str, solver: str) -> dict:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--one", str(N), str(n_max), basis, solver],
                         capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--qutip-max-dim", type=int, default=150,
                        help="largest (n_max + 1)(N + 1) given to QuTiP and the LU")
    args = parser.parse_args()
    if args.one:
        N, n_max, basis, solver = args.one
        print(json.dumps(one(int(N), int(n_max), basis, solver)))
        return
    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, one thread\n")
    print("| N | n_max (basis) | states | trajsim | GMRES iterations | peak memory | <Sy^2> |"
          " sparse LU | QuTiP steadystate |")
    print("|---|---|---|---|---|---|---|---|---|")
    for N, n_max, basis in CASES:
        row = child(N, n_max, basis, "trajsim")
        dim = (n_max + 1) * (N + 1)
        small = dim <= args.qutip_max_dim
        lu = f"{child(N, n_max, basis, 'lu')['seconds']:.2f} s" if small else "—"
        qt = f"{child(N, n_max, basis, 'qutip')['seconds']:.2f} s" if small else "—"
        print(f"| {N} | {n_max} ({basis}) | {dim} | {row['seconds']:.2f} s | {row['iterations']} "
              f"| {row['peak_GB']:.2f} GB | {row['Sy2']:.6f} | {lu} | {qt} |", flush=True)


if __name__ == "__main__":
    main()
