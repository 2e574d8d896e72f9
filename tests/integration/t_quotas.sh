#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_quotas.sh - per-user quotas: one user (nobody) hits each of its
# quotas (queues, ring bytes of one queue and of all, kernel mq bytes,
# depth, connections); each refusal exits 1 and names the quota, its value
# and the uid; another user (daemon) with a user section of its own is not
# affected, and neither is root; a reload that changes a quota applies to
# the next request.
. "$(dirname "$0")/lib.sh"
need_nobody
getent passwd daemon >/dev/null || { echo "SKIP: no user daemon"; exit 77; }
command -v setpriv >/dev/null 2>&1 || { echo "SKIP: no setpriv to run commands as the user daemon"; exit 77; }
MQ_BUDGET_NEEDED=131072
TRUST_NOBODY=$(nobody_prog "$STRESS/trust")
NOBODY_UID=$(id -u nobody)
DAEMON_UID=$(id -u daemon)
HELD=

test_cleanup() {
	for p in $HELD; do
		kill -KILL "$p" 2>/dev/null || true
	done
}

as_daemon() {
	setpriv --reuid=daemon --regid="$NOBODY_GROUP" --clear-groups "$@"
}
nq() { as_nobody $IPCQ_NOBODY "$@"; }
dq() { as_daemon $IPCQ_NOBODY "$@"; }

# write_config MAX_QUEUES: the quotas under test
write_config() {
	cat >"$T/quotas.conf" <<EOF
defaults {
	ring_size = "64K"
	max_payload = "16K"
}
user_limits {
	max_clients = 4
	max_queues = $1
	max_ring_size = "1M"
	max_ring_total = "1536K"
	max_mq_total = "24K"
	max_depth = 100
}
user "daemon" {
	max_queues = 5
	max_mq_total = "64K"
}
EOF
}

# refused WHAT QUOTA VALUE UID COMMAND...: exit 1, and stderr names
# "quota QUOTA (VALUE) for uid UID"
refused() {
	what=$1 quota=$2 value=$3 uid=$4
	shift 4
	expect_status 1 "$what" "$@"
	grep -q "quota $quota ($value) for uid $uid" "$T/err" ||
		fail "$what: the error does not name quota $quota ($value) for uid $uid: $(cat "$T/err")"
	echo "  $what: $(cat "$T/err")"
}

test_ring_size_and_ring_total() {
	refused "create --ring-size 2M as nobody" max_ring_size 1048576 "$NOBODY_UID" nq create big --ring-size 2M
	expect_status 0 "create a 1M ring as nobody" nq create r1 --ring-size 1M
	refused "a second 1M ring as nobody" max_ring_total 1572864 "$NOBODY_UID" nq create r2 --ring-size 1M
	expect_status 0 "a 256K ring beside it as nobody" nq create r2 --ring-size 256K
	expect_status 0 "a 1M ring as user daemon" dq create d1 --ring-size 1M
	expect_status 0 "a 2M ring as root" "$IPCQ" create rootbig --ring-size 2M
	pass "ring_size past max_ring_size, rings past max_ring_total are refused by name; others unaffected"
}

test_queues() {
	expect_status 0 "a third queue as nobody" nq create r3
	refused "a fourth queue as nobody" max_queues 3 "$NOBODY_UID" nq create r4
	refused "auto-create of a fourth queue as nobody" max_queues 3 "$NOBODY_UID" nq send r4 x
	expect_status 4 "stat of the refused queue" "$IPCQ" stat r4
	for q in d2 d3 d4 d5; do
		expect_status 0 "create $q as user daemon (its own section)" dq create "$q"
	done
	refused "a sixth queue as user daemon" max_queues 5 "$DAEMON_UID" dq create d6
	grep -q 'user "daemon"' "$T/err" || fail "the refusal does not name the section it comes from: $(cat "$T/err")"
	expect_status 0 "create as root past every quota" "$IPCQ" create rootq
	pass "max_queues refuses the fourth queue of nobody, the sixth of daemon (user section); root is exempt"
}

