#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_cli.sh - round trips through the ipcq command line: the ways send reads
# messages and recv writes them, the admin commands, and the exit statuses
# of ipcq(1).  Each check uses a queue of its own.
. "$(dirname "$0")/lib.sh"

# expect_status STATUS WHAT COMMAND...: run COMMAND (stderr to $T/err) and
# check its exit status.
expect_status() {
	want=$1 what=$2
	shift 2
	st=0
	"$@" 2>"$T/err" || st=$?
	[ "$st" -eq "$want" ] || fail "$what: expected exit $want, got $st ($(cat "$T/err"))"
}

test_send_arguments_arrive_in_order() {
	"$IPCQ" send args a b c
	"$IPCQ" recv -c 3 args >"$T/out"
	printf 'a\nb\nc\n' >"$T/exp"
	cmp -s "$T/exp" "$T/out" || fail "recv -c 3 printed '$(cat "$T/out")', not a b c"
	pass "each argument of send is one message, received in order"
}

test_send_reads_lines_of_stdin() {
	printf 'x\ny\n\nlast line without newline' | "$IPCQ" send lines
	assert_eq 4 "$(qstat lines depth)" "messages from 3 lines, one empty, and a last unterminated one"
	"$IPCQ" recv -c 4 lines >"$T/out"
	printf 'x\ny\n\nlast line without newline\n' >"$T/exp"
	cmp -s "$T/exp" "$T/out" || fail "lines of stdin came back as '$(cat "$T/out")'"
	pass "send without arguments sends each line of stdin, empty lines included"
}

# The pipeline of the brief: sort < file | ipcq send q, then
# ipcq recv -c 0 -t 1 q | grep test.
test_shell_pipeline_sort_send_recv_grep() {
	printf 'zeta test 6\nalpha other\ndelta test 4\nbeta test 2\nomega other\ngamma test 3\n' >"$T/words"
	sort <"$T/words" | "$IPCQ" send pipe
	{
		st=0
		"$IPCQ" recv -c 0 -t 1 pipe 2>"$T/err" || st=$?
		echo "$st" >"$T/recv_status"
	} | grep test >"$T/out"
	printf 'beta test 2\ndelta test 4\ngamma test 3\nzeta test 6\n' >"$T/exp"
	cmp -s "$T/exp" "$T/out" || fail "grep found '$(cat "$T/out")', not the sorted test lines"
	assert_eq 3 "$(cat "$T/recv_status")" "recv -c 0 -t 1 status once the queue stays empty"
	grep -q 'timed out' "$T/err" || fail "recv timed out without saying so: $(cat "$T/err")"
	assert_eq 0 "$(qstat pipe depth)" "depth after the pipeline"
	pass "sort < file | ipcq send, ipcq recv -c 0 -t 1 | grep: lines in order, recv exits 3"
}

test_nul_separated_records_round_trip() {
	# records with a space, a newline and an empty one
	printf 'one\000two words\000\nthree\000\000' >"$T/in"
	"$IPCQ" send -0 nul <"$T/in"
	assert_eq 4 "$(qstat nul depth)" "records sent with -0"
	"$IPCQ" recv -0 -c 4 nul >"$T/out"
	cmp -s "$T/in" "$T/out" ||
		fail "-0 records came back as $(od -An -c "$T/out" | tr -s ' ' | tr '\n' ' ')"
	pass "send -0 splits stdin at NULs, recv -0 ends each message with NUL"
}

test_single_sends_all_of_stdin_as_one_message() {
	printf 'line 1\nline 2\n\nline 4 \\ with a backslash\n' >"$T/in"
	"$IPCQ" send -s single <"$T/in"
	assert_eq 1 "$(qstat single depth)" "messages sent by send -s"
	"$IPCQ" recv -N single >"$T/out"
	cmp -s "$T/in" "$T/out" || fail "send -s | recv -N changed the message: '$(cat "$T/out")'"
	pass "send -s sends all of stdin, embedded newlines included, as one message"
}

