#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_scribble.sh - a client overwrites every byte of a queue's shared memory
# it can write and forges messages on its mq (tests/stress/scribble.c),
# or changes a byte of every message in flight it finds there (tamper),
# with send, receive or both rights, then exits, stops or dies.  The test
# does not know the ring's layout, so it keeps its meaning when the layout
# changes.  After each attack: the daemon is up and answers within 1 s;
# another queue's traffic, inline and through the ring, alone and in
# batches, arrives exact and complete; calls on the wrecked queue end
# within their timeouts, whatever they return, both from a client that held
# it during the attack and from new ones; the wreck can be purged and
# deleted, also by a daemon restarted after a kill -9 that adopts it; and
# no sanitizer reports anything.
#
# What the wrecked queue delivers: a client that may send can send
# anything, so after a send or both attack nothing is asserted on it.  A
# receive-only client can never make a message appear: every message a
# legitimate receiver takes from the queue, during the attack (the client
# that held it) and after it (the CLI's receives, and a fresh feed drained
# once the attacker is gone or stopped), is intact and one that a sender
# of this test sent.  It may come twice or never (a receiver may drop
# messages), calls may fail and the queue may be quarantined.  A view is
# judged when received, and again before its release: one into the ring
# may change while its holder keeps it (ipcq.h: a hostile client of the
# queue may have its space reused under it), and is only counted; one in
# the handle's own memory (an inline message) must not change.  The
# traffic on it goes inline, through the ring, in batches and through its
# backlog (more than the window holds), and is received by copy, as views
# and in batches.
. "$(dirname "$0")/lib.sh"

SCR="$STRESS/scribble"
ROUNDS=3
# traffic on "other" during and after each attack: 100 and 20000 bytes,
# alone and in batches (scribble.c's feed), so inline messages, ring
# messages and batch chunks all go by
TRAFFIC_COUNT=60
TRAFFIC_PAUSE_MS=10
TRAFFIC_TIMEOUT_MS=20000
# the client that holds the attacked queue: how long it goes on, and the
# timeout of each of its calls
USER_MS=1500
USER_TIMEOUT_MS=200
TAG=0
# the traffic on victim, each sender with a tag of its own: what the CLI
# sends (CLI_TAG's messages 0, inline, and 1, through the ring, from
# files), and per attack, from VTAG on: VTAG+1 fills the new queue beyond
# its window of 10 (a backlog), VTAG+2 is the client that holds it, VTAG+3
# feeds it after the attack
CLI_TAG=1000
VTAG=$CLI_TAG
PREP_COUNT=40
AFTER_COUNT=24
DRAIN_TIMEOUT_MS=5000
# the helpers running now; each is cleared once reaped, so that clean-up
# never signals a pid the system may have given to someone else
SCRIBBLER_PID='' SCRIBBLER_SHELL='' STOPPED_PID='' USER_PID='' FEED_PID='' CHECK_PID=''

# SIGKILL ends a stopped process as well: no SIGCONT needed.  The
# scribbler is not this shell's child: once its status is written, its pid
# is no longer its own.
test_cleanup() {
	[ -s "$T/scribble.status" ] || [ -z "$SCRIBBLER_PID" ] || kill -KILL "$SCRIBBLER_PID" 2>/dev/null || true
	for p in $SCRIBBLER_SHELL $USER_PID $FEED_PID $CHECK_PID; do
		kill -KILL "$p" 2>/dev/null || true
	done
	for p in $SCRIBBLER_SHELL $USER_PID $FEED_PID $CHECK_PID; do
		wait "$p" 2>/dev/null || true
	done
}

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# proc_state PID: its state letter (S, R, T, Z...), nothing once reaped.
# A shell may leave an exited child a zombie until it waits: kill -0
# cannot tell that it ended.
proc_state() {
	sed -n 's/^[0-9]* (.*) \(.\) .*/\1/p' "/proc/$1/stat" 2>/dev/null || true
}

