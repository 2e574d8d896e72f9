#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_priority.sh - messages come out highest priority first, whether they
# travel inline or through the ring; equal priorities keep their order.
. "$(dirname "$0")/lib.sh"

test_highest_priority_first_ring_message_included() {
	"$IPCQ" send -p 1 prio p1
	"$IPCQ" send -p 5 prio p5
	"$IPCQ" send -p 3 prio p3
	"$IPCQ" send -p 0 prio p0
	# larger than the inline size: goes through the ring
	head -c 20000 /dev/urandom >"$T/big"
	"$IPCQ" send -s -p 9 prio <"$T/big"
	assert_eq 5 "$(qstat prio depth)" "depth after 5 sends"
	# no receiver asleep: all of them wait in the ring's backlog, the
	# large one in a chunk of its own
	[ "$(qstat prio sent_ring)" -ge 1 ] || fail "the 20000-byte message did not go through the ring"

	"$IPCQ" recv -o "$T/first" prio
	assert_eq 20000 "$(wc -c <"$T/first" | tr -d ' ')" "size of the first message (the -p 9 one)"
	cmp -s "$T/big" "$T/first" || fail "the first message is not the 20000 bytes sent with -p 9"
	"$IPCQ" recv -c 4 prio >"$T/rest"
	printf 'p5\np3\np1\np0\n' >"$T/exp"
	cmp -s "$T/exp" "$T/rest" || fail "order after the -p 9 message: '$(cat "$T/rest")', not p5 p3 p1 p0"
	pass "recv returns the highest priority first: 9 (20000 bytes via the ring), 5, 3, 1, 0"
}

test_equal_priority_keeps_send_order() {
	head -c 30000 /dev/urandom >"$T/mid"
	"$IPCQ" send -p 2 fifo s1
	"$IPCQ" send -p 2 -f "$T/mid" fifo
	"$IPCQ" send -p 2 fifo s2
	"$IPCQ" send -p 7 fifo high

	"$IPCQ" recv fifo >"$T/out"
	assert_eq high "$(cat "$T/out")" "first message"
	"$IPCQ" recv fifo >"$T/out"
	assert_eq s1 "$(cat "$T/out")" "second message"
	"$IPCQ" recv -o "$T/mid.out" fifo
	cmp -s "$T/mid" "$T/mid.out" || fail "the third message is not the ring message sent second at -p 2"
	"$IPCQ" recv fifo >"$T/out"
	assert_eq s2 "$(cat "$T/out")" "fourth message"
	pass "messages of equal priority come out in the order sent, inline and ring alike"
}

test_priority_out_of_range_is_a_usage_error() {
	st=0
	"$IPCQ" send -p 32 prio x 2>/dev/null || st=$?
	assert_eq 2 "$st" "exit status of send -p 32"
	"$IPCQ" send -p 31 prio top
	"$IPCQ" send -p 30 prio below
	"$IPCQ" recv -c 2 prio >"$T/out"
	printf 'top\nbelow\n' >"$T/exp"
	cmp -s "$T/exp" "$T/out" || fail "-p 31 and -p 30 came out as '$(cat "$T/out")'"
	pass "priorities 0 to 31 are accepted (31 first), 32 is a usage error"
}

start_daemon
test_highest_priority_first_ring_message_included
test_equal_priority_keeps_send_order
test_priority_out_of_range_is_a_usage_error
stop_daemon
