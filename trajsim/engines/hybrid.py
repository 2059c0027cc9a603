"""The hybrid engine: exact jump trajectories of Eq. (9), spins + cavity + squeezed reservoir.

A trajectory is (N, j, psi) with psi[n, k] on Fock(n_max) ⊗ V_j (n photons, Dicke index
k = j + m), in the rotating frame of Eq. (8):

    H = g (a^dag S- + a S+) + Delta_c a^dag a,
    jumps   sqrt(kappa_sqz) (cosh r a + sinh r a^dag)   'cavity_sqz'  (the squeezed reservoir)
            sqrt(kappa_int) a                           'cavity_int'  (internal loss)
            the local dephasing and relaxation of Eq. (11), j-resolved as in the spin engine,
    no jump d psi/dt = -i H_eff psi,  H_eff = H - (i/2) sum_c L_c^dag L_c.

H_eff is sparse (five diagonals, seven in the reservoir's basis), not normal, and keeps the
parity of n + k; ``compiled.krylov`` propagates it by Arnoldi steps with an a-posteriori error
bound, in the state's parity sector when it has one, and finds the jump time as the root of
the norm.  A jump picks channel c with probability ||L_c psi||^2 over their sum.  Spin losses
are those of the spin engine (a Poisson process of rate gamma_loss N plus scripted times;
``dicke.loss_kraus`` on the spin factor, the cavity untouched), and S_y instruments act on the
spin factor (``compiled.readout.measure_spins``).  The whole event loop (steps, jumps, losses,
measurements, the samples' observables) is one compiled call per trajectory
(``compiled.hybrid_loop.run``), which returns to Python only for a block that is not built yet.
The cavity is cut in the Fock basis of a or of the reservoir's mode b (``hybrid.mode``) and
starts in the reservoir's squeezed vacuum (``hybrid.reservoir_vacuum``), the spins in
the scenario's initial state.  Per sample: the spin OBSERVABLES of the reduced state and the
cavity's ``hybrid.CAVITY_OBSERVABLES``.  The exact reference is ``hybrid.liouvillian``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from functools import cache, cached_property, partial

import numpy as np
import scipy.sparse as sp

from .. import dicke, exact, hybrid
from ..cavity import cavity_jump_rate
from ..compiled import NO_INSTRUMENT, OBSERVABLES
from ..compiled import hybrid_loop, krylov
from ..compiled.bands import band_expectations, used_diagonals
from ..compiled.hybrid_loop import S_N, S_STOP, S_TWO_J, T_POISSON, T_TIME, T_U
from ..compiled.streams import _uniform
from ..errors import ScenarioError
from ..instruments import _sy_basis
from ..memory import memory_budget
from ..model import Rates
from ..point import Point, measurement_times, stop_times
from . import (
    Engine,
    PointSetup,
    UnitResult,
    WorkUnit,
    driven,
    initial_ensemble,
    next_poisson_loss,
    pick,
)
from .driven import Blocks
from .jumps import DICKE, expected_jumps

#: Most CPU seconds one hybrid trajectory may be expected to take (a day of one core).
MAX_TRAJECTORY_S = 86400.0
#: Hybrid engine cost model (``_hybrid_seconds``; measured with benchmarks/bench_hybrid.py,
#: AMD EPYC, 2026-12-04): time reached by one Krylov step per unit of ``hybrid_norm`` (m = 12,
#: TOL = 1e-10: 16-25 over N = 4-1000, n_max = 8-60; 16.6-21 on 2026-12-05 counting the steps
#: made again in a larger window; a step's cost is ``krylov.step_seconds``), seconds per state
#: entry at a stop, per event (a jump or a loss: its channels' weights, in compiled code since
#: 2026-12-05; 2e-4 s of Python before), per multiply-add of an S_y
#: measurement (``readout.measure_spins``: 2 (n_max + 1) (N + 1)^2 of them; 0.8-1.4 ns
#: measured, 2026-12-05) and per block built and non-zero built (2.3 ms at N = 20, 3.8 ms at
#: N = 100 with its loss Kraus operators, 2026-12-05).
HYBRID_REACH = 16.0
HYBRID_S_PER_ENTRY = 1.5e-8
HYBRID_EVENT_S = 1e-5
#: A trajectory's cost besides its steps, stops and events: its random streams, start and
#: calls of the compiled loop (0.06 ms of Python at N = 4-100) and the loop's own allocations;
#: fitted where it dominates, N = 4 (2026-12-05).
HYBRID_TRAJECTORY_S = 1.5e-4
HYBRID_S_PER_READOUT_MAC = 1e-9
HYBRID_BLOCK_S = 2e-3
HYBRID_S_PER_NNZ_BUILD = 3.5e-7

#: Events (jumps, losses) the compiled loop records before it returns to Python.
EVENT_BUFFER = 64
#: Event codes of the compiled loop: a cavity channel's is its index in ``cavity_factors``
#: (at most two), a spin channel's or loss outcome's SPIN_CODE + its index in SPIN_CHANNELS.
SPIN_CODE = 2
SPIN_CHANNELS = (*dicke.LOCAL_PROCESSES, "lost_down", "lost_up")

COLUMNS = OBSERVABLES + hybrid.CAVITY_OBSERVABLES


@dataclass(frozen=True)
class HybridBlock:
    """Block (N, j): A = -i H_eff on psi.ravel() (index n (2j+1) + k; ``krylov.Generator``,
    with its two parity sectors n + k even and odd, which H_eff never mixes), its jump
    channels and (if ``lossy``) its loss Kraus operators, and the block as the compiled event
    loop takes it (``packed``; the S_y basis if ``measured``).

    ``channels``: (name, 2j after, Fock factor or None, spin factor or None: one of the two),
    sqrt(rate) folded in."""

    N: int
    two_j: int
    generator: krylov.Generator
    channels: list
    cavity: hybrid.Cavity
    lossy: bool = False
    measured: bool = False

    @property
    def nbytes(self) -> int:
        return self.generator.nbytes

    @cached_property
    def losses(self) -> list:
        """The loss Kraus operators (name, 2j after, spin factor)."""
        return [("lost_up" if up else "lost_down", two_j1,
                 dicke.loss_kraus(self.N, self.two_j, two_j1, up))
                for two_j1 in (dicke.loss_targets(self.N, self.two_j) if self.N > 0 else [])
                for up in (False, True)]

    @cached_property
    def packed(self) -> tuple:
        """``hybrid_loop``'s block: (parts, anorm, spin channels, losses, B, used_b, U, my),
        the channels and losses as sparse spin factors with their event codes (``SPIN_CODE``)
        (no losses unless ``lossy``), B and used_b the spin observables' bands
        (``observable_bands``), U and my the S_y basis of j (``instruments._sy_basis``; empty
        unless ``measured``)."""
        spins = [(name, after, S) for name, after, _, S in self.channels if S is not None]
        losses = self.losses if self.lossy else []
        B, _, used_b, _ = observable_bands(self.two_j, self.cavity)
        my, U = _sy_basis(self.two_j) if self.measured else (np.zeros(0), np.zeros((0, 0)))
        return (self.generator.parts, self.generator.anorm, _sparse(spins, self.two_j),
                _sparse(losses, self.two_j), B, used_b, np.ascontiguousarray(U, complex),
                np.ascontiguousarray(my, float))

    @property
    def shape(self) -> tuple[int, int]:
        return self.cavity.n_max + 1, self.two_j + 1


def _sparse(operators: list, two_j: int) -> tuple:
    """(codes, 2j after, offsets, rows, cols, values) of spin factors [(name, 2j after, K)]:
    K's non-zeros in [offsets[c], offsets[c + 1]) (``hybrid_loop``'s module docstring)."""
    coos = [sp.coo_matrix(K) for *_, K in operators]
    for coo in coos:
        coo.eliminate_zeros()
    return (np.array([SPIN_CODE + SPIN_CHANNELS.index(name) for name, *_ in operators], np.int64),
            np.array([after for _, after, _ in operators], np.int64),
            np.cumsum([0] + [coo.nnz for coo in coos]).astype(np.int64),
            np.concatenate([coo.row for coo in coos] + [[]]).astype(np.int64),
            np.concatenate([coo.col for coo in coos] + [[]]).astype(np.int64),
            np.concatenate([coo.data for coo in coos] + [[]]).astype(complex))


def generator(N: int, two_j: int, cavity: hybrid.Cavity, rates: Rates):
    """(A = -i H_eff sparse, channels) of block (N, j) (module docstring; A from
    ``hybrid.no_jump_generator``), on Fock ⊗ V_j."""
    channels = [(name, two_j, np.sqrt(rate) * L, None)
                for name, rate, L in hybrid.cavity_channels(cavity)]
    for name, rate in rates.local().items():
        for two_j1, two_jp in dicke.local_targets(N, two_j):
            K = dicke.local_kraus(N, two_j, name, two_j1, two_jp)
            channels.append((name, two_jp, None, np.sqrt(rate) * K))
    return hybrid.no_jump_generator(N, two_j, cavity, rates), channels


def build_block(N: int, two_j: int, cavity: hybrid.Cavity, rates: Rates, lossy: bool = False,
                measured: bool = False) -> HybridBlock:
    """Block (N, j): its generator and parity sectors, and channels."""
    A, channels = generator(N, two_j, cavity, rates)
    n, k = np.divmod(np.arange(A.shape[0]), two_j + 1)
    return HybridBlock(N, two_j, krylov.Generator.of(A, (n + k) % 2, key=k), channels, cavity,
                       lossy, measured)


@dataclass
class HybridSetup(PointSetup):
    """What the hybrid engine needs for one sweep point (blocks built lazily, shared by threads:
    ``driven.Blocks``; so is the no-jump path from a pure initial state, ``shared_path``)."""

    cavity: hybrid.Cavity
    rates: Rates
    two_j: int
    weights: np.ndarray
    states: np.ndarray
    blocks: Blocks = None
    lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    shared: tuple | None = field(default=None, init=False)
    vacuum: np.ndarray = field(default=None, init=False)

    def __post_init__(self):
        lossy = self.loss_rate > 0 or self.script_times.size > 0
        measured = self.instrument is not None
        self.blocks = Blocks(lambda key: build_block(*key, self.cavity, self.rates, lossy,
                                                     measured))
        self.vacuum = hybrid.reservoir_vacuum(self.cavity)

    def block(self, N: int, two_j: int) -> HybridBlock:
        """Block (N, j), built on first use."""
        return self.blocks((N, two_j))

    def initial_state(self, member: int) -> np.ndarray:
        """x = psi.ravel() of the initial ensemble's member: the reservoir's squeezed vacuum
        times the spins' state."""
        return np.outer(self.vacuum, self.states[member]).astype(complex).ravel()

    @cached_property
    def loop_arguments(self) -> tuple:
        """(schedule, cavity, losses, readout) of ``hybrid_loop.run``."""
        stops, _, sample_of, is_sample = self.schedule
        lower, upper = cavity_factors(self.cavity)[1:]
        _, C, _, used_c = observable_bands(self.two_j, self.cavity)
        instrument = self.instrument
        return ((stops, is_sample, sample_of.astype(np.int64), self.is_measured),
                (lower, upper, C, used_c), (self.script_times, self.loss_rate),
                (instrument.kind if instrument else NO_INSTRUMENT,
                 float(instrument.sigma) if instrument else 0.0))

    def shared_path(self) -> tuple[krylov.NoJumpPath, np.ndarray] | None:
        """For a pure initial state: the no-jump path of its first stretch, which every
        trajectory shares until it jumps (``krylov.NoJumpPath``), and the observables of its
        states, traced on first use; None for a mixed one."""
        if self.weights.size > 1:
            return None
        with self.lock:
            if self.shared is None:
                block = self.block(self.point["model"]["N"], self.two_j)
                path = krylov.NoJumpPath.of(block.generator, self.initial_state(0), 0.0,
                                            self.schedule[0], 0, self.stretch_end(0),
                                            krylov.new_step(block.generator.anorm))
                psis = path.X.reshape(-1, *block.shape)
                self.shared = path, observables(psis, self.two_j, self.cavity)
            return self.shared


