"""The loss ladder over one interval equals the dense exponential of the whole ladder."""

import numpy as np
import pytest
from scipy.linalg import expm
from scipy.special import factorial

from trajsim import ladder
from trajsim.exact import Propagator
from trajsim.ladder import LossLadder, ladder_depth, sectors
from trajsim.model import Rates


@pytest.mark.parametrize("rates, route", [
    (Rates(r=1.5), "modes"),
    (Rates(r=2.5, gamma_coll=0.3, chi=0.4), "modes"),  # complex generator
    (Rates(r=0.02), "dense"),  # eigenmodes inaccurate at small r
])
def test_every_block_of_a_column_equals_the_dense_exponential(rates, route, monkeypatch):
    """E(N -> N - k) applied to random states against expm of the ladder generator over all
    blocks (exact.Propagator), to 1e-12 absolute, k = 0 .. depth; and the route taken."""
    N, loss_rate, tau = 8, 0.1, 0.7
    taken = []
    for name in ("_column_modes", "_column_dense"):
        method = getattr(LossLadder, name)
        monkeypatch.setattr(LossLadder, name, lambda self, *a, m=method, n=name:
                            taken.append(n) or m(self, *a))
    P = Propagator(rates, N, N, loss_rate=loss_rate)
    E = expm(P.G.toarray() * tau)
    x = np.random.default_rng(1).standard_normal((N + 1) ** 2) * (1 + 0.5j)
    out = LossLadder(rates, loss_rate, tau).advance({N: x})
    assert set(taken) == {f"_column_{route}"}
    assert sorted(out) == list(range(N - ladder_depth(N, loss_rate, tau, x[::N + 2].real.sum()),
                                     N + 1))
    for M, y in out.items():
        o = P.layout.offsets[(M, M)]
        np.testing.assert_allclose(y, E[o:o + (M + 1) ** 2, : (N + 1) ** 2] @ x, rtol=0,
                                   atol=1e-12)


def test_the_depth_follows_the_poisson_bound():
    """The depth k is the least with mass (gamma N tau)^(k+1)/(k+1)! below DEPTH_TOL."""
    for N, rate, tau, mass in ((40, 0.002, 0.5, 1.0), (40, 0.002, 2.0, 1.0), (12, 0.1, 1.0, 1e-6),
                               (3, 1.0, 10.0, 1.0)):
        k = ladder_depth(N, rate, tau, mass)
        bound = mass * (rate * N * tau) ** np.arange(1, N + 2) / factorial(np.arange(1, N + 2))
        assert k == N or bound[k] < ladder.DEPTH_TOL  # bound[k]: k + 1 losses
        assert k == 0 or bound[k - 1] >= ladder.DEPTH_TOL
    assert ladder_depth(40, 0.0, 0.5) == 0


def test_the_sectors_split_the_block():
    """Even and odd k - k' partition vec(rho); the loss map keeps each."""
    even, odd = sectors(5)
    assert np.array_equal(np.sort(np.concatenate([even, odd])), np.arange(36))
    k = np.arange(6)
    assert np.all((k[:, None] - k[None, :]).ravel()[even] % 2 == 0)
    from trajsim.exact import _loss_superoperator
    L = _loss_superoperator(5, 5, 4).tocsr()
    assert L[sectors(4)[0]][:, odd].nnz == 0 and L[sectors(4)[1]][:, even].nnz == 0
