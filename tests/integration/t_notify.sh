#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_notify.sh - signal notification (ipcq_notify, ipcq watch): the daemon
# signals every listener once per empty -> non-empty transition, with
# si_value the queue id, and not while the queue stays non-empty; a
# listener that registers on a non-empty queue is signalled at once; dead
# listeners are dropped (through their pidfd when their connection stays
# open) and the others go on being signalled; closing the handle ends a
# registration; a process that may not receive is refused (EACCES), as
# are signals that cannot carry notifications and listeners past the
# bound; a transition the kernel does not report (a client holds the
# mq's notification) is told by the sweep; a purged queue signals again
# at its next message; a deleted queue's listeners get one last signal;
# ipcq watch prints a line per notification.
. "$(dirname "$0")/lib.sh"

LISTEN="$STRESS/notifylisten"
[ -x "$LISTEN" ] || fail "$LISTEN is not built (make check builds it)"
HELD=

test_cleanup() {
	for p in $HELD; do
		kill -KILL "$p" 2>/dev/null || true
	done
}

if [ "$(id -u)" -eq 0 ]; then
	need_nobody
	LISTEN_NOBODY=$(nobody_prog "$LISTEN")
fi

cat >"$T/notify.conf" <<EOF
defaults {
	ring_size = "1M"
	max_payload = "256K"
}
queue "sendonly" {
	allow_send = { "user:nobody" }
	allow_recv = { "uid:0" }
}
EOF

# count FILE PATTERN: lines of FILE matching PATTERN (0 if no FILE)
count() {
	grep -c -- "$2" "$1" 2>/dev/null || [ $? -eq 1 ] || echo 0
}

# wait_for FILE PATTERN COUNT [TENTHS]: until FILE has COUNT lines
# matching PATTERN (default: 5 s)
wait_for() {
	waited=0
	while [ "$(count "$1" "$2")" -lt "$3" ]; do
		[ $waited -lt "${4:-50}" ] ||
			fail "$1: fewer than $3 lines matching '$2' after $((${4:-50} / 10)) s: $(tail -n 5 "$1" 2>/dev/null)"
		sleep 0.1
		waited=$((waited + 1))
	done
}

signals() {
	count "$1" '^signal '
}

# wait_listeners QUEUE N: until 'ipcq stat' shows N listeners (5 s)
wait_listeners() {
	waited=0
	while [ "$(qstat "$1" listeners)" != "$2" ]; do
		[ $waited -lt 50 ] || fail "queue $1 has $(qstat "$1" listeners) listeners after 5 s, not $2"
		sleep 0.1
		waited=$((waited + 1))
	done
}

# listen NAME QUEUE [OPTIONS]: a listener in the background, its output
# in $T/NAME.out, registered when this returns; its pid in $LISTENER
listen() {
	name=$1 queue=$2
	shift 2
	"$LISTEN" "$@" "$queue" 20 >"$T/$name.out" 2>&1 &
	LISTENER=$!
	HELD="$HELD $LISTENER"
	wait_for "$T/$name.out" '^registered ' 1
}

test_fan_out_to_three_listeners_once_per_transition() {
	"$IPCQ" create fan
	id=$(qstat fan id)
	for i in 1 2 3; do
		listen "fan$i" fan
		grep -q "^registered id=$id .* pending=0$" "$T/fan$i.out" ||
			fail "listener $i on the empty queue: $(cat "$T/fan$i.out")"
	done
	assert_eq 3 "$(qstat fan listeners)" "listeners of 'fan' in ipcq stat"
	"$IPCQ" send fan a
	for i in 1 2 3; do
		wait_for "$T/fan$i.out" '^signal ' 1
		sed -n 's/^signal [0-9]* //p' "$T/fan$i.out" >"$T/got"
		assert_eq "value $id code -1" "$(cat "$T/got")" "listener $i's signal (si_value, si_code SI_QUEUE)"
	done
	# more messages while it is not empty, across a sweep: no signal
	"$IPCQ" send fan b c
	sleep 1.5
	for i in 1 2 3; do
		assert_eq 1 "$(signals "$T/fan$i.out")" "signals to listener $i while the queue stayed non-empty"
	done
	"$IPCQ" recv -c 3 -t 2 fan >/dev/null
	"$IPCQ" send fan d
	for i in 1 2 3; do
		wait_for "$T/fan$i.out" '^signal ' 2
	done
	sleep 0.5
	for i in 1 2 3; do
		assert_eq 2 "$(signals "$T/fan$i.out")" "signals to listener $i after two transitions"
	done
	"$IPCQ" delete fan
	pass "3 listeners get one signal each per empty -> non-empty transition (si_value $id, SI_QUEUE), none while it stays non-empty"
}

