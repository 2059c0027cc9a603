"""The grouped engine: exact jump trajectories of classes of identical spins (``model.groups``).

Class k holds N_k spins with detuning delta_k and coupling weight w_k (``groups``); without
local rates each class stays symmetric, so psi lives in V_{N_1/2} ⊗ ... ⊗ V_{N_M/2}.  Between
events psi(t) = exp(A t) psi, A = -i H_eff,

    H_eff = sum_k delta_k S_z^(k) - (i/2)(Gamma Sigma^dag Sigma + gamma_coll S_w+ S_w-),

sparse and not normal.  Up to MODES_MAX states (two classes of 20: 441) it is propagated in its
eigenmodes (``compiled.modes``: exact, a few slow modes soon after each jump), beyond that, or
where the eigenvectors are too ill-conditioned to trust (checked when the block is built), by
the hybrid engine's Arnoldi steps (``compiled.krylov``).  The jump is where ||psi||^2 falls
to the uniform u drawn after the last event; it applies Sigma or S_w- (drawn with probability
||L psi||^2) — in eigenmodes as J = V^-1 L V on the amplitudes.  A spin is lost at the
Poisson rate gamma_loss N (and at scripted times): from class k with probability N_k / N, by
the class's loss Kraus operator s with probability ||K_s psi||^2 (``dicke.loss_kraus``, which
sum to one within the class).  S_y instruments act on the total S_y, diagonal in the product of
the classes' S_y eigenbases (``compiled.factors`` rotates each class).  In eigenmodes the jumps
and the measurements between two losses run in one compiled call (``compiled.grouped_loop``).

Samples are the OBSERVABLES of the total spin; their j is sum_k N_k / 2 = N / 2, the largest
total spin (psi is not an eigenstate of S^2 once the detunings differ).  Events name the class
of a loss: 'lost_down_0' is a spin lost from class 0 with the loss operator of the down state.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from functools import cache, cached_property

import numpy as np
import scipy.sparse as sp

from .. import dicke, groups
from ..compiled import OBSERVABLES
from ..compiled import grouped_loop, krylov, modes, readout
from ..compiled.streams import _uniform
from ..errors import ScenarioError
from ..instruments import _sy_basis
from ..memory import memory_budget
from ..model import Rates
from ..point import Point, measurement_times, time_grid
from . import (
    Engine,
    PointSetup,
    UnitResult,
    WorkUnit,
    driven,
    next_poisson_loss,
    pick,
)
from .driven import Blocks
from .jumps import _odd_jump_rate, expected_jumps

#: Eigenmodes up to this dimension (their decomposition is O(d^3) once per block), Krylov steps
#: beyond; and the largest error of the decomposition accepted (residual ||A V - V mu|| relative
#: to ||A||, and ||V^-1 V - 1||), else Krylov steps.
MODES_MAX = 2500
MODES_RESIDUAL = 1e-10
#: Most CPU seconds one grouped trajectory may be expected to take (a day of one core).
MAX_TRAJECTORY_S = 86400.0


def classes_of(point: dict) -> tuple[groups.Group, ...]:
    """The point's classes (``model.groups``, defaults filled by the scenario)."""
    return tuple(groups.Group(g["N"], g["delta"], g["weight"]) for g in point["model"]["groups"])


