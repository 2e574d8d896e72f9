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

# start_daemon [ipcbrokerd args...]: start and wait until it answers
start_daemon() {
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

# qstat QUEUE FIELD: one field of 'ipcq stat'
qstat() {
	"$IPCQ" stat "$1" | sed -n "s/^$2: //p"
}

cleanup() {
	st=$?
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
	rm -rf "$T"
	exit $st
}
trap cleanup EXIT
trap 'exit 130' INT TERM