#: Every observable is at most quadratic in a, a^dag or S+-, S_z: its matrix lies within
#: BAND of the diagonal, so only those diagonals of the reduced states are needed.
BAND = 2


def _bands(ops: list) -> np.ndarray:
    """B[o, BAND + delta, k] = ops[o][k + delta, k] (0 outside the matrix)."""
    dim = ops[0].shape[0]
    B = np.zeros((len(ops), 2 * BAND + 1, dim), complex)
    for o, op in enumerate(ops):
        coo = sp.coo_matrix(op)
        coo.sum_duplicates()
        delta = coo.row - coo.col
        inside = np.abs(delta) <= BAND
        if np.any(coo.data[~inside]):
            raise AssertionError("an observable outside the band")
        B[o, BAND + delta[inside], coo.col[inside]] = coo.data[inside]
    return B


@cache
def _spin_bands(two_j: int) -> np.ndarray:
    ops = exact.observable_matrices(two_j, sparse=True)
    return _bands([ops[name] for name in OBSERVABLES[2:]])


@cache
def _cavity_bands(cavity: hybrid.Cavity) -> np.ndarray:
    ops = hybrid.cavity_observables(cavity)
    return _bands([ops[name] for name in hybrid.CAVITY_OBSERVABLES])


@cache
def observable_bands(two_j: int, cavity: hybrid.Cavity) -> tuple:
    """(B, C, used_b, used_c) of ``bands.band_expectations`` for block j's COLUMNS after N and
    j: the spin observables' diagonals, the cavity's, and which of them hold entries."""
    B, C = _spin_bands(two_j), _cavity_bands(cavity)
    return B, C, used_diagonals(B), used_diagonals(C)


