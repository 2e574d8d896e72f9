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
# the 32-bit build (scripts/build-32.sh, the fourth pass of test-all.sh),
# on x86-64: gcc -m32 and the i386 development packages of the libraries,
# beside the amd64 ones (Multi-Arch: same, so apt keeps both at the same
# version); needs the i386 architecture, added below when missing
pkgs32=
i386=
if [ "$(dpkg --print-architecture)" = amd64 ]; then
	pkgs32="gcc-multilib libsystemd-dev:i386 libconfuse-dev:i386 libcmocka-dev:i386"
	dpkg --print-foreign-architectures | grep -qx i386 || i386=add
fi
missing=
missing32=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
for p in $pkgs32; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing32="$missing32 $p"
done
[ -z "$missing$missing32" ] && exit 0
echo "installing:$missing$missing32"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: run as root to install:$missing$missing32" >&2
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
if [ -n "$i386" ] && [ -n "$missing32" ]; then
	echo "enabling the i386 architecture (dpkg --add-architecture i386)"
	dpkg --add-architecture i386
fi
# an index that fails to download (a mirror in mid-sync) need not stop
# the install: apt-get install says so if a package it needs is missing
apt-get update -q || echo "deps.sh: apt-get update failed for some index (above); installing from the rest" >&2
# shellcheck disable=SC2086
[ -z "$missing" ] || apt-get install -y -q --no-install-recommends $missing
# apart, so that what the i386 packages need (a matching version of each
# amd64 library on the mirror) never keeps the rest from being installed:
# without them only the 32-bit pass is skipped, and says what is missing
# shellcheck disable=SC2086
[ -z "$missing32" ] || apt-get install -y -q --no-install-recommends --no-remove $missing32 ||
	echo "deps.sh: could not install:$missing32 (above): the fourth pass of scripts/test-all.sh (the 32-bit build) is skipped without them" >&2