# wait_exit PID SECONDS WHAT: wait at most SECONDS for the child PID to
# end; its status in $EXIT_STATUS
wait_exit() {
	end=$(($(now_ms) + $2 * 1000))
	while :; do
		case $(proc_state "$1") in
		Z | '') break ;;
		esac
		[ "$(now_ms)" -lt "$end" ] || fail "$3 still runs after $2 s: something waits without a bound"
		sleep 0.02
	done
	EXIT_STATUS=0
	wait "$1" || EXIT_STATUS=$?
}

assert_no_sanitizer_report() { # WHEN
	if grep -E 'runtime error|AddressSanitizer|LeakSanitizer' "$DLOG" >&2; then
		fail "the daemon's log has a sanitizer report $1"
	fi
	for f in "$T/clients.err" "$T/user.err"; do
		if grep -qE 'runtime error|AddressSanitizer|LeakSanitizer' "$f" 2>/dev/null; then
			cat "$f" >&2
			fail "a client (the library) had a sanitizer report $1"
		fi
	done
}

assert_daemon_sane() { # WHEN
	daemon_alive || fail "ipcbrokerd died $1"
	assert_no_sanitizer_report "$1"
}

# the daemon answers 'ipcq list' within 1 s; the time in $LIST_MS
assert_list_within_1s() { # WHEN
	t0=$(now_ms)
	st=0
	timeout -k 1 1 "$IPCQ" list >/dev/null 2>>"$T/clients.err" || st=$?
	LIST_MS=$(($(now_ms) - t0))
	[ "$st" -eq 0 ] || fail "ipcq list $1: exit $st after $LIST_MS ms (124: no answer within 1 s)"
	[ "$LIST_MS" -le 1000 ] || fail "ipcq list $1 took $LIST_MS ms, more than 1 s"
	assert_daemon_sane "$1"
}

# assert_ends_in_time WHAT OUT COMMAND...: a call with a 0.5 s timeout
# ends by itself within 3 s, whatever it returns; its output in OUT; "WHAT
# STATUS in MS" is added to $CALLS
assert_ends_in_time() {
	what=$1 out=$2
	shift 2
	t0=$(now_ms)
	st=0
	timeout -k 1 5 "$@" </dev/null >"$out" 2>>"$T/clients.err" || st=$?
	ms=$(($(now_ms) - t0))
	case $st in
	124 | 137) fail "$what on the wrecked queue: killed by timeout after $ms ms: it ignores its 0.5 s timeout" ;;
	esac
	[ "$ms" -le 3000 ] || fail "$what on the wrecked queue took $ms ms with a 0.5 s timeout (exit $st)"
	CALLS="$CALLS, $what $st in $ms ms"
}

