#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_restart.sh - queues and their messages outlive the daemon: after a
# clean stop (SIGTERM) or a kill -9, a new daemon of the same namespace
# adopts them and loses nothing; clients that opened a queue before the
# restart keep sending and receiving across it.
. "$(dirname "$0")/lib.sh"

# fill QUEUE: 5 small messages and a 200 KB file (through the ring)
fill() {
	"$IPCQ" send "$1" m1 m2 m3 m4 m5
	head -c 200000 /dev/urandom >"$T/$1.file"
	"$IPCQ" send -f "$T/$1.file" "$1"
	assert_eq 6 "$(qstat "$1" depth)" "depth of '$1' before the restart"
}

# drain QUEUE: the 6 messages of fill, intact and in order, and no more
drain() {
	assert_eq 6 "$(qstat "$1" depth)" "depth of '$1' after the restart"
	"$IPCQ" recv -c 5 -t 2 "$1" >"$T/out"
	printf 'm1\nm2\nm3\nm4\nm5\n' >"$T/exp"
	cmp -s "$T/exp" "$T/out" || fail "small messages of '$1' after the restart: '$(cat "$T/out")'"
	"$IPCQ" recv -t 2 -o "$T/$1.out" "$1"
	cmp -s "$T/$1.file" "$T/$1.out" || fail "the 200 KB message of '$1' changed across the restart"
	st=0
	"$IPCQ" recv -t 0.1 "$1" >/dev/null 2>&1 || st=$?
	assert_eq 3 "$st" "recv on '$1' once its 6 messages were taken"
	assert_eq 0 "$(qstat "$1" ring_used)" "ring bytes of '$1' in use once drained"
}

test_messages_survive_clean_restart() {
	fill clean
	stop_daemon TERM
	start_daemon
	drain clean
	pass "after SIGTERM (exit 0) and a new start, depth is 6 and the messages come out intact"
}

test_messages_survive_kill_9() {
	fill killed
	stop_daemon KILL
	start_daemon
	drain killed
	pass "after kill -9 and a new start, nothing is lost (ring message included)"
}

# A sender reading a fifo and a receiver, both started before the restart,
# keep working with the descriptors they got from the old daemon.
test_open_clients_keep_working_across_restart() {
	"$IPCQ" create live
	mkfifo "$T/fifo"
	"$IPCQ" recv -c 3 -t 10 live >"$T/live.out" 2>"$T/live.err" &
	rpid=$!
	"$IPCQ" send -t 5 live <"$T/fifo" 2>"$T/send.err" &
	spid=$!
	exec 3>"$T/fifo"
	# the first line proves both have opened the queue
	echo before >&3
	i=0
	until grep -q before "$T/live.out"; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "the receiver did not get the line sent before the restart"
		sleep 0.05
	done

	stop_daemon TERM
	start_daemon 3>&- # the daemon must not hold the fifo open
	printf 'after1\nafter2\n' >&3
	exec 3>&-
	st=0
	wait "$spid" || st=$?
	assert_eq 0 "$st" "exit status of the sender across the restart ($(cat "$T/send.err"))"
	st=0
	wait "$rpid" || st=$?
	assert_eq 0 "$st" "exit status of the receiver across the restart ($(cat "$T/live.err"))"
	printf 'before\nafter1\nafter2\n' >"$T/exp"
	cmp -s "$T/exp" "$T/live.out" || fail "the receiver got '$(cat "$T/live.out")' across the restart"
	pass "a sender and a receiver opened before the restart keep working after it"
}

start_daemon
test_messages_survive_clean_restart
test_messages_survive_kill_9
test_open_clients_keep_working_across_restart
stop_daemon
