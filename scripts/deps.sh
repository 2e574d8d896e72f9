#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# deps.sh - install what ipcbroker needs to build and test, when missing
# (Debian 12).  Needs root to install; does nothing when all is present.
set -eu
# libzmq3-dev, libhiredis-dev and redis-server are optional (the
# benchmarks' ZeroMQ and Redis peers), and so are libnats-dev and
# nats-server (ipcq-bridge and its test), and python3-zmq and
# python3-redis (bench/python_bench.py's peers); the rest is not (clang
# and libclang-rt-14-dev, libFuzzer: scripts/fuzz.sh; python3-pytest, the
# Python binding's tests).
pkgs="autoconf automake libtool pkg-config make gcc libc6-dev
libsystemd-dev libconfuse-dev libcmocka-dev libzmq3-dev libhiredis-dev redis-server
libnats-dev nats-server
util-linux procps python3 systemd man-db spin python3-prometheus-client
python3-pytest python3-zmq python3-redis
clang libclang-rt-14-dev"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: run as root to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# no package starts a service while we install (redis-server would start
# the system's redis): a policy-rc.d of our own, for the install only
policy=/usr/sbin/policy-rc.d
ours=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && ours=1
fi
trap '[ -z "$ours" ] || rm -f "$policy"' EXIT
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
