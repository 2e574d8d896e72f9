#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# build-32.sh [--all] - build for 32-bit x86 (i386) on an x86-64 host, in
# build/m32, with -Werror, and run the unit tests and the packaging checks
# there; with --all, the whole 'make check' (integration tests too: the
# 32-bit daemon, library and CLI, about ten minutes).  The fourth pass of
# scripts/test-all.sh runs it (without --all).
# Needs gcc -m32 and the i386 development packages of the libraries, which
# scripts/deps.sh installs on an x86-64 Debian; by hand, as root:
#   dpkg --add-architecture i386 && apt-get update
#   apt-get install gcc-multilib libsystemd-dev:i386 libconfuse-dev:i386 libcmocka-dev:i386
# (libcmocka-dev:i386 is optional: without it the unit tests are skipped).
# Exit status: 0, 1 when the build or a test failed, 77 when this host
# cannot build for i386 (no gcc -m32, no i386 libraries: it says which).
set -eu
cd "$(dirname "$0")/.."
all=
case ${1-} in
--all) all=1 ;;
"") ;;
*)
	echo "usage: build-32.sh [--all]" >&2
	exit 2
	;;
esac
pcdir=/usr/lib/i386-linux-gnu/pkgconfig
need="dpkg --add-architecture i386 && apt-get update && apt-get install gcc-multilib libsystemd-dev:i386 libconfuse-dev:i386 libcmocka-dev:i386"

probe=$(mktemp -d "${TMPDIR:-/tmp}/ipcq-m32.XXXXXX")
trap 'rm -rf "$probe"' EXIT
printf '#include <stdio.h>\nint main(void) { return sizeof(long) != 4; }\n' >"$probe/p.c"
if ! gcc -m32 -o "$probe/p" "$probe/p.c" 2>"$probe/err"; then
	echo "build-32.sh: gcc -m32 cannot build a program (no gcc-multilib?):" >&2
	sed 's/^/  /' "$probe/err" >&2
	echo "install (Debian, as root): $need" >&2
	exit 77
fi
for lib in libsystemd libconfuse; do
	if [ ! -f "$pcdir/$lib.pc" ]; then
		echo "build-32.sh: no i386 $lib ($pcdir/$lib.pc)" >&2
		echo "install (Debian, as root): $need" >&2
		exit 77
	fi
done

[ -x configure ] || autoreconf -fi
# the i386 libraries' .pc files, and the architecture-independent ones
sh scripts/configure-in.sh build/m32 --host=i686-linux-gnu --build="$(sh build-aux/config.guess)" \
	CC="gcc -m32" PKG_CONFIG_LIBDIR="$pcdir:/usr/share/pkgconfig" --enable-werror
jobs=$(nproc)
make -C build/m32 -j"$jobs"
if [ -n "$all" ]; then
	make -C build/m32 -j"$jobs" check
else
	# shellcheck disable=SC2016 # make expands these, from the Makefile
	make -C build/m32 -j"$jobs" check TESTS='$(UNIT_TESTS) $(UNIT_SKIPPED) $(PACKAGING_TESTS)'
fi
echo "=== the 32-bit build passed (build/m32) ==="
