#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_journal.sh - where the daemon's log goes.  Without JOURNAL_STREAM, and
# with one that does not name its stderr, lines go to stderr as
# "ipcbrokerd: LEVEL: text".  With JOURNAL_STREAM naming its stderr (as
# systemd sets it), lines go to the journal's native socket, with
# PRIORITY=, SYSLOG_IDENTIFIER= and the fields of what they are about
# (QUEUE=, PEER_UID=, PEER_PID=); with no journal listening there, to
# stderr with a <PRIORITY> prefix.  A stand-in journal listens on
# /run/systemd/journal/socket in a private mount namespace.
PRIVNS_FLAGS="--mount" . "$(dirname "$0")/privns.sh"
privns_mount_private /run
. "$(dirname "$0")/lib.sh"

PY=
for p in /usr/bin/python3 python3; do
	if command -v "$p" >/dev/null 2>&1; then
		PY=$p
		break
	fi
done
[ -n "$PY" ] || { echo "SKIP: no python3 for the stand-in journal"; exit 77; }
mount -t tmpfs ipcq-test-run /run || fail "cannot mount a private /run"
mkdir -p /run/systemd/journal
JPID=

test_cleanup() {
	[ -z "$JPID" ] || kill "$JPID" 2>/dev/null || true
}

# start_journal: a stand-in journald that writes each entry it gets on the
# native socket to $T/journal, fields one a line, entries ended by "--"
start_journal() {
	rm -f "$T/journal.log"
	"$PY" - "$T/journal" >"$T/journal.log" 2>&1 <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/run/systemd/journal/socket")
print("listening", flush=True)
with open(sys.argv[1], "a") as out:
    while True:
        data = s.recv(65536).decode("utf-8", "replace")
        out.write(data.rstrip("\n") + "\n--\n")
        out.flush()
EOF
	JPID=$!
	i=0
	until [ -S /run/systemd/journal/socket ] && grep -q listening "$T/journal.log" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "the stand-in journal did not start: $(cat "$T/journal.log")"
		sleep 0.05
	done
}

stop_journal() {
	kill "$JPID"
	wait "$JPID" 2>/dev/null || true
	JPID=
	rm -f /run/systemd/journal/socket
}

# entry_with TEXT: the journal entry whose MESSAGE= contains TEXT
entry_with() {
	awk -v text="$1" '
		/^--$/ { if (hit) { printf "%s", e; exit } e = ""; hit = 0; next }
		{ e = e $0 "\n"; if (index($0, "MESSAGE=") == 1 && index($0, text)) hit = 1 }
	' "$T/journal"
}

test_stderr_without_journal_stream() {
	unset JOURNAL_STREAM
	start_daemon
	grep -q "^ipcbrokerd: info: ready: namespace $NS" "$DLOG" || fail "no plain ready line: $(cat "$DLOG")"
	stop_daemon
	pass "without JOURNAL_STREAM the log is 'ipcbrokerd: LEVEL: text' on stderr"
}

test_stderr_when_journal_stream_is_not_stderr() {
	: >"$DLOG"
	start_journal
	# a stream of the parent's that the daemon's stderr (the log file) is not
	JOURNAL_STREAM=$(stat -L -c '%d:%i' /proc/self/fd/0 2>/dev/null || echo 1:2)
	[ "$JOURNAL_STREAM" != "$(stat -c '%d:%i' "$DLOG")" ] || JOURNAL_STREAM=1:2
	export JOURNAL_STREAM
	start_daemon
	"$IPCQ" create plain
	"$IPCQ" delete plain
	grep -q "^ipcbrokerd: info: queue plain: deleted by uid 0$" "$DLOG" ||
		fail "no plain line on stderr with JOURNAL_STREAM=$JOURNAL_STREAM: $(cat "$DLOG")"
	! grep -q '^<[0-9]>' "$DLOG" || fail "priority prefixes on stderr that is not the journal: $(grep '^<' "$DLOG")"
	[ ! -s "$T/journal" ] || fail "the journal got lines though stderr is not its stream: $(cat "$T/journal")"
	stop_daemon
	stop_journal
	pass "with a JOURNAL_STREAM that is not its stderr, the log stays plain on stderr"
}

test_journal_fields_when_stderr_is_the_journal_stream() {
	: >"$DLOG"
	start_journal
	JOURNAL_STREAM=$(stat -c '%d:%i' "$DLOG")
	export JOURNAL_STREAM
	start_daemon
	"$IPCQ" create jq
	"$IPCQ" delete jq
	i=0
	until entry_with "queue jq: deleted" | grep -q .; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "no journal entry for the delete: $(cat "$T/journal")"
		sleep 0.05
	done
	entry_with "queue jq: deleted" >"$T/entry"
	for field in "MESSAGE=queue jq: deleted by uid 0" PRIORITY=6 SYSLOG_IDENTIFIER=ipcbrokerd QUEUE=jq PEER_UID=0; do
		grep -qx "$field" "$T/entry" || fail "the entry lacks $field: $(cat "$T/entry")"
	done
	grep -Eqx 'PEER_PID=[1-9][0-9]*' "$T/entry" || fail "the entry lacks PEER_PID: $(cat "$T/entry")"
	entry_with "ready: namespace $NS" | grep -qx PRIORITY=6 || fail "no ready entry of priority 6: $(cat "$T/journal")"
	! grep -q "deleted" "$DLOG" || fail "the line went to stderr too: $(cat "$DLOG")"
	pass "with stderr the JOURNAL_STREAM, lines go to the journal with PRIORITY, QUEUE, PEER_UID, PEER_PID"

	stop_journal
	"$IPCQ" create jq2
	"$IPCQ" delete jq2
	grep -q "^<6>queue jq2: deleted by uid 0$" "$DLOG" ||
		fail "with no journal listening, the line is not on stderr with its priority: $(cat "$DLOG")"
	stop_daemon
	pass "with no journal listening, lines go to the stream with a <PRIORITY> prefix"
}

test_stderr_without_journal_stream
test_stderr_when_journal_stream_is_not_stderr
test_journal_fields_when_stderr_is_the_journal_stream
