#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_runas.sh - started as root with --run-as nobody, the daemon becomes
# nobody once its socket listens and keeps CAP_KILL alone: clients create,
# send and receive, a killed client's message is delivered again, a
# listener of another uid is still signalled, and queues are deleted;
# every object and file is nobody's.  Queues a root daemon made before are
# taken over with their messages.  In private IPC and mount namespaces,
# with a /dev/shm of the test's own.
PRIVNS_FLAGS="--mount --ipc" . "$(dirname "$0")/privns.sh"
privns_mount_private /dev/shm
. "$(dirname "$0")/lib.sh"
need_nobody
nobody_mq_budget shared
mount -t tmpfs -o mode=1777 ipcq-test-shm /dev/shm || fail "cannot mount a private /dev/shm"
RC="$STRESS/ringcrash"
NOBODY_UID=$(id -u nobody)
HELD=

# a directory the daemon makes, and so may give to nobody
SOCK="$T/run/ctl.sock"
export IPCQ_SOCKET="$SOCK"

test_cleanup() {
	for p in $HELD; do
		kill -KILL "$p" 2>/dev/null || true
	done
}

cat >"$T/runas.conf" <<EOF
defaults {
	ring_size = "1M"
	max_payload = "64K"
}
queue "alo" {
	delivery = "at-least-once"
}
EOF

# wait_until WHAT COMMAND...: until COMMAND succeeds (5 s)
wait_until() {
	what=$1
	shift
	i=0
	until "$@"; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "$what"
		sleep 0.05
	done
}

owner_of() { stat -c %u "$1"; }

test_queue_made_as_root_is_taken_over() {
	start_daemon -c "$T/runas.conf"
	"$IPCQ" create old
	"$IPCQ" send old from-the-root-daemon
	for f in /dev/shm/ipcq."$NS".old.*; do
		assert_eq 0 "$(owner_of "$f")" "owner of $f under the root daemon"
	done
	stop_daemon
	# the directory was root's daemon's: who runs the next one is told to take it
	chown nobody "$T/run"
	start_daemon -c "$T/runas.conf" --run-as nobody
	assert_eq from-the-root-daemon "$("$IPCQ" recv -t 2 old)" "message the root daemon left in 'old'"
	for f in /dev/shm/ipcq."$NS".old.*; do
		assert_eq "$NOBODY_UID" "$(owner_of "$f")" "owner of $f after run_as"
	done
	grep -q "taken over from uid 0" "$DLOG" || fail "the log does not say the objects were taken over"
	pass "a queue the daemon made as root is taken over, message included, by its run_as successor"
}

test_daemon_runs_as_nobody_with_cap_kill_alone() {
	status=/proc/$DPID/status
	uids=$(sed -n 's/^Uid:[[:space:]]*//p' "$status" | tr -s '\t ' ' ')
	gids=$(sed -n 's/^Gid:[[:space:]]*//p' "$status" | tr -s '\t ' ' ')
	assert_eq "$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID" "$uids" "real, effective, saved, fs uid of the daemon"
	g=$(getent passwd nobody | cut -d: -f4)
	assert_eq "$g $g $g $g" "$gids" "gids of the daemon"
	assert_eq "$g" "$(sed -n 's/^Groups:[[:space:]]*//p' "$status" | tr -d ' \t')" "supplementary groups"
	# CAP_KILL is bit 5
	assert_eq 0000000000000020 "$(sed -n 's/^CapEff:[[:space:]]*//p' "$status")" "effective capabilities"
	assert_eq 0000000000000020 "$(sed -n 's/^CapPrm:[[:space:]]*//p' "$status")" "permitted capabilities"
	for f in "$T/run" "$T/run/$NS.queues" "$T/run/$NS.holders" "$SOCK.lock"; do
		assert_eq "$NOBODY_UID" "$(owner_of "$f")" "owner of $f"
	done
	pass "the daemon runs as nobody:$g, no other group, with CAP_KILL alone; its files are nobody's"
}