assert_calls_on_victim_end_in_time() {
	CALLS=
	assert_ends_in_time "send" /dev/null "$IPCQ" send -t 0.5 -f "$T/cli0.msg" victim
	assert_ends_in_time "send-ring" /dev/null "$IPCQ" send -t 0.5 -f "$T/cli1.msg" victim
	# what they receive, back to back, for assert_receivers_got_only_sent
	assert_ends_in_time "recv" "$T/recv.out" "$IPCQ" recv -t 0.5 -N victim
	assert_ends_in_time "recv-3" "$T/recv-3.out" "$IPCQ" recv -t 0.5 -c 3 -N victim
	CALLS=${CALLS#, }
	assert_daemon_sane "after calls on the wrecked queue"
}

# victim with messages inline, through the ring, in batches, and more of
# them than its window holds; its tags from VTAG on
prepare_victim() {
	VTAG=$((VTAG + 10))
	"$IPCQ" create victim || fail "cannot create the queue victim"
	"$IPCQ" send -t 1 -f "$T/cli0.msg" victim || fail "cannot send to the new queue victim"
	"$IPCQ" send -t 1 -f "$T/cli1.msg" victim || fail "cannot send a ring message to the new queue victim"
	"$SCR" "$SOCK" victim feed $((VTAG + 1)) "$PREP_COUNT" 0 >"$T/prep.out" 2>>"$T/clients.err" ||
		fail "cannot fill the new queue victim: $(cat "$T/prep.out")"
}

# a checker and a producer on "other", started before an attack and
# checked after it
start_traffic() {
	TAG=$((TAG + 1))
	"$SCR" "$SOCK" other check "$TAG" "$TRAFFIC_COUNT" "$TRAFFIC_TIMEOUT_MS" >"$T/check.out" 2>>"$T/clients.err" &
	CHECK_PID=$!
	"$SCR" "$SOCK" other feed "$TAG" "$TRAFFIC_COUNT" "$TRAFFIC_PAUSE_MS" >"$T/feed.out" 2>>"$T/clients.err" &
	FEED_PID=$!
}

assert_traffic_exact() { # WHEN
	wait_exit "$FEED_PID" 30 "the producer on 'other'"
	FEED_PID=
	[ "$EXIT_STATUS" -eq 0 ] ||
		fail "$1: the producer on 'other' failed (exit $EXIT_STATUS): $(cat "$T/feed.out")"
	wait_exit "$CHECK_PID" 30 "the checker on 'other'"
	CHECK_PID=
	[ "$EXIT_STATUS" -eq 0 ] ||
		fail "$1: traffic on 'other' was disturbed (exit $EXIT_STATUS): $(cat "$T/check.out")"
}

# a client that holds victim from before the attack to after it
start_user() {
	# emptied here, not only by the child's redirection, which may come
	# after the first look below and leave it the last round's "open"
	: >"$T/user.out"
	"$SCR" "$SOCK" victim use "$USER_MS" "$USER_TIMEOUT_MS" $((VTAG + 2)) \
		"$CLI_TAG:2,$((VTAG + 1)):$PREP_COUNT" >"$T/user.out" 2>"$T/user.err" &
	USER_PID=$!
	i=0
	until grep -q '^open$' "$T/user.out" 2>/dev/null; do
		case $(proc_state "$USER_PID") in
		Z | '') fail "the client of victim could not open it: $(cat "$T/user.err")" ;;
		esac
		[ $i -lt 250 ] || fail "the client of victim did not open it in 5 s"
		sleep 0.02
		i=$((i + 1))
	done
}

# ... and after a receive-only attack, it received only messages that
# were sent; how many it sent in $USE_SENT
assert_user_calls_ended_in_time() { # RIGHTS PATTERN AFTER
	wait_exit "$USER_PID" 15 "the client that held victim"
	USER_PID=
	USER_LINE=$(sed -n 's/^use victim: \(library calls \)/\1/p' "$T/user.out")
	case $EXIT_STATUS in
	0) ;;
	3) fail "calls of a client that held victim overran their ${USER_TIMEOUT_MS} ms timeout: $USER_LINE" ;;
	*) fail "the client that held victim during the attack died with status $EXIT_STATUS" \
		"(134: SIGABRT, 135: SIGBUS, 139: SIGSEGV): $(tail -n 3 "$T/user.err")" ;;
	esac
	USE_SENT=$(printf '%s\n' "$USER_LINE" | sed -n 's/.*; sent \([0-9]*\) (tag .*/\1/p')
	[ -n "$USE_SENT" ] || fail "the client that held victim did not say what it sent: $(cat "$T/user.out")"
	case $1:$USER_LINE in
	recv:*", not sent 0; "*) ;;
	recv:*) fail "$1 $2 $3: the client that held victim during the attack received messages no sender sent;" \
		"the first: $(sed -n 's/^use victim: first not sent: //p' "$T/user.out") [$USER_LINE]" ;;
	esac
	case $1:$USER_LINE in
	recv:*"in the handle's own memory 0") ;;
	recv:*) fail "$1 $2 $3: a view in the handle's own memory (an inline message), intact when the client that" \
		"held victim received it, changed while it held it:" \
		"$(sed -n "s/^use victim: first view changed in the handle's own memory: //p" "$T/user.out") [$USER_LINE]" ;;
	esac
}

