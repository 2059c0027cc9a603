"""Compiled block algebra of one trajectory: sector spans, Dicke <-> eigen-amplitudes, the
no-jump decay and the jump time, in-block and local jumps, spin loss, observables, and the S_y
instruments (docs/method.md)."""

from __future__ import annotations

import numba as nb
import numpy as np

from .. import dicke
from .layout import (
    B_CH,
    B_D0,
    B_D1,
    B_LOC,
    B_LOSS_MINUS,
    B_N,
    B_NCH,
    B_NLOC,
    B_TWO_J,
    COPIES,
    I_BLOCK,
    I_MASK,
    IMPOSSIBLE,
    L_CODE,
    L_OFFSET,
    L_TARGET,
    L_TWO_JP,
    LOSS_CODE,
    PROJECTIVE,
)
from .streams import _gaussian, _uniform
from .vexp import exp_nonpositive, lane_moments

#: Multiply-adds may fuse (every x86-64 CPU trajsim targets has FMA).  Sums are never
#: reassociated: a vectorised reduction would add in an order that depends on the CPU's vector
#: width, and results must not.  Loops vectorise where they have no reduction.
FAST = {"contract"}


@nb.njit(cache=True, inline="always")
def _abs2(z):
    return (z * np.conj(z)).real


@nb.njit(cache=True, inline="always")
def _sector(blk_int, b, s):
    """The span of sector s of block b, the one helper every sector loop uses (inlined):
    (size, offset in c and in lam[b], offset in V[b])."""
    D0 = blk_int[b, B_D0]
    if s == 0:
        return D0, 0, 0, 0
    return blk_int[b, B_D1], D0, D0, D0 * D0


@nb.njit(cache=True, fastmath=FAST)
def _to_dicke(blk_int, V, b, c, mask, psi):
    """psi = V c in the Dicke basis (sector s holds Dicke indices k = s, s+2, ...); four rows at
    a time (four independent sums, each in column order; the last block repeats its last row)."""
    psi[: blk_int[b, B_TWO_J] + 1] = 0.0
    Vb = V[b]
    for s in range(2):
        if not (mask >> s) & 1:
            continue
        Ds, cs, _, vs = _sector(blk_int, b, s)
        x = c[cs:cs + Ds]
        for row in range(0, Ds, 4):
            r1, r2, r3 = min(row + 1, Ds - 1), min(row + 2, Ds - 1), min(row + 3, Ds - 1)
            v0 = Vb[vs + row * Ds:vs + (row + 1) * Ds]
            v1 = Vb[vs + r1 * Ds:vs + (r1 + 1) * Ds]
            v2 = Vb[vs + r2 * Ds:vs + (r2 + 1) * Ds]
            v3 = Vb[vs + r3 * Ds:vs + (r3 + 1) * Ds]
            acc0 = acc1 = acc2 = acc3 = 0.0 * c[0]
            for col in range(Ds):
                acc0 += v0[col] * x[col]
                acc1 += v1[col] * x[col]
                acc2 += v2[col] * x[col]
                acc3 += v3[col] * x[col]
            psi[s + 2 * row] = acc0
            psi[s + 2 * r1] = acc1
            psi[s + 2 * r2] = acc2
            psi[s + 2 * r3] = acc3


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
        y = c[cs:cs + Ds]
        y[:] = 0.0
        if not occupied:
            continue
        mask |= 1 << s
        for row in range(Ds):
            p = psi[s + 2 * row]
            v = Vb[vs + row * Ds:vs + (row + 1) * Ds]
            for col in range(Ds):
                y[col] += v[col] * p
    return mask


@nb.njit(cache=True, fastmath=FAST)
def _decay_moments(blk_int, lam, b, c, mask, tau, w):
    """(n, -dn/dtau, n(inf)) of n(tau) = sum_k |c_k|^2 exp(-lambda_k tau); no exp at tau = 0
    (n(inf) only there).  w: scratch for the weights |c_k|^2 exp(-lambda_k tau) of a sector."""
    n = 0.0
    dn = 0.0
    n_inf = 0.0
    lb = lam[b]
    for s in range(2):
        if (mask >> s) & 1:
            Ds, cs, ls, _ = _sector(blk_int, b, s)
            lk, ck, wk = lb[ls:ls + Ds], c[cs:cs + Ds], w[:Ds]
            if tau == 0.0:
                for k in range(Ds):
                    wk[k] = _abs2(ck[k])
                    if lk[k] == 0.0:
                        n_inf += wk[k]
            else:
                for k in range(Ds):
                    wk[k] = _abs2(ck[k]) * exp_nonpositive(-lk[k] * tau)
            n_s, dn_s = lane_moments(lk, wk)
            n += n_s
            dn += dn_s
    return n, dn, n_inf


