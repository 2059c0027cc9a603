"""Block model: the no-jump generator K, its sector eigen-decomposition and eigenbasis channels."""

import numpy as np
import pytest

from trajsim import dicke, model

RATES = model.Rates(Gamma=1.3, r=0.8, gamma_coll=0.4)


def dense_K(N, two_j, rates):
    Jp, Jm, Jz = dicke.spin_matrices(two_j)
    S = dicke.Sigma(two_j, rates.r)
    eye = np.eye(two_j + 1)
    return (rates.Gamma * S.T @ S + rates.gamma_coll * Jp @ Jm
            + rates.gamma_rel * (N / 2 * eye + Jz) + rates.gamma_phi / 2 * N * eye)


@pytest.mark.parametrize("N, two_j", [(10, 10), (9, 9), (10, 4), (3, 1), (2, 0)])
def test_generator_matches_dense(N, two_j):
    rates = model.Rates(Gamma=1.3, r=0.8, gamma_coll=0.4, gamma_phi=0.2, gamma_rel=0.1)
    diag, off2 = model.no_jump_generator(N, two_j, rates)
    K = np.diag(diag) + np.diag(off2, 2) + np.diag(off2, -2)
    assert np.allclose(K, dense_K(N, two_j, rates))


@pytest.mark.parametrize("N, two_j", [(12, 12), (11, 11), (12, 6)])
def test_sector_decomposition_rebuilds_K(N, two_j):
    block = model.build_block(N, two_j, RATES)
    V = np.stack([block.to_dicke(e) for e in np.eye(two_j + 1)], axis=1)
    lam = np.concatenate(block.lam)
    assert np.allclose(V.T @ V, np.eye(two_j + 1), atol=1e-13)
    assert np.allclose(V @ np.diag(lam) @ V.T, dense_K(N, two_j, RATES))


def test_channels_in_eigenbasis_and_total_rate():
    """A_c = V^T sqrt(rate) L_c V, and sum_c ||A_c c||^2 = <K> for the in-block channels."""
    block = model.build_block(9, 9, RATES)
    psi = np.random.default_rng(1).normal(size=10)
    psi /= np.linalg.norm(psi)
    c = block.to_eigenbasis(psi)
    n0 = block.lam[0].size
    total = 0.0
    for name, (A0, A1) in block.channels.items():
        rate, L = model.channel_operator(name, 9, RATES)
        direct = np.sqrt(rate) * L @ psi
        out = np.zeros(10)
        out[n0:] = A0 @ c[:n0]
        out[:n0] = A1 @ c[n0:]
        assert np.allclose(block.to_dicke(out), direct)
        total += np.sum(direct**2)
    assert np.isclose(total, psi @ dense_K(9, 9, RATES) @ psi)


def test_even_dark_eigenvalue_is_exactly_zero_at_large_N():
    block = model.build_block(2000, 2000, model.Rates(r=5.0))
    lam0 = block.lam[0]
    assert lam0.min() == 0.0 and np.sum(lam0 == 0.0) == 1
    dark = block.to_dicke(np.eye(2001)[np.argmin(lam0)])
    assert abs(abs(dark @ dicke.dark_state(2000, 5.0)) - 1) < 1e-10
