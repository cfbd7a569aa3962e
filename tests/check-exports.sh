#!/bin/sh
# Every symbol liboptwrap exports starts with ow_ and is declared in include/optwrap.h
# (or optwrap-dist.h); nothing else leaks (jansson's check-exports). liboptwrap needs no
# MPI; liboptwrap_mpi, where built, exports only what optwrap-mpi.h declares.
set -eu
top_src=${OW_TOP_SRCDIR:?} top_build=${OW_TOP_BUILDDIR:?}
lib=$top_build/.libs/liboptwrap.so
command -v nm >/dev/null && [ -f "$lib" ] || exit 77
status=0
for sym in $(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDRB]$/ {print $3}'); do
    case "$sym" in
    ow_*) grep -q "\b$sym\b" "$top_src/include/optwrap.h" "$top_src/include/optwrap-dist.h" ||
        { echo "exported but not in optwrap.h or optwrap-dist.h: $sym"; status=1; } ;;
    _init | _fini | _edata | _end | __bss_start) ;;
    *) echo "exported without the ow_ prefix: $sym"; status=1 ;;
    esac
done
if command -v readelf >/dev/null && readelf -d "$lib" | grep -q 'NEEDED.*libmpi'; then
    echo "liboptwrap links MPI: only liboptwrap_mpi may"
    status=1
fi
mpilib=$top_build/.libs/liboptwrap_mpi.so
if [ -f "$mpilib" ]; then
    for sym in $(nm -D --defined-only "$mpilib" | awk '$2 ~ /^[TDRB]$/ {print $3}'); do
        case "$sym" in
        ow_*) grep -q "\b$sym\b" "$top_src/include/optwrap-mpi.h" ||
            { echo "liboptwrap_mpi exports $sym, not in optwrap-mpi.h"; status=1; } ;;
        _init | _fini | _edata | _end | __bss_start) ;;
        *) echo "liboptwrap_mpi exports $sym without the ow_ prefix"; status=1 ;;
        esac
    done
fi
exit $status
