#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_limits.sh - a queue the kernel's POSIX mq limits refuse fails with a
# message that names the limit (fs.mqueue.msg_max, fs.mqueue.msgsize_max)
# and leaves nothing behind; the daemon lives on.  Changes no sysctl.
. "$(dirname "$0")/lib.sh"

MQ=/proc/sys/fs/mqueue
if [ ! -r "$MQ/msg_max" ] || [ ! -r "$MQ/msgsize_max" ]; then
	echo "SKIP: no $MQ"
	exit 77
fi
MSG_MAX=$(cat "$MQ/msg_max")
MSGSIZE_MAX=$(cat "$MQ/msgsize_max")
DEEP=1000
[ "$MSG_MAX" -lt "$DEEP" ] || { echo "SKIP: fs.mqueue.msg_max is $MSG_MAX, not below $DEEP"; exit 77; }
BIG=$((MSGSIZE_MAX + 1))
[ "$BIG" -le 1048576 ] || { echo "SKIP: fs.mqueue.msgsize_max is $MSGSIZE_MAX, above what a queue may ask"; exit 77; }

# The kernel lets a process with CAP_SYS_RESOURCE exceed both sysctls.
daemon_has_cap_sys_resource() {
	capeff=$(sed -n 's/^CapEff:[[:space:]]*//p' "/proc/$DPID/status")
	[ $((0x$capeff >> 24 & 1)) -eq 1 ]
}

# expect_refused QUEUE LIMIT WHAT CREATE-ARGS...
expect_refused() {
	q=$1 limit=$2 what=$3
	shift 3
	st=0
	"$IPCQ" create "$q" "$@" 2>"$T/err" || st=$?
	if [ "$st" -eq 0 ] && daemon_has_cap_sys_resource; then
		"$IPCQ" delete "$q"
		echo "SKIP: ipcbrokerd has CAP_SYS_RESOURCE, the kernel does not enforce $limit"
		exit 77
	fi
	assert_eq 1 "$st" "exit status of create with $what ($(cat "$T/err"))"
	grep -q "$limit" "$T/err" || fail "the error for $what does not name $limit: $(cat "$T/err")"
	st=0
	"$IPCQ" stat "$q" >/dev/null 2>&1 || st=$?
	assert_eq 4 "$st" "stat of the refused queue '$q'"
	for f in /dev/shm/ipcq."$NS"."$q"*; do
		[ ! -e "$f" ] || fail "the refused queue '$q' left $f behind"
	done
}

test_too_deep_queue_names_msg_max() {
	expect_refused deep fs.mqueue.msg_max "--max-msgs $DEEP (msg_max $MSG_MAX)" --max-msgs "$DEEP"
	pass "create --max-msgs $DEEP above fs.mqueue.msg_max=$MSG_MAX fails with exit 1 naming the sysctl"
}

test_too_large_message_size_names_msgsize_max() {
	expect_refused wide fs.mqueue.msgsize_max "--msg-size $BIG (msgsize_max $MSGSIZE_MAX)" --msg-size "$BIG"
	pass "create --msg-size $BIG above fs.mqueue.msgsize_max fails with exit 1 naming the sysctl"
}

test_daemon_serves_after_refusals() {
	daemon_alive || fail "ipcbrokerd died after refusing queues"
	# each limit on its own, to spare the per-user mq budget other tests share
	"$IPCQ" create deepest --max-msgs "$MSG_MAX"
	"$IPCQ" create widest --max-msgs 1 --msg-size "$MSGSIZE_MAX"
	for q in deepest widest; do
		"$IPCQ" send "$q" hello
		"$IPCQ" recv -t 2 "$q" >"$T/out"
		assert_eq hello "$(cat "$T/out")" "message through queue '$q' at a limit"
	done
	pass "after the refusals the daemon is alive and queues at the limits work"
}

# A queue of the config the kernel refuses: logged with the limit, and the
# daemon starts and serves the rest.
test_config_queue_beyond_limits_is_logged() {
	stop_daemon
	printf 'queue "cfgdeep" {\n\tmax_msgs = %s\n}\nqueue "cfgok" {\n}\n' "$DEEP" >"$T/limits.conf"
	lines_before=$(wc -l <"$DLOG")
	start_daemon -c "$T/limits.conf"
	tail -n +"$((lines_before + 1))" "$DLOG" | grep cfgdeep | grep -q fs.mqueue.msg_max ||
		fail "the log does not name fs.mqueue.msg_max for queue cfgdeep"
	"$IPCQ" stat cfgok >/dev/null || fail "queue cfgok of the config is missing"
	pass "a config queue beyond fs.mqueue.msg_max is logged naming the limit; the others are served"
}

start_daemon
test_too_deep_queue_names_msg_max
test_too_large_message_size_names_msgsize_max
test_daemon_serves_after_refusals
test_config_queue_beyond_limits_is_logged
stop_daemon

# When other processes of this user hold the per-user mq budget, a test
# skips and says so instead of failing halfway.  The kernel compares the
# user's total with the caller's own RLIMIT_MSGQUEUE, so under a limit of
# 16 KiB a stand-in holding what is left of it leaves a nested test less
# than the 8 KiB it asks for, while tests running beside this one keep
# their budget.
test_used_up_budget_makes_a_test_skip_with_the_reason() {
	limit=16384
	prlimit --msgqueue=$limit:$limit "$STRESS/mqbudget" --hold "ipcq.$NS.hog" >"$T/hog" &
	hog=$!
	i=0
	until [ -s "$T/hog" ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || { kill $hog; fail "the budget holder did not start"; }
		sleep 0.05
	done
	st=0
	prlimit --msgqueue=$limit:$limit env MQ_BUDGET_NEEDED=8192 sh "$S/tests/integration/t_cli.sh" \
		>"$T/nested" 2>&1 || st=$?
	kill $hog
	wait $hog 2>/dev/null || true
	assert_eq 77 "$st" "exit status of t_cli.sh with the budget held ($(tail -n 3 "$T/nested"))"
	grep -Eq "^SKIP: .*uid $(id -u) hold about [0-9]+ of its $limit bytes" "$T/nested" ||
		fail "t_cli.sh did not say why it skipped: $(cat "$T/nested")"
	pass "with the mq budget held by another process a test skips, naming the bytes in use"
}
test_used_up_budget_makes_a_test_skip_with_the_reason