@dataclass(frozen=True)
class Eigenmodes:
    """A = V diag(mu) V^-1 in each of its two sectors (even and odd number of spins up: Sigma and
    S_w- swap them, H_eff keeps them), on the product states reordered by sector (``perm``;
    sector b is entries and modes bounds[b] .. bounds[b + 1]), modes sorted from the slowest
    decay: VT = V^T, GT = (V^dag V)^T and WT = (V^-1)^T, each stored as its sectors' blocks from
    ``offsets``, and each jump channel's JT = (V^-1 L V)^T from sector b at jumps[q, b]
    (``compiled.modes``)."""

    mu: np.ndarray
    VT: np.ndarray
    GT: np.ndarray
    WT: np.ndarray
    JT: np.ndarray
    jumps: np.ndarray
    bounds: np.ndarray
    offsets: np.ndarray
    perm: np.ndarray

    @classmethod
    def of(cls, A: sp.spmatrix, sector: np.ndarray, channels: list) -> Eigenmodes | None:
        """The decomposition of A with sector[i] the sector of product state i and the jump
        operators ``channels`` (each mapping a sector to the other), or None where it is not
        accurate (MODES_RESIDUAL)."""
        perm = np.argsort(sector, kind="stable")
        bounds = np.searchsorted(sector[perm], [0, 1, 2]).astype(np.int64)
        sectors = [slice(lo, hi) for lo, hi in itertools.pairwise(bounds)]
        mu, V, W, parts = [], [], [], {"VT": [], "GT": [], "WT": []}
        for part in sectors:
            found = _decompose(A[perm[part]][:, perm[part]].toarray())
            if found is None:
                return None
            mu.append(found[0])
            V.append(found[1])
            W.append(found[2])
            for name, matrix in (("VT", found[1].T), ("GT", found[1].T @ found[1].conj()),
                                 ("WT", found[2].T)):
                parts[name].append(matrix.ravel())
        permuted = [L[perm][:, perm] for L in channels]
        if any(L[part][:, part].count_nonzero() for L in permuted for part in sectors):
            return None  # J assumes each L flips the sector
        J = [(W[1 - b] @ (L[sectors[1 - b]][:, part] @ V[b])).T.ravel()
             for L in permuted for b, part in enumerate(sectors)]
        offsets = _starts(np.diff(bounds) ** 2)
        flat = {name: np.ascontiguousarray(np.concatenate(p), complex)
                for name, p in parts.items()}
        return cls(np.concatenate(mu).astype(complex), **flat,
                   JT=np.ascontiguousarray(np.concatenate(J) if J else np.zeros(0), complex),
                   jumps=_starts([j.size for j in J]).reshape(len(channels), 2), bounds=bounds,
                   offsets=offsets, perm=perm)

    @property
    def nbytes(self) -> int:
        return self.VT.nbytes + self.GT.nbytes + self.WT.nbytes + self.JT.nbytes


def _starts(sizes) -> np.ndarray:
    """Where each of blocks of these sizes begins when stored one after the other."""
    sizes = np.asarray(sizes, np.int64)
    return np.cumsum(sizes) - sizes


def _decompose(A: np.ndarray):
    """(mu, V, V^-1) of a dense A, modes sorted from the slowest decay, or None where the
    residual ||A V - V mu|| (relative to max |A|) or ||V^-1 V - 1|| exceeds MODES_RESIDUAL."""
    if A.size == 0:
        return np.zeros(0, complex), A, A
    mu, V = np.linalg.eig(A)
    order = np.argsort(-mu.real, kind="stable")
    mu, V = mu[order], V[:, order]
    try:
        W = np.linalg.inv(V)
    except np.linalg.LinAlgError:
        return None
    scale = max(np.abs(A).max(), 1e-300)
    if np.abs(A @ V - V * mu).max() > MODES_RESIDUAL * scale or \
            np.abs(W @ V - np.eye(mu.size)).max() > MODES_RESIDUAL:
        return None
    return mu, V, W


@dataclass(frozen=True)
class GroupedBlock:
    """The classes at their current sizes: A = -i H_eff (``krylov.Generator``, for Krylov
    steps) and, in small blocks, its ``eigenmodes``; the jump channels (name, sqrt(rate) L);
    the losses (event name, Kraus operator, classes after, class size N_k); the total S_x, S_y,
    S_z; and the total S_y's eigenvalue index of each product state of the classes' S_y
    eigenbases."""

    classes: tuple
    generator: krylov.Generator
    eigenmodes: Eigenmodes | None
    channels: list
    losses: list
    spin: tuple
    sy_index: np.ndarray

    @cached_property
    def N(self) -> int:
        return sum(g.N for g in self.classes)

    @property
    def nbytes(self) -> int:
        return self.generator.nbytes + (self.eigenmodes.nbytes if self.eigenmodes else 0)

    @cached_property
    def sy_meter(self) -> tuple:
        """The total S_y as ``readout.measure_classes`` takes it: (the classes' rotations, U_k^dag
        then U_k of each, flat; where each class's begin; the classes' dimensions; the index of
        each product state's total S_y eigenvalue; those eigenvalues)."""
        dims = np.array([g.N + 1 for g in self.classes], np.int64)
        rotations = [np.concatenate((_sy_rotation(g.N, False).ravel(),
                                     _sy_rotation(g.N, True).ravel())) for g in self.classes]
        return (np.ascontiguousarray(np.concatenate(rotations), complex), _starts(2 * dims**2),
                dims, self.sy_index, np.arange(self.N + 1) - self.N / 2)

    @cached_property
    def compiled(self) -> tuple:
        """The block in eigenmodes as ``grouped_loop.run`` takes it: (eigenmodes, generator)."""
        e = self.eigenmodes
        return ((e.mu, e.VT, e.GT, e.WT, e.JT, e.jumps, e.bounds, e.offsets, e.perm),
                (self.generator.runs, self.generator.data))


