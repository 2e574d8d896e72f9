#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_cli_ops.sh - what ipcq offers an operator: top (its plain-text batch
# form), stat --prometheus, list --json, recv --json, -F, --drain and
# --deadline, send --deadline, -q and -v, refused repeated options,
# invalid queue names that say what a valid one is, 'ipcq help CMD', the
# bash completion, and a man page that documents every option.  Each
# check uses queues of its own.
. "$(dirname "$0")/lib.sh"

now_ms() {
	date +%s%3N
}

# count_lines FILE PATTERN: lines of FILE matching the basic regex
count_lines() {
	grep -c -- "$2" "$1" || true
}

test_top_batch_shows_rates_when_messages_flow() {
	"$IPCQ" create topq
	"$IPCQ" create topidle
	# four views a second apart; messages flow after the first
	"$IPCQ" top -b -n 4 -d 1 >"$T/top" 2>"$T/top.err" &
	tpid=$!
	i=0
	until grep -qs '^topq ' "$T/top"; do
		[ $i -lt 100 ] || fail "top -b printed no view in 5 s: $(cat "$T/top.err")"
		sleep 0.05
		i=$((i + 1))
	done
	seq 200 | "$IPCQ" send topq
	"$IPCQ" recv -c 50 topq >/dev/null
	st=0
	wait "$tpid" || st=$?
	assert_eq 0 "$st" "exit status of top -b -n 4"
	assert_eq 4 "$(count_lines "$T/top" '^ipcq top - ')" "views printed by top -b -n 4"
	assert_eq 4 "$(count_lines "$T/top" '^QUEUE  *DEPTH  *BACKLOG  *IN/s  *OUT/s  *RING%  *RING_USED  *RECV  *LSTN  *MODE$')" \
		"column titles of top -b"
	grep -q "$(printf '\033')" "$T/top" && fail "top -b wrote escape sequences"
	# the rows of topq and topidle, view by view: NAME DEPTH BACKLOG IN OUT ...
	grep '^topq ' "$T/top" >"$T/topq"
	grep '^topidle ' "$T/top" >"$T/topidle"
	assert_eq 4 "$(wc -l <"$T/topq" | tr -d ' ')" "rows of topq"
	assert_eq "- -" "$(head -n 1 "$T/topq" | awk '{ print $4, $5 }')" "rates in the first view (nothing to compare with)"
	awk 'NR > 1 && $4 > 0 { i = 1 } NR > 1 && $5 > 0 { o = 1 } END { exit !(i && o) }' "$T/topq" ||
		fail "no later view shows topq's messages in and out per second: $(cat "$T/topq")"
	# the rates add up to what moved: 200 in, 50 out, over views 1 s apart
	awk 'NR > 1 { i += $4; o += $5 } END { exit !(i > 100 && i < 400 && o > 25 && o < 100) }' "$T/topq" ||
		fail "topq's rates do not add up to 200 in and 50 out per second: $(cat "$T/topq")"
	awk 'NR > 1 && ($4 != "0.0" || $5 != "0.0") { bad = 1 } END { exit bad }' "$T/topidle" ||
		fail "an idle queue shows rates: $(cat "$T/topidle")"
	assert_eq 150 "$(tail -n 1 "$T/topq" | awk '{ print $2 }')" "depth of topq in the last view"
	assert_eq amo "$(tail -n 1 "$T/topq" | awk '{ print $10 }')" "mode of topq"
	# without a terminal, top is in batch form without being asked
	"$IPCQ" top -n 1 >"$T/top1" || fail "top -n 1 to a file failed"
	assert_eq 1 "$(count_lines "$T/top1" '^QUEUE ')" "views of top -n 1 to a file"
	"$IPCQ" delete topq
	"$IPCQ" delete topidle
	pass "top -b -n 4: plain views, rates '-' at first, then the messages that moved per second"
}