@nb.njit(cache=True)
def waiting_time(blk_int, lam, b, c, mask, u, w):
    """Solve n(tau) = u by Newton on log n from tau = 0; inf if n(inf) >= u (no jump ever).

    log n is convex and decreasing, so the iterates rise monotonically to the root.  The first
    step (at tau = 0) needs no exponentials; iteration stops once a step is below 1e-9 tau, after
    which the quadratic convergence leaves an error of order 1e-18 tau.
    """
    n, dn, n_inf = _decay_moments(blk_int, lam, b, c, mask, 0.0, w)
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
        n, dn, _ = _decay_moments(blk_int, lam, b, c, mask, tau, w)
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


@nb.njit(cache=True, fastmath=FAST)
def _decay(blk_int, lam, E, b, c, mask, tau, w):
    """c <- c exp(-(lambda / 2 + i E) tau), normalised; returns the squared norm before
    normalising (E is empty without one-axis twisting; w: scratch as in waiting_time)."""
    n = 0.0
    lb = lam[b]
    Eb = E[b]
    for s in range(2):
        if (mask >> s) & 1:
            Ds, cs, ls, _ = _sector(blk_int, b, s)
            lk, ck, wk = lb[ls:ls + Ds], c[cs:cs + Ds], w[:Ds]
            for k in range(Ds):
                ck[k] *= exp_nonpositive(-0.5 * lk[k] * tau)
            if Eb.size:
                for k in range(Ds):
                    _twist(ck, k, Eb[ls + k] * tau)
            for k in range(Ds):
                wk[k] = _abs2(ck[k])
            n += lane_moments(lk, wk)[0]
    scale = 1.0 / np.sqrt(n)
    for k in range(blk_int[b, B_D0] + blk_int[b, B_D1]):
        c[k] *= scale
    return n


@nb.njit(cache=True, fastmath=FAST)
def _apply_channel(blk_int, ch_int, A, b, ch, c, mask, out):
    """out = A_ch c (sector s -> 1 - s); returns ||out||^2.

    A_ch is stored by columns, so the product is a sum of columns scaled by c, eight at a time:
    the loops over rows vectorise with no reduction, and every out[row] still adds its terms in
    column order (results do not depend on the vector width of the CPU)."""
    norm = 0.0
    D_total = blk_int[b, B_D0] + blk_int[b, B_D1]
    out[:D_total] = 0.0
    for s in range(2):
        if not (mask >> s) & 1:
            continue
        Ds, cs, _, _ = _sector(blk_int, b, s)
        Dt, ct, _, _ = _sector(blk_int, b, 1 - s)
        Ach = A[ch][ch_int[ch, 1 + s]:]
        x = c[cs:cs + Ds]
        y = out[ct:ct + Dt]
        col = 0
        while col + 8 <= Ds:
            a0, a1 = Ach[col * Dt:(col + 1) * Dt], Ach[(col + 1) * Dt:(col + 2) * Dt]
            a2, a3 = Ach[(col + 2) * Dt:(col + 3) * Dt], Ach[(col + 3) * Dt:(col + 4) * Dt]
            a4, a5 = Ach[(col + 4) * Dt:(col + 5) * Dt], Ach[(col + 5) * Dt:(col + 6) * Dt]
            a6, a7 = Ach[(col + 6) * Dt:(col + 7) * Dt], Ach[(col + 7) * Dt:(col + 8) * Dt]
            x0, x1, x2, x3 = x[col], x[col + 1], x[col + 2], x[col + 3]
            x4, x5, x6, x7 = x[col + 4], x[col + 5], x[col + 6], x[col + 7]
            for row in range(Dt):
                acc = (((y[row] + a0[row] * x0) + a1[row] * x1) + a2[row] * x2) + a3[row] * x3
                y[row] = (((acc + a4[row] * x4) + a5[row] * x5) + a6[row] * x6) + a7[row] * x7
            col += 8
        while col < Ds:
            a0, x0 = Ach[col * Dt:(col + 1) * Dt], x[col]
            for row in range(Dt):
                y[row] += a0[row] * x0
            col += 1
        for row in range(Dt):
            norm += _abs2(y[row])
    return norm


@nb.njit(cache=True)
def _jump(blk_int, ch_int, lam, V, A, loc_int, loc_f, si, c, x, work, w, psi, psi1):
    """Pick a jump with probability (its weight) / <K> (x uniform in (0,1]) and apply it.

    In-block channels come first (weight ||A_ch c||^2, one product each), then the local ones
    (weight ||K_l psi||^2 in the Dicke basis, O(D) each).  Their weights add up to <K>, so no
    total is needed for the local part.  Updates the block and mask in si; returns the code.
    """
    b, mask = si[I_BLOCK], si[I_MASK]
    total = _decay_moments(blk_int, lam, b, c, mask, 0.0, w)[1]
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


#: <j1, m - s; s | j, m>: dicke.clebsch_gordan, compiled (one implementation for both sides).
_clebsch_gordan = nb.njit(cache=True)(dicke.clebsch_gordan)


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
def _record(blk_int, lam, E, V, my, Ry, b, c, mask, tau, tmp, w, psi, out, shots, s_meas):
    for k in range(blk_int[b, B_D0] + blk_int[b, B_D1]):
        tmp[k] = c[k]
    _decay(blk_int, lam, E, b, tmp, mask, tau, w)
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
