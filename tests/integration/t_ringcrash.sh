#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_ringcrash.sh - clients killed (kill -9) at awkward moments, and the
# daemon itself: the daemon reclaims what dead clients held, redelivers
# in at-least-once queues, and nothing live is lost or stuck.
. "$(dirname "$0")/lib.sh"

RC="$STRESS/ringcrash"
# a 100000-byte payload takes a 64-byte chunk header plus the payload,
# rounded up to 64 bytes
CHUNK=$(((64 + 100000 + 63) / 64 * 64))

# wait_line FILE LINE: wait up to 10 s for the helper to print LINE
wait_line() {
	i=0
	while [ $i -lt 200 ]; do
		grep -qx "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
		i=$((i + 1))
	done
	fail "no '$2' from the helper in 10 s: $(cat "$1" 2>/dev/null)"
}

# wait_stat QUEUE FIELD VALUE SECONDS: poll until the field has the value
wait_stat() {
	end=$(($(date +%s%N) + $4 * 1000000000))
	while [ "$(qstat "$1" "$2")" != "$3" ]; do
		[ "$(date +%s%N)" -lt "$end" ] || fail "queue $1: $2 is $(qstat "$1" "$2") after $4 s, expected $3"
		sleep 0.05
	done
}

# wait_nonempty FILE: wait up to 10 s for FILE to have content
wait_nonempty() {
	i=0
	while [ ! -s "$1" ]; do
		[ $i -lt 200 ] || fail "$1 stayed empty for 10 s"
		sleep 0.05
		i=$((i + 1))
	done
}

# random_sleep SEED: sleep between 0.05 and 0.3 s
random_sleep() {
	sleep "$(awk -v s="$1" 'BEGIN { srand(s); printf "%.2f", 0.05 + rand() * 0.25 }')"
}

# kill9 PID: kill -9 and reap
kill9() {
	kill -9 "$1"
	wait "$1" 2>/dev/null || true
}

test_dead_producers_loan_is_reclaimed() {
	: >"$T/loan.out" # not the last test's line: the child truncates it only once it runs
	"$RC" hold-loan q 100000 >"$T/loan.out" &
	pid=$!
	wait_line "$T/loan.out" ready
	used=$(qstat q ring_used)
	[ "$used" -gt 0 ] || fail "ring_used is $used while a 100000-byte loan is out"
	kill9 "$pid"
	wait_stat q ring_used 0 3
	assert_eq 0 "$(qstat q ring_chunks)" "ring_chunks after the reclaim"
	[ "$(qstat q reclaimed)" -ge 1 ] || fail "reclaimed counter did not move"
	pass "a producer killed mid-write: its loan is reclaimed within 3 s"
}

test_dead_consumers_view_is_dropped_at_most_once() {
	"$RC" send q 100000 1 || fail "send"
	: >"$T/view.out" # not the last test's line: the child truncates it only once it runs
	"$RC" hold-view q >"$T/view.out" &
	pid=$!
	wait_line "$T/view.out" "ready 100000"
	kill9 "$pid"
	wait_stat q ring_used 0 3
	assert_eq 1 "$(qstat q dropped)" "dropped counter"
	assert_eq 0 "$(qstat q depth)" "depth after the drop"
	assert_eq 0 "$(qstat q redelivered)" "redelivered counter"
	if "$RC" check q 100000 1 300 >/dev/null 2>&1; then
		fail "an at-most-once queue delivered the dead consumer's message again"
	fi
	pass "a consumer killed holding a view: at-most-once drops it (dropped 1, ring empty)"
}

test_dead_consumers_view_is_redelivered_at_least_once() {
	"$RC" send alo 100000 1 || fail "send"
	: >"$T/view.out" # not the last test's line: the child truncates it only once it runs
	"$RC" hold-view alo >"$T/view.out" &
	pid=$!
	wait_line "$T/view.out" "ready 100000"
	kill9 "$pid"
	out=$("$RC" check alo 100000 1 3000) || fail "the dead consumer's message was not redelivered intact"
	assert_eq "received 1 intact 1 redelivered 1" "$out" "check of the redelivered message"
	[ "$(qstat alo redelivered)" -ge 1 ] || fail "redelivered counter did not move"
	wait_stat alo ring_used 0 3
	assert_eq 0 "$(qstat alo dropped)" "dropped counter of the at-least-once queue"
	pass "a consumer killed holding a view: at-least-once redelivers it intact, flagged"
}

test_dead_consumers_inline_view_is_redelivered_at_least_once() {
	before=$(qstat alo redelivered)
	"$RC" send alo 100 1 || fail "send"
	: >"$T/view.out" # not the last test's line: the child truncates it only once it runs
	"$RC" hold-view alo >"$T/view.out" &
	pid=$!
	wait_line "$T/view.out" "ready 100"
	kill9 "$pid"
	out=$("$RC" check alo 100 1 3000) || fail "the dead consumer's inline message was not redelivered"
	assert_eq "received 1 intact 1 redelivered 1" "$out" "check of the redelivered inline message"
	[ "$(qstat alo redelivered)" -gt "$before" ] || fail "redelivered counter did not move"
	pass "a consumer killed holding an inline view: at-least-once redelivers it"
}

