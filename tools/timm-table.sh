#!/bin/sh
# timm-table.sh OPTWRAP -- the README's table of timm's optimizer names: every name of
# timm.optim.list_optimizers() (tests/data/timm_optimizers.txt) with what optwrap runs
# for it, or why it refuses it. check_optim checks the README against the registry.
optwrap=${1:-./optwrap}
list=$(dirname "$0")/../tests/data/timm_optimizers.txt
echo '| timm name | in optwrap |'
echo '| --- | --- |'
grep -v '^#' "$list" | while read -r name; do
    if line=$("$optwrap" list "timm.$name" 2>&1); then
        what=$(echo "$line" | sed -n '2s/^ *[^ ]* *//p')
    else
        what="**refused**: $(echo "$line" | sed 's/^[^:]*: .* is refused: //')"
    fi
    echo "| \`$name\` | $what |"
done
