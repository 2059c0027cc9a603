#!/bin/bash
# PBS/Torque job: trajsim over MPI ranks.
#   qsub -v SCENARIO=scenarios/fig3_even_odd.yaml[,OUT=runs/fig3][,ARGS="--trajectories 100000"][,TRAJSIM_VENV=$HOME/venvs/trajsim] mpi_jobs/pbs.sh
# (-V below also passes the submitting shell's environment, e.g. an activated venv.)
# Resubmitting continues an interrupted run (--resume keeps every finished work unit).
#PBS -N trajsim
#PBS -l select=2:ncpus=32:mpiprocs=32
#PBS -l walltime=04:00:00
#PBS -j oe
#PBS -V
set -euo pipefail
cd "${PBS_O_WORKDIR:-.}"
# The environment trajsim is installed in: TRAJSIM_MODULES (e.g. "python/3.11 openmpi") are
# loaded, then TRAJSIM_VENV (a venv or conda prefix holding bin/activate) is activated.
set +u
if [ -n "${TRAJSIM_MODULES:-}" ]; then module load $TRAJSIM_MODULES; fi  # word splitting intended
if [ -n "${TRAJSIM_VENV:-}" ]; then . "$TRAJSIM_VENV/bin/activate"; fi
set -u
scenario=${SCENARIO:?pass the scenario with qsub -v SCENARIO=path.yaml}
out=${OUT:-runs/$(basename "$scenario" .yaml)}
ranks=$( (cat "${PBS_NODEFILE:-/dev/null}" 2>/dev/null || true) | wc -l)
[ "$ranks" -ge 1 ] || ranks=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
# shellcheck disable=SC2086  # ARGS is a list of trajsim options
mpirun -n "$ranks" python -m trajsim run "$scenario" --out "$out" --resume ${ARGS:-}
