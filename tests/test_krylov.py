"""The Krylov no-jump propagation (trajsim.compiled.krylov) against scipy's expm: hybrid
generators with random parameters, stops inside and across steps, the jump time as the root of
the norm, an exceptional point, and a sector small enough for the Krylov space to close."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.linalg import expm
from scipy.sparse.linalg import expm_multiply

from trajsim import hybrid
from trajsim.compiled import krylov
from trajsim.engines.hybrid import build_block
from trajsim.model import Rates

#: Each step errs by at most TOL ||x||; the spans below take at most a few hundred steps.
STEPS_BOUND = 500


def evolve(block, x, u, times, t=0.0):
    """advance_through from t with a fresh step size: (k, t, jumped, X, x after)."""
    x = x.astype(complex).copy()
    step = krylov.new_step(block.generator.anorm)
    k, t, jumped, X = block.generator.advance_through(x, t, u, np.asarray(times, float), 0,
                                                      len(times), step)
    return k, t, jumped, X, x


def generator_of(block):
    """The block's A, dense."""
    return block.generator.matrix().toarray()


def random_block(seed, N=12, n_max=10):
    rng = np.random.default_rng(seed)
    cavity = hybrid.Cavity(g=rng.uniform(0.05, 1.0), kappa_sqz=rng.uniform(0.2, 2.0),
                           r=rng.uniform(0.0, 1.2), kappa_int=rng.uniform(0.0, 0.5),
                           Delta_c=rng.uniform(-1.0, 1.0), n_max=n_max)
    rates = Rates(gamma_phi=rng.uniform(0, 0.3), gamma_rel=rng.uniform(0, 0.3))
    return build_block(N, N, cavity, rates), rng


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_no_jump_evolution_is_expm_of_the_generator_at_every_stop(seed):
    """Stops on a random grid (several per step and steps between stops): X[i] = expm(A t_i) x
    within the stated tolerance, relative to ||x||."""
    block, rng = random_block(seed)
    A = generator_of(block)
    assert block.generator.dim > 4 * krylov.KRYLOV_DIM  # the space does not close
    x = rng.normal(size=A.shape[0]) + 1j * rng.normal(size=A.shape[0])
    x /= np.linalg.norm(x)
    times = np.sort(rng.uniform(0, 6.0, 15))
    k, t, jumped, X, after = evolve(block, x, 1e-300, times)
    assert (k, t, jumped) == (times.size, times[-1], False)
    for i, ti in enumerate(times):
        assert np.linalg.norm(X[i] - expm(A * ti) @ x) < STEPS_BOUND * krylov.TOL, ti
    assert np.array_equal(after, X[-1])


def test_a_call_from_a_later_time_and_a_stop_at_that_time():
    """times before t + 0 are the state itself; evolution is from t (times are absolute)."""
    block, rng = random_block(7)
    A = generator_of(block)
    x = rng.normal(size=A.shape[0]) + 0j
    x /= np.linalg.norm(x)
    k, t, jumped, X, _ = evolve(block, x, 1e-300, [2.0, 2.5], t=2.0)
    assert np.array_equal(X[0], x)
    assert np.linalg.norm(X[1] - expm(A * 0.5) @ x) < STEPS_BOUND * krylov.TOL


@pytest.mark.parametrize("basis", ["fock", "reservoir"])
def test_a_state_in_one_parity_sector_evolves_there(basis):
    """H_eff keeps n + k even and odd apart (local rates, detuning and either cavity basis
    included): a state in one sector is propagated in that half of the block, a state in both
    in the whole one; each is expm(A t) x, zero outside its sector."""
    rng = np.random.default_rng(5)
    cavity = hybrid.Cavity(g=0.4, kappa_sqz=1.0, r=0.7, kappa_int=0.1, Delta_c=0.3, n_max=7,
                           basis=basis)
    block = build_block(9, 7, cavity, Rates(gamma_phi=0.2, gamma_rel=0.1))
    A = generator_of(block)
    n, k = np.divmod(np.arange(A.shape[0]), 8)
    assert len(block.generator.sectors) == 2
    for parity, (idx, sector) in enumerate(block.generator.sectors):
        assert np.array_equal(np.sort(idx), np.flatnonzero((n + k) % 2 == parity))
        assert np.all(np.diff(k[idx]) >= 0)  # held from the fewest spins up (the windows)
        assert np.array_equal(sector.matrix().toarray(), A[np.ix_(idx, idx)])
        x = np.zeros(A.shape[0], complex)
        x[idx] = rng.normal(size=idx.size) + 1j * rng.normal(size=idx.size)
        x /= np.linalg.norm(x)
        times = [0.7, 3.0, 9.5]
        _, _, _, X, _ = evolve(block, x, 1e-300, times)
        for i, tau in enumerate(times):
            assert np.linalg.norm(X[i] - expm(A * tau) @ x) < STEPS_BOUND * krylov.TOL
            assert not X[i][(n + k) % 2 != parity].any()