test_mq_total() {
	# r1, r2, r3: 3 windows of 10 x 512 bytes; nobody may not make another
	expect_status 0 "delete r3 as nobody" nq delete r3
	refused "a window of 10 x 4096 bytes as nobody" max_mq_total 24576 "$NOBODY_UID" nq create wide --msg-size 4096
	# alone it would fit: it is the sum that is refused
	refused "a window of 10 x 2048 beside two of 10 x 512" max_mq_total 24576 "$NOBODY_UID" \
		nq create mid --msg-size 2048
	expect_status 0 "a window of 10 x 512 as nobody" nq create r3
	expect_status 0 "delete d5 as user daemon" dq delete d5
	expect_status 0 "a window of 10 x 1024 as user daemon" dq create wide --msg-size 1024
	pass "max_mq_total counts the kernel mq bytes of all of a user's queues"
}

test_depth() {
	expect_status 0 "delete r3 as nobody" nq delete r3
	refused "create --max-depth 1000 as nobody" max_depth 100 "$NOBODY_UID" nq create deep --max-depth 1000
	expect_status 0 "create a queue of the default depth as nobody" nq create shallow
	assert_eq 100 "$(qstat shallow max_depth)" "max_depth of nobody's queue that asked for none"
	st=0
	seq 150 | nq send -t 0.5 shallow 2>"$T/err" || st=$?
	assert_eq 3 "$st" "exit status of 150 messages into a queue of max_depth 100 ($(cat "$T/err"))"
	assert_eq 100 "$(qstat shallow depth)" "messages waiting in nobody's queue"
	expect_status 0 "create a queue of the default depth as root" "$IPCQ" create rootdeep
	assert_eq 0 "$(qstat rootdeep max_depth)" "max_depth of root's queue"
	pass "max_depth refuses a deeper queue, bounds one that asked for no bound (150 sends: 100 wait)"
}

test_connections() {
	mkfifo "$T/hold"
	as_nobody $TRUST_NOBODY flood "$SOCK" 4 <"$T/hold" >"$T/flood.out" &
	fpid=$!
	HELD="$HELD $fpid"
	exec 7>"$T/hold"
	i=0
	until grep -q answered "$T/flood.out" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "the flood did not start: $(cat "$T/flood.out")"
		sleep 0.05
	done
	assert_eq "answered 4 of 4" "$(cat "$T/flood.out")" "nobody's connections within max_clients"
	refused "a fifth connection of nobody" max_clients 4 "$NOBODY_UID" nq list
	expect_status 0 "list as user daemon while nobody holds 4" dq list
	expect_status 0 "list as root while nobody holds 4" "$IPCQ" list
	exec 7>&-
	wait "$fpid" 2>/dev/null || true
	expect_status 0 "list as nobody once its connections are gone" nq list
	pass "max_clients refuses nobody's fifth connection with the quota's name; daemon and root get in"
}

test_reload_applies_to_new_requests() {
	refused "a fourth queue as nobody before the reload" max_queues 3 "$NOBODY_UID" nq create r4
	write_config 4
	lines=$(grep -c "reloaded" "$DLOG" || true)
	kill -HUP "$DPID"
	i=0
	until [ "$(grep -c "reloaded" "$DLOG")" -gt "$lines" ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "the daemon did not reload"
		sleep 0.05
	done
	expect_status 0 "a fourth queue as nobody after max_queues = 4" nq create r4
	refused "a fifth queue as nobody after max_queues = 4" max_queues 4 "$NOBODY_UID" nq create r5
	write_config 2
	lines=$(grep -c "reloaded" "$DLOG")
	kill -HUP "$DPID"
	i=0
	until [ "$(grep -c "reloaded" "$DLOG")" -gt "$lines" ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "the daemon did not reload"
		sleep 0.05
	done
	refused "a queue as nobody after max_queues = 2" max_queues 2 "$NOBODY_UID" nq create r5
	expect_status 0 "stat of a queue made before the quota went down" "$IPCQ" stat r4
	pass "a reload raising, then lowering max_queues applies to the next create; existing queues stay"
}

write_config 3
start_daemon -c "$T/quotas.conf"
test_ring_size_and_ring_total
test_queues
test_mq_total
test_depth
test_connections
test_reload_applies_to_new_requests
stop_daemon
