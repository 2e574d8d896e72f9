#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_discovery.sh - how clients find a daemon: every user reaches the system
# daemon of a namespace (/run/ipcbroker/NS.sock) by default; a per-user
# daemon (ipcbrokerd --user, under $XDG_RUNTIME_DIR) only when asked for
# (ipcq --user, IPCQ_USER=1); a missing runtime dir or socket says exactly
# that with exit 1, never "no such queue".
#
# The system daemon here is the real thing, started without --socket or
# --namespace, so the test runs in private mount and IPC namespaces with
# fresh tmpfs on /run and /dev/shm: it never meets a real instance, and
# everything it made vanishes with the namespaces.
PRIVNS_FLAGS="--mount --ipc"
. "$(dirname "$0")/privns.sh"
privns_mount_private /run /dev/shm
. "$(dirname "$0")/lib.sh"
need_nobody
nobody_mq_budget shared
mount -t tmpfs -o mode=755 ipcq-test-run /run || fail "cannot mount a private /run"
mount -t tmpfs -o mode=1777 ipcq-test-shm /dev/shm || fail "cannot mount a private /dev/shm"
unset IPCQ_SOCKET IPCQ_USER XDG_RUNTIME_DIR
SYSSOCK=/run/ipcbroker/default.sock
printf 'auto_create = true\n' >"$T/sys.conf"
SYSPID= USERPID=

start_system_daemon() {
	"$IPCBROKERD" -c "$T/sys.conf" >>"$DLOG" 2>&1 &
	SYSPID=$!
	i=0
	until "$IPCQ" list >/dev/null 2>&1; do
		kill -0 $SYSPID 2>/dev/null || fail "the system daemon exited during start-up"
		i=$((i + 1))
		[ $i -lt 100 ] || fail "the system daemon did not answer in 5 s"
		sleep 0.05
	done
}

# stop_pid PID: SIGTERM, and wait until it is gone (it need not be our child)
stop_pid() {
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || return 0
	wait "$1" 2>/dev/null || true
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.05
		i=$((i + 1))
	done
}
test_cleanup() {
	stop_pid "$USERPID"
	stop_pid "$SYSPID"
}

# says_no_daemon PATH WHAT: $T/err names PATH and does not blame a queue
says_no_daemon() {
	grep -q "$1" "$T/err" || fail "$2: the error does not name $1: $(cat "$T/err")"
	! grep -qi 'no such queue' "$T/err" || fail "$2: the error blames a queue: $(cat "$T/err")"
}

test_nobody_reaches_the_system_daemon_by_default() {
	[ -S "$SYSSOCK" ] || fail "the system daemon does not listen on $SYSSOCK"
	expect_status 0 "send as nobody, nothing set" as_nobody env -u XDG_RUNTIME_DIR $IPCQ_NOBODY send jobs from-nobody
	expect_status 0 "recv as root" "$IPCQ" recv -t 2 jobs
	assert_eq from-nobody "$(cat "$T/out")" "what root received from nobody"
	mkdir -m 700 "$T/xdg-nobody"
	chown nobody "$T/xdg-nobody"
	"$IPCQ" send jobs from-root
	expect_status 0 "recv as nobody with XDG_RUNTIME_DIR set" \
		as_nobody env XDG_RUNTIME_DIR="$T/xdg-nobody" $IPCQ_NOBODY recv -t 2 jobs
	assert_eq from-root "$(cat "$T/out")" "what nobody received from root"
	expect_status 0 "list as nobody" as_nobody $IPCQ_NOBODY list
	grep -q '^jobs' "$T/out" || fail "nobody's list does not show jobs: $(cat "$T/out")"
	expect_status 0 "send as nobody with --namespace default" as_nobody $IPCQ_NOBODY --namespace default send jobs x
	"$IPCQ" purge jobs
	pass "nobody reaches the system daemon by default, with or without XDG_RUNTIME_DIR"
}

test_user_without_runtime_dir_says_so() {
	expect_status 1 "ipcq --user list as nobody, no XDG_RUNTIME_DIR" as_nobody $IPCQ_NOBODY --user list
	grep -q XDG_RUNTIME_DIR "$T/err" || fail "the error does not name XDG_RUNTIME_DIR: $(cat "$T/err")"
	expect_status 1 "IPCQ_USER=1 ipcq send as root, no XDG_RUNTIME_DIR" env IPCQ_USER=1 "$IPCQ" send jobs x
	grep -q XDG_RUNTIME_DIR "$T/err" || fail "the error does not name XDG_RUNTIME_DIR: $(cat "$T/err")"
	assert_eq 0 "$(qstat jobs depth)" "depth of the system daemon's jobs after the refused send"
	pass "--user and IPCQ_USER=1 without XDG_RUNTIME_DIR exit 1 naming XDG_RUNTIME_DIR"
}

test_user_without_user_daemon_names_the_socket() {
	expect_status 1 "ipcq --user recv as nobody, no per-user daemon" \
		as_nobody env XDG_RUNTIME_DIR="$T/xdg-nobody" $IPCQ_NOBODY --user recv -t 0 jobs
	says_no_daemon "$T/xdg-nobody/ipcbroker/default.sock" "--user without a per-user daemon"
	expect_status 1 "ipcq --namespace other list, no such daemon" as_nobody $IPCQ_NOBODY --namespace other list
	says_no_daemon /run/ipcbroker/other.sock "--namespace other without its daemon"
	pass "no daemon at the chosen socket: exit 1, the path named, no queue blamed"
}

