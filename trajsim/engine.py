"""Exact event-driven quantum-jump trajectories in compiled code (docs/method.md).

A trajectory is (N, j, c): c holds the eigen-amplitudes of the block's no-jump generator
K = sum_k lambda_k |v_k><v_k|, split into the two sectors of K.  Between events

    c_k(t + tau) = c_k(t) exp(-(lambda_k / 2 + i E_k) tau),   n(tau) = sum_k |c_k|^2 exp(-lambda_k tau),

(E_k: one-axis-twisting energies, zero without chi; see model.py)
and the next jump happens where n(tau) = u for a uniform draw u (Newton on log n, monotone from
tau = 0 because log n is convex); no time step, no ODE.  A jump picks channel c with probability
||A_c c||^2 / <K> (A_c = V^T sqrt(rate) L_c V precomputed per block).  Spin losses are a
Poisson process of rate gamma_loss N(t) plus scripted times, independent of the state; a loss
applies one of the four Kraus operators sqrt(d_{N-1}(j1)/d_N(j)) <s|E_{j1->j} (docs/method.md).  After a
loss the no-jump threshold is rescaled, u <- u / n(t_loss - t), which keeps it uniform.

Blocks live in flat arrays (``BlockTable``) so that the kernels hold no Python objects.  When a
trajectory needs a block that is not built yet, or its event buffer is full, the kernel stops
that trajectory with its whole state saved; the Python driver builds the block or drains the
buffer and calls the kernel again.  Random numbers come from xoshiro256** with a 256-bit state
per trajectory derived from (seed, point, trajectory) by numpy's SeedSequence, so results do not
depend on how trajectories are spread over threads or processes.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numba as nb
import numpy as np

from . import dicke
from .dicke import OBSERVABLES
from .model import IN_BLOCK_CHANNELS, Block, Rates, build_block

LOCAL_CHANNELS = tuple(dicke.LOCAL_PROCESSES)  # dephasing, relaxation: move j by -1, 0, +1
LOSS_CHANNELS = ("lost_down", "lost_up")
#: Channel codes in events: in-block jumps, local jumps, then the two spin-loss outcomes.
CHANNELS = IN_BLOCK_CHANNELS + LOCAL_CHANNELS + LOSS_CHANNELS
LOCAL_CODE = len(IN_BLOCK_CHANNELS)
LOSS_CODE = LOCAL_CODE + len(LOCAL_CHANNELS)

# Columns of the packed block table (int64).
B_N, B_TWO_J, B_D0, B_D1, B_CH, B_NCH, B_LOSS_MINUS, B_LOSS_PLUS, B_LOC, B_NLOC = range(10)
# Local-channel rows (int64): channel code, target block, target 2j', index offset.
L_CODE, L_TARGET, L_TWO_JP, L_OFFSET = range(4)
NO_BLOCK, IMPOSSIBLE = -1, -2
# Trajectory state columns: floats and ints.
T_TIME, T_U, T_NEXT_POISSON = range(3)
I_BLOCK, I_MASK, I_SAMPLE, I_SCRIPT, I_STATUS, I_NEV, I_NEED_N, I_NEED_TWO_J, I_MEAS = range(9)
FRESH, DONE, NEED_BLOCK, BUFFER_FULL = 0, 1, 2, 3
#: S_y instruments (scenario.INSTRUMENTS): codes in the kernels.
NO_INSTRUMENT, PROJECTIVE, WEAK, COPIES = range(4)


def _float_list(arrays) -> nb.typed.List:
    out = nb.typed.List.empty_list(nb.float64[::1])
    for a in arrays:
        out.append(np.ascontiguousarray(a, dtype=np.float64).ravel())
    return out


class BlockTable:
    """Thread-safe set of the blocks of one model, handed to the kernels as snapshots.

    Block ids are permanent.  Built blocks stay cached while their memory fits ``budget_bytes``;
    past it the least recently used blocks that no caller pins are evicted (and rebuilt, bit for
    bit the same, if a trajectory needs them again).  A snapshot holds references to the block
    arrays (numba typed lists), so making one copies nothing large.
    """

    def __init__(self, rates: Rates, budget_bytes: float | None = None, sy_basis: bool = False):
        self.rates = rates
        self.sy_basis = sy_basis  # also keep the S_y eigenbasis (finite-shot measurement)
        self.budget = budget_bytes if budget_bytes is not None else default_budget()
        self.keys: list[tuple[int, int]] = []
        self.ids: dict[tuple[int, int], int] = {}
        self.blocks: list[Block | None] = []
        self._parts: list[dict | None] = []
        self._used: dict[int, int] = {}
        self._clock = 0
        self.builds = 0
        self._lock = threading.RLock()
        self._packed: tuple | None = None

    def ensure(self, N: int, two_j: int, pinned=()) -> int:
        """Id of block (N, 2j), building it if it is not in memory."""
        with self._lock:
            key = (N, two_j)
            if key not in self.ids:
                self.ids[key] = len(self.keys)
                self.keys.append(key)
                self.blocks.append(None)
                self._parts.append(None)
            b = self.ids[key]
            self._clock += 1
            self._used[b] = self._clock
            if self.blocks[b] is None:
                self.blocks[b] = build_block(N, two_j, self.rates)
                self._parts[b] = self._kernel_parts(self.blocks[b])
                self.builds += 1
                self._evict(keep={b, *pinned})
                self._packed = None
            return b

    def nbytes(self) -> int:
        return sum(sum(a.nbytes for a in part["arrays"]) for part in self._parts if part)

    def _evict(self, keep) -> None:
        for b in sorted(self._used, key=self._used.get):
            if self.nbytes() <= self.budget:
                return
            if b not in keep and self.blocks[b] is not None:
                self.blocks[b] = self._parts[b] = None
                del self._used[b]

    def snapshot(self, required) -> tuple:
        """(blk_int, blk_f, ch_int, lam, V, A, loc_int, loc_f, my, Ry, E) for the kernels, with every
        block of ``required`` [(N, 2j), ...] in memory (built or rebuilt as needed)."""
        with self._lock:
            ids = [self.ensure(N, two_j) for N, two_j in required]
            for N, two_j in required:
                self.ensure(N, two_j, pinned=ids)  # later builds may not evict earlier ones
            if self._packed is None:
                self._packed = self._pack()
            return self._packed

    def neighbourhood(self, N: int, two_j: int, losses: bool) -> set[tuple[int, int]]:
        """Block (N, 2j) and every block one local jump (or, with losses, one loss) away: what a
        trajectory there may need next.  Kept together so that evictions cannot ping-pong."""
        keys = {(N, two_j)}
        if self.local_rates():
            keys |= {(N, two_jp) for _, two_jp in dicke.local_targets(N, two_j)}
        if losses and N > 0:
            keys |= {(N - 1, t) for t in dicke.loss_targets(N, two_j)}
        return keys

    def packed(self) -> tuple:
        """The current snapshot (every block in memory)."""
        return self.snapshot([])

    def local_rates(self) -> dict[str, float]:
        """Rates of the local processes of Eq. (11) that are switched on."""
        rates = {"dephasing": 0.5 * self.rates.gamma_phi, "relaxation": self.rates.gamma_rel}
        return {name: rate for name, rate in rates.items() if rate > 0}

    def _kernel_parts(self, block: Block) -> dict:
        """A block's arrays in kernel layout: eigenvalues, eigenvectors, channel matrices and
        local-channel coefficients (sqrt(rate) folded in)."""
        channels = [(IN_BLOCK_CHANNELS.index(name), np.concatenate([A0.ravel(), A1.ravel()]),
                     A0.size) for name, (A0, A1) in block.channels.items()]
        local = []
        for name, rate in self.local_rates().items():
            for two_j1, two_jp in dicke.local_targets(block.N, block.two_j):
                offset, coeff = dicke.local_kraus_shift(block.N, block.two_j, name, two_j1, two_jp)
                local.append((LOCAL_CODE + LOCAL_CHANNELS.index(name), two_jp, offset,
                              np.sqrt(rate) * coeff))
        lam = np.concatenate(block.lam)
        V = np.concatenate([block.V[0].ravel(), block.V[1].ravel()])
        my, Ry = dicke.sy_eigenbasis(block.two_j) if self.sy_basis else (np.zeros(0), np.zeros(0))
        E = np.concatenate(block.E) if self.rates.chi != 0 else np.zeros(0)  # empty: no phases
        arrays = [lam, V, Ry, E] + [ch[1] for ch in channels] + [row[3] for row in local]
        return {"lam": lam, "V": V, "my": my, "Ry": Ry.ravel(), "E": E, "channels": channels,
                "local": local, "arrays": arrays}

    def _pack(self) -> tuple:
        blk_int = np.zeros((len(self.keys), 10), np.int64)
        blk_f = np.zeros((len(self.keys), 2))
        lam, V, A, ch_rows, loc_rows, loc_f, my, Ry, E = [], [], [], [], [], [], [], [], []
        for b, ((N, two_j), block) in enumerate(zip(self.keys, self.blocks)):
            row = blk_int[b]
            row[B_N], row[B_TWO_J] = N, two_j
            parts = self._parts[b]
            if block is None:  # evicted: nothing may enter it until it is rebuilt
                for arrays in (lam, V, my, Ry, E):
                    arrays.append(np.zeros(0))
                continue
            my.append(parts["my"])
            E.append(parts["E"])
            Ry.append(parts["Ry"])
            row[B_D0], row[B_D1] = block.lam[0].size, block.lam[1].size
            lam.append(parts["lam"])
            V.append(parts["V"])
            row[B_CH], row[B_NCH] = len(ch_rows), len(parts["channels"])
            for code, matrices, split in parts["channels"]:
                ch_rows.append((code, 0, split))
                A.append(matrices)
            row[B_LOC], row[B_NLOC] = len(loc_rows), len(parts["local"])
            for code, two_jp, offset, coeff in parts["local"]:
                loc_rows.append((code, self._present(N, two_jp), two_jp, offset))
                loc_f.append(coeff)
            for col, two_j1 in ((B_LOSS_MINUS, two_j - 1), (B_LOSS_PLUS, two_j + 1)):
                if N == 0 or dicke.multiplicity(N - 1, two_j1) == 0:
                    row[col] = IMPOSSIBLE
                else:
                    row[col] = self._present(N - 1, two_j1)
                    blk_f[b, col - B_LOSS_MINUS] = np.sqrt(
                        dicke.multiplicity_ratio(N - 1, two_j1, N, two_j))
        return (blk_int, blk_f, np.array(ch_rows, np.int64).reshape(-1, 3), _float_list(lam),
                _float_list(V), _float_list(A), np.array(loc_rows, np.int64).reshape(-1, 4),
                _float_list(loc_f), _float_list(my), _float_list(Ry), _float_list(E))

    def _present(self, N: int, two_j: int) -> int:
        b = self.ids.get((N, two_j), NO_BLOCK)
        return b if b != NO_BLOCK and self.blocks[b] is not None else NO_BLOCK


def default_budget() -> float:
    """A quarter of the physical memory for cached blocks."""
    return 0.25 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


# ----------------------------------------------------------------------------- random numbers


@nb.njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@nb.njit(cache=True)
def _uniform(s):
    """xoshiro256** step; a double in (0, 1]."""
    result = _rotl(s[1] * np.uint64(5), 7) * np.uint64(9)
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return (float(result >> np.uint64(11)) + 1.0) * (1.0 / 9007199254740992.0)


def rng_states(seed: int, point: int, trajectories: np.ndarray, stream: int = 0) -> np.ndarray:
    """256-bit xoshiro states keyed by (seed, point, trajectory) through numpy's SeedSequence;
    stream 1 is the independent measurement-shot stream of the same trajectory."""
    out = np.empty((len(trajectories), 4), np.uint64)
    for row, i in enumerate(trajectories):
        key = (point, int(i)) if stream == 0 else (point, int(i), stream)
        ss = np.random.SeedSequence(entropy=seed, spawn_key=key)
        out[row] = ss.generate_state(4, np.uint64)
    return out


# ----------------------------------------------------------------------------- block algebra

#: Reductions (dot products, sums of weights) may be reassociated so that they vectorise; the
#: compiled code is the same on every thread and rank, so results stay reproducible.
FAST = {"reassoc", "contract"}


@nb.njit(cache=True, inline="always")
def _abs2(z):
    return (z * np.conj(z)).real


@nb.njit(cache=True)
def _sector(blk_int, b, s):
    """(size, offset in c and in lam[b], offset in V[b]) of sector s of block b."""
    D0 = blk_int[b, B_D0]
    if s == 0:
        return D0, 0, 0, 0
    return blk_int[b, B_D1], D0, D0, D0 * D0


@nb.njit(cache=True, fastmath=FAST)
def _to_dicke(blk_int, V, b, c, mask, psi):
    """psi = V c in the Dicke basis (sector s holds Dicke indices k = s, s+2, ...)."""
    psi[: blk_int[b, B_TWO_J] + 1] = 0.0
    Vb = V[b]
    for s in range(2):
        if not (mask >> s) & 1:
            continue
        Ds, cs, _, vs = _sector(blk_int, b, s)
        for row in range(Ds):
            acc = 0.0 * c[0]
            base = vs + row * Ds
            for col in range(Ds):
                acc += Vb[base + col] * c[cs + col]
            psi[s + 2 * row] = acc


@nb.njit(cache=True, fastmath=FAST)
def _from_dicke(blk_int, V, b, psi, c):
    """c = V^T psi; returns the mask of sectors where psi is not zero."""
    mask = 0
    Vb = V[b]
    for s in range(2):
        Ds, cs, _, vs = _sector(blk_int, b, s)
        occupied = False
        for row in range(Ds):
            if psi[s + 2 * row] != 0:
                occupied = True
        for col in range(Ds):
            c[cs + col] = 0.0
        if not occupied:
            continue
        mask |= 1 << s
        for row in range(Ds):
            p = psi[s + 2 * row]
            base = vs + row * Ds
            for col in range(Ds):
                c[cs + col] += Vb[base + col] * p
    return mask


@nb.njit(cache=True, fastmath=FAST)
def _decay_moments(blk_int, lam, b, c, mask, tau):
    """(n, -dn/dtau, n(inf)) of n(tau) = sum_k |c_k|^2 exp(-lambda_k tau); no exp at tau = 0."""
    n = 0.0
    dn = 0.0
    n_inf = 0.0
    lb = lam[b]
    for s in range(2):
        if (mask >> s) & 1:
            Ds, cs, ls, _ = _sector(blk_int, b, s)
            for k in range(Ds):
                lk = lb[ls + k]
                w = _abs2(c[cs + k])
                if tau != 0.0:
                    w *= np.exp(-lk * tau)
                n += w
                dn += lk * w
                if lk == 0.0:
                    n_inf += w
    return n, dn, n_inf


@nb.njit(cache=True)
def waiting_time(blk_int, lam, b, c, mask, u):
    """Solve n(tau) = u by Newton on log n from tau = 0; inf if n(inf) >= u (no jump ever).

    log n is convex and decreasing, so the iterates rise monotonically to the root.  The first
    step (at tau = 0) needs no exponentials; iteration stops once a step is below 1e-9 tau, after
    which the quadratic convergence leaves an error of order 1e-18 tau.
    """
    n, dn, n_inf = _decay_moments(blk_int, lam, b, c, mask, 0.0)
    if n_inf >= u or dn == 0.0:
        return np.inf
    log_u = np.log(u)
    tau = 0.0
    for _ in range(400):
        g = np.log(n) - log_u
        if g <= 0.0 or dn == 0.0:
            break
        step = g * n / dn
        tau += step
        if step <= 1e-9 * tau:
            break
        n, dn, _ = _decay_moments(blk_int, lam, b, c, mask, tau)
    return tau


def _twist(c, k, angle):
    """c[k] *= exp(-i angle): the one-axis-twisting phase (compiled only, see _twist_overload).

    Inlined at the Numba IR level: as a separate compiled function it made freshly compiled and
    cache-loaded kernels differ at round-off (1e-12) for complex amplitudes, which broke
    bit-identical results between a first run and later ones or other MPI ranks
    (tests/test_cli.py::test_fresh_compilation_and_cached_kernels_give_identical_files)."""
    raise NotImplementedError("_twist runs inside compiled kernels only")


@nb.extending.overload(_twist, inline="always")
def _twist_overload(c, k, angle):
    if isinstance(c.dtype, nb.types.Complex):
        def rotate(c, k, angle):
            c[k] *= complex(np.cos(angle), -np.sin(angle))
        return rotate
    return lambda c, k, angle: None  # real amplitudes: chi = 0 (simulate makes c complex otherwise)


@nb.njit(cache=True)
def _decay(blk_int, lam, E, b, c, mask, tau):
    """c <- c exp(-(lambda / 2 + i E) tau), normalised; returns the squared norm before
    normalising (E is empty without one-axis twisting)."""
    n = 0.0
    lb = lam[b]
    Eb = E[b]
    for s in range(2):
        if (mask >> s) & 1:
            Ds, cs, ls, _ = _sector(blk_int, b, s)
            for k in range(Ds):
                c[cs + k] *= np.exp(-0.5 * lb[ls + k] * tau)
                if Eb.size:
                    _twist(c, cs + k, Eb[ls + k] * tau)
                n += _abs2(c[cs + k])
    scale = 1.0 / np.sqrt(n)
    for k in range(blk_int[b, B_D0] + blk_int[b, B_D1]):
        c[k] *= scale
    return n


@nb.njit(cache=True, fastmath=FAST)
def _apply_channel(blk_int, ch_int, A, b, ch, c, mask, out):
    """out = A_ch c (sector s -> 1 - s); returns ||out||^2."""
    norm = 0.0
    D_total = blk_int[b, B_D0] + blk_int[b, B_D1]
    out[:D_total] = 0.0
    for s in range(2):
        if not (mask >> s) & 1:
            continue
        Ds, cs, _, _ = _sector(blk_int, b, s)
        Dt, ct, _, _ = _sector(blk_int, b, 1 - s)
        a0 = ch_int[ch, 1 + s]
        Ach = A[ch]
        for row in range(Dt):
            acc = 0.0 * c[0]
            base = a0 + row * Ds
            for col in range(Ds):
                acc += Ach[base + col] * c[cs + col]
            out[ct + row] = acc
            norm += _abs2(acc)
    return norm


@nb.njit(cache=True)
def _jump(blk_int, ch_int, lam, V, A, loc_int, loc_f, si, c, x, work, psi, psi1):
    """Pick a jump with probability (its weight) / <K> (x uniform in (0,1]) and apply it.

    In-block channels come first (weight ||A_ch c||^2, one product each), then the local ones
    (weight ||K_l psi||^2 in the Dicke basis, O(D) each).  Their weights add up to <K>, so no
    total is needed for the local part.  Updates the block and mask in si; returns the code.
    """
    b, mask = si[I_BLOCK], si[I_MASK]
    total = 0.0
    lb = lam[b]
    for s in range(2):
        if (mask >> s) & 1:
            Ds, cs, ls, _ = _sector(blk_int, b, s)
            for k in range(Ds):
                total += lb[ls + k] * _abs2(c[cs + k])
    target = x * total
    first, n_ch = blk_int[b, B_CH], blk_int[b, B_NCH]
    chosen, computed, norm = -1, -1, 0.0
    for ch in range(first, first + n_ch):
        w = _apply_channel(blk_int, ch_int, A, b, ch, c, mask, work)
        computed = ch
        if w > 0.0:
            chosen, norm = ch, w
            if target <= w:
                target = -1.0
                break
            target -= w
    if target >= 0.0 and blk_int[b, B_NLOC] > 0:
        _to_dicke(blk_int, V, b, c, mask, psi)
        row = _pick_local(blk_int, loc_int, loc_f, b, psi, target)
        if row >= 0:
            _apply_local(loc_int, loc_f, blk_int, b, row, psi, psi1)
            tb = loc_int[row, L_TARGET]
            si[I_MASK] = _from_dicke(blk_int, V, tb, psi1, c)
            si[I_BLOCK] = tb
            return loc_int[row, L_CODE]
    if computed != chosen:  # round-off left the last channel empty: use the last non-empty one
        norm = _apply_channel(blk_int, ch_int, A, b, chosen, c, mask, work)
    scale = 1.0 / np.sqrt(norm)
    for k in range(blk_int[b, B_D0] + blk_int[b, B_D1]):
        c[k] = work[k] * scale
    si[I_MASK] = ((mask & 1) << 1) | ((mask >> 1) & 1)  # m changed by +-1
    return ch_int[chosen, 0]


@nb.njit(cache=True)
def _local_weight(loc_int, loc_f, row, two_j, psi):
    """||K_row psi||^2 (the coefficients are zero where K_row leaves V_j')."""
    coeffs = loc_f[row]
    w = 0.0
    for k in range(two_j + 1):
        coeff = coeffs[k]
        if coeff != 0.0:
            w += coeff * coeff * _abs2(psi[k])
    return w


@nb.njit(cache=True)
def _pick_local(blk_int, loc_int, loc_f, b, psi, target):
    """Row of the local channel that covers target (the last non-empty one on round-off)."""
    first = blk_int[b, B_LOC]
    last = -1
    for row in range(first, first + blk_int[b, B_NLOC]):
        w = _local_weight(loc_int, loc_f, row, blk_int[b, B_TWO_J], psi)
        if w > 0.0:
            last = row
            if target <= w:
                return row
            target -= w
    return last


@nb.njit(cache=True)
def _apply_local(loc_int, loc_f, blk_int, b, row, psi, psi1):
    """psi1 = K_row psi / ||K_row psi|| in the Dicke basis of the target block."""
    two_j, two_jp = blk_int[b, B_TWO_J], loc_int[row, L_TWO_JP]
    offset, coeffs = loc_int[row, L_OFFSET], loc_f[row]
    psi1[: two_jp + 1] = 0.0
    norm = 0.0
    for k in range(two_j + 1):
        coeff = coeffs[k]
        if coeff != 0.0:
            amp = coeff * psi[k]
            psi1[k + offset] = amp
            norm += _abs2(amp)
    scale = 1.0 / np.sqrt(norm)
    for k in range(two_jp + 1):
        psi1[k] *= scale


@nb.njit(cache=True)
def _clebsch_gordan(two_j1, two_j, two_m, two_s):
    """<j1, m - s; s | j, m> (docs/method.md)."""
    j1 = 0.5 * two_j1
    m = 0.5 * two_m
    s = 0.5 * two_s
    if two_j == two_j1 + 1:
        return np.sqrt((j1 + 2 * s * m + 0.5) / (2 * j1 + 1))
    return -2 * s * np.sqrt((j1 - 2 * s * m + 0.5) / (2 * j1 + 1))


@nb.njit(cache=True)
def _lose_spin(blk_int, blk_f, V, b, c, mask, x, psi, psi1):
    """Apply the spin-loss channel to the block state; returns (target block, code) or (-1, -1)
    if a target block is missing.  psi1 receives the new Dicke-basis state, normalised."""
    two_j = blk_int[b, B_TWO_J]
    _to_dicke(blk_int, V, b, c, mask, psi)
    target = x  # the four Kraus weights sum to one
    last = (-1, -1, 0)
    for side in range(2):
        tb = blk_int[b, B_LOSS_MINUS + side]
        if tb == IMPOSSIBLE:
            continue
        two_j1 = two_j - 1 + 2 * side
        for up in range(2):
            two_s = 2 * up - 1
            offset = (two_j1 - two_j - two_s) // 2
            w2 = blk_f[b, side] ** 2
            p = 0.0
            for k in range(two_j + 1):
                if 0 <= k + offset <= two_j1:
                    p += w2 * _clebsch_gordan(two_j1, two_j, 2 * k - two_j, two_s) ** 2 * _abs2(psi[k])
            if p <= 0.0:
                continue
            last = (tb, up, offset)
            if target <= p:
                target = -1.0
                break
            target -= p
        if target < 0.0:
            break
    tb, up, offset = last
    two_j1 = blk_int[tb, B_TWO_J]
    psi1[: two_j1 + 1] = 0.0
    norm = 0.0
    for k in range(two_j + 1):
        if 0 <= k + offset <= two_j1:
            amp = _clebsch_gordan(two_j1, two_j, 2 * k - two_j, 2 * up - 1) * psi[k]
            psi1[k + offset] = amp
            norm += _abs2(amp)
    scale = 1.0 / np.sqrt(norm)
    for k in range(two_j1 + 1):
        psi1[k] *= scale
    return tb, LOSS_CODE + up


@nb.njit(cache=True)
def _observables(two_j, N, psi, out):
    """<S_a>, symmetrised <S_a S_b> from the Dicke-basis state (docs/method.md)."""
    j = 0.5 * two_j
    Jp = 0.0j  # <J+>
    Jp2 = 0.0j  # <J+^2>
    B = 0.0j  # <J+ Sz + Sz J+>
    Sz = 0.0
    Sz2 = 0.0
    JpJm_sym = 0.0  # <J+J- + J-J+> = 2 <j(j+1) - m^2>
    for k in range(two_j + 1):
        m = k - j
        pk = psi[k]
        p2 = _abs2(pk)
        Sz += m * p2
        Sz2 += m * m * p2
        JpJm_sym += 2.0 * (j * (j + 1) - m * m) * p2
        if k < two_j:
            a = np.sqrt(j * (j + 1) - m * (m + 1))
            amp = np.conj(psi[k + 1]) * a * pk
            Jp += amp
            B += (2 * m + 1) * amp
            if k + 1 < two_j:
                a2 = np.sqrt(j * (j + 1) - (m + 1) * (m + 2))
                Jp2 += np.conj(psi[k + 2]) * a2 * a * pk
    out[0] = N
    out[1] = j
    out[2] = Jp.real
    out[3] = Jp.imag
    out[4] = Sz
    out[5] = (2 * Jp2.real + JpJm_sym) / 4
    out[6] = (-2 * Jp2.real + JpJm_sym) / 4
    out[7] = Sz2
    out[8] = 0.5 * Jp2.imag
    out[9] = 0.5 * B.real
    out[10] = 0.5 * B.imag


@nb.njit(cache=True)
def _record(blk_int, lam, E, V, my, Ry, b, c, mask, tau, tmp, psi, out, shots, s_meas):
    for k in range(blk_int[b, B_D0] + blk_int[b, B_D1]):
        tmp[k] = c[k]
    _decay(blk_int, lam, E, b, tmp, mask, tau)
    _to_dicke(blk_int, V, b, tmp, mask, psi)
    _observables(blk_int[b, B_TWO_J], blk_int[b, B_N], psi, out)
    if shots > 0:
        out[len(out) - 1] = _sy2_shots(blk_int[b, B_TWO_J], my[b], Ry[b], psi, shots, s_meas)


#: (-i)^k for k mod 4.
MINUS_I_POWERS = (1.0 + 0.0j, -1.0j, -1.0 + 0.0j, 1.0j)


@nb.njit(cache=True)
def _sy_amplitudes(two_j, Ry, psi, amp, cumulative):
    """amp[m] = <j, m_y|psi> = sum_k Ry[k, m] (-i)^k psi[k] (dicke.sy_eigenbasis) and the
    cumulative sums of |amp|^2 (to draw an outcome); returns their total."""
    D = two_j + 1
    total = 0.0
    for m in range(D):
        a = 0.0j
        for k in range(D):
            a += Ry[k * D + m] * MINUS_I_POWERS[k % 4] * psi[k]
        amp[m] = a
        total += _abs2(a)
        cumulative[m] = total
    return total


@nb.njit(cache=True)
def _sy2_shots(two_j, my, Ry, psi, shots, s_meas):
    """Mean of m_y^2 over ``shots`` projective S_y outcomes drawn from |<j, m_y|psi>|^2, with
    <j, m_y| = sum_k Ry[k, m] (-i)^k <j, k| (docs/method.md; see dicke.sy_eigenbasis)."""
    D = two_j + 1
    cumulative = np.empty(D)
    total = _sy_amplitudes(two_j, Ry, psi, np.empty(D, np.complex128), cumulative)
    acc = 0.0
    for _ in range(shots):
        m = min(np.searchsorted(cumulative, _uniform(s_meas) * total), D - 1)
        acc += my[m] * my[m]
    return acc / shots


@nb.njit(cache=True)
def _gaussian(s):
    """A standard normal draw (Box-Muller) from two uniforms of stream s."""
    return np.sqrt(-2.0 * np.log(_uniform(s))) * np.cos(2.0 * np.pi * _uniform(s))


@nb.njit(cache=True)
def _measure_sy(two_j, Ry, psi, psi1, kind, sigma, s_meas, out):
    """An S_y measurement of the normalised Dicke-basis state psi; outcomes into ``out``.

    With a_m = <j, m_y|psi> = sum_k Ry[k, m] (-i)^k psi[k] (dicke.sy_eigenbasis; index m holds
    the eigenvalue m_y = m - j exactly, the outcome reported):
    PROJECTIVE draws m with probability |a_m|^2 and leaves psi1 = |j, m_y>, outcome m_y;
    WEAK draws y = m_y + sigma z (m as above, z standard normal: y has the density
    sum_m |a_m|^2 N(y; m_y, sigma^2)) and applies M_y ∝ exp(-(y - S_y)^2 / (4 sigma^2)):
    a_m <- a_m exp(-(y - m_y)^2 / (4 sigma^2)), renormalised;
    COPIES draws len(out) outcomes m_y from |a_m|^2 and leaves psi1 alone (no back-action).
    """
    D = two_j + 1
    amp = np.empty(D, np.complex128)
    cumulative = np.empty(D)
    total = _sy_amplitudes(two_j, Ry, psi, amp, cumulative)
    for shot in range(out.shape[0]):
        m = min(np.searchsorted(cumulative, _uniform(s_meas) * total), D - 1)
        out[shot] = m - 0.5 * two_j
    if kind == COPIES:
        return
    if kind == PROJECTIVE:
        amp[:] = 0.0
        amp[m] = 1.0
    else:
        y = out[0] + sigma * _gaussian(s_meas)
        out[0] = y
        norm = 0.0
        for q in range(D):
            amp[q] *= np.exp(-((y - q + 0.5 * two_j) ** 2) / (4.0 * sigma * sigma))
            norm += _abs2(amp[q])
        amp /= np.sqrt(norm)
    for k in range(D):
        acc = 0.0j
        for q in range(D):
            acc += Ry[k * D + q] * amp[q]
        psi1[k] = acc * np.conj(MINUS_I_POWERS[k % 4])  # i^k


def _measure(blk_int, V, Ry, b, c, mask, psi, psi1, kind, sigma, s_meas, out):
    """Measure S_y on the trajectory's state c (eigen-amplitudes of block b) with
    ``_measure_sy``; returns the new sector mask (compiled only, see _measure_overload)."""
    raise NotImplementedError("_measure runs inside compiled kernels only")


@nb.extending.overload(_measure, inline="always")
def _measure_overload(blk_int, V, Ry, b, c, mask, psi, psi1, kind, sigma, s_meas, out):
    """Complex amplitudes only: S_y eigenstates are complex in the Dicke basis, so ``simulate``
    makes c complex whenever an instrument is present; the real-typed variant is never called.
    Inlined at the IR level like ``_twist`` (same-bytes guarantee for fresh and cached code)."""
    if isinstance(c.dtype, nb.types.Complex):
        def measure(blk_int, V, Ry, b, c, mask, psi, psi1, kind, sigma, s_meas, out):
            _to_dicke(blk_int, V, b, c, mask, psi)
            _measure_sy(blk_int[b, B_TWO_J], Ry[b], psi, psi1, kind, sigma, s_meas, out)
            if kind == COPIES:
                return mask
            return _from_dicke(blk_int, V, b, psi1, c)
        return measure
    return lambda blk_int, V, Ry, b, c, mask, psi, psi1, kind, sigma, s_meas, out: mask


# ----------------------------------------------------------------------------- trajectories


@nb.njit(cache=True, nogil=True)
def start_trajectories(blk_int, V, b0, init_weights, init_states, loss_rate, st_f, st_i, rng, c):
    """Draw each trajectory's initial pure state from the initial ensemble (Dicke-basis rows of
    init_states with probabilities init_weights) and its first Poisson loss time."""
    D = blk_int[b0, B_TWO_J] + 1
    cumulative = np.cumsum(init_weights)
    for i in range(st_f.shape[0]):
        x = _uniform(rng[i]) * cumulative[-1]
        a = min(np.searchsorted(cumulative, x), len(init_weights) - 1)
        psi = init_states[a, :D].copy()
        st_i[i, I_BLOCK] = b0
        st_i[i, I_MASK] = _from_dicke(blk_int, V, b0, psi, c[i])
        st_f[i, T_TIME] = 0.0
        st_f[i, T_U] = _uniform(rng[i])
        rate = loss_rate * blk_int[b0, B_N]
        st_f[i, T_NEXT_POISSON] = -np.log(_uniform(rng[i])) / rate if rate > 0 else np.inf
        st_i[i, I_STATUS] = FRESH


@nb.njit(cache=True, nogil=True)
def advance(packed, t_grid, script_times, loss_rate, st_f, st_i, rng, c, samples, ev_t, ev_i,
            shots, rng_meas, meas_times, instrument, sigma, outcomes, outcome_N):
    """Run every unfinished trajectory until it is done, needs a block, or fills its event buffer."""
    blk_int, blk_f, ch_int, lam, V, A, loc_int, loc_f, my, Ry, E = packed
    work = np.zeros_like(c[0])
    psi = np.zeros_like(c[0])
    psi1 = np.zeros_like(c[0])
    for i in range(st_f.shape[0]):
        if st_i[i, I_STATUS] != DONE:
            st_i[i, I_STATUS] = _run(
                blk_int, blk_f, ch_int, lam, E, V, A, loc_int, loc_f, my, Ry, t_grid, script_times,
                loss_rate, st_f[i], st_i[i], rng[i], c[i], samples[i], ev_t[i], ev_i[i],
                work, psi, psi1, shots, rng_meas[i], meas_times, instrument, sigma, outcomes[i],
                outcome_N[i],
            )


@nb.njit(cache=True)
def _run(blk_int, blk_f, ch_int, lam, E, V, A, loc_int, loc_f, my, Ry, t_grid, script_times,
         loss_rate, sf, si, s, c, samples, ev_t, ev_i, work, psi, psi1, shots, s_meas,
         meas_times, instrument, sigma, outcomes, outcome_N):
    n_samples = t_grid.shape[0]
    cap = ev_t.shape[0]
    per_time = outcomes.shape[0] // max(meas_times.shape[0], 1)  # outcomes per measurement
    while True:
        b, mask = si[I_BLOCK], si[I_MASK]
        t = sf[T_TIME]
        tau = waiting_time(blk_int, lam, b, c, mask, sf[T_U])
        t_loss = sf[T_NEXT_POISSON]
        scripted = si[I_SCRIPT] < script_times.shape[0] and script_times[si[I_SCRIPT]] <= t_loss
        if scripted:
            t_loss = script_times[si[I_SCRIPT]]
        is_loss = t_loss <= t + tau
        t_event = t_loss if is_loss else t + tau
        q = si[I_MEAS]
        is_meas = q < meas_times.shape[0] and meas_times[q] < t_event
        if is_meas:
            t_event = meas_times[q]
        while si[I_SAMPLE] < n_samples and t_grid[si[I_SAMPLE]] < t_event:
            _record(blk_int, lam, E, V, my, Ry, b, c, mask, t_grid[si[I_SAMPLE]] - t, work, psi,
                    samples[si[I_SAMPLE]], shots, s_meas)
            si[I_SAMPLE] += 1
        if si[I_SAMPLE] == n_samples:
            return DONE
        if is_meas:  # S_y instrument with its back-action; the jump clock runs on (u rescaled)
            sf[T_U] = min(sf[T_U] / _decay(blk_int, lam, E, b, c, mask, t_event - t), 1.0)
            si[I_MASK] = _measure(blk_int, V, Ry, b, c, mask, psi, psi1, instrument, sigma, s_meas,
                                  outcomes[q * per_time:(q + 1) * per_time])
            outcome_N[q] = blk_int[b, B_N]
            si[I_MEAS] = q + 1
            sf[T_TIME] = t_event
            continue
        if cap > 0 and si[I_NEV] == cap:
            return BUFFER_FULL
        if is_loss:
            for side in range(2):
                tb = blk_int[b, B_LOSS_MINUS + side]
                if tb == NO_BLOCK:
                    si[I_NEED_N] = blk_int[b, B_N] - 1
                    si[I_NEED_TWO_J] = blk_int[b, B_TWO_J] - 1 + 2 * side
                    return NEED_BLOCK
            n_dt = _decay(blk_int, lam, E, b, c, mask, t_event - t)
            sf[T_U] = min(sf[T_U] / n_dt, 1.0)
            tb, code = _lose_spin(blk_int, blk_f, V, b, c, mask, _uniform(s), psi, psi1)
            si[I_MASK] = _from_dicke(blk_int, V, tb, psi1, c)
            si[I_BLOCK] = tb
            if scripted:
                si[I_SCRIPT] += 1
            rate = loss_rate * blk_int[tb, B_N]  # N changed: restart the memoryless clock
            sf[T_NEXT_POISSON] = t_event - np.log(_uniform(s)) / rate if rate > 0 else np.inf
        else:
            for row in range(blk_int[b, B_LOC], blk_int[b, B_LOC] + blk_int[b, B_NLOC]):
                if loc_int[row, L_TARGET] == NO_BLOCK:
                    si[I_NEED_N] = blk_int[b, B_N]
                    si[I_NEED_TWO_J] = loc_int[row, L_TWO_JP]
                    return NEED_BLOCK
            _decay(blk_int, lam, E, b, c, mask, tau)
            code = _jump(blk_int, ch_int, lam, V, A, loc_int, loc_f, si, c, _uniform(s), work,
                         psi, psi1)
            sf[T_U] = _uniform(s)
        sf[T_TIME] = t_event
        two_j_before = blk_int[b, B_TWO_J]
        b = si[I_BLOCK]
        if cap > 0:  # a zero-length buffer means: do not record events
            k = si[I_NEV]
            ev_t[k] = t_event
            ev_i[k, 0] = code
            ev_i[k, 1] = blk_int[b, B_N]
            ev_i[k, 2] = blk_int[b, B_TWO_J]
            ev_i[k, 3] = two_j_before
            si[I_NEV] = k + 1


@dataclass(frozen=True)
class Instrument:
    """A schedule of S_y measurements: kind (PROJECTIVE, WEAK or COPIES), sorted times, the
    resolution sigma (WEAK) and the outcomes per time (COPIES: the number of copies)."""

    kind: int
    times: np.ndarray
    sigma: float = 0.0
    per_time: int = 1


def simulate(table: BlockTable, N0: int, two_j0: int, init_weights: np.ndarray,
             init_states: np.ndarray, t_grid: np.ndarray, script_times: np.ndarray,
             loss_rate: float, rng: np.ndarray, event_capacity: int | None = None,
             record_events: bool = True, shots: int = 0, rng_meas: np.ndarray | None = None,
             instrument: Instrument | None = None):
    """Run len(rng) trajectories from block (N0, j0).

    Events are buffered per trajectory (``event_capacity`` each, default: 2^21 in all) and
    drained whenever a buffer fills; with ``record_events=False`` none are kept (long runs in
    the sensing regime make tens of millions of jumps per trajectory).  With ``shots > 0`` the
    samples get one more column, Sy2_shots, drawn from the separate streams ``rng_meas`` (the
    readout does not disturb the trajectory, and the trajectory does not depend on the shots);
    the table must keep the S_y eigenbasis (``BlockTable(..., sy_basis=True)``).
    An ``instrument`` measures S_y at its times with back-action (``_measure_sy``), drawing from
    ``rng_meas``; it needs the S_y eigenbasis too.

    Returns (samples[trajectory, sample, observable], events) where events is a dict of arrays
    (trajectory row, t, channel code, N and 2j after the event, 2j before it), ordered by
    trajectory then time; with an instrument, events["outcomes"] is a dict of arrays (row, t,
    outcome, N at that time), ordered by trajectory, time and copy.
    """
    n = len(rng)
    rng = rng.copy()
    event_capacity = event_capacity or int(np.clip(2**21 // n, 64, 4096))
    if not record_events:
        event_capacity = 0
    b0 = table.ensure(N0, two_j0)
    if instrument is None:
        instrument = Instrument(NO_INSTRUMENT, np.zeros(0))
    measured = instrument.kind != NO_INSTRUMENT  # see _measure_overload
    dtype = complex if table.rates.chi != 0 or measured else init_states.dtype
    c = np.zeros((n, N0 + 1), dtype=dtype)
    st_f = np.zeros((n, 3))
    st_i = np.zeros((n, I_MEAS + 1), np.int64)
    n_meas = instrument.times.size
    outcomes = np.zeros((n, n_meas * instrument.per_time))
    outcome_N = np.zeros((n, n_meas), np.int64)
    samples = np.zeros((n, len(t_grid), len(OBSERVABLES) + (shots > 0)))
    rng_meas = np.zeros((n, 4), np.uint64) if rng_meas is None else rng_meas.copy()
    ev_t = np.zeros((n, event_capacity))
    ev_i = np.zeros((n, event_capacity, 4), np.int64)
    packed = table.snapshot([(N0, two_j0)])
    start_trajectories(packed[0], packed[4], b0, init_weights, init_states, loss_rate, st_f, st_i,
                       rng, c)
    chunks = []
    while True:
        advance(packed, t_grid, script_times, loss_rate, st_f, st_i, rng, c, samples, ev_t, ev_i,
                shots, rng_meas, instrument.times, instrument.kind, instrument.sigma, outcomes,
                outcome_N)
        for i in np.flatnonzero(st_i[:, I_NEV]):
            k = st_i[i, I_NEV]
            chunks.append((np.full(k, i), ev_t[i, :k].copy(), ev_i[i, :k].copy()))
            st_i[i, I_NEV] = 0
        running = st_i[:, I_STATUS] != DONE
        if not running.any():
            break
        waiting = st_i[:, I_STATUS] == NEED_BLOCK
        required = set()
        for b in np.unique(st_i[running, I_BLOCK]):
            required |= table.neighbourhood(*table.keys[b], losses=False)
        for b in np.unique(st_i[waiting, I_BLOCK]):
            required |= table.neighbourhood(*table.keys[b], losses=True)
        packed = table.snapshot(sorted(required))
    if chunks:
        rows = np.concatenate([ch[0] for ch in chunks])
        order = np.argsort(rows, kind="stable")
        ints = np.concatenate([ch[2] for ch in chunks])[order]
        events = {"row": rows[order], "t": np.concatenate([ch[1] for ch in chunks])[order],
                  "channel": ints[:, 0], "N": ints[:, 1], "two_j": ints[:, 2],
                  "two_j_before": ints[:, 3]}
    else:
        events = {"row": np.zeros(0, np.int64), "t": np.zeros(0), "channel": np.zeros(0, np.int64),
                  "N": np.zeros(0, np.int64), "two_j": np.zeros(0, np.int64),
                  "two_j_before": np.zeros(0, np.int64)}
    if n_meas:
        k = instrument.per_time
        events["outcomes"] = {"row": np.repeat(np.arange(n), n_meas * k),
                              "t": np.tile(np.repeat(instrument.times, k), n),
                              "outcome": outcomes.ravel(),
                              "N": np.repeat(outcome_N, k, axis=1).ravel()}
    return samples, events
