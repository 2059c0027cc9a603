"""The exact jump trajectories of Eq. (2)/(11) with spin loss in the Dicke blocks (N, j)
(``trajsim.compiled``: compiled kernels), with their cost and memory models."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
from scipy.linalg import eigvalsh_tridiagonal

from ..compiled import CHANNELS, LOSS_CODE, OBSERVABLES, BlockTable, rng_states, simulate
from ..errors import ScenarioError
from ..memory import memory_budget
from ..point import Point, measurement_times
from ..stats import UnitStats
from . import (
    Engine,
    PointSetup,
    UnitResult,
    WorkUnit,
    initial_ensemble,
    measurement_frame,
    readout_shots,
    trajectory_frame,
)

#: Most expected jumps per trajectory (about a day of one core).
MAX_JUMPS = 1e11


@dataclass
class DickeSetup(PointSetup):
    """Everything the Dicke-block engine needs for one sweep point."""

    table: BlockTable
    two_j: int
    weights: np.ndarray
    states: np.ndarray
    shots: int  # the per-sample Sy2_shots readout (measurement.kind none)


class DickeEngine(Engine):
    """Exact jump trajectories of Eq. (2)/(11) with spin loss in the Dicke blocks (N, j)."""

    @staticmethod
    def columns(point: dict) -> tuple[str, ...]:
        """The observables, and Sy2_shots with ``measurement.shots`` and no instrument."""
        return OBSERVABLES + (("Sy2_shots",) if readout_shots(point) else ())

    @staticmethod
    def build(point: Point) -> DickeSetup:
        two_j, weights, states = initial_ensemble(point)
        if np.all(states.imag == 0):
            states = np.ascontiguousarray(states.real)
        shots, common = readout_shots(point), PointSetup.of(point)
        table = BlockTable(point.rates(), sy_basis=bool(shots or common["instrument"]))
        return DickeSetup(**common, table=table, two_j=two_j, weights=weights, states=states,
                          shots=shots)

    @staticmethod
    def run_unit(setup: DickeSetup, unit: WorkUnit, seed: int, keep: bool) -> UnitResult:
        index = np.arange(unit.first, unit.first + unit.count)
        samples, events = simulate(setup.table, setup.point["model"]["N"], setup.two_j,
                                   setup.weights, setup.states, setup.t_grid,
                                   setup.script_times, setup.loss_rate,
                                   rng_states(seed, unit.point, index), record_events=keep,
                                   shots=setup.shots,
                                   rng_meas=rng_states(seed, unit.point, index, stream=1)
                                   if setup.shots or setup.instrument else None,
                                   instrument=setup.instrument)
        stats = UnitStats.of(samples, setup.point["model"]["N"])
        if not keep:
            return UnitResult(stats)
        traj = trajectory_frame(unit.point, index, setup.t_grid, samples,
                                DickeEngine.columns(setup.point))
        codes = events["channel"]
        ev = pd.DataFrame({
            "point": np.full(codes.size, unit.point, np.int64),
            "trajectory": index[events["row"]].astype(np.int64),
            "t": events["t"],
            "kind": np.where(codes >= LOSS_CODE, "loss", "jump").astype(object),
            "channel": np.asarray(CHANNELS, dtype=object)[codes],
            "N": events["N"].astype(np.int64),
            "j": events["two_j"] / 2.0,
            "j_before": events["two_j_before"] / 2.0,
        })
        frames = {"trajectories": traj, "events": ev}
        if setup.instrument:
            outcomes = events["outcomes"]
            frames["measurements"] = measurement_frame(
                unit.point, index[outcomes["row"]], outcomes["t"], outcomes["outcome"],
                outcomes["N"])
        return UnitResult(stats, frames)

    @staticmethod
    def seconds(point: dict) -> tuple[float, float]:
        """(CPU seconds per trajectory, set-up): every jump and every sample costs about
        ``seconds_per_jump`` (``expected_jumps``), COMPLEX_FACTOR more with complex
        amplitudes."""
        per_trajectory = ((expected_jumps(point) + point["time"]["n_samples"])
                          * seconds_per_jump(point["model"]["N"]))
        if point["measurement"]["kind"] != "none" or point["model"]["chi"] != 0:
            per_trajectory *= COMPLEX_FACTOR  # the state is complex (S_y basis, twisting phases)
        return per_trajectory, 0.0

    @staticmethod
    def events(point: dict) -> float:
        return expected_jumps(point)

    @staticmethod
    def check(point: dict, label: str, unit_size: int) -> None:
        """Refuse blocks beyond the memory budget, more than MAX_JUMPS expected jumps per
        trajectory, or stored events beyond memory."""
        check_blocks(point, label)
        jumps, budget = expected_jumps(point), memory_budget()
        if jumps > MAX_JUMPS:
            raise ScenarioError(f"{label}time.t_end: about {jumps:.2g} jumps per trajectory "
                                f"expected up to t_end = {point['time']['t_end']:g} (at most "
                                f"{MAX_JUMPS:.0e}: about a day of one core); shorten time.t_end "
                                "or lower the rates")
        events = 41.0 * jumps * unit_size
        if point["run"]["store"] == "trajectories" and events > budget:
            raise ScenarioError(f"{label}run.store: recording about {jumps:.2g} jumps per "
                                f"trajectory needs about {events / 2**30:.3g} GiB per work unit; "
                                "use run.store: summary, a smaller run.unit_size or a shorter "
                                "time.t_end")


def check_blocks(point: dict, label: str) -> None:
    """Refuse a spin number whose largest Dicke block does not fit the memory budget."""
    N, budget = point["model"]["N"], memory_budget()
    needed = _block_bytes(N)
    if needed > budget:
        raise ScenarioError(f"{label}model.N: N = {N} needs about {needed / 2**30:.0f} GiB per "
                            f"block (memory grows as N^2); at most {budget / 2**30:.0f} GiB is "
                            "available")


def _block_bytes(N: int) -> float:
    """Memory of the largest block and its loss neighbours: V and two channel matrices."""
    return 3 * 3 * 8 * (N + 1) ** 2 / 2


@cache
def _odd_jump_rate(N: int, r: float) -> float:
    """Steady Eq. (2) jump rate per Gamma of an odd-N ensemble in j = N/2, (2j+1)/sum 1/lambda_k
    (Eq. 16: rho ∝ (Sigma^dag Sigma)^-1), the largest steady jump rate a trajectory meets."""
    two_j = N if N % 2 else N - 1
    if two_j < 1:
        return 0.0
    k = np.arange(two_j + 1)
    m = k - two_j / 2
    a = np.sqrt((two_j / 2 - m[:-1]) * (two_j / 2 + m[:-1] + 1))  # <m+1|J+|m>
    below, above = np.concatenate(([0.0], a)), np.concatenate((a, [0.0]))
    diag = np.cosh(r) ** 2 * below**2 + np.sinh(r) ** 2 * above**2
    off2 = -np.cosh(r) * np.sinh(r) * a[1:] * a[:-1]
    inverse_sum = 0.0
    for sector in (k[0::2], k[1::2]):
        lam = diag[sector] if sector.size < 2 else eigvalsh_tridiagonal(diag[sector],
                                                                        off2[sector[:-1]])
        inverse_sum += np.sum(1.0 / np.maximum(lam, 1e-300))
    return (two_j + 1) / inverse_sum


def odd_time(point: dict) -> float:
    """Expected time the spin number is odd up to t_end.  Losses flip the parity: Poisson ones
    at rate kappa = gamma_loss N (N taken constant) make E[(-1)^(N(t)+1)] decay as
    exp(-2 kappa t), scripted ones flip its sign; the odd time is the integral of
    (1 + E[...]) / 2."""
    N, t_end = point["model"]["N"], point["time"]["t_end"]
    kappa = point["loss"]["rate_per_spin"] * N
    bias, total, t = (1.0 if N % 2 else -1.0), 0.0, 0.0
    for t_next in sorted(min(x, t_end) for x in point["loss"]["times"]) + [t_end]:
        span = t_next - t
        decay = np.exp(-2 * kappa * span)
        mean_bias = bias * ((1 - decay) / (2 * kappa * span) if kappa * span > 1e-12 else 1.0)
        total += span * (1 + mean_bias) / 2 if span > 0 else 0.0
        bias, t = -bias * decay, t_next
    return total


def expected_jumps(point: dict) -> float:
    """A rough expected number of jumps of one trajectory over the run: the steady odd-N rate
    of Eq. (2) over the expected odd time (``odd_time``), about 0.7 N jumps back to the steady
    state after each projective S_y outcome (measured at N = 40 and 200), collective decay at
    most gamma_coll N(N+2)/4 and the local channels N (gamma_phi / 2 + gamma_rel) over t_end
    ((gamma_phi / 2) D[sigma_z] jumps at gamma_phi / 2 per spin; relaxation at most gamma_rel)."""
    m = point["model"]
    N, t_end = m["N"], point["time"]["t_end"]
    jumps = m["Gamma"] * _odd_jump_rate(N, m["r"]) * odd_time(point) if m["Gamma"] > 0 else 0.0
    if point["measurement"]["kind"] == "projective":
        jumps += 0.7 * N * measurement_times(point).size
    return jumps + (m["gamma_coll"] * N * (N + 2) / 4
                    + N * (m["gamma_phi"] / 2 + m["gamma_rel"])) * t_end


def seconds_per_jump(N: int) -> float:
    """One core's time per jump, 0.9 + 0.006 N + 1.6e-5 N^2 µs, and 7.8e-5 N^2 µs past N = 500,
    where the block's matrices leave the cache and the product runs at memory bandwidth: a fit
    to the costs measured at N = 21 ... 2001 (benchmarks/bench_per_jump.py, docs/benchmarks.md:
    1.19, 1.48, 1.72, 2.83, 6.33, 47, 312 µs), within ~15 %."""
    small = 0.9 + 0.006 * N + 1.6e-5 * N * N
    return 1e-6 * (max(small, 7.8e-5 * N * N) if N > 500 else small)


#: The jump trajectories of a point with an S_y instrument or one-axis twisting carry complex
#: amplitudes: a jump costs this much more (fitted to one-thread runs of the shipped N = 40
#: scenarios with a weak or projective readout, 2026-12-04, docs/benchmarks.md).
COMPLEX_FACTOR = 1.8


DICKE = DickeEngine()