test_recv_no_separator_writes_payloads_only() {
	"$IPCQ" send nosep ab cd ef
	"$IPCQ" recv -N -c 3 nosep >"$T/out"
	printf 'abcdef' >"$T/exp"
	cmp -s "$T/exp" "$T/out" || fail "recv -N printed '$(cat "$T/out")', not 'abcdef'"
	pass "recv -N writes the payloads with no separator"
}

test_file_through_the_ring_round_trips() {
	head -c 300000 /dev/urandom >"$T/big"
	"$IPCQ" send -f "$T/big" file
	assert_eq 1 "$(qstat file depth)" "depth after send -f of 300 KB"
	assert_eq 1 "$(qstat file sent_ring)" "messages that went through the ring"
	"$IPCQ" recv -o "$T/big.out" file
	cmp "$T/big" "$T/big.out" || fail "recv -o did not write the bytes send -f sent"
	assert_eq 0 "$(qstat file ring_used)" "ring bytes in use after the message was received"
	pass "send -f of a 300 KB file and recv -o give back the same bytes"
}

test_empty_message_round_trips() {
	"$IPCQ" send empty ''
	assert_eq 1 "$(qstat empty depth)" "depth after sending an empty message"
	"$IPCQ" recv empty >"$T/out"
	printf '\n' >"$T/exp"
	cmp -s "$T/exp" "$T/out" || fail "an empty message printed as $(od -An -c "$T/out")"
	: >"$T/in"
	"$IPCQ" send -s empty <"$T/in"
	"$IPCQ" recv -o "$T/out" empty
	if [ ! -f "$T/out" ] || [ -s "$T/out" ]; then
		fail "send -s of empty stdin did not come back as an empty message"
	fi
	pass "an empty message is sent and received as an empty message"
}

test_list_shows_queues_with_depth() {
	"$IPCQ" send listed one two
	"$IPCQ" list >"$T/out"
	line=$(grep "^listed	" "$T/out") || fail "ipcq list does not show queue 'listed': $(cat "$T/out")"
	assert_eq 2 "$(printf '%s\n' "$line" | cut -f2)" "depth column of ipcq list"
	pass "ipcq list shows each queue with its depth"
}

test_stat_shows_depth_and_counters() {
	"$IPCQ" send counted one two
	assert_eq counted "$(qstat counted name)" "stat name"
	assert_eq 2 "$(qstat counted depth)" "depth after sending 2"
	assert_eq 2 "$(qstat counted sent)" "sent after sending 2"
	assert_eq 0 "$(qstat counted received)" "received before any recv"
	"$IPCQ" recv counted >/dev/null
	assert_eq 1 "$(qstat counted depth)" "depth after receiving 1"
	assert_eq 2 "$(qstat counted sent)" "sent after receiving 1"
	assert_eq 1 "$(qstat counted received)" "received after receiving 1"
	for key in max_msgs msg_size ring_size max_payload ring_used redelivered dropped delivery; do
		[ -n "$(qstat counted "$key")" ] || fail "ipcq stat has no '$key' line"
	done
	pass "ipcq stat shows geometry, depth and the sent/received counters"
}

test_stat_json_is_valid_json() {
	"$IPCQ" send js one two
	"$IPCQ" stat --json js >"$T/json"
	if command -v python3 >/dev/null 2>&1; then
		python3 -m json.tool "$T/json" >/dev/null || fail "ipcq stat --json is not JSON: $(cat "$T/json")"
		got=$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(d["name"], d["depth"], d["sent"], d["received"], d["delivery"])' "$T/json") ||
			fail "ipcq stat --json lacks a key: $(cat "$T/json")"
		assert_eq "js 2 2 0 at-most-once" "$got" "name, depth, sent, received, delivery in the JSON"
	else
		for key in name depth sent received max_msgs ring_size delivery; do
			grep -q "\"$key\": " "$T/json" || fail "ipcq stat --json lacks \"$key\": $(cat "$T/json")"
		done
	fi
	pass "ipcq stat --json prints one valid JSON object with the stat keys"
}

