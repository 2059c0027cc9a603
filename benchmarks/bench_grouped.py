"""The grouped engine (model.groups) vs QuTiP 5 mcsolve on the same product space, and its reach.

Problem: two classes of N/2 spins at detunings +-0.3 (Gamma = 1, r = 2.5, all spins down at
t = 0), 101 samples of the total-spin moments up to t_end, optionally Poisson spin loss.
trajsim runs one thread: a whole unit's CPU time per trajectory, the first block's set-up
(eigenmodes) timed apart; QuTiP mcsolve runs H_eff's pieces (H = sum_k delta_k S_z^(k), the
collapse operator sqrt(Gamma) Sigma) on the same product of the classes' symmetric blocks
(``trajsim.groups.operators``) with its default ODE method, atol 1e-8, rtol 1e-6, and where its
collapse-time search fails the tightened one of QUTIP_OPTIONS (no spin loss: QuTiP has no
class-changing loss), serial map, CPU per trajectory.  Prints Markdown.  With --measurements
instead: what an S_y measurement costs in eigenmodes (compiled.grouped_loop), the
shipped broadened scenario's point (classes at a Gaussian's half means, width 0.3, r = 1.5,
a weak readout every 0.25/Gamma over 8/Gamma) with and without its readout, for 6 + 6, 12 + 12
and 20 + 20 spins, against the cost model (GROUPED_S_PER_MEASUREMENT d^1.5).

    python benchmarks/bench_grouped.py [--qutip-trajectories 4] [--only-qutip | --skip-qutip]
    python benchmarks/bench_grouped.py --measurements
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time

import numpy as np

from trajsim import groups
from trajsim.engines import WorkUnit
from trajsim.engines.grouped import (
    GROUPED,
    GROUPED_S_PER_MEASUREMENT,
    classes_of,
    grouped_seconds,
)
from trajsim.scenario import load

R, DELTA, SAMPLES = 2.5, 0.3, 101
#: (class sizes, t_end, loss rate per spin, trajectories)
CASES = (((6, 6), 50.0, 0.0, 20), ((6, 6), 50.0, 0.01, 20), ((20, 20), 50.0, 0.0, 8),
         ((20, 20), 5.0, 0.002, 8), ((20, 20), 50.0, 0.002, 6), ((10, 10, 10, 10), 1.0, 0.0, 1))


def scenario(sizes, t_end: float, loss: float, trajectories: int) -> dict:
    deltas = np.linspace(DELTA, -DELTA, len(sizes))
    return {"name": "bench", "model": {"r": R, "groups": [{"N": n, "delta": float(d)}
                                                         for n, d in zip(sizes, deltas)]},
            "time": {"t_end": t_end, "n_samples": SAMPLES},
            "loss": {"rate_per_spin": loss},
            "run": {"trajectories": trajectories, "unit_size": trajectories, "store": "summary"}}


def trajsim_run(raw: dict) -> dict:
    """CPU seconds: set-up of the first block, per trajectory (the unit after it), events."""
    point = load(raw).points[0]
    start = time.process_time()
    setup = GROUPED.build(point)
    setup.block(setup.classes)
    built = time.process_time() - start
    n = point["run"]["trajectories"]
    start = time.process_time()
    result = GROUPED.run_unit(setup, WorkUnit(0, 0, 0, n), 1, True)
    per = (time.process_time() - start) / n
    events = result.frames["events"]
    return {"setup": built, "per": per, "events": len(events) / n,
            "losses": int((events.kind == "loss").sum()) / n,
            "modes": setup.block(setup.classes).eigenmodes is not None,
            "estimate": grouped_seconds(point)[0]}


#: QuTiP mcsolve options tried in turn: its defaults (atol 1e-8, rtol 1e-6), then the
#: tightened collapse-time search that Eq. (2) at r = 2.5 needs (docs/benchmarks.md).
QUTIP_OPTIONS = ({"atol": 1e-8, "rtol": 1e-6},
                 {"atol": 1e-8, "rtol": 1e-6, "norm_t_tol": 1e-10, "norm_steps": 100,
                  "norm_tol": 1e-6})


def qutip_run(raw: dict, n_traj: int) -> str:
    """QuTiP mcsolve CPU seconds per trajectory on the same problem, without loss, with the
    first of QUTIP_OPTIONS that runs (its collapse-time search may fail)."""
    import qutip
    point = load(raw).points[0]
    classes = classes_of(point)
    ops = groups.operators(classes, R)
    d = groups.dimension(classes)
    psi0 = qutip.basis(d, 0)
    H = qutip.Qobj(ops["H"])
    c_ops = [qutip.Qobj(ops["Sigma"])]
    e_ops = [qutip.Qobj(ops["Sy"] @ ops["Sy"])]
    times = np.linspace(0, point["time"]["t_end"], SAMPLES)
    failed = []
    for k, options in enumerate(QUTIP_OPTIONS):
        start = time.process_time()
        try:
            qutip.mcsolve(H, psi0, times, c_ops, e_ops=e_ops, ntraj=n_traj,
                          options={**options, "map": "serial", "progress_bar": False})
        except RuntimeError:  # "Could not find the collapse time within desired tolerance"
            failed.append(f"fails with options {k}")
            continue
        return "; ".join(failed + [f"{(time.process_time() - start) / n_traj:.3g}"
                                   + (f" (options {k})" if failed else "")])
    return "; ".join(failed)


def measured(N: int, readout: bool, trajectories: int = 40) -> tuple[float, float, int]:
    """(CPU s per trajectory, the model's, measurements per trajectory) of the shipped broadened
    scenario's width-0.3 point at N spins, with or without its weak readout."""
    raw = {"name": "bench", "model": {"N": N, "r": 1.5,
                                      "broadening": {"distribution": "gaussian", "width": 0.3,
                                                     "groups": 2}},
           "initial_state": {"kind": "dicke"}, "loss": {"times": [4.0]},
           "time": {"t_end": 8.0, "n_samples": 161},
           "measurement": {"kind": "weak", "sigma": 1.0, "period": 0.25} if readout else {},
           "run": {"trajectories": trajectories, "seed": 2021, "store": "summary"}}
    point = load(raw).points[0]
    setup = GROUPED.build(point)
    GROUPED.run_unit(setup, WorkUnit(0, 0, 0, 3), 1, False)  # its blocks, outside the timing
    start = time.process_time()
    GROUPED.run_unit(setup, WorkUnit(0, 0, 0, trajectories), 1, False)
    count = setup.instrument.times.size if setup.instrument else 0
    return (time.process_time() - start) / trajectories, grouped_seconds(point)[0], count


def measurements_table() -> None:
    print("| N | d | s/traj with readout | model | without | model | s per measurement | "
          "model |")
    print("|---|---|---|---|---|---|---|---|")
    for N in (12, 24, 40):
        d = (N // 2 + 1) ** 2
        (with_, model_with, count), (without, model_without, _) = (measured(N, True),
                                                                   measured(N, False))
        print(f"| {N} | {d} | {with_:.3g} | {model_with:.3g} | {without:.3g} | "
              f"{model_without:.3g} | {(with_ - without) / count:.3g} | "
              f"{GROUPED_S_PER_MEASUREMENT * d**1.5:.3g} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qutip-trajectories", type=int, default=4)
    parser.add_argument("--skip-qutip", action="store_true")
    parser.add_argument("--only-qutip", action="store_true",
                        help="the cases QuTiP runs, and trajsim on them")
    parser.add_argument("--measurements", action="store_true",
                        help="only the cost of an S_y measurement in eigenmodes")
    args = parser.parse_args()
    trajsim_run(scenario((2, 2), 1.0, 0.01, 2))  # compile the kernels
    print(f"# grouped engine, {platform.processor() or platform.machine()}, "
          f"{datetime.date.today()}, one thread, CPU time\n")
    if args.measurements:
        measurements_table()
        return
    print("| classes | d | t_end | loss/spin | route | set-up s | events/traj | losses/traj | "
          "s/traj | model s/traj | QuTiP mcsolve s/traj |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for sizes, t_end, loss, n in CASES:
        if args.only_qutip and (loss or len(sizes) != 2):
            continue
        raw = scenario(sizes, t_end, loss, n)
        mine = trajsim_run(raw)
        theirs = "—"
        if not args.skip_qutip and loss == 0 and len(sizes) == 2:
            theirs = qutip_run(raw, args.qutip_trajectories)
        d = int(np.prod([s + 1 for s in sizes]))
        route = "eigenmodes" if mine["modes"] else "Krylov"
        print(f"| {'+'.join(map(str, sizes))} | {d} | {t_end:g} | {loss:g} | {route} | "
              f"{mine['setup']:.3g} | {mine['events']:.0f} | {mine['losses']:.2g} | "
              f"{mine['per']:.3g} | {mine['estimate']:.2g} | {theirs} |", flush=True)


if __name__ == "__main__":
    main()
