#!/bin/sh
# Installs into a temporary DESTDIR, then builds tests/consumer.c against the installed
# header and library through pkg-config alone, and runs it on a bundled recipe.
set -eu
top_src=${OW_TOP_SRCDIR:?} top_build=${OW_TOP_BUILDDIR:?}
# the configured compiler and warnings (-Werror only with ./configure --enable-werror)
cc=${OW_TEST_CC:-cc} warn=${OW_TEST_WARN--Wall -Wextra}
command -v pkg-config >/dev/null || exit 77
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
make -s -C "$top_build" install DESTDIR="$dest" >"$dest/install.log" 2>&1 || {
    cat "$dest/install.log"
    exit 1
}
pc=$(find "$dest" -name optwrap.pc | head -1)
[ -n "$pc" ] || { echo "optwrap.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --define-prefix --cflags --libs optwrap)
$cc -std=c11 $warn -o "$dest/consumer" "$top_src/tests/consumer.c" $flags
libdir=$(pkg-config --define-prefix --variable=libdir optwrap)
out=$(LD_LIBRARY_PATH=$libdir "$dest/consumer" "$top_src/configs/resnet50_8xb32_in1k.yaml" \
    "$top_src/models/mmpretrain_resnet50.yaml")
[ "$out" = "161 groups" ] || { echo "consumer printed '$out'"; exit 1; }
# the installed command and recipes are there too
bindir=$(dirname "$libdir")/bin
LD_LIBRARY_PATH=$libdir "$bindir/optwrap" --version
test -f "$(dirname "$libdir")/share/optwrap/configs/resnet50_8xb32_in1k.yaml"
echo "installed library, header, pkg-config file, command and configs work"
# the example trainer builds against the installed header alone (it uses nothing else)
# and trains for a few epochs on the installed config and data
share=$(dirname "$libdir")/share/optwrap
zflags=$(pkg-config --cflags --libs zlib 2>/dev/null || echo -lz)
$cc -std=c11 $warn -o "$dest/digits" "$top_src/examples/digits/main.c" \
    "$top_src/examples/digits/trainer.c" $flags $zflags -lm
printf '_base_: %s/configs/digits_mlp.yaml\ntrain_cfg: {max_epochs: 3}\n' "$share" \
    >"$dest/digits.yaml"
LD_LIBRARY_PATH=$libdir "$dest/digits" "$dest/digits.yaml" --work-dir "$dest/work" \
    --data "$share/digits.csv.gz" | tail -1 | grep '^final test acc'
test -f "$dest/work/epoch_3.safetensors"
echo "the digits example builds and trains against the installed library"
# liboptwrap_mpi, where built: a data-parallel host builds through pkg-config optwrap-mpi
if [ -f "$(dirname "$pc")/optwrap-mpi.pc" ]; then
    mflags=$(pkg-config --define-prefix --cflags --libs optwrap-mpi)
    $cc -std=c11 $warn -o "$dest/mpi_dist" "$top_src/tests/mpi_dist.c" $mflags -lm
    echo "a data-parallel host builds against liboptwrap_mpi through pkg-config"
fi
