#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# demo.sh - install the build dependencies when missing, build (plain, in
# build/demo), start ipcbrokerd on its embedded default configuration, and
# pass a message through it with ipcq.  The daemon keeps running afterwards.
#
# As root it starts the system daemon (/run/ipcbroker/default.sock), which
# every local user can reach.  As another user it uses the system daemon
# when one runs, else starts a per-user daemon (ipcbrokerd --user, under
# $XDG_RUNTIME_DIR), else, with no runtime directory (su, cron), a daemon
# on a private socket in build/demo.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
sh scripts/deps.sh
sh scripts/configure-in.sh build/demo
make -C build/demo -j"$(nproc)" >/dev/null
ipcq="$top/build/demo/tools/ipcq"
ipcbrokerd="$top/build/demo/daemon/ipcbrokerd"
log="$top/build/demo/ipcbrokerd.log"

unset IPCQ_SOCKET IPCQ_NAMESPACE IPCQ_USER || true
if [ "$(id -u)" -eq 0 ]; then
	set -- # the system daemon
elif "$ipcq" list >/dev/null 2>&1; then
	set -- # a system daemon runs: use it, like any user
elif [ -n "${XDG_RUNTIME_DIR:-}" ]; then
	set -- --user
	export IPCQ_USER=1
else
	set -- --socket "$top/build/demo/ipcbrokerd.sock" --namespace "demo-$(id -u)"
	export IPCQ_SOCKET="$top/build/demo/ipcbrokerd.sock"
fi

if "$ipcq" list >/dev/null 2>&1; then
	echo "ipcbrokerd already runs; using it"
else
	"$ipcbrokerd" "$@" >"$log" 2>&1 &
	pid=$!
	i=0
	until "$ipcq" list >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -ge 100 ] || ! kill -0 $pid 2>/dev/null; then
			cat "$log" >&2
			exit 1
		fi
		sleep 0.05
	done
	echo "ipcbrokerd started: pid $pid, embedded defaults, $(sed -n 's/.*ready: //p' "$log"), log $log"
	echo "stop it with: kill $pid"
fi
echo '$ echo "hello from ipcbroker" | ipcq send demo'
echo "hello from ipcbroker" | "$ipcq" send demo
echo '$ ipcq recv demo'
"$ipcq" recv demo
echo '$ ipcq stat demo'
"$ipcq" stat demo
