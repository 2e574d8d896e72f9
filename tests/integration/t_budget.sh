#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_budget.sh - with depth in the ring, a queue needs only a small window,
# so one daemon under the kernel's default per-user mq budget
# (RLIMIT_MSGQUEUE 800 KiB) holds at least 100 queues of the default
# geometry (max_msgs 10, msg_size 512), and each still holds far more than
# 10 messages.  The daemon runs as nobody, so the budget counted is
# nobody's, not that of root's tests running beside this one; in private
# IPC and mount namespaces (msg_max is the kernel's default 10, and the
# rings go to a /dev/shm of the test's own, gone with it).
PRIVNS_FLAGS="--mount --ipc" . "$(dirname "$0")/privns.sh"
privns_mount_private /dev/shm
. "$(dirname "$0")/lib.sh"
need_nobody
# it fills nobody's budget: no other test makes queues as nobody meanwhile
nobody_mq_budget whole
mount -t tmpfs -o mode=1777 ipcq-test-shm /dev/shm || fail "cannot mount a private /dev/shm"

BUDGET=819200
XDG="$T/xdg-nobody"
mkdir -m 700 "$XDG"
chown nobody "$XDG"
printf 'defaults { ring_size = "64K"  max_payload = "16K" }\n' >"$T/budget.conf"
chmod 644 "$T/budget.conf"

uq() { # ipcq against nobody's daemon
	as_nobody env XDG_RUNTIME_DIR="$XDG" $IPCQ_NOBODY --user "$@"
}

# UPID is the subshell that runs the as_nobody function; the daemon is
# its child, and outlived it before this stopped both
UPID=
stop_user_daemon() {
	[ -n "$UPID" ] || return 0
	kids=$(grep -l "^PPid:[[:space:]]*$UPID\$" /proc/[0-9]*/status 2>/dev/null | sed 's|^/proc/\([0-9]*\)/status$|\1|')
	# the daemon first: the subshell then reaps it and ends
	# shellcheck disable=SC2086
	[ -z "$kids" ] || kill -TERM $kids 2>/dev/null || true
	[ -n "$kids" ] || kill -TERM "$UPID" 2>/dev/null || true
	wait "$UPID" 2>/dev/null || true
	UPID=
}

test_default_queues_fit_the_default_budget() {
	[ "$(cat /proc/sys/fs/mqueue/msg_max)" -eq 10 ] || fail "msg_max in a new IPC namespace is not 10"
	# shellcheck disable=SC2086
	as_nobody env XDG_RUNTIME_DIR="$XDG" prlimit --msgqueue=$BUDGET:$BUDGET \
		$IPCBROKERD_NOBODY --user -c "$T/budget.conf" >>"$T/user.log" 2>&1 &
	UPID=$!
	i=0
	until uq list >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "nobody's daemon did not answer in 5 s: $(cat "$T/user.log")"
		sleep 0.05
	done
	n=0
	while [ $n -lt 400 ] && uq create "q$n" >"$T/out" 2>"$T/err"; do
		n=$((n + 1))
	done
	[ $n -lt 400 ] || fail "400 queues fit a budget of $BUDGET bytes: is RLIMIT_MSGQUEUE applied?"
	grep -qi 'budget\|RLIMIT_MSGQUEUE\|ulimit -q\|LimitMSGQUEUE' "$T/err" ||
		fail "the queue past the budget was refused without naming it: $(cat "$T/err")"
	[ "$n" -ge 100 ] || fail "only $n default queues fit a budget of $BUDGET bytes (at least 100 should)"
	echo "$n queues of max_msgs 10, msg_size 512 fit a budget of $BUDGET bytes"
	seq 1000 | uq send q0 || fail "1000 lines into one of them"
	assert_eq 1000 "$(uq stat q0 | sed -n 's/^depth: //p')" "depth of q0"
	[ "$(uq recv -c 1000 q0 | tail -n 1)" = 1000 ] || fail "the 1000 lines did not come back"
	i=0
	while [ $i -lt $n ]; do
		uq delete "q$i" || fail "delete q$i"
		i=$((i + 1))
	done
	stop_user_daemon
	pass "$n default queues fit the default mq budget, each deeper than its window of 10"
}

trap 'stop_user_daemon; cleanup' EXIT
test_default_queues_fit_the_default_budget
