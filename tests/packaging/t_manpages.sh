#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_manpages.sh - every man page renders without a warning (groff -ww,
# and mandoc's lint when mandoc is installed) and says the version of
# configure.ac: each source in man/ has @PACKAGE_VERSION@ in its .TH
# line, and the page made from it in man/gen/ (the one installed) has the
# version there and no @VARIABLE@ left.
set -eu
B=${IPCQ_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
S=${IPCQ_SRCDIR:-$B}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
command -v groff >/dev/null 2>&1 || { echo "SKIP: groff is not installed (Debian package groff-base)"; exit 77; }
version=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$B/config.h")
[ -n "$version" ] || fail "no PACKAGE_VERSION in $B/config.h"

T=$(mktemp -d "${TMPDIR:-/tmp}/ipcq-man.XXXXXX")
trap 'rm -rf "$T"' EXIT

n=0
status=0
for src in "$S"/man/*.[1-9]; do
	[ -e "$src" ] || continue
	name=$(basename "$src")
	page="$B/man/gen/$name"
	n=$((n + 1))
	if ! grep -m1 '^\.TH' "$src" | grep -q '"ipcbroker @PACKAGE_VERSION@"'; then
		echo "FAIL: $src: its .TH line does not say \"ipcbroker @PACKAGE_VERSION@\"" >&2
		status=1
	fi
	if [ ! -f "$page" ]; then
		echo "FAIL: $name was not made from $src (no $page)" >&2
		status=1
		continue
	fi
	# as man renders it for a terminal: UTF-8 input, tables
	groff -k -t -man -Tutf8 -ww -z "$page" >"$T/groff" 2>&1 || true
	if [ -s "$T/groff" ]; then
		echo "FAIL: $name: groff warns:" >&2
		sed 's/^/  /' "$T/groff" >&2
		status=1
	fi
	if command -v mandoc >/dev/null 2>&1; then
		mandoc -T lint -W warning "$page" >"$T/mandoc" 2>&1 || true
		if [ -s "$T/mandoc" ]; then
			echo "FAIL: $name: mandoc -T lint warns:" >&2
			sed 's/^/  /' "$T/mandoc" >&2
			status=1
		fi
	fi
	if grep -n '@[A-Za-z_]*@' "$page" >"$T/subst"; then
		echo "FAIL: $name: left unsubstituted:" >&2
		sed 's/^/  /' "$T/subst" >&2
		status=1
	fi
	th=$(grep -m1 '^\.TH' "$page" || true)
	case $th in
	*"\"ipcbroker $version\""*) ;;
	*)
		echo "FAIL: $name: its .TH line does not say ipcbroker $version: $th" >&2
		status=1
		;;
	esac
done
[ "$n" -gt 0 ] || fail "no man page in $S/man"
[ "$status" -eq 0 ] || exit 1
echo "ok: $n man pages render without warnings and say ipcbroker $version"
