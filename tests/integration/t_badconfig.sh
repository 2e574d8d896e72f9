#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_badconfig.sh - ipcbrokerd --check-config refuses bad files with exit 1
# and FILE:LINE: pointing at the offending line, accepts good ones, and a
# daemon given a bad file exits before it creates its socket.
. "$(dirname "$0")/lib.sh"

BAD="$T/bad.conf"

# check_bad LINE WHAT: --check-config on $BAD exits 1 and reports bad.conf:LINE:
check_bad() {
	line=$1 what=$2
	st=0
	"$IPCBROKERD" --check-config -c "$BAD" >"$T/out" 2>&1 || st=$?
	assert_eq 1 "$st" "exit status of --check-config for $what"
	grep -q "^$BAD:$line: " "$T/out" ||
		fail "$what: no '$BAD:$line: ' in the output of --check-config: $(cat "$T/out")"
}

test_unknown_key_is_reported_with_its_line() {
	printf 'auto_create = true\n# a comment\nno_such_key = 1\nlog_level = "info"\n' >"$BAD"
	check_bad 3 "an unknown key on line 3"
	grep -q no_such_key "$T/out" || fail "the unknown key is not named: $(cat "$T/out")"
	pass "an unknown key: exit 1 and bad.conf:3:"
}

test_bad_size_is_reported_with_its_line() {
	printf '# sizes\ndefaults {\n\tmax_msgs = 10\n\tring_size = "12X"\n}\n' >"$BAD"
	check_bad 4 'ring_size = "12X" on line 4'
	grep -q 12X "$T/out" || fail "the bad value is not named: $(cat "$T/out")"
	pass "a bad size \"12X\": exit 1 and bad.conf:4:"
}

test_invalid_queue_name_is_reported_with_its_line() {
	printf 'auto_create = true\nqueue "a/b" {\n\tmax_msgs = 5\n\tmsg_size = 256\n}\n' >"$BAD"
	check_bad 2 'queue "a/b" on line 2'
	grep -q 'a/b' "$T/out" || fail "the bad name is not named: $(cat "$T/out")"
	pass "an invalid queue name: exit 1 and bad.conf:2: (the line of the name)"
}

test_duplicate_queue_is_reported_with_its_line() {
	printf 'queue "jobs" {\n}\n\nqueue "jobs" {\n\tmax_msgs = 5\n}\n' >"$BAD"
	check_bad 4 'the second queue "jobs" on line 4'
	grep -q jobs "$T/out" || fail "the duplicate name is not named: $(cat "$T/out")"
	pass "a duplicate queue: exit 1 and bad.conf:4: (the second one)"
}

test_bad_values_are_reported_with_their_lines() {
	printf 'queue "q" {\n\tallow_send = { "user:no-such-user-ipcq" }\n}\n' >"$BAD"
	check_bad 2 "an unknown user in allow_send on line 2"
	printf 'queue "q" {\n\tmsg_size = 256\n\tdelivery = "twice"\n}\n' >"$BAD"
	check_bad 3 'delivery = "twice" on line 3'
	printf 'namespace = "t"\n\ndefaults {\n\tmax_msgs = 0\n}\n' >"$BAD"
	check_bad 4 "max_msgs = 0 on line 4"
	printf 'ring_size = "64K"\n' >"$BAD"
	check_bad 1 "a queue key at the top level on line 1"
	pass "unknown users, bad words and out-of-range values: exit 1 with their line"
}

# max_payload is checked against ring_size once the section is whole; the
# report names the line of the section's header.
test_payload_larger_than_ring_is_reported_at_its_section() {
	printf 'auto_create = true\nqueue "q" {\n\tring_size = "64K"\n\tmax_payload = "64K"\n}\n' >"$BAD"
	st=0
	"$IPCBROKERD" --check-config -c "$BAD" >"$T/out" 2>&1 || st=$?
	assert_eq 1 "$st" "exit status of --check-config for max_payload = ring_size"
	grep -Eq "^$BAD:2: .*max_payload" "$T/out" ||
		fail "max_payload = ring_size not reported at the queue header, line 2: $(cat "$T/out")"
	pass "a max_payload that does not fit its ring: exit 1, reported at its section's header"
}

test_missing_file_is_an_error() {
	st=0
	"$IPCBROKERD" --check-config -c "$T/missing.conf" >"$T/out" 2>&1 || st=$?
	assert_eq 1 "$st" "exit status of --check-config for a missing file"
	grep -q "missing.conf" "$T/out" || fail "the missing file is not named: $(cat "$T/out")"
	pass "a missing config file: exit 1 naming the file"
}

test_valid_files_pass() {
	cat >"$T/good.conf" <<'EOF'
# every kind of setting, with comments in the places libconfuse finds hard
namespace = "good"   # trailing comment
auto_create = false
log_level = "debug"
max_clients = 100
/* a C comment
   over lines */
defaults { max_msgs = 10  msg_size = 512  ring_size = "64M"  max_payload = "16M" }
queue "jobs" {
	max_msgs = 5
	msg_size = "1K"
	ring_size = "1M"
	max_payload = 65536
	delivery = "at-least-once"
	allow_send = { "user:root", "group:root", "uid:0" }  // end of line
	allow_recv = { "gid:0", "*" }
}
queue "a.b-c_d" {
}
EOF
	st=0
	"$IPCBROKERD" --check-config -c "$T/good.conf" >"$T/out" 2>&1 || st=$?
	assert_eq 0 "$st" "exit status of --check-config for a valid file ($(cat "$T/out"))"
	st=0
	"$IPCBROKERD" --check-config -c "$S/etc/ipcbrokerd.conf" >"$T/out" 2>&1 || st=$?
	assert_eq 0 "$st" "exit status of --check-config for the shipped etc/ipcbrokerd.conf ($(cat "$T/out"))"
	pass "valid files (and the shipped sample) pass --check-config with exit 0"
}

test_daemon_with_bad_config_exits_without_socket() {
	printf 'auto_create = true\n\nno_such_key = 1\n' >"$BAD"
	st=0
	timeout 10 "$IPCBROKERD" --namespace "$NS" --socket "$SOCK" -c "$BAD" >"$T/out" 2>&1 || st=$?
	[ "$st" -ne 124 ] || fail "ipcbrokerd with a bad config kept running"
	[ "$st" -ne 0 ] || fail "ipcbrokerd with a bad config exited 0"
	[ ! -e "$SOCK" ] || fail "ipcbrokerd with a bad config created its socket"
	grep -q "^$BAD:3: " "$T/out" || fail "ipcbrokerd did not report $BAD:3: $(cat "$T/out")"
	pass "ipcbrokerd with a bad config exits $st, reports bad.conf:3:, and creates no socket"
}

test_unknown_key_is_reported_with_its_line
test_bad_size_is_reported_with_its_line
test_duplicate_queue_is_reported_with_its_line
test_bad_values_are_reported_with_their_lines
test_payload_larger_than_ring_is_reported_at_its_section
test_missing_file_is_an_error
test_valid_files_pass
test_daemon_with_bad_config_exits_without_socket
test_invalid_queue_name_is_reported_with_its_line
