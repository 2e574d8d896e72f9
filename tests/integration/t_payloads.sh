#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_payloads.sh - payload sizes around every boundary, through the C API
# (copy and zero-copy) and through the CLI (ipcq send -f / recv -o).
. "$(dirname "$0")/lib.sh"

test_api_round_trips_every_size() {
	"$STRESS/payloads" q || fail "payloads reported failures"
	pass "C API: every size, error path and zero-copy call"
}

test_cli_file_round_trips_every_size() {
	"$IPCQ" create files >/dev/null || fail "cannot create queue files"
	for size in 0 1 503 504 505 100000 16777216; do
		head -c "$size" /dev/urandom >"$T/in.$size"
		"$IPCQ" send -f "$T/in.$size" files || fail "ipcq send -f of $size bytes"
		"$IPCQ" recv -t 5 -o "$T/out.$size" files || fail "ipcq recv -o of $size bytes"
		cmp "$T/in.$size" "$T/out.$size" || fail "$size-byte file changed on the way"
		rm -f "$T/in.$size" "$T/out.$size"
	done
	assert_eq 0 "$(qstat files ring_used)" "ring_used after the CLI round trips"
	pass "CLI: files of 0 bytes to 16 MiB come back identical"
}

start_daemon
test_cli_file_round_trips_every_size
test_api_round_trips_every_size
stop_daemon
