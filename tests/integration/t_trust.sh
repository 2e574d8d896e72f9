#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_trust.sh - the daemon owns what it uses, and no user can take more
# than its share: objects squatted under a queue's names are refused and
# left alone; a wrecked queue of ours is quarantined, then purged or
# deleted; a per-user daemon and the system daemon of the same namespace
# never share an object; a consumer in a private PID namespace keeps its
# views; one user's connection flood locks nobody else out; oversized or
# too many queues are refused; a forked child cannot use its parent's
# handle.
. "$(dirname "$0")/lib.sh"
need_nobody
nobody_mq_budget shared
TRUST="$STRESS/trust"
TRUST_NOBODY=$(nobody_prog "$TRUST")
REG="$T/$NS.queues"
RC="$STRESS/ringcrash"
HELD=

test_cleanup() {
	for p in $HELD; do
		kill -KILL "$p" 2>/dev/null || true
	done
	for n in squat1 squat2; do
		"$TRUST" unsquat "/ipcq.$NS.$n.0123456789abcdef" 2>/dev/null || true
	done
}

cat >"$T/trust.conf" <<EOF
user_limits {
	max_clients = 16
	max_queues = 3
	max_ring_size = "1M"
	max_ring_total = "2200K"
}
EOF

# add_record NAME TOKEN: a registry line for a queue of 10 x 512 and a 64K ring
add_record() {
	printf '%s %s 10 512 65536 32768 0 0\n' "$1" "$2" >>"$REG"
}

test_squatted_objects_are_refused_and_left_alone() {
	"$IPCQ" create mine
	stop_daemon
	# another user made the names first, world-writable; then the same
	# user as the daemon, but with the wrong mode
	as_nobody $TRUST_NOBODY squat "/ipcq.$NS.squat1.0123456789abcdef" 666 10 512 200704 >/dev/null ||
		fail "nobody could not make the squatting objects"
	"$TRUST" squat "/ipcq.$NS.squat2.0123456789abcdef" 644 10 512 200704 >/dev/null ||
		fail "root could not make the objects with a wrong mode"
	add_record squat1 0123456789abcdef
	add_record squat2 0123456789abcdef
	start_daemon -c "$T/trust.conf"
	grep -q "squat1: not adopted: .*owned by uid $(id -u nobody) with mode 0666" "$DLOG" ||
		fail "the log does not name nobody's squatting object: $(grep squat1 "$DLOG")"
	grep -q "squat2: not adopted: .*mode 0644" "$DLOG" ||
		fail "the log does not name the object with mode 0644: $(grep squat2 "$DLOG")"
	! grep -q "squat[12]: adopted" "$DLOG" || fail "a squatted queue was adopted"
	"$IPCQ" list >"$T/list"
	! grep -q squat "$T/list" || fail "a squatted queue is listed: $(cat "$T/list")"
	grep -q '^mine' "$T/list" || fail "the daemon's own queue was not adopted beside them"
	[ -e "/dev/shm/ipcq.$NS.squat1.0123456789abcdef.ring" ] || fail "the daemon removed nobody's object"
	! grep -q squat "$REG" || fail "the registry still lists the squatted queues"
	"$IPCQ" send mine hello
	assert_eq hello "$("$IPCQ" recv -t 2 mine)" "round trip through the adopted queue"
	"$TRUST" unsquat "/ipcq.$NS.squat1.0123456789abcdef"
	"$TRUST" unsquat "/ipcq.$NS.squat2.0123456789abcdef"
	pass "objects another user (or a wrong mode) made under a queue's names are refused, named, left alone"
}

test_registry_is_the_daemons_alone() {
	mode=$(stat -c %a "$REG")
	assert_eq 600 "$mode" "mode of the registry"
	mode=$(stat -c %a "$T/$NS.holders")
	assert_eq 600 "$mode" "mode of the holders file"
	for f in /dev/shm/ipcq."$NS".*; do
		assert_eq 600 "$(stat -c %a "$f")" "mode of $f"
		assert_eq "$(id -u)" "$(stat -c %u "$f")" "owner of $f"
	done
	# a random token per queue: nobody can tell a name before it exists
	grep -Eq '^mine [0-9a-f]{16} ' "$REG" || fail "the registry has no token for 'mine': $(cat "$REG")"
	pass "registry and holders files are 0600, objects 0600 and owned by the daemon, names carry a token"
}