def build_block(classes: tuple, rates: Rates) -> GroupedBlock:
    """The block of these class sizes (module docstring)."""
    ops = groups.operators(classes, rates.r)
    channels = [(name, np.sqrt(rate) * ops[key]) for name, rate, key in
                (("Sigma", rates.Gamma, "Sigma"), ("S-", rates.gamma_coll, "S-w")) if rate > 0]
    decay = sum((L.conj().T @ L for _, L in channels), sp.csr_matrix(ops["H"].shape))
    A = (-1j * ops["H"] - 0.5 * decay).tocsr()
    losses = []
    for k, g in enumerate(classes):
        if g.N == 0:
            continue
        after = classes[:k] + (replace(g, N=g.N - 1),) + classes[k + 1:]
        for up in (False, True):
            K = groups.embedded(classes, k, dicke.loss_kraus(g.N, g.N, g.N - 1, up))
            losses.append((f"lost_{'up' if up else 'down'}_{k}", K, after, g.N))
    sy_index = sum(np.arange(g.N + 1).reshape([-1 if i == k else 1 for i in range(len(classes))])
                   for k, g in enumerate(classes)).ravel()
    parity = sy_index % 2
    eigenmodes = Eigenmodes.of(A, parity, [L for _, L in channels]) \
        if A.shape[0] <= MODES_MAX else None
    sectors = parity if eigenmodes is None else None  # only Krylov steps use the sectors
    return GroupedBlock(classes, krylov.Generator.of(A, sectors), eigenmodes, channels, losses,
                        (ops["Sx"], ops["Sy"], ops["Sz"]), sy_index)


def observables(psis: np.ndarray, block: GroupedBlock) -> np.ndarray:
    """OBSERVABLES after N and j of the states psis[sample] (normalised here): <S_a> and the
    symmetrised <S_a S_b> = Re <S_a psi|S_b psi> of the total spin."""
    psis = psis / np.linalg.norm(psis, axis=1)[:, None]
    S = [(op @ psis.T).T for op in block.spin]
    pairs = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))
    columns = [np.einsum("si,si->s", psis.conj(), Sa).real for Sa in S]
    columns += [np.einsum("si,si->s", S[a].conj(), S[b]).real for a, b in pairs]
    return np.stack(columns, axis=1)


@cache
def _sy_rotation(N: int, inverse: bool) -> np.ndarray:
    """U (back) or U^dag (into the S_y eigenbasis) of one class of N spins (``_sy_basis``)."""
    U = _sy_basis(N)[1]
    return np.ascontiguousarray(U if inverse else U.conj().T)


@dataclass
class GroupedSetup(PointSetup):
    """What the grouped engine needs for one sweep point (blocks built lazily, shared by
    threads: ``driven.Blocks``)."""

    rates: Rates
    classes: tuple
    psi0: np.ndarray
    blocks: Blocks = None

    def __post_init__(self):
        self.blocks = Blocks(lambda classes: build_block(classes, self.rates))

    def block(self, classes: tuple) -> GroupedBlock:
        return self.blocks(classes)


