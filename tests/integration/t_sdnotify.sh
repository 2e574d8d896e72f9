#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_sdnotify.sh - the daemon speaks systemd's notify protocol: READY=1 once
# its socket listens, STATUS=, RELOADING=1 then READY=1 on SIGHUP,
# WATCHDOG=1 when WATCHDOG_USEC asks for it, STOPPING=1 on SIGTERM.  A fake
# NOTIFY_SOCKET (tests/stress/notifyrecv) records what it sends.
. "$(dirname "$0")/lib.sh"

NOTIFY="$T/notify.sock"
NOUT="$T/notify.out"
NPID=

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# wait_line_after N PATTERN MS WHAT: wait up to MS ms for a line matching
# the ERE PATTERN after line N of $NOUT; prints its line number.
wait_line_after() {
	deadline=$(($(now_ms) + $3))
	while :; do
		found=$(awk -v n="$1" -v re="$2" 'NR > n && $0 ~ re { print NR; exit }' "$NOUT")
		if [ -n "$found" ]; then
			echo "$found"
			return 0
		fi
		[ "$(now_ms)" -lt "$deadline" ] || fail "$4: no line matching '$2' within $3 ms; got: $(cat "$NOUT")"
		sleep 0.02
	done
}

start_notify_socket() {
	start_notifyrecv "$NOTIFY" "$NOUT" 20
	NPID=$NOTIFYRECV_PID
}

test_ready_once_socket_listens_with_status() {
	T_START=$(now_ms)
	NOTIFY_SOCKET="$NOTIFY" WATCHDOG_USEC=200000 \
		"$IPCBROKERD" --namespace "$NS" --socket "$SOCK" >>"$DLOG" 2>&1 &
	DPID=$!
	wait_line_after 0 '^READY=1$' 5000 "start-up" >/dev/null
	# READY=1 comes after listen(): the first connection must succeed
	"$IPCQ" list >/dev/null 2>"$T/err" || fail "READY=1 was sent before the socket answered: $(cat "$T/err")"
	wait_line_after 0 '^STATUS=.' 2000 "status after start-up" >/dev/null
	daemon_alive || fail "ipcbrokerd exited after READY=1"
	pass "READY=1 arrives once the socket accepts connections, with a STATUS= line"
}

test_watchdog_pings_when_asked() {
	first=$(wait_line_after 0 '^WATCHDOG=1$' $((T_START + 1000 - $(now_ms))) "watchdog within 1 s")
	# and it keeps pinging (interval at most WATCHDOG_USEC/2 = 100 ms)
	next=$(wait_line_after "$first" '^WATCHDOG=1$' 1000 "a second watchdog ping")
	wait_line_after "$next" '^WATCHDOG=1$' 1000 "a third watchdog ping" >/dev/null
	pass "with WATCHDOG_USEC=200000, WATCHDOG=1 arrives within 1 s and keeps coming"
}

test_reload_sends_reloading_then_ready() {
	before=$(wc -l <"$NOUT")
	kill -HUP "$DPID"
	reloading=$(wait_line_after "$before" '^RELOADING=1$' 2000 "SIGHUP")
	wait_line_after "$reloading" '^READY=1$' 2000 "READY=1 after RELOADING=1" >/dev/null
	"$IPCQ" list >/dev/null || fail "ipcbrokerd does not answer after the reload"
	pass "SIGHUP: RELOADING=1, then READY=1"
}

test_stop_sends_stopping_and_exits_0() {
	before=$(wc -l <"$NOUT")
	stop_daemon TERM
	wait_line_after "$before" '^STOPPING=1$' 2000 "SIGTERM" >/dev/null
	pass "SIGTERM: STOPPING=1, and the daemon exits 0"
}

start_notify_socket
test_ready_once_socket_listens_with_status
test_watchdog_pings_when_asked
test_reload_sends_reloading_then_ready
test_stop_sends_stopping_and_exits_0
kill -TERM "$NPID"
st=0
wait "$NPID" || st=$?
NOTIFYRECV_PID=
assert_eq 0 "$st" "exit status of notifyrecv on SIGTERM"
