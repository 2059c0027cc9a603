"""Blocks (N, j) in flat arrays for the kernels: ``BlockTable`` builds them lazily (model.py),
keeps them within a memory budget and packs them into numba typed lists."""

from __future__ import annotations

import threading

import numba as nb
import numpy as np

from .. import dicke
from ..memory import memory_budget
from ..model import IN_BLOCK_CHANNELS, Block, Rates, build_block
from .layout import (
    B_CH,
    B_D0,
    B_D1,
    B_LOC,
    B_LOSS_MINUS,
    B_LOSS_PLUS,
    B_N,
    B_NCH,
    B_NLOC,
    B_TWO_J,
    IMPOSSIBLE,
    LOCAL_CHANNELS,
    LOCAL_CODE,
    NO_BLOCK,
)


def _float_list(arrays) -> nb.typed.List:
    """A typed list of the arrays, raveled, made and grown in compiled code (``_new_list``,
    ``_append``): from Python, Numba compiles a typed list's methods anew in every process
    (0.3 s), in cached compiled code they load with it."""
    out = _new_list()
    for a in arrays:
        _append(out, np.ascontiguousarray(a, dtype=np.float64).ravel())
    return out


_FLOATS = nb.float64[::1]


@nb.njit(cache=True)
def _new_list():
    return nb.typed.List.empty_list(_FLOATS)


@nb.njit(cache=True)
def _append(items, a):
    items.append(a)


class BlockTable:
    """Thread-safe set of the blocks of one model, handed to the kernels as snapshots.

    Block ids are permanent.  Built blocks stay cached while their memory fits ``budget_bytes``;
    past it the least recently used blocks that no caller pins are evicted (and rebuilt, bit for
    bit the same, if a trajectory needs them again).  A snapshot holds references to the block
    arrays (numba typed lists), so making one copies nothing large.  Each thread gets its own
    snapshot: the kernels count references to a block's arrays through the typed list that
    holds them, and two threads updating the same counters on every access made two threads
    slower than one (fig4b_parity_sensing.yaml: 2.56 s against 2.16 s for 48 units; 1.31 s
    with a snapshot per thread).
    """

    def __init__(self, rates: Rates, budget_bytes: float | None = None, sy_basis: bool = False):
        self.rates = rates
        self.sy_basis = sy_basis  # also keep the S_y eigenbasis (finite-shot measurement)
        self.budget = budget_bytes if budget_bytes is not None else memory_budget()
        self.keys: list[tuple[int, int]] = []
        self.ids: dict[tuple[int, int], int] = {}
        self.blocks: list[Block | None] = []
        self._parts: list[dict | None] = []
        self._used: dict[int, int] = {}
        self._clock = 0
        self.builds = 0
        self._lock = threading.RLock()
        self._packed: dict[int, tuple] = {}  # per thread, see snapshot

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
                self._packed = {}
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
            thread = threading.get_ident()
            if thread not in self._packed:
                self._packed[thread] = self._pack()
            return self._packed[thread]

    def neighbourhood(self, N: int, two_j: int, losses: bool) -> set[tuple[int, int]]:
        """Block (N, 2j) and every block one local jump (or, with losses, one loss) away: what a
        trajectory there may need next.  Kept together so that evictions cannot ping-pong."""
        keys = {(N, two_j)}
        if self.rates.local():
            keys |= {(N, two_jp) for _, two_jp in dicke.local_targets(N, two_j)}
        if losses and N > 0:
            keys |= {(N - 1, t) for t in dicke.loss_targets(N, two_j)}
        return keys

    def packed(self) -> tuple:
        """The current snapshot (every block in memory)."""
        return self.snapshot([])

    def _kernel_parts(self, block: Block) -> dict:
        """A block's arrays in kernel layout: eigenvalues, eigenvectors, channel matrices and
        local-channel coefficients (sqrt(rate) folded in)."""
        channels = [(IN_BLOCK_CHANNELS.index(name), np.concatenate([A0.T.ravel(), A1.T.ravel()]),
                     A0.size) for name, (A0, A1) in block.channels.items()]  # by columns
        local = []
        for name, rate in self.rates.local().items():
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


