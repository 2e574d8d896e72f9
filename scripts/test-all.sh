#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# test-all.sh - the whole test suite, as CI runs it, each pass in a build
# directory of its own built from scratch (the source tree and the demo's
# build/demo are left as they were):
#  1. build/check: a -Werror build and 'make distcheck' (unit and
#     integration tests, and the release tarball builds, installs and
#     uninstalls cleanly);
#  2. build/asan: an AddressSanitizer + UndefinedBehaviorSanitizer build
#     and 'make check';
#  3. build/fuzz: every parser of untrusted input fuzzed with libFuzzer
#     for FUZZ_SECONDS each (scripts/fuzz.sh);
#  4. build/m32: on x86-64, a 32-bit (i386, gcc -m32) -Werror build and its
#     unit and packaging tests (scripts/build-32.sh; 'build-32.sh --all'
#     runs the integration tests on it as well).  Last, so that the passes
#     before keep their numbers.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
jobs=$(nproc)

show_failures() {
	find "$1" -name '*.trs' -exec grep -l -E '^:test-result: (FAIL|ERROR)' {} + 2>/dev/null |
		while read -r t; do
			echo "--- ${t%.trs}.log"
			tail -n 80 "${t%.trs}.log"
		done
}
skipped() {
	find "$1" -name '*.trs' -exec grep -l '^:test-result: SKIP' {} + 2>/dev/null |
		while read -r t; do
			echo "skipped: ${t%.trs}: $(grep -h '^SKIP' "${t%.trs}.log" | head -n 1)"
		done
}
rm -rf build/check build/asan build/fuzz build/m32
autoreconf -fi

echo "=== pass 1: -Wall -Wextra -Werror, make distcheck (build/check) ==="
sh scripts/configure-in.sh build/check --enable-werror
make -C build/check -j"$jobs"
make -C build/check -j"$jobs" distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror || { show_failures build/check; exit 1; }

echo "=== pass 2: ASan + UBSan, make check (build/asan) ==="
sh scripts/configure-in.sh build/asan --enable-werror --enable-sanitizers
make -C build/asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	make -C build/asan -j"$jobs" check || { show_failures build/asan; exit 1; }
skipped build/asan
echo "=== pass 3: fuzzing, ${FUZZ_SECONDS:-60} s a target (build/fuzz) ==="
sh scripts/fuzz.sh
if [ "$(uname -m)" = x86_64 ]; then
	echo "=== pass 4: 32-bit (i386) build, unit and packaging tests (build/m32) ==="
	st=0
	sh scripts/build-32.sh || st=$?
	# 77: no gcc -m32 or no i386 libraries (deps.sh said above why it could
	# not install them): nothing was built, nothing failed
	if [ "$st" -eq 77 ]; then
		echo "=== pass 4 skipped: the i386 packages are missing (above): the 32-bit build is not checked ==="
	elif [ "$st" -ne 0 ]; then
		show_failures build/m32
		exit 1
	else
		skipped build/m32
	fi
else
	echo "=== pass 4 skipped: the 32-bit build is for x86-64 hosts ($(uname -m) here) ==="
fi
echo "=== all tests passed (all four passes) ==="