@cache
def cavity_factors(cavity: hybrid.Cavity) -> tuple[list, np.ndarray, np.ndarray]:
    """(names, lower, upper) of the cavity's jumps F_c = sqrt(kappa_c) L_c
    (``hybrid.cavity_channels``) as ``hybrid_loop`` takes them: lower[c, n] = F_c[n, n - 1],
    upper[c, n] = F_c[n, n + 1], the only entries of F_c."""
    channels = hybrid.cavity_channels(cavity)
    fock = cavity.n_max + 1
    lower, upper = np.zeros((len(channels), fock)), np.zeros((len(channels), fock))
    for c, (_, rate, L) in enumerate(channels):
        F = np.sqrt(rate) * L
        lower[c, 1:], upper[c, :-1] = np.diag(F, -1), np.diag(F, 1)
        assert np.array_equal(F, np.diag(lower[c, 1:], -1) + np.diag(upper[c, :-1], 1)), \
            "a cavity jump that does not move n by one"
    return [name for name, *_ in channels], lower, upper


def observables(psis: np.ndarray, two_j: int, cavity: hybrid.Cavity) -> np.ndarray:
    """COLUMNS after N and j of the states psis[sample, n, k] of one block (normalised here;
    n in the cavity's basis): Tr(rho O) of the reduced spin and cavity states, all samples in
    one pass, O(d) each (``compiled.bands``)."""
    out = np.empty((len(psis), len(COLUMNS) - 2))
    band_expectations(np.ascontiguousarray(psis), *observable_bands(two_j, cavity), out)
    return out