# The terminal view through a pseudo-terminal: raw mode while it runs, 'q'
# quits, and the terminal is given back as it was (also on SIGTERM).
test_top_on_a_terminal_restores_it() {
	if ! command -v python3 >/dev/null 2>&1; then
		echo "skip: no python3 to drive a pseudo-terminal"
		return 0
	fi
	"$IPCQ" create ttyq
	cat >"$T/drive_top.py" <<'PY'
import os, pty, select, signal, struct, sys, termios, fcntl, time
ipcq, how = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(ipcq, [ipcq, "top", "-d", "0.2"])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 20, 100, 0, 0))
before = termios.tcgetattr(fd)
out = b""
def drain(secs):
    global out
    end = time.time() + secs
    while time.time() < end:
        if select.select([fd], [], [], 0.05)[0]:
            try:
                out += os.read(fd, 65536)
            except OSError:
                return
drain(1.0)
during = termios.tcgetattr(fd)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 10, 50, 0, 0))
os.kill(pid, signal.SIGWINCH)
drain(0.4)
if how == "q":
    os.write(fd, b"q")
else:
    os.kill(pid, signal.SIGTERM)
drain(0.4)
after = termios.tcgetattr(fd)
_, st = os.waitpid(pid, 0)
last = out.split(b"\x1b[H")[-1].split(b"\x1b[J")[0]
import re
width = max(len(re.sub(rb"\x1b\[[0-9;?]*[a-zA-Z]", b"", l).rstrip(b"\r")) for l in last.split(b"\n"))
print("raw" if not during[3] & termios.ICANON and not during[3] & termios.ECHO else "cooked",
      "restored" if after == before else "changed",
      os.WEXITSTATUS(st) if os.WIFEXITED(st) else "sig%d" % os.WTERMSIG(st),
      "ttyq" if b"ttyq" in out else "no-queue",
      "screen-back" if out.rstrip().endswith(b"\x1b[?1049l") else "screen-left",
      width)
PY
	got=$(python3 "$T/drive_top.py" "$IPCQ" q) || fail "driving top on a pseudo-terminal failed"
	assert_eq "raw restored 0 ttyq screen-back 50" "$got" \
		"top on a terminal (mode while running, after 'q', status, queue shown, screen, width after a resize)"
	got=$(python3 "$T/drive_top.py" "$IPCQ" term) || fail "driving top on a pseudo-terminal failed"
	assert_eq "raw restored sig15 ttyq screen-back 50" "$got" "top on a terminal ended by SIGTERM"
	"$IPCQ" delete ttyq
	pass "top on a terminal: raw mode, redrawn at the new size, terminal given back after q and SIGTERM"
}

