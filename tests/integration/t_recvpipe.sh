#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_recvpipe.sh - 'ipcq recv' in a shell pipeline loses nothing of an
# at-least-once queue: a message is acknowledged only once it is written
# out (for a pipe: once its reader has read it), a closed output ends recv
# at once with status 6 and one line on stderr, also while it waits for a
# message, and what was not written goes back to the queue.  Then recv
# killed (kill -9) at random instants, writing to a file or a FIFO while a
# producer sends: every line is in the output or still in the queue.
. "$(dirname "$0")/lib.sh"

PIDS=
test_cleanup() {
	for p in $PIDS; do
		kill -9 "$p" 2>/dev/null || true
	done
}

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# words FILE: its lines on one line
words() {
	tr '\n' ' ' <"$1" | sed 's/ $//'
}

# expect_rest QUEUE WHAT LINES...: exactly LINES (in any order: what went
# back may come after what had never left) are still in QUEUE, then none
expect_rest() {
	q=$1 what=$2
	shift 2
	st=0
	"$IPCQ" recv -c $# -t 2 "$q" >"$T/rest" 2>"$T/rest.err" || st=$?
	printf '%s\n' "$@" | sort >"$T/rest.exp"
	sort "$T/rest" >"$T/rest.got"
	cmp -s "$T/rest.exp" "$T/rest.got" ||
		fail "$what: expected '$*' still in '$q', received '$(words "$T/rest")' (status $st: $(cat "$T/rest.err"))"
	st=0
	"$IPCQ" recv -t 0.2 "$q" >"$T/rest" 2>/dev/null || st=$?
	[ "$st" -eq 3 ] || fail "$what: '$q' holds more than '$*': '$(words "$T/rest")' (status $st)"
}

# check_closed STATUS_FILE ERR_FILE OUTPUT_NAME WHAT: recv ended with
# status 6 and said in one line which output was closed
check_closed() {
	read -r st t_end <"$1"
	[ "$st" -ne 124 ] || fail "$4: ipcq recv still running 10 s after its reader went"
	[ "$st" -eq 6 ] || fail "$4: ipcq recv exited $st, expected 6 ($(cat "$2"))"
	assert_eq 1 "$(wc -l <"$2")" "$4: lines on stderr ($(cat "$2"))"
	grep -q "^ipcq: $3: closed by its reader" "$2" || fail "$4: stderr does not name $3: $(cat "$2")"
}

test_head_takes_three_and_seven_stay() {
	seq 10 | "$IPCQ" send alo
	{
		st=0
		timeout 10 "$IPCQ" recv -c 0 alo 2>"$T/err" || st=$?
		echo "$st $(now_ms)" >"$T/st"
	} | {
		head -n 3 >"$T/out"
		exec 0<&-
		now_ms >"$T/rend"
	}
	check_closed "$T/st" "$T/err" "standard output" "recv -c 0 alo | head -n 3"
	assert_eq "1 2 3" "$(words "$T/out")" "what head printed"
	late=$((t_end - $(cat "$T/rend")))
	[ "$late" -lt 1000 ] || fail "recv -c 0 alo | head -n 3: recv ended $late ms after head"
	expect_rest alo "after recv -c 0 alo | head -n 3" 4 5 6 7 8 9 10
	pass "at-least-once: recv -c 0 | head -n 3 with 10 queued prints 1 2 3, ends with status 6" \
		"$late ms after head, and 4..10 are still in the queue"
}

# The issue's case, and the same with a reader that stays a moment before
# it closes without reading: recv has written 'a' by then.
test_reader_closing_unread_loses_nothing() {
	for reader in '(exec 0<&-; sleep .3)' '(sleep .1; exec 0<&-; sleep .3)'; do
		for i in 1 2 3; do
			printf '%s\n' a b c | "$IPCQ" send alo
			{
				st=0
				timeout 10 "$IPCQ" recv -c 3 alo 2>"$T/err" || st=$?
				echo "$st $(now_ms)" >"$T/st"
			} | eval "$reader"
			check_closed "$T/st" "$T/err" "standard output" "recv -c 3 alo | $reader"
			expect_rest alo "after recv -c 3 alo | $reader (run $i)" a b c
		done
	done
	pass "at-least-once: recv -c 3 | a reader that closes without reading: status 6, a b c still in the queue"
}

