"""Flush subnormal numbers to zero inside the trajectory loop (x86: the MXCSR FTZ and DAZ bits).

In the sensing regime most modes of a block decay by more than e^-700 between two jumps, and on
x86 every operation that makes or reads a subnormal number (|x| < 2.2e-308) costs ~100 cycles of
microcode: measured at N = 201, r = 2.5, it doubled the cost of the no-jump propagation.  Values
that small are far below the round-off of a normalised state, so flushing them changes no
observable.  The bits are set on entry to the compiled loop and restored on exit, for the
calling thread only (MXCSR is per thread).  Other CPUs (ARM) handle subnormals in hardware;
there both functions do nothing.
"""

from __future__ import annotations

import platform

import numba as nb
from llvmlite import ir

#: MXCSR bits: flush-to-zero (results) and denormals-are-zero (inputs).
FTZ_DAZ = 0x8040
X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


@nb.extending.intrinsic
def _swap_mxcsr(typingctx, set_bits, restore):
    """Read MXCSR; write (old | set_bits) if restore < 0, else restore; return old."""
    def codegen(context, builder, signature, args):
        i8p = ir.PointerType(ir.IntType(8))
        fnty = ir.FunctionType(ir.VoidType(), [i8p])
        read = builder.module.declare_intrinsic("llvm.x86.sse.stmxcsr", fnty=fnty)
        write = builder.module.declare_intrinsic("llvm.x86.sse.ldmxcsr", fnty=fnty)
        slot = builder.alloca(ir.IntType(32))
        builder.call(read, [builder.bitcast(slot, i8p)])
        old = builder.load(slot)
        bits = builder.trunc(args[0], ir.IntType(32))
        saved = builder.trunc(args[1], ir.IntType(32))
        restoring = builder.icmp_signed(">=", args[1], ir.Constant(ir.IntType(64), 0))
        builder.store(builder.select(restoring, saved, builder.or_(old, bits)), slot)
        builder.call(write, [builder.bitcast(slot, i8p)])
        return builder.zext(old, ir.IntType(64))
    return nb.types.int64(nb.types.int64, nb.types.int64), codegen


if X86:
    @nb.njit(cache=True, inline="always")
    def flush_subnormals():
        """Set FTZ and DAZ for this thread; returns the previous state for restore_fp_state."""
        return _swap_mxcsr(FTZ_DAZ, -1)

    @nb.njit(cache=True, inline="always")
    def restore_fp_state(old):
        _swap_mxcsr(0, old)
else:
    @nb.njit(cache=True, inline="always")
    def flush_subnormals():
        return 0

    @nb.njit(cache=True, inline="always")
    def restore_fp_state(old):
        return None
