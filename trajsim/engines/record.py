"""The record-level engine: trajectories of what an experiment records, not of every jump.

In a sensing run the Sigma jumps of Eq. (2) go unobserved; the record is the spin losses and
the S_y outcomes.  So a trajectory may carry rho, the density matrix of its block j = N/2
conditioned on its record, instead of a wave function conditioned on every jump (issue 14).
Between events rho evolves by the exact propagator of Eq. (2)/(11) (``exact.BlockPropagator``);
losses are a Poisson process of rate gamma_loss N plus the scripted times, independent of the
state, and act with the whole loss channel rho -> sum_s K_s rho K_s^dag (``dicke.loss_kraus``;
which spin state was lost is not recorded); an S_y outcome is drawn from rho and applied with
its Kraus operator, as ``compiled.kernels._measure_sy`` does for a wave function
(rho_y = U^dag rho U in the S_y eigenbasis, p_m = rho_y[m, m]):

    projective:  m drawn from p_m, outcome m_y, rho -> |j, m_y><j, m_y|;
    weak:        m drawn from p_m, outcome y = m_y + sigma z, rho_y -> rho_y ∘ a a^T,
                 a_m = exp(-(y - m_y)^2 / (4 sigma^2)), renormalised;
    copies:      the outcomes drawn from p_m, rho unchanged.

Every statistic of the record (outcomes, losses) is that of the jump-trajectory engine; the
per-sample values of the trajectories table are the record-conditioned means Tr(rho O), whose
average over trajectories is the ensemble value (docs/method.md).  The cost of an interval is
a dense product of dimension D^2 / 2 per coherence sector, batched over a unit's trajectories,
and does not depend on r; a Poisson loss at a random time costs two matrix exponentials.
Models whose state leaves j = N/2 (local dephasing or relaxation) need the jump engine.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd

from .. import dicke, exact
from ..compiled import OBSERVABLES, Instrument, rng_states
from ..instruments import _sy_basis
from ..memory import memory_budget
from ..point import Point, stop_times
from ..stats import UnitStats
from . import (
    Engine,
    Outcomes,
    PointSetup,
    UnitResult,
    WorkUnit,
    initial_ensemble,
    next_poisson_loss,
    sy_outcome,
    trajectory_frame,
)
from .jumps import check_blocks, expected_jumps

#: Record-level engine (benchmarks/bench_record_engine.py, 2026-11-25), n = (N + 1)^2 / 2 the
#: size of a coherence sector: seconds per trajectory and time step per n^2 (the batched sector
#: products), per trajectory and event of Python work, per random loss time per n^2 (two
#: products through the eigenmodes), and per block per n^3 (eigenmodes) and per grid step per
#: n^3 (matrix exponentials), all for both sectors.
RECORD_STEP_S_PER_N2 = 1.2e-9
RECORD_EVENT_S = 4e-5
RECORD_LOSS_S_PER_N2 = 8e-9
RECORD_MODES_S_PER_N3 = 2.6e-9
RECORD_EXPM_S_PER_N3 = 5e-10


@dataclass
class RecordSetup(PointSetup):
    """What the record-level engine needs for one sweep point (propagators built lazily per N)."""

    rho0: np.ndarray
    propagators: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def propagator(self, N: int) -> exact.BlockPropagator:
        with self.lock:
            if N not in self.propagators:
                self.propagators[N] = exact.BlockPropagator(N, N, self.point.rates())
            return self.propagators[N]


@cache
def _loss_kraus(N: int) -> tuple[np.ndarray, np.ndarray]:
    """The two Kraus operators of a loss from (N, N/2) to (N - 1, (N - 1)/2)."""
    return tuple(dicke.loss_kraus(N, N, N - 1, up) for up in (False, True))


def _lose_spin(vec: np.ndarray, N: int) -> np.ndarray:
    """vec(sum_s K_s rho K_s^dag) from block (N, N/2) to (N - 1, (N - 1)/2), renormalised."""
    rho = vec.reshape(N + 1, N + 1)
    out = sum(K @ rho @ K.conj().T for K in _loss_kraus(N))
    return (out / np.trace(out).real).ravel()


def _measure(vec: np.ndarray, N: int, instrument: Instrument, stream: np.ndarray,
             out: np.ndarray) -> np.ndarray:
    """One S_y measurement of vec(rho) (module docstring, ``engines.sy_outcome``); outcomes
    into ``out``."""
    my, U = _sy_basis(N)
    rho_y = U.conj().T @ vec.reshape(N + 1, N + 1) @ U
    a = sy_outcome(rho_y.diagonal().real, my, instrument, stream, out)
    if a is None:
        return vec
    rho = U @ (rho_y * np.outer(a, a)) @ U.conj().T
    return (rho / np.trace(rho).real).ravel()


class RecordEngine(Engine):
    """Record-conditioned density matrices of the block j = N/2 (module docstring)."""

    @staticmethod
    def why_not(point: dict) -> str | None:
        return record_why_not(point)

    @staticmethod
    def seconds(point: dict) -> tuple[float, float]:
        return record_seconds(point)

    @staticmethod
    def events(point: dict) -> float:
        return expected_jumps(point)  # the Sigma jumps it does not draw

    @staticmethod
    def check(point: dict, label: str, unit_size: int) -> None:
        check_blocks(point, label)

    @staticmethod
    def columns(point: dict) -> tuple[str, ...]:
        return OBSERVABLES

    @staticmethod
    def build(point: Point) -> RecordSetup:
        _, weights, states = initial_ensemble(point)
        rho0 = (states.T * weights) @ states.conj()
        return RecordSetup(**PointSetup.of(point), rho0=rho0 / np.trace(rho0).real)

    @staticmethod
    def run_unit(setup: RecordSetup, unit: WorkUnit, seed: int, keep: bool) -> UnitResult:
        index = np.arange(unit.first, unit.first + unit.count)
        n, N0 = unit.count, setup.point["model"]["N"]
        rng = rng_states(seed, unit.point, index)
        rng_meas = rng_states(seed, unit.point, index, stream=1)
        instrument, record = setup.instrument, Outcomes.of(setup.instrument, n)
        meas_times, per_time = record.times, record.per_time
        outcomes, outcome_N = record.values, record.N
        samples = np.zeros((n, setup.t_grid.size, len(OBSERVABLES)))
        N = np.full(n, N0)
        at = np.zeros(n)  # the time each state refers to
        vecs = [setup.rho0.ravel().astype(complex) for _ in range(n)]
        scripted = np.zeros(n, np.int64)
        poisson = np.array([next_poisson_loss(0.0, setup.loss_rate, N0, rng[i]) for i in range(n)])
        events: list[tuple[int, float, int]] = []
        grid = np.union1d(setup.t_grid, meas_times)
        sample, q, last = 0, 0, 0.0
        for T in grid:
            for i in range(n):  # losses up to and at T (before a measurement or sample at T)
                while N[i] > 0:  # an empty ensemble: later scripted losses are no-ops
                    is_scripted = (scripted[i] < setup.script_times.size
                                   and setup.script_times[scripted[i]] <= poisson[i])
                    t_loss = setup.script_times[scripted[i]] if is_scripted else poisson[i]
                    if t_loss > T:
                        break
                    vec = setup.propagator(N[i]).advance_once(vecs[i][:, None],
                                                              t_loss - at[i])[:, 0]
                    vecs[i] = _lose_spin(vec, N[i])
                    N[i] -= 1
                    at[i] = t_loss
                    scripted[i] += is_scripted
                    poisson[i] = next_poisson_loss(t_loss, setup.loss_rate, N[i], rng[i])
                    events.append((i, t_loss, N[i]))
            for i in np.flatnonzero(at != last):  # from a loss to T: a one-off interval
                vecs[i] = setup.propagator(N[i]).advance_once(vecs[i][:, None], T - at[i])[:, 0]
            for Nk in np.unique(N[at == last]):  # from the last grid time, batched per N
                rows = np.flatnonzero((N == Nk) & (at == last))
                X = setup.propagator(Nk).advance(np.stack([vecs[i] for i in rows], 1), T - last)
                for col, i in enumerate(rows):
                    vecs[i] = X[:, col]
            at[:] = last = T
            if q < meas_times.size and meas_times[q] == T:
                for i in range(n):
                    vecs[i] = _measure(vecs[i], N[i], instrument, rng_meas[i],
                                       outcomes[i, q * per_time:(q + 1) * per_time])
                    outcome_N[i, q] = N[i]
                q += 1
            if sample < setup.t_grid.size and setup.t_grid[sample] == T:
                for i in range(n):
                    samples[i, sample, 0], samples[i, sample, 1] = N[i], N[i] / 2
                    samples[i, sample, 2:] = (exact.observable_rows(N[i]) @ vecs[i]).real
                sample += 1
        stats = UnitStats.of(samples, N0)
        if not keep:
            return UnitResult(stats)
        return UnitResult(stats, _frames(setup, unit, index, samples, events, record))


def _frames(setup, unit, index, samples, events, record: Outcomes) -> dict:
    """The unit's trajectories, events (losses only, channel 'lost') and measurements tables."""
    traj = trajectory_frame(unit.point, index, setup.t_grid, samples, OBSERVABLES)
    events.sort(key=lambda e: (e[0], e[1]))
    rows = np.array([e[0] for e in events], np.int64)
    N_after = np.array([e[2] for e in events], np.int64)
    ev = pd.DataFrame({
        "point": np.full(rows.size, unit.point, np.int64),
        "trajectory": index[rows].astype(np.int64),
        "t": np.array([e[1] for e in events], float),
        "kind": np.full(rows.size, "loss", object),
        "channel": np.full(rows.size, "lost", object),
        "N": N_after,
        "j": N_after / 2.0,
        "j_before": (N_after + 1) / 2.0,
    })
    frames = {"trajectories": traj, "events": ev}
    if setup.instrument:
        frames["measurements"] = record.frame(unit.point, index)
    return frames