class HybridEngine(Engine):
    """Exact jump trajectories of Eq. (9) (module docstring)."""

    @staticmethod
    def seconds(point: dict) -> tuple[float, float]:
        return _hybrid_seconds(point)

    @staticmethod
    def events(point: dict) -> float:
        return _hybrid_events(point)

    @staticmethod
    def check(point: dict, label: str, unit_size: int) -> None:
        """Refuse a block beyond the memory budget (naming the larger of its two factors, N + 1
        spin states or n_max + 1 photon states) or a trajectory beyond a day of one core, then
        the jump engine's limits on the spins."""
        N, budget = point["model"]["N"], memory_budget()
        needed = hybrid_block_bytes(point)
        if needed > budget:
            key = "model.N" if N > point["model"]["n_max"] else "model.n_max"
            raise ScenarioError(f"{label}{key}: N = {N} spins with "
                                f"{point['model']['n_max']} photons need about "
                                f"{needed / 2**30:.3g} GiB per block (memory grows as "
                                f"N n_max); at most {budget / 2**30:.0f} GiB is available")
        seconds = _hybrid_seconds(point)[0]
        if seconds > MAX_TRAJECTORY_S:
            raise ScenarioError(f"{label}time.t_end: about {seconds:.2g} CPU s per hybrid "
                                f"trajectory expected up to t_end = {point['time']['t_end']:g} "
                                f"(at most {MAX_TRAJECTORY_S:g}: a day of one core); shorten "
                                "time.t_end or lower N and n_max")
        DICKE.check(point, label, unit_size)

    @staticmethod
    def columns(point: dict) -> tuple[str, ...]:
        return COLUMNS

    @staticmethod
    def build(point: Point) -> HybridSetup:
        two_j, weights, states = initial_ensemble(point)
        return HybridSetup(**PointSetup.of(point), cavity=hybrid.Cavity.of(point["model"]),
                           rates=point.rates(), two_j=two_j,
                           weights=weights, states=states)

    @staticmethod
    def run_unit(setup: HybridSetup, unit: WorkUnit, seed: int, keep: bool) -> UnitResult:
        table = _Table(setup)
        table.add(setup.point["model"]["N"], setup.two_j)
        return driven.run_unit(setup, unit, seed, keep, COLUMNS, _start,
                               partial(_drive, table=table))


