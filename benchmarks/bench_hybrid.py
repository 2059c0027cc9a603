"""The hybrid engine (Eq. 9) vs QuTiP 5 mcsolve and mesolve on the same problem, and its reach.

Problem: N spins in j = N/2 from |N/2, -N/2>, the cavity from the reservoir's squeezed vacuum,
r = 0.5, kappa_sqz = 1, kappa_int = 0.05, g = 0.3 kappa / sqrt(N) (sqrt(N) g / kappa = 0.3),
t in [0, 20/kappa], 41 samples of <Sy^2> and <a^dag a>.  trajsim runs its engine in one thread:
a whole run's CPU time per trajectory, set-up (the block) included; QuTiP mcsolve runs the same
Hamiltonian and collapse operators in Fock(n_max) ⊗ V_{N/2} with its default ODE method (adams)
and tolerances atol 1e-8, rtol 1e-6, serial map (CPU time per trajectory, its set-up included;
both run the same number of trajectories: 200 — those of the shipped hybrid scenario; with
50, which of them jump moves trajsim's time by 22-25 % from seed to seed (SD over 8 seeds at
N = 20 and 100; 5-6 % with 200) — unless --trajectories says otherwise);
QuTiP mesolve the density matrix once (the ensemble alternative); trajsim and QuTiP mcsolve again
with the cavity cut in the reservoir's basis (model.cavity_basis: reservoir, n_max auto: there
the cut-off of a at n_max = 10 leaves 6e-5 in its top two levels, that of b 1e-10 or less).
Then the reach: each (N, n_max) in a fresh process, its set-up, Krylov steps, CPU per
trajectory and peak memory.
Prints Markdown tables.

    python benchmarks/bench_hybrid.py [--trajectories 200] [--skip-reach] [--estimates]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import sys
import time

import numpy as np
import yaml

from trajsim.compiled import krylov
from trajsim.engines import WorkUnit
from trajsim.engines.hybrid import HYBRID, hybrid_sizes
from trajsim.scenario import load

R, KAPPA_SQZ, KAPPA_INT, T_END, SAMPLES = 0.5, 1.0, 0.05, 20.0, 41
#: (N, n_max) against QuTiP, and (with the trajectories timed) for the reach table.
VERSUS = ((20, 10), (100, 10), (200, 10))
MESOLVE = ((20, 10), (100, 10))
REACH = ((20, 10, 50), (100, 10, 20), (200, 10, 10), (20, 40, 10), (50, 40, 5),
         (200, 60, 2), (1000, 20, 2))


def scenario(N: int, n_max: int | str, trajectories: int, basis: str = "fock") -> dict:
    return {"name": "bench", "model": {"kind": "hybrid", "N": N, "r": R, "g": 0.3 / np.sqrt(N),
                                       "kappa_sqz": KAPPA_SQZ, "kappa_int": KAPPA_INT,
                                       "n_max": n_max, "cavity_basis": basis},
            "time": {"t_end": T_END, "n_samples": SAMPLES},
            "run": {"trajectories": trajectories, "unit_size": trajectories, "store": "summary"}}


def warm_up() -> None:
    """Load (or compile) the hybrid kernels on a small point, outside what is timed: enough
    trajectories that some jump (the shared path, then the compiled stretch after it)."""
    warm = load(scenario(4, 8, 8)).points[0]
    HYBRID.run_unit(HYBRID.build(warm), WorkUnit(0, 0, 0, 8), 0, False)


def trajsim_per_trajectory(N: int, n_max: int | str, n_traj: int,
                           basis: str = "fock") -> tuple[float, float]:
    """(CPU seconds per trajectory of a whole run, set-up included; the set-up alone), one
    thread, compiled kernels warmed on another point."""
    warm_up()
    point = load(scenario(N, n_max, n_traj, basis)).points[0]
    start = time.process_time()
    setup = HYBRID.build(point)
    setup.block(N, N)
    built = time.process_time() - start
    HYBRID.run_unit(setup, WorkUnit(0, 0, 0, n_traj), 1, False)
    return (time.process_time() - start) / n_traj, built


def operators(N: int, n_max: int, basis: str = "fock"):
    """QuTiP's H, collapse operators, initial state and e_ops of the problem, the cavity cut in
    the Fock basis of a or (basis 'reservoir') of b = cosh r a + sinh r a^dag, where
    a = cosh r b - sinh r b^dag and the squeezed vacuum is b's vacuum (trajsim's
    ``hybrid.mode``)."""
    import qutip

    j, g = N / 2, 0.3 / np.sqrt(N)
    mode = qutip.tensor(qutip.destroy(n_max + 1), qutip.qeye(N + 1))
    Sm = qutip.tensor(qutip.qeye(n_max + 1), qutip.jmat(j, "-"))
    Sy = qutip.tensor(qutip.qeye(n_max + 1), qutip.jmat(j, "y"))
    if basis == "reservoir":
        a = np.cosh(R) * mode - np.sinh(R) * mode.dag()
        vac = qutip.basis(n_max + 1, 0)
    else:
        a = mode
        vac = (qutip.squeeze(n_max + 1, R) * qutip.basis(n_max + 1, 0)).unit()
    H = g * (a.dag() * Sm + a * Sm.dag())
    c_ops = [np.sqrt(KAPPA_SQZ) * (np.cosh(R) * a + np.sinh(R) * a.dag()),
             np.sqrt(KAPPA_INT) * a]
    psi0 = qutip.tensor(vac, qutip.basis(N + 1, N))  # |j, -j>: QuTiP orders m from +j
    return H, c_ops, psi0, [Sy * Sy, a.dag() * a]


def qutip_per_trajectory(N: int, n_max: int, n_traj: int, basis: str = "fock",
                         improved: bool = False) -> float:
    """CPU seconds per trajectory of QuTiP mcsolve (serial), its set-up included; ``improved``:
    its improved_sampling (the no-jump trajectory once, then only trajectories that jump,
    reweighted: QuTiP's counterpart of trajsim's shared no-jump path)."""
    import qutip

    options = {"progress_bar": False, "map": "serial", "atol": 1e-8, "rtol": 1e-6,
               "improved_sampling": improved}
    start = time.process_time()
    H, c_ops, psi0, e_ops = operators(N, n_max, basis)
    qutip.mcsolve(H, psi0, np.linspace(0, T_END, SAMPLES), c_ops, e_ops=e_ops, ntraj=n_traj,
                  options=options)
    return (time.process_time() - start) / n_traj


def qutip_mesolve(N: int, n_max: int) -> float:
    """CPU seconds of one QuTiP mesolve of the problem (the whole ensemble at once)."""
    import qutip

    start = time.process_time()
    H, c_ops, psi0, e_ops = operators(N, n_max)
    qutip.mesolve(H, psi0, np.linspace(0, T_END, SAMPLES), c_ops, e_ops=e_ops,
                  options={"progress_bar": False, "atol": 1e-8, "rtol": 1e-6})
    return time.process_time() - start


def reach_row(N: int, n_max: int, n_traj: int) -> str:
    """One row of the reach table, measured in this process (run it in a fresh one: the peak
    is /proc/self/status VmHWM, which exec resets, unlike getrusage's ru_maxrss)."""
    point = load(scenario(N, n_max, n_traj)).points[0]
    d, nnz = hybrid_sizes(point)
    per_trajectory, built = trajsim_per_trajectory(N, n_max, n_traj)
    setup = HYBRID.build(point)
    block = setup.block(N, N)
    x = np.zeros(d, complex)
    x[0] = 1.0
    step = krylov.new_step(block.generator.anorm)
    block.generator.advance_through(x, 0.0, 0.0, np.linspace(0.5, T_END, SAMPLES - 1), 0,
                                    SAMPLES - 1, step)
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
    return (f"| {N} | {n_max} | {d} | {nnz} | {step[1]:.0f} | {per_trajectory:.3g} | "
            f"{built:.3g} | {peak:.0f} |")


#: Points for the cost model (``trajsim validate``): (label, N, n_max, changes to ``scenario``:
#: model keys, other sections), and the shipped hybrid scenario.
WEAK = {"measurement": {"kind": "weak", "sigma": 2.0, "period": 0.5}}
ESTIMATED = (("N = 4", 4, 10, {}), ("N = 20", 20, 10, {}), ("N = 100", 100, 10, {}),
             ("N = 200", 200, 10, {}), ("N = 200, n_max = 60", 200, 60, {}),
             ("N = 1000, n_max = 20", 1000, 20, {}),
             ("N = 20, weak S_y every 0.5/kappa", 20, 10, WEAK),
             ("N = 100, weak S_y every 0.5/kappa", 100, 10, WEAK),
             ("N = 20, from a coherent spin state", 20, 10,
              {"initial_state": {"kind": "css", "theta": 2.5}}),
             ("N = 20, Delta_c = 2 kappa", 20, 10, {"model": {"Delta_c": 2.0}}),
             ("N = 20, gamma_phi = 0.05, gamma_loss = 0.005", 20, 10,
              {"model": {"gamma_phi": 0.05}, "loss": {"rate_per_spin": 0.005}}),
             ("N = 100, gamma_phi = gamma_rel = 0.01, gamma_loss = 0.005, weak S_y every "
              "2/kappa", 100, 10, {"model": {"gamma_phi": 0.01, "gamma_rel": 0.01},
                                   "loss": {"rate_per_spin": 0.005},
                                   "measurement": {"kind": "weak", "sigma": 2.0,
                                                   "period": 2.0}}))


def estimate_row(label: str, N: int | None, n_max: int | None, changes: dict,
                 n_traj: int) -> str:
    """`trajsim validate`'s estimate (per trajectory, its set-up spread over n_traj) against a
    one-thread run of n_traj trajectories, set-up included (N None: the shipped scenario)."""
    if N is None:
        with open("scenarios/hybrid_parity_sensing.yaml") as file:
            raw = yaml.safe_load(file)
        raw["run"] = {**raw["run"], "trajectories": n_traj, "unit_size": n_traj}
    else:
        raw = scenario(N, n_max, n_traj)
        raw["model"] |= changes.get("model", {})
        raw |= {key: value for key, value in changes.items() if key != "model"}
    point = load(raw).points[0]
    per_trajectory, setup = HYBRID.seconds(point)
    estimate = per_trajectory + setup / n_traj
    warm_up()
    start = time.process_time()
    HYBRID.run_unit(HYBRID.build(point), WorkUnit(0, 0, 0, n_traj), 1, False)
    measured = (time.process_time() - start) / n_traj
    return f"| {label} | {estimate:.3g} | {measured:.3g} | {measured / estimate:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trajectories", type=int, default=200,
                        help="trajectories of each run, trajsim's and QuTiP's alike")
    parser.add_argument("--skip-reach", action="store_true")
    parser.add_argument("--skip-mesolve", action="store_true")
    parser.add_argument("--estimates", action="store_true",
                        help="only trajsim validate's estimates against one-thread runs")
    parser.add_argument("--reach-row", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reach_row:
        print(reach_row(*args.reach_row), flush=True)
        return
    if args.estimates:
        print("| point | estimate s/trajectory | measured | measured / estimate |")
        print("|---|---|---|---|")
        for label, N, n_max, changes in (*ESTIMATED, ("scenarios/hybrid_parity_sensing.yaml",
                                                      None, None, {})):
            count = 40 if "1000" in label or "60" in label else 100
            print(estimate_row(label, N, n_max, changes, count), flush=True)
        return
    print(f"# {platform.processor() or platform.machine()}, {datetime.date.today()}")
    print("| N | n_max | trajsim s/trajectory | its set-up s | QuTiP mcsolve s/trajectory | "
          "ratio | QuTiP mcsolve, improved_sampling | ratio | "
          "trajsim, reservoir basis, n_max auto | QuTiP mcsolve, same | ratio | "
          "QuTiP mesolve s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for N, n_max in VERSUS:
        count = args.trajectories
        ours, built = trajsim_per_trajectory(N, n_max, count)
        basis = load(scenario(N, "auto", 1, "reservoir")).points[0]["model"]["n_max"]
        reservoir = trajsim_per_trajectory(N, "auto", count, "reservoir")[0]
        theirs = qutip_per_trajectory(N, n_max, count)
        improved = qutip_per_trajectory(N, n_max, count, improved=True)
        theirs_b = qutip_per_trajectory(N, basis, count, "reservoir")
        ensemble = f"{qutip_mesolve(N, n_max):.3g}" if (N, n_max) in MESOLVE and not \
            args.skip_mesolve else "—"
        print(f"| {N} | {n_max} | {ours:.3g} | {built:.3g} | {theirs:.3g} | "
              f"{theirs / ours:.1f} | {improved:.3g} | {improved / ours:.1f} | "
              f"{reservoir:.3g} (n_max {basis}) | {theirs_b:.3g} | "
              f"{theirs_b / reservoir:.1f} | {ensemble} |", flush=True)
    if args.skip_reach:
        return
    print("\n| N | n_max | d | non-zeros | Krylov steps to t = 20/kappa | s/trajectory | "
          "set-up s | peak memory MB |")
    print("|---|---|---|---|---|---|---|---|")
    for row in REACH:
        subprocess.run([sys.executable, __file__, "--reach-row", *map(str, row)], check=True)


if __name__ == "__main__":
    main()
