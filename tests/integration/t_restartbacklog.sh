#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_restartbacklog.sh - the daemon killed (kill -9) while a queue holds a
# backlog: with 500,000 messages waiting and no receiver, and in the middle
# of a run of producers and consumers.  A new daemon adopts the queue with
# the same depth; every message arrives, once, intact, in order; the ring
# is empty once drained.
#
# BACKLOGCRASH_SEED repeats a run's sizes and batches; it is printed.
. "$(dirname "$0")/lib.sh"

BC="$STRESS/backlogcrash"
SEED=${BACKLOGCRASH_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
COUNT=500000
SIZE=64

bstat() {
	"$BC" stat "$1" "$2"
}

# wait_bstat QUEUE FIELD VALUE SECONDS: poll until the field has the value
wait_bstat() {
	end=$(($(date +%s%N) + $4 * 1000000000))
	while [ "$(bstat "$1" "$2")" != "$3" ]; do
		[ "$(date +%s%N)" -lt "$end" ] || fail "queue $1: $2 is $(bstat "$1" "$2") after $4 s, expected $3"
		sleep 0.05
	done
}

test_daemon_killed_with_a_backlog_of_500000_loses_nothing() {
	"$IPCQ" create deep --ring-size 128M || fail "create deep --ring-size 128M"
	"$BC" fill deep $COUNT $SIZE 2>"$T/fill.err" || fail "fill: $(cat "$T/fill.err")"
	assert_eq $COUNT "$(bstat deep depth)" "depth with no receiver"
	backlog=$(bstat deep backlog)
	[ "$backlog" -gt 0 ] || fail "backlog is $backlog with $COUNT messages and a window of 10"
	stop_daemon KILL
	start_daemon -c "$T/ipcbrokerd.conf"
	assert_eq $COUNT "$(bstat deep depth)" "depth after the daemon's kill -9 and restart"
	grep -q "queue deep: adopted ($COUNT messages waiting," "$DLOG" ||
		fail "the daemon's adoption line does not count the backlog: $(grep 'queue deep: adopted' "$DLOG")"
	out=$("$BC" take deep $COUNT $SIZE 5000 2>"$T/take.err") || fail "take after the restart: $(head -n 20 "$T/take.err")"
	assert_eq "took $COUNT in order, 0 wrong, 0 redelivered" "$out" "the backlog after the restart"
	wait_bstat deep ring_used 0 3
	for f in depth backlog window ring_chunks; do
		assert_eq 0 "$(bstat deep $f)" "$f of the drained queue"
	done
	pass "daemon killed with $COUNT messages waiting ($backlog in the backlog): the same depth after" \
		"the restart, all $COUNT arrive in order, once, intact; ring empty"
}

# mid_run QUEUE: producers and consumers (no receiver faster than the
# producers, so a backlog builds) run while the daemon is killed and
# restarted; every message sent arrives exactly once.
mid_run() {
	q=$1
	mkdir "$T/$q"
	"$BC" chaos "$q" "$T/$q" 6 "$SEED" 3 2 --no-kill >"$T/$q.out" 2>"$T/$q.err" &
	run=$!
	end=$(($(date +%s) + 4))
	while [ "$(bstat "$q" backlog 2>/dev/null || echo 0)" -eq 0 ]; do
		[ "$(date +%s)" -lt "$end" ] || fail "no backlog built up on '$q' in 4 s"
		sleep 0.05
	done
	sleep 1
	backlog=$(bstat "$q" backlog)
	stop_daemon KILL
	sleep 0.5 # clients keep moving messages with no daemon
	start_daemon -c "$T/ipcbrokerd.conf"
	st=0
	wait "$run" || st=$?
	cat "$T/$q.out"
	[ "$st" -eq 0 ] || fail "producers and consumers across the restart (status $st, seed $SEED): $(head -n 20 "$T/$q.err")"
	"$BC" drain "$q" "$T/$q" 1000 >/dev/null 2>>"$T/$q.err" || fail "final drain of '$q': $(head -n 20 "$T/$q.err")"
	wait_bstat "$q" ring_used 0 3
	st=0
	"$BC" verify "$q" "$T/$q" --strict 2>"$T/$q.verr" || st=$?
	[ "$st" -eq 0 ] || fail "messages of '$q' lost, torn, duplicated or reordered across the restart (seed $SEED):
$(cat "$T/$q.verr")"
	for f in depth backlog window ring_chunks dropped redelivered; do
		assert_eq 0 "$(bstat "$q" $f)" "$f of '$q' once drained"
	done
}

test_daemon_killed_mid_run_loses_nothing_at_least_once() {
	mid_run alo
	pass "at-least-once: daemon killed with a backlog of $backlog while 3 producers and 2 consumers run:" \
		"every message arrives once, in order (seed $SEED)"
}

test_daemon_killed_mid_run_loses_nothing_at_most_once() {
	mid_run amo
	pass "at-most-once: daemon killed with a backlog of $backlog while 3 producers and 2 consumers run:" \
		"every message arrives once, in order (seed $SEED)"
}

echo "seed $SEED"
cat >"$T/ipcbrokerd.conf" <<CONF
queue "alo" {
	delivery = "at-least-once"
	ring_size = "16M"
	max_payload = "1M"
}
queue "amo" {
	delivery = "at-most-once"
	ring_size = "16M"
	max_payload = "1M"
}
CONF
start_daemon -c "$T/ipcbrokerd.conf"
test_daemon_killed_with_a_backlog_of_500000_loses_nothing
test_daemon_killed_mid_run_loses_nothing_at_least_once
test_daemon_killed_mid_run_loses_nothing_at_most_once
stop_daemon