class _Table:
    """The blocks of one unit's trajectories as ``hybrid_loop.run`` takes them: ``table`` (a
    typed list of ``HybridBlock.packed``) and ``where[N, 2j]`` (its index, -1 if not there).
    Blocks come from the setup's (``HybridSetup.block``); past its memory budget the table
    starts again with the block asked for (they are rebuilt, the same bits, when needed)."""

    def __init__(self, setup: HybridSetup):
        self.setup = setup
        N = setup.point["model"]["N"]
        self.where = np.full((N + 1, N + 1), -1, np.int64)
        self.table, self.nbytes = None, 0

    def add(self, N: int, two_j: int) -> None:
        """Put block (N, j) in the table."""
        block = self.setup.block(N, two_j)
        if self.table is None or self.nbytes + block.nbytes > self.setup.blocks.budget:
            self.table, self.nbytes = hybrid_loop.new_table(block.packed), 0
            self.where[:] = -1
            self.where[N, two_j] = 0
        else:
            self.where[N, two_j] = hybrid_loop.add_block(self.table, block.packed)
        self.nbytes += block.nbytes


@dataclass
class _Trajectory:
    """One hybrid trajectory between calls of ``hybrid_loop.run``: x (a buffer of the largest
    block's size) holds psi.ravel(), state_f and state_i the rest (``hybrid_loop``'s T_* and
    S_*), step the Krylov step carried between calls."""

    x: np.ndarray
    state_f: np.ndarray
    state_i: np.ndarray
    step: np.ndarray
    rng: np.ndarray


