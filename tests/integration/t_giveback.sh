#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_giveback.sh - a queue drained and idle for give_back_after (3 s
# here) gives its ring's pages back to the system (ring_give_back), and
# takes them again (reserved, as at creation) when it is used again;
# messages go through intact before, in between and after.  ipcq stat's
# memory says what the queue holds, and the objects in /dev/shm agree.
. "$(dirname "$0")/lib.sh"
RC="$STRESS/ringcrash"

# kib_in_shm QUEUE: KiB the queue's objects hold in /dev/shm
kib_in_shm() {
	du -k -c /dev/shm/ipcq."$NS"."$1".* | tail -n 1 | cut -f1
}

# wait_memory_below QUEUE BYTES SECONDS
wait_memory_below() {
	end=$(($(date +%s) + $3))
	while [ "$(qstat "$1" memory)" -ge "$2" ]; do
		[ "$(date +%s)" -le "$end" ] ||
			fail "queue $1 still holds $(qstat "$1" memory) bytes after $3 s drained and idle (expected < $2)"
		sleep 0.2
	done
}

test_drained_queue_gives_its_pages_back_and_takes_them_again() {
	"$IPCQ" create gb --ring-size 16M >/dev/null || fail "create"
	"$RC" send gb 100000 100 || fail "send 100 ring messages"
	"$RC" check gb 100000 100 3000 >/dev/null || fail "the first 100 messages were not intact"
	held=$(qstat gb memory)
	[ "$held" -ge $((16 * 1024 * 1024)) ] || fail "a 16M ring in use holds only $held bytes"
	# give_back_after, and a sweep (a second apart)
	wait_memory_below gb $((256 * 1024)) 12
	kib=$(kib_in_shm gb)
	[ "$kib" -lt 256 ] || fail "/dev/shm still has $kib KiB of the drained queue's objects"
	after=$(qstat gb memory)
	# used again: the messages are intact, and the ring is reserved again
	"$RC" send gb 100000 100 || fail "send after the pages were given back"
	"$RC" check gb 100000 100 3000 >/dev/null || fail "messages after the give-back were not intact"
	end=$(($(date +%s) + 5))
	while [ "$(qstat gb memory)" -lt $((16 * 1024 * 1024)) ]; do
		[ "$(date +%s)" -le "$end" ] || fail "the ring was not reserved again once in use ($(qstat gb memory) bytes)"
		sleep 0.2
	done
	assert_eq 0 "$(qstat gb quarantined)" "quarantined"
	"$IPCQ" delete gb || fail "delete"
	pass "a drained 16M queue: $held bytes in use, $after idle ($kib KiB in /dev/shm), reserved again when used"
}

test_queue_with_a_message_waiting_keeps_its_pages() {
	"$IPCQ" create keep --ring-size 1M >/dev/null || fail "create"
	"$RC" send keep 100000 3 || fail "send"
	sleep 7
	held=$(qstat keep memory)
	[ "$held" -ge $((1024 * 1024)) ] || fail "a queue with 3 messages waiting gave its pages back ($held bytes)"
	"$RC" check keep 100000 3 3000 >/dev/null || fail "the 3 waiting messages were not intact after 7 idle seconds"
	"$IPCQ" delete keep || fail "delete"
	pass "a queue with messages waiting keeps its pages ($held bytes) and its messages"
}

printf 'give_back_after = "3s"\n' >"$T/giveback.conf"
start_daemon -c "$T/giveback.conf"
test_drained_queue_gives_its_pages_back_and_takes_them_again
test_queue_with_a_message_waiting_keeps_its_pages
stop_daemon
