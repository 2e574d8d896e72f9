#!/bin/sh
# run.sh - run the benchmarks against a private daemon (its own namespace),
# baselines and ipcbroker side by side in the same run.
# usage: bench/run.sh [SIZE COUNT]   (default: 1 MiB x 2000)
# The build: $IPCQ_BUILDDIR, else build/demo (what scripts/demo.sh makes),
# else the source tree configured in place.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${IPCQ_BUILDDIR:-}" ]; then
	B=$IPCQ_BUILDDIR
elif [ -x "$top/build/demo/tools/ipcq" ]; then
	B=$top/build/demo
else
	B=$top
fi
[ -x "$B/bench/bulk" ] || make -C "$B" bench/bulk >/dev/null
T=$(mktemp -d)
NS=bench$$
export IPCQ_SOCKET="$T/ctl.sock"
"$B/daemon/ipcbrokerd" --namespace "$NS" --socket "$IPCQ_SOCKET" 2>"$T/log" &
pid=$!
trap '"$B/tools/ipcq" delete bulk >/dev/null 2>&1 || true; kill $pid; wait $pid || true; rm -rf "$T"' EXIT
until "$B/tools/ipcq" list >/dev/null 2>&1; do sleep 0.05; done
"$B/tools/ipcq" create bulk --ring-size "${RING_SIZE:-64M}" --max-payload "${MAX_PAYLOAD:-16M}"
"$B/bench/bulk" bulk "${1:-1048576}" "${2:-2000}"