def _start(setup: HybridSetup, rng: np.ndarray) -> _Trajectory:
    """A trajectory from its random stream: the initial ensemble's member, the cavity in the
    reservoir's squeezed vacuum, its no-jump threshold and first Poisson loss."""
    N = setup.point["model"]["N"]
    member = pick(list(setup.weights), rng) if setup.weights.size > 1 else 0
    anorm = setup.block(N, setup.two_j).generator.anorm
    x = np.zeros((setup.cavity.n_max + 1) * (N + 1), complex)
    start = setup.initial_state(member)
    x[:start.size] = start
    u = _uniform(rng)
    poisson = next_poisson_loss(0.0, setup.loss_rate, N, rng)
    return _Trajectory(x, np.array([0.0, u, poisson]), np.array([0, N, setup.two_j, 0, 0]),
                       krylov.new_step(anorm), rng)


def _drive(tr: _Trajectory, setup: HybridSetup, row: int, rng_meas: np.ndarray,
           samples: np.ndarray, outcomes: np.ndarray, outcome_N: np.ndarray, events: list,
           table: _Table) -> None:
    """Run trajectory ``tr`` (``hybrid_loop.run``, building the blocks it asks for): samples,
    outcomes and events (row, t, kind, channel, N, 2j after, 2j before) appended.  From a pure
    initial state whose first loss comes after the first measurement (or the end), it follows
    the setup's shared no-jump path (``HybridSetup.shared_path``) up to the path's last
    checkpoint before its own jump: the same bits as its own steps."""
    (stops, is_sample, sample_of, is_measured), *_ = setup.loop_arguments
    shared = setup.stretch_end(0)
    t_loss = min([tr.state_f[T_POISSON], *setup.script_times[:1]])
    if t_loss > stops[shared - 1] and setup.shared_path() is not None:
        path, values = setup.shared_path()
        start = path.checkpoint(tr.state_f[T_U])
        if start is None:  # no jump on it: its end, then the measurement there (if one)
            t, x, tr.step = path.end()
            k = shared - 1 if is_measured[shared - 1] else shared
        else:
            k, x, t, tr.step = start
        tr.x[:x.size], tr.state_f[T_TIME], tr.state_i[S_STOP] = x, t, k
        rows = sample_of[:k][is_sample[:k]]
        samples[rows, 0], samples[rows, 1], samples[rows, 2:] = \
            tr.state_i[S_N], setup.two_j / 2, values[:k][is_sample[:k]]
    names = cavity_factors(setup.cavity)[0]
    outcomes = outcomes.reshape(-1, setup.instrument.per_time if setup.instrument else 1)
    buffer = np.empty((EVENT_BUFFER, 5))
    while True:
        outcome, count = hybrid_loop.run(table.table, table.where, *setup.loop_arguments,
                                         tr.x, tr.state_f, tr.state_i, tr.step, tr.rng,
                                         rng_meas, outcomes, outcome_N, samples, buffer)
        for t, code, N, two_j, before in buffer[:count]:
            code = int(code)
            channel = names[code] if code < SPIN_CODE else SPIN_CHANNELS[code - SPIN_CODE]
            events.append((row, t, "loss" if channel.startswith("lost") else "jump", channel,
                           int(N), int(two_j), int(before)))
        if outcome == hybrid_loop.DONE:
            return
        if outcome == hybrid_loop.NEED_BLOCK:
            table.add(int(tr.state_i[S_N]), int(tr.state_i[S_TWO_J]))


def hybrid_sizes(point: dict) -> tuple[int, int]:
    """(d, nnz) of the generator of the hybrid block (N, N/2): d = (n_max + 1)(N + 1), and its
    non-zeros (the diagonal, a^dag S- and a S+, a^2 and a^dag^2 of the squeezed reservoir; in
    the reservoir's basis a = cosh r b - sinh r b^dag adds b S- and b^dag S+)."""
    m = point["model"]
    fock, spins = m["n_max"] + 1, m["N"] + 1
    exchange = 4 if m["cavity_basis"] == "reservoir" else 2
    return (fock * spins,
            fock * spins + exchange * (fock - 1) * (spins - 1) + 2 * (fock - 2) * spins)


