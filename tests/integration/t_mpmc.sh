#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_mpmc.sh - 4 producer and 4 consumer processes on one queue: every
# 64-byte message arrives exactly once and intact, and nothing is left.
. "$(dirname "$0")/lib.sh"

test_every_message_received_exactly_once() {
	"$STRESS/mpmc" q 4 4 50000 || fail "mpmc: accounting is not exact"
	pass "200000 messages from 4 producers to 4 consumers, each exactly once"
}

test_queue_is_empty_afterwards() {
	assert_eq 0 "$(qstat q depth)" "depth after mpmc"
	assert_eq 0 "$(qstat q ring_used)" "ring_used after mpmc"
	assert_eq 200000 "$(qstat q sent)" "sent counter"
	assert_eq 200000 "$(qstat q received)" "received counter"
	pass "queue empty and counters exact after the run"
}

start_daemon
test_every_message_received_exactly_once
test_queue_is_empty_afterwards
stop_daemon