# After a receive-only attack, what the CLI received from victim (in
# assert_calls_on_victim_end_in_time) was sent; and once the attacker is
# gone or stopped, a fresh feed, drained with whatever else victim still
# holds, brings nothing that was not sent.  Said in $VICTIM_CONTENT.
assert_receivers_got_only_sent() { # RIGHTS PATTERN AFTER
	VICTIM_CONTENT=
	[ "$1" = recv ] || return 0
	senders="$CLI_TAG:2,$((VTAG + 1)):$PREP_COUNT,$((VTAG + 2)):$USE_SENT"
	for f in recv recv-3; do
		st=0
		"$SCR" judge "$T/$f.out" "$senders" >"$T/judge.out" 2>>"$T/clients.err" || st=$?
		case $st in
		0) ;;
		4) fail "$1 $2 $3: 'ipcq $f' on victim after the attack received messages no sender sent;" \
			"the first: $(sed -n 's/^judge .*: first not sent: //p' "$T/judge.out") [$(head -n 1 "$T/judge.out")]" ;;
		*) fail "could not judge what 'ipcq $f' received from victim (exit $st)" ;;
		esac
	done
	# the feed may fail on a wreck: it is judged by what the drain gets
	timeout -k 1 30 "$SCR" "$SOCK" victim feed $((VTAG + 3)) "$AFTER_COUNT" 0 >"$T/after.out" \
		2>>"$T/clients.err" || true
	fed=$(sed -n 's/^feed victim: tag [0-9]*: //p' "$T/after.out")
	st=0
	timeout -k 1 20 "$SCR" "$SOCK" victim drain "$senders,$((VTAG + 3)):$AFTER_COUNT" "$DRAIN_TIMEOUT_MS" \
		>"$T/drain.out" 2>>"$T/clients.err" || st=$?
	drained=$(head -n 1 "$T/drain.out" | sed 's/^drain victim: //')
	case $st in
	0) ;;
	4) fail "$1 $2 $3: after the attack a receiver of victim got messages no sender sent;" \
		"the first: $(sed -n 's/^drain victim: first not sent: //p' "$T/drain.out")" \
		"[fed ${fed:-nothing: victim refused}; $drained]" ;;
	*) fail "could not drain victim after the attack (exit $st; 124: it hung): $(tail -n 3 "$T/clients.err")" ;;
	esac
	VICTIM_CONTENT=" after the attack: fed ${fed:-nothing: victim refused}, drained: $drained;"
}

# start_scribbler RIGHTS PATTERN AFTER: start an attack on victim; the
# scribbler's pid in $SCRIBBLER_PID.  It runs under a subshell that writes
# its exit status to $T/scribble.status and swallows the shell's notice
# of its SIGKILL ("Killed"), which would otherwise litter the log.
start_scribbler() {
	rm -f "$T/scribble.pid" "$T/scribble.status"
	(
		"$SCR" "$SOCK" victim "$1" "$2" "$ROUNDS" "$3" >"$T/scribble.out" 2>>"$T/clients.err" &
		echo $! >"$T/scribble.pid"
		st=0
		wait $! || st=$?
		echo "$st" >"$T/scribble.status"
	) 2>/dev/null &
	SCRIBBLER_SHELL=$!
	i=0
	until [ -s "$T/scribble.pid" ]; do
		[ $i -lt 250 ] || fail "the scribbler did not start in 5 s"
		sleep 0.02
		i=$((i + 1))
	done
	SCRIBBLER_PID=$(cat "$T/scribble.pid")
}

# wait_scribbler SECONDS WHAT: its exit status in $EXIT_STATUS
wait_scribbler() {
	end=$(($(now_ms) + $1 * 1000))
	until [ -s "$T/scribble.status" ]; do
		[ "$(now_ms)" -lt "$end" ] || fail "$2 still runs after $1 s: something waits without a bound"
		sleep 0.02
	done
	EXIT_STATUS=$(cat "$T/scribble.status")
	SCRIBBLER_PID=
	wait "$SCRIBBLER_SHELL" || true
	SCRIBBLER_SHELL=
}

