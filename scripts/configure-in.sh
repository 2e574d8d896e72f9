#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# configure-in.sh DIR [CONFIGURE-ARGS...] - configure an out-of-tree build
# in DIR (relative to the source tree), generating ./configure first when
# needed.  Builds live apart from the sources (build/demo for the demo,
# build/check and build/asan for the test passes), so no script leaves the
# tree configured in a way another does not expect.  DIR is reconfigured
# when its configure arguments differ.
set -eu
cd "$(dirname "$0")/.."
dir=$1
shift
[ -x configure ] || autoreconf -fi
if [ -f config.status ]; then
	# configure refuses out-of-tree builds of a tree configured in place
	echo "configure-in.sh: the source tree was configured in place; running 'make distclean' there first"
	make distclean >/dev/null
fi
mkdir -p "$dir"
want=
[ $# -eq 0 ] || want=$(printf "'%s' " "$@" | sed 's/ $//')
if [ -f "$dir/config.status" ] && [ "$(cd "$dir" && ./config.status --config)" = "$want" ]; then
	exit 0
fi
top=$(pwd)
cd "$dir"
"$top/configure" "$@" >configure.out || { cat configure.out >&2; exit 1; }
