#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_metrics.sh - metrics_file: the daemon keeps a Prometheus textfile of
# its queues' counters, rewritten every metrics_interval through a rename
# (a reader never sees half a file), mode 0644; it parses as Prometheus
# text, its counters move as messages flow, and it goes away with the
# daemon or with the key.
. "$(dirname "$0")/lib.sh"

PROM="$T/textfile/ipcbroker.prom"
mkdir "$T/textfile"
write_config() {
	printf 'metrics_file = "%s"\nmetrics_interval = "1s"\n' "$PROM" >"$T/metrics.conf"
}

# the Python parser of the Prometheus client library, when installed
PARSER=
for py in /usr/bin/python3 python3; do
	if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import prometheus_client.parser' 2>/dev/null; then
		PARSER=$py
		break
	fi
done

# sample NAME QUEUE: the value of NAME{queue="QUEUE"} in the file now
sample() {
	sed -n "s/^$1{queue=\"$2\"} //p" "$PROM"
}

# wait_sample NAME QUEUE VALUE: until the file says so (5 s)
wait_sample() {
	i=0
	until [ "$(sample "$1" "$2")" = "$3" ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "$1{queue=\"$2\"} is '$(sample "$1" "$2")' after 5 s, not $3"
		sleep 0.05
	done
}

# check_lines FILE: every line is a # HELP, a # TYPE (before its samples)
# or another comment, or a sample "NAME{LABELS} VALUE" of a declared family
check_lines() {
	awk '
		/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* / { next }
		/^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge)$/ { type[$3] = $4; next }
		/^# / { next }
		/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? -?[0-9]+(\.[0-9]+)?$/ {
			name = $1; sub(/\{.*/, "", name)
			if (!(name in type)) { print "sample before its # TYPE: " $0; bad = 1 }
			if (type[name] == "counter" && name !~ /_total$/) { print "counter without _total: " $0; bad = 1 }
			n++; next
		}
		{ print "not Prometheus text: " $0; bad = 1 }
		END { if (!n) { print "no samples"; bad = 1 } exit bad }
	' "$1"
}

test_file_appears_and_parses() {
	i=0
	until [ -s "$PROM" ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "$PROM did not appear in 5 s"
		sleep 0.05
	done
	assert_eq 644 "$(stat -c %a "$PROM")" "mode of the metrics file"
	"$IPCQ" create m
	wait_sample ipcq_queue_sent_total m 0
	check_lines "$PROM" >"$T/bad" || fail "the metrics file is not Prometheus text: $(cat "$T/bad")"
	grep -q '^ipcq_daemon_queues{namespace="'"$NS"'"} 1$' "$PROM" || fail "no ipcq_daemon_queues of 1: $(cat "$PROM")"
	if [ -n "$PARSER" ]; then
		"$PARSER" - "$PROM" >"$T/parsed" <<'EOF' || fail "prometheus_client cannot parse the file: $(cat "$T/parsed")"
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in family.samples:
        print(family.type, s.name, s.labels.get("queue", "-"), int(s.value))
EOF
		grep -q '^counter ipcq_queue_sent_total m 0$' "$T/parsed" ||
			fail "prometheus_client does not read ipcq_queue_sent_total of m as a counter: $(cat "$T/parsed")"
		grep -q '^gauge ipcq_queue_depth m 0$' "$T/parsed" ||
			fail "prometheus_client does not read ipcq_queue_depth of m as a gauge: $(cat "$T/parsed")"
		pass "the metrics file appears, mode 0644, and parses (prometheus_client and a line check)"
	else
		pass "the metrics file appears, mode 0644, and passes a line check (no prometheus_client to parse it)"
	fi
}

test_counters_move_with_messages() {
	seq 5 | "$IPCQ" send m
	wait_sample ipcq_queue_sent_total m 5
	wait_sample ipcq_queue_depth m 5
	"$IPCQ" recv -c 3 -t 2 m >/dev/null
	wait_sample ipcq_queue_received_total m 3
	wait_sample ipcq_queue_depth m 2
	ring=$(sample ipcq_queue_sent_ring_total m)
	head -c 20000 /dev/urandom >"$T/bulk"
	"$IPCQ" send -f "$T/bulk" m
	wait_sample ipcq_queue_sent_total m 6
	wait_sample ipcq_queue_sent_ring_total m $((ring + 1))
	pass "sent_total, received_total, depth and sent_ring_total follow the messages within a few seconds"
}

test_readers_never_see_half_a_file() {
	"$IPCQ" create m2
	wait_sample ipcq_queue_depth m2 0
	end=$(($(date +%s) + 3))
	reads=0
	while [ "$(date +%s)" -lt "$end" ]; do
		cat "$PROM" >"$T/snap"
		n=$(grep -c '^ipcq_queue_quarantined{' "$T/snap" || true)
		[ "$n" = 2 ] || fail "a read saw $n of the 2 queues' last samples: $(tail -n 3 "$T/snap")"
		reads=$((reads + 1))
	done
	ls "$T/textfile" >"$T/ls"
	assert_eq ipcbroker.prom "$(cat "$T/ls")" "files in the textfile directory (no temporary file left)"
	pass "$reads reads over 3 s (3 rewrites) each saw a whole file"
}

test_file_goes_with_the_key_and_the_daemon() {
	printf 'metrics_interval = "1s"\n' >"$T/metrics.conf"
	kill -HUP "$DPID"
	i=0
	while [ -e "$PROM" ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "the metrics file is still there 5 s after a reload without metrics_file"
		sleep 0.05
	done
	write_config
	kill -HUP "$DPID"
	i=0
	until [ -s "$PROM" ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "the metrics file did not come back after a reload with metrics_file"
		sleep 0.05
	done
	"$IPCQ" delete m
	"$IPCQ" delete m2
	stop_daemon
	[ ! -e "$PROM" ] || fail "the metrics file outlived the daemon"
	pass "a reload without metrics_file removes the file, one with it brings it back; a stop removes it"
}

write_config
start_daemon -c "$T/metrics.conf"
test_file_appears_and_parses
test_counters_move_with_messages
test_readers_never_see_half_a_file
test_file_goes_with_the_key_and_the_daemon
