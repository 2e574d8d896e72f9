#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# replay.sh - every input of fuzz/corpus/TARGET and fuzz/regress/TARGET
# through the target's entry point, built without libFuzzer
# (fuzz/replay_TARGET, fuzz/replay.c): the crashes fuzzing found stay
# fixed, and the seeds stay inputs the targets run through.  Under an
# --enable-sanitizers build, an input that reads out of bounds fails too.
set -eu
B=${IPCQ_BUILDDIR:-$(cd "$(dirname "$0")/.." && pwd)}
S=${IPCQ_SRCDIR:-$B}

for t in ctl mq ring config; do
	set -- "$S/fuzz/corpus/$t"
	[ ! -d "$S/fuzz/regress/$t" ] || set -- "$@" "$S/fuzz/regress/$t"
	"$B/fuzz/replay_$t" "$@" || { echo "FAIL: fuzz target $t on an input of $*" >&2; exit 1; }
done
echo "ok: every seed and regression input replayed without a crash"
