#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_leases.sh - in an at-least-once queue a message is leased to its
# receiver until acknowledged: a worker killed (kill -9) or a handle
# closed before it acknowledged gives it back, flagged redelivered with
# its deliveries counted; what was acknowledged never comes back; a
# handle holds at most 64 messages and gets -ENOBUFS beyond, without
# holding up anyone else; the acked counter follows the
# acknowledgements.  At-most-once: views closed unreleased were
# delivered once.  Each case with 100-byte messages, 20000-byte ones and
# batches of 100-byte records (tests/stress/leases.c says what each
# checks).
. "$(dirname "$0")/lib.sh"

LEASES="$STRESS/leases"

# leases CASE QUEUE: the case with each kind of message
leases() {
	for v in small large batch; do
		st=0
		"$LEASES" "$1" "$2" "$v" >"$T/out" 2>"$T/err" || st=$?
		[ "$st" -eq 0 ] || fail "leases $1 $2 $v (status $st): $(cat "$T/err")"
	done
}

test_a_copy_whose_worker_was_killed_comes_back_redelivered() {
	leases kill alo
	pass "a copy whose worker was killed before its next call comes back flagged, deliveries 2, counted"
}

test_an_acknowledged_copy_never_comes_back() {
	leases ack alo
	pass "after ipcq_ack a killed worker loses nothing and nothing is redelivered; depth 0"
}

test_the_plain_loop_gives_back_only_the_message_in_hand() {
	leases loop alo
	pass "a worker killed after 5 ipcq_recv gives back the 5th alone"
}

test_close_acks_its_threads_copy_and_gives_back_another_threads() {
	leases close alo
	pass "ipcq_close acks the closing thread's copy and gives back another thread's"
}

test_views_closed_unreleased_come_back_at_least_once_only() {
	leases views alo
	leases views amo
	pass "views closed unreleased come back at-least-once, not at-most-once; unhanded batch records in both"
}

test_a_handle_holding_64_gets_enobufs_and_blocks_nobody() {
	leases bound alo
	leases bound amo
	pass "64 held: the rest of a batch taken still goes out, then -ENOBUFS at once (views, batches, copies); other handles receive and open; back under the bound it receives again"
}

test_deliveries_counts_each_delivery() {
	leases twice alo
	pass "a message two killed workers held arrives with deliveries 3"
}

test_acked_counts_each_acknowledgement() {
	leases acked alo
	leases acked amo
	pass "acked moves by one per ipcq_recv's next call, ipcq_ack and ipcq_release, and by nothing else"
}

cat >"$T/ipcbrokerd.conf" <<CONF
queue "alo" {
	delivery = "at-least-once"
	max_msgs = 10
	msg_size = 512
	ring_size = "8M"
	max_payload = "64K"
}
queue "amo" {
	delivery = "at-most-once"
	max_msgs = 10
	msg_size = 512
	ring_size = "8M"
	max_payload = "64K"
}
CONF
start_daemon -c "$T/ipcbrokerd.conf"
test_a_copy_whose_worker_was_killed_comes_back_redelivered
test_an_acknowledged_copy_never_comes_back
test_the_plain_loop_gives_back_only_the_message_in_hand
test_close_acks_its_threads_copy_and_gives_back_another_threads
test_views_closed_unreleased_come_back_at_least_once_only
test_a_handle_holding_64_gets_enobufs_and_blocks_nobody
test_deliveries_counts_each_delivery
test_acked_counts_each_acknowledgement
stop_daemon