# wait_stopped SECONDS WHAT: the scribbler stops itself
wait_stopped() {
	end=$(($(now_ms) + $1 * 1000))
	while :; do
		case $(proc_state "$SCRIBBLER_PID") in
		T | t) return 0 ;;
		Z | '') fail "$2 ended instead of stopping: $(cat "$T/scribble.out")" ;;
		esac
		[ "$(now_ms)" -lt "$end" ] || fail "$2 did not stop within $1 s: something waits without a bound"
		sleep 0.02
	done
}

# scribble RIGHTS PATTERN AFTER: attack victim and wait until the
# scribbler has exited, stopped or died as told; a stopped one's pid in
# $STOPPED_PID, its report in $SCRIBBLE_LINE
scribble() {
	what="scribbler ($1 $2 $3)"
	start_scribbler "$1" "$2" "$3"
	case $3 in
	stop)
		wait_stopped 20 "the $what"
		STOPPED_PID=$SCRIBBLER_PID
		;;
	kill)
		wait_scribbler 20 "the $what"
		[ "$EXIT_STATUS" -eq 137 ] || fail "the $what ended with status $EXIT_STATUS, not by its own SIGKILL"
		;;
	*)
		wait_scribbler 20 "the $what"
		[ "$EXIT_STATUS" -eq 0 ] || fail "the $what failed with status $EXIT_STATUS" \
			"(134: SIGABRT, 135: SIGBUS, 139: SIGSEGV): $(tail -n 3 "$T/clients.err")"
		;;
	esac
	SCRIBBLE_LINE=$(cat "$T/scribble.out")
	case $SCRIBBLE_LINE in
	*", late 0,"*) ;;
	*) fail "library calls on the wrecked queue overran their timeouts: $SCRIBBLE_LINE" ;;
	esac
	# least privilege holds whatever the ring says: the kernel itself
	# refuses a receive-only client's writes to the mq
	case $1:$SCRIBBLE_LINE in
	recv:*"the mq refused writes"*) ;;
	recv:*) fail "a receive-only client could write the queue's mq: $SCRIBBLE_LINE" ;;
	*:*"the mq took writes"*) ;;
	*) fail "a client with send rights could not forge mq messages (the test is broken): $SCRIBBLE_LINE" ;;
	esac
	assert_daemon_sane "after the $what"
}

end_stopped_scribbler() {
	[ -n "$STOPPED_PID" ] || return 0
	kill -KILL "$STOPPED_PID"
	wait_scribbler 5 "the stopped scribbler"
	STOPPED_PID=
}

assert_delete_succeeds() { # WHEN
	expect_status 0 "ipcq delete of the wrecked queue $1" "$IPCQ" delete victim
	expect_status 4 "ipcq stat of the deleted queue $1" "$IPCQ" stat victim
}

# Purge a wreck; once the daemon has quarantined it, purge gives it new
# objects, and it works again.  $PURGED says which.
assert_purge_succeeds() { # WHEN
	was_quarantined=$(qstat victim quarantined)
	expect_status 0 "ipcq purge of the wrecked queue $1" "$IPCQ" purge victim
	PURGED="purge ok"
	[ "$was_quarantined" = 1 ] || return 0
	assert_eq 0 "$(qstat victim quarantined)" "quarantined after the purge $1"
	"$IPCQ" send -t 1 victim rebuilt || fail "send to the rebuilt queue $1"
	assert_eq rebuilt "$("$IPCQ" recv -t 1 victim)" "round trip on the rebuilt queue $1"
	PURGED="purge rebuilt it, round trip ok"
}

