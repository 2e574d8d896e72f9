#!/bin/sh
# run.sh - run the benchmarks against a private daemon (its own namespace),
# baselines and ipcbroker side by side in the same run.
# usage: bench/run.sh [SIZE COUNT]   (default: 1 MiB x 2000)
set -eu
B=${IPCQ_BUILDDIR:-$(cd "$(dirname "$0")/.." && pwd)}
T=$(mktemp -d)
NS=bench$$
export IPCQ_SOCKET="$T/ctl.sock"
"$B/daemon/ipcbrokerd" --namespace "$NS" --socket "$IPCQ_SOCKET" 2>"$T/log" &
pid=$!
trap '"$B/tools/ipcq" delete bulk >/dev/null 2>&1 || true; kill $pid; wait $pid || true; rm -rf "$T"' EXIT
until "$B/tools/ipcq" list >/dev/null 2>&1; do sleep 0.05; done
"$B/tools/ipcq" create bulk --ring-size "${RING_SIZE:-64M}" --max-payload "${MAX_PAYLOAD:-16M}"
"$B/bench/bulk" bulk "${1:-1048576}" "${2:-2000}"