test_waiting_recv_sees_its_reader_go() {
	{
		st=0
		timeout 10 "$IPCQ" recv -c 0 alo 2>"$T/err" || st=$?
		echo "$st $(now_ms)" >"$T/st"
	} | (
		sleep .2
		exec 0<&-
		now_ms >"$T/rend"
	)
	check_closed "$T/st" "$T/err" "standard output" "waiting recv -c 0 alo | (sleep .2; exit)"
	late=$((t_end - $(cat "$T/rend")))
	[ "$late" -lt 1000 ] || fail "waiting recv -c 0 alo: ended $late ms after its reader went"
	pass "a recv -c 0 waiting on an empty queue ends (status 6) $late ms after its reader went"
}

test_at_most_once_ends_promptly_too() {
	seq 10 | "$IPCQ" send amo
	{
		st=0
		timeout 10 "$IPCQ" recv -c 0 amo 2>"$T/err" || st=$?
		echo "$st $(now_ms)" >"$T/st"
	} | {
		head -n 3 >"$T/out"
		exec 0<&-
		now_ms >"$T/rend"
	}
	check_closed "$T/st" "$T/err" "standard output" "recv -c 0 amo | head -n 3"
	assert_eq "1 2 3" "$(words "$T/out")" "what head printed (at-most-once)"
	late=$((t_end - $(cat "$T/rend")))
	[ "$late" -lt 1000 ] || fail "recv -c 0 amo | head -n 3: recv ended $late ms after head"
	"$IPCQ" purge amo
	pass "at-most-once: recv -c 0 | head -n 3 ends with status 6 $late ms after head"
}

# -o FIFO: a pipe all the same, named in the message.
test_output_fifo_closed() {
	mkfifo "$T/fifo"
	printf '%s\n' x y z | "$IPCQ" send alo
	timeout 10 "$IPCQ" recv -c 0 -0 -o "$T/fifo" alo 2>"$T/err" &
	pid=$!
	PIDS="$PIDS $pid"
	head -z -n 1 "$T/fifo" | tr '\0' '\n' >"$T/out"
	st=0
	wait "$pid" || st=$?
	echo "$st 0" >"$T/st"
	check_closed "$T/st" "$T/err" "$T/fifo" "recv -o FIFO, reader gone after one message"
	assert_eq x "$(cat "$T/out")" "what the FIFO's reader got"
	expect_rest alo "after recv -o FIFO" y z
	pass "recv -o FIFO: status 6 naming the FIFO once its reader went; y z still in the queue"
}

# A healthy pipe still gets everything, in order, and it is all acknowledged.
test_pipe_gets_everything_in_order() {
	seq 500 >"$T/exp"
	"$IPCQ" send alo <"$T/exp"
	st=0
	timeout 20 "$IPCQ" recv -c 500 alo | cat >"$T/out" || st=$?
	assert_eq 0 "$st" "recv -c 500 alo | cat"
	cmp -s "$T/exp" "$T/out" || fail "recv -c 500 alo | cat: $(cmp "$T/exp" "$T/out" 2>&1)"
	# none of them given back at close: every one was acknowledged
	assert_eq 0 "$(qstat alo depth)" "depth after recv -c 500 | cat"
	st=0
	"$IPCQ" recv -t 0.3 alo >"$T/out" 2>/dev/null || st=$?
	[ "$st" -eq 3 ] || fail "after recv -c 500 alo | cat, '$(words "$T/out")' came back (status $st)"
	pass "at-least-once: recv -c 500 | cat gets 1..500 in order, all acknowledged"
}

rand_ms() { # $1..$2
	r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
	echo $(($1 + r % ($2 - $1 + 1)))
}