def hybrid_block_bytes(point: dict) -> float:
    """Memory of the largest hybrid block: its generator and its two parity sectors (16 bytes
    per non-zero each, the sectors' indices and the states' order 8 bytes per state each), a
    trajectory's Krylov basis (m + 2 vectors of d) and the shared no-jump path (its
    checkpoints and its states at the stops, d each)."""
    d, nnz = hybrid_sizes(point)
    stops = stop_times(point).size
    return (32.0 * nnz + 16.0 * d
            + 16.0 * (krylov.KRYLOV_DIM + 2 + krylov.PATH_CHECKPOINTS + 1 + stops) * d)


def _hybrid_events(point: dict) -> float:
    """Expected jumps of a hybrid trajectory: the spin model's (``expected_jumps``) but with
    the collective decay at its rate near the dark state, gamma_coll <S+ S-> ~ gamma_coll N
    sinh^2 r, instead of its bound gamma_coll N (N + 2) / 4; the jumps of the cavity alone in
    its steady state (``cavity.cavity_jump_rate``: two per reservoir photon lost internally,
    the reservoir's jump restoring the squeezed vacuum, and those of a detuning, which rotates
    the squeezing away from the reservoir's: 0.026 per unit time at r = 0.5, kappa_int = 0.05,
    0.54 at Delta_c = 1; measured 3.8x the estimate without them), and cosh 2r per spin up at
    the start, which the cavity carries away (measured: 1.7 per spin from a coherent spin state
    at r = 0.5)."""
    m, init = point["model"], point["initial_state"]
    N, t_end = m["N"], point["time"]["t_end"]
    if init["kind"] == "css":
        up = N * (1 + math.cos(init["theta"])) / 2  # theta = pi: all down
    elif init["kind"] == "steady":
        up = 0.0
    else:
        up = N / 2 + (init["m"] if init["m"] is not None else -N / 2)
    collective = m["gamma_coll"] * (N * math.sinh(m["r"]) ** 2 - N * (N + 2) / 4) * t_end
    cavity_jumps = cavity_jump_rate(m["kappa_sqz"], m["kappa_int"], m["r"], m["Delta_c"]) * t_end
    return expected_jumps(point) + collective + cavity_jumps + math.cosh(2 * m["r"]) * up


