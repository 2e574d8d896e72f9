#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_truncate.sh - a client cuts the shared-memory objects of a queue it
# made to nothing (ftruncate through the descriptors the daemon passed
# it; shm_open objects cannot be sealed), as the user nobody.  The daemon,
# which maps the same objects, must not die of the SIGBUS its next access
# raises (daemon/shmguard.c): it quarantines that queue, saying why, goes
# on serving the others, and deletes the wreck without leaving anything.
. "$(dirname "$0")/lib.sh"
need_nobody
H_NOBODY=$(nobody_prog "$STRESS/hostile")

test_truncated_queue_is_quarantined_and_the_daemon_lives() {
	"$IPCQ" create other >/dev/null || fail "cannot create queue other"
	"$IPCQ" send other "before" || fail "send to other"
	out=$(as_nobody $H_NOBODY "$SOCK" truncate cut) || fail "hostile truncate failed: $out"
	case $out in
	"truncated 0 of"* | "") fail "the attack truncated nothing ($out): the test tests nothing" ;;
	"truncated "*) ;;
	*) fail "unexpected output of hostile truncate: $out" ;;
	esac
	# the next sweep (within a second) touches the cut objects
	i=0
	while [ "$(qstat cut quarantined)" != 1 ]; do
		daemon_alive || fail "ipcbrokerd died after a client truncated its queue's objects ($out)"
		[ $i -lt 60 ] || fail "queue cut not quarantined 3 s after its objects were truncated"
		sleep 0.05
		i=$((i + 1))
	done
	daemon_alive || fail "ipcbrokerd died after a client truncated its queue's objects"
	grep -q "queue cut: quarantined: its shared memory was cut short" "$DLOG" ||
		fail "the daemon's log does not say why cut was quarantined"
	# the others are served: inline and through the ring
	assert_eq "before" "$("$IPCQ" recv -t 5 other)" "the message waiting in other"
	head -c 100000 /dev/urandom >"$T/big"
	"$IPCQ" send -t 5 -f "$T/big" other || fail "a ring message to other after the attack"
	"$IPCQ" recv -t 5 -N other >"$T/big.out" || fail "receiving the ring message from other"
	cmp -s "$T/big" "$T/big.out" || fail "the ring message through other came back different"
	# the wreck goes, objects and all
	"$IPCQ" delete cut || fail "delete of the quarantined queue"
	if ls /dev/shm/ipcq."$NS".cut.* >/dev/null 2>&1; then
		fail "objects of cut left in /dev/shm after delete"
	fi
	pass "a queue whose objects a client truncated ($out): quarantined, daemon up, other queues served, deleted"
}

start_daemon
test_truncated_queue_is_quarantined_and_the_daemon_lives
stop_daemon
