#!/bin/sh
# t_bench.sh - ipcq bench works (its figures are not checked: a benchmark,
# not a timed test): one per call, batches, zero-copy, several processes on
# each side, --json; it fails on a queue that is not empty, and leaves no
# temporary queue behind.
. "$(dirname "$0")/lib.sh"

test_bench_runs_every_mode() {
	"$IPCQ" bench --count 20000 >"$T/one" || fail "bench, one per call"
	grep -q 'msgs/s' "$T/one" || fail "bench printed no msgs/s: $(cat "$T/one")"
	"$IPCQ" bench --count 20000 --batch 64 --prefetch 64 >/dev/null || fail "bench --batch 64"
	"$IPCQ" bench --count 2000 --size 100K --zero-copy >/dev/null || fail "bench --zero-copy 100K"
	"$IPCQ" bench --count 20000 --producers 2 --consumers 2 --batch 16 >/dev/null || fail "bench 2x2"
	"$IPCQ" bench --count 5000 --json >"$T/json" || fail "bench --json"
	grep -q '"msgs_per_s"' "$T/json" || fail "bench --json printed no msgs_per_s: $(cat "$T/json")"
	[ -z "$("$IPCQ" list | grep bench)" ] || fail "bench left a queue: $("$IPCQ" list)"
	pass "ipcq bench: one per call, batches, zero-copy, 2x2 and --json; no queue left"
}

test_bench_refuses_a_queue_with_messages() {
	"$IPCQ" create busy
	"$IPCQ" send busy leftover
	st=0
	"$IPCQ" bench --count 100 busy >/dev/null 2>"$T/err" || st=$?
	[ "$st" -ne 0 ] || fail "bench on a queue with a message in it succeeded"
	assert_eq leftover "$("$IPCQ" recv -t 1 busy)" "the message bench found"
	pass "ipcq bench refuses a queue that is not empty (exit $st) and leaves its message"
}

start_daemon
test_bench_runs_every_mode
test_bench_refuses_a_queue_with_messages
stop_daemon
