#!/bin/sh
# run.sh - ipcbroker beside its baselines, measured in one run against a
# private daemon (a namespace and socket of its own, removed at the end).
#
#   bench/run.sh [--rounds R] [--count N] [BUILDDIR]
#       64-byte messages, 1 producer process -> 1 consumer process:
#         raw mq pair     mq_send/mq_receive, a default queue's geometry
#         ipcq            ipcq_send/ipcq_recv, one message per call
#         ipcq batch 64   ipcq_send_batch/ipcq_recv_batch, 64 per call
#         ZeroMQ          PUSH/PULL over ipc:// (when built with libzmq)
#       Each runs R times (default 3), interleaved (A B C D A B C D ...), and
#       the table gives the medians and the ratios ipcq is judged by.  The
#       one-per-call rows send N messages a run (default 1000000), the
#       batched ones (ipcq batches, ZeroMQ) 5 N.  Prints the table as
#       markdown on standard output, each run on standard error.
#   bench/run.sh bulk [SIZE COUNT] [BUILDDIR]
#       bulk throughput (bench/bulk), default 1 MiB x 2000.
#
# The build: BUILDDIR, else $IPCQ_BUILDDIR, else build/demo (what
# scripts/demo.sh makes), else the source tree configured in place.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)

usage() {
	echo "usage: bench/run.sh [--rounds R] [--count N] [BUILDDIR]" >&2
	echo "       bench/run.sh bulk [SIZE COUNT] [BUILDDIR]" >&2
	exit 2
}

is_count() {
	case $1 in '' | *[!0-9]*) return 1 ;; esac
	[ "$1" -gt 0 ]
}

mode=table rounds=3 count=1000000 size=1048576 bulk_count=2000 B=
if [ "${1:-}" = bulk ]; then
	mode=bulk
	shift
	if [ $# -ge 2 ] && is_count "$1" && is_count "$2"; then
		size=$1 bulk_count=$2
		shift 2
	fi
fi
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) [ $# -ge 2 ] && is_count "$2" || usage; rounds=$2; shift 2 ;;
	--count) [ $# -ge 2 ] && is_count "$2" || usage; count=$2; shift 2 ;;
	-h | --help) usage ;;
	-*) usage ;;
	*) [ -z "$B" ] || usage; B=$1; shift ;;
	esac
done
if [ -z "$B" ]; then
	if [ -n "${IPCQ_BUILDDIR:-}" ]; then
		B=$IPCQ_BUILDDIR
	elif [ -x "$top/build/demo/tools/ipcq" ]; then
		B=$top/build/demo
	else
		B=$top
	fi
fi
B=$(cd "$B" && pwd)
IPCQ=$B/tools/ipcq
built=yes
for prog in daemon/ipcbrokerd tools/ipcq bench/mq_pair bench/bulk; do
	[ -x "$B/$prog" ] || built=no
done
[ $built = yes ] || make -C "$B" >/dev/null

