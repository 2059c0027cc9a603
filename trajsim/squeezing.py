"""Spin-squeezing figures of merit from first and second moments (Eq. (1) of the paper; docs/method.md)."""

from __future__ import annotations

import numpy as np


def wineland_xi2(N, mean, second) -> np.ndarray:
    """Wineland parameter xi^2 = N min_{n ⊥ <S>} Var(n.S) / |<S>|^2, Eq. (1).

    ``mean[..., a]`` = <S_a>, ``second[..., a, b]`` = <(S_a S_b + S_b S_a)/2> (ensemble values, so
    the covariance is that of the density matrix).  Broadcasts over leading axes.
    """
    mean = np.asarray(mean, float)
    cov = np.asarray(second, float) - mean[..., :, None] * mean[..., None, :]
    norm2 = np.einsum("...a,...a->...", mean, mean)
    polarised = norm2 > 0
    n = np.where(polarised[..., None], mean, [0.0, 0.0, 1.0])
    n = n / np.linalg.norm(n, axis=-1, keepdims=True)
    # Orthonormal pair spanning the plane ⊥ n: project the covariance and take its smaller eigenvalue.
    helper = np.where(np.abs(n[..., 2:3]) < 0.9, [0.0, 0.0, 1.0], [1.0, 0.0, 0.0])
    e1 = np.cross(n, helper)
    e1 /= np.linalg.norm(e1, axis=-1, keepdims=True)
    e2 = np.cross(n, e1)
    P = np.stack([e1, e2], axis=-2)  # (..., 2, 3)
    C2 = P @ cov @ np.swapaxes(P, -1, -2)
    var_min = np.linalg.eigvalsh(C2)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(polarised, np.asarray(N, float) * var_min / norm2, np.inf)


def moments_from_columns(table) -> tuple[np.ndarray, np.ndarray]:
    """(mean[..., 3], second[..., 3, 3]) from a mapping with Sx, Sy, Sz, Sx2, ..., SySz entries."""
    mean = np.stack([table["Sx"], table["Sy"], table["Sz"]], axis=-1)
    xx, yy, zz = table["Sx2"], table["Sy2"], table["Sz2"]
    xy, xz, yz = table["SxSy"], table["SxSz"], table["SySz"]
    second = np.stack(
        [np.stack([xx, xy, xz], -1), np.stack([xy, yy, yz], -1), np.stack([xz, yz, zz], -1)], -2
    )
    return mean, second