test_registering_on_a_non_empty_queue_signals_at_once() {
	"$IPCQ" create busy
	"$IPCQ" send busy x y
	listen busy busy
	grep -q ' pending=1$' "$T/busy.out" ||
		fail "the signal was not pending when ipcq_notify returned: $(cat "$T/busy.out")"
	wait_for "$T/busy.out" '^signal ' 1
	sleep 1.2
	assert_eq 1 "$(signals "$T/busy.out")" "signals after registering on a queue that stays non-empty"
	"$IPCQ" delete busy
	pass "a listener registering on a non-empty queue has its signal before ipcq_notify returns, and only that one"
}

test_dead_listeners_are_dropped() {
	"$IPCQ" create dead
	listen kept dead -f
	kept=$LISTENER
	wait_for "$T/kept.out" '^child ' 1
	child=$(sed -n 's/^child //p' "$T/kept.out")
	HELD="$HELD $child"
	listen plain dead
	plain=$LISTENER
	listen alive dead
	assert_eq 3 "$(qstat dead listeners)" "listeners of 'dead'"
	# its connection stays open (the child holds it): only its pidfd tells
	kill -KILL "$kept"
	wait_listeners dead 2
	kill -KILL "$plain"
	wait_listeners dead 1
	"$IPCQ" send dead z
	wait_for "$T/alive.out" '^signal ' 1
	daemon_alive || fail "the daemon died"
	kill -KILL "$child"
	"$IPCQ" delete dead
	pass "listeners killed with -9 are dropped (by pidfd, and by connection), the daemon signals the one left"
}

test_closing_the_handle_ends_the_registration() {
	"$IPCQ" create closed
	listen closed closed -C
	wait_listeners closed 0
	"$IPCQ" send closed x
	sleep 1.2
	assert_eq 0 "$(signals "$T/closed.out")" "signals after ipcq_close"
	"$IPCQ" delete closed
	pass "ipcq_close ends the handle's registration: no signal afterwards"
}

# ipcq_disconnect with a registered handle still open: the registration
# ends with the connection, the handle's calls that need the daemon say
# so, and its ipcq_close afterwards touches nothing freed (the sanitizer
# pass would report it)
test_disconnect_before_close_ends_the_registration() {
	"$IPCQ" create disc
	listen disc disc -D
	wait_listeners disc 0
	grep -q "^notify after disconnect: .*connected" "$T/disc.out" ||
		fail "ipcq_notify after ipcq_disconnect did not fail with ENOTCONN: $(cat "$T/disc.out")"
	"$IPCQ" send disc x
	sleep 1.2
	assert_eq 0 "$(signals "$T/disc.out")" "signals after ipcq_disconnect"
	kill -TERM "$LISTENER"
	st=0
	wait "$LISTENER" || st=$?
	[ "$st" -eq 0 ] || fail "the listener closing its handle after ipcq_disconnect exited with $st: $(cat "$T/disc.out")"
	"$IPCQ" delete disc
	pass "ipcq_disconnect before ipcq_close: registration ended, ENOTCONN, the handle closed cleanly"
}