test_purge_empties_the_queue() {
	"$IPCQ" send purged a b c
	head -c 100000 /dev/urandom >"$T/p"
	"$IPCQ" send -f "$T/p" purged
	assert_eq 4 "$(qstat purged depth)" "depth before purge"
	"$IPCQ" purge purged
	assert_eq 0 "$(qstat purged depth)" "depth after purge"
	assert_eq 0 "$(qstat purged ring_used)" "ring bytes in use after purge"
	expect_status 3 "recv after purge" "$IPCQ" recv -t 0.1 purged
	pass "ipcq purge drops every message (ring ones too) and keeps the queue"
}

test_delete_then_stat_exits_4() {
	"$IPCQ" send deleted a
	"$IPCQ" delete deleted
	expect_status 4 "stat of a deleted queue" "$IPCQ" stat deleted
	"$IPCQ" list | grep -q "^deleted	" && fail "ipcq list still shows a deleted queue"
	expect_status 4 "delete of a missing queue" "$IPCQ" delete deleted
	pass "ipcq delete removes the queue: stat and delete then exit 4"
}

test_usage_errors_exit_2() {
	expect_status 2 "unknown option" "$IPCQ" send --no-such-option q x
	grep -q 'no-such-option' "$T/err" || fail "unknown option not named: $(cat "$T/err")"
	expect_status 2 "unknown short option" "$IPCQ" recv -Z q
	expect_status 2 "send without a queue" "$IPCQ" send
	expect_status 2 "recv without a queue" "$IPCQ" recv
	expect_status 2 "stat without a queue" "$IPCQ" stat
	expect_status 2 "delete without a queue" "$IPCQ" delete
	expect_status 2 "create without a queue" "$IPCQ" create
	expect_status 2 "unknown command" "$IPCQ" frobnicate q
	grep -q frobnicate "$T/err" || fail "unknown command not named: $(cat "$T/err")"
	expect_status 2 "no command" "$IPCQ"
	expect_status 2 "option missing its argument" "$IPCQ" recv q -c
	expect_status 2 "bad timeout" "$IPCQ" recv -t soon q
	expect_status 2 "bad priority" "$IPCQ" send -p 32 q x
	expect_status 2 "recv -0 with -N" "$IPCQ" recv -0 -N q
	pass "usage errors (unknown option/command, missing queue or argument) exit 2"
}

test_invalid_queue_name_is_refused() {
	for name in 'a/b' '.hidden' "$(printf 'n%.0s' $(seq 65))"; do
		st=0
		"$IPCQ" send "$name" x 2>"$T/err" || st=$?
		[ "$st" -eq 1 ] || [ "$st" -eq 2 ] || fail "send to queue '$name' exited $st, not 1 or 2"
		[ -s "$T/err" ] || fail "send to invalid queue '$name' failed without a message"
	done
	"$IPCQ" list | grep -q '/' && fail "a queue with '/' in its name exists"
	pass "invalid queue names ('a/b', '.hidden', 65 chars) fail with exit 1 or 2 and a message"
}

