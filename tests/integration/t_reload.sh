#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_reload.sh - SIGHUP rereads the config: new queues appear; a broken
# file is refused with file:line in the log while the daemon keeps its
# running config and keeps serving; SIGTERM still stops it cleanly.
. "$(dirname "$0")/lib.sh"

CONF="$T/reload.conf"

# poll_until SECONDS WHAT COMMAND...: retry COMMAND every 50 ms
poll_until() {
	limit=$(($1 * 20)) what=$2
	shift 2
	i=0
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt $limit ] || fail "$what: not within $((limit / 20)) s"
		sleep 0.05
	done
}

write_config() { # QUEUE...
	: >"$CONF.new"
	for q in "$@"; do
		printf 'queue "%s" {\n\tmax_msgs = 5\n}\n' "$q" >>"$CONF.new"
	done
	mv "$CONF.new" "$CONF"
}

test_reload_adds_new_queue() {
	"$IPCQ" stat a >/dev/null || fail "queue 'a' of the config does not exist after start"
	st=0
	"$IPCQ" stat b >/dev/null 2>&1 || st=$?
	assert_eq 4 "$st" "stat of 'b' before it is in the config"
	"$IPCQ" send a kept
	write_config a b
	kill -HUP "$DPID"
	poll_until 2 "queue 'b' after SIGHUP" "$IPCQ" stat b
	assert_eq 5 "$(qstat b max_msgs)" "max_msgs of 'b' from the reloaded config"
	assert_eq 1 "$(qstat a depth)" "depth of 'a' across the reload"
	pass "SIGHUP rereads the config: queue 'b' appears within 2 s, 'a' keeps its message"
}

test_broken_config_is_refused_and_logged() {
	lines_before=$(wc -l <"$DLOG")
	# line 7 has an unknown key; queue "c" must not be created
	cat >"$CONF" <<'EOF'
queue "a" {
	max_msgs = 5
}
queue "c" {
	max_msgs = 5
}
no_such_key = 1
EOF
	kill -HUP "$DPID"
	poll_until 2 "an error naming reload.conf:7 in the log" \
		sh -c 'tail -n +"$2" "$1" | grep -q "reload.conf:7:"' sh "$DLOG" "$((lines_before + 1))"
	daemon_alive || fail "ipcbrokerd died on a broken config"
	"$IPCQ" stat a >/dev/null || fail "ipcbrokerd stopped serving after a broken config"
	"$IPCQ" stat b >/dev/null || fail "queue 'b' is gone after a refused reload"
	st=0
	"$IPCQ" stat c >/dev/null 2>&1 || st=$?
	assert_eq 4 "$st" "stat of 'c' from the refused config"
	"$IPCQ" recv a >"$T/out"
	assert_eq kept "$(cat "$T/out")" "message of 'a' after the refused reload"
	pass "a broken config on SIGHUP is logged with file:line; the daemon keeps serving with the old one"
}

test_reload_after_fixing_config() {
	write_config a b c
	kill -HUP "$DPID"
	poll_until 2 "queue 'c' after the config was fixed" "$IPCQ" stat c
	daemon_alive || fail "ipcbrokerd died on a reload"
	pass "after a refused reload, fixing the file and SIGHUP again applies it"
}

test_sigterm_after_reloads_exits_0() {
	stop_daemon TERM
	pass "after reloads the daemon still stops with exit 0 on SIGTERM"
}

write_config a
start_daemon -c "$CONF"
test_reload_adds_new_queue
test_broken_config_is_refused_and_logged
test_reload_after_fixing_config
test_sigterm_after_reloads_exits_0