# ---- a private daemon, and everything it made removed on exit ----
T=$(mktemp -d "${TMPDIR:-/tmp}/ipcq-bench.XXXXXX")
NS=bench$$
export IPCQ_SOCKET="$T/ctl.sock"
unset IPCQ_NAMESPACE IPCQ_USER NOTIFY_SOCKET WATCHDOG_USEC LISTEN_FDS LISTEN_PID || true
dpid=
# The daemon runs in a session of its own, so that a ^C reaches the
# benchmark (which deletes its queue) and not the daemon under it.
start_daemon() {
	setsid "$B/daemon/ipcbrokerd" --namespace "$NS" --socket "$IPCQ_SOCKET" 2>>"$T/daemon.log" &
	dpid=$!
	i=0
	until "$IPCQ" list >/dev/null 2>&1; do
		kill -0 "$dpid" 2>/dev/null || { echo "run.sh: ipcbrokerd exited during start-up" >&2; return 1; }
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "run.sh: ipcbrokerd did not become ready in 5 s" >&2; return 1; }
		sleep 0.05
	done
}
daemon_alive() {
	[ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null
}
cleanup() {
	st=$?
	trap - EXIT INT TERM HUP
	set +e # all of it, whatever fails (a write to a reader gone)
	# queues left behind a daemon that died: a new one adopts them to delete
	if ! daemon_alive && grep -qv '^#' "$T/$NS.queues" 2>/dev/null; then
		start_daemon || true
	fi
	if daemon_alive; then
		for q in $("$IPCQ" list 2>/dev/null | cut -f1); do
			"$IPCQ" delete "$q" >/dev/null 2>&1 || true
		done
		kill -TERM "$dpid" 2>/dev/null || true
		wait "$dpid" 2>/dev/null || true
	fi
	rm -f /dev/shm/ipcq."$NS".* 2>/dev/null || true
	[ -d /dev/mqueue ] && rm -f /dev/mqueue/ipcq."$NS".* 2>/dev/null || true
	if [ "$st" -eq 1 ] && [ -s "$T/daemon.log" ]; then
		echo "--- daemon log (last 20 lines) ---" >&2
		tail -n 20 "$T/daemon.log" >&2
	fi
	rm -rf "$T"
	exit "$st"
}
trap cleanup EXIT
# A reader gone (| head, a ^C that took the pager) must not kill the shell
# before its clean-up: a write fails instead, and set -e ends the run.
trap '' PIPE
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
start_daemon

if [ $mode = bulk ]; then
	"$IPCQ" create bulk --ring-size "${RING_SIZE:-64M}" --max-payload "${MAX_PAYLOAD:-16M}"
	"$B/bench/bulk" bulk "$size" "$bulk_count"
	exit 0
fi

# ---- the table ----
batched=$((count * 5))
have_zmq=no
[ -x "$B/bench/zmq_pushpull" ] && have_zmq=yes

# run_row ROW COMMAND...: run once, print msgs/s on stderr, keep it in $T/ROW
run_row() {
	row=$1
	shift
	out=$("$@") || { echo "run.sh: $row failed: $*" >&2; exit 1; }
	case $out in
	"{"*) rate=$(printf '%s\n' "$out" | sed -n 's/.*"msgs_per_s": \([0-9.]*\).*/\1/p') ;;
	*) rate=$(printf '%s\n' "$out" | sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p') ;;
	esac
	[ -n "$rate" ] || { echo "run.sh: no msgs/s in the output of $*: $out" >&2; exit 1; }
	printf '%-12s %12s msgs/s\n' "$row" "$rate" >&2
	echo "$rate" >>"$T/$row"
}

# median ROW: the median of the row's runs (of an even number, the mean
# of the two in the middle)
median() {
	sort -n "$T/$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

r=1
while [ $r -le "$rounds" ]; do
	echo "round $r of $rounds" >&2
	run_row mq "$B/bench/mq_pair" 64 "$count"
	run_row ipcq "$IPCQ" bench --json --size 64 --count "$count"
	run_row ipcq_batch "$IPCQ" bench --json --size 64 --count "$batched" --batch 64
	run_row ipcq_batch_p64 "$IPCQ" bench --json --size 64 --count "$batched" --batch 64 --prefetch 64
	[ $have_zmq = no ] || run_row zmq "$B/bench/zmq_pushpull" 64 "$batched"
	r=$((r + 1))
done

mq=$(median mq)
one=$(median ipcq)
batch=$(median ipcq_batch)
batch64=$(median ipcq_batch_p64)
zmq=n/a
[ $have_zmq = no ] || zmq=$(median zmq)
ratio() { # A B WHAT: "A/B× WHAT", or n/a
	case $2 in n/a) echo n/a ;; *) awk -v a="$1" -v b="$2" -v what="$3" 'BEGIN { printf "%.2f× %s\n", a / b, what }' ;; esac
}

echo "64-byte messages, 1 producer process -> 1 consumer process; median of $rounds runs each, interleaved."
echo
echo "| workload | msgs/s | ratio |"
echo "|---|---:|---|"
printf '| raw POSIX mq pair (mq_send/mq_receive, 10 x 512 B) | %.0f | |\n' "$mq"
printf '| ipcq, one message per call (ipcq_send/ipcq_recv) | %.0f | %s |\n' "$one" "$(ratio "$one" "$mq" "raw mq pair")"
printf '| ipcq, batches of 64 (ipcq_send_batch/ipcq_recv_batch), default prefetch 16 | %.0f | %s |\n' "$batch" "$(ratio "$batch" "$zmq" ZeroMQ)"
printf '| ipcq, batches of 64, a queue with prefetch 64 (one mq message per batch) | %.0f | %s |\n' "$batch64" "$(ratio "$batch64" "$zmq" ZeroMQ)"
if [ $have_zmq = yes ]; then
	printf '| ZeroMQ PUSH/PULL over ipc:// | %.0f | |\n' "$zmq"
else
	echo "| ZeroMQ PUSH/PULL over ipc:// | n/a (not built: libzmq3-dev missing at configure time) | |"
fi
