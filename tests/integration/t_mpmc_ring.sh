#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_mpmc_ring.sh - 4 producers and 4 consumers with sizes from 16 bytes
# to 20000: inline and ring messages mixed, content checked, the ring
# empty afterwards.
. "$(dirname "$0")/lib.sh"

test_mixed_sizes_received_exactly_once_and_intact() {
	"$STRESS/mpmc" q 4 4 20000 --mixed 20000 || fail "mpmc --mixed: accounting is not exact"
	pass "80000 messages of mixed sizes, each exactly once and intact"
}

test_both_paths_were_used() {
	sent=$(qstat q sent)
	ring=$(qstat q sent_ring)
	assert_eq 80000 "$sent" "sent counter"
	if [ "$ring" -eq 0 ] || [ "$ring" -ge "$sent" ]; then
		fail "expected both inline and ring messages, got $ring ring messages of $sent"
	fi
	pass "$ring of $sent messages went through the ring, the rest inline"
}

test_ring_is_empty_afterwards() {
	assert_eq 0 "$(qstat q depth)" "depth after mpmc"
	assert_eq 0 "$(qstat q ring_used)" "ring_used after mpmc"
	assert_eq 0 "$(qstat q ring_chunks)" "ring_chunks after mpmc"
	pass "ring empty after the run"
}

start_daemon
test_mixed_sizes_received_exactly_once_and_intact
test_both_paths_were_used
test_ring_is_empty_afterwards
stop_daemon
