#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_bench.sh - the benchmarks work (their figures are never checked: a
# benchmark, not a timed test).  ipcq bench runs every mode (one per call,
# batches, zero-copy, several processes on each side, round trips, --json),
# refuses a queue that is not empty, and leaves no temporary queue behind;
# bench/run.sh --quick runs the whole suite at a smoke size and prints
# every row of the table, with a figure for every peer that is built, and
# leaves no daemon, redis-server, queue or kernel object behind.
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

test_bench_round_trips() {
	"$IPCQ" bench --round-trip --count 2000 --json >"$T/rtt" || fail "bench --round-trip"
	grep -q '"round_trip": true' "$T/rtt" || fail "bench --round-trip --json: $(cat "$T/rtt")"
	grep -q '"received": 2000,' "$T/rtt" || fail "bench --round-trip: not 2000 answers: $(cat "$T/rtt")"
	grep -q '"p50": [0-9]' "$T/rtt" || fail "bench --round-trip printed no p50: $(cat "$T/rtt")"
	"$IPCQ" bench --round-trip --count 500 --size 64K --zero-copy >"$T/rtt" || fail "bench --round-trip --zero-copy"
	grep -q '^round trip: p50 ' "$T/rtt" || fail "bench --round-trip printed no round trip: $(cat "$T/rtt")"
	"$IPCQ" create there
	"$IPCQ" create back
	"$IPCQ" bench --round-trip --count 500 there back >/dev/null || fail "bench --round-trip on given queues"
	assert_eq "0 0" "$(qstat there depth) $(qstat back depth)" "depths after the round trips"
	expect_status 2 "bench --round-trip with one queue" "$IPCQ" bench --round-trip there
	expect_status 2 "bench --round-trip with 8-byte messages" "$IPCQ" bench --round-trip --size 8
	expect_status 2 "bench --round-trip with two producers" "$IPCQ" bench --round-trip --producers 2
	"$IPCQ" delete there
	"$IPCQ" delete back
	[ -z "$("$IPCQ" list | grep bench)" ] || fail "bench --round-trip left a queue: $("$IPCQ" list)"
	pass "ipcq bench --round-trip: copy and zero-copy, temporary and given queues; misuse is a usage error"
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

# POSIX mqs whose name holds $1, seen through a private mount of the
# mqueue file system; fails where no such mount can be made
mq_objects() {
	mkdir -p "$T/mq"
	unshare -m sh -c 'mount -t mqueue none "$1" && ls -a "$1"' sh "$T/mq" >"$T/mq.all" 2>/dev/null || return 1
	grep -F "$1" "$T/mq.all" || true
}

# The rows of the table, each by a piece of text only it holds.
TABLE_ROWS='raw POSIX mq pair (10 × 512 B):
64 B, batches of 64 (ipcq_send_batch/ipcq_recv_batch), 1→1
`seq
64 B round trip over two queues, p50
64 KiB, 1→1, copy API
64 KiB, 1→1, zero-copy API
ZeroMQ PUSH/PULL, 64 KiB
Redis LPUSH/BRPOP unpipelined, 64 KiB
Redis LPUSH/BRPOP unpipelined, 64 B
Redis LPUSH/BRPOP pipelined ×100 on both sides, 64 B
1 MiB, copy API (ipcq_send → ipcq_recv)
1 MiB, zero-copy API (ipcq_loan/ipcq_publish → ipcq_recv_view/ipcq_release)
1 MiB, zero-copy API, beside memcpy
4 producers × 4 consumers, 64 B, one per call
4 producers × 4 consumers, 64 B, batches of 64
daemon CPU while
daemon RSS with'

test_suite_prints_every_row() {
	# run.sh's temporary directory (and the redis-server socket in it)
	# goes under $T, so that whatever it leaves is found, and removed.
	TMPDIR=$T sh "$S/bench/run.sh" --quick "$B" >"$T/table" 2>"$T/suite.log" &
	suite=$!
	st=0
	wait "$suite" || st=$?
	[ "$st" -eq 0 ] || fail "bench/run.sh --quick exited $st: $(tail -n 30 "$T/suite.log")"
	grep -q '^Machine: [0-9]* CPUs (.*), Linux .*UTC\.$' "$T/table" || fail "no machine line: $(head -n 5 "$T/table")"
	while IFS= read -r key; do
		grep -qF -- "$key" "$T/table" || fail "the table has no row '$key': $(cat "$T/table")"
	done <<EOF
$TABLE_ROWS
EOF
	# Every judged row ends with its result, and a peer that is built
	# has its figures (a broken peer is no "not run").
	sed -n '/^| workload /,/^$/p' "$T/table" | sed '1,2d;/^$/d' >"$T/rows"
	[ "$(wc -l <"$T/rows")" -eq 17 ] || fail "the table has $(wc -l <"$T/rows") rows, not 17: $(cat "$T/rows")"
	grep -v 'beside memcpy' "$T/rows" | grep -vE '\| (met|missed by [0-9]+% \((needs )?[0-9.]+× (more|over)\)|not built \(.*\)|not run \(.*\)) \|$' >"$T/bad" || true
	[ ! -s "$T/bad" ] || fail "rows without a result: $(cat "$T/bad")"
	if [ -x "$B/bench/zmq_pushpull" ]; then
		! grep -q 'ZeroMQ.*not \(built\|run\)' "$T/rows" || fail "ZeroMQ is built and has no figure: $(grep ZeroMQ "$T/rows")"
	fi
	if [ -x "$B/bench/redis_list" ] && command -v redis-server >/dev/null 2>&1; then
		! grep -q 'Redis.*not \(built\|run\)' "$T/rows" || fail "Redis is at hand and has no figure: $(grep Redis "$T/rows")"
	fi
	! grep -q 'daemon.*not run' "$T/rows" || fail "the daemon's rows were not measured: $(grep daemon "$T/rows")"
	# Nothing left behind: run.sh's directory, its daemon (namespace
	# bench$suite) and redis-server (a socket under $T), their objects.
	left=$(ls -d "$T"/ipcq-bench.* 2>/dev/null) || true
	[ -z "$left" ] || fail "bench/run.sh left $left"
	left=$(ps -eo pid=,args= | grep -F -e "bench$suite " -e "$T/" | grep -v grep) || true
	[ -z "$left" ] || fail "bench/run.sh left processes: $left"
	left=$(ls /dev/shm | grep -F -e "ipcq.bench$suite." -e "ipcq-bench-run.bench$suite.") || true
	[ -z "$left" ] || fail "bench/run.sh left shared memory or its daemon's directory: $left"
	mq_note="mqs unchecked: no private mqueue mount here"
	if mqs=$(mq_objects "bench$suite."); then
		mq_note="no mq left"
		[ -z "$mqs" ] || fail "bench/run.sh left mqs: $mqs"
		mqs=$(grep -F "ipcq-bench-" "$T/mq.all") || true
		[ -z "$mqs" ] || fail "a baseline left mqs: $mqs"
	fi
	pass "bench/run.sh --quick: every row, a result in each, nothing left behind ($mq_note)"
}

start_daemon
test_bench_runs_every_mode
test_bench_round_trips
test_bench_refuses_a_queue_with_messages
stop_daemon
test_suite_prints_every_row
