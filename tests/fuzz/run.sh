#!/bin/sh
# run.sh -- `make fuzz`: builds the library with clang, libFuzzer, ASan and UBSan into
# build-fuzz/ (apart from the ordinary build), then runs each target of tests/fuzz/ for
# FUZZ_SECONDS (default 60) on seeds collected from the tests. Exits non-zero when a
# target crashes, leaks, or hits UB; the input is left in build-fuzz/artifacts/.
#
#   tests/fuzz/run.sh [SOURCE.c ...]      (default: the .c files of src/ and registry/
#                                          outside src/cli/)
# Environment: CLANG (clang), FUZZ_SECONDS (60), FUZZ_TARGETS (all: "fuzz_cfg fuzz_model
# ..."), FUZZ_FLAGS (more libFuzzer flags, e.g. -jobs=2), srcdir (the script's ../..),
# builddir (.).
set -eu
srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${builddir:-.}
CLANG=${CLANG:-clang}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_TARGETS=${FUZZ_TARGETS:-"fuzz_cfg fuzz_cfg_options fuzz_model fuzz_state fuzz_sched_state fuzz_trajectory"}
FUZZ_FLAGS=${FUZZ_FLAGS:-}
out=$builddir/build-fuzz
mkdir -p "$out/obj" "$out/artifacts"

# ---- build --------------------------------------------------------------------------
deps_cflags=$(pkg-config --cflags yaml-0.1 libpcre2-8 zlib)
deps_libs=$(pkg-config --libs yaml-0.1 libpcre2-8 zlib)
CFLAGS="-std=c11 -g -O1 -fno-omit-frame-pointer -fopenmp-simd -Wno-pass-failed -fvisibility=hidden
    -fsanitize=address,undefined -fno-sanitize-recover=undefined
    -I$srcdir/include -I$srcdir/src -D_DEFAULT_SOURCE $deps_cflags"
if [ $# -eq 0 ]; then
    set -- $(cd "$srcdir" && find src registry -name '*.c' ! -path 'src/cli/*' | sort)
fi
jobs=$(nproc 2>/dev/null || echo 2)
objs=
n=0
for src in "$@"; do
    case $src in *.c) ;; *) continue ;; esac
    obj=$out/obj/$(echo "$src" | tr / _ | sed 's/\.c$/.o/')
    objs="$objs $obj"
    if [ ! -f "$obj" ] || [ "$srcdir/$src" -nt "$obj" ] || [ "$0" -nt "$obj" ] ||
        [ -n "$(find "$srcdir/src" "$srcdir/registry" "$srcdir/include" -name '*.h' \
            -newer "$obj" | head -1)" ]; then
        echo "  CC (fuzz) $src"
        # shellcheck disable=SC2086
        $CLANG $CFLAGS -fsanitize=fuzzer-no-link -c "$srcdir/$src" -o "$obj" ||
            { rm -f "$obj"; touch "$out/obj/failed"; } &
        n=$((n + 1))
        [ $((n % jobs)) -ne 0 ] || wait
    fi
done
wait
if [ -f "$out/obj/failed" ]; then
    rm -f "$out/obj/failed"
    echo "fuzz: the library did not build with $CLANG" >&2
    exit 1
fi
rm -f "$out/libow_fuzz.a"
# shellcheck disable=SC2086
ar rcs "$out/libow_fuzz.a" $objs
for t in $FUZZ_TARGETS; do
    echo "  CCLD (fuzz) $t"
    # shellcheck disable=SC2086
    $CLANG $CFLAGS -fsanitize=fuzzer "$srcdir/tests/fuzz/$t.c" "$out/libow_fuzz.a" \
        $deps_libs -ldl -lpthread -lm -o "$out/$t"
done

# ---- seeds: regular files only (tests/bad/cfg/base_dev_zero links to /dev/zero) ------
collect() { # collect TARGET FIND-ARGS...: copies small regular files into seeds/TARGET
    dir=$out/seeds/$1
    shift
    rm -rf "$dir"
    mkdir -p "$dir"
    (cd "$srcdir" && find "$@" -type f -size -64k) | while read -r f; do
        cp "$srcdir/$f" "$dir/$(echo "$f" | tr / _)"
    done
}
collect fuzz_cfg configs tests/data tests/bad/cfg tests/bad/optim tests/bad/sched \
    tests/bad/registry -name '*.yaml'
collect fuzz_model models tests/golden/models tests/bad/model -name '*.yaml'
collect fuzz_trajectory tests/golden/optim tests/golden/optim_wrapper -name '*.json'
# --cfg-options: the overrides the tests and README use, one per line
rm -rf "$out/seeds/fuzz_cfg_options"
mkdir -p "$out/seeds/fuzz_cfg_options"
printf '%s\n' 'optim_wrapper.paramwise_cfg.norm_decay_mult=0' \
    'optim_wrapper.optimizer.lr=1e-4' 'optim_wrapper.optimizer.betas=[0.9,0.95]' \
    'optim_wrapper.paramwise_cfg.custom_keys={head: {lr_mult: 10}}' \
    'param_scheduler.1.T_max=50' 'data.2.0=[1, {a: *x}]' \
    'train_cfg={by_epoch: false, max_iters: 1000}' 'a.b.c="x"' \
    'optim_wrapper.clip_grad=null' 'model.backbone.arch=l' | split -l 1 - \
    "$out/seeds/fuzz_cfg_options/opt-"
for t in fuzz_state fuzz_sched_state; do
    rm -rf "$out/seeds/$t"
    mkdir -p "$out/seeds/$t"
    OW_FUZZ_SEEDS=$out/seeds/$t "$out/$t" >/dev/null 2>&1
done

# ---- run ------------------------------------------------------------------------------
status=0
for t in $FUZZ_TARGETS; do
    mkdir -p "$out/corpus/$t"
    echo "== $t: $FUZZ_SECONDS s"
    # shellcheck disable=SC2086
    if "$out/$t" -max_total_time="$FUZZ_SECONDS" -timeout=20 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" \
        $FUZZ_FLAGS "$out/corpus/$t" "$out/seeds/$t" >"$out/$t.log" 2>&1; then
        grep -E '^stat::number_of_executed_units|^Done' "$out/$t.log" || true
    else
        echo "FAIL: $t (log: $out/$t.log)"
        tail -60 "$out/$t.log"
        status=1
    fi
done
exit $status