test_wrecked_queue_is_quarantined_then_purged_and_deleted() {
	"$IPCQ" create wreck
	"$IPCQ" send wreck before
	ring=$(ls /dev/shm/ipcq."$NS".wreck.*.ring)
	stop_daemon KILL
	# the magic of the ring's header, as a client could scribble it
	printf 'XXXXXXXX' | dd of="$ring" bs=1 count=8 conv=notrunc 2>/dev/null
	t0=$(date +%s%N)
	start_daemon -c "$T/trust.conf"
	[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 1500 ] || fail "the restarted daemon took over 1.5 s to serve"
	grep -q "queue wreck: quarantined" "$DLOG" || fail "the wrecked queue was not quarantined"
	assert_eq 1 "$(qstat wreck quarantined)" "quarantined field of stat"
	expect_status 1 "send to the quarantined queue" "$IPCQ" send -t 1 wreck x
	grep -q quarantined "$T/err" || fail "the refusal does not say quarantined: $(cat "$T/err")"
	expect_status 0 "purge of the quarantined queue" "$IPCQ" purge wreck
	assert_eq 0 "$(qstat wreck quarantined)" "quarantined after purge"
	[ ! -e "$ring" ] || fail "the wrecked ring is still there after purge"
	"$IPCQ" send wreck after
	assert_eq after "$("$IPCQ" recv -t 2 wreck)" "round trip through the rebuilt queue"
	ring=$(ls /dev/shm/ipcq."$NS".wreck.*.ring)
	stop_daemon KILL
	printf 'XXXXXXXX' | dd of="$ring" bs=1 count=8 conv=notrunc 2>/dev/null
	start_daemon -c "$T/trust.conf"
	expect_status 0 "delete of the quarantined queue right after a restart" "$IPCQ" delete wreck
	expect_status 4 "stat after delete" "$IPCQ" stat wreck
	[ ! -e "$ring" ] || fail "delete left the wrecked ring behind"
	pass "a wrecked queue is quarantined at restart (opens refused), purge rebuilds it, delete removes it"
}

test_user_daemon_and_system_daemon_share_no_object() {
	usock="$T/xdg/user.sock"
	mkdir -p "$T/xdg"
	chown nobody "$T/xdg"
	chmod 700 "$T/xdg"
	# nobody's daemon of the very same namespace name, on its own socket
	as_nobody sh -c 'echo $$ >"$0"; exec "$@"' "$T/xdg/pid" $IPCBROKERD_NOBODY --namespace "$NS" \
		--socket "$usock" >"$T/user.log" 2>&1 &
	i=0
	until [ -s "$T/xdg/pid" ] && as_nobody $IPCQ_NOBODY --socket "$usock" list >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "nobody's daemon did not start: $(cat "$T/user.log")"
		sleep 0.05
	done
	upid=$(cat "$T/xdg/pid")
	HELD="$HELD $upid"
	as_nobody $IPCQ_NOBODY --socket "$usock" send logs from-nobody || fail "send to nobody's daemon"
	"$IPCQ" send logs from-root
	assert_eq from-root "$("$IPCQ" recv -t 2 logs)" "what root's daemon delivers"
	assert_eq from-nobody "$(as_nobody $IPCQ_NOBODY --socket "$usock" recv -t 2 logs)" \
		"what nobody's daemon delivers"
	! grep -q "logs: adopted" "$DLOG" "$T/user.log" || fail "a daemon adopted the other's queue"
	n=$(ls /dev/shm | grep -c "^ipcq\.$NS\.logs\..*\.ring$")
	assert_eq 2 "$n" "rings named for queue 'logs' (one per daemon)"
	as_nobody $IPCQ_NOBODY --socket "$usock" delete logs
	kill -TERM "$upid"
	"$IPCQ" delete logs
	pass "a user's daemon and the system daemon of one namespace name keep separate objects"
}

