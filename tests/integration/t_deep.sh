#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_deep.sh - a queue's depth is its ring, not the kernel's msg_max: a
# million messages wait with no receiver under the kernel's default
# limits, and come out whole and in order; per-sender order, priorities
# (the documented inversion bound), max_depth, the batch API's counts and
# errors, and what stat says about window and backlog.
#
# The test runs in an IPC namespace of its own, so fs.mqueue.msg_max is
# the kernel's default (10) whatever the host's sysctl says, and the
# daemon gets the default per-user mq budget (RLIMIT_MSGQUEUE 800 KiB) at
# most.  Every message is checked by tests/stress/deep (see deep.c).
PRIVNS_FLAGS="--ipc"
. "$(dirname "$0")/privns.sh"
. "$(dirname "$0")/lib.sh"

DEEP="$STRESS/deep"
DEFAULT_MSG_MAX=10
DEFAULT_MSGQUEUE=819200

# qlist QUEUE: the depth column of 'ipcq list' for QUEUE
qlist_depth() {
	"$IPCQ" list | awk -F '\t' -v q="$1" '$1 == q { print $2 }'
}

# expect_drained QUEUE WHAT: nothing waits, nothing of the ring is in use
expect_drained() {
	for f in depth backlog window ring_used; do
		assert_eq 0 "$(qstat "$1" $f)" "$f of $1 $2"
	done
}

test_kernel_limits_are_the_defaults() {
	assert_eq $DEFAULT_MSG_MAX "$(cat /proc/sys/fs/mqueue/msg_max)" "fs.mqueue.msg_max in the test's IPC namespace"
	soft=$(prlimit --pid $$ --msgqueue --raw --noheadings --output SOFT)
	[ "$soft" != unlimited ] && [ "$soft" -le $DEFAULT_MSGQUEUE ] ||
		fail "RLIMIT_MSGQUEUE is $soft, above the default $DEFAULT_MSGQUEUE"
	pass "fs.mqueue.msg_max is $DEFAULT_MSG_MAX and RLIMIT_MSGQUEUE $soft: the kernel's defaults"
}

test_million_messages_wait_without_a_receiver() {
	"$IPCQ" create million --ring-size 128M
	max_msgs=$(qstat million max_msgs)
	[ "$max_msgs" -le $DEFAULT_MSG_MAX ] || fail "the queue's window is $max_msgs, above msg_max"
	# -t 0: not one send may wait; -d: all of them are in the queue before
	# the producer lets go of its handle
	"$DEEP" produce million 1000000 -s 64 -t 0 -d || fail "1000000 sends of 64 B with timeout 0, no receiver"
	assert_eq 1000000 "$(qstat million depth)" "depth after 1000000 sends, no receiver"
	assert_eq 1000000 "$(qlist_depth million)" "depth in ipcq list"
	backlog=$(qstat million backlog)
	[ "$backlog" -gt $((1000000 - max_msgs * 64)) ] ||
		fail "backlog $backlog with 1000000 waiting and a window of $max_msgs"
	pass "1000000 messages of 64 B wait in a queue of window $max_msgs with no receiver (backlog $backlog)"

	"$DEEP" consume million 1000000 -t 5000 || fail "the receiver started afterwards"
	expect_drained million "after receiving all"
	assert_eq 1000000 "$(qstat million received)" "received counter"
	"$IPCQ" delete million
	pass "a receiver started afterwards gets all 1000000, in order and intact; the ring is empty again"
}

test_send_all_then_receive_from_c() {
	"$IPCQ" create rt
	"$DEEP" roundtrip rt || fail "send-then-receive from one C program"
	expect_drained rt "after the round trips"
	"$IPCQ" delete rt
	pass "C: 1000 sends then 1000 receives; 12 and 2000 mixed sizes (inline and ring) sent before receiving: all in order"
}

# What a receiver took as part of a batch and has not received yet: it
# counts in depth while held, and a receiver that closes its handle gives
# it back ahead of what was sent after it.
test_held_messages() {
	"$IPCQ" create held
	"$DEEP" held held || fail "messages held by a receiver, and given back"
	expect_drained held "after the held-messages checks"
	"$IPCQ" delete held
	pass "messages a receiver holds count in depth; given back on close, they come next, in order"
}

