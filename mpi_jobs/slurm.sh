#!/bin/bash
# SLURM job: trajsim over MPI ranks.   sbatch mpi_jobs/slurm.sh SCENARIO.yaml [OUT_DIR] [extra trajsim args]
# (sbatch passes the submitting environment; or set TRAJSIM_VENV / TRAJSIM_MODULES, see below.)
# Resubmitting the same command after a time-limit kill continues the run (--resume keeps every
# finished work unit; the result is bit-identical to an uninterrupted run).
#SBATCH --job-name=trajsim
#SBATCH --ntasks=64
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
#SBATCH --output=trajsim-%j.log
set -euo pipefail
# The environment trajsim is installed in: TRAJSIM_MODULES (e.g. "python/3.11 openmpi") are
# loaded, then TRAJSIM_VENV (a venv or conda prefix holding bin/activate) is activated.
set +u
if [ -n "${TRAJSIM_MODULES:-}" ]; then module load $TRAJSIM_MODULES; fi  # word splitting intended
if [ -n "${TRAJSIM_VENV:-}" ]; then . "$TRAJSIM_VENV/bin/activate"; fi
set -u
scenario=${1:?usage: sbatch mpi_jobs/slurm.sh SCENARIO.yaml [OUT_DIR] [trajsim args]}
out=${2:-runs/$(basename "$scenario" .yaml)}
shift $(( $# >= 2 ? 2 : 1 ))
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1   # one core per rank
srun python -m trajsim run "$scenario" --out "$out" --resume "$@"
