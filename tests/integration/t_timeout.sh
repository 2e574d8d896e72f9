#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_timeout.sh - -t gives up with exit 3, on receive and on send (a queue
# at its max_depth, or a full ring), within reasonable time, and loses
# nothing.  A full mq window alone never makes a send wait: see t_deep.sh.
. "$(dirname "$0")/lib.sh"

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# timed STATUS MIN_MS MAX_MS WHAT COMMAND...: run COMMAND (stdout to
# $T/out, stderr to $T/err), check its exit status and how long it took.
timed() {
	want=$1 min=$2 max=$3 what=$4
	shift 4
	t0=$(now_ms)
	st=0
	"$@" >"$T/out" 2>"$T/err" || st=$?
	took=$(($(now_ms) - t0))
	[ "$st" -eq "$want" ] || fail "$what: expected exit $want, got $st ($(cat "$T/err"))"
	[ "$took" -ge "$min" ] || fail "$what: gave up after $took ms, before the ${min} ms timeout"
	[ "$took" -le "$max" ] || fail "$what: took $took ms, more than $max ms"
}

test_recv_times_out_with_exit_3() {
	"$IPCQ" create empty
	timed 3 290 2000 "recv -t 0.3 on an empty queue" "$IPCQ" recv -t 0.3 empty
	[ ! -s "$T/out" ] || fail "recv printed '$(cat "$T/out")' from an empty queue"
	grep -q 'timed out' "$T/err" || fail "recv timed out without saying so: $(cat "$T/err")"
	pass "recv -t 0.3 on an empty queue exits 3 after 0.3 s"
}

test_recv_count_prints_what_arrived_then_exits_3() {
	"$IPCQ" send partial m1 m2
	timed 3 290 2000 "recv -c 5 -t 0.3 with 2 waiting" "$IPCQ" recv -c 5 -t 0.3 partial
	printf 'm1\nm2\n' >"$T/exp"
	cmp -s "$T/exp" "$T/out" || fail "recv -c 5 -t 0.3 printed '$(cat "$T/out")', not m1 m2"
	assert_eq 0 "$(qstat partial depth)" "depth after receiving both"
	pass "recv -c 5 -t 0.3 with 2 waiting prints both, then exits 3"
}

test_send_to_full_queue_times_out_with_exit_3() {
	"$IPCQ" create full --max-msgs 2 --max-depth 2
	"$IPCQ" send full a b
	assert_eq 2 "$(qstat full depth)" "depth of the filled queue"
	timed 3 290 2000 "send -t 0.3 to a full queue" "$IPCQ" send -t 0.3 full c
	grep -q full "$T/err" || fail "the error does not say the queue is full: $(cat "$T/err")"
	printf 'c\nd\n' >"$T/lines"
	timed 3 290 2000 "send -t 0.3 of stdin lines to a full queue" "$IPCQ" send -t 0.3 full <"$T/lines"
	assert_eq 2 "$(qstat full depth)" "depth after the timed-out sends"
	pass "send -t 0.3 to a full queue (--max-depth 2) exits 3"
}

test_send_to_full_ring_times_out_with_exit_3() {
	# senders shared: one ring for all; isolated: a ring per user, which
	# its processes share
	for senders in shared isolated; do
		"$IPCQ" create ring-$senders --ring-size 64K --max-payload 40000 --senders $senders
		head -c 40000 /dev/urandom >"$T/one-$senders"
		head -c 40000 /dev/urandom >"$T/two-$senders"
		"$IPCQ" send -f "$T/one-$senders" ring-$senders
		timed 3 290 2000 "send -f -t 0.3 when the ring is full ($senders)" "$IPCQ" send -t 0.3 \
			-f "$T/two-$senders" ring-$senders
		timed 3 290 2000 "send -s -t 0.3 when the ring is full ($senders)" "$IPCQ" send -t 0.3 -s \
			ring-$senders <"$T/two-$senders"
		assert_eq 1 "$(qstat ring-$senders depth)" "depth after the timed-out sends ($senders)"
	done
	pass "a bulk send (-f and -s) with -t 0.3 exits 3 while the ring is full (senders shared, and isolated: the user's lane)"
}

test_timeouts_lose_nothing() {
	timed 3 190 2000 "recv -c 0 -t 0.2 of the full queue" "$IPCQ" recv -c 0 -t 0.2 full
	printf 'a\nb\n' >"$T/exp"
	cmp -s "$T/exp" "$T/out" || fail "the full queue gave '$(cat "$T/out")', not exactly a b"

	for senders in shared isolated; do
		q=ring-$senders
		"$IPCQ" recv -o "$T/one.out" $q
		cmp -s "$T/one-$senders" "$T/one.out" || fail "the ring message sent before the timeouts changed ($senders)"
		timed 3 190 2000 "recv on the ring queue once it is empty ($senders)" "$IPCQ" recv -t 0.2 $q
		assert_eq 0 "$(qstat $q ring_used)" "ring bytes in use once everything was received ($senders)"
		timed 0 0 2000 "send -f -t 0.3 once the ring has room ($senders)" "$IPCQ" send -t 0.3 -f "$T/two-$senders" $q
		"$IPCQ" recv -o "$T/two.out" $q
		cmp -s "$T/two-$senders" "$T/two.out" || fail "the ring message sent after the timeouts changed ($senders)"
	done
	pass "after the timeouts the queues hold exactly what was sent before, and take more"
}

start_daemon
test_recv_times_out_with_exit_3
test_recv_count_prints_what_arrived_then_exits_3
test_send_to_full_queue_times_out_with_exit_3
test_send_to_full_ring_times_out_with_exit_3
test_timeouts_lose_nothing
stop_daemon