# Every sample line of a Prometheus text exposition belongs to a family
# announced by # HELP and # TYPE before it, its samples together.
check_prometheus() { # FILE QUEUES...
	file=$1
	shift
	awk -v want="$*" '
		function bad(msg) { print "line " NR ": " msg ": " $0; err = 1; exit 1 }
		/^# HELP / { help[$3] = 1; next }
		/^# TYPE / {
			if (!($3 in help)) bad("TYPE before HELP")
			if ($4 != "counter" && $4 != "gauge") bad("unknown type")
			type[$3] = $4; fam = $3; families++; next
		}
		/^#/ || /^$/ { bad("stray line") }
		{
			name = $1; sub(/\{.*/, "", name)
			if (!(name in type)) bad("sample without # HELP and # TYPE")
			if (name != fam) bad("sample outside its family")
			if (type[name] == "counter" && name !~ /_total$/) bad("counter not named _total")
			if ($1 !~ /\{queue="[^"]*"(,[a-z_]+="[^"]*")*\}$/) bad("labels")
			if ($2 !~ /^[0-9]+(\.[0-9]+)?$/) bad("value")
			q = $1; sub(/^[^"]*"/, "", q); sub(/".*/, "", q)
			seen[name, q] = 1; samples++
		}
		END {
			if (err) exit 1
			n = split(want, qs, " ")
			for (f in type) for (i = 1; i <= n; i++)
				if (!((f, qs[i]) in seen)) { print "family " f " has no sample of " qs[i]; exit 1 }
			print families
		}' "$file"
}

test_stat_prometheus_is_valid_exposition() {
	"$IPCQ" send prom1 a b c
	"$IPCQ" recv prom1 >/dev/null
	"$IPCQ" create prom2
	"$IPCQ" stat --prometheus >"$T/prom" || fail "stat --prometheus failed"
	families=$(check_prometheus "$T/prom" prom1 prom2) || fail "stat --prometheus: $families"
	"$IPCQ" stat --prometheus prom1 >"$T/prom1" || fail "stat --prometheus prom1 failed"
	check_prometheus "$T/prom1" prom1 >/dev/null || fail "stat --prometheus prom1: $(check_prometheus "$T/prom1" prom1)"
	grep -q 'queue="prom2"' "$T/prom1" && fail "stat --prometheus prom1 shows prom2"
	assert_eq "ipcq_queue_sent_total{queue=\"prom1\"} $(qstat prom1 sent)" \
		"$(grep '^ipcq_queue_sent_total{queue="prom1"}' "$T/prom1")" "sent of prom1 as a Prometheus counter"
	assert_eq "ipcq_queue_depth{queue=\"prom1\"} 2" "$(grep '^ipcq_queue_depth{' "$T/prom1")" "depth as a gauge"
	grep -q '^ipcq_queue_info{queue="prom1",id="[0-9]*",delivery="at-most-once",senders="isolated",dead_letter=""} 1$' "$T/prom1" ||
		fail "no ipcq_queue_info sample with the delivery mode: $(grep info "$T/prom1")"
	# one table: a family per numeric key of the text form (id is a label)
	numeric=$("$IPCQ" stat prom1 | grep -c '^[a-z_]*: [0-9][0-9]*$')
	assert_eq "$numeric" "$families" "Prometheus families (info + numeric keys but id) vs numeric stat keys"
	expect_status 2 "stat --json --prometheus" "$IPCQ" stat --json --prometheus prom1
	pass "stat --prometheus: every sample in a family with # HELP and # TYPE, a family per stat key, all queues without QUEUE"
}

test_list_json_and_stat_json_share_keys() {
	"$IPCQ" send lj1 x
	"$IPCQ" create lj2
	"$IPCQ" list --json >"$T/list.json" || fail "list --json failed"
	"$IPCQ" stat lj1 | sed 's/:.*//' | sort >"$T/text.keys"
	"$IPCQ" stat --json lj1 | grep -o '"[a-z_]*": ' | tr -d '": ' | sort >"$T/json.keys"
	cmp -s "$T/text.keys" "$T/json.keys" ||
		fail "stat and stat --json differ in keys: $(diff "$T/text.keys" "$T/json.keys" | tr '\n' ' ')"
	if command -v python3 >/dev/null 2>&1; then
		got=$(python3 -c 'import json, sys
qs = {q["name"]: q for q in json.load(open(sys.argv[1]))}
print(sorted(k for k in qs if k.startswith("lj")), qs["lj1"]["depth"], qs["lj2"]["depth"])' "$T/list.json") ||
			fail "list --json is not a JSON array of queues: $(cat "$T/list.json")"
		assert_eq "['lj1', 'lj2'] 1 0" "$got" "queues and depths in list --json"
	else
		grep -q '"name": "lj1",' "$T/list.json" || fail "list --json lacks lj1: $(cat "$T/list.json")"
	fi
	head -c 1 "$T/list.json" | grep -q '\[' || fail "list --json is not an array"
	pass "list --json: an array of the objects stat --json prints, with the keys of stat"
}

test_recv_json_lines_escape_and_encode() {
	"$IPCQ" send -p 7 jl high
	printf 'say "hi"\tback\\slash\nline2' | "$IPCQ" send -s jl
	printf '\377\000\001' | "$IPCQ" send -s jl
	"$IPCQ" recv --json -c 3 jl >"$T/jl" || fail "recv --json failed"
	cat >"$T/jl.exp" <<'EOF'
{"priority":7,"redelivered":false,"deliveries":1,"length":4,"encoding":"utf-8","data":"high"}
{"priority":0,"redelivered":false,"deliveries":1,"length":25,"encoding":"utf-8","data":"say \"hi\"\tback\\slash\nline2"}
{"priority":0,"redelivered":false,"deliveries":1,"length":3,"encoding":"base64","data":"/wAB"}
EOF
	cmp -s "$T/jl.exp" "$T/jl" || fail "recv --json wrote: $(cat "$T/jl")"
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import base64, json, sys
m = [json.loads(l) for l in open(sys.argv[1])]
assert m[1]["data"].encode() == b"say \"hi\"\tback\\slash\nline2"
assert base64.b64decode(m[2]["data"]) == b"\xff\x00\x01"' "$T/jl" || fail "recv --json lines do not decode to the payloads"
	fi
	pass "recv --json: a JSON line per message, text escaped, binary in base64"
}

# give_back QUEUE: a receiver of the at-least-once QUEUE takes its next
# message, writes it into a FIFO nobody reads, and is stopped by SIGTERM
# before the message is read: the message goes back, to be delivered
# again, flagged (ipcq(1), recv).
give_back() {
	rm -f "$T/hold"
	mkfifo "$T/hold"
	sleep 30 <"$T/hold" & # the FIFO's reader, which never reads
	hpid=$!
	"$IPCQ" recv "$1" >"$T/hold" 2>/dev/null &
	rpid=$!
	i=0
	until [ "$(qstat "$1" depth)" = 0 ]; do
		[ $i -lt 100 ] || fail "the receiver of $1 took nothing in 5 s"
		sleep 0.05
		i=$((i + 1))
	done
	kill -TERM "$rpid"
	wait "$rpid" 2>/dev/null || true
	kill "$hpid"
	wait "$hpid" 2>/dev/null || true
	assert_eq 1 "$(qstat "$1" depth)" "depth of $1 once its receiver stopped without acknowledging"
}

test_recv_format_and_json_show_redelivery() {
	"$IPCQ" send alo again
	give_back alo
	"$IPCQ" send -p 3 alo fresh
	# (the order of the two is the queue's business: compared sorted)
	"$IPCQ" recv -c 2 -F '%p %r %d %l %q [%m] %x%% %t|%n' alo | sort >"$T/fmt" || fail "recv -F failed"
	printf '0 1 2 5 alo [again] 616761696e%% \t|\n3 0 1 5 alo [fresh] 6672657368%% \t|\n' >"$T/fmt.exp"
	cmp -s "$T/fmt.exp" "$T/fmt" || fail "recv -F wrote: $(cat "$T/fmt")"
	"$IPCQ" send alo once
	give_back alo
	"$IPCQ" recv --json alo >"$T/alo.json"
	assert_eq '{"priority":0,"redelivered":true,"deliveries":2,"length":4,"encoding":"utf-8","data":"once"}' \
		"$(cat "$T/alo.json")" "recv --json of a message delivered again"
	"$IPCQ" send fmt0 a b
	"$IPCQ" recv -c 2 -F '%m%0' fmt0 >"$T/fmt0"
	printf 'a\000b\000' | cmp -s - "$T/fmt0" || fail "recv -F '%m%0' wrote $(od -An -c "$T/fmt0")"
	expect_status 2 "recv -F with an unknown conversion" "$IPCQ" recv -F '%m %z' fmt0
	grep -q "%z" "$T/err" || fail "the bad conversion is not named: $(cat "$T/err")"
	expect_status 2 "recv -F with --json" "$IPCQ" recv -F '%m' --json fmt0
	pass "recv -F and --json: priority, redelivered flag, deliveries, length, hex; bad conversions refused"
}

test_recv_drain_exits_0() {
	seq 300 | "$IPCQ" send drained
	st=0
	"$IPCQ" recv --drain drained >"$T/drain" 2>"$T/err" || st=$?
	assert_eq 0 "$st" "exit status of recv --drain ($(cat "$T/err"))"
	seq 300 | cmp -s - "$T/drain" || fail "recv --drain did not write 1..300 in order"
	assert_eq 0 "$(qstat drained depth)" "depth after recv --drain"
	start=$(now_ms)
	st=0
	"$IPCQ" recv -e drained >"$T/drain" 2>"$T/err" || st=$?
	assert_eq 0 "$st" "exit status of recv -e on an empty queue ($(cat "$T/err"))"
	[ -s "$T/drain" ] && fail "recv -e on an empty queue wrote '$(cat "$T/drain")'"
	[ $(($(now_ms) - start)) -lt 2000 ] || fail "recv -e on an empty queue took $(($(now_ms) - start)) ms"
	"$IPCQ" send drained a b c d e
	"$IPCQ" recv --drain -c 2 drained >"$T/drain"
	assert_eq "a b" "$(tr '\n' ' ' <"$T/drain" | sed 's/ $//')" "recv --drain -c 2"
	assert_eq 3 "$(qstat drained depth)" "depth after recv --drain -c 2 of 5"
	# a message that comes within -t is waited for
	( sleep 0.3; "$IPCQ" send drained late ) &
	spid=$!
	"$IPCQ" recv --drain -t 1 drained >"$T/drain"
	wait "$spid"
	assert_eq "c d e late" "$(tr '\n' ' ' <"$T/drain" | sed 's/ $//')" "recv --drain -t 1 with a late message"
	# without --drain an empty queue still times out with 3
	expect_status 3 "recv -c 0 -t 0.2 of an empty queue" "$IPCQ" recv -c 0 -t 0.2 drained
	pass "recv --drain: all 300 (backlog too), then exit 0; on an empty queue exit 0 at once; -c and -t apply"
}

test_deadline_bounds_recv_and_send() {
	"$IPCQ" create dl
	start=$(now_ms)
	expect_status 3 "recv -c 0 -W 0.5 of an empty queue" timeout 10 "$IPCQ" recv -c 0 -W 0.5 dl
	took=$(($(now_ms) - start))
	[ "$took" -ge 450 ] && [ "$took" -lt 3000 ] || fail "recv -W 0.5 ended after $took ms"
	grep -q deadline "$T/err" || fail "recv -W does not say the deadline passed: $(cat "$T/err")"
	# the deadline ends a longer per-message timeout
	start=$(now_ms)
	expect_status 3 "recv -t 20 -W 0.5" timeout 10 "$IPCQ" recv -t 20 -W 0.5 dl
	[ $(($(now_ms) - start)) -lt 3000 ] || fail "recv -t 20 -W 0.5 waited $(($(now_ms) - start)) ms"
	# what arrived before the deadline is written
	"$IPCQ" send dl one two
	expect_status 3 "recv -c 5 -W 0.5 with 2 messages" timeout 10 "$IPCQ" recv -c 5 -W 0.5 dl
	assert_eq "one two" "$(tr '\n' ' ' <"$T/out" | sed 's/ $//')" "messages written before the deadline"
	# nor does waiting for the reader of a pipe (at-least-once): the
	# message it has not read goes back
	"$IPCQ" send alo held
	rm -f "$T/hold"
	mkfifo "$T/hold"
	sleep 30 <"$T/hold" & # the FIFO's reader, which never reads
	hpid=$!
	st=0
	timeout 10 "$IPCQ" recv -W 0.5 alo >"$T/hold" 2>"$T/err" || st=$?
	assert_eq 3 "$st" "exit status of recv -W 0.5 into a pipe nobody reads ($(cat "$T/err"))"
	kill "$hpid"
	wait "$hpid" 2>/dev/null || true
	grep -q 'deadline' "$T/err" || fail "recv -W into a pipe does not say the deadline passed: $(cat "$T/err")"
	assert_eq "held 1" "$("$IPCQ" recv -F '%m %r' alo)" "the message the pipe's reader did not read, back and flagged"
	# send: a full queue (max_depth 2)
	"$IPCQ" create dlfull --max-depth 2
	expect_status 3 "send -W 0.5 of 4 to a queue of depth 2" timeout 10 "$IPCQ" send -W 0.5 dlfull a b c d
	grep -q 'deadline' "$T/err" && grep -q 'sent 2 ' "$T/err" ||
		fail "send -W does not say the deadline passed after 2: $(cat "$T/err")"
	assert_eq 2 "$(qstat dlfull depth)" "depth after send -W to a full queue"
	# send: standard input that goes silent
	rm -f "$T/pipe.end"
	( printf 'first\n'; sleep 2.5; : >"$T/pipe.end" ) | {
		st=0
		timeout 10 "$IPCQ" send -W 0.5 dlin 2>"$T/err" || st=$?
		[ -e "$T/pipe.end" ] && st="$st, after the end of its input"
		echo "$st" >"$T/st"
	}
	assert_eq 3 "$(cat "$T/st")" "send -W 0.5 from a pipe silent for 2.5 s ($(cat "$T/err"))"
	assert_eq first "$("$IPCQ" recv -t 1 dlin)" "the line sent before the deadline"
	pass "--deadline: recv and send stop with 3 when it passes, waiting for messages, room or input"
}

test_repeated_options_are_refused() {
	printf 'a' >"$T/fa"
	printf 'b' >"$T/fb"
	expect_status 2 "send -f a -f b" "$IPCQ" send -f "$T/fa" -f "$T/fb" rep
	grep -q -- '-f/--file' "$T/err" && grep -q 'more than once' "$T/err" ||
		fail "the repeated option is not named: $(cat "$T/err")"
	"$IPCQ" list | grep -q '^rep	' && fail "send -f a -f b sent something"
	expect_status 2 "recv -c 1 --count 2" "$IPCQ" recv -c 1 --count 2 rep
	expect_status 2 "stat --json --json" "$IPCQ" stat --json --json rep
	expect_status 2 "--socket twice" "$IPCQ" --socket "$SOCK" send --socket "$SOCK" rep x
	grep -q -- '--socket' "$T/err" || fail "the repeated --socket is not named: $(cat "$T/err")"
	expect_status 2 "top -d 1 -d 2" "$IPCQ" top -d 1 -d 2
	expect_status 2 "-v -v" "$IPCQ" -v list -v
	expect_status 0 "-s and -p, each once" "$IPCQ" send -s -p 1 rep </dev/null
	pass "an option given twice (short, long or mixed, global too) is a usage error"
}

test_invalid_queue_name_says_what_is_valid() {
	expect_status 2 "send to 'a/b'" "$IPCQ" send 'a/b' x
	grep -q "'/' is not allowed" "$T/err" && grep -q '1 to 64 letters, digits' "$T/err" ||
		fail "no rule in the error for 'a/b': $(cat "$T/err")"
	expect_status 2 "recv of '.hidden'" "$IPCQ" recv .hidden
	grep -q "starts with '.'" "$T/err" || fail "no reason for '.hidden': $(cat "$T/err")"
	expect_status 2 "stat of 65 characters" "$IPCQ" stat "$(printf 'n%.0s' $(seq 65))"
	grep -q '65 characters' "$T/err" || fail "no length for 65 characters: $(cat "$T/err")"
	expect_status 2 "create --dead-letter 'x y'" "$IPCQ" create --dead-letter 'x y' okname
	grep -q "' ' is not allowed" "$T/err" || fail "no reason for 'x y': $(cat "$T/err")"
	expect_status 2 "delete of ''" "$IPCQ" delete ''
	expect_status 2 "watch of 'a*'" "$IPCQ" watch 'a*'
	"$IPCQ" list | grep -q '^okname	' && fail "create with a bad dead-letter name made the queue"
	pass "an invalid queue name is a usage error saying why and what a valid name is"
}

test_help_command() {
	"$IPCQ" help send >"$T/h1" || fail "ipcq help send failed"
	"$IPCQ" send --help >"$T/h2"
	cmp -s "$T/h1" "$T/h2" || fail "ipcq help send differs from ipcq send --help"
	"$IPCQ" help >"$T/h1" || fail "ipcq help failed"
	"$IPCQ" --help >"$T/h2"
	cmp -s "$T/h1" "$T/h2" || fail "ipcq help differs from ipcq --help"
	grep -q '^  help ' "$T/h1" || fail "ipcq --help does not list help"
	"$IPCQ" help top | grep -q -- '--iterations' || fail "ipcq help top shows no --iterations"
	expect_status 2 "help of an unknown command" "$IPCQ" help frobnicate
	grep -q frobnicate "$T/err" || fail "the unknown command is not named: $(cat "$T/err")"
	pass "ipcq help CMD is ipcq CMD --help, ipcq help is ipcq --help"
}

test_quiet_and_verbose() {
	"$IPCQ" -v send verb a b 2>"$T/err" || fail "ipcq -v send failed: $(cat "$T/err")"
	grep -q "sent 2 messages" "$T/err" || fail "send -v does not say what it sent: $(cat "$T/err")"
	"$IPCQ" recv -v -c 2 verb >/dev/null 2>"$T/err"
	grep -q "received 2 messages" "$T/err" || fail "recv -v does not say what it received: $(cat "$T/err")"
	grep -q "connected to ipcbrokerd at $SOCK" "$T/err" || fail "recv -v does not name the socket: $(cat "$T/err")"
	"$IPCQ" send verb c 2>"$T/err"
	"$IPCQ" recv verb >/dev/null 2>>"$T/err"
	[ -s "$T/err" ] && fail "send and recv print diagnostics without -v: $(cat "$T/err")"
	expect_status 3 "recv -q -t 0.1 of an empty queue" "$IPCQ" recv -q -t 0.1 verb
	grep -q 'timed out' "$T/err" || fail "-q hid the error of a timeout"
	expect_status 2 "-q with -v" "$IPCQ" -q recv -v verb
	pass "-v says what was done, the default and -q say nothing but errors, -q and -v exclude each other"
}

test_bash_completion() {
	if ! command -v bash >/dev/null 2>&1; then
		echo "skip: no bash for the completion"
		return 0
	fi
	"$IPCQ" create compa
	"$IPCQ" create compb
	"$IPCQ" create other
	: >"$T/compfile"
	# completions WORDS...: COMPREPLY for the last word, sorted, on one line
	cat >"$T/complete.bash" <<'EOF'
. "$1"
shift
COMP_WORDS=("$@")
COMP_CWORD=$(($# - 1))
_ipcq
printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
EOF
	completions() {
		env -u IPCQ_SOCKET -u IPCQ_NAMESPACE bash "$T/complete.bash" "$S/etc/bash-completion/ipcq" "$IPCQ" "$@"
	}
	assert_eq send "$(completions se)" "completion of 'ipcq se'"
	assert_eq "stat" "$(completions help st)" "completion of 'ipcq help st'"
	got=$(completions '')
	for c in send recv create list stat top watch bench help; do
		case " $got " in *" $c "*) ;; *) fail "'ipcq <TAB>' lacks $c: $got" ;; esac
	done
	got=$(completions send --)
	for o in --file --priority --deadline --ttl --socket --quiet; do
		case " $got " in *" $o "*) ;; *) fail "'ipcq send --<TAB>' lacks $o: $got" ;; esac
	done
	case " $got " in *" --drain "*) fail "'ipcq send --<TAB>' offers recv's --drain" ;; esac
	got=$(completions recv -)
	for o in -e --drain --json -F --format -W; do
		case " $got " in *" $o "*) ;; *) fail "'ipcq recv -<TAB>' lacks $o: $got" ;; esac
	done
	assert_eq "compa compb" "$(completions --socket "$SOCK" recv comp)" "queues after --socket before the command"
	assert_eq "compa compb" "$(completions recv --socket "$SOCK" -c 3 comp)" "queues after --socket and -c N"
	assert_eq "compa compb" "$(completions --socket="$SOCK" stat --json comp)" "queues after --socket=PATH"
	assert_eq "compa compb" "$(completions --socket "$SOCK" create --dead-letter comp)" "queues as --dead-letter's value"
	assert_eq "" "$(completions --socket "$SOCK" send compa comp)" "a message after the queue of send"
	assert_eq "" "$(completions --socket "$T/none.sock" recv comp)" "queues of a socket where no daemon listens"
	assert_eq "$T/compfile" "$(completions send -f "$T/compf")" "a file as -f's value"
	"$IPCQ" delete compa
	"$IPCQ" delete compb
	"$IPCQ" delete other
	pass "bash completion: commands, each command's options, queue names of the daemon the line names, files"
}