test_consumer_in_private_pid_namespace_keeps_its_views() {
	unshare --pid --fork --kill-child true 2>/dev/null || { echo "skipped: no private PID namespaces here"; return 0; }
	"$IPCQ" create views
	"$RC" send views 30000 3 || fail "send"
	for i in 1 2 3; do
		unshare --pid --fork --kill-child "$RC" hold-view views >"$T/view$i.out" &
		HELD="$HELD $!"
		eval "vpid$i=$!"
		wait_line "$T/view$i.out" "ready 30000"
	done
	sleep 2.5 # two sweeps of the daemon
	assert_eq 0 "$(qstat views redelivered)" "redelivered while the containerized consumers live"
	assert_eq 0 "$(qstat views dropped)" "dropped while the containerized consumers live"
	expect_status 3 "another consumer's recv while the views are held" "$IPCQ" recv -t 0.3 views
	kill -KILL "$vpid1" "$vpid2" "$vpid3" # unshare ignores TERM while it waits
	wait "$vpid1" "$vpid2" "$vpid3" 2>/dev/null || true
	i=0
	while [ "$(qstat views dropped)" -lt 3 ] && [ $i -lt 60 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	assert_eq 3 "$(qstat views dropped)" "views dropped once their holders died (at-most-once)"
	"$IPCQ" delete views
	pass "consumers in private PID namespaces keep their views while they live; dead, they are found"
}

test_connection_flood_of_one_user_locks_nobody_out() {
	lines_before=$(grep -c "refusing a client" "$DLOG" || true)
	mkfifo "$T/hold"
	as_nobody $TRUST_NOBODY flood "$SOCK" 40 <"$T/hold" >"$T/flood.out" &
	fpid=$!
	HELD="$HELD $fpid"
	exec 7>"$T/hold"
	wait_line "$T/flood.out" "answered"
	assert_eq "answered 16 of 40" "$(cat "$T/flood.out")" "connections nobody got served"
	expect_status 0 "root's list during the flood" "$IPCQ" list
	if getent passwd daemon >/dev/null; then
		expect_status 0 "another user's list during the flood" setpriv --reuid=daemon --regid="$NOBODY_GROUP" \
			--clear-groups $IPCQ_NOBODY list
	fi
	exec 7>&-
	wait "$fpid" 2>/dev/null || true
	lines=$(( $(grep -c "refusing a client" "$DLOG") - lines_before ))
	[ "$lines" -le 12 ] || fail "24 refusals wrote $lines log lines; they should be rate-limited"
	pass "one user's 40 connections: 16 served (user_limits), root and others get in, $lines log lines"
}

test_oversized_and_too_many_queues_are_refused() {
	expect_status 1 "create --ring-size 1024G as nobody" as_nobody $IPCQ_NOBODY create huge --ring-size 1024G
	grep -q "64G" "$T/err" || fail "the refusal does not name the bound: $(cat "$T/err")"
	expect_status 1 "create --ring-size 2M as nobody" as_nobody $IPCQ_NOBODY create big --ring-size 2M
	grep -q "max_ring_size" "$T/err" || fail "the refusal does not name user_limits.max_ring_size: $(cat "$T/err")"
	expect_status 1 "create --max-msgs 100000 as nobody" as_nobody $IPCQ_NOBODY create deep --max-msgs 100000 \
		--ring-size 1M
	for q in u1 u2; do
		expect_status 0 "create $q as nobody" as_nobody $IPCQ_NOBODY create "$q" --ring-size 1M
	done
	expect_status 1 "a third 1M ring as nobody" as_nobody $IPCQ_NOBODY create u3 --ring-size 1M
	grep -q "max_ring_total" "$T/err" || fail "the refusal does not name max_ring_total: $(cat "$T/err")"
	expect_status 0 "a small third queue as nobody" as_nobody $IPCQ_NOBODY create u3 --ring-size 64K
	expect_status 1 "a fourth queue as nobody" as_nobody $IPCQ_NOBODY create u4 --ring-size 64K
	grep -q "max_queues" "$T/err" || fail "the refusal does not name max_queues: $(cat "$T/err")"
	expect_status 1 "auto-create past the limit as nobody" as_nobody $IPCQ_NOBODY send u5 x
	for q in huge big deep u4 u5; do
		! ls /dev/shm/ipcq."$NS"."$q".* >/dev/null 2>&1 || fail "refused queue '$q' left an object"
	done
	expect_status 0 "root is not bound by user_limits" "$IPCQ" create rootbig --ring-size 4M
	for q in u1 u2 u3 rootbig; do
		"$IPCQ" delete "$q"
	done
	pass "past the geometry bounds and user_limits, creates are refused naming the limit; root is not bound"
}

test_list_shows_a_user_only_its_queues() {
	cat >"$T/vis.conf" <<EOF
queue "secret" {
	allow_send = { "uid:0" }
	allow_recv = { "uid:0" }
}
queue "open" {
}
EOF
	stop_daemon
	start_daemon -c "$T/vis.conf"
	expect_status 0 "list as nobody" as_nobody $IPCQ_NOBODY list
	grep -q '^open' "$T/out" || fail "nobody does not see 'open'"
	! grep -q '^secret' "$T/out" || fail "nobody sees 'secret', which it may not use"
	expect_status 4 "stat of 'secret' as nobody" as_nobody $IPCQ_NOBODY stat secret
	expect_status 0 "list as root" "$IPCQ" list
	grep -q '^secret' "$T/out" || fail "root does not see 'secret'"
	printf 'show_all_queues = true\n' >>"$T/vis.conf"
	kill -HUP "$DPID"
	sleep 0.3
	expect_status 0 "list as nobody with show_all_queues" as_nobody $IPCQ_NOBODY list
	grep -q '^secret' "$T/out" || fail "show_all_queues = true does not show 'secret' to nobody"
	stop_daemon
	start_daemon -c "$T/trust.conf"
	pass "list and stat show a user the queues it may use; show_all_queues opens them up"
}

test_forked_child_cannot_use_its_parents_handle() {
	"$TRUST" fork-handle "$SOCK" forked >"$T/out" 2>&1 || fail "$(cat "$T/out")"
	"$IPCQ" delete forked
	pass "$(cat "$T/out")"
}

test_forged_closed_message_is_refused() {
	"$TRUST" forge-closed "$SOCK" closing >"$T/out" 2>&1 || fail "$(cat "$T/out")"
	"$IPCQ" stat closing >/dev/null || fail "the queue is gone after a forged CLOSED"
	"$IPCQ" delete closing
	pass "$(cat "$T/out")"
}

test_meta_page_is_read_only_to_clients() {
	"$IPCQ" create metaq
	as_nobody $TRUST_NOBODY meta-readonly "$SOCK" metaq >"$T/out" 2>&1 || fail "$(cat "$T/out")"
	"$IPCQ" delete metaq
	pass "$(cat "$T/out") (deletion and quarantine are announced where no client can forge them)"
}

# wait_line FILE TEXT: until FILE has a line starting with TEXT (5 s)
wait_line() {
	i=0
	until grep -q "^$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "no '$2' in $1: $(cat "$1")"
		sleep 0.05
	done
}

start_daemon -c "$T/trust.conf"
test_squatted_objects_are_refused_and_left_alone
test_registry_is_the_daemons_alone
test_wrecked_queue_is_quarantined_then_purged_and_deleted
test_user_daemon_and_system_daemon_share_no_object
test_consumer_in_private_pid_namespace_keeps_its_views
test_connection_flood_of_one_user_locks_nobody_out
test_oversized_and_too_many_queues_are_refused
test_list_shows_a_user_only_its_queues
test_forked_child_cannot_use_its_parents_handle
test_forged_closed_message_is_refused
test_meta_page_is_read_only_to_clients
stop_daemon