# 4 senders each numbering their messages (mixed sizes, one in eight
# through the ring), one receiver: each sender's messages come in the
# order sent, through the window and the backlog.
test_per_sender_order() {
	"$IPCQ" create order --ring-size 128M
	pids=
	for i in 0 1 2 3; do
		"$DEEP" produce order 25000 -i $i -m 3000 -t 0 &
		pids="$pids $!"
	done
	for p in $pids; do
		wait "$p" || fail "a sender of 25000 messages with timeout 0 failed"
	done
	assert_eq 100000 "$(qstat order depth)" "depth after 4 x 25000 sends, no receiver"
	"$DEEP" consume order 100000 -S 4 || fail "per-sender order, receiver after the senders"
	pass "4 senders x 25000, received afterwards: each sender's order kept"

	# now with the receiver (in batches) running while the senders fill
	"$DEEP" consume order 100000 -S 4 -b 16 -t 20000 &
	cons=$!
	pids=
	for i in 0 1 2 3; do
		"$DEEP" produce order 25000 -i $i -m 3000 -t 10000 &
		pids="$pids $!"
	done
	for p in $pids; do
		wait "$p" || fail "a sender of 25000 messages beside a receiver failed"
	done
	wait $cons || fail "per-sender order, receiver beside the senders"
	expect_drained order "after both runs"
	"$IPCQ" delete order
	pass "4 senders x 25000 with a batch receiver beside them: each sender's order kept"
}

test_priority_overtakes_the_backlog() {
	"$IPCQ" create prio
	"$DEEP" priority prio 2>"$T/err" || { cat "$T/err" >&2; fail "priorities with a backlog (default prefetch)"; }
	grep '^deep: priority' "$T/err" | sed 's/^/  /'
	"$IPCQ" create prio4 --prefetch 4
	assert_eq 4 "$(qstat prio4 prefetch)" "prefetch of a queue created with --prefetch 4"
	"$DEEP" priority prio4 2>"$T/err" || { cat "$T/err" >&2; fail "priorities with a backlog (prefetch 4)"; }
	grep '^deep: priority' "$T/err" | sed 's/^/  /'
	expect_drained prio "after the priority runs"
	"$IPCQ" delete prio
	"$IPCQ" delete prio4
	pass "a higher priority overtakes a backlog within max_msgs*prefetch+1; FIFO per priority; 20 priorities all delivered"
}

test_max_depth() {
	"$IPCQ" create md --max-depth 100
	assert_eq 100 "$(qstat md max_depth)" "max_depth of a queue created with --max-depth 100"
	"$DEEP" maxdepth md || fail "max_depth through the C API"

	seq 100 | "$IPCQ" send -t 0 md || fail "100 lines into a queue of max_depth 100"
	assert_eq 100 "$(qstat md depth)" "depth after 100 lines"
	expect_status 3 "send of a 101st message with -t 0" "$IPCQ" send -t 0 md x
	grep -q 'full' "$T/err" || fail "send -t 0 into a full queue does not say it is full: $(cat "$T/err")"
	t0=$(date +%s%N)
	expect_status 3 "send of a 101st message with -t 0.5" "$IPCQ" send -t 0.5 md x
	[ $(( ($(date +%s%N) - t0) / 1000000 )) -ge 450 ] || fail "send -t 0.5 into a full queue gave up early"
	"$IPCQ" recv md >"$T/out"
	assert_eq 1 "$(cat "$T/out")" "first message out of the full queue"
	expect_status 0 "send once a receiver took one, -t 0" "$IPCQ" send -t 0 md 101
	timeout 20 "$IPCQ" recv -c 100 -t 5 md >"$T/out" || fail "recv -c 100 of the full queue (exit $?)"
	seq 2 101 >"$T/exp"
	cmp -s "$T/exp" "$T/out" || fail "the full queue's messages came back as $(head -3 "$T/out" | tr '\n' ' ')..."

	# a stdin longer than max_depth with -t 0: exit 3, the prefix kept
	expect_status 3 "150 lines with -t 0 into a queue of max_depth 100" sh -c "seq 150 | '$IPCQ' send -t 0 md"
	assert_eq 100 "$(qstat md depth)" "depth after 150 lines with -t 0"
	timeout 20 "$IPCQ" recv -c 100 -t 5 md >"$T/out" || fail "recv -c 100 of the prefix (exit $?)"
	seq 100 >"$T/exp"
	cmp -s "$T/exp" "$T/out" || fail "the prefix of 150 lines came back as $(head -3 "$T/out" | tr '\n' ' ')..."
	expect_drained md "after the max_depth checks"
	"$IPCQ" delete md
	pass "max_depth 100: the 101st send gets -EAGAIN / exit 3 with -t 0, times out with a timeout, goes once one is taken; a batch of 150 sends 100"
}

