#!/bin/bash
# One machine: trajsim over K MPI ranks (default: all cores).
#   mpi_jobs/local.sh SCENARIO.yaml [OUT_DIR] [RANKS] [trajsim args]
# Needs mpirun on PATH: `pip install ".[mpi]"` brings mpi4py and the mpich wheel. Without MPI,
# `python -m trajsim run` already uses every local core with threads.
set -euo pipefail
scenario=${1:?usage: mpi_jobs/local.sh SCENARIO.yaml [OUT_DIR] [RANKS] [trajsim args]}
out=${2:-runs/$(basename "$scenario" .yaml)}
ranks=${3:-$(nproc)}
shift $(( $# >= 3 ? 3 : $# ))
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
exec mpirun -n "$ranks" python -m trajsim run "$scenario" --out "$out" --resume "$@"