# The dead loan is the oldest chunk: once it is reclaimed the tail moves
# past it, so ring_used is exactly what the 10 messages behind it take.
test_reclaim_leaves_live_messages_alone() {
	: >"$T/loan.out" # not the last test's line: the child truncates it only once it runs
	"$RC" hold-loan live 100000 >"$T/loan.out" &
	pid=$!
	wait_line "$T/loan.out" ready
	"$RC" send live 100000 10 || fail "send"
	assert_eq $((11 * CHUNK)) "$(qstat live ring_used)" "ring_used with a loan and 10 messages"
	kill9 "$pid"
	wait_stat live ring_used $((10 * CHUNK)) 3
	assert_eq 10 "$(qstat live ring_chunks)" "ring_chunks after the reclaim"
	assert_eq 10 "$(qstat live depth)" "depth after the reclaim"
	"$RC" check live 100000 10 3000 >/dev/null || fail "the 10 live messages did not survive the reclaim intact"
	wait_stat live ring_used 0 3
	pass "a dead producer's loan is reclaimed around 10 live messages, which arrive intact"
}

test_daemon_killed_loses_no_message() {
	"$RC" send q 100000 5 || fail "send"
	stop_daemon KILL
	start_daemon -c "$T/ipcbrokerd.conf"
	assert_eq 5 "$(qstat q depth)" "depth after the restart"
	"$RC" check q 100000 5 3000 >/dev/null || fail "messages lost or damaged across a daemon kill -9"
	wait_stat q ring_used 0 3
	pass "daemon killed with 5 ring messages waiting: all 5 arrive intact after the restart"
}

test_producers_killed_at_random_leave_nothing_stuck() {
	logs=
	for i in 1 2 3 4 5; do
		logs="$logs $T/spin.$i"
	done
	# shellcheck disable=SC2086 # one argument per log
	"$RC" drain spin 2000 $logs >"$T/drain.out" 2>&1 &
	drain=$!
	for i in 1 2 3 4 5; do
		"$RC" spin-send spin "$T/spin.$i" 2>>"$T/spin.err" &
		pid=$!
		wait_nonempty "$T/spin.$i" # it is connected and sending
		random_sleep "$$$i"
		kill9 "$pid"
	done
	st=0
	wait "$drain" || st=$?
	cat "$T/drain.out"
	[ "$st" -eq 0 ] || fail "drain after random producer kills failed (status $st)"
	wait_stat spin ring_used 0 3
	assert_eq 0 "$(qstat spin ring_chunks)" "ring_chunks after the drain"
	assert_eq 0 "$(qstat spin depth)" "depth after the drain"
	pass "5 producers killed at random: every message sent arrived intact once, no chunk stuck"
}

# Two consumers at a time, killed at random while a producer sends: they
# die holding views, mid-receive and mid-release (with the ring's lock).
test_consumers_killed_at_random_lose_nothing_at_least_once() {
	"$RC" spin-send alo "$T/alospin" 2>>"$T/spin.err" &
	producer=$!
	wait_nonempty "$T/alospin"
	for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
		"$RC" consume alo "$T/alo.rec" 10000 &
		c1=$!
		"$RC" consume alo "$T/alo.rec" 10000 &
		c2=$!
		sleep "$(awk -v s="$$$i" 'BEGIN { srand(s); printf "%.2f", 0.02 + rand() * 0.1 }')"
		kill9 "$c1"
		kill9 "$c2"
	done
	kill9 "$producer"
	# a descriptor a killed consumer had taken off the mq comes back after
	# two sweeps of the daemon (1 s apart) find its chunk orphaned
	"$RC" consume alo "$T/alo.rec" 3500 || fail "the final consumer failed"
	"$RC" verify "$T/alo.rec" "$T/alospin" || fail "messages lost or damaged while consumers were killed at random"
	wait_stat alo ring_used 0 3
	assert_eq 0 "$(qstat alo depth)" "depth after the drain"
	pass "30 consumers killed at random in an at-least-once queue: no message lost or damaged, ring empty"
}

cat >"$T/ipcbrokerd.conf" <<CONF
queue "alo" {
	delivery = "at-least-once"
}
CONF
start_daemon -c "$T/ipcbrokerd.conf"
test_dead_producers_loan_is_reclaimed
test_dead_consumers_view_is_dropped_at_most_once
test_dead_consumers_view_is_redelivered_at_least_once
test_dead_consumers_inline_view_is_redelivered_at_least_once
test_reclaim_leaves_live_messages_alone
test_daemon_killed_loses_no_message
test_producers_killed_at_random_leave_nothing_stuck
test_consumers_killed_at_random_lose_nothing_at_least_once
stop_daemon
