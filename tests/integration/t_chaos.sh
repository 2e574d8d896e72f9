#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_chaos.sh - the delivery guarantees under chaos: producers, consumers
# and the daemon itself killed (kill -9) at random, for a fixed time, over
# three queues at once: "small" (at-least-once, a window of 2 mq messages
# of up to 4, so a backlog always stands), "alo" (at-least-once, the
# default geometry) and "amo" (at-most-once).  On each, producers send
# inline, batched, loaned and ring-sized messages, each with its producer
# id, sequence number and checksum, and consumers take them as batches,
# views and copies, recording each before they acknowledge it
# (tests/stress/backlogcrash.c says how, and what a client does when the
# daemon dies: the running ones go on without it, those started meanwhile
# retry until a new daemon answers).  The daemon is restarted on the same
# config, socket and namespace, and adopts the queues from its registry.
#
# At the end: at-least-once lost nothing whose send succeeded, and every
# duplicate was flagged redelivered (or came through ipcq_recv, which
# cannot tell); at-most-once delivered nothing twice and lost no more than
# its dropped counter (and the copies of consumers killed in ipcq_recv);
# nothing torn; once drained, every ring, window and backlog is empty;
# after 'ipcq delete' no shared memory or mq of the test's namespace is
# left.  The last line sums it up.
#
# CHAOS_SECONDS (default 10) and CHAOS_SEED repeat or lengthen a run; the
# seed is printed either way.
. "$(dirname "$0")/lib.sh"