# The daemon restarts under a listener: the library connects again by
# itself at the next request, which registers the listener with the new
# daemon, whose signal then comes.
test_registering_again_after_a_restart() {
	"$IPCQ" create again
	listen again again -R
	stop_daemon KILL
	start_daemon -v -c "$T/notify.conf"
	kill -USR1 "$LISTENER"
	wait_for "$T/again.out" '^again: ' 1
	grep -qx "again: ok" "$T/again.out" ||
		fail "registering again through the same client after a restart failed: $(cat "$T/again.out")"
	wait_listeners again 1
	"$IPCQ" send again x
	wait_for "$T/again.out" '^signal ' 1
	kill -TERM "$LISTENER"
	"$IPCQ" delete again
	pass "after a daemon restart the same client registers again (the library connects again) and is signalled"
}

test_unauthorized_registration_is_refused() {
	if [ -z "${LISTEN_NOBODY:-}" ]; then
		echo "skip: not root, cannot run as nobody"
		return
	fi
	st=0
	as_nobody $LISTEN_NOBODY -s sendonly 1 >"$T/out" 2>&1 || st=$?
	[ "$st" -eq 1 ] || fail "nobody's registration on a queue it may only send to exited $st: $(cat "$T/out")"
	grep -q "^error -13 .*may not receive from queue 'sendonly'" "$T/out" ||
		fail "nobody's registration was not refused with EACCES and a reason: $(cat "$T/out")"
	expect_status 5 "ipcq watch of 'sendonly' as nobody" as_nobody $IPCQ_NOBODY watch -t 1 sendonly
	grep -qi "may not" "$T/err" || fail "ipcq watch does not say why: $(cat "$T/err")"
	pass "a process that may only send is refused registration with EACCES and a reason (ipcq watch: exit 5)"
}

test_bad_signals_and_too_many_listeners_are_refused() {
	"$IPCQ" create bounded
	for sig in 9 19 32; do
		st=0
		"$LISTEN" -S "$sig" bounded 1 >"$T/out" 2>&1 || st=$?
		[ "$st" -eq 1 ] && grep -q "^error -22 signal $sig cannot carry notifications" "$T/out" ||
			fail "signal $sig was not refused with EINVAL and a reason: $(cat "$T/out")"
	done
	"$LISTEN" -n 65 bounded 1 >"$T/out" 2>&1 || fail "notifylisten -n 65 failed: $(cat "$T/out")"
	grep -q '^registered 64$' "$T/out" || fail "not 64 listeners registered: $(cat "$T/out")"
	grep -q '^error -87 .*64 listeners' "$T/out" || fail "the 65th listener was not refused with EUSERS: $(cat "$T/out")"
	"$IPCQ" delete bounded
	pass "SIGKILL, SIGSTOP and 32 are refused (EINVAL); a 65th listener is refused (EUSERS) with a reason"
}

test_listeners_per_user_are_bounded() {
	if [ -z "${LISTEN_NOBODY:-}" ]; then
		echo "skip: not root, cannot run as nobody"
		return
	fi
	for i in 1 2 3 4 5; do
		"$IPCQ" create "user$i"
	done
	# 52 connections on 5 queues: 260 registrations, 52 a queue
	as_nobody $LISTEN_NOBODY -n 52 user1,user2,user3,user4,user5 1 >"$T/out" 2>&1 ||
		fail "notifylisten -n 52 as nobody failed: $(cat "$T/out")"
	grep -q '^registered 256$' "$T/out" || fail "not 256 listeners registered for nobody: $(cat "$T/out")"
	grep -q '^error -87 uid [0-9]* holds 256 listeners' "$T/out" ||
		fail "nobody's 257th listener was not refused with EUSERS: $(cat "$T/out")"
	for i in 1 2 3 4 5; do
		"$IPCQ" delete "user$i"
	done
	pass "a user's 257th listener over several queues is refused (EUSERS) with a reason"
}

