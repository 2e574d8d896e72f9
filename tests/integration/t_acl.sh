#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_acl.sh - access rules: allow_send/allow_recv with uid, user and group
# rules and empty lists, and who may create and delete queues when
# auto_create is off.  Runs ipcq as the user nobody against a daemon run by
# root; root (and the daemon's user) may always do everything.
. "$(dirname "$0")/lib.sh"

need_nobody

says_denied() {
	grep -Eqi 'denied|not permitted|may not|permission' "$T/err" ||
		fail "$1: the error does not say access was denied: $(cat "$T/err")"
}

cat >"$T/acl.conf" <<EOF
auto_create = false

queue "secret" {
	allow_send = { "uid:0" }
	allow_recv = { "uid:0" }
}
queue "open" {
}
queue "grp" {
	allow_send = { "uid:0" }
	allow_recv = { "group:$NOBODY_GROUP" }
}
queue "named" {
	allow_send = { "user:nobody" }
	allow_recv = { }
}
EOF

test_nobody_cannot_send_to_restricted_queue() {
	expect_status 5 "send to 'secret' as nobody" as_nobody $IPCQ_NOBODY send secret x
	says_denied "send to 'secret' as nobody"
	assert_eq 0 "$(qstat secret depth)" "depth of 'secret' after the refused send"
	pass "allow_send = { \"uid:0\" } refuses nobody's send with exit 5 and says so"
}

test_nobody_cannot_recv_from_restricted_queue() {
	"$IPCQ" send secret for-root
	expect_status 5 "recv -t 0.2 from 'secret' as nobody" as_nobody $IPCQ_NOBODY recv -t 0.2 secret
	says_denied "recv from 'secret' as nobody"
	[ ! -s "$T/out" ] || fail "nobody received '$(cat "$T/out")' from 'secret'"
	assert_eq 1 "$(qstat secret depth)" "depth of 'secret' after the refused recv"
	expect_status 5 "purge of 'secret' as nobody" as_nobody $IPCQ_NOBODY purge secret
	assert_eq 1 "$(qstat secret depth)" "depth of 'secret' after the refused purge"
	pass "allow_recv = { \"uid:0\" } refuses nobody's recv and purge with exit 5"
}

test_nobody_can_use_queue_without_rules() {
	expect_status 0 "send to 'open' as nobody" as_nobody $IPCQ_NOBODY send open from-nobody
	head -c 50000 /dev/urandom >"$T/bulk"
	chmod 644 "$T/bulk"
	expect_status 0 "send -f through the ring of 'open' as nobody" as_nobody $IPCQ_NOBODY send -f "$T/bulk" open
	"$IPCQ" recv open >"$T/got"
	assert_eq from-nobody "$(cat "$T/got")" "message nobody sent to 'open'"
	expect_status 0 "recv of a ring message from 'open' as nobody" as_nobody $IPCQ_NOBODY recv -N -t 2 open
	cmp -s "$T/bulk" "$T/out" || fail "nobody did not receive the 50000 bytes it sent through the ring"
	pass "a queue without rules lets nobody send and receive, inline and through the ring"
}

test_nobody_cannot_create_or_delete_with_auto_create_off() {
	expect_status 5 "create newq as nobody" as_nobody $IPCQ_NOBODY create newq
	says_denied "create newq as nobody"
	expect_status 5 "delete 'open' as nobody" as_nobody $IPCQ_NOBODY delete open
	says_denied "delete 'open' as nobody"
	"$IPCQ" stat open >/dev/null || fail "'open' is gone after nobody's refused delete"
	st=0
	as_nobody $IPCQ_NOBODY send implicit x 2>"$T/err" || st=$?
	[ "$st" -eq 4 ] || [ "$st" -eq 5 ] || fail "send to a new queue as nobody exited $st, not 4 or 5"
	expect_status 4 "stat of the queue nobody tried to create by sending" "$IPCQ" stat implicit
	expect_status 4 "stat of the queue nobody tried to create" "$IPCQ" stat newq
	pass "with auto_create = false nobody may not create (exit 5, also not by sending) or delete (exit 5)"
}

test_group_rule_lets_member_receive() {
	"$IPCQ" send grp for-the-group
	expect_status 0 "recv from 'grp' as nobody (group $NOBODY_GROUP)" as_nobody $IPCQ_NOBODY recv -t 2 grp
	assert_eq for-the-group "$(cat "$T/out")" "message nobody received from 'grp'"
	expect_status 5 "send to 'grp' as nobody" as_nobody $IPCQ_NOBODY send grp x
	pass "allow_recv = { \"group:$NOBODY_GROUP\" } lets nobody receive but not send"
}

test_user_rule_and_empty_list() {
	expect_status 0 "send to 'named' as nobody (user:nobody)" as_nobody $IPCQ_NOBODY send named from-nobody
	expect_status 5 "recv from 'named' as nobody (empty allow_recv)" as_nobody $IPCQ_NOBODY recv -t 0.2 named
	expect_status 0 "recv from 'named' as root" "$IPCQ" recv -t 2 named
	assert_eq from-nobody "$(cat "$T/out")" "message root received from 'named'"
	pass "allow_send = { \"user:nobody\" } admits nobody; allow_recv = { } admits only root"
}

test_root_may_do_everything() {
	expect_status 0 "send to 'secret' as root" "$IPCQ" send secret x
	expect_status 0 "recv from 'secret' as root" "$IPCQ" recv -c 2 -t 2 secret
	printf 'for-root\nx\n' >"$T/exp"
	cmp -s "$T/exp" "$T/out" || fail "root received '$(cat "$T/out")' from 'secret'"
	expect_status 0 "send to 'grp' as root" "$IPCQ" send grp y
	expect_status 0 "recv from 'grp' as root" "$IPCQ" recv -t 2 grp
	expect_status 0 "create newq as root" "$IPCQ" create newq
	expect_status 0 "delete newq as root" "$IPCQ" delete newq
	expect_status 0 "delete 'open' as root" "$IPCQ" delete open
	expect_status 4 "stat of 'open' after root deleted it" "$IPCQ" stat open
	pass "root sends and receives on restricted queues, creates and deletes"
}

start_daemon -c "$T/acl.conf"
test_nobody_cannot_send_to_restricted_queue
test_nobody_cannot_recv_from_restricted_queue
test_nobody_can_use_queue_without_rules
test_nobody_cannot_create_or_delete_with_auto_create_off
test_group_rule_lets_member_receive
test_user_rule_and_empty_list
test_root_may_do_everything
stop_daemon
