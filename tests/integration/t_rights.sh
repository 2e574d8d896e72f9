#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_rights.sh - rights hold in shared memory (tests/stress/rights.c): a
# client without send rights can never make a message appear.  A
# receive-only client maps payload memory read-only (a store is SIGSEGV,
# mprotect is refused), senders map it read-write, the meta page is
# read-only to all; a message a receive-only client forges in its own
# receive slot before it dies is never delivered, in both delivery modes;
# its mq descriptor refuses a send; and an at-least-once queue carries
# even small messages through the ring, so nothing in a receive slot is
# ever content; a ring message whose receiver died between mq_receive and
# its take comes back at once, from the receiver's buffers.  The clients run as nobody when they can, so that they
# cannot open the daemon's objects by name.
# Every case runs; the test fails at the end naming those that failed.
. "$(dirname "$0")/lib.sh"

R="$STRESS/rights"
RUN="$R"
if [ "$(id -u)" -eq 0 ] && (need_nobody >/dev/null 2>&1); then
	need_nobody
	RUN="as_nobody $(nobody_prog "$R")"
fi
FAILED=

# rights MODE QUEUE CASE: run a mode of rights.c; a broken contract is
# noted and the next case runs, a test that could not run fails at once
rights() {
	st=0
	$RUN "$1" "$SOCK" "$2" >"$T/out" 2>"$T/err" || st=$?
	if grep -qE 'runtime error|AddressSanitizer|LeakSanitizer' "$T/err"; then
		fail "$3: a sanitizer report from rights $1: $(cat "$T/err")"
	fi
	case $st in
	0) pass "$3: $(cat "$T/out")" ;;
	1)
		echo "FAIL: $3:" >&2
		cat "$T/err" >&2
		FAILED="$FAILED${FAILED:+, }$3"
		;;
	*) fail "$3: rights $1 could not run (exit $st): $(cat "$T/err")" ;;
	esac
}

test_receive_only_client_maps_payload_read_only() {
	rights maps amo "case 1 (mappings)"
}

test_forged_slot_message_is_never_delivered() {
	for q in amo alo; do
		rights forge "$q" "case 2 (slot forged by a dying receiver, $(qstat "$q" delivery))"
	done
}

test_receive_only_mq_descriptor_refuses_a_send() {
	rights mq amo "case 3 (mq send from a receive-only handle)"
}

test_receiver_killed_mid_receive_loses_nothing() {
	for q in amo alo; do
		rights midreceive "$q" "case 5 (a receiver killed between mq_receive and its take, $(qstat "$q" delivery))"
	done
}

test_hostile_receive_buffers_are_refused() {
	rights badbufs amo "case 7 (receive buffers a client forges)"
}

test_receiving_handles_of_a_connection_are_bounded() {
	# small rings: 256 handles of the default 64 MiB would not fit in
	# a 32-bit client's address space
	for i in 1 2 3; do "$IPCQ" create --ring-size 1M --max-payload 512K "rb$i"; done
	rights rbufs rb "case 6 (receiving handles a connection may hold)"
	for i in 1 2 3; do "$IPCQ" delete "rb$i"; done
}

test_at_least_once_sends_everything_through_the_ring() {
	rights ring-only alo "case 4 (at-least-once: small messages through the ring)"
}

cat >"$T/rights.conf" <<CONF
queue "amo" {
	delivery = "at-most-once"
	ring_size = "1M"
	max_payload = "512K"
}
queue "alo" {
	delivery = "at-least-once"
	ring_size = "1M"
	max_payload = "512K"
}
CONF
start_daemon -c "$T/rights.conf"
assert_eq at-most-once "$(qstat amo delivery)" "delivery of amo"
assert_eq at-least-once "$(qstat alo delivery)" "delivery of alo"
test_receive_only_client_maps_payload_read_only
test_forged_slot_message_is_never_delivered
test_receive_only_mq_descriptor_refuses_a_send
test_at_least_once_sends_everything_through_the_ring
test_receiver_killed_mid_receive_loses_nothing
test_receiving_handles_of_a_connection_are_bounded
test_hostile_receive_buffers_are_refused
"$IPCQ" delete amo
"$IPCQ" delete alo
stop_daemon
[ -z "$FAILED" ] || fail "rights do not hold in shared memory: $FAILED"