# ipcq recv killed (kill -9) at random instants while a producer sends N
# numbered lines: every other receiver writes to a file (> FILE), the
# others to a FIFO whose slow reader copies it to a file (hand-off mode).
# Then drain.
# Every line is in an output or comes out of the drain.  A kill in the
# middle of a write may leave part of a line ahead of the next one, so the
# lines are looked for as tokens m<N>e.
test_kill9_loses_nothing() {
	N=1200
	redelivered=$(qstat alo redelivered)
	(
		i=0
		while [ $i -lt $N ]; do
			seq -f 'm%ge' $((i + 1)) $((i + 30)) | "$IPCQ" send alo
			i=$((i + 30))
			sleep 0.03
		done
	) &
	prod=$!
	PIDS="$PIDS $prod"
	k=0 fifos=0
	while kill -0 "$prod" 2>/dev/null || [ $k -lt 12 ]; do
		k=$((k + 1))
		if [ $((k % 2)) -eq 0 ]; then
			mkfifo "$T/kp.$k"
			# a slow reader: recv is mostly waiting for it to take a
			# message when it is killed
			(
				while IFS= read -r l; do
					printf '%s\n' "$l"
					sleep 0.005
				done <"$T/kp.$k" >"$T/k.$k"
				: >"$T/kd.$k"
			) &
			cpid=$!
			"$IPCQ" recv -c 0 alo >"$T/kp.$k" 2>>"$T/kerr" &
			rpid=$!
			fifos=$((fifos + 1))
		else
			cpid=
			"$IPCQ" recv -c 0 alo >"$T/k.$k" 2>>"$T/kerr" &
			rpid=$!
		fi
		PIDS="$PIDS $rpid $cpid"
		sleep "0.$(printf '%03d' "$(rand_ms 10 150)")"
		kill -9 "$rpid" 2>/dev/null || true
		wait "$rpid" 2>/dev/null || true
		if [ -n "$cpid" ]; then
			# killed before it opened the FIFO, recv leaves the reader
			# waiting for a writer, in open() or about to be: be one for
			# a moment (O_RDWR never blocks) until the reader has ended
			n=0
			while [ ! -e "$T/kd.$k" ]; do
				exec 3<>"$T/kp.$k"
				exec 3>&-
				sleep 0.01
				n=$((n + 1))
				[ $n -lt 1000 ] || fail "the reader of FIFO $k did not end"
			done
			wait "$cpid" || fail "the reader of FIFO $k failed"
		fi
		[ $k -lt 200 ] || fail "the producer did not finish"
	done
	wait "$prod" || fail "the producer failed"
	[ ! -s "$T/kerr" ] || fail "a receiver said: $(head -n 5 "$T/kerr")"
	st=0
	timeout 20 "$IPCQ" recv -c 0 -t 1.5 alo >"$T/drain" 2>"$T/derr" || st=$?
	[ "$st" -eq 3 ] || fail "drain: status $st ($(cat "$T/derr"))"
	cat "$T"/k.* "$T/drain" | grep -o 'm[0-9]*e' | sort >"$T/got"
	seq -f 'm%ge' 1 $N | sort >"$T/exp"
	sort -u "$T/got" >"$T/got.u"
	missing=$(comm -23 "$T/exp" "$T/got.u" | wc -l)
	extra=$(comm -13 "$T/exp" "$T/got.u" | wc -l)
	[ "$missing" -eq 0 ] || fail "$missing of $N lines lost after $k kills: $(comm -23 "$T/exp" "$T/got.u" | head -n 10 | tr '\n' ' ')"
	[ "$extra" -eq 0 ] || fail "lines never sent came out: $(comm -13 "$T/exp" "$T/got.u" | head -n 10 | tr '\n' ' ')"
	dups=$(($(wc -l <"$T/got") - N))
	redelivered=$(($(qstat alo redelivered) - redelivered))
	[ "$dups" -le "$redelivered" ] ||
		fail "$dups lines came out twice, but only $redelivered redeliveries were counted"
	assert_eq 0 "$(qstat alo depth)" "depth after the drain"
	# the run tested what it says it tests: several receivers got lines
	wrote=0
	for f in "$T"/k.*; do
		[ -s "$f" ] && wrote=$((wrote + 1))
	done
	[ "$wrote" -ge 3 ] || fail "only $wrote of $k killed receivers wrote anything"
	pass "$k receivers killed at random ($fifos writing to a FIFO, $wrote wrote lines) while $N lines" \
		"were sent: none lost, $dups written twice ($redelivered redeliveries counted)"
}

cat >"$T/ipcbrokerd.conf" <<CONF
queue "alo" {
	delivery = "at-least-once"
}
queue "amo" {
	delivery = "at-most-once"
}
CONF
start_daemon -c "$T/ipcbrokerd.conf"
assert_eq at-least-once "$(qstat alo delivery)" "delivery of alo"
assert_eq at-most-once "$(qstat amo delivery)" "delivery of amo"
test_head_takes_three_and_seven_stay
test_reader_closing_unread_loses_nothing
test_waiting_recv_sees_its_reader_go
test_at_most_once_ends_promptly_too
test_output_fifo_closed
test_pipe_gets_everything_in_order
test_kill9_loses_nothing
"$IPCQ" delete alo
"$IPCQ" delete amo
stop_daemon
