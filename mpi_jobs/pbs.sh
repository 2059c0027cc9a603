#!/bin/bash
# PBS/Torque job: trajsim over MPI ranks.
#   qsub -v SCENARIO=scenarios/fig3_even_odd.yaml[,OUT=runs/fig3][,ARGS="--trajectories 100000"] mpi_jobs/pbs.sh
# Resubmitting continues an interrupted run (--resume keeps every finished work unit).
#PBS -N trajsim
#PBS -l select=2:ncpus=32:mpiprocs=32
#PBS -l walltime=04:00:00
#PBS -j oe
set -euo pipefail
cd "${PBS_O_WORKDIR:-.}"
scenario=${SCENARIO:?pass the scenario with qsub -v SCENARIO=path.yaml}
out=${OUT:-runs/$(basename "$scenario" .yaml)}
ranks=$( (cat "${PBS_NODEFILE:-/dev/null}" 2>/dev/null || true) | wc -l)
[ "$ranks" -ge 1 ] || ranks=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
# shellcheck disable=SC2086  # ARGS is a list of trajsim options
mpirun -n "$ranks" python -m trajsim run "$scenario" --out "$out" --resume ${ARGS:-}