test_clients_create_send_and_receive() {
	"$IPCQ" create fresh
	"$IPCQ" send fresh hello
	head -c 40000 /dev/urandom >"$T/bulk"
	"$IPCQ" send -f "$T/bulk" fresh
	assert_eq hello "$("$IPCQ" recv -t 2 fresh)" "inline message through a queue of nobody's daemon"
	"$IPCQ" recv -N -t 2 fresh >"$T/got"
	cmp -s "$T/bulk" "$T/got" || fail "40000 bytes through the ring came back different"
	as_nobody $IPCQ_NOBODY send fresh from-nobody
	assert_eq from-nobody "$("$IPCQ" recv -t 2 fresh)" "message nobody sent"
	for f in /dev/shm/ipcq."$NS".fresh.*; do
		assert_eq "$NOBODY_UID" "$(owner_of "$f")" "owner of $f"
		assert_eq 600 "$(stat -c %a "$f")" "mode of $f"
	done
	pass "root's and nobody's clients create, send and receive (inline and ring); objects are nobody's, 0600"
}

test_killed_client_is_cleaned_up() {
	"$RC" send alo 30000 1 || fail "send to 'alo'"
	"$RC" hold-view alo >"$T/view.out" &
	vpid=$!
	HELD="$HELD $vpid"
	wait_until "the holder did not take the message" grep -q "^ready 30000" "$T/view.out"
	assert_eq 0 "$(qstat alo depth)" "depth of 'alo' while a root client holds its message"
	kill -KILL "$vpid"
	wait "$vpid" 2>/dev/null || true
	wait_until "the message of the killed client was not delivered again" \
		sh -c "[ \"\$(\"$IPCQ\" stat alo | sed -n 's/^redelivered: //p')\" -ge 1 ]"
	"$RC" check alo 30000 1 2000 || fail "the message delivered again is not intact"
	pass "a root client killed holding a message: the daemon (nobody) finds it and delivers the message again"
}

test_listener_of_another_uid_is_signalled() {
	"$IPCQ" create wq
	"$IPCQ" watch -c 1 wq >"$T/watch.out" 2>"$T/watch.err" &
	w=$!
	HELD="$HELD $w"
	wait_until "ipcq watch did not register" \
		sh -c "[ \"\$(\"$IPCQ\" stat wq | sed -n 's/^listeners: //p')\" = 1 ]"
	"$IPCQ" send wq one
	st=0
	wait "$w" || st=$?
	assert_eq 0 "$st" "exit status of root's ipcq watch -c 1 ($(cat "$T/watch.err"))"
	grep -q 'wq' "$T/watch.out" || fail "ipcq watch printed no notification: $(cat "$T/watch.out")"
	pass "root's listener is signalled by the daemon running as nobody (CAP_KILL)"
}

test_queues_are_deleted() {
	for q in old fresh alo wq; do
		"$IPCQ" delete "$q"
	done
	left=$(ls /dev/shm | grep -c "^ipcq\.$NS\." || true)
	assert_eq 0 "$left" "objects of the namespace left in /dev/shm"
	"$IPCQ" list >"$T/list"
	[ ! -s "$T/list" ] || fail "queues left: $(cat "$T/list")"
	pass "nobody's daemon deletes queues, its own and those it took over, and leaves nothing behind"
}

test_run_as_needs_root() {
	stop_daemon
	mkdir "$T/nb"
	chown nobody "$T/nb"
	st=0
	as_nobody $IPCBROKERD_NOBODY --namespace "$NS" --socket "$T/nb/ctl.sock" --run-as daemon >"$T/other.log" 2>&1 ||
		st=$?
	assert_eq 1 "$st" "exit status of a daemon started as nobody with --run-as daemon"
	grep -q "needs the daemon to be started as root" "$T/other.log" || fail "no reason given: $(cat "$T/other.log")"
	pass "--run-as another user without root fails and says why"
}

test_queue_made_as_root_is_taken_over
test_daemon_runs_as_nobody_with_cap_kill_alone
test_clients_create_send_and_receive
test_killed_client_is_cleaned_up
test_listener_of_another_uid_is_signalled
test_queues_are_deleted
test_run_as_needs_root