def initial_state(point: dict, classes: tuple) -> np.ndarray:
    """The scenario's initial state in the product space: a Dicke state |N/2, m> of the total
    spin (S_+ applied to all spins down, normalised) or a coherent spin state (the product of the
    classes' own)."""
    init = point["initial_state"]
    if init["kind"] == "css":
        factors = [dicke.coherent_spin_state(g.N, init["theta"], init["phi"]) for g in classes]
        psi = factors[0]
        for f in factors[1:]:
            psi = np.kron(psi, f)
        return psi.astype(complex)
    psi = np.zeros(groups.dimension(classes), complex)
    psi[0] = 1.0
    N = sum(g.N for g in classes)
    raise_ = groups.operators(tuple(replace(g, delta=0.0, weight=1.0) for g in classes),
                              0.0)["S-w"].conj().T
    for _ in range(round(N / 2 + (init["m"] if init["m"] is not None else -N / 2))):
        psi = raise_ @ psi
        psi /= np.linalg.norm(psi)
    return psi


class _Modes:
    """A trajectory's no-jump state in eigenmodes: amplitudes c set at t0, now at t0 + s
    (clock = [t0, s, u]; the product states in the sectors' order); its jumps stay in modes
    (``modes.run``) and draw from rng."""

    #: Jumps recorded per compiled call.
    EVENTS = 1024

    def __init__(self, block: GroupedBlock, psi: np.ndarray, t: float, u: float,
                 rng: np.ndarray):
        e, generator = block.eigenmodes, block.generator
        self.e, self.rng, self.clock = e, rng, np.array([t, 0.0, u])
        self.c, self.y = np.empty(e.mu.size, complex), np.empty(e.mu.size, complex)
        self.n, self.known = np.empty(e.bounds.size - 1, np.int64), np.empty(3)
        grouped_loop.start(e.WT, e.bounds, e.offsets, e.perm, generator.runs, generator.data,
                           np.ascontiguousarray(psi, complex), self.c, self.y, self.n,
                           self.known)
        self.scratch = tuple(np.empty(e.mu.size, complex) for _ in range(4))
        self.work = np.empty((len(block.channels), e.mu.size), complex)
        self.event_t, self.event_q = np.empty(self.EVENTS), np.empty(self.EVENTS, np.int64)

    @property
    def t(self) -> float:
        return self.clock[0] + self.clock[1]

    def advance_through(self, block: GroupedBlock, times, first, last, meter, jumps: list):
        """(last, False, states at times[first:last]): the jumps and the measurements (meter:
        ``driven.Meter``) on the way are made in compiled code (``grouped_loop``), the jumps
        appended to jumps as (t, channel), the state at a measurement the one after it."""
        X = np.empty((last - first, self.c.size), complex)
        eigenmodes, generator = block.compiled
        instrument = meter.instrument
        parts = (*block.sy_meter, int(instrument.kind), float(instrument.sigma),
                 int(instrument.per_time), bool(block.channels))
        k = first
        while k < last:
            k, count, made = grouped_loop.run(eigenmodes, generator, parts, self.c, self.clock,
                                              times, k, last, meter.measured, X[k - first:],
                                              self.y, self.scratch, self.n, self.known, self.rng,
                                              self.work, self.event_t, self.event_q, meter.stream,
                                              meter.outcomes, meter.made)
            jumps.extend(zip(self.event_t[:count].tolist(), self.event_q[:count].tolist()))
            meter.made_with(made - meter.made, block.N)
        out = np.empty_like(X)
        out[:, self.e.perm] = X
        return last, False, out

    def psi(self) -> np.ndarray:
        out = np.empty(self.c.size, complex)
        modes.expand(self.e.VT, self.e.bounds, self.e.offsets, self.y, self.n, out)
        psi = np.empty_like(out)
        psi[self.e.perm] = out
        return psi


