#!/bin/sh
# demo.sh - install the build dependencies when missing, build, start
# ipcbrokerd on its embedded default configuration, and pass a message
# through it with ipcq.  The daemon keeps running afterwards.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure --enable-werror
make -j"$(nproc)"

if [ "$(id -u)" -eq 0 ]; then
	sock=/run/ipcbroker/default.sock
else
	sock="${XDG_RUNTIME_DIR:-}/ipcbroker/default.sock"
fi
if tools/ipcq list >/dev/null 2>&1; then
	echo "ipcbrokerd already runs on $sock"
else
	daemon/ipcbrokerd >ipcbrokerd.log 2>&1 &
	pid=$!
	i=0
	until tools/ipcq list >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 100 ] || { cat ipcbrokerd.log; exit 1; }
		sleep 0.05
	done
	echo "ipcbrokerd started (pid $pid, embedded defaults, socket $sock, log ipcbrokerd.log)"
fi
echo '$ echo "hello from ipcbroker" | ipcq send demo'
echo "hello from ipcbroker" | tools/ipcq send demo
echo '$ ipcq recv demo'
tools/ipcq recv demo
echo '$ ipcq stat demo'
tools/ipcq stat demo
echo "stop the daemon with: kill \$(pidof ipcbrokerd)"
