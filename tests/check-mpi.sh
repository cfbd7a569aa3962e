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
# the digits example (`optwrap train`) trains data-parallel to one process's accuracy,
# plain and under ZeRO stage 2 (each rank trains on its part of every batch)
top_src=${OW_TOP_SRCDIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cfg=$top_src/configs/digits_mlp.yaml
acc() { sed -n 's/^final test acc \([0-9.]*\)%.*/\1/p'; }
one=$("$top_build/optwrap" train "$cfg" --quiet --work-dir "$tmp/one" | acc)
for stage in 0 2; do
    n=$(OMP_NUM_THREADS=1 "$mpirun" $root --oversubscribe -np 2 "$top_build/optwrap" train \
        "$cfg" --quiet --work-dir "$tmp/two$stage" \
        --cfg-options optim_wrapper.zero_stage=$stage | acc)
    echo "digits: one process $one%, 2 ranks (zero_stage $stage) $n%"
    awk -v a="$one" -v b="$n" 'BEGIN { exit !(a != "" && b != "" && b >= a - 1.0) }' || {
        echo "FAIL: the data-parallel digits reach $n%, one process $one%"
        exit 1
    }
done