test_batch_api() {
	"$IPCQ" create bq
	"$IPCQ" create small --ring-size 256K
	"$DEEP" batch bq small || fail "the batch API"
	expect_drained bq "after the batch checks"
	expect_drained small "after the full-ring checks"
	"$IPCQ" delete bq
	"$IPCQ" delete small
	pass "send_batch: prefixes on a full ring and on an oversized message, -EAGAIN/-ETIMEDOUT, -EINVAL, -EMSGSIZE, -EBADF; recv_batch: 1..n, any release order, mixed sizes; peek: -EBADF, -EINVAL, 0 of 0"
}

# window: mq messages in the window; backlog: messages beyond it; depth:
# all of them.  Each mq message carries 1 to prefetch messages.  Senders
# move the backlog into the window; receivers take from the backlog once
# the window is empty (a receive-only client cannot send), so with no
# sender about, the window may be empty beside a backlog.
check_window_backlog() { # QUEUE DEPTH WHAT
	max_msgs=$(qstat "$1" max_msgs)
	prefetch=$(qstat "$1" prefetch)
	window=$(qstat "$1" window)
	backlog=$(qstat "$1" backlog)
	assert_eq "$2" "$(qstat "$1" depth)" "depth $3"
	assert_eq "$2" "$(qlist_depth "$1")" "depth in ipcq list $3"
	[ "$window" -ge 0 ] && [ "$window" -le "$max_msgs" ] || fail "window $window $3 (max_msgs $max_msgs)"
	[ "$backlog" -gt 0 ] || fail "no backlog $3, with $2 waiting and a window of $max_msgs"
	[ "$backlog" -le $(($2 - window)) ] || fail "backlog $backlog $3: more than depth $2 - window $window"
	[ "$backlog" -ge $(($2 - window * prefetch)) ] ||
		fail "backlog $backlog $3: the window of $window mq messages cannot hold the other $(($2 - backlog))"
	[ "$(qstat "$1" ring_used)" -gt 0 ] || fail "ring_used 0 $3, with a backlog of $backlog"
}

test_stat_shows_window_and_backlog() {
	"$IPCQ" create st
	"$DEEP" produce st 100 -s 64 -t 0 || fail "100 sends"
	check_window_backlog st 100 "after 100 sends"
	# no receiver asleep: senders leave everything in the backlog, coalesced
	assert_eq 0 "$(qstat st window)" "window of a queue with a backlog and no receiver asleep"
	"$DEEP" consume st 30 -k || fail "receiving 30 of 100"
	check_window_backlog st 70 "after 30 of 100 were received"
	"$DEEP" consume st 70 -f 30 || fail "receiving the other 70"
	expect_drained st "after all were received"
	"$IPCQ" delete st
	pass "stat: depth counts window and backlog, no receiver asleep leaves the window empty, backlog and list agree"
}

# Run the daemon with the kernel's default per-user mq budget at most.
soft=$(prlimit --pid $$ --msgqueue --raw --noheadings --output SOFT)
if [ "$soft" = unlimited ] || [ "$soft" -gt $DEFAULT_MSGQUEUE ]; then
	prlimit --pid $$ --msgqueue=$DEFAULT_MSGQUEUE: || fail "cannot lower RLIMIT_MSGQUEUE to $DEFAULT_MSGQUEUE"
fi
start_daemon
test_kernel_limits_are_the_defaults
test_million_messages_wait_without_a_receiver
test_send_all_then_receive_from_c
test_held_messages
test_per_sender_order
test_priority_overtakes_the_backlog
test_max_depth
test_batch_api
test_stat_shows_window_and_backlog
stop_daemon
