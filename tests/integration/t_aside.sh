#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_aside.sh - a receiver that keeps a message long does not stall its
# queue: while it holds one unacknowledged (a copy ipcq_recv made), ten
# times the ring's room goes by it to another receiver, because the
# daemon moves the held chunk aside; the holder's ipcq_ack, or its
# ipcq_close, then acknowledges it where it went: it is never delivered
# again, and the ring ends empty (tests/stress/aside.c).  A holder killed
# after the move gets the message redelivered, also when the daemon was
# killed and restarted in between.
. "$(dirname "$0")/lib.sh"

test_a_held_message_does_not_stall_the_ring() {
	st=0
	"$STRESS/aside" slow 640 16000 >"$T/out" 2>"$T/err" || st=$?
	[ "$st" -eq 0 ] || fail "aside (status $st): $(cat "$T/err")"
	cat "$T/out"
	pass "640 x 16000 bytes went by a message held unacknowledged in a 1 MiB ring; its ack and its close then acknowledged it where it was moved"
}

# hold: a holder keeps message 641 until the daemon moved it aside
hold() {
	rm -f "$T/ready"
	"$STRESS/aside" hold slow 640 16000 "$T/ready" >"$T/hold.out" 2>"$T/hold.err" &
	HOLDER=$!
	i=0
	while [ ! -e "$T/ready" ]; do
		kill -0 "$HOLDER" 2>/dev/null || fail "the holder failed: $(cat "$T/hold.err")"
		[ $i -lt 200 ] || fail "the holder's message was not moved aside in 20 s"
		sleep 0.1
		i=$((i + 1))
	done
}

# expect_back: the holder killed, message 641 comes again, once, flagged
expect_back() {
	kill -9 "$HOLDER"
	wait "$HOLDER" 2>/dev/null || true
	st=0
	"$STRESS/aside" expect slow 16000 641 >"$T/out" 2>"$T/err" || st=$?
	[ "$st" -eq 0 ] || fail "$1 (status $st): $(cat "$T/err")"
	cat "$T/out"
	assert_eq 0 "$(qstat slow depth)" "depth once the message came again"
}

test_a_holder_killed_after_the_move_gets_its_message_redelivered() {
	hold
	expect_back "a message moved aside, its holder killed"
	pass "a holder killed after its message was moved aside: the message comes again, once, flagged"
}

test_a_restarted_daemon_keeps_what_was_moved_aside() {
	hold
	stop_daemon KILL
	start_daemon -c "$T/ipcbrokerd.conf"
	grep -q "messages kept aside for their receivers taken back" "$DLOG" ||
		fail "the new daemon did not take back the kept message"
	expect_back "a message moved aside, the daemon restarted, its holder killed"
	[ -z "$(ls /dev/shm | grep "^ipcq\.$NS\.slow\..*\.a[0-9]")" ] || fail "a kept message's object was left behind"
	pass "a daemon killed and restarted takes back what the last one moved aside: redelivered when its holder dies"
}

# The daemon restarts while a holder keeps a message it moved aside; the
# holder's ipcq_ack then goes to the new daemon through the connection
# the library makes again, and the message is never delivered again.
test_an_ack_after_a_restart_reaches_the_new_daemon() {
	hold
	stop_daemon KILL
	start_daemon -c "$T/ipcbrokerd.conf"
	kill -USR1 "$HOLDER"
	st=0
	wait "$HOLDER" || st=$?
	[ "$st" -eq 0 ] || fail "the holder's ack after the restart failed (status $st): $(cat "$T/hold.out" "$T/hold.err")"
	grep -qx "acked: ok" "$T/hold.out" || fail "the holder's ack after the restart: $(cat "$T/hold.out")"
	expect_status 3 "a receive once the kept message was acknowledged" "$IPCQ" recv -t 2 slow
	assert_eq 0 "$(qstat slow depth)" "depth after the ack"
	i=0
	while ls /dev/shm | grep -q "^ipcq\.$NS\.slow\..*\.a[0-9]"; do
		[ $i -lt 50 ] || fail "the acknowledged message's kept object is still there 5 s later"
		sleep 0.1
		i=$((i + 1))
	done
	pass "a holder acknowledges a message moved aside after a daemon restart: the new daemon takes it, never again"
}

cat >"$T/ipcbrokerd.conf" <<CONF
queue "slow" {
	delivery = "at-least-once"
	ring_size = "1M"
	max_payload = "64K"
	prefetch = 1
	ack_timeout = "5m"
}
CONF
start_daemon -c "$T/ipcbrokerd.conf"
test_a_held_message_does_not_stall_the_ring
test_a_holder_killed_after_the_move_gets_its_message_redelivered
test_a_restarted_daemon_keeps_what_was_moved_aside
test_an_ack_after_a_restart_reaches_the_new_daemon
stop_daemon