BC="$STRESS/backlogcrash"
SEED=${CHAOS_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
SECS=${CHAOS_SECONDS:-10}
QUEUES="small alo amo"
PRODUCERS=2
CONSUMERS=2

CHAOS_PIDS=
test_cleanup() {
	# their producers and consumers die with them (PR_SET_PDEATHSIG)
	for p in $CHAOS_PIDS; do
		kill -KILL "$p" 2>/dev/null || true
	done
}

# rand N: R gets a number in [0, N) from a stream seeded with SEED
RND=$SEED
rand() {
	RND=$(((RND * 1103515245 + 12345) % 2147483648))
	R=$((RND / 65536 % $1))
}

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

sleep_ms() {
	sleep "$(($1 / 1000)).$(printf %03d $(($1 % 1000)))"
}

chaos_running() {
	for p in $CHAOS_PIDS; do
		kill -0 "$p" 2>/dev/null && return 0
	done
	return 1
}

# kill_daemon_now_and_then: while the chaos runs (but for its last
# second), kill -9 the daemon every 0.5 to 2 s and start a new one 0 to
# 0.4 s later; DAEMON_KILLS counts them
kill_daemon_now_and_then() {
	DAEMON_KILLS=0
	end=$(($(now_ms) + SECS * 1000 - 1000))
	while :; do
		rand 1500
		sleep_ms $((500 + R))
		[ "$(now_ms)" -lt "$end" ] && chaos_running || break
		stop_daemon KILL
		DAEMON_KILLS=$((DAEMON_KILLS + 1))
		rand 400
		sleep_ms "$R"
		start_daemon -c "$T/ipcbrokerd.conf"
	done
}

# mq_objects: names of this namespace's POSIX mqs, one a line, seen
# through a mount of the mqueue file system in a mount namespace of its
# own (nothing to see for other processes); fails where no such mount can
# be made
mq_objects() {
	mkdir -p "$T/mq"
	unshare -m sh -c 'mount -t mqueue none "$1" && ls -a "$1"' sh "$T/mq" >"$T/mq.all" 2>/dev/null || return 1
	grep "^ipcq\.$NS\." "$T/mq.all" || true
}

# figure NAME: the sum over the queues of one figure of verify's
# "figures:" line (at-least-once queues only, or at-most-once, with a
# second argument)
figure() {
	cat "$T"/*.verify | awk -v f="$1" -v only="${2:-}" '
		$1 == "figures:" && (only == "" || $2 == only) {
			for (i = 3; i < NF; i += 2) if ($i == f) s += $(i + 1)
		}
		END { print s + 0 }'
}

test_chaos_over_three_queues_loses_tears_and_leaks_nothing() {
	i=0
	for q in $QUEUES; do
		mkdir "$T/$q"
		"$BC" chaos "$q" "$T/$q" "$SECS" $((SEED + i)) $PRODUCERS $CONSUMERS >"$T/$q.out" 2>"$T/$q.err" &
		CHAOS_PIDS="$CHAOS_PIDS $!"
		i=$((i + 1))
	done
	kill_daemon_now_and_then
	failed=
	for p in $CHAOS_PIDS; do
		wait "$p" || failed="$failed $p"
	done
	CHAOS_PIDS=
	for q in $QUEUES; do
		cat "$T/$q.out"
	done
	[ -z "$failed" ] || fail "a chaos run failed (seed $SEED): $(head -n 20 "$T"/*.err)"

	# redeliveries of the last consumers killed, if they came late
	for q in $QUEUES; do
		"$BC" drain "$q" "$T/$q" 1500 >>"$T/$q.out" 2>>"$T/$q.err" &
		CHAOS_PIDS="$CHAOS_PIDS $!"
	done
	for p in $CHAOS_PIDS; do
		wait "$p" || failed="$failed $p"
	done
	CHAOS_PIDS=
	[ -z "$failed" ] || fail "a final drain failed (seed $SEED): $(head -n 20 "$T"/*.err)"

	bad=
	for q in $QUEUES; do
		"$BC" settle "$q" 5 2>&1 || bad="$bad $q"
		for f in ring_used depth backlog; do
			assert_eq 0 "$(qstat "$q" $f)" "'ipcq stat $q' $f once drained (seed $SEED)"
		done
		st=0
		"$BC" verify "$q" "$T/$q" >"$T/$q.verify" 2>"$T/$q.verr" || st=$?
		cat "$T/$q.verify"
		if [ "$st" -ne 0 ]; then
			cat "$T/$q.verr" >&2
			bad="$bad $q"
		fi
	done
	[ -z "$bad" ] || fail "queues$bad: messages lost, torn or duplicated, or space left in use (seed $SEED)"

	# the run tested what it says it tests
	killed_p=$(sed -n 's/.*killed \([0-9]*\) producers.*/\1/p' "$T"/*.out | awk '{ s += $1 } END { print s + 0 }')
	killed_c=$(sed -n 's/.*producers and \([0-9]*\) consumers$/\1/p' "$T"/*.out | awk '{ s += $1 } END { print s + 0 }')
	[ "$killed_p" -ge 10 ] && [ "$killed_c" -ge 10 ] ||
		fail "only $killed_p producers and $killed_c consumers were killed"
	[ "$DAEMON_KILLS" -ge 2 ] || fail "the daemon was killed only $DAEMON_KILLS times"
	samples=$(sed -n 's/^chaos: \([0-9]*\) samples.*/\1/p' "$T/small.out")
	with_backlog=$(sed -n 's/.*backlog in \([0-9]*\),.*/\1/p' "$T/small.out")
	[ "${samples:-0}" -gt 0 ] && [ $((2 * ${with_backlog:-0})) -ge "$samples" ] ||
		fail "'small' had a backlog in only ${with_backlog:-0} of ${samples:-0} samples: the run did not test one"
	[ "$(figure received)" -gt 0 ] || fail "no message went through"

	before=
	if mq_objects >"$T/mq.before"; then
		before=$(wc -l <"$T/mq.before")
	fi
	for q in $QUEUES; do
		"$IPCQ" delete "$q" || fail "ipcq delete $q"
	done
	left=$(ls /dev/shm | grep "^ipcq\.$NS\." || true)
	[ -z "$left" ] || fail "shared memory left after ipcq delete: $left"
	if [ -n "$before" ]; then
		# the mounts see this namespace's mqs: one per queue, at least
		[ "$before" -ge 3 ] || fail "saw $before mqs of namespace $NS before ipcq delete"
		left=$(mq_objects)
		[ -z "$left" ] || fail "POSIX mqs left after ipcq delete: $left"
		mq_note="no shared memory or mq left"
	else
		mq_note="no shared memory left (mqs unchecked: no private mqueue mount here)"
	fi

	echo "chaos summary (seed $SEED, $SECS s, 3 queues):" \
		"sent $(figure sent), received $(figure received);" \
		"killed $killed_p producers, $killed_c consumers, $DAEMON_KILLS daemons;" \
		"lost $(figure lost at-least-once) at-least-once," \
		"$(figure lost at-most-once) at-most-once (dropped $(figure dropped at-most-once));" \
		"duplicated $(figure duplicated); torn $(figure torn)"
	pass "$SECS s of producers, consumers and the daemon killed at random over 3 queues:" \
		"nothing acknowledged lost where at least once, nothing twice where at most once, nothing torn," \
		"every duplicate flagged, rings empty, $mq_note (seed $SEED)"
}

echo "seed $SEED"
cat >"$T/ipcbrokerd.conf" <<CONF
queue "small" {
	delivery = "at-least-once"
	max_msgs = 2
	prefetch = 4
	ring_size = "16M"
	max_payload = "1M"
}
queue "alo" {
	delivery = "at-least-once"
}
queue "amo" {
	delivery = "at-most-once"
	ring_size = "16M"
	max_payload = "1M"
}
CONF
start_daemon -c "$T/ipcbrokerd.conf"
test_chaos_over_three_queues_loses_tears_and_leaks_nothing
stop_daemon
