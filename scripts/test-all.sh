#!/bin/sh
# test-all.sh - the whole test suite, as CI runs it:
#  1. a -Werror build and 'make distcheck' (unit and integration tests,
#     and the release tarball builds, installs and uninstalls cleanly);
#  2. an AddressSanitizer + UndefinedBehaviorSanitizer build and 'make check'.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
jobs=$(nproc)

show_failures() {
	find . -name '*.trs' -exec grep -l -E '^:test-result: (FAIL|ERROR)' {} + 2>/dev/null |
		while read -r t; do
			echo "--- ${t%.trs}.log"
			tail -n 80 "${t%.trs}.log"
		done
}
autoreconf -fi
[ ! -f Makefile ] || make distclean >/dev/null

echo "=== pass 1: -Wall -Wextra -Werror, make distcheck ==="
./configure --enable-werror
make -j"$jobs"
make -j"$jobs" distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror || { show_failures; exit 1; }
make distclean >/dev/null

echo "=== pass 2: ASan + UBSan, make check ==="
./configure --enable-werror --enable-sanitizers
make -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	make -j"$jobs" check || { show_failures; exit 1; }
echo "=== all tests passed (both passes) ==="