@pytest.mark.parametrize("u", [0.999, 0.5, 0.01])
def test_the_jump_time_is_the_root_of_the_norm(u):
    """The returned time t solves ||expm(A t) x||^2 = u to 1e-10 relative, the state is
    expm(A t) x, and only the stops before t are reached."""
    block, rng = random_block(11)
    A = generator_of(block)
    x = np.zeros(A.shape[0], complex)
    x[0] = 1.0  # no photon, all spins down: decays only through the reservoir's a a^dag term
    times = np.linspace(0.5, 200.0, 400)
    k, t, jumped, X, after = evolve(block, x, u, times)
    exact = expm(A * t) @ x
    assert jumped and abs(np.vdot(exact, exact).real - u) < 1e-10 * u
    assert np.linalg.norm(after - exact) < STEPS_BOUND * krylov.TOL
    assert t <= times[k] and (k == 0 or times[k - 1] < t)
    for i in range(k):
        assert np.linalg.norm(X[i] - expm(A * times[i]) @ x) < STEPS_BOUND * krylov.TOL


@pytest.mark.parametrize("up", [0, 120])
def test_a_state_held_by_few_dicke_levels_evolves_in_a_window(up):
    """From all spins down (or all up) and the squeezed vacuum, N = 120: each step works on the
    states of the few Dicke levels that hold the state, a prefix (or, from all up, a range
    away from k = 0) of the states sorted by k; the window grows as the state spreads, a step
    whose window would leak is made again in a larger one, and every stop is still expm(A t) x
    within the stated tolerance."""
    cavity = hybrid.Cavity(g=0.02, kappa_sqz=1.0, r=0.6, kappa_int=0.05, Delta_c=0.2, n_max=6)
    block = build_block(120, 120, cavity, Rates(gamma_rel=0.01))
    A = block.generator.matrix().tocsc()
    x = np.outer(hybrid.reservoir_vacuum(cavity), np.eye(121)[up]).ravel().astype(complex)
    times = np.linspace(0.25, 12.0, 48)
    X, windows, step, t, k, y = [], [], krylov.new_step(block.generator.anorm), 0.0, 0, x.copy()
    while k < times.size:
        k_new, t, _, Y = block.generator.advance_through(y, t, 0.0, times, k, times.size, step, 1)
        X.extend(Y[:k_new - k])
        windows.append(step[4])
        k = k_new
    sector = block.generator.sectors[0][1].dim
    assert windows[0] < sector / 10 and windows[-1] < sector / 2
    assert max(windows) > 4 * windows[0]
    if up == 0:
        assert step[1] > len(windows)  # here some step is made again in a larger window
    exact = expm_multiply(A, x, start=0.25, stop=12.0, num=48, endpoint=True)
    for i in range(times.size):
        assert np.linalg.norm(X[i] - exact[i]) < STEPS_BOUND * krylov.TOL, times[i]


def test_the_leak_bound_reads_both_edges_of_the_window():
    """``_leak``: twice the largest norm, over the sub-step boundaries, of psi = sum_i z_i V[i]
    on the states within band of each side of the window that is not a side of the space."""
    rng = np.random.default_rng(8)
    V = rng.normal(size=(3, 20)) + 1j * rng.normal(size=(3, 20))
    Z = rng.normal(size=(4, 3)) + 1j * rng.normal(size=(4, 3))
    psi = Z @ V  # psi at each boundary
    for lo, hi, edges in ((5, 15, [5, 6, 13, 14]), (0, 15, [13, 14]), (5, 20, [5, 6]),
                          (0, 20, [])):
        expected = 2 * np.linalg.norm(psi[:, edges], axis=1).max() if edges else 0.0
        assert krylov._leak(V, 3, Z, lo, hi, 2, 20) == pytest.approx(expected, rel=1e-12)


def test_propagation_is_exact_at_an_exceptional_point():
    """One spin, one photon, internal loss only: the one-excitation sector has
    A = [[0, -i g], [-i g, -kappa/2]], defective at g = kappa / 4 (its eigenvectors coincide:
    an eigen-decomposition fails).  The Krylov space closes after two vectors, and the step
    reproduces expm to 1e-13 however long it is."""
    kappa = 1.0
    cavity = hybrid.Cavity(g=kappa / 4, kappa_sqz=0.0, r=0.0, kappa_int=kappa, n_max=1)
    block = build_block(1, 1, cavity, Rates())
    A = generator_of(block)
    single = np.ix_([1, 2], [1, 2])  # |0, up> and |1, down>
    assert np.allclose(A[single], [[0, -0.25j], [-0.25j, -0.5]])
    assert np.linalg.cond(np.linalg.eig(A[single])[1]) > 1e6
    x = np.array([0, 1, 0, 0], complex)
    k, t, jumped, X, _ = evolve(block, x, 1e-300, [0.5, 2.75, 10.0, 40.0])
    for i, tau in enumerate((0.5, 2.75, 10.0, 40.0)):
        assert np.allclose(X[i], expm(A * tau) @ x, rtol=0, atol=1e-13)


