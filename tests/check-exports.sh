#!/bin/sh
# Every symbol liboptwrap exports starts with ow_ and is declared in include/optwrap.h;
# nothing else leaks (jansson's check-exports).
set -eu
top_src=${OW_TOP_SRCDIR:?} top_build=${OW_TOP_BUILDDIR:?}
lib=$top_build/.libs/liboptwrap.so
command -v nm >/dev/null && [ -f "$lib" ] || exit 77
status=0
for sym in $(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDRB]$/ {print $3}'); do
    case "$sym" in
    ow_*) grep -q "\b$sym\b" "$top_src/include/optwrap.h" ||
        { echo "exported but not in optwrap.h: $sym"; status=1; } ;;
    _init | _fini | _edata | _end | __bss_start) ;;
    *) echo "exported without the ow_ prefix: $sym"; status=1 ;;
    esac
done
exit $status
