#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_deadletter.sh - messages a queue must not deliver: given back
# (ipcq_nack), rejected, delivered max_deliveries times, held by a worker
# killed with max_deliveries 1, expired (a queue's ttl and a handle's):
# each goes to the queue's dead-letter queue intact, or is dropped when it
# has none, and is counted (nacked, dead_lettered, expired, dropped).
# Each case with 100-byte messages, 20000-byte ones and batches of
# 100-byte records (tests/stress/deadletter.c says what each checks).
# Then the CLI: 'ipcq create --ttl --max-deliveries --dead-letter',
# 'ipcq send --ttl', the policy in 'ipcq stat' and --json, refusals, the
# config's keys, and a policy kept across a daemon restart.
. "$(dirname "$0")/lib.sh"

DL="$STRESS/deadletter"

# wait_qstat QUEUE FIELD VALUE: the daemon's sweep acts within a second or two
wait_qstat() {
	i=0
	while [ "$(qstat "$1" "$2")" != "$3" ]; do
		[ $i -lt 60 ] || fail "queue $1: $2 is $(qstat "$1" "$2"), expected $3"
		sleep 0.1
		i=$((i + 1))
	done
}

# dl CASE: the case with each kind of message
dl() {
	for v in small large batch; do
		st=0
		"$DL" "$1" "$v" >"$T/out" 2>"$T/err" || st=$?
		[ "$st" -eq 0 ] || fail "deadletter $1 $v (status $st): $(cat "$T/err")"
	done
}

test_nack_gives_a_message_back_at_once() {
	dl nack
	pass "ipcq_nack gives a view back at once: it comes again flagged, deliveries 2; nothing dead-lettered"
}

test_rejected_messages_go_to_the_dead_letter_queue() {
	dl reject
	pass "rejected views are never delivered again and arrive in the dead-letter queue intact, counted"
}

test_max_deliveries_stops_a_poison_message() {
	dl maxdel
	dl copy
	pass "max_deliveries 2 (views) and 3 (copies, ipcq_nack NULL): never delivered once more, dead-lettered"
}

test_a_message_held_by_killed_workers_is_dead_lettered() {
	dl kill
	pass "max_deliveries 1: what a killed worker held is dead-lettered, not delivered again"
}

test_expired_messages_are_never_delivered() {
	dl ttl
	dl drop
	dl bad
	pass "a queue's ttl and a handle's shorter one: expired messages never delivered, dead-lettered or dropped, counted; bad dead-letter queues refused"
}

test_the_cli_sets_and_shows_the_policy() {
	"$IPCQ" create cli.dead || fail "create cli.dead"
	expect_status 0 "create with a policy" "$IPCQ" create --ttl 300ms --max-deliveries 4 --dead-letter cli.dead cli.q
	assert_eq 300 "$(qstat cli.q ttl_ms)" "ttl_ms of cli.q"
	assert_eq 4 "$(qstat cli.q max_deliveries)" "max_deliveries of cli.q"
	assert_eq cli.dead "$(qstat cli.q dead_letter)" "dead_letter of cli.q"
	"$IPCQ" stat --json cli.q >"$T/json" || fail "stat --json"
	grep -q '"dead_letter": "cli.dead"' "$T/json" || fail "stat --json has no dead_letter: $(cat "$T/json")"
	grep -q '"expired": 0' "$T/json" || fail "stat --json has no expired: $(cat "$T/json")"
	expect_status 4 "a dead-letter queue that does not exist" "$IPCQ" create --dead-letter no.such cli.q2
	grep -q "no.such" "$T/err" || fail "the refusal does not name the queue: $(cat "$T/err")"
	expect_status 2 "a ttl without a unit" "$IPCQ" create --ttl 30 cli.q3
	expect_status 2 "send --ttl 0" "$IPCQ" send --ttl 0 cli.q x

	# a line's own ttl, in a queue without one and without a dead-letter
	# queue: dropped
	"$IPCQ" send --ttl 50ms cli.dead short || fail "send --ttl"
	sleep 0.2
	expect_status 3 "the line's ttl ran out" "$IPCQ" recv -t 0.3 cli.dead
	wait_qstat cli.dead dropped 1
	assert_eq 1 "$(qstat cli.dead expired)" "expired of cli.dead"
	# cli.q's own ttl (300ms) runs out for both lines: dead-lettered
	"$IPCQ" send cli.q kept || fail "send"
	"$IPCQ" send cli.q expires || fail "send"
	sleep 0.5
	expect_status 3 "receive after the ttl" "$IPCQ" recv -t 0.3 cli.q
	wait_qstat cli.dead depth 2
	"$IPCQ" recv -c 2 -t 5 cli.dead >"$T/got" || fail "the expired lines are not in cli.dead"
	printf 'kept\nexpires\n' | cmp -s - "$T/got" || fail "cli.dead holds: $(cat "$T/got")"
	assert_eq 2 "$(qstat cli.q expired)" "expired of cli.q"
	assert_eq 2 "$(qstat cli.q dead_lettered)" "dead_lettered of cli.q"
	pass "ipcq create/send --ttl, --max-deliveries, --dead-letter; stat and --json show them; bad ones refused"
}