class _Steps:
    """A trajectory's no-jump state for Krylov steps: the vector x at t."""

    def __init__(self, block: GroupedBlock, psi: np.ndarray, t: float, u: float):
        self.b, self.x, self.t, self.u = block, np.array(psi, complex), t, u
        self.step = krylov.new_step(block.generator.anorm)

    def advance_through(self, times, first, last, jumps: list):
        """(k, jumped, states at times[first:k]), stopping at a jump (``jumps``: unused, the
        trajectory's ``event`` makes it)."""
        k, self.t, jumped, X = self.b.generator.advance_through(self.x, self.t, self.u, times,
                                                                first, last, self.step)
        return k, jumped, X[:k - first]

    def psi(self) -> np.ndarray:
        return self.x


@dataclass
class _Trajectory(driven.Trajectory):
    """One grouped trajectory between events (module docstring): its block, its no-jump state
    (``_Modes`` or ``_Steps``) and its loss schedule."""

    setup: GroupedSetup
    rng: np.ndarray
    block: GroupedBlock
    state: object = None
    scripted: int = 0
    poisson: float = np.inf

    @property
    def N(self) -> int:
        return self.block.N

    @property
    def j(self) -> float:
        return self.N / 2

    @property
    def key(self) -> tuple:
        return self.block.classes

    @property
    def t(self) -> float:
        return self.state.t

    def set_state(self, psi: np.ndarray, t: float) -> None:
        """psi normalised at t, and a fresh no-jump threshold u (0 where no channel could
        jump: ||psi||^2 = 1 then, but for rounding)."""
        psi, u = psi / np.linalg.norm(psi), _uniform(self.rng)
        u = u if self.block.channels else 0.0
        self.state = _Modes(self.block, psi, t, u, self.rng) if self.block.eigenmodes else \
            _Steps(self.block, psi, t, u)

    def advance_through(self, times: np.ndarray, first: int, last: int, meter):
        """No-jump evolution through the stops (``driven``), making the measurements among
        them: in eigenmodes all in compiled code (its jumps recorded here), by Krylov steps up
        to a jump, a measurement in Python at each measured stop (``measure``)."""
        if isinstance(self.state, _Modes):
            jumps = []
            result = self.state.advance_through(self.block, times, first, last, meter, jumps)
            for t, q in jumps:
                self.events.append((self.row, t, "jump", self.block.channels[q][0], self.N,
                                    self.N, self.N))
            return result
        k, jumped, states = first, False, []
        while k < last:
            end = meter.stretch_end(k, last)
            k, jumped, X = self.state.advance_through(times, k, end, [])
            states.append(X)
            if jumped:
                break
            if meter.measured[end - 1]:
                X[-1] = self.measure(meter)
        return k, jumped, np.concatenate(states)

    def measure(self, meter) -> np.ndarray:
        """One measurement of the total S_y now (``readout.measure_classes``; meter:
        ``driven.Meter``): the state after it."""
        psi = self.state.psi()
        psi = psi / np.linalg.norm(psi)
        instrument = meter.instrument
        readout.measure_classes(psi, *self.block.sy_meter, instrument.kind, instrument.sigma,
                                meter.stream, meter.slot())
        meter.made_with(1, self.N)
        self.set_state(psi, self.t)
        return psi

    def observables(self, classes: tuple, psis: np.ndarray) -> np.ndarray:
        return observables(psis, self.setup.block(classes))

    def event(self, t: float, loss: bool, is_scripted: bool) -> None:
        """A jump (channel drawn with probability ||L psi||^2) or a loss at t (class k with
        probability N_k / N, then its Kraus operator s with ||K_s psi||^2), appended to events
        (j: N / 2)."""
        psi, before = self.state.psi(), self.N
        if loss:
            phis = [K @ psi for _, K, _, _ in self.block.losses]
            c = pick([n * np.vdot(p, p).real for (_, _, _, n), p in zip(self.block.losses, phis)],
                     self.rng)
            name, _, after, _ = self.block.losses[c]
            self.block = self.setup.block(after)
            self.scripted += is_scripted
            if not is_scripted:
                self.poisson = next_poisson_loss(t, self.setup.loss_rate, self.N, self.rng)
        else:
            phis = [L @ psi for _, L in self.block.channels]
            c = pick([np.vdot(p, p).real for p in phis], self.rng)
            name = self.block.channels[c][0]
        self.events.append((self.row, t, "loss" if loss else "jump", name, self.N, self.N, before))
        self.set_state(phis[c], t)