# One attack and every check after it.  The scribbler may leave the queue
# quarantined, or spoiled in a way the daemon has not noticed: neither
# matters to what is checked, but a receive-only one must not have made a
# message appear.
test_attacked_queue_spoils_nothing_else() { # RIGHTS PATTERN AFTER purge|nopurge
	prepare_victim
	start_traffic
	start_user
	scribble "$1" "$2" "$3"
	assert_list_within_1s "after the attack"
	list_ms=$LIST_MS
	assert_calls_on_victim_end_in_time
	assert_user_calls_ended_in_time "$1" "$2" "$3"
	assert_traffic_exact "$1 $2 $3"
	assert_receivers_got_only_sent "$1" "$2" "$3"
	quarantined=$(qstat victim quarantined)
	PURGED="no purge"
	[ "$4" = nopurge ] || assert_purge_succeeds "after $1 $2 $3"
	assert_delete_succeeds "after $1 $2 $3"
	end_stopped_scribbler
	assert_list_within_1s "after the attack ended"
	pass "$1 $2 $3: list in $list_ms ms; new clients: $CALLS; held client: $USER_LINE;$VICTIM_CONTENT" \
		"quarantined '$quarantined'; $PURGED; delete ok; $(cat "$T/check.out"); [$SCRIBBLE_LINE]"
}

# restart_daemon: kill -9 and start again; the time until it served
# 'ipcq list' in $START_MS
restart_daemon() {
	stop_daemon KILL
	t0=$(now_ms)
	start_daemon
	START_MS=$(($(now_ms) - t0))
	[ "$START_MS" -le 1000 ] || fail "the restarted daemon took $START_MS ms to serve ipcq list, more than 1 s"
	assert_list_within_1s "after the restart"
}

# Attack, delete, make the queue anew, attack again: the restarted daemon
# adopts the second wreck, and must still delete it.
test_restarted_daemon_deletes_an_adopted_wreck() {
	test_attacked_queue_spoils_nothing_else both all kill nopurge
	prepare_victim
	scribble both all exit
	restart_daemon
	start_traffic
	assert_calls_on_victim_end_in_time
	assert_traffic_exact "after the restart"
	quarantined=$(qstat victim quarantined)
	assert_delete_succeeds "after the restart"
	assert_list_within_1s "after deleting the adopted wreck"
	pass "restart (kill -9) with a wreck: served in $START_MS ms; new clients: $CALLS;" \
		"quarantined '$quarantined'; delete ok; $(cat "$T/check.out")"
}

# A wreck adopted while its scribbler sits stopped: purge works on it.
test_restarted_daemon_purges_an_adopted_wreck() {
	prepare_victim
	scribble send random stop
	restart_daemon
	start_traffic
	assert_calls_on_victim_end_in_time
	assert_traffic_exact "after the restart"
	quarantined=$(qstat victim quarantined)
	assert_purge_succeeds "after the restart"
	assert_delete_succeeds "after the restart"
	end_stopped_scribbler
	assert_list_within_1s "after the stopped scribbler died"
	pass "restart (kill -9) with a wreck and its scribbler stopped: served in $START_MS ms; new clients: $CALLS;" \
		"quarantined '$quarantined'; $PURGED; delete ok; $(cat "$T/check.out")"
}

[ -x "$SCR" ] || fail "$SCR is not built"
: >"$T/clients.err"
: >"$T/user.err"
"$SCR" write "$CLI_TAG" 0 "$T/cli0.msg" || fail "cannot write a message file"
"$SCR" write "$CLI_TAG" 1 "$T/cli1.msg" || fail "cannot write a message file"
start_daemon
"$IPCQ" create other || fail "cannot create the queue other"
for rights in send recv both; do
	test_attacked_queue_spoils_nothing_else "$rights" random exit nopurge
	test_attacked_queue_spoils_nothing_else "$rights" zero stop purge
	test_attacked_queue_spoils_nothing_else "$rights" ff kill purge
	test_attacked_queue_spoils_nothing_else "$rights" all exit nopurge
	test_attacked_queue_spoils_nothing_else "$rights" tamper stop nopurge
done
test_restarted_daemon_deletes_an_adopted_wreck
test_restarted_daemon_purges_an_adopted_wreck
"$IPCQ" delete other || fail "cannot delete the queue other"
assert_daemon_sane "at the end"
stop_daemon
assert_no_sanitizer_report "after the daemon's stop"
