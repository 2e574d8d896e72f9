#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_shmfull.sh - a full /dev/shm is a clear error when a queue is created
# (senders = shared) or when a sender first opens a queue whose senders are
# isolated (its lane is made then), never a SIGBUS later: the daemon
# reserves a ring's memory when it makes it.  Runs in a private mount
# namespace with a 32 MiB tmpfs on /dev/shm (a 16M ring takes about 20M:
# its data, and a quarter more of chunk states).
PRIVNS_FLAGS="--mount"
. "$(dirname "$0")/privns.sh"
privns_mount_private /dev/shm
. "$(dirname "$0")/lib.sh"
mount -t tmpfs -o size=32m,mode=1777 ipcq-test-shm /dev/shm || fail "cannot mount a small /dev/shm"
RC="$STRESS/ringcrash"

test_create_beyond_free_shm_names_the_space() {
	"$IPCQ" create first --ring-size 16M --senders shared
	expect_status 1 "create of a 16M ring (about 20M) with about 12M free" "$IPCQ" create second --ring-size 16M \
		--senders shared
	grep -q "no room" "$T/err" || fail "the error does not say there is no room: $(cat "$T/err")"
	grep -q "/dev/shm" "$T/err" || fail "the error does not name /dev/shm: $(cat "$T/err")"
	daemon_alive || fail "the daemon died creating a ring /dev/shm has no room for"
	! ls /dev/shm/ipcq."$NS".second.* >/dev/null 2>&1 || fail "the refused ring was left in /dev/shm"
	expect_status 4 "stat of the refused queue" "$IPCQ" stat second
	pass "a ring /dev/shm has no room for is refused at create, naming the free space; nothing left"
}

test_lane_beyond_free_shm_names_the_space() {
	# its senders' lanes are made as they come: the queue itself is small
	"$IPCQ" create iso --ring-size 16M --senders isolated || fail "create of an isolated queue with 12M free"
	expect_status 1 "a sender's open, its 16M lane beyond the room left" "$IPCQ" send iso x
	grep -q "no room" "$T/err" || fail "the error does not say there is no room: $(cat "$T/err")"
	grep -q "/dev/shm" "$T/err" || fail "the error does not name /dev/shm: $(cat "$T/err")"
	daemon_alive || fail "the daemon died making a lane /dev/shm has no room for"
	! ls /dev/shm/ipcq."$NS".iso.*.l* >/dev/null 2>&1 || fail "the refused lane was left in /dev/shm"
	"$IPCQ" delete iso
	pass "senders isolated: a lane /dev/shm has no room for is refused at the sender's open, naming the space"
}

test_queues_made_before_keep_working() {
	"$IPCQ" create small --ring-size 4M --senders shared
	"$IPCQ" create isosmall --ring-size 4M --senders isolated
	# a sender of the isolated queue opens it (its lane is made) before
	# /dev/shm fills, and sends after
	mkfifo "$T/lines"
	"$IPCQ" send isosmall <"$T/lines" &
	sender=$!
	exec 3>"$T/lines"
	echo first >&3
	for i in $(seq 50); do
		ls /dev/shm/ipcq."$NS".isosmall.*.l1.data >/dev/null 2>&1 && break
		sleep 0.1
	done
	ls /dev/shm/ipcq."$NS".isosmall.*.l1.data >/dev/null 2>&1 || fail "the isolated sender has no lane"
	# fill what is left of /dev/shm, so that nothing is spare
	head -c 64M /dev/zero >/dev/shm/filler 2>/dev/null || true
	seq 100000 >&3
	exec 3>&-
	wait "$sender" || fail "the isolated queue's sender, its lane made before /dev/shm filled"
	assert_eq 100001 "$("$IPCQ" recv -c 0 -t 1 isosmall | wc -l | tr -d ' ')" "lines through the isolated queue"
	# every page of the rings was reserved: writing them all cannot fault
	"$RC" send first 3000000 4 || fail "sends through the 16M ring with /dev/shm full"
	"$RC" check first 3000000 4 3000 >/dev/null || fail "the messages through the 16M ring were not intact"
	"$RC" send small 1000000 3 || fail "sends through the 4M ring with /dev/shm full"
	"$RC" check small 1000000 3 3000 >/dev/null || fail "the messages through the 4M ring were not intact"
	daemon_alive || fail "the daemon died"
	rm -f /dev/shm/filler
	pass "with /dev/shm full, queues made before move 12M through their rings intact, and a sender's lane made before 100001 lines; no SIGBUS"
}

start_daemon
test_create_beyond_free_shm_names_the_space
test_lane_beyond_free_shm_names_the_space
test_queues_made_before_keep_working
stop_daemon
