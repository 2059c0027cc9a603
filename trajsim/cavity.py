"""Spin rates from the cavity that mediates them (Sec. II B, App. A and App. G), in units of g.

- Eq. (10): cooperativities eta_k = 4 g^2 / (kappa_int gamma_k), C_k = N eta_k.
- Eqs. (12)-(13) / (B6)-(B7): a resonant cavity coupled to a squeezed reservoir (kappa_sqz, r) and
  lossy at kappa_int gives Gamma = 4 g^2 kappa_sqz / (kappa_sqz + kappa_int)^2 and
  gamma_coll = 4 g^2 kappa_int / (kappa_sqz + kappa_int)^2.
- Eqs. (G1)-(G2): a detuned cavity (Delta_c, no squeezed reservoir) gives one-axis twisting
  chi (S^2 - Sz^2) with chi = g^2 Delta_c / (Delta_c^2 + kappa_int^2/4) and collective decay at
  kappa_int g^2 / (Delta_c^2 + kappa_int^2/4).
- The cavity alone in its steady state: how often it emits (``cavity_jump_rate``).
"""

from __future__ import annotations

import math

from .model import Rates


def cooperativity(g: float, kappa_int: float, gamma: float, N: int = 1) -> float:
    """Eq. (10): N 4 g^2 / (kappa_int gamma) (single-spin eta for N = 1, collective C otherwise)."""
    return N * 4 * g**2 / (kappa_int * gamma)


def squeezed_reservoir_rates(g: float, kappa_sqz: float, kappa_int: float, r: float,
                             gamma_rel: float = 0.0, gamma_phi: float = 0.0) -> Rates:
    """Eq. (11) rates after eliminating the resonant cavity, Eqs. (12)-(13)."""
    scale = 4 * g**2 / (kappa_sqz + kappa_int) ** 2
    return Rates(Gamma=scale * kappa_sqz, r=r, gamma_coll=scale * kappa_int,
                 gamma_phi=gamma_phi, gamma_rel=gamma_rel)


def one_axis_twisting_rates(g: float, Delta_c: float, kappa_int: float,
                            gamma_rel: float = 0.0) -> Rates:
    """Eq. (G1) rates for a cavity detuned by Delta_c: chi of Eq. (G2) and the collective decay."""
    lorentzian = g**2 / (Delta_c**2 + kappa_int**2 / 4)
    return Rates(Gamma=0.0, r=0.0, gamma_coll=kappa_int * lorentzian, gamma_rel=gamma_rel,
                 chi=Delta_c * lorentzian)


def cavity_jump_rate(kappa_sqz: float, kappa_int: float, r: float, Delta_c: float = 0.0) -> float:
    """Photons the cavity alone (no spins) emits per unit time in its steady state,
    kappa_sqz <c^dag c> + kappa_int <a^dag a> with c = cosh r a + sinh r a^dag, from its Gaussian
    moments n = <a^dag a> = kappa_sqz sinh^2 r / kappa and <a^2> = -kappa_sqz cosh r sinh r /
    (kappa + 2 i Delta_c), kappa = kappa_sqz + kappa_int: 0 for the squeezed vacuum (Delta_c =
    kappa_int = 0), 2 kappa_int n at Delta_c = 0; a detuning rotates the squeezing away from the
    reservoir's, which then counts up to kappa_sqz (cosh 2r n + sinh^2 r)."""
    kappa = kappa_sqz + kappa_int
    c, s = math.cosh(r), math.sinh(r)
    n = kappa_sqz * s * s / kappa
    a2 = -kappa_sqz * c * s * kappa / (kappa**2 + 4 * Delta_c**2)  # Re <a^2>
    return kappa_sqz * ((c * c + s * s) * n + s * s + 2 * c * s * a2) + kappa_int * n