test_a_restarted_daemon_keeps_the_policy() {
	stop_daemon
	start_daemon -c "$T/ipcbrokerd.conf"
	assert_eq 300 "$(qstat cli.q ttl_ms)" "ttl_ms after a restart"
	assert_eq 4 "$(qstat cli.q max_deliveries)" "max_deliveries after a restart"
	assert_eq cli.dead "$(qstat cli.q dead_letter)" "dead_letter after a restart"
	pass "a restarted daemon adopts its queues with their policy"
}

test_the_config_sets_the_policy() {
	assert_eq 60000 "$(qstat conf.q ttl_ms)" "ttl_ms of a config queue"
	assert_eq 7 "$(qstat conf.q max_deliveries)" "max_deliveries of a config queue"
	assert_eq conf.dead "$(qstat conf.q dead_letter)" "dead_letter of a config queue"
	# the defaults name a dead-letter queue: every queue takes it but itself
	stop_daemon
	sed 's/^defaults {/defaults {\n\tdead_letter = "conf.dead"/' "$T/ipcbrokerd.conf" >"$T/defaults.conf"
	start_daemon -c "$T/defaults.conf"
	assert_eq "" "$(qstat conf.dead dead_letter)" "dead_letter of the dead-letter queue itself"
	"$IPCQ" create cli.other || fail "create cli.other"
	assert_eq conf.dead "$(qstat cli.other dead_letter)" "the defaults' dead_letter on a created queue"
	assert_eq cli.dead "$(qstat cli.q dead_letter)" "what a queue was created with, beside the defaults'"
	cat >"$T/bad.conf" <<CONF
queue "x" {
	dead_letter = "x"
}
CONF
	expect_status 1 "a queue its own dead-letter queue" "$IPCBROKERD" --check-config -c "$T/bad.conf"
	grep -q "dead_letter names the queue itself" "$T/err" "$T/out" || fail "no reason given: $(cat "$T/err" "$T/out")"
	pass "ttl, max_deliveries and dead_letter from the config, its defaults' too; a queue naming itself refused"
}

cat >"$T/ipcbrokerd.conf" <<CONF
defaults {
	delivery = "at-least-once"
	ring_size = "8M"
	max_payload = "64K"
}
queue "conf.dead" {
}
queue "conf.q" {
	ttl = "1m"
	max_deliveries = 7
	dead_letter = "conf.dead"
}
CONF
start_daemon -c "$T/ipcbrokerd.conf"
test_nack_gives_a_message_back_at_once
test_rejected_messages_go_to_the_dead_letter_queue
test_max_deliveries_stops_a_poison_message
test_a_message_held_by_killed_workers_is_dead_lettered
test_expired_messages_are_never_delivered
test_the_cli_sets_and_shows_the_policy
test_a_restarted_daemon_keeps_the_policy
test_the_config_sets_the_policy
stop_daemon
