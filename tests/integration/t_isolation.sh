#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_isolation.sh - senders of one queue can neither read nor spoil each
# other's messages (senders = isolated, the default): each sending process
# writes a lane of its own (daemon/lane.c).
#  - read: root sends messages marked with a random token and leaves them
#    waiting; nobody, allowed to send but not to receive, opens the queue,
#    sends, and looks for the token in every byte it can read (its shared
#    mappings, and every object of the namespace it can open by name).
#  - spoil: root sends messages again; nobody, a hostile sender, writes
#    random bytes, 0xff and zeros over everything it can write (its lane,
#    the queue's shared control memory) and floods the window with forged
#    descriptors of every lane; root then receives every message of its
#    own, each once and intact, and the queue is not quarantined.
# Each is run on a queue whose senders share the ring too, where it must
# find the token / the damage: the probes can fail.
. "$(dirname "$0")/lib.sh"

need_nobody
ISO="$STRESS/isolation"
ISO_NOBODY=$(nobody_prog "$ISO")
N=40
# a third user, without a name: setpriv takes a bare uid
OTHER_UID=4242
command -v setpriv >/dev/null 2>&1 || { echo "SKIP: no setpriv to run a command as uid $OTHER_UID"; exit 77; }
as_other() { setpriv --reuid=$OTHER_UID --regid=$OTHER_UID --clear-groups "$@"; }

cat >"$T/iso.conf" <<CONF
auto_create = false
queue "iso" {
	senders = "isolated"
	allow_send = { "uid:0", "user:nobody" }
	allow_recv = { "uid:0" }
}
queue "iso2" {
	senders = "isolated"
	allow_send = { "uid:0", "user:nobody", "uid:$OTHER_UID" }
	allow_recv = { "uid:0" }
}
queue "shared" {
	senders = "shared"
	allow_send = { "uid:0", "user:nobody" }
	allow_recv = { "uid:0" }
}
CONF

token() {
	printf 'tok%s' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
}

# spy_on QUEUE: root leaves $N messages marked with a fresh token in
# QUEUE, and nobody, a sender of it, looks for the token in all it can
# read; st is the look's exit status (0: not found, 1: found).
spy_on() {
	tok=$(token)
	"$ISO" secret "$SOCK" "$1" "$tok" $N >/dev/null || fail "root's messages into $1"
	st=0
	as_nobody $ISO_NOBODY spy "$SOCK" "$1" "$tok" "ipcq.$NS." >"$T/spy" 2>&1 || st=$?
	sed 's/^/  /' "$T/spy"
}

test_a_sender_cannot_read_another_senders_messages() {
	spy_on iso
	assert_eq 0 "$st" "exit of nobody's look for root's token in iso (0: not found)"
	assert_eq $((N + 1)) "$(qstat iso depth)" "depth of iso: root's messages and nobody's one"
	pass "senders isolated: a send-only client of another uid finds none of a sender's waiting bytes"
}

test_shared_senders_can_read_each_other() {
	spy_on shared
	assert_eq 1 "$st" "exit of nobody's look for root's token in shared (1: found)"
	pass "senders shared: the same look finds another sender's bytes (the probe works)"
}

test_a_hostile_sender_cannot_spoil_another_senders_messages() {
	"$IPCQ" purge iso >/dev/null
	tok=$(token)
	"$ISO" secret "$SOCK" iso "$tok" $N >/dev/null || fail "root's messages into iso"
	as_nobody $ISO_NOBODY wreck "$SOCK" iso 6 >"$T/wreck" 2>&1 || fail "nobody's wreck: $(cat "$T/wreck")"
	sed 's/^/  /' "$T/wreck"
	st=0
	"$ISO" check "$SOCK" iso "$tok" $N >"$T/check" 2>&1 || st=$?
	sed 's/^/  /' "$T/check"
	assert_eq 0 "$st" "root's messages after nobody wrecked what it could"
	assert_eq 0 "$(qstat iso quarantined)" "iso quarantined"
	daemon_alive || fail "the daemon died"
	# the queue goes on: a message sent now arrives
	"$IPCQ" send iso after || fail "a send after the wreck"
	assert_eq after "$("$IPCQ" recv -c 0 -t 1 iso | grep -a '^after$')" "the message sent after the wreck"
	pass "senders isolated: a sender that writes garbage over all it can and forges descriptors spoils none of another's $N messages"
}

# A lane goes to another user only once no process it was given to
# lives: nobody's sender closes its connection (the daemon sees no client
# of nobody's) and keeps its mapping while another user sends.
test_a_lane_stays_its_senders_while_they_live() {
	tok=$(token)
	mkfifo "$T/go"
	as_nobody $ISO_NOBODY hold "$SOCK" iso2 "$tok" <"$T/go" >"$T/hold" 2>&1 &
	holder=$!
	exec 5>"$T/go"
	for i in $(seq 50); do grep -q ready "$T/hold" && break; sleep 0.1; done
	grep -q ready "$T/hold" || fail "nobody's holding sender did not start: $(cat "$T/hold")"
	assert_eq hold "$("$IPCQ" recv -t 2 iso2)" "nobody's message"
	as_other $ISO_NOBODY secret "$SOCK" iso2 "$tok" 5 >/dev/null ||
		fail "uid $OTHER_UID's messages into iso2"
	echo go >&5
	exec 5>&-
	st=0
	wait "$holder" || st=$?
	sed 's/^/  /' "$T/hold"
	assert_eq 0 "$st" "exit of nobody's look, after closing its connection, for uid $OTHER_UID's token (0: not found)"
	assert_eq 5 "$("$IPCQ" recv -c 0 -t 1 iso2 | wc -l | tr -d ' ')" "uid $OTHER_UID's messages received"
	pass "senders isolated: a lane is no other user's while a process it was given to lives, connected or not"
}

test_shared_senders_can_spoil_each_other() {
	"$IPCQ" purge shared >/dev/null
	tok=$(token)
	"$ISO" secret "$SOCK" shared "$tok" $N >/dev/null || fail "root's messages into shared"
	as_nobody $ISO_NOBODY wreck "$SOCK" shared 6 >/dev/null 2>&1 || true
	st=0
	"$ISO" check "$SOCK" shared "$tok" $N >"$T/check" 2>&1 || st=$?
	sed 's/^/  /' "$T/check"
	[ "$st" -ne 0 ] || fail "root's messages in shared came through nobody's wreck intact: the probe cannot fail"
	pass "senders shared: the same wreck spoils another sender's messages (the probe works)"
}

start_daemon -c "$T/iso.conf"
test_a_sender_cannot_read_another_senders_messages
test_shared_senders_can_read_each_other
test_a_hostile_sender_cannot_spoil_another_senders_messages
test_a_lane_stays_its_senders_while_they_live
test_shared_senders_can_spoil_each_other
stop_daemon