# a receiver blocked on a queue that gets deleted is woken and told so
test_delete_wakes_a_blocked_receiver_with_exit_4() {
	"$IPCQ" create gone
	"$IPCQ" recv gone >"$T/gone.out" 2>"$T/gone.err" &
	rpid=$!
	# wait until the receiver has the queue open (it holds a receive slot)
	i=0
	until [ "$(qstat gone receivers)" = 1 ]; do
		[ $i -lt 100 ] || fail "the receiver did not open the queue in 5 s"
		sleep 0.05
		i=$((i + 1))
	done
	"$IPCQ" delete gone
	i=0
	while kill -0 "$rpid" 2>/dev/null && [ $i -lt 60 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	kill -0 "$rpid" 2>/dev/null && { kill "$rpid"; fail "recv still blocked 3 s after its queue was deleted"; }
	st=0
	wait "$rpid" || st=$?
	assert_eq 4 "$st" "exit status of a recv whose queue was deleted"
	grep -q deleted "$T/gone.err" || fail "recv does not say the queue was deleted: $(cat "$T/gone.err")"
	pass "a blocked recv is woken by the deletion of its queue and exits 4"
}

test_help_exits_0() {
	"$IPCQ" --help >"$T/out" || fail "ipcq --help failed"
	grep -q '^Usage: ipcq' "$T/out" || fail "ipcq --help prints no usage"
	"$IPCQ" send --help >"$T/out" || fail "ipcq send --help failed"
	grep -q '^Usage: ipcq send' "$T/out" || fail "ipcq send --help prints no send usage"
	"$IPCQ" recv --help >/dev/null || fail "ipcq recv --help failed"
	pass "ipcq --help and ipcq send --help print usage and exit 0"
}

test_create_with_geometry() {
	"$IPCQ" create geo --max-msgs 5 --msg-size 256 --ring-size 1M
	assert_eq 5 "$(qstat geo max_msgs)" "max_msgs of the created queue"
	assert_eq 256 "$(qstat geo msg_size)" "msg_size of the created queue"
	assert_eq 1048576 "$(qstat geo ring_size)" "ring_size of the created queue"
	assert_eq 0 "$(qstat geo depth)" "depth of a new queue"
	expect_status 1 "create of an existing queue" "$IPCQ" create geo
	pass "ipcq create --max-msgs 5 --msg-size 256 --ring-size 1M makes that geometry"
}

test_message_above_max_payload_is_refused() {
	"$IPCQ" create small --ring-size 64K --max-payload 1000
	assert_eq 1000 "$(qstat small max_payload)" "max_payload of the created queue"
	head -c 2000 /dev/urandom >"$T/2000"
	expect_status 1 "send -f of 2000 bytes with max_payload 1000" "$IPCQ" send -f "$T/2000" small
	if ! grep -q 'max_payload' "$T/err" || ! grep -q 1000 "$T/err"; then
		fail "the error does not name the limit: $(cat "$T/err")"
	fi
	expect_status 1 "send -s of 2000 bytes with max_payload 1000" "$IPCQ" send -s small <"$T/2000"
	assert_eq 0 "$(qstat small depth)" "depth after refused sends"
	head -c 1000 /dev/urandom >"$T/1000"
	"$IPCQ" send -f "$T/1000" small || fail "a message of exactly max_payload was refused"
	pass "a message larger than max_payload fails with exit 1 naming the limit"
}

test_no_daemon_exits_1_naming_ipcbrokerd() {
	expect_status 1 "list without a daemon" env IPCQ_SOCKET="$T/missing.sock" "$IPCQ" list
	grep -q ipcbrokerd "$T/err" || fail "the error does not mention ipcbrokerd: $(cat "$T/err")"
	expect_status 1 "send without a daemon" env IPCQ_SOCKET="$T/missing.sock" "$IPCQ" send q x
	grep -q ipcbrokerd "$T/err" || fail "the error does not mention ipcbrokerd: $(cat "$T/err")"
	pass "without a daemon ipcq exits 1 and mentions ipcbrokerd"
}

start_daemon
test_send_arguments_arrive_in_order
test_send_reads_lines_of_stdin
test_shell_pipeline_sort_send_recv_grep
test_nul_separated_records_round_trip
test_single_sends_all_of_stdin_as_one_message
test_recv_no_separator_writes_payloads_only
test_file_through_the_ring_round_trips
test_empty_message_round_trips
test_list_shows_queues_with_depth
test_stat_shows_depth_and_counters
test_stat_json_is_valid_json
test_purge_empties_the_queue
test_delete_then_stat_exits_4
test_delete_wakes_a_blocked_receiver_with_exit_4
test_usage_errors_exit_2
test_invalid_queue_name_is_refused
test_help_exits_0
test_create_with_geometry
test_message_above_max_payload_is_refused
test_no_daemon_exits_1_naming_ipcbrokerd
daemon_alive || fail "ipcbrokerd died during the test"
stop_daemon
