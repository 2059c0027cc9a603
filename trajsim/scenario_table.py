"""The README's scenario table, generated: each key's meaning and allowed values here, its
default from ``scenario.DEFAULTS`` (the one place defaults live).

    python -m trajsim.scenario_table      # prints the table the README holds
"""

from __future__ import annotations

import math

from .scenario import DEFAULTS

#: (keys, meaning, allowed values, default shown instead of DEFAULTS' where that says less)
ROWS = [
    (('model.N',),
     'number of spins (with `model.groups`: their sum, may be left out)',
     'integer ≥ 1', 'required'),
    (('model.r',),
     'squeezing parameter of Σ(r) = cosh r S− − sinh r S+',
     'real', None),
    (('model.Gamma',),
     'rate Γ of Eq. (2); sets the time unit (0 for pure one-axis twisting)',
     '≥ 0', None),
    (('model.gamma_coll',),
     'collective decay γ_coll D[S−] of Eq. (11)',
     '≥ 0', None),
    (('model.gamma_phi',),
     "local dephasing (γ_φ/2) Σ_k D[σ_z^(k)] of Eq. (11) (QuTiP PIQS's `dephasing=` is 2γ_φ)",
     '≥ 0', None),
    (('model.gamma_rel',),
     "local relaxation γ_rel Σ_k D[σ_−^(k)] of Eq. (11) (PIQS's `emission=`)",
     '≥ 0', None),
    (('model.chi',),
     'one-axis twisting Hamiltonian χ(S² − S_z²) of Eq. (G1) (App. G; with γ_coll it is the detuned-cavity model, see `trajsim.cavity`); needs Γ = 0 or r = 0',
     'real', None),
    (('model.kind',),
     '`spin`: the spins of Eq. (2)/(11); `hybrid`: the implementation of Eq. (9), spins coupled (g) to a cavity mode that a squeezed reservoir (κ_sqz, r) drives and that leaks (κ_int), as exact trajectories in Fock ⊗ Dicke (`trajsim.engines.hybrid`); its Γ and γ_coll are not given but resolved to Eqs. (12)-(13), the spin model it reduces to for √N g ≪ κ_sqz + κ_int; local rates, losses and instruments as for `spin`; the cavity starts in the reservoir\'s squeezed vacuum',
     '`spin`, `hybrid`', None),
    (('model.g', 'model.kappa_sqz', 'model.kappa_int'),
     '`hybrid` only: coupling g (Eq. 8), squeezed-reservoir rate κ_sqz, internal loss κ_int (Eq. 9)',
     '≥ 0; κ_sqz + κ_int > 0', 'required; 1; 0'),
    (('model.Delta_c',),
     '`hybrid` only: cavity detuning Δ_c a†a',
     'real', '0'),
    (('model.n_max',),
     '`hybrid` only: Fock cut-off (levels 0..n_max); `auto`: the smallest leaving < 10⁻⁶ of the reservoir-driven cavity\'s photon distribution at n ≥ n_max − 1; a run warns when its trajectories put > 10⁻⁴ in the top two levels (column `top_fock`), and `trajsim steady` when its steady state does',
     'integer 1..200 or `auto`', '`auto`'),
    (('model.cavity_basis',),
     '`hybrid` only: the basis the cavity is cut in: `fock`, the photons of a; `reservoir`, those of the reservoir\'s mode b = cosh r a + sinh r a† (the squeezed vacuum is its vacuum, so n_max counts only the photons the rest adds: faster where the cavity stays near the squeezed vacuum, Δ_c ≈ 0). `n_max`, `auto` and `top_fock` then count b-photons; `auto` counts only κ_int\'s (r = 1, κ_int/κ_sqz = 0.02: 6 levels against 45), while S_y measurements, losses and detuning add more: `hybrid_parity_sensing.yaml` needs n_max: 28 in b (top weight 1.4e−5, as its 45 in a), 2.6× faster; runs warn when `top_fock` > 10⁻⁴',
     '`fock`, `reservoir`', '`fock`'),
    (('model.groups',),
     'classes of identical spins (inhomogeneous broadening, unequal couplings): class k has `N` spins, detuning `delta` (H = Σ_k δ_k S_z^(k) in the reservoir\'s frame) and coupling `weight` w_k in Σ = Σ_k w_k (cosh r S−^(k) − sinh r S+^(k)) and in γ_coll\'s S−; exact trajectories in the product of the classes\' symmetric blocks (`trajsim.engines.grouped`, "Inhomogeneous ensembles"); a loss takes a spin from class k with probability N_k/N; not with local rates, `chi`, `kind: hybrid`, `initial_state.kind: steady` or `run.engine: record`',
     'list of 1..16 `{N: ≥ 1, delta: real, weight: > 0}`', 'none; `delta` 0, `weight` 1'),
    (('model.broadening',),
     '`{distribution, width, groups: M}`: `model.groups` made of M equal classes of N/M spins at the detunings of `trajsim.groups.broadening`, the distribution cut at its M-quantiles, each class at its bin\'s mean (the lorentzian\'s at its median: its outer bins have no mean); `width` is the gaussian\'s standard deviation, the lorentzian\'s half width at half maximum, the uniform\'s half width',
     '`gaussian`, `lorentzian`, `uniform`; width ≥ 0; M in 1..16 dividing N', 'none'),
    (('initial_state.kind',),
     '`dicke`: \\|j, m⟩; `css`: coherent spin state along (θ, φ); `steady`: the Eq. (2) steady state of j = N/2 (dark state for even N, Eq. (16) ρ ∝ (Σ†Σ)⁻¹ for odd N, sampled as an ensemble of LMG eigenstates)',
     '`dicke`, `css`, `steady`', None),
    (('initial_state.j', 'initial_state.m'),
     'Dicke labels (`dicke` only)',
     'j = N/2, N/2−1, … ≥ 0; \\|m\\| ≤ j', 'j = N/2, m = −j'),
    (('initial_state.theta', 'initial_state.phi'),
     'CSS direction (radians; θ = π is all spins down)',
     'real', None),
    (('loss.rate_per_spin',),
     'Poisson spin-loss rate per spin (total rate γ_loss N(t))',
     '≥ 0', None),
    (('loss.times',),
     'scripted loss times (a sample at a loss time sees the state after it); a loss due once Poisson losses have taken every spin is a no-op (the ensemble stays empty: N = 0, zero moments, `xi2` = inf)',
     '≥ 0, at most N of them', None),
    (('time.t_end', 'time.n_samples'),
     'sample grid 0..t_end',
     '> 0; integer ≥ 2', 'required; 101'),
    (('run.trajectories',),
     'trajectories per point',
     'integer ≥ 1', None),
    (('run.seed',),
     'random seed; trajectory i of point p uses the stream (seed, p, i)',
     'integer ≥ 0', None),
    (('run.store',),
     '`trajectories`: also write trajectories.parquet and events.parquet; `summary`: only the ensemble statistics',
     '`trajectories`, `summary`', None),
    (('run.unit_size',),
     'trajectories per work unit (the unit of parallel work, checkpointing and merging); `auto`: units of about 10 CPU s from the cost estimate, but at least 40 units per point (never depends on the rank count)',
     'integer ≥ 1 or `auto`', None),
    (('run.engine',),
     '`jumps`: exact jump trajectories (every Σ jump; all models); `record`: the record-level engine, one density matrix of j = N/2 per trajectory conditioned on its losses and S_y outcomes, exact propagators between them, cost independent of r (no local rates; trajectories hold record-conditioned means, events only losses, channel `lost`); `auto`: `record` for a point with an instrument where it is eligible and its estimated cost is lower (`trajsim validate` prints the choice)',
     '`auto`, `jumps`, `record`', None),
    (('run.target_sem',),
     'stop a point once its standard error is small enough: `{observable: Sy2, value: 0.01}`',
     'null or observable name and value > 0', None),
    (('measurement.kind',),
     "S_y instrument applied to each trajectory's state at the scheduled times, from its own random stream: `projective` (outcome m_y with Born probability, the state collapses to \\|j, m_y⟩_y), `weak` (Gaussian outcome y = m_y + σz, Kraus operator ∝ exp(−(y − S_y)²/(4σ²))), `copies` (`shots` outcomes from the state, no back-action: k independent copies); outcomes go to `measurements.parquet`",
     '`none`, `projective`, `weak`, `copies`', None),
    (('measurement.period', 'measurement.times'),
     'schedule: every `period` (first at t = period) up to `t_end`, and/or listed times (a sample at a measurement time sees the state after it)',
     'null or > 0; times in (0, t_end]; at least one measurement up to `t_end`', None),
    (('measurement.sigma',),
     'resolution σ of `weak` (σ → 0: projective; σ → ∞: no measurement); below 0.01 neighbouring S_y eigenvalues no longer overlap (< 10⁻⁵⁰⁰) and the instrument is `projective`',
     'null or ≥ 0.01', None),
    (('measurement.shots',),
     'with `copies`: outcomes per time; with `kind: none`: the per-sample readout `Sy2_shots` = mean of the squared outcomes of that many projective shots drawn from \\|⟨j, m_y\\|ψ⟩\\|² (no back-action, separate random stream); 0 = neither',
     'integer ≥ 0', None),
    (('detection.threshold', 'detection.hold'),
     "the report's detector: S_y² threshold (`auto`: geometric mean of the exact steady ⟨Sy²⟩ of N and N − 1), and how long the signal must stay across it before the declared parity flips",
     '`auto` or > 0; ≥ 0', None),
    (('detection.smooth', 'detection.window', 'detection.settle'),
     'trailing moving average of the signal (0: none); time allowed for a detection; time after a loss excluded from the false-flip count',
     '≥ 0; > 0; ≥ 0', None),
    (('sweep',),
     '`section.key: [values]` for any model, initial_state, loss, time, measurement or detection key',
     'non-empty lists', 'none'),
]


def _shown(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"`{value}`"
    if isinstance(value, float) and value == math.pi:
        return "π"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _key_cell(keys: tuple[str, ...]) -> str:
    """`detection.smooth`, `.window`: later keys of the same section shortened."""
    section = keys[0].split(".")[0]
    return ", ".join([f"`{keys[0]}`"] + [f"`.{k.split('.', 1)[1]}`" if k.startswith(section + ".")
                                         else f"`{k}`" for k in keys[1:]])


def table() -> str:
    """The scenario reference table in Markdown."""
    lines = ["| key | meaning | allowed | default |", "|---|---|---|---|"]
    for keys, meaning, allowed, default in ROWS:
        if default is None:
            values = [_shown(DEFAULTS[k.split(".")[0]][k.split(".")[1]]) for k in keys]
            default = ", ".join(values)
        lines.append(f"| {_key_cell(keys)} | {meaning} | {allowed} | {default} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