test_an_unreported_transition_is_told_by_the_sweep() {
	"$IPCQ" create squat
	"$LISTEN" -q squat 20 >"$T/squatter.out" 2>&1 &
	HELD="$HELD $!"
	wait_for "$T/squatter.out" '^squatting' 1
	listen squat squat
	wait_for "$DLOG" "queue squat: process [0-9]* holds its mq notification" 1
	# the kernel tells the squatter, not the daemon: the sweep must see it
	"$IPCQ" send squat x
	wait_for "$T/squat.out" '^signal ' 1 40
	sleep 1.2
	assert_eq 1 "$(signals "$T/squat.out")" "signals for one transition told by the sweep"
	"$IPCQ" delete squat
	pass "with a client holding the mq's notification, the daemon warns and its sweep tells the transition once"
}

test_a_purged_queue_signals_again_when_a_message_comes() {
	"$IPCQ" create purged
	listen purged purged
	# a sender that has the queue open already: no open between the purge
	# and its next message, which would make the daemon look
	mkfifo "$T/lines"
	"$IPCQ" send purged <"$T/lines" &
	sender=$!
	HELD="$HELD $sender"
	exec 3>"$T/lines"
	echo x >&3
	wait_for "$T/purged.out" '^signal ' 1
	"$IPCQ" purge purged
	# at once, before a sweep: the emptying was the daemon's, which no
	# receiver counted
	echo z >&3
	wait_for "$T/purged.out" '^signal ' 2
	exec 3>&-
	wait "$sender" || fail "ipcq send to 'purged' failed"
	assert_eq 1 "$(qstat purged listeners)" "listeners of 'purged' after the purge"
	"$IPCQ" delete purged
	pass "after a purge the next message signals the listener again, which stays registered"
}

test_deleting_the_queue_signals_its_listeners_once() {
	"$IPCQ" create gone
	listen gone gone
	"$IPCQ" delete gone
	wait_for "$T/gone.out" '^signal ' 1
	pass "deleting a queue gives its listeners one last signal and drops them"
}

test_watch_prints_a_line_per_notification() {
	"$IPCQ" create wq
	"$IPCQ" watch -c 2 wq >"$T/watch.out" 2>"$T/watch.err" &
	w=$!
	HELD="$HELD $w"
	wait_listeners wq 1
	"$IPCQ" send wq one
	wait_for "$T/watch.out" 'wq' 1
	"$IPCQ" recv -t 2 wq >/dev/null
	"$IPCQ" send wq two
	st=0
	wait "$w" || st=$?
	assert_eq 0 "$st" "exit status of ipcq watch -c 2"
	assert_eq 2 "$(wc -l <"$T/watch.out" | tr -d ' ')" "lines ipcq watch -c 2 printed"
	grep -Eqv '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}[+-][0-9]{2}:[0-9]{2}	wq	1$' \
		"$T/watch.out" && fail "ipcq watch printed something else than 'TIME<tab>wq<tab>1': $(cat "$T/watch.out")"
	"$IPCQ" recv -t 2 wq >/dev/null
	expect_status 3 "ipcq watch -t 0.5 on an idle queue" "$IPCQ" watch -t 0.5 wq
	[ ! -s "$T/out" ] || fail "ipcq watch printed on an idle queue: $(cat "$T/out")"
	"$IPCQ" delete wq
	pass "ipcq watch -c 2 prints two lines (time, queue, depth) and exits 0; -t exits 3 when nothing comes"
}

start_daemon -v -c "$T/notify.conf"
test_fan_out_to_three_listeners_once_per_transition
test_registering_on_a_non_empty_queue_signals_at_once
test_dead_listeners_are_dropped
test_closing_the_handle_ends_the_registration
test_disconnect_before_close_ends_the_registration
test_registering_again_after_a_restart
test_unauthorized_registration_is_refused
test_bad_signals_and_too_many_listeners_are_refused
test_listeners_per_user_are_bounded
test_an_unreported_transition_is_told_by_the_sweep
test_a_purged_queue_signals_again_when_a_message_comes
test_deleting_the_queue_signals_its_listeners_once
test_watch_prints_a_line_per_notification
test_cleanup
HELD=
stop_daemon
