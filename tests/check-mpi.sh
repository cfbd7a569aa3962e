#!/bin/sh
# The data-parallel suite (tests/mpi_dist.c) under mpirun on 2 and 4 ranks (more ranks
# than cores: --oversubscribe; as root, Open MPI wants --allow-run-as-root).
set -eu
top_build=${OW_TOP_BUILDDIR:?} mpirun=${OW_TEST_MPIRUN:?}
root=
[ "$(id -u)" = 0 ] && root=--allow-run-as-root
for n in 2 4; do
    # one OpenMP thread per rank: the ranks share the cores
    OMP_NUM_THREADS=1 "$mpirun" $root --oversubscribe -np "$n" "$top_build/tests/mpi_dist"
done