def _hybrid_seconds(point: dict) -> tuple[float, float]:
    """(CPU seconds per trajectory, once-per-process set-up) of the hybrid engine.  A trajectory
    takes a Krylov step per HYBRID_REACH / ||A|| of time (||A||: ``hybrid_norm``), one more at
    each measurement and half a step more at each event (jump, loss: it cuts a step short at a
    random point), each step costing ``krylov.step_seconds`` in one parity sector (half the
    block) unless the initial state or an S_y measurement mixes the two
    (``driven.one_sector``), and in its window (``window_fraction``); each stop
    (sample or measurement) expands the state, HYBRID_S_PER_ENTRY per entry; each measurement
    rotates the spin factor to the S_y basis and back (HYBRID_S_PER_READOUT_MAC per
    multiply-add), each event costs HYBRID_EVENT_S and each trajectory HYBRID_TRAJECTORY_S
    more.  Events: the jumps (``_hybrid_events``)
    and the losses, at a steady rate.  From a pure initial state the first stretch (to the first
    measurement or scripted loss) is stepped once per process (``HybridSetup.shared_path``)
    and each trajectory steps only what follows its first event there.  Set-up: each block's
    generator, O(nnz), and that shared stretch; the blocks: those of the N left after the
    losses (their mean + 3 SD) times the j that the local jumps reach (about the square root
    of their number: 5-6 j per N measured at N = 20 and 100, 2026-12-05)."""
    m, t_end = point["model"], point["time"]["t_end"]
    d, nnz = hybrid_sizes(point)
    stops, measured = stop_times(point).size, measurement_times(point)
    measurements = measured.size
    losses = point["loss"]["rate_per_spin"] * m["N"] * t_end + len(point["loss"]["times"])
    events = _hybrid_events(point) + losses
    first = min([t_end, *measured[:1], *point["loss"]["times"]])
    shared = first if point["initial_state"]["kind"] != "steady" else 0.0
    rate = events / t_end if t_end > 0 else 0.0
    alone = shared - (1.0 - math.exp(-rate * shared)) / rate if rate > 0 else 0.0
    stepped = (t_end - shared + alone) / t_end if t_end > 0 else 1.0  # share of time stepped
    per_step = krylov.step_seconds(*(window_fraction(point)
                                     * (0.5 if driven.one_sector(point) else 1.0)
                                     * np.array([d, nnz])))
    steps = stepped * t_end * hybrid_norm(point) / HYBRID_REACH + measurements + events / 2
    readout = 2.0 * (m["n_max"] + 1) * (m["N"] + 1) ** 2 * HYBRID_S_PER_READOUT_MAC
    per_trajectory = (HYBRID_TRAJECTORY_S + steps * per_step
                      + stepped * stops * d * HYBRID_S_PER_ENTRY
                      + measurements * readout + events * HYBRID_EVENT_S)
    blocks = 1 + min(m["N"], math.ceil(losses + 3 * math.sqrt(losses)))
    local = m["N"] * (m["gamma_phi"] / 2 + m["gamma_rel"]) * t_end  # local jumps, at most
    blocks *= min(1 + m["N"] // 2, 1 + math.ceil(math.sqrt(local)))  # the j they reach
    path = shared * hybrid_norm(point) / HYBRID_REACH * per_step + stops * d * HYBRID_S_PER_ENTRY
    return per_trajectory, blocks * (HYBRID_BLOCK_S + nnz * HYBRID_S_PER_NNZ_BUILD) + path


def window_fraction(point: dict) -> float:
    """The share of the block a Krylov step works on (``krylov.advance_through``'s window:
    the Dicke levels that hold the state) for a trajectory from a Dicke state with few spins up
    (or few down): WINDOW_MARGIN layers of k above those where the squeezed reservoir's
    steady spin state, ~tanh(r)^k, is above WINDOW_TOL^2 (k ~ 2 ln(1/WINDOW_TOL) / -ln tanh r);
    1 (the whole block) from any other initial state, or with S_y measurements (they spread
    the state over k: measured)."""
    m, init = point["model"], point["initial_state"]
    if measurement_times(point).size:
        return 1.0
    squeeze = -math.log(math.tanh(abs(m["r"]))) if m["r"] else math.inf
    layers = krylov.WINDOW_MARGIN + 2 * math.log(1 / krylov.WINDOW_TOL) / squeeze
    j = init["j"] or m["N"] / 2
    up = j + (init["m"] if init["m"] is not None else -j)
    if init["kind"] != "dicke" or min(up, 2 * j - up) > layers / 2:
        return 1.0
    return min(1.0, layers / (m["N"] + 1))


def hybrid_norm(point: dict) -> float:
    """A bound on ||A|| of the hybrid block (N, N/2): 2 g sqrt(n_max) (N/2 + 1) from H, and half
    the decay, kappa_sqz e^(2|r|) n_max + kappa_int n_max + the local rates' N; in the
    reservoir's basis the exchange grows by e^|r| and the two cavity decays swap their e^(2|r|)."""
    m = point["model"]
    N, n_max, stretch = m["N"], m["n_max"], math.exp(2 * abs(m["r"]))
    reservoir = m["cavity_basis"] == "reservoir"
    sqz, internal = (1.0, stretch) if reservoir else (stretch, 1.0)
    exchange = 2 * m["g"] * math.sqrt(n_max) * (N / 2 + 1) * (math.sqrt(stretch) if reservoir
                                                              else 1.0)
    return (exchange + abs(m["Delta_c"]) * n_max * (stretch if reservoir else 1.0)
            + 0.5 * (m["kappa_sqz"] * sqz * n_max + m["kappa_int"] * internal * n_max
                     + (m["gamma_rel"] + m["gamma_phi"] / 2) * N))


HYBRID = HybridEngine()