# start_user_daemon [ENV=VALUE...] [ipcbrokerd args...]: nobody's
# ipcbrokerd --user under $T/xdg-nobody; its pid in $USERPID
start_user_daemon() {
	envs=
	while [ $# -gt 0 ] && case $1 in *=*) true ;; *) false ;; esac; do
		envs="$envs $1"
		shift
	done
	rm -f "$T/xdg-nobody/pid"
	# as_nobody may fork: the daemon tells its own pid, to be stopped
	# shellcheck disable=SC2086
	as_nobody env XDG_RUNTIME_DIR="$T/xdg-nobody" $envs sh -c 'echo $$ >"$0"; exec "$@"' "$T/xdg-nobody/pid" \
		$IPCBROKERD_NOBODY --user "$@" >>"$T/user.log" 2>&1 &
	i=0
	until [ -s "$T/xdg-nobody/pid" ] && USERPID=$(cat "$T/xdg-nobody/pid") &&
		as_nobody env XDG_RUNTIME_DIR="$T/xdg-nobody" $IPCQ_NOBODY --user list >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "the per-user daemon did not answer in 5 s: $(cat "$T/user.log")"
		sleep 0.05
	done
}

test_nobody_runs_a_per_user_daemon() {
	expect_status 1 "ipcbrokerd as nobody without --user" \
		as_nobody $IPCBROKERD_NOBODY -c "$T/sys.conf" --namespace nobody-sys
	grep -q -- --user "$T/err" || fail "the refusal does not point at --user: $(cat "$T/err")"
	start_user_daemon -c "$T/sys.conf"
	[ -S "$T/xdg-nobody/ipcbroker/default.sock" ] || fail "no socket under nobody's runtime dir"
	expect_status 0 "send to the per-user daemon" \
		as_nobody env XDG_RUNTIME_DIR="$T/xdg-nobody" $IPCQ_NOBODY --user send mine private
	expect_status 0 "recv from the per-user daemon with IPCQ_USER=1" \
		as_nobody env XDG_RUNTIME_DIR="$T/xdg-nobody" IPCQ_USER=1 $IPCQ_NOBODY recv -t 2 mine
	assert_eq private "$(cat "$T/out")" "message through the per-user daemon"
	expect_status 0 "list of the system daemon" as_nobody $IPCQ_NOBODY list
	! grep -q '^mine' "$T/out" || fail "the system daemon lists the per-user daemon's queue"
	as_nobody env XDG_RUNTIME_DIR="$T/xdg-nobody" $IPCQ_NOBODY --user delete mine
	stop_pid "$USERPID"
	USERPID=
	pass "nobody runs ipcbrokerd --user and reaches it only with --user or IPCQ_USER=1"
}

# Without -c a per-user daemon reads its user's config:
# $XDG_CONFIG_HOME/ipcbroker/ipcbrokerd.conf, else ~/.config/ipcbroker/.
test_per_user_daemon_reads_the_users_config() {
	for base in cfg home/.config; do
		mkdir -p "$T/xdg-nobody/$base/ipcbroker"
		printf 'queue "from-%s" {\n\tmax_msgs = 3\n}\n' "$(basename "$base")" \
			>"$T/xdg-nobody/$base/ipcbroker/ipcbrokerd.conf"
	done
	chown -R nobody "$T/xdg-nobody"
	for how in "XDG_CONFIG_HOME=$T/xdg-nobody/cfg from-cfg" "HOME=$T/xdg-nobody/home from-.config"; do
		set -- $how
		start_user_daemon "$1"
		expect_status 0 "list of the per-user daemon started with $1" \
			as_nobody env XDG_RUNTIME_DIR="$T/xdg-nobody" $IPCQ_NOBODY --user list
		grep -q "^$2" "$T/out" || fail "the per-user daemon started with $1 has no queue $2: $(cat "$T/out")"
		expect_status 0 "stat of $2" as_nobody env XDG_RUNTIME_DIR="$T/xdg-nobody" $IPCQ_NOBODY --user stat "$2"
		grep -qx "max_msgs: 3" "$T/out" || fail "$2 does not have the config's max_msgs 3: $(cat "$T/out")"
		as_nobody env XDG_RUNTIME_DIR="$T/xdg-nobody" $IPCQ_NOBODY --user delete "$2"
		stop_pid "$USERPID"
		USERPID=
	done
	pass "without -c, ipcbrokerd --user reads \$XDG_CONFIG_HOME/ipcbroker/ipcbrokerd.conf, else ~/.config/ipcbroker/"
}

test_stopped_system_daemon_is_not_a_missing_queue() {
	"$IPCQ" delete jobs
	stop_pid "$SYSPID"
	SYSPID=
	expect_status 1 "ipcq list as nobody with no system daemon" as_nobody $IPCQ_NOBODY list
	says_no_daemon "$SYSSOCK" "list without the system daemon"
	expect_status 1 "ipcq recv as nobody with no system daemon" as_nobody $IPCQ_NOBODY recv -t 0 jobs
	says_no_daemon "$SYSSOCK" "recv without the system daemon"
	pass "with the system daemon stopped: exit 1 naming $SYSSOCK, not exit 4"
}

start_system_daemon
test_nobody_reaches_the_system_daemon_by_default
test_user_without_runtime_dir_says_so
test_user_without_user_daemon_names_the_socket
test_nobody_runs_a_per_user_daemon
test_per_user_daemon_reads_the_users_config
test_stopped_system_daemon_is_not_a_missing_queue
