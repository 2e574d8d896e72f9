#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_hostile.sh - misbehaving clients (tests/stress/hostile.c) against the
# control socket and the data path: the daemon stays up and serves a
# normal client after each, and the library rejects forged descriptors.
. "$(dirname "$0")/lib.sh"

H="$STRESS/hostile"

# the daemon is alive and a normal client still gets a round trip
assert_daemon_serves() {
	daemon_alive || fail "ipcbrokerd died after $1"
	"$IPCQ" send -t 5 q "after $1" || fail "ipcq send failed after $1"
	assert_eq "after $1" "$("$IPCQ" recv -t 5 q)" "round trip after $1"
}

run_mode() {
	"$H" "$SOCK" "$@" || fail "hostile $*: the daemon misbehaved"
	assert_daemon_serves "$*"
	pass "hostile $*: daemon up and serving"
}

test_random_datagrams_are_refused() {
	run_mode garbage
}

test_oversized_datagrams_are_refused() {
	run_mode huge
}

test_clients_leaving_midway_are_dropped() {
	run_mode midway
}

test_passed_descriptors_are_discarded() {
	run_mode fds
}

test_forged_descriptors_are_rejected() {
	run_mode forged fq
	rejected=$(qstat fq rejected)
	[ "$rejected" -gt 0 ] || fail "forged descriptors were not counted as rejected ($rejected)"
	assert_eq 0 "$(qstat fq ring_used)" "ring_used after the forgeries"
	pass "forged descriptors: rejected $rejected, ring intact"
}

test_2000_idle_connections_do_not_block_others() {
	mkfifo "$T/many.in"
	"$H" "$SOCK" many 2000 <"$T/many.in" >"$T/many.out" &
	pid=$!
	exec 3>"$T/many.in"
	i=0
	while ! grep -q '^open' "$T/many.out" 2>/dev/null; do
		kill -0 "$pid" 2>/dev/null || fail "hostile many exited early: $(cat "$T/many.out")"
		[ $i -lt 600 ] || fail "2000 connections not open after 30 s"
		sleep 0.05
		i=$((i + 1))
	done
	assert_eq "open 2000 answered 2000" "$(cat "$T/many.out")" "connections open and served"
	assert_daemon_serves "2000 open connections"
	exec 3>&-
	st=0
	wait "$pid" || st=$?
	[ "$st" -eq 0 ] || fail "hostile many: not every connection was served (status $st)"
	assert_daemon_serves "2000 connections closed"
	pass "2000 connections held open: a normal client is served meanwhile and after"
}

# A sender killed between counting a window message and sending it
# leaves the window's count high (a hint receivers spare a system call
# by): the daemon's sweep puts it right once the queue is at rest.
test_stale_window_count_is_put_right() {
	"$IPCQ" create wc >/dev/null || fail "cannot create queue wc"
	assert_eq 5 "$("$H" "$SOCK" window wc 5)" "the window count set by hand"
	i=0
	while [ "$("$H" "$SOCK" window wc)" != 0 ]; do
		[ $i -lt 100 ] || fail "the window count is still $("$H" "$SOCK" window wc) 5 s after it was left high"
		sleep 0.05
		i=$((i + 1))
	done
	"$IPCQ" send -t 5 wc "after" || fail "send to wc"
	assert_eq "after" "$("$IPCQ" recv -t 5 wc)" "a round trip through wc once put right"
	"$IPCQ" delete wc
	pass "a window count left high by a dead sender is put right by the daemon within 5 s"
}

# CPU time (clock ticks, user + system) the daemon has used
daemon_cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$DPID/stat"
}

# The daemon meets its descriptor limit (a hard RLIMIT_NOFILE below
# max_clients, as in a container): it must neither spin on accept() nor
# flood its log, and it serves again once the connections close.
test_fd_exhaustion_neither_spins_nor_floods_the_log() {
	stop_daemon
	printf '#!/bin/sh\nulimit -n 64\nexec "%s" "$@"\n' "$IPCBROKERD" >"$T/ipcbrokerd-lowfd"
	chmod +x "$T/ipcbrokerd-lowfd"
	real=$IPCBROKERD
	IPCBROKERD="$T/ipcbrokerd-lowfd"
	start_daemon
	IPCBROKERD=$real
	mkfifo "$T/lowfd.in"
	"$H" "$SOCK" many 200 <"$T/lowfd.in" >"$T/lowfd.out" 2>/dev/null &
	pid=$!
	exec 4>"$T/lowfd.in"
	i=0
	while ! grep -q '^open' "$T/lowfd.out" 2>/dev/null; do
		kill -0 "$pid" 2>/dev/null || fail "hostile many exited early"
		[ $i -lt 600 ] || fail "hostile many did not finish connecting in 30 s"
		sleep 0.05
		i=$((i + 1))
	done
	lines0=$(wc -l <"$DLOG")
	cpu0=$(daemon_cpu_ticks)
	sleep 1
	cpu=$(($(daemon_cpu_ticks) - cpu0))
	lines=$(($(wc -l <"$DLOG") - lines0))
	exec 4>&-
	wait "$pid" || true
	assert_daemon_serves "descriptor exhaustion"
	[ "$cpu" -le 30 ] ||
		fail "with its descriptors exhausted ($(cat "$T/lowfd.out")) the daemon used $cpu clock ticks of CPU in 1 s"
	[ "$lines" -le 20 ] || fail "with its descriptors exhausted the daemon wrote $lines log lines in 1 s"
	pass "descriptors exhausted ($(cat "$T/lowfd.out")): no spin ($cpu ticks in 1 s), $lines log lines, served after"
}

start_daemon
"$IPCQ" create q >/dev/null || fail "cannot create queue q"
test_random_datagrams_are_refused
test_oversized_datagrams_are_refused
test_clients_leaving_midway_are_dropped
test_passed_descriptors_are_discarded
test_forged_descriptors_are_rejected
test_stale_window_count_is_put_right
test_2000_idle_connections_do_not_block_others
test_fd_exhaustion_neither_spins_nor_floods_the_log
stop_daemon