def test_near_an_exceptional_point_in_a_large_sector():
    """A Jordan chain larger than the Krylov dimension: the bidiagonal generator
    (-1 + 0.1 i) + the shift (all eigenvalues equal, a single eigenvector: an exceptional point
    of order d; A + A^dag <= 0, so the norm never grows, as for any no-jump generator)."""
    d = 120
    A = sp.diags([np.full(d, -1.0 + 0.1j), np.full(d - 1, 1.0)], [0, -1], format="csr")
    x = np.zeros(d, complex)
    x[0] = 1.0
    step = krylov.new_step(2.0)
    times = np.array([1.0, 7.5, 30.0])
    y = x.copy()
    k, t, jumped, X = krylov.Generator.of(A, anorm=2.0).advance_through(y, 0.0, 1e-300, times,
                                                                        0, 3, step)
    for i, tau in enumerate(times):
        exact = expm(A.toarray() * tau) @ x
        assert np.linalg.norm(X[i] - exact) < STEPS_BOUND * krylov.TOL * np.linalg.norm(x)


@pytest.mark.parametrize("u", [krylov.U_MIN, 1e-9, 0.5])
def test_a_path_ends_where_every_trajectory_has_jumped(u):
    """A decay far faster than the stops (A = -c 1 - i H, as strong local dephasing adds to a
    block: ||expm(A t) x||^2 = exp(-2 c t)) takes ||x||^2 below the least threshold U_MIN long
    before the first stop: the path ends there (it stepped on to a state that underflows to
    zero, then divided by its norm; a closed space's step ran over all of its span in
    sub-steps of ||delta A|| <= 1/2), and every u jumps on it at ln(1/u) / (2 c)."""
    c = 1e6
    H = np.diag([0.0, 1.0, 2.0]) + 0.5 * (np.eye(3, k=1) + np.eye(3, k=-1))
    generator = krylov.Generator.of(sp.csr_matrix(-c * np.eye(3) - 1j * H))
    x0 = np.array([1.0, 0.0, 0.0], complex)
    times = np.linspace(0.1, 10.0, 100)
    path = krylov.NoJumpPath.of(generator, x0, 0.0, times, 0, times.size,
                                krylov.new_step(generator.anorm))
    assert path.X.shape[0] == 0 and path.levels.size < 10
    k, x, t, step = path.checkpoint(u)
    k, t, jumped, _ = generator.advance_through(x, t, u, times, k, times.size, step)
    assert jumped and k == 0
    assert t == pytest.approx(np.log(1 / u) / (2 * c), rel=1e-10)
    assert np.vdot(x, x).real == pytest.approx(u, rel=1e-10)


def test_a_state_that_is_not_finite_is_an_error_not_an_endless_loop():
    """NaN in the state: the step control gives up after MAX_REJECTIONS with an error."""
    block, _ = random_block(3)
    x = np.full(block.generator.dim, np.nan, complex)
    with pytest.raises(FloatingPointError, match="no step size meets TOL"):
        evolve(block, x, 0.5, [1.0])


@pytest.mark.parametrize("density", [0.0, 0.02, 0.3])
def test_generator_runs_hold_the_matrix(density):
    """``krylov.Generator`` stores any sparse matrix as runs (gaps of up to RUN_GAP rows as
    zeros): it gives back the same matrix and the same products, empty ones included; sectors
    only where the labels are kept apart."""
    rng = np.random.default_rng(3)
    d = 40
    A = sp.random(d, d, density=density, random_state=rng, format="csr") * (1 + 0.5j)
    g = krylov.Generator.of(A)
    x = rng.normal(size=d) + 1j * rng.normal(size=d)
    assert np.array_equal(g.matrix().toarray(), A.toarray())
    assert np.allclose(g.apply(x), A @ x, rtol=0, atol=1e-13)
    labels = np.arange(d) % 2
    assert (krylov.Generator.of(A, labels).sectors == ()) == bool(
        A[labels == 0][:, labels == 1].nnz + A[labels == 1][:, labels == 0].nnz)
    diagonal = krylov.Generator.of(sp.diags(rng.normal(size=d)).tocsr(), labels)
    assert [idx.tolist() for idx, _ in diagonal.sectors] == [list(range(0, d, 2)),
                                                             list(range(1, d, 2))]
