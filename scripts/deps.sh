#!/bin/sh
# deps.sh - install what ipcbroker needs to build and test, when missing
# (Debian 12).  Needs root to install; does nothing when all is present.
set -eu
# libzmq3-dev is optional (the benchmarks' ZeroMQ baseline); the rest is not.
pkgs="autoconf automake libtool pkg-config make gcc libc6-dev
libsystemd-dev libconfuse-dev libcmocka-dev libzmq3-dev
util-linux procps python3 systemd man-db spin"
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
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
