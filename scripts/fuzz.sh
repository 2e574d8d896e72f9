#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# fuzz.sh - build the fuzz targets ('make fuzz': clang's libFuzzer with
# ASan and UBSan) in build/fuzz and run each for FUZZ_SECONDS (default
# 60) from a copy of its seeds (fuzz/corpus/TARGET) and of the inputs
# that crashed it before (fuzz/regress/TARGET).  Prints each target's
# executions; fails if one crashes, leaks, hangs (-timeout) or runs out of
# memory (-rss_limit_mb), printing what it found, the input in hex, and
# where to put the input so that 'make check' replays it once the bug is
# fixed.  The tree is left as it was: what the fuzzer adds to its corpus
# goes to a temporary directory, removed at the end.
#
#   FUZZ_SECONDS=600 FUZZ_TARGETS="ring mq" sh scripts/fuzz.sh
#
# Each target runs in a private IPC namespace when one can be made (as
# root), so that the POSIX mq a target makes (and unlinks at once) can
# be nowhere else either.
set -eu
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-ctl mq ring config}
build=${FUZZ_BUILD_DIR:-build/fuzz}

sh scripts/configure-in.sh "$build"
make -C "$build" -j"$(nproc)" fuzz

work=$(mktemp -d "${TMPDIR:-/tmp}/ipcq-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
ns=
if unshare --ipc true 2>/dev/null; then
	ns="unshare --ipc"
fi

failed=
summary=
for t in $targets; do
	bin="$build/fuzz/fuzz_$t"
	[ -x "$bin" ] || { echo "fuzz.sh: no target $t ($bin)" >&2; exit 2; }
	mkdir -p "$work/$t/corpus" "$work/$t/found"
	cp fuzz/corpus/"$t"/* "$work/$t/corpus/"
	if [ -d fuzz/regress/"$t" ] && [ -n "$(ls fuzz/regress/"$t")" ]; then
		cp fuzz/regress/"$t"/* "$work/$t/corpus/"
	fi
	echo "=== fuzz_$t: $secs s"
	rc=0
	# shellcheck disable=SC2086
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$ns "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$work/$t/found/" "$work/$t/corpus" >"$work/$t/log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log" | tail -n 1)
	summary="$summary
fuzz_$t: ${execs:-?} executions in $secs s"
	found=$(ls "$work/$t/found")
	if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
		failed="$failed $t"
		summary="$summary: FAILED"
		echo "--- fuzz_$t failed (exit status $rc); its log ends:"
		grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|RELOAD)|^[[:space:]]*NEW_FUNC' "$work/$t/log" | tail -n 60
		for f in $found; do
			echo "--- input $f ($(wc -c <"$work/$t/found/$f") bytes), in hex:"
			od -An -tx1 -v "$work/$t/found/$f"
			echo "--- to replay it in 'make check' once fixed: put it in fuzz/regress/$t/ (printf or xxd -r -p from the hex above)"
		done
	fi
done
echo "=== fuzzing:$summary"
if [ -n "$failed" ]; then
	echo "fuzz.sh: failed:$failed" >&2
	exit 1
fi
echo "fuzz.sh: no crash, leak, hang or memory blow-up"
