#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_backlogcrash.sh - producers and consumers killed (kill -9) at random
# while a queue's small window (max_msgs 10) leaves a backlog in the ring
# all the time: producers in the middle of a batch, of a loan or of moving
# the backlog, consumers holding part of a batch.  In both delivery modes:
# nothing torn, nothing invented, at-least-once loses nothing acknowledged
# and flags what it delivers twice, at-most-once delivers nothing twice
# and loses no more than its dropped counter says; once drained, the ring,
# the window and the backlog are empty.
#
# BACKLOGCRASH_SEED and BACKLOGCRASH_SECONDS (per delivery mode) repeat or
# lengthen a run; the seed is printed either way.
. "$(dirname "$0")/lib.sh"

BC="$STRESS/backlogcrash"
SEED=${BACKLOGCRASH_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
SECS=${BACKLOGCRASH_SECONDS:-9}
PRODUCERS=3
CONSUMERS=3

# bstat QUEUE FIELD: one field of ipcq_stat
bstat() {
	"$BC" stat "$1" "$2"
}

# wait_bstat QUEUE FIELD VALUE SECONDS: poll until the field has the value
wait_bstat() {
	end=$(($(date +%s%N) + $4 * 1000000000))
	while [ "$(bstat "$1" "$2")" != "$3" ]; do
		[ "$(date +%s%N)" -lt "$end" ] || fail "queue $1: $2 is $(bstat "$1" "$2") after $4 s, expected $3 (seed $SEED)"
		sleep 0.05
	done
}

# chaos QUEUE: the random kills on QUEUE, the final drain and the checks
# both delivery modes share
chaos() {
	q=$1
	mkdir "$T/$q"
	st=0
	"$BC" chaos "$q" "$T/$q" "$SECS" "$SEED" $PRODUCERS $CONSUMERS >"$T/$q.out" 2>"$T/$q.err" || st=$?
	cat "$T/$q.out"
	[ "$st" -eq 0 ] || fail "chaos on '$q' failed (status $st, seed $SEED): $(head -n 20 "$T/$q.err")"
	# redeliveries of the last consumers killed, if they came late
	"$BC" drain "$q" "$T/$q" 1500 >>"$T/$q.out" 2>>"$T/$q.err" ||
		fail "final drain of '$q' failed (seed $SEED): $(head -n 20 "$T/$q.err")"
	wait_bstat "$q" ring_used 0 3
	st=0
	"$BC" verify "$q" "$T/$q" >"$T/$q.verify" 2>"$T/$q.verr" || st=$?
	cat "$T/$q.verify"
	[ "$st" -eq 0 ] || fail "messages of '$q' lost, torn or duplicated (seed $SEED):
$(cat "$T/$q.verr")"
	for f in depth backlog window ring_chunks; do
		assert_eq 0 "$(bstat "$q" $f)" "$f of '$q' once drained (seed $SEED)"
	done

	# the run tested what it says it tests
	killed_p=$(sed -n 's/.*killed \([0-9]*\) producers.*/\1/p' "$T/$q.out")
	killed_c=$(sed -n 's/.*producers and \([0-9]*\) consumers$/\1/p' "$T/$q.out")
	total=$(sed -n 's/^chaos: \([0-9]*\) samples.*/\1/p' "$T/$q.out")
	samples=$(sed -n 's/.*backlog in \([0-9]*\),.*/\1/p' "$T/$q.out")
	if [ "${killed_p:-0}" -lt 5 ] || [ "${killed_c:-0}" -lt 5 ]; then
		fail "only ${killed_p:-0} producers and ${killed_c:-0} consumers were killed on '$q'"
	fi
	if [ "${total:-0}" -eq 0 ] || [ $((2 * ${samples:-0})) -lt "$total" ]; then
		fail "'$q' had a backlog in only ${samples:-0} of ${total:-0} samples: the run did not test one"
	fi
}

test_at_least_once_survives_random_kills_with_a_backlog() {
	chaos alo
	assert_eq 0 "$(bstat alo dropped)" "dropped counter of the at-least-once queue"
	pass "at-least-once, ${SECS} s of producers and consumers killed at random over a backlog:" \
		"nothing acknowledged lost, nothing torn, every duplicate flagged, ring empty (seed $SEED)"
}

test_at_most_once_survives_random_kills_with_a_backlog() {
	chaos amo
	assert_eq 0 "$(bstat amo redelivered)" "redelivered counter of the at-most-once queue"
	pass "at-most-once, ${SECS} s of producers and consumers killed at random over a backlog:" \
		"nothing duplicated, losses within dropped, nothing torn, ring empty (seed $SEED)"
}

echo "seed $SEED"
cat >"$T/ipcbrokerd.conf" <<CONF
queue "alo" {
	delivery = "at-least-once"
	max_msgs = 10
	ring_size = "16M"
	max_payload = "1M"
}
queue "amo" {
	delivery = "at-most-once"
	max_msgs = 10
	ring_size = "16M"
	max_payload = "1M"
}
CONF
start_daemon -c "$T/ipcbrokerd.conf"
test_at_least_once_survives_random_kills_with_a_backlog
test_at_most_once_survives_random_kills_with_a_backlog
stop_daemon
