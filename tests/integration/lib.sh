# SPDX-License-Identifier: Apache-2.0
# lib.sh - sourced by every integration test.
#
# Each test runs its own ipcbrokerd in a private namespace: a fresh
# directory for the socket and registry, and a namespace name of its own
# (the prefix of every kernel object), so tests run in parallel and never
# touch a real instance.  Everything is removed on exit.
set -eu

B=${IPCQ_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
S=${IPCQ_SRCDIR:-$B}
IPCQ="$B/tools/ipcq"
IPCBROKERD="$B/daemon/ipcbrokerd"
STRESS="$B/tests/stress"

T=$(mktemp -d "${TMPDIR:-/tmp}/ipcq-test.XXXXXX")
chmod 755 "$T"
# namespace: letters, digits, '_' and '-', at most 32
NS=$(printf 't%s_%s' "$$" "$(basename "$0" .sh)" | tr -c 'A-Za-z0-9_\n-' '_' | cut -c1-32)
SOCK="$T/ctl.sock"
DLOG="$T/daemon.log"
DPID=
export IPCQ_SOCKET="$SOCK"
unset IPCQ_NAMESPACE NOTIFY_SOCKET WATCHDOG_USEC LISTEN_FDS LISTEN_PID || true

fail() {
	echo "FAIL: $*" >&2
	if [ -f "$DLOG" ]; then
		echo "--- daemon log (last 30 lines) ---" >&2
		tail -n 30 "$DLOG" >&2
	fi
	exit 1
}

pass() {
	echo "ok: $*"
}

assert_eq() { # expected actual what
	[ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

daemon_alive() {
	[ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null
}

# start_notifyrecv SOCKET OUT SECONDS: a NOTIFY_SOCKET listener
# (tests/stress/notifyrecv, for SECONDS at most) writing each datagram it
# gets to OUT as a line, its errors to OUT.err; returns once SOCKET is
# bound, its pid in NOTIFYRECV_PID (the caller stops it)
start_notifyrecv() {
	[ -x "$STRESS/notifyrecv" ] || fail "$STRESS/notifyrecv is not built (make check builds it)"
	"$STRESS/notifyrecv" "$1" "$3" >"$2" 2>"$2.err" &
	NOTIFYRECV_PID=$!
	i=0
	until [ -S "$1" ]; do
		[ $i -lt 100 ] || fail "notifyrecv did not bind $1: $(cat "$2.err")"
		sleep 0.02
		i=$((i + 1))
	done
}

# require_mq_budget BYTES: skip the test (exit 77) when less than BYTES of
# this user's POSIX mq budget (RLIMIT_MSGQUEUE, counted per user across
# IPC namespaces) is free because other processes of the user hold it: a
# real ipcbrokerd of root's, another test run.  Saying so beats failing
# with EMFILE halfway through.  The check takes BYTES for a moment and no
# more, so tests beside this one keep theirs.
MQ_BUDGET_NEEDED=${MQ_BUDGET_NEEDED:-32768}
require_mq_budget() {
	[ -x "$STRESS/mqbudget" ] || return 0
	budget=$("$STRESS/mqbudget" "ipcq.$NS" "$1") || fail "mqbudget failed"
	set -- "$1" $budget
	[ "$2" != unlimited ] || return 0
	if [ "$3" -lt "$1" ]; then
		echo "SKIP: this test needs about $1 bytes of the per-user POSIX mq budget," \
			"and RLIMIT_MSGQUEUE is $3 bytes (raise it with ulimit -q)"
		exit 77
	fi
	if [ "$2" -lt "$1" ]; then
		echo "SKIP: this test needs about $1 bytes of the per-user POSIX mq budget;" \
			"other processes of uid $(id -u) hold about $(($3 - $2)) of its $3 bytes" \
			"(RLIMIT_MSGQUEUE, counted across IPC namespaces: a running ipcbrokerd, another test run)"
		exit 77
	fi
}

# start_daemon [ipcbrokerd args...]: start and wait until it answers
start_daemon() {
	[ -n "${MQ_BUDGET_CHECKED:-}" ] || { require_mq_budget "$MQ_BUDGET_NEEDED"; MQ_BUDGET_CHECKED=1; }
	"$IPCBROKERD" --namespace "$NS" --socket "$SOCK" "$@" >>"$DLOG" 2>&1 &
	DPID=$!
	wait_ready
}

wait_ready() {
	i=0
	while [ $i -lt 100 ]; do
		daemon_alive || fail "ipcbrokerd exited during start-up"
		"$IPCQ" list >/dev/null 2>&1 && return 0
		sleep 0.05
		i=$((i + 1))
	done
	fail "ipcbrokerd did not become ready in 5 s"
}

# stop_daemon [signal]: stop it and check it exited 0 (a sanitizer report
# or a leak makes it exit non-zero)
stop_daemon() {
	sig=${1:-TERM}
	kill -"$sig" "$DPID"
	st=0
	wait "$DPID" || st=$?
	DPID=
	if [ "$sig" = TERM ] || [ "$sig" = INT ]; then
		[ "$st" -eq 0 ] || fail "ipcbrokerd exited with status $st after SIG$sig"
	fi
}

# expect_status STATUS WHAT COMMAND...: stdout goes to $T/out, stderr to
# $T/err
expect_status() {
	want=$1 what=$2
	shift 2
	st=0
	"$@" >"$T/out" 2>"$T/err" || st=$?
	[ "$st" -eq "$want" ] || fail "$what: expected exit $want, got $st ($(cat "$T/err"))"
}

# need_nobody: skip unless commands can run as the user nobody.  Defines
# as_nobody COMMAND... (nobody:$NOBODY_GROUP, no supplementary groups, the
# environment kept) and $IPCQ_NOBODY and $IPCBROKERD_NOBODY, command lines
# of ipcq and ipcbrokerd that nobody can run (see nobody_prog).
# nobody_mq_budget shared|whole: the tests that make queues as nobody (a
# daemon of nobody's) share nobody's POSIX mq budget (RLIMIT_MSGQUEUE,
# counted per user across IPC namespaces), and t_budget.sh fills all of
# it: a lock on a file beside the tests keeps it from the others while it
# runs (taken shared, or whole; held until the test's shell and the
# daemons it started exit).
nobody_mq_budget() {
	command -v flock >/dev/null 2>&1 || return 0
	exec 8>>"${TMPDIR:-/tmp}/ipcq-test-nobody-mq.lock"
	if [ "$1" = whole ]; then
		flock -x 8
	else
		flock -s 8
	fi
}

need_nobody() {
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to run commands as nobody"; exit 77; }
	getent passwd nobody >/dev/null || { echo "SKIP: no user nobody"; exit 77; }
	NOBODY_GROUP=
	for g in nogroup nobody; do
		if getent group "$g" >/dev/null; then
			NOBODY_GROUP=$g
			break
		fi
	done
	[ -n "$NOBODY_GROUP" ] || { echo "SKIP: no group nogroup or nobody"; exit 77; }
	if command -v setpriv >/dev/null 2>&1 &&
		setpriv --reuid=nobody --regid="$NOBODY_GROUP" --clear-groups true 2>/dev/null; then
		as_nobody() { setpriv --reuid=nobody --regid="$NOBODY_GROUP" --clear-groups "$@"; }
	elif command -v runuser >/dev/null 2>&1 && runuser -u nobody -g "$NOBODY_GROUP" -- true 2>/dev/null; then
		as_nobody() { runuser -u nobody -g "$NOBODY_GROUP" -- "$@"; }
	elif command -v su >/dev/null 2>&1 && su -s /bin/sh -g "$NOBODY_GROUP" -c true nobody 2>/dev/null; then
		as_nobody() { su -s /bin/sh -g "$NOBODY_GROUP" -c 'exec "$@"' nobody -- sh "$@"; }
	else
		echo "SKIP: neither setpriv, runuser nor su can run a command as nobody"
		exit 77
	fi
	IPCQ_NOBODY=$(nobody_prog "$IPCQ")
	IPCBROKERD_NOBODY=$(nobody_prog "$IPCBROKERD")
	as_nobody $IPCQ_NOBODY --help >/dev/null 2>&1 || { echo "SKIP: nobody cannot run a copy of ipcq"; exit 77; }
}

# nobody_prog PROGRAM: a command line nobody can run PROGRAM (of the build
# tree) with.  The build directory may sit where nobody cannot go (a clone
# under /root): then nobody gets a copy in $T/bin, with the library.
nobody_prog() {
	if as_nobody test -x "$1" && as_nobody test -r "$1"; then
		echo "$1"
		return
	fi
	mkdir -p "$T/bin"
	name=$(basename "$1")
	dir=$(dirname "$1")
	if [ -x "$dir/.libs/$name" ]; then
		cp "$dir/.libs/$name" "$T/bin/$name"
	else
		cp "$1" "$T/bin/$name"
	fi
	cp -P "$B"/libclient/.libs/libipcq.so* "$T/bin/" 2>/dev/null || true
	chmod -R a+rX "$T/bin"
	echo "env LD_LIBRARY_PATH=$T/bin $T/bin/$name"
}

# qstat QUEUE FIELD: one field of 'ipcq stat'
qstat() {
	"$IPCQ" stat "$1" | sed -n "s/^$2: //p"
}

# test_cleanup: a test's own clean-up, run first on exit (redefine it)
test_cleanup() { :; }

cleanup() {
	st=$?
	test_cleanup || true
	# a listener start_notifyrecv left (the test stops it when it passes)
	[ -z "${NOTIFYRECV_PID:-}" ] || kill "$NOTIFYRECV_PID" 2>/dev/null || true
	if ! daemon_alive && grep -qv '^#' "$T/$NS.queues" 2>/dev/null; then
		# a test left queues behind a stopped daemon: adopt them to delete
		"$IPCBROKERD" --namespace "$NS" --socket "$SOCK" >>"$DLOG" 2>&1 &
		DPID=$!
		i=0
		while [ $i -lt 100 ] && ! "$IPCQ" list >/dev/null 2>&1; do sleep 0.05; i=$((i + 1)); done
	fi
	if daemon_alive; then
		for q in $("$IPCQ" list 2>/dev/null | cut -f1); do
			"$IPCQ" delete "$q" >/dev/null 2>&1 || true
		done
		kill -TERM "$DPID" 2>/dev/null || true
		wait "$DPID" 2>/dev/null || true
	fi
	rm -f /dev/shm/ipcq."$NS".* 2>/dev/null || true
	[ -d /dev/mqueue ] && rm -f /dev/mqueue/ipcq."$NS".* 2>/dev/null || true
	if [ "$st" -ne 0 ]; then
		# what the daemon said is the first thing to read after a failure
		echo "--- the daemon's log, last 40 lines:"
		tail -n 40 "$DLOG" 2>/dev/null || true
		# IPCQ_KEEP=DIR keeps a failed test's files (logs, records) there
		[ -n "${IPCQ_KEEP:-}" ] && mkdir -p "$IPCQ_KEEP" && cp -a "$T" "$IPCQ_KEEP/" 2>/dev/null
	fi
	rm -rf "$T"
	exit $st
}
trap cleanup EXIT
trap 'exit 130' INT TERM