test_man_page_documents_every_option() {
	man="$S/man/ipcq.1"
	for cmd in $("$IPCQ" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z]*\) .*/\1/p'); do
		grep -q "^\.SS \"$cmd" "$man" || fail "ipcq(1) has no section for $cmd"
		for opt in $("$IPCQ" "$cmd" --help | sed -n 's/^ \{1,\}\(-.*\)/\1/p' | grep -o -- '--[a-z][a-z-]*'); do
			grep -q -- "$(printf '%s' "$opt" | sed 's/-/\\\\-/g')" "$man" ||
				fail "ipcq(1) does not document $cmd's $opt"
		done
	done
	if command -v groff >/dev/null 2>&1; then
		warnings=$(groff -man -ww -z "$man" 2>&1)
		[ -z "$warnings" ] || fail "groff warns about ipcq(1): $warnings"
	fi
	pass "ipcq(1) has a section for every command and documents every option of each; groff has no warning"
}

# peek: what waits, in the order receivers get it, and still there after;
# a batch a receiver gave back shows first, without what it received.
test_peek_shows_without_receiving() {
	"$IPCQ" create pk
	"$IPCQ" send pk one two three
	"$IPCQ" send -p 5 pk urgent
	head -c 3000 /dev/zero | tr '\0' x >"$T/big"
	"$IPCQ" send -f "$T/big" pk
	"$IPCQ" peek -F '%p %l %r %d%n' pk >"$T/peek" || fail "peek failed"
	assert_eq "5 6 0 0|0 3 0 0|0 3 0 0|0 5 0 0|0 3000 0 0" "$(tr '\n' '|' <"$T/peek" | sed 's/|$//')" \
		"what peek shows (priority, length, redelivered, deliveries)"
	assert_eq 5 "$(qstat pk depth)" "depth after peek"
	assert_eq 0 "$(qstat pk received)" "received after peek"
	assert_eq "urgent one" "$("$IPCQ" peek -c 2 pk | tr '\n' ' ' | sed 's/ $//')" "peek -c 2"
	assert_eq '{"priority":5,"redelivered":false,"deliveries":0,"length":6,"encoding":"utf-8","data":"urgent"}' \
		"$("$IPCQ" peek -c 1 --json pk)" "peek --json"
	"$IPCQ" recv -c 5 pk >"$T/got"
	printf 'urgent\none\ntwo\nthree\n%s\n' "$(cat "$T/big")" >"$T/want"
	cmp -s "$T/want" "$T/got" || fail "recv after peek did not get the five messages in order"
	assert_eq "" "$("$IPCQ" peek pk)" "peek of an empty queue"
	# three lines sent with no receiver travel as one batch; a receiver
	# takes it, receives one and closes: the rest goes back, first in line
	printf 'a\nb\nc\n' | "$IPCQ" send pk
	assert_eq a "$("$IPCQ" recv pk)" "the first of the batch"
	assert_eq "b c" "$("$IPCQ" peek pk | tr '\n' ' ' | sed 's/ $//')" "peek after a batch was given back"
	assert_eq "b c" "$("$IPCQ" recv -c 2 pk | tr '\n' ' ' | sed 's/ $//')" "recv after that peek"
	# at-least-once: every message in the ring
	"$IPCQ" send alo x1 x2
	assert_eq "x1 x2" "$("$IPCQ" peek alo | tr '\n' ' ' | sed 's/ $//')" "peek of an at-least-once queue"
	assert_eq "x1 x2" "$("$IPCQ" recv -c 2 alo | tr '\n' ' ' | sed 's/ $//')" "recv after peeking at-least-once"
	expect_status 2 "a bad count" "$IPCQ" peek -c x pk
	expect_status 4 "a queue that does not exist" "$IPCQ" peek nosuchqueue
	"$IPCQ" delete pk
	pass "peek: what waits, by priority then order, left in place (depth and received unchanged); a batch given back first; at-least-once; empty: nothing"
}

cat >"$T/ipcbrokerd.conf" <<CONF
queue "alo" {
	delivery = "at-least-once"
}
CONF
start_daemon -c "$T/ipcbrokerd.conf"
test_top_batch_shows_rates_when_messages_flow
test_top_on_a_terminal_restores_it
test_stat_prometheus_is_valid_exposition
test_list_json_and_stat_json_share_keys
test_recv_json_lines_escape_and_encode
test_recv_format_and_json_show_redelivery
test_recv_drain_exits_0
test_deadline_bounds_recv_and_send
test_repeated_options_are_refused
test_invalid_queue_name_says_what_is_valid
test_help_command
test_peek_shows_without_receiving
test_quiet_and_verbose
test_bash_completion
test_man_page_documents_every_option
daemon_alive || fail "ipcbrokerd died during the test"
stop_daemon
