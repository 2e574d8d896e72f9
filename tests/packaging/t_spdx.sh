#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_spdx.sh - every source file carries its license line (scripts/spdx.sh
# --check), so that a file added later without one is caught.  Run from a
# git work tree only: a release tarball has generated files beside the
# sources, which the script cannot tell apart without git.
set -eu
B=${IPCQ_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
S=${IPCQ_SRCDIR:-$B}
if ! git -C "$S" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	echo "SKIP: not a git work tree"
	exit 77
fi
if ! out=$(sh "$S/scripts/spdx.sh" --check 2>&1); then
	echo "FAIL: files without 'SPDX-License-Identifier: Apache-2.0' (run scripts/spdx.sh):" >&2
	echo "$out" >&2
	exit 1
fi
echo "ok: every source file has its SPDX line"
