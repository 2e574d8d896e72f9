#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# bench.sh - ipcq-bridge's throughput beside the local queue's.
#
#   IPCQ_BUILDDIR=BUILD sh bridge/bench.sh [COUNT]
#
# For 64 B and 4 KiB messages (COUNT of each, default 50000): the time
# from the first 'ipcq send' to the last 'ipcq recv' through one local
# queue, and through export -> JetStream (a nats-server -js on loopback,
# file storage) -> import between two daemons, the same commands at both
# ends.  Prints messages/s for each and their ratio.  Everything runs on
# private daemons, a private nats-server and store, all removed at the end
# (it reuses the integration tests' lib.sh for that).
top=$(cd "$(dirname "$0")/.." && pwd)
IPCQ_SRCDIR=${IPCQ_SRCDIR:-$top}
. "$top/tests/integration/lib.sh"
COUNT=${1:-50000}
BRIDGE="$B/bridge/ipcq-bridge"
[ -x "$BRIDGE" ] || { echo "bench.sh: $BRIDGE not built (configure found no libnats)" >&2; exit 1; }
command -v nats-server >/dev/null 2>&1 || { echo "bench.sh: nats-server not installed" >&2; exit 1; }

NSB=$(printf '%s' "$NS" | cut -c1-29)_hb
SOCKB="$T/b.sock"
IPCQ_B="$IPCQ --socket $SOCKB"
PIDS=
NPID=
BPID=
test_cleanup() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	if [ -n "$BPID" ]; then
		for q in $($IPCQ_B list 2>/dev/null | cut -f1); do $IPCQ_B delete "$q" >/dev/null 2>&1; done
		kill -TERM "$BPID" 2>/dev/null
		wait "$BPID" 2>/dev/null
	fi
	rm -f /dev/shm/ipcq."$NSB".* 2>/dev/null
	[ -d /dev/mqueue ] && rm -f /dev/mqueue/ipcq."$NSB".* 2>/dev/null
	[ -z "$NPID" ] || { kill -TERM "$NPID" 2>/dev/null; wait "$NPID" 2>/dev/null; }
	return 0
}

now() { date +%s.%N; }

# lines SIZE: COUNT lines of SIZE bytes each, newline included
lines() {
	seq -f "%0$(($1 - 1)).0f" 1 "$COUNT"
}

# run SENDQ RECV...: seconds from the send's start to the receive's end
run() {
	sendq=$1
	shift
	"$@" -c "$COUNT" -t 30 -N >/dev/null &
	r=$!
	t0=$(now)
	"$IPCQ" send "$sendq" <"$T/in"
	wait "$r" || fail "receive did not get $COUNT messages"
	t1=$(now)
	echo "$t0 $t1" | awk '{ printf "%.3f", $2 - $1 }'
}

cat >"$T/a.conf" <<CONF
defaults { max_msgs = 10  msg_size = 256  ring_size = "64M"  max_payload = "64K" }
queue "out" { delivery = "at-least-once" max_msgs = 10  msg_size = 256  ring_size = "64M"  max_payload = "64K" }
CONF
start_daemon -c "$T/a.conf"
"$IPCBROKERD" --namespace "$NSB" --socket "$SOCKB" -c "$T/a.conf" >>"$T/b.log" 2>&1 &
BPID=$!
until $IPCQ_B list >/dev/null 2>&1; do sleep 0.05; done
"$IPCQ" create local >/dev/null
$IPCQ_B create in >/dev/null
nats-server -js -a 127.0.0.1 -p -1 -sd "$T/nats" -l "$T/nats.log" &
NPID=$!
until grep -q 'Server is ready' "$T/nats.log" 2>/dev/null; do sleep 0.05; done
URL=nats://127.0.0.1:$(sed -n 's/.*client connections on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/nats.log")
"$BRIDGE" --nats "$URL" add-stream BENCH bench.x
"$BRIDGE" --nats "$URL" --socket "$SOCK" export out bench.x 2>>"$T/bridge.log" &
PIDS="$PIDS $!"
"$BRIDGE" --nats "$URL" --socket "$SOCKB" import bench.x in --stream BENCH 2>>"$T/bridge.log" &
PIDS="$PIDS $!"

printf '| size | local queue, msgs/s | through the bridge, msgs/s | bridge / local |\n|---|---|---|---|\n'
for size in 64 4096; do
	lines "$size" >"$T/in"
	tl=$(run local "$IPCQ" recv local)
	tb=$(run out $IPCQ_B recv in)
	echo "$size $tl $tb" | awk -v n="$COUNT" '{ printf "| %d B | %.0f | %.0f | %.3f |\n", $1, n / $2, n / $3, $2 / $3 }'
done