def record_why_not(point: dict) -> str | None:
    """Why the record-level engine cannot run a point (None if it can)."""
    model, init = point["model"], point["initial_state"]
    if model["gamma_phi"] or model["gamma_rel"]:
        return "local dephasing or relaxation moves j away from N/2"
    if init["kind"] == "dicke" and init["j"] is not None and 2 * init["j"] != model["N"]:
        return "the initial state is not in j = N/2"
    if point["measurement"]["kind"] == "none" and point["measurement"]["shots"]:
        return "the Sy2_shots readout samples the wave function of one unravelling"
    needed, budget = record_bytes(model["N"]), memory_budget()
    if needed > budget:
        return (f"its dense propagators at N = {model['N']} need about {needed / 2**30:.3g} GiB "
                f"(memory grows as N^4); at most {budget / 2**30:.0f} GiB is available")
    return None


def record_bytes(N: int) -> float:
    """Memory of the record-level engine's block at N: per coherence sector (n = (N+1)^2/2)
    the generator and up to 16 cached propagators (real, 8 n^2 bytes each) and the eigenmodes
    R and R^-1 (complex, 16 n^2 each)."""
    n = (N + 1) ** 2 / 2
    return 2 * (17 * 8 + 2 * 16) * n * n


def record_seconds(point: dict) -> tuple[float, float]:
    """(CPU seconds per trajectory, once-per-process set-up) of the record-level engine."""
    N, t_end = point["model"]["N"], point["time"]["t_end"]
    n = (N + 1) ** 2 / 2
    grid = stop_times(point)
    steps = np.unique([float(f"{tau:.12g}") for tau in np.diff(grid)]).size
    poisson = point["loss"]["rate_per_spin"] * N * t_end
    losses = poisson + len(point["loss"]["times"])
    per_trajectory = (grid.size * (RECORD_STEP_S_PER_N2 * n * n + RECORD_EVENT_S)
                      + poisson * RECORD_LOSS_S_PER_N2 * n * n)
    if steps > 16:  # more grid spacings than BlockPropagator caches: one exponential each
        per_trajectory += grid.size * RECORD_EXPM_S_PER_N3 * n**3
    blocks = 1 + min(N, np.ceil(losses + 3 * np.sqrt(losses)))  # N0 down to the most losses
    setup = blocks * n**3 * (min(steps, 16) * RECORD_EXPM_S_PER_N3
                             + (RECORD_MODES_S_PER_N3 if poisson else 0.0))
    return per_trajectory, setup


RECORD = RecordEngine()