def _start(setup: GroupedSetup, rng: np.ndarray) -> _Trajectory:
    """A trajectory from its random stream: the initial state, its no-jump threshold and first
    Poisson loss."""
    tr = _Trajectory(setup, rng, setup.block(setup.classes))
    tr.set_state(setup.psi0, 0.0)
    tr.poisson = next_poisson_loss(0.0, setup.loss_rate, tr.N, rng)
    return tr


class GroupedEngine(Engine):
    """Exact jump trajectories of classes of identical spins (module docstring)."""

    @staticmethod
    def columns(point: dict) -> tuple[str, ...]:
        return OBSERVABLES

    @staticmethod
    def build(point: Point) -> GroupedSetup:
        classes = classes_of(point)
        return GroupedSetup(**PointSetup.of(point), rates=point.rates(), classes=classes,
                            psi0=initial_state(point, classes))

    @staticmethod
    def run_unit(setup: GroupedSetup, unit: WorkUnit, seed: int, keep: bool) -> UnitResult:
        return driven.run_unit(setup, unit, seed, keep, OBSERVABLES, _start)

    @staticmethod
    def seconds(point: dict) -> tuple[float, float]:
        return grouped_seconds(point)

    @staticmethod
    def events(point: dict) -> float:
        return grouped_events(point)

    @staticmethod
    def check(point: dict, label: str, unit_size: int) -> None:
        """Refuse a block beyond the memory budget or a trajectory beyond a day of one core."""
        d, budget = groups.dimension(classes_of(point)), memory_budget()
        needed = block_bytes(d)
        if needed > budget:
            raise ScenarioError(f"{label}model.groups: {d} product states need about "
                                f"{needed / 2**30:.3g} GiB per block; at most "
                                f"{budget / 2**30:.0f} GiB is available (fewer or smaller "
                                "classes)")
        seconds = grouped_seconds(point)[0]
        if seconds > MAX_TRAJECTORY_S:
            raise ScenarioError(f"{label}time.t_end: about {seconds:.2g} CPU s per grouped "
                                f"trajectory expected up to t_end = {point['time']['t_end']:g} "
                                f"(at most {MAX_TRAJECTORY_S:g}: a day of one core); shorten "
                                "time.t_end or use fewer or smaller classes")


def block_bytes(d: int) -> float:
    """Memory of a block of d product states: up to MODES_MAX its eigenmodes (four matrices of
    two d/2 x d/2 sectors, and the decomposition's work space: ~3 d x d complex matrices in
    all), else its diagonals and a Krylov basis."""
    if d <= MODES_MAX:
        return 3 * 16.0 * d * d
    return 16.0 * (krylov.KRYLOV_DIM + 2 + 40) * d


#: Grouped engine cost model (``grouped_seconds``), measured with benchmarks/bench_grouped.py
#: (AMD EPYC, 2026-12-05): per event (jump, loss, measurement) GROUPED_EVENT_S and d^2
#: GROUPED_S_PER_ENTRY in eigenmodes; per block GROUPED_BLOCK_S and d^3 GROUPED_S_PER_D3; and
#: the jumps a disordered ensemble adds, a fraction DISORDER_JUMPS / N^1.5 of the odd rate
#: (fitted over 50/Gamma at r = 2.5, +-0.3: 56, 42 and 17 jumps per 1/Gamma for N = 12, 20, 40,
#: without loss; within 2.7x also at r = 1, 1.5 and +-0.1, +-0.6: 0.03 - 105 per 1/Gamma).  Most
#: of them are the one-off relaxation from all spins down: low for short runs, high for long.
GROUPED_EVENT_S = 5e-6
#: What an event handled in Python costs besides (a loss; by Krylov steps a measurement or a
#: jump: the state's amplitudes and threshold set afresh; the shipped broadened scenario,
#: 2026-12-05).
GROUPED_PYTHON_S = 3e-4
#: An S_y measurement in eigenmodes (compiled, ``grouped_loop``): the state set anew in all
#: modes, which the next stops evaluate until the fast ones have decayed: GROUPED_S_PER_MEASUREMENT
#: d^1.5 (0.051-0.065 us d^1.5 measured at d = 49, 169, 441, 2026-12-05).
GROUPED_S_PER_MEASUREMENT = 6e-8
GROUPED_S_PER_ENTRY = 4e-10
GROUPED_BLOCK_S = 5e-3
GROUPED_S_PER_D3 = 2e-9
DISORDER_JUMPS = 12.5
#: Beyond MODES_MAX: time reached by a Krylov step per unit of ||A||_inf (38-74 measured over
#: 2 x 60 and 4 x 8, 4 x 10 spins, r = 1-2.5; 2026-12-05) and the observables' cost per state
#: and sample (the total spin's operators on each sample).
GROUPED_REACH = 50.0
GROUPED_S_PER_STATE = 2e-7


