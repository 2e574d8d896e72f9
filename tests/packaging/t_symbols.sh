#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_symbols.sh - libipcq exports exactly the functions ipcq.h declares:
# the shared library's defined dynamic symbols, the functions of the
# public header and the names in the version script (libipcq.sym) are
# the same three lists, so none of them can drift from the others.  Each
# symbol carries the version node of libipcq.sym.
set -eu
B=${IPCQ_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
S=${IPCQ_SRCDIR:-$B}
HEADER="$S/libclient/ipcq.h"
SYMFILE="$S/libclient/libipcq.sym"
LIB="$B/libclient/.libs/libipcq.so"
NM=${NM:-nm}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
command -v "$NM" >/dev/null 2>&1 || { echo "SKIP: no nm (binutils)"; exit 77; }
[ -e "$LIB" ] || { echo "SKIP: no shared library $LIB (configured with --disable-shared?)"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/ipcq-symbols.XXXXXX")
trap 'rm -rf "$T"' EXIT

# FILE without its C comments (/* ... */, over lines too)
uncomment() {
	awk '{ text = text $0 "\n" } END { gsub(/\/\*([^*]|\*+[^*\/])*\*+\//, "", text); printf "%s", text }' "$1"
}

# the functions ipcq.h declares: identifiers ipcq_* followed by '(' once
# comments are removed (its comments name functions too)
uncomment "$HEADER" | tr '\n' ' ' | grep -o 'ipcq_[A-Za-z0-9_]*[[:space:]]*(' | tr -d ' \t(' | sort -u >"$T/header"
[ -s "$T/header" ] || fail "found no function in $HEADER"

# the names of the version script's global part, and its version node
uncomment "$SYMFILE" | awk '
	/^[ \t]*[A-Za-z0-9_.]+[ \t]*\{/ { node = $1; sub(/\{.*/, "", node) }
	/^[ \t]*global:/ { g = 1; next }
	/^[ \t]*local:/ { g = 0; next }
	g && /;/ { s = $0; gsub(/[ \t;]/, "", s); if (s != "") print s }
	END { print node > "/dev/stderr" }' 2>"$T/node" | sort -u >"$T/symfile"
node=$(tr -d ' \t' <"$T/node")
[ -n "$node" ] || fail "no version node in $SYMFILE"
if grep -q '[*?]' "$T/symfile"; then
	fail "$SYMFILE exports by pattern ($(grep '[*?]' "$T/symfile" | tr '\n' ' ')): name every function"
fi

# what the library defines for others to link against (not the version
# node itself, an absolute symbol), with the version each carries
"$NM" -D --defined-only "$LIB" | awk '$2 != "A" { print $3 }' | sort -u >"$T/exported.versioned"
sed 's/@.*//' "$T/exported.versioned" | sort -u >"$T/exported"

status=0
compare() { # a-file a-name b-file b-name
	if ! cmp -s "$1" "$3"; then
		echo "FAIL: $2 and $4 differ:" >&2
		comm -23 "$1" "$3" | sed "s/^/  only in $2: /" >&2
		comm -13 "$1" "$3" | sed "s/^/  only in $4: /" >&2
		status=1
	fi
}
compare "$T/header" "ipcq.h" "$T/symfile" "libipcq.sym"
compare "$T/header" "ipcq.h" "$T/exported" "libipcq.so's dynamic symbols"
if grep -q '@' "$T/exported.versioned"; then
	# nm shows versions (binutils 2.35 and later): each is the node's
	if grep -v "@@$node\$" "$T/exported.versioned" >"$T/unversioned"; then
		echo "FAIL: symbols not in version $node: $(tr '\n' ' ' <"$T/unversioned")" >&2
		status=1
	fi
fi
[ "$status" -eq 0 ] || exit 1
echo "ok: libipcq exports the $(wc -l <"$T/header") functions of ipcq.h, each at $node, and libipcq.sym lists them"
