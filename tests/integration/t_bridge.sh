#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_bridge.sh - ipcq-bridge carries messages between two hosts through
# NATS JetStream, at least once: a real nats-server -js on a free loopback
# port with a private store, and two ipcbrokerd instances in private
# namespaces standing for host A (queue 'out', at-least-once) and host B
# (queues 'in', 'in1', 'in2').  export takes 'out' to subject jobs.x of
# the work-queue stream JOBS, import takes it to B.  Messages are sequence
# numbers, so that a loss, a stranger and a duplicate each show: every
# run must deliver all, and a duplicate is allowed only where a failure
# (a kill -9 of a bridge, nats-server or a daemon) makes a delivery again.
# Then the same from config files (--config), what the bridge tells
# systemd (NOTIFY_SOCKET, read by tests/stress/notifyrecv), and tls://
# to a second nats-server with a certificate made here (openssl).
# Skips (77) when the bridge was not built or nats-server is missing.
BRIDGE="${IPCQ_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/bridge/ipcq-bridge"
[ -x "$BRIDGE" ] || { echo "SKIP: ipcq-bridge not built (configure found no libnats: install libnats-dev)"; exit 77; }
command -v nats-server >/dev/null 2>&1 || { echo "SKIP: nats-server not installed (Debian package nats-server)"; exit 77; }
. "$(dirname "$0")/lib.sh"
MQ_BUDGET_NEEDED=65536

NSB=$(printf '%s' "$NS" | cut -c1-29)_hb
SOCKB="$T/b.sock"
BLOG="$T/daemonb.log"
BPID=
NPID=
NPORT=
TPID=
RPID=
BRIDGES=
IPCQ_B="$IPCQ --socket $SOCKB"

test_cleanup() {
	for p in $BRIDGES; do
		kill -9 "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if ! { [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; } && grep -qv '^#' "$T/$NSB.queues" 2>/dev/null; then
		# host B's daemon died with queues: a new one adopts them to delete
		"$IPCBROKERD" --namespace "$NSB" --socket "$SOCKB" >>"$BLOG" 2>&1 &
		BPID=$!
		i=0
		while [ $i -lt 100 ] && ! $IPCQ_B list >/dev/null 2>&1; do sleep 0.05; i=$((i + 1)); done
	fi
	if [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; then
		for q in $($IPCQ_B list 2>/dev/null | cut -f1); do
			$IPCQ_B delete "$q" >/dev/null 2>&1 || true
		done
		kill -TERM "$BPID" 2>/dev/null || true
		wait "$BPID" 2>/dev/null || true
	fi
	rm -f /dev/shm/ipcq."$NSB".* 2>/dev/null || true
	[ -d /dev/mqueue ] && rm -f /dev/mqueue/ipcq."$NSB".* 2>/dev/null || true
	for p in $NPID $TPID $RPID; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ -n "${BRIDGE_FAILED:-}" ]; then
		for f in "$T"/bridge-*.log "$BLOG" "$T/nats.log" "$T/natstls.log" "$T/notify.out"; do
			[ -f "$f" ] || continue
			echo "--- $(basename "$f"), last 20 lines:"
			tail -n 20 "$f"
		done
	fi
}

bfail() {
	BRIDGE_FAILED=1
	fail "$@"
}

