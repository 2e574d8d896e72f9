#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_batchcli.sh - the CLI with deep queues and batches: 'ipcq send' reading
# stdin does not stop at the window's 10 messages when no receiver runs,
# 'ipcq recv -c N' prints exactly N in order and leaves the rest queued,
# and a line still goes out as soon as it is read.
. "$(dirname "$0")/lib.sh"

test_twenty_lines_without_a_receiver() {
	st=0
	timeout 10 sh -c "seq 20 | '$IPCQ' send jobs" 2>"$T/err" || st=$?
	[ "$st" -ne 124 ] || fail "seq 20 | ipcq send jobs, no receiver, still blocked after 10 s"
	assert_eq 0 "$st" "exit status of seq 20 | ipcq send jobs ($(cat "$T/err"))"
	assert_eq 20 "$(qstat jobs depth)" "depth after 20 lines"
	"$IPCQ" recv -c 20 -t 5 jobs >"$T/out" || fail "ipcq recv -c 20 jobs"
	seq 20 >"$T/exp"
	cmp -s "$T/exp" "$T/out" || fail "recv -c 20 printed $(tr '\n' ' ' <"$T/out"), not 1..20"
	assert_eq 0 "$(qstat jobs depth)" "depth after recv -c 20"
	pass "seq 20 | ipcq send jobs returns with no receiver; recv -c 20 prints 1..20"
}

test_hundred_thousand_lines_in_order() {
	seq 100000 >"$T/exp"
	timeout 20 "$IPCQ" send q <"$T/exp" || fail "seq 100000 | ipcq send q, no receiver (exit $?; 124: hung)"
	assert_eq 100000 "$(qstat q depth)" "depth after 100000 lines"
	timeout 20 "$IPCQ" recv -c 100000 -t 5 q >"$T/out" ||
		fail "ipcq recv -c 100000 q (exit $?; 124: still receiving after 20 s, $(wc -l <"$T/out") lines out)"
	assert_eq 100000 "$(tail -n 1 "$T/out")" "last line received"
	cmp -s "$T/exp" "$T/out" || fail "the 100000 lines came back otherwise: $(cmp "$T/exp" "$T/out" 2>&1)"
	assert_eq 0 "$(qstat q depth)" "depth afterwards"
	assert_eq 0 "$(qstat q ring_used)" "ring_used afterwards"
	pass "seq 100000 | ipcq send, then ipcq recv -c 100000: every line, in order"
}

# Batches are an implementation detail: recv -c N takes N messages and no
# more, whatever the batches they travelled in.
test_recv_count_takes_exactly_that_many() {
	seq 300 | "$IPCQ" send part
	taken=0
	for n in 1 20 7 16 17 39; do
		first=$((taken + 1))
		taken=$((taken + n))
		"$IPCQ" recv -c $n -t 5 part >"$T/out" || fail "recv -c $n"
		seq $first $taken >"$T/exp"
		cmp -s "$T/exp" "$T/out" || fail "recv -c $n printed $(tr '\n' ' ' <"$T/out"), not $first..$taken"
		assert_eq $((300 - taken)) "$(qstat part depth)" "depth after recv -c $n"
	done
	left=$(qstat part depth)
	"$IPCQ" recv -c "$left" -t 5 part >"$T/out"
	seq $((300 - left + 1)) 300 >"$T/exp"
	cmp -s "$T/exp" "$T/out" || fail "the last $left came back as $(head -3 "$T/out" | tr '\n' ' ')..."
	assert_eq 0 "$(qstat part ring_used)" "ring_used afterwards"
	pass "recv -c N, for N of 1 to 39, takes exactly N in order and leaves the rest queued"
}

test_recv_count_times_out_with_what_came() {
	seq 5 | "$IPCQ" send few
	expect_status 3 "recv -c 10 -t 1 with 5 waiting" "$IPCQ" recv -c 10 -t 1 few
	seq 5 >"$T/exp"
	cmp -s "$T/exp" "$T/out" || fail "recv -c 10 -t 1 printed $(tr '\n' ' ' <"$T/out"), not the 5 that waited"
	assert_eq 0 "$(qstat few depth)" "depth after the timeout"
	pass "recv -c 10 -t 1 with 5 waiting prints the 5 and exits 3"
}

test_nul_records_and_long_lines_keep_order() {
	seq 5000 | tr '\n' '\0' >"$T/in0"
	"$IPCQ" send -0 nul <"$T/in0"
	assert_eq 5000 "$(qstat nul depth)" "depth after 5000 -0 records"
	timeout 20 "$IPCQ" recv -0 -c 5000 -t 5 nul >"$T/out" ||
		fail "ipcq recv -0 -c 5000 (exit $?; 124: still receiving after 20 s)"
	cmp -s "$T/in0" "$T/out" || fail "-0 records came back otherwise"

	# lines longer than the inline slot travel through the ring, between short ones
	"$IPCQ" create long
	msg_size=$(qstat long msg_size)
	awk -v big="$((msg_size * 3))" 'BEGIN {
		pad = sprintf("%" big "s", ""); gsub(/ /, "x", pad)
		for (i = 1; i <= 3000; i++) print (i % 37 == 0 ? i pad : i)
	}' >"$T/mixed"
	"$IPCQ" send long <"$T/mixed"
	assert_eq 3000 "$(qstat long depth)" "depth after 3000 mixed lines"
	[ "$(qstat long sent_ring)" -gt 0 ] || fail "no line went through the ring"
	timeout 20 "$IPCQ" recv -c 3000 -t 5 long >"$T/out" ||
		fail "ipcq recv -c 3000 (exit $?; 124: still receiving after 20 s)"
	cmp -s "$T/mixed" "$T/out" || fail "mixed short and long lines came back otherwise: $(cmp "$T/mixed" "$T/out" 2>&1)"
	assert_eq 0 "$(qstat long ring_used)" "ring_used after the mixed lines"
	pass "5000 -0 records, and 3000 lines with ring-size ones among them, come back in order"
}

# A line goes out when it is read, not when more lines or the end of
# input come: batching waits for nothing.
test_a_line_goes_out_at_once() {
	"$IPCQ" create live
	mkfifo "$T/fifo"
	"$IPCQ" send live <"$T/fifo" &
	sender=$!
	exec 7>"$T/fifo"
	echo first >&7
	st=0
	"$IPCQ" recv -t 3 live >"$T/out" || st=$?
	echo second >&7
	"$IPCQ" recv -t 3 live >>"$T/out" || st=$?
	exec 7>&-
	wait $sender || fail "ipcq send from the fifo failed"
	assert_eq 0 "$st" "recv of lines while the sender waits for more input"
	printf 'first\nsecond\n' >"$T/exp"
	cmp -s "$T/exp" "$T/out" || fail "received '$(cat "$T/out")' while the sender's input stayed open"
	pass "each line of an open input is received before the input ends"
}

start_daemon
test_twenty_lines_without_a_receiver
test_hundred_thousand_lines_in_order
test_recv_count_takes_exactly_that_many
test_recv_count_times_out_with_what_came
test_nul_records_and_long_lines_keep_order
test_a_line_goes_out_at_once
stop_daemon
