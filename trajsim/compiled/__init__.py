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

from ..dicke import OBSERVABLES
from . import cache  # noqa: F401  (registers the cache locators before any kernel: cache.py)
from .blocks import BlockTable
from .driver import Instrument, simulate
from .kernels import waiting_time
from .layout import (
    CHANNELS,
    COPIES,
    LOCAL_CODE,
    LOSS_CODE,
    NO_INSTRUMENT,
    PROJECTIVE,
    WEAK,
)
from .streams import rng_states

__all__ = ["CHANNELS", "COPIES", "LOCAL_CODE", "LOSS_CODE", "NO_INSTRUMENT", "OBSERVABLES",
           "PROJECTIVE", "WEAK", "BlockTable", "Instrument", "rng_states", "simulate",
           "waiting_time"]