# start_nats [PORT]: nats-server with JetStream on its store in $T/nats
# (a free port when none is given); sets NPID and NPORT, NATS_URL
start_nats() {
	: >"$T/nats.log"
	nats-server -js -a 127.0.0.1 -p "${1:--1}" -sd "$T/nats" -l "$T/nats.log" &
	NPID=$!
	i=0
	while [ $i -lt 100 ]; do
		NPORT=$(sed -n 's/.*Listening for client connections on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/nats.log")
		if [ -n "$NPORT" ] && grep -q 'Server is ready' "$T/nats.log"; then
			NATS_URL="nats://127.0.0.1:$NPORT"
			return 0
		fi
		kill -0 "$NPID" 2>/dev/null || bfail "nats-server exited during start-up"
		sleep 0.05
		i=$((i + 1))
	done
	bfail "nats-server did not become ready in 5 s"
}

start_daemon_b() {
	"$IPCBROKERD" --namespace "$NSB" --socket "$SOCKB" -c "$T/b.conf" >>"$BLOG" 2>&1 &
	BPID=$!
	i=0
	until $IPCQ_B list >/dev/null 2>&1; do
		kill -0 "$BPID" 2>/dev/null || bfail "host B's ipcbrokerd exited during start-up"
		[ $i -lt 100 ] || bfail "host B's ipcbrokerd did not become ready in 5 s"
		sleep 0.05
		i=$((i + 1))
	done
}

# bridge NAME ARGS...: start ipcq-bridge in the background (log
# $T/bridge-NAME.log); its pid in $LAST_BRIDGE
bridge() {
	name=$1
	shift
	bridge_bare "$name" --nats "$NATS_URL" "$@"
}

# bridge_bare NAME ARGS...: the same without --nats (a config file's)
bridge_bare() {
	name=$1
	shift
	"$BRIDGE" "$@" >>"$T/bridge-$name.log" 2>&1 &
	LAST_BRIDGE=$!
	BRIDGES="$BRIDGES $LAST_BRIDGE"
}

stop_bridge() { # PID: SIGTERM, and it must exit 0
	kill -TERM "$1"
	st=0
	wait "$1" || st=$?
	[ "$st" -eq 0 ] || bfail "ipcq-bridge exited with status $st after SIGTERM"
}

export_a() { bridge export --socket "$SOCK" export out jobs.x --stream JOBS; }
import_b() { # QUEUE
	bridge "import-$1" --socket "$SOCKB" import jobs.x "$1" --stream JOBS --durable hostb --ack-wait 2
}

# collect QUEUE FILE: receive on host B until 4 s pass without a message
collect() {
	st=0
	$IPCQ_B recv -c 0 -t 4 "$1" >"$2" 2>"$T/collect.err" || st=$?
	[ "$st" -eq 3 ] || bfail "ipcq recv on host B's '$1' ended with status $st ($(cat "$T/collect.err"))"
}

# wait_depth_b QUEUE N: until host B's QUEUE received or holds N
wait_sent_b() {
	i=0
	while [ "$($IPCQ_B stat "$1" | sed -n 's/^sent: //p')" -lt "$2" ]; do
		[ $i -lt 400 ] || bfail "host B's '$1' never got $2 messages"
		sleep 0.025
		i=$((i + 1))
	done
}

# check_all FILE FIRST LAST: every number FIRST..LAST in FILE, nothing
# else; sets DUPS to the number of duplicates
check_all() {
	sort -u "$1" >"$T/uniq"
	seq "$2" "$3" | sort >"$T/want"
	missing=$(comm -23 "$T/want" "$T/uniq" | wc -l)
	extra=$(comm -13 "$T/want" "$T/uniq" | wc -l)
	[ "$missing" -eq 0 ] && [ "$extra" -eq 0 ] ||
		bfail "messages $2..$3: $missing missing (first: $(comm -23 "$T/want" "$T/uniq" | head -n 3 | tr '\n' ' '))," \
			"$extra others arrived"
	DUPS=$(($(wc -l <"$1") - $(wc -l <"$T/uniq")))
}

test_bad_url_and_missing_stream_exit_nonzero_with_a_clear_error() {
	expect_status 1 "export to a bad URL" "$BRIDGE" --socket "$SOCK" --nats 'nats:/nowhere' export out jobs.x
	grep -q "bad NATS URL 'nats:/nowhere'" "$T/err" || bfail "bad URL: unclear error '$(cat "$T/err")'"
	expect_status 1 "export to a port nothing listens on" "$BRIDGE" --socket "$SOCK" --nats nats://127.0.0.1:1 \
		export out jobs.x
	grep -q "cannot connect to NATS at 'nats://127.0.0.1:1'" "$T/err" || bfail "no server: unclear error '$(cat "$T/err")'"
	expect_status 1 "import from a missing stream" "$BRIDGE" --socket "$SOCKB" --nats "$NATS_URL" \
		import jobs.x in --stream NOSUCH
	grep -q "no JetStream stream 'NOSUCH'" "$T/err" || bfail "missing stream: unclear error '$(cat "$T/err")'"
	expect_status 1 "export to a subject no stream takes" "$BRIDGE" --socket "$SOCK" --nats "$NATS_URL" \
		export out nobody.listens
	grep -q "no JetStream stream takes subject 'nobody.listens'" "$T/err" ||
		bfail "no stream for the subject: unclear error '$(cat "$T/err")'"
	expect_status 2 "import without --stream" "$BRIDGE" --nats "$NATS_URL" import jobs.x in
	pass "a bad URL, no server, a missing stream exit 1 and say which; a usage error exits 2"
}

test_10000_messages_cross_exactly_once_with_their_priority() {
	export_a
	exp=$LAST_BRIDGE
	import_b in
	imp=$LAST_BRIDGE
	seq 1 10000 | "$IPCQ" send out
	collect in "$T/got"
	check_all "$T/got" 1 10000
	dups=$DUPS
	assert_eq 0 "$dups" "duplicates with no failure"
	"$IPCQ" send -p 7 out high
	"$IPCQ" send out low
	$IPCQ_B recv -c 2 -t 10 -F '%m %p%n' in >"$T/prio"
	sort "$T/prio" >"$T/prio.s"
	printf 'high 7\nlow 0\n' >"$T/prio.want"
	cmp -s "$T/prio.want" "$T/prio.s" || bfail "priorities across the bridge: $(tr '\n' ' ' <"$T/prio")"
	assert_eq 0 "$(qstat out depth)" "host A's queue once exported"
	stop_bridge "$imp"
	stop_bridge "$exp"
	pass "10000 messages sent on host A arrive once each on host B; priority 7 travels as a header"
}

test_two_importers_share_the_work() {
	export_a
	exp=$LAST_BRIDGE
	import_b in1
	i1=$LAST_BRIDGE
	import_b in2
	i2=$LAST_BRIDGE
	seq 20001 25000 | "$IPCQ" send out
	$IPCQ_B recv -c 0 -t 4 in1 >"$T/got1" 2>/dev/null &
	c1=$!
	collect in2 "$T/got2"
	wait "$c1" || true
	n1=$(wc -l <"$T/got1")
	n2=$(wc -l <"$T/got2")
	[ "$n1" -gt 0 ] && [ "$n2" -gt 0 ] || bfail "one importer got nothing: $n1 and $n2 of 5000"
	cat "$T/got1" "$T/got2" >"$T/got12"
	check_all "$T/got12" 20001 25000
	dups=$DUPS
	assert_eq 0 "$dups" "messages both importers got"
	stop_bridge "$i1"
	stop_bridge "$i2"
	stop_bridge "$exp"
	pass "two importers of one durable consumer: $n1 and $n2 of 5000, together all, none twice"
}

# flow IDLE: an importer into host B's queue in and an exporter of host A's
# queue out (their pids in imp and exp), a collector of in that stops
# after IDLE s without a message (col), and host B's sent count of in
# before the flow (base)
flow() {
	import_b in
	imp=$LAST_BRIDGE
	export_a
	exp=$LAST_BRIDGE
	$IPCQ_B recv -c 0 -t "$1" in >"$T/got" 2>/dev/null &
	col=$!
	base=$($IPCQ_B stat in | sed -n 's/^sent: //p')
}

test_kill_9_of_the_bridges_loses_nothing() {
	flow 6
	seq 30001 40000 | "$IPCQ" send out &
	snd=$!
	wait_sent_b in $((base + 2000))
	kill -9 "$exp"
	wait "$exp" 2>/dev/null || true
	export_a
	exp=$LAST_BRIDGE
	wait_sent_b in $((base + 6000))
	kill -9 "$imp"
	wait "$imp" 2>/dev/null || true
	import_b in
	imp=$LAST_BRIDGE
	wait "$snd" || bfail "ipcq send on host A failed"
	wait "$col" || true
	check_all "$T/got" 30001 40000
	dups=$DUPS
	redelivered=$(qstat out redelivered)
	# what a kill can make come again: export's window in flight (512
	# published, not yet released), import's batch sent but not acked, and
	# acks of the batch before still in the NATS client's buffer (256 each)
	[ "$dups" -le 1024 ] || bfail "$dups duplicates after killing each bridge once (512 + 2 x 256 at most)"
	stop_bridge "$imp"
	stop_bridge "$exp"
	pass "kill -9 of export and of import mid-stream: all 10000 arrive, $dups duplicates" \
		"(host A redelivered $redelivered)"
}

test_nats_server_killed_and_restarted_on_its_store_loses_nothing() {
	flow 8
	seq 50001 60000 | "$IPCQ" send out &
	snd=$!
	wait_sent_b in $((base + 3000))
	kill -9 "$NPID"
	wait "$NPID" 2>/dev/null || true
	NPID=
	start_nats "$NPORT"
	wait "$snd" || bfail "ipcq send on host A failed"
	wait "$col" || true
	check_all "$T/got" 50001 60000
	dups=$DUPS
	kill -0 "$exp" && kill -0 "$imp" || bfail "a bridge exited when nats-server went away"
	grep -q 'waiting for NATS' "$T/bridge-export.log" || bfail "export did not say it waited for NATS"
	stop_bridge "$imp"
	stop_bridge "$exp"
	pass "kill -9 of nats-server mid-stream, restarted on its store: both bridges reconnect," \
		"all 10000 arrive, $dups duplicates"
}

test_daemon_restarts_lose_nothing() {
	flow 8
	seq 60001 70000 | "$IPCQ" send out
	wait_sent_b in $((base + 2000))
	stop_daemon KILL
	start_daemon -c "$T/a.conf"
	wait_sent_b in $((base + 5000))
	kill -9 "$BPID"
	wait "$BPID" 2>/dev/null || true
	start_daemon_b
	wait "$col" || true
	check_all "$T/got" 60001 70000
	kill -0 "$exp" && kill -0 "$imp" || bfail "a bridge exited when its daemon was restarted"
	stop_bridge "$imp"
	stop_bridge "$exp"
	pass "kill -9 and restart of host A's and host B's ipcbrokerd mid-stream: all 10000 arrive, $DUPS duplicates"
}

# The files of the two bridges of the tests above: export of host A's
# 'out', import into host B's QUEUE (comments and ';' included, as users
# write them).
write_export_conf() { # FILE
	cat >"$1" <<CONF
# host A's side
nats = "$NATS_URL"
socket = "$SOCK"   // the test's daemon
export {
	queue = "out"; subject = "jobs.x"
	/* checked to exist */
	stream = "JOBS"
}
CONF
}

write_import_conf() { # FILE QUEUE
	cat >"$1" <<CONF
nats = "$NATS_URL"
socket = "$SOCKB"
import {
	subject = "jobs.x"
	queue = "$2"
	stream = "JOBS"
	durable = "hostb"   # the consumer the flag-driven importers share
	ack_wait = 2
}
CONF
}

test_config_files_carry_messages_like_the_flags() {
	write_export_conf "$T/export.conf"
	write_import_conf "$T/import.conf" in
	"$BRIDGE" --config "$T/export.conf" --check-config >"$T/out" 2>&1 ||
		bfail "--check-config refuses a good export file: $(cat "$T/out")"
	bridge_bare export-conf --config "$T/export.conf"
	exp=$LAST_BRIDGE
	bridge_bare import-conf -c "$T/import.conf"
	imp=$LAST_BRIDGE
	seq 80001 80500 | "$IPCQ" send out
	collect in "$T/got"
	check_all "$T/got" 80001 80500
	assert_eq 0 "$DUPS" "duplicates with no failure (config files)"
	assert_eq 0 "$(qstat out depth)" "host A's queue once exported (config files)"
	grep -q "exporting queue 'out' to subject 'jobs.x'" "$T/bridge-export-conf.log" ||
		bfail "the export of the file did not say what it exports: $(cat "$T/bridge-export-conf.log")"
	stop_bridge "$imp"
	stop_bridge "$exp"
	pass "config files (--config, -c) drive export and import: 500 messages cross once each"
}

# expect_config_error WHAT PATTERN FILE: the bridge refuses FILE with exit
# 2 and a message matching PATTERN (grep BRE), before connecting anywhere
expect_config_error() {
	expect_status 2 "$1" "$BRIDGE" --config "$3"
	grep -q "$2" "$T/err" || bfail "$1: the message does not say '$2': '$(cat "$T/err")'"
}

test_bad_config_files_exit_2_naming_file_line_and_problem() {
	printf 'nats = "%s"\nexport {\n\tqueue = "out"\n\tsubject = \n}\n' "$NATS_URL" >"$T/syntax.conf"
	expect_config_error "a syntax error" "syntax.conf:5: .*unexpected" "$T/syntax.conf"
	printf 'nats = "%s"\nexport {\n\tqueue = "out"\n\tsubject = "jobs.x"\n\tdurabel = "x"\n}\n' "$NATS_URL" \
		>"$T/unknown.conf"
	expect_config_error "an unknown key" "unknown.conf:5: .*durabel" "$T/unknown.conf"
	printf 'nats = "%s"\n# no queue\nimport {\n\tsubject = "jobs.x"\n\tstream = "JOBS"\n}\n' "$NATS_URL" \
		>"$T/noqueue.conf"
	expect_config_error "a missing queue" "noqueue.conf:6: import { } lacks queue" "$T/noqueue.conf"
	printf 'nats = "%s"\nexport { queue = "out" subject = "jobs.x" }\nimport { queue = "in" subject = "jobs.x" stream = "JOBS" }\n' \
		"$NATS_URL" >"$T/both.conf"
	expect_config_error "both directions" "both.conf:3: .*one direction" "$T/both.conf"
	printf 'nats = "%s"\n' "$NATS_URL" >"$T/neither.conf"
	expect_config_error "no direction" "neither.conf: no export { } or import { }" "$T/neither.conf"
	printf 'nats = "%s"\nimport { queue = "in" subject = "jobs.x" stream = "JOBS"\n\tack_wait = 0 }\n' "$NATS_URL" \
		>"$T/range.conf"
	expect_config_error "ack_wait out of range" "range.conf:3: ack_wait = 0: out of range" "$T/range.conf"
	expect_config_error "a missing file" "cannot read config '$T/nosuch.conf'" "$T/nosuch.conf"
	expect_status 2 "--check-config of a bad file" "$BRIDGE" --config "$T/unknown.conf" --check-config
	pass "a syntax error, an unknown key, a missing queue, two or no directions, a bad value," \
		"a missing file: exit 2, naming the file, the line and the problem"
}

test_flags_override_the_file() {
	# everything the file says of where to connect is wrong: only the
	# flags beside it make the bridges work
	cat >"$T/wrong-export.conf" <<CONF
nats = "nats://127.0.0.1:1"
namespace = "nosuch"
export { queue = "out" subject = "jobs.x" stream = "NOSUCH" }
CONF
	write_import_conf "$T/wrong-import.conf" in
	sed -i -e 's|^nats = .*|nats = "nats://127.0.0.1:1"|' -e 's|"JOBS"|"NOSUCH"|' "$T/wrong-import.conf"
	expect_status 1 "the wrong file alone" "$BRIDGE" --config "$T/wrong-export.conf"
	grep -q "cannot connect to NATS at 'nats://127.0.0.1:1'" "$T/err" ||
		bfail "the file's nats = was not used: '$(cat "$T/err")'"
	bridge export-over --config "$T/wrong-export.conf" --socket "$SOCK" --stream JOBS
	exp=$LAST_BRIDGE
	bridge import-over --config "$T/wrong-import.conf" --stream JOBS
	imp=$LAST_BRIDGE
	seq 90001 90200 | "$IPCQ" send out
	collect in "$T/got"
	check_all "$T/got" 90001 90200
	stop_bridge "$imp"
	stop_bridge "$exp"
	pass "--nats, --socket and --stream beside --config win over the file's nats, namespace and stream"
}

# notify_wait PATTERN MS WHAT: a line matching the ERE PATTERN in
# $T/notify.out within MS ms
notify_wait() {
	i=0
	until grep -Eq "$1" "$T/notify.out"; do
		[ $i -lt $(($2 / 20)) ] || bfail "$3: no line matching '$1' within $2 ms; got: $(cat "$T/notify.out")"
		sleep 0.02
		i=$((i + 1))
	done
}

test_bridge_tells_systemd_what_it_waits_for() {
	start_notifyrecv "$T/notify.sock" "$T/notify.out" 30
	RPID=$NOTIFYRECV_PID
	# NATS not there at start: exit 1, and never READY=1
	st=0
	NOTIFY_SOCKET="$T/notify.sock" "$BRIDGE" --nats nats://127.0.0.1:1 --socket "$SOCKB" \
		import jobs.x in --stream JOBS --durable hostb >/dev/null 2>&1 || st=$?
	assert_eq 1 "$st" "exit status of an import whose NATS server is not there"
	sleep 0.1
	! grep -q '^READY=1$' "$T/notify.out" || bfail "READY=1 without a NATS server: $(cat "$T/notify.out")"
	# host B's daemon down: READY=1 once NATS and the stream are there,
	# and STATUS= says it waits for the daemon, until the daemon comes
	kill -TERM "$BPID"
	wait "$BPID" || bfail "host B's ipcbrokerd did not stop cleanly"
	BPID=
	write_import_conf "$T/import.conf" in
	NOTIFY_SOCKET="$T/notify.sock" "$BRIDGE" --config "$T/import.conf" >>"$T/bridge-import-notify.log" 2>&1 &
	imp=$!
	BRIDGES="$BRIDGES $imp"
	notify_wait '^READY=1$' 5000 "READY=1 once connected to NATS"
	notify_wait "^STATUS=waiting for ipcbrokerd \\($SOCKB\\)" 5000 "the wait for host B's daemon"
	! grep -q '^STATUS=importing' "$T/notify.out" || bfail "'importing' said with no daemon: $(cat "$T/notify.out")"
	start_daemon_b
	notify_wait "^STATUS=importing subject 'jobs.x' of stream 'JOBS' \\(consumer 'hostb'\\) into queue 'in'" 10000 \
		"the status once host B's daemon is there"
	"$IPCQ" send out notified
	export_a
	exp=$LAST_BRIDGE
	got=$($IPCQ_B recv -t 10 in) || bfail "nothing arrived through the bridge that waited for its daemon"
	assert_eq notified "$got" "the message through the bridge that waited"
	stop_bridge "$exp"
	stop_bridge "$imp"
	notify_wait '^STOPPING=1$' 2000 "STOPPING=1 on SIGTERM"
	kill -TERM "$RPID"
	wait "$RPID" || true
	RPID= NOTIFYRECV_PID=
	pass "NOTIFY_SOCKET: no READY=1 without NATS (exit 1); READY=1 once NATS is there," \
		"STATUS= 'waiting for ipcbrokerd' until the daemon comes, then 'importing ...'; STOPPING=1"
}

# start_nats_tls: a second nats-server with JetStream, speaking TLS only,
# with a certificate for 127.0.0.1 signed by a CA made here ($T/tls); sets
# TPID and TLS_URL
start_nats_tls() {
	mkdir -p "$T/tls"
	for ca in ca wrongca; do
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ipcq test $ca" \
			-keyout "$T/tls/$ca.key" -out "$T/tls/$ca.pem" >"$T/openssl.log" 2>&1 ||
			bfail "openssl cannot make a CA: $(cat "$T/openssl.log")"
	done
	openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$T/tls/server.key" \
		-out "$T/tls/server.csr" >"$T/openssl.log" 2>&1 || bfail "openssl req: $(cat "$T/openssl.log")"
	printf 'subjectAltName=IP:127.0.0.1\n' >"$T/tls/san.ext"
	openssl x509 -req -in "$T/tls/server.csr" -CA "$T/tls/ca.pem" -CAkey "$T/tls/ca.key" -CAcreateserial \
		-days 2 -extfile "$T/tls/san.ext" -out "$T/tls/server.pem" >"$T/openssl.log" 2>&1 ||
		bfail "openssl x509: $(cat "$T/openssl.log")"
	cat >"$T/tls/nats.conf" <<CONF
tls {
	cert_file: "$T/tls/server.pem"
	key_file: "$T/tls/server.key"
}
CONF
	: >"$T/natstls.log"
	nats-server -c "$T/tls/nats.conf" -js -a 127.0.0.1 -p -1 -sd "$T/natstls" -l "$T/natstls.log" &
	TPID=$!
	i=0
	while [ $i -lt 100 ]; do
		port=$(sed -n 's/.*Listening for client connections on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/natstls.log")
		if [ -n "$port" ] && grep -q 'Server is ready' "$T/natstls.log"; then
			grep -q 'TLS required for client connections' "$T/natstls.log" ||
				bfail "the second nats-server does not require TLS: $(cat "$T/natstls.log")"
			TLS_URL="tls://127.0.0.1:$port"
			return 0
		fi
		kill -0 "$TPID" 2>/dev/null || bfail "nats-server with TLS exited during start-up: $(cat "$T/natstls.log")"
		sleep 0.05
		i=$((i + 1))
	done
	bfail "nats-server with TLS did not become ready in 5 s"
}

test_tls_with_a_ca_of_its_own() {
	start_nats_tls
	expect_status 1 "tls:// without the CA" "$BRIDGE" --nats "$TLS_URL" add-stream TJOBS tjobs.x
	grep -qi "cannot connect to NATS at '$TLS_URL'.*\\(ssl\\|tls\\|certificate\\)" "$T/err" ||
		bfail "tls:// without the CA: unclear error '$(cat "$T/err")'"
	expect_status 1 "tls:// with a wrong CA" "$BRIDGE" --nats "$TLS_URL" --tls-ca "$T/tls/wrongca.pem" \
		add-stream TJOBS tjobs.x
	grep -qi "cannot connect to NATS at '$TLS_URL'.*\\(ssl\\|tls\\|certificate\\)" "$T/err" ||
		bfail "tls:// with a wrong CA: unclear error '$(cat "$T/err")'"
	expect_status 1 "--tls-ca of a missing file" "$BRIDGE" --nats "$TLS_URL" --tls-ca "$T/tls/nosuch.pem" \
		add-stream TJOBS tjobs.x
	grep -q "$T/tls/nosuch.pem" "$T/err" || bfail "--tls-ca of a missing file: unclear error '$(cat "$T/err")'"
	"$BRIDGE" --nats "$TLS_URL" --tls-ca "$T/tls/ca.pem" add-stream TJOBS tjobs.x >"$T/out" 2>&1 ||
		bfail "add-stream over tls:// with the CA failed: $(cat "$T/out")"
	cat >"$T/tls-export.conf" <<CONF
nats = "$TLS_URL"
tls_ca = "$T/tls/ca.pem"
socket = "$SOCK"
export { queue = "out" subject = "tjobs.x" stream = "TJOBS" }
CONF
	bridge_bare export-tls --config "$T/tls-export.conf"
	exp=$LAST_BRIDGE
	bridge_bare import-tls --nats "$TLS_URL" --tls-ca "$T/tls/ca.pem" --socket "$SOCKB" import tjobs.x in \
		--stream TJOBS --durable tlsb
	imp=$LAST_BRIDGE
	seq 95001 95300 | "$IPCQ" send out
	collect in "$T/got"
	check_all "$T/got" 95001 95300
	assert_eq 0 "$DUPS" "duplicates over tls://"
	stop_bridge "$imp"
	stop_bridge "$exp"
	kill -TERM "$TPID"
	wait "$TPID" || true
	TPID=
	pass "tls:// with --tls-ca (and tls_ca in a file): 300 messages cross once each;" \
		"no CA, a wrong CA, a missing CA file: exit 1 naming the server or the file"
}

cat >"$T/a.conf" <<CONF
queue "out" {
	delivery = "at-least-once"
	max_msgs = 10
	msg_size = 256
	ring_size = "8M"
	max_payload = "64K"
}
CONF
cat >"$T/b.conf" <<CONF
defaults {
	max_msgs = 10
	msg_size = 256
	ring_size = "8M"
	max_payload = "64K"
}
CONF
start_daemon -c "$T/a.conf"
start_daemon_b
for q in in in1 in2; do
	$IPCQ_B create "$q" >/dev/null
done
start_nats
"$BRIDGE" --nats "$NATS_URL" add-stream JOBS jobs.x || bfail "add-stream JOBS jobs.x failed"

test_bad_url_and_missing_stream_exit_nonzero_with_a_clear_error
test_10000_messages_cross_exactly_once_with_their_priority
test_two_importers_share_the_work
test_kill_9_of_the_bridges_loses_nothing
test_nats_server_killed_and_restarted_on_its_store_loses_nothing
test_daemon_restarts_lose_nothing
test_config_files_carry_messages_like_the_flags
test_bad_config_files_exit_2_naming_file_line_and_problem
test_flags_override_the_file
test_bridge_tells_systemd_what_it_waits_for
test_tls_with_a_ca_of_its_own
stop_daemon
