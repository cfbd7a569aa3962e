#!/bin/sh
# The optwrap(1) man page documents every subcommand of src/cli/main.c's table, and
# renders with man(1) where it is installed.
set -eu
top_src=${OW_TOP_SRCDIR:?}
page=$top_src/docs/optwrap.1
table=$top_src/src/cli/main.c
[ -f "$page" ] && [ -f "$table" ] || { echo "missing $page or $table"; exit 1; }
names=$(sed -n 's/^ *{"\([a-z-]*\)", cli_[a-z_]*,.*/\1/p' "$table")
[ -n "$names" ] || { echo "no subcommands found in $table"; exit 1; }
status=0
for name in $names; do
    roff=$(printf '%s' "$name" | sed 's/-/\\\\-/g')
    # a command entry: ".B name", ".BI "name ...", ".BR name ..."
    grep -q "^\.B[IR]* \"\{0,1\}$roff\b" "$page" ||
        { echo "optwrap(1) does not document the subcommand '$name'"; status=1; }
done
if command -v man >/dev/null 2>&1; then
    out=$(MANWIDTH=80 man -l "$page" 2>&1 >/dev/null) || status=1
    [ -z "$out" ] || { echo "man -l $page: $out"; status=1; }
fi
exit $status
