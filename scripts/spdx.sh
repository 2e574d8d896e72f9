#!/bin/sh
# spdx.sh [--check] - give every source file a first comment line
#   SPDX-License-Identifier: Apache-2.0
# in its own comment syntax: C sources and headers (and their .in
# templates) and Promela models a line of its own, /* ... */; shell
# scripts (by name or by a #! line) and Makefile.am '#', after a #! line;
# configure.ac 'dnl' (a '#' line before AC_INIT would land above
# configure's #! line); man pages '.\"', after a preprocessor line ('\").
# Files that name a license identifier in their first lines are left
# alone, so running it again changes nothing.
# --check changes nothing: it lists the files that lack the line and
# exits 1 if there is any.
# The files are git's (tracked, and new ones not ignored); outside a git
# work tree, those under the current directory, generated ones aside.
set -eu
id="SPDX-License-Identifier: Apache-2.0"
check=
case ${1-} in
--check) check=1 ;;
"") ;;
*)
	echo "usage: spdx.sh [--check]" >&2
	exit 2
	;;
esac
[ $# -le 1 ] || { echo "usage: spdx.sh [--check]" >&2; exit 2; }
cd "$(dirname "$0")/.."

list_files() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files --cached --others --exclude-standard
	else
		find . \( -name .git -o -name autom4te.cache -o -name build-aux -o -name m4 -o -name build \
			-o -name '.deps' -o -name '.libs' \) -prune -o -type f -print | sed 's|^\./||'
	fi
}

# the comment syntax of a file: c, hash, dnl, roff, or nothing to do
syntax_of() {
	case $1 in
	*.c | *.h | *.h.in | *.pml) echo c ;;
	*.sh | *.am | */Makefile.am | Makefile.am) echo hash ;;
	*.ac) echo dnl ;;
	man/*.[1-9] | man/*.[1-9].in | */man/*.[1-9] | */man/*.[1-9].in) echo roff ;;
	*)
		case $(head -c 64 "$1" 2>/dev/null | head -n 1) in
		'#!'*/sh | '#!'*/sh\ * | '#!'*/bash | '#!'*/bash\ * | '#!'*env\ sh | '#!'*env\ bash) echo hash ;;
		esac
		;;
	esac
}

has_id() {
	head -n 10 "$1" | grep -q 'SPDX-License-Identifier:'
}

# add FILE SYNTAX: put the line first, or second after a #! or '\" line
add() {
	case $2 in
	c) line="/* $id */" ;;
	hash) line="# $id" ;;
	dnl) line="dnl $id" ;;
	roff) line='.\" '"$id" ;;
	esac
	tmp=$(mktemp "${TMPDIR:-/tmp}/spdx.XXXXXX")
	# through the environment: awk -v would take the backslash of .\" as an escape
	line=$line syntax=$2 awk '
		BEGIN { line = ENVIRON["line"]; syntax = ENVIRON["syntax"] }
		NR == 1 && ((syntax == "hash" && /^#!/) || (syntax == "roff" && /^'"'"'\\"/)) {
			print
			print line
			next
		}
		NR == 1 { print line }
		{ print }
		END { if (NR == 0) print line }' "$1" >"$tmp"
	# cat, not mv: the file keeps its mode and owner
	cat "$tmp" >"$1"
	rm -f "$tmp"
}

# one line per file: the ones that lack it (--check), or "added: FILE"
out=$(list_files | while IFS= read -r f; do
	[ -f "$f" ] || continue
	s=$(syntax_of "$f")
	[ -n "$s" ] || continue
	has_id "$f" && continue
	if [ -n "$check" ]; then
		echo "$f"
	else
		add "$f" "$s"
		echo "added: $f"
	fi
done)
[ -z "$out" ] || echo "$out"
if [ -n "$check" ]; then
	if [ -n "$out" ]; then
		echo "spdx.sh: $(echo "$out" | wc -l) files lack '$id'" >&2
		exit 1
	fi
	echo "spdx.sh: every file has '$id'"
fi
