#!/bin/sh
# Machine-enforced style: no banned C functions anywhere in the sources (curl's
# checksrc), and, where clang-format is installed, every file formatted by .clang-format.
set -eu
top_src=${OW_TOP_SRCDIR:?}
cd "$top_src"
files=$(find include src registry tests bench examples -name '*.[ch]' 2>/dev/null | sort)
status=0
# sprintf/vsprintf (snprintf is fine), strcpy, strcat, atoi, strtok, gets
if grep -nE '(^|[^a-z_n])(v?sprintf|strcpy|strcat|atoi|strtok|gets)\(' $files; then
    echo "banned function used (see above): use snprintf, memcpy with lengths, strtol"
    status=1
fi
if command -v clang-format >/dev/null 2>&1; then
    if ! clang-format --dry-run --Werror $files 2>/tmp/ow-format.$$; then
        head -40 /tmp/ow-format.$$
        echo "run: clang-format -i \$(find include src registry tests bench examples -name '*.[ch]')"
        status=1
    fi
    rm -f /tmp/ow-format.$$
fi
exit $status