def grouped_events(point: dict) -> float:
    """Expected jumps of a grouped trajectory: the symmetric model's (``expected_jumps``) and,
    when the classes differ, DISORDER_JUMPS / N^1.5 of the odd jump rate over the run (the
    even state is no longer dark)."""
    classes, m = classes_of(point), point["model"]
    jumps = expected_jumps(point)
    if len({(g.delta, g.weight) for g in classes}) > 1 and m["N"] > 1 and m["Gamma"] > 0:
        jumps += DISORDER_JUMPS / m["N"] ** 1.5 * _odd_jump_rate(m["N"] - 1 + m["N"] % 2,
                                                                m["r"]) * \
            m["Gamma"] * point["time"]["t_end"]
    return jumps


def grouped_seconds(point: dict) -> tuple[float, float]:
    """(CPU seconds per trajectory, set-up) of the grouped engine.  In eigenmodes each event
    (``grouped_events``, losses) costs GROUPED_EVENT_S + d^2 GROUPED_S_PER_ENTRY, each sample
    d^2 GROUPED_S_PER_ENTRY, each loss GROUPED_PYTHON_S more and each measurement d^1.5
    GROUPED_S_PER_MEASUREMENT; beyond MODES_MAX every event (measurements too)
    GROUPED_PYTHON_S and Krylov steps (one per GROUPED_REACH / ||A||_inf of time and one per
    event, each ``krylov.step_seconds`` in one parity sector
    unless the two mix: ``driven.one_sector``), each sample d GROUPED_S_PER_STATE.  Each block
    visited costs GROUPED_BLOCK_S + d^3 GROUPED_S_PER_D3 (its eigenmodes)."""
    classes, t_end = classes_of(point), point["time"]["t_end"]
    d = groups.dimension(classes)
    losses = point["loss"]["rate_per_spin"] * point["model"]["N"] * t_end + \
        len(point["loss"]["times"])
    measurements = measurement_times(point).size
    events = grouped_events(point) + losses
    per_trajectory = events * (GROUPED_EVENT_S + d * d * GROUPED_S_PER_ENTRY) + \
        time_grid(point).size * d * d * GROUPED_S_PER_ENTRY + losses * GROUPED_PYTHON_S + \
        measurements * d**1.5 * GROUPED_S_PER_MEASUREMENT
    blocks = 1 + len(classes) * math.ceil(losses + 3 * math.sqrt(losses))
    if d > MODES_MAX:
        events += measurements
        anorm, nnz = _generator_size(classes, Rates.of(point["model"]))
        steps = t_end * anorm / GROUPED_REACH + events
        sector = 0.5 if driven.one_sector(point) else 1.0
        return (events * GROUPED_PYTHON_S + steps * krylov.step_seconds(sector * d, sector * nnz)
                + time_grid(point).size * d * GROUPED_S_PER_STATE, blocks * GROUPED_BLOCK_S)
    return per_trajectory, blocks * (GROUPED_BLOCK_S + d**3 * GROUPED_S_PER_D3)


@cache
def _generator_size(classes: tuple, rates: Rates) -> tuple[float, int]:
    """(||A||_inf, non-zeros) of the block's generator (built beyond MODES_MAX only)."""
    b = build_block(classes, rates)
    return b.generator.anorm, int(np.count_nonzero(b.generator.data))


GROUPED = GroupedEngine()
