#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_acktimeout.sh - a receiver that lives but holds a message longer than
# its queue's ack_timeout loses it: the daemon's sweep delivers it again,
# flagged redelivered, to another receiver, and the late holder's release
# or ack changes nothing; with ack_timeout = "0", and in an at-most-once
# queue, a held message is never taken back; a reload gives a queue a new
# ack_timeout.  tests/stress/acktimeout.c says what each case checks.
. "$(dirname "$0")/lib.sh"

ACKTIMEOUT="$STRESS/acktimeout"

# acktimeout CASE QUEUE API
acktimeout() {
	st=0
	"$ACKTIMEOUT" "$@" >"$T/out" 2>"$T/err" || st=$?
	[ "$st" -eq 0 ] || fail "acktimeout $* (status $st): $(cat "$T/err")"
}

# log_count TEXT: lines of the daemon's log holding TEXT
log_count() {
	grep -cF "$1" "$DLOG" || true
}

test_a_view_held_past_ack_timeout_goes_to_another_receiver() {
	before=$(log_count "queue short: 1 leases older than ack_timeout taken back")
	acktimeout takeback short view
	after=$(log_count "queue short: 1 leases older than ack_timeout taken back")
	[ "$after" -eq $((before + 1)) ] || fail "the daemon logged $((after - before)) take-backs, not one"
	pass "a view held past ack_timeout comes back redelivered (deliveries 2) within 3 s; the late release frees nothing; logged once ($(cat "$T/out"))"
}

test_a_copy_held_past_ack_timeout_goes_to_another_receiver() {
	acktimeout takeback short copy
	pass "a copy not acknowledged past ack_timeout comes back; the late ipcq_ack frees nothing ($(cat "$T/out"))"
}

test_ack_timeout_0_never_takes_back() {
	acktimeout keep never view
	pass "ack_timeout = \"0\": a message held 3.5 s is not delivered again"
}

test_at_most_once_ignores_ack_timeout() {
	acktimeout keep amo view
	pass "at-most-once: a message held 3.5 s past an ack_timeout of 1 s is not delivered again"
}

test_a_reload_gives_a_queue_its_new_ack_timeout() {
	sed 's/ack_timeout = "0"/ack_timeout = "1s"/' "$T/ipcbrokerd.conf" >"$T/reloaded.conf"
	cp "$T/reloaded.conf" "$T/ipcbrokerd.conf"
	kill -HUP "$DPID"
	i=0
	until grep -qF 'queue never: ack_timeout 1s (was 0 (none))' "$DLOG"; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "the reload did not give queue never its new ack_timeout"
		sleep 0.05
	done
	acktimeout takeback never view
	pass "after a reload to ack_timeout = \"1s\", a held message is taken back ($(cat "$T/out"))"
}

cat >"$T/ipcbrokerd.conf" <<CONF
defaults {
	max_msgs = 10
	msg_size = 512
	ring_size = "1M"
	max_payload = "64K"
}
queue "short" {
	delivery = "at-least-once"
	ack_timeout = "1s"
}
queue "never" {
	delivery = "at-least-once"
	ack_timeout = "0"
}
queue "amo" {
	delivery = "at-most-once"
	ack_timeout = "1s"
}
CONF
start_daemon -c "$T/ipcbrokerd.conf"
test_a_view_held_past_ack_timeout_goes_to_another_receiver
test_a_copy_held_past_ack_timeout_goes_to_another_receiver
test_ack_timeout_0_never_takes_back
test_at_most_once_ignores_ack_timeout
test_a_reload_gives_a_queue_its_new_ack_timeout
stop_daemon
