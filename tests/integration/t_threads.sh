#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_threads.sh - one queue handle used by 4 sending and 4 receiving
# threads at once (the library is thread-safe per handle): every message
# arrives exactly once and intact, and the ring is empty afterwards.  The
# same with 6 receiving threads whose ipcq_recv buffers are mostly too
# small (-EMSGSIZE keeps the message on the handle for a later receive).
. "$(dirname "$0")/lib.sh"

test_handle_shared_by_threads_loses_nothing() {
	"$STRESS/threads" q 20000 || fail "threads: accounting is not exact"
	pass "80000 messages through one handle shared by 8 threads, each exactly once"
}

test_ring_empty_afterwards() {
	assert_eq 0 "$(qstat q depth)" "depth after the run"
	assert_eq 0 "$(qstat q ring_used)" "ring_used after the run"
	assert_eq 0 "$(qstat q ring_chunks)" "ring_chunks after the run"
	pass "queue and ring empty afterwards"
}

test_too_small_buffers_lose_nothing() {
	"$STRESS/threads" -s kept 5000 || fail "threads -s: a message kept after -EMSGSIZE was lost, duplicated or leaked"
	for f in depth backlog ring_used ring_chunks; do
		assert_eq 0 "$(qstat kept $f)" "$f of kept after the run"
	done
	pass "20000 messages through one handle whose 6 receiving threads mostly start with a buffer too small: each exactly once, no chunk left"
}

start_daemon
test_handle_shared_by_threads_loses_nothing
test_ring_empty_afterwards
test_too_small_buffers_lose_nothing
stop_daemon
