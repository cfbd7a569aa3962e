#!/bin/sh
# The example trainer end to end: `optwrap train` on the bundled config reaches 95% test
# accuracy; a run stopped mid-way and resumed ends bit for bit where the uninterrupted
# run ends; the trainer's own config sections refuse unknown keys.
set -eu
top_src=${OW_TOP_SRCDIR:?} top_build=${OW_TOP_BUILDDIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
train() { "$top_build/optwrap" train "$top_src/configs/digits_mlp.yaml" \
    --data "$top_src/examples/digits/digits.csv.gz" "$@"; }
# the progress lines without their timing
untimed() { sed 's/  steps\/s [0-9]*$//' "$@"; }

train --work-dir "$tmp/straight" >"$tmp/straight.log"
cat "$tmp/straight.log"
acc=$(sed -n 's/^final test acc \([0-9.]*\)%.*/\1/p' "$tmp/straight.log")
[ -n "$acc" ] || { echo "FAIL: no 'final test acc' line"; exit 1; }
awk -v a="$acc" 'BEGIN { exit !(a >= 95) }' || { echo "FAIL: test acc $acc% < 95%"; exit 1; }

# Interrupted after epoch 13 (45 iterations per epoch, windows of 2: mid-window), then
# resumed: the remaining epochs, the final line and the last checkpoint are identical.
train --work-dir "$tmp/resumed" --stop-after 13 --quiet >/dev/null
test "$(cat "$tmp/resumed/last_checkpoint")" = epoch_13.safetensors
train --work-dir "$tmp/resumed" --resume >"$tmp/resumed.log"
grep -q "^resumed from .*/epoch_13.safetensors at epoch 13\$" "$tmp/resumed.log" ||
    { echo "FAIL: did not resume from epoch 13"; cat "$tmp/resumed.log"; exit 1; }
grep -v '^resumed from' "$tmp/resumed.log" | untimed >"$tmp/resumed.lines"
sed -n '/^epoch 14\//,$p' "$tmp/straight.log" | untimed >"$tmp/straight.lines"
diff "$tmp/straight.lines" "$tmp/resumed.lines" || { echo "FAIL: resumed run differs"; exit 1; }
cmp "$tmp/straight/epoch_30.safetensors" "$tmp/resumed/epoch_30.safetensors"

# the standalone program, resuming the finished run: nothing left but the final line
"$top_build/examples/digits/digits" "$top_src/configs/digits_mlp.yaml" --resume \
    --work-dir "$tmp/straight" --data "$top_src/examples/digits/digits.csv.gz" \
    | tail -1 >"$tmp/standalone.log"
tail -1 "$tmp/straight.log" | cmp - "$tmp/standalone.log"

# the sections the trainer reads itself are checked as optwrap checks its own
status=0
train --work-dir "$tmp/bad" --cfg-options data.batch_sise=16 2>"$tmp/bad.log" || status=$?
[ "$status" -eq 1 ] && grep -q "^optwrap: <cfg-options>:1:.*: data: unknown key 'batch_sise'" \
    "$tmp/bad.log" || { echo "FAIL: unknown data key (status $status)"; cat "$tmp/bad.log"; exit 1; }
echo "digits: $acc% test accuracy, resume bit for bit"
