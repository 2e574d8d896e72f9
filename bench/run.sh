#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# run.sh - ipcbroker's speed table: every workload of BENCHMARKS.md beside
# its baseline (the kernel's own mechanisms, memcpy) or peer (ZeroMQ,
# Redis), measured in one run on this machine, with the ratios and the
# targets they are judged by.
#
#   bench/run.sh [--quick] [--rounds R] [BUILDDIR]
#
# Each round runs every job once, in a fixed order that puts each
# ipcbroker job next to what it is compared with (A B A B ...), reversed
# every other round so that neither side always goes first; the table
# gives the median of the rounds (default 7; --quick: 1 round of small
# counts, a smoke test of every benchmark, as CI runs it).  The table goes
# to standard output as markdown, each measurement to standard error.
#
# What it runs (bench/*.c say how each measures):
#   ipcbroker    ipcq bench (one per call, batches, round trips, 64 KiB,
#                1 MiB copy and zero-copy, 4 x 4), and the CLI in a
#                pipeline (seq | ipcq send, ipcq recv -c)
#   baselines    mq_pair, mq_pingpong, pipe_pair, memcpy_bw, shm_ring
#   peers        zmq_pushpull (when built with libzmq), redis_list (when
#                built with hiredis and redis-server is installed)
#   the daemon   its CPU time (/proc/PID/stat and schedstat) while the
#                one-per-call job's messages flow; its RSS (VmRSS) with
#                100 queues
# A peer that is missing is a "not built" or "not run" row, never a
# failure; a benchmark that fails (lost or corrupted messages, a crash)
# fails the run.
#
# Everything runs against a private ipcbrokerd (a namespace and socket of
# its own) and, for Redis, a private redis-server on a Unix socket in a
# temporary directory (no TCP port, no persistence).  Both are stopped by
# their pids at the end, and every queue and kernel object made is
# deleted, whatever ends the run.
#
# The build: BUILDDIR, else $IPCQ_BUILDDIR, else build/demo (what
# scripts/demo.sh makes), else the source tree configured in place.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)

usage() {
	echo "usage: bench/run.sh [--quick] [--rounds R] [BUILDDIR]" >&2
	exit 2
}

is_count() {
	case $1 in '' | *[!0-9]*) return 1 ;; esac
	[ "$1" -gt 0 ]
}

quick=no rounds= B=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=yes; shift ;;
	--rounds) [ $# -ge 2 ] && is_count "$2" || usage; rounds=$2; shift 2 ;;
	-h | --help) usage ;;
	-*) usage ;;
	*) [ -z "$B" ] || usage; B=$1; shift ;;
	esac
done
if [ -z "$B" ]; then
	if [ -n "${IPCQ_BUILDDIR:-}" ]; then
		B=$IPCQ_BUILDDIR
	elif [ -x "$top/build/demo/tools/ipcq" ]; then
		B=$top/build/demo
	else
		B=$top
	fi
fi
B=$(cd "$B" && pwd)
IPCQ=$B/tools/ipcq
for prog in daemon/ipcbrokerd tools/ipcq bench/mq_pair bench/mq_pingpong bench/pipe_pair bench/memcpy_bw bench/shm_ring; do
	[ -x "$B/$prog" ] || { make -C "$B" >/dev/null && break; }
done

# Messages a run of each job.  The full sizes make each run last about a
# second on a 2-core machine; the quick ones only prove each works.
if [ $quick = yes ]; then
	: "${rounds:=1}"
	N1=20000 NB=100000 NRTT=2000 NCLI=20000
	N64K=2000 NZ64K=1000 NR64K=200 NR1=2000 NRP=20000
	N1M=200 NMEMCPY=1000 NRING=1000
	RSS_QUEUES=10 # each default queue takes 80 MiB of /dev/shm
else
	: "${rounds:=7}"
	N1=1000000 NB=5000000 NRTT=100000 NCLI=1000000
	N64K=50000 NZ64K=20000 NR64K=5000 NR1=30000 NRP=300000
	N1M=5000 NMEMCPY=20000 NRING=20000
	RSS_QUEUES=100
fi
RING_SLOTS=4      # the raw ring judged against: small enough to stay cache-hot
RING_SLOTS_BIG=64 # for reference: a ring of 64 MiB, like a default ipcq queue's

# ---- a private daemon, a private redis-server, all removed on exit ----
T=$(mktemp -d "${TMPDIR:-/tmp}/ipcq-bench.XXXXXX")
mkdir "$T/m"
NS=bench$$
# The daemon's socket and state files where a service has them: on a
# tmpfs (/run under systemd; /dev/shm is one on any Linux).  On a disk
# file system every connection's update of the daemon's holders file
# would cost it a rename, an inode freed and a discard, work it does not
# do in service, and count in its CPU figure.
R=$(mktemp -d "/dev/shm/ipcq-bench-run.$NS.XXXXXX" 2>/dev/null) || R=$T
export IPCQ_SOCKET="$R/ctl.sock"
unset IPCQ_NAMESPACE IPCQ_USER NOTIFY_SOCKET WATCHDOG_USEC LISTEN_FDS LISTEN_PID || true
dpid= rpid= cli_pid=
# The daemon runs in a session of its own, so that a ^C reaches the
# benchmark (which deletes its queue) and not the daemon under it.
start_daemon() {
	setsid "$B/daemon/ipcbrokerd" --namespace "$NS" --socket "$IPCQ_SOCKET" 2>>"$T/daemon.log" &
	dpid=$!
	i=0
	until "$IPCQ" list >/dev/null 2>&1; do
		kill -0 "$dpid" 2>/dev/null || { echo "run.sh: ipcbrokerd exited during start-up" >&2; return 1; }
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "run.sh: ipcbrokerd did not become ready in 5 s" >&2; return 1; }
		sleep 0.05
	done
}
daemon_alive() {
	[ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null
}
cleanup() {
	st=$?
	trap - EXIT INT TERM HUP
	set +e # all of it, whatever fails (a write to a reader gone)
	[ -z "$cli_pid" ] || { kill "$cli_pid" 2>/dev/null; wait "$cli_pid" 2>/dev/null; }
	if [ -n "$rpid" ]; then
		kill -TERM "$rpid" 2>/dev/null
		wait "$rpid" 2>/dev/null
	fi
	# queues left behind a daemon that died: a new one adopts them to delete
	if ! daemon_alive && grep -qv '^#' "$R/$NS.queues" 2>/dev/null; then
		start_daemon || true
	fi
	if daemon_alive; then
		for q in $("$IPCQ" list 2>/dev/null | cut -f1); do
			"$IPCQ" delete "$q" >/dev/null 2>&1 || true
		done
		kill -TERM "$dpid" 2>/dev/null || true
		wait "$dpid" 2>/dev/null || true
	fi
	rm -f /dev/shm/ipcq."$NS".* 2>/dev/null || true
	[ -d /dev/mqueue ] && rm -f /dev/mqueue/ipcq."$NS".* 2>/dev/null || true
	if [ "$st" -ne 0 ] && [ -s "$T/daemon.log" ]; then
		echo "--- daemon log (last 20 lines) ---" >&2
		tail -n 20 "$T/daemon.log" >&2
	fi
	[ "$R" = "$T" ] || rm -rf "$R"
	rm -rf "$T"
	exit "$st"
}
trap cleanup EXIT
# A reader gone (| head, a ^C that took the pager) must not kill the shell
# before its clean-up: a write fails instead, and set -e ends the run.
trap '' PIPE
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start_daemon
# setsid runs the daemon in place (a background job leads no process
# group), so $dpid is the daemon itself; its /proc entry says so.
daemon_proc=no
[ "$(cat "/proc/$dpid/comm" 2>/dev/null)" = ipcbrokerd ] && daemon_proc=yes

# Peers: built, and their server at hand?
zmq_state="not built (libzmq3-dev was missing at configure time)"
[ -x "$B/bench/zmq_pushpull" ] && zmq_state=yes
redis_state="not built (libhiredis-dev was missing at configure time)"
RSOCK=$T/redis.sock
if [ -x "$B/bench/redis_list" ]; then
	if ! command -v redis-server >/dev/null 2>&1; then
		redis_state="not run (redis-server is not installed)"
	else
		redis-server --port 0 --unixsocket "$RSOCK" --unixsocketperm 700 --save '' --appendonly no \
			--dir "$T" --logfile "$T/redis.log" --daemonize no >/dev/null 2>&1 &
		rpid=$!
		i=0
		while [ ! -S "$RSOCK" ] && [ $i -lt 100 ] && kill -0 "$rpid" 2>/dev/null; do
			sleep 0.05
			i=$((i + 1))
		done
		if [ -S "$RSOCK" ]; then
			redis_state=yes
		else
			redis_state="not run (redis-server did not start: $(tail -n 1 "$T/redis.log" 2>/dev/null))"
			kill "$rpid" 2>/dev/null || true
			wait "$rpid" 2>/dev/null || true
			rpid=
		fi
	fi
fi

# ---- measuring ----

# field KEY TEXT: the number after "KEY=" or "\"KEY\": " in a result line
field() {
	printf '%s\n' "$2" | sed 's/"\([a-z0-9_]*\)": */\1=/g' | tr ' ,{}' '\n\n\n\n' |
		sed -n "s/^$1=\([0-9.][0-9.]*\)\$/\1/p" | head -n 1
}

# budgeted COMMAND...: run COMMAND (its standard error to $T/err) again,
# up to BUDGET_TRIES times a second apart, while it fails for want of the
# per-user POSIX mq budget (RLIMIT_MSGQUEUE): other processes of the user
# (tests, another daemon) share it, and what they hold comes back.
BUDGET_TRIES=30
budgeted() {
	n=1
	until "$@" 2>"$T/err"; do
		grep -q -e RLIMIT_MSGQUEUE -e 'mq_open.*Too many open files' "$T/err" && [ $n -lt $BUDGET_TRIES ] || return 1
		[ $n -gt 1 ] || echo "run.sh: the per-user mq budget is used up; waiting for it: $*" >&2
		n=$((n + 1))
		sleep 1
	done
}

# measure JOB KEYS COMMAND...: run COMMAND once and keep the numbers KEYS
# of its result line, one file a key ($T/m/JOB.KEY, a line a round)
measure() {
	job=$1 keys=$2
	shift 2
	if ! budgeted "$@" >"$T/out"; then
		echo "run.sh: $job failed: $*" >&2
		cat "$T/err" >&2
		exit 1
	fi
	out=$(cat "$T/out")
	line=
	for k in $keys; do
		v=$(field "$k" "$out")
		[ -n "$v" ] || { echo "run.sh: $job printed no $k: $out" >&2; exit 1; }
		echo "$v" >>"$T/m/$job.$k"
		line="$line $k=$v"
	done
	printf '  %-16s%s\n' "$job" "$line" >&2
}

keep() { # JOB KEY VALUE
	echo "$3" >>"$T/m/$1.$2"
	printf '  %-16s %s=%s\n' "$1" "$2" "$3" >&2
}

# The daemon's CPU time so far: ns on the CPU (schedstat, all threads),
# and clock ticks of user and system time (/proc/PID/stat).
daemon_cpu_ns() {
	cat /proc/"$dpid"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}
daemon_ticks() {
	sed 's/.*) //' /proc/"$dpid"/stat | awk '{ print $12 + $13 }'
}
daemon_rss_kib() { # [FIELD]: VmRSS, or RssAnon, RssFile, RssShmem
	sed -n "s/^${1:-VmRSS}:[[:space:]]*\\([0-9]*\\) kB\$/\\1/p" /proc/"$dpid"/status
}
clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)

# The jobs, each once a round.
job_mq_pair() { measure mq_pair msgs_per_s "$B/bench/mq_pair" 64 "$N1"; }
job_pipe_pair() { measure pipe_pair msgs_per_s "$B/bench/pipe_pair" 64 "$N1"; }
# one per call, on a queue made beforehand, and the daemon's CPU meanwhile
job_ipcq_one() {
	c0=$(daemon_cpu_ns) k0=$(daemon_ticks) t0=$(date +%s%N)
	measure ipcq_one msgs_per_s "$IPCQ" bench --json --size 64 --count "$N1" flow
	t1=$(date +%s%N) c1=$(daemon_cpu_ns) k1=$(daemon_ticks)
	keep daemon cpu_pct "$(awk -v c="$((c1 - c0))" -v t="$((t1 - t0))" 'BEGIN { printf "%.3f\n", 100 * c / t }')"
	keep daemon tick_pct "$(awk -v k="$((k1 - k0))" -v hz="$clk_tck" -v t="$((t1 - t0))" \
		'BEGIN { printf "%.3f\n", 100 * k / hz * 1e9 / t }')"
}
job_ipcq_batch() { measure ipcq_batch msgs_per_s "$IPCQ" bench --json --size 64 --count "$NB" --batch 64; }
job_ipcq_batch_p64() {
	measure ipcq_batch_p64 msgs_per_s "$IPCQ" bench --json --size 64 --count "$NB" --batch 64 --prefetch 64
}
job_zmq_64() { measure zmq_64 msgs_per_s "$B/bench/zmq_pushpull" 64 "$NB"; }
job_redis_64() { measure redis_64 msgs_per_s "$B/bench/redis_list" "$RSOCK" 64 "$NR1" 1; }
job_redis_64_p100() { measure redis_64_p100 msgs_per_s "$B/bench/redis_list" "$RSOCK" 64 "$NRP" 100; }
# the CLI in a pipeline: lines/s from starting both to the last received
job_cli() {
	t0=$(date +%s%N)
	"$IPCQ" recv -c "$NCLI" cli >/dev/null 2>"$T/cli.err" &
	cli_pid=$!
	if ! seq "$NCLI" | "$IPCQ" send cli 2>>"$T/cli.err"; then
		echo "run.sh: seq $NCLI | ipcq send cli failed" >&2
		cat "$T/cli.err" >&2
		exit 1
	fi
	if ! wait "$cli_pid"; then
		cli_pid=
		echo "run.sh: ipcq recv -c $NCLI cli failed" >&2
		cat "$T/cli.err" >&2
		exit 1
	fi
	cli_pid=
	t1=$(date +%s%N)
	keep cli lines_per_s "$(awk -v n="$NCLI" -v t="$((t1 - t0))" 'BEGIN { printf "%.0f\n", n / t * 1e9 }')"
}
job_mq_pingpong() { measure mq_pingpong "p50_us p99_us" "$B/bench/mq_pingpong" 64 "$NRTT"; }
job_ipcq_rtt() { measure ipcq_rtt "p50 p99" "$IPCQ" bench --json --round-trip --size 64 --count "$NRTT"; }
job_ipcq_64k() { measure ipcq_64k msgs_per_s "$IPCQ" bench --json --size 64K --count "$N64K"; }
job_ipcq_64k_zc() { measure ipcq_64k_zc msgs_per_s "$IPCQ" bench --json --size 64K --count "$N64K" --zero-copy; }
job_zmq_64k() { measure zmq_64k msgs_per_s "$B/bench/zmq_pushpull" 65536 "$NZ64K"; }
job_redis_64k() { measure redis_64k msgs_per_s "$B/bench/redis_list" "$RSOCK" 65536 "$NR64K" 1; }
job_memcpy_1m() { measure memcpy_1m mb_per_s "$B/bench/memcpy_bw" 1048576 "$NMEMCPY"; }
job_ipcq_1m_copy() { measure ipcq_1m_copy mb_per_s "$IPCQ" bench --json --size 1M --count "$N1M"; }
job_shm_ring_1m() { measure shm_ring_1m mb_per_s "$B/bench/shm_ring" 1048576 "$NRING" "$RING_SLOTS"; }
job_ipcq_1m_zc() { measure ipcq_1m_zc mb_per_s "$IPCQ" bench --json --size 1M --count "$N1M" --zero-copy; }
job_shm_ring_1m_64() { measure shm_ring_1m_64 mb_per_s "$B/bench/shm_ring" 1048576 "$N1M" "$RING_SLOTS_BIG"; }
job_ipcq_4x4() {
	measure ipcq_4x4 msgs_per_s "$IPCQ" bench --json --size 64 --count "$N1" --producers 4 --consumers 4
}
job_ipcq_4x4_batch() {
	measure ipcq_4x4_batch msgs_per_s "$IPCQ" bench --json --size 64 --count "$NB" --producers 4 --consumers 4 \
		--batch 64
}

jobs="mq_pair ipcq_one pipe_pair ipcq_batch"
[ "$zmq_state" != yes ] || jobs="$jobs zmq_64"
jobs="$jobs ipcq_batch_p64"
[ "$redis_state" != yes ] || jobs="$jobs redis_64 redis_64_p100"
jobs="$jobs cli mq_pingpong ipcq_rtt ipcq_64k"
[ "$zmq_state" != yes ] || jobs="$jobs zmq_64k"
jobs="$jobs ipcq_64k_zc"
[ "$redis_state" != yes ] || jobs="$jobs redis_64k"
jobs="$jobs memcpy_1m ipcq_1m_copy shm_ring_1m ipcq_1m_zc shm_ring_1m_64 ipcq_4x4 ipcq_4x4_batch"
reversed=$(for j in $jobs; do echo "$j"; done | awk '{ l[NR] = $0 } END { for (i = NR; i; i--) printf "%s ", l[i] }')

# The daemon's memory with 100 queues of its default geometry, before
# anything else is made.
rss_state=yes
rss0=$(daemon_rss_kib)
made=0
while [ $made -lt $RSS_QUEUES ]; do
	if ! budgeted "$IPCQ" create "rss.$made"; then
		rss_state="not run (queue $((made + 1)) of $RSS_QUEUES refused: $(head -n 1 "$T/err"))"
		break
	fi
	made=$((made + 1))
done
if [ "$rss_state" = yes ]; then
	rss1=$(daemon_rss_kib) rss1_anon=$(daemon_rss_kib RssAnon) rss1_shmem=$(daemon_rss_kib RssShmem)
fi
i=0
while [ $i -lt $made ]; do
	"$IPCQ" delete "rss.$i"
	i=$((i + 1))
done
if [ "$rss_state" = yes ]; then
	keep daemon rss_idle_kib "$rss0"
	keep daemon rss_kib "$rss1"
	keep daemon rss_anon_kib "$rss1_anon"
	keep daemon rss_shmem_kib "$rss1_shmem"
fi

budgeted "$IPCQ" create flow || { cat "$T/err" >&2; exit 1; }
budgeted "$IPCQ" create cli || { cat "$T/err" >&2; exit 1; }
r=1
while [ $r -le "$rounds" ]; do
	order=$jobs
	[ $((r % 2)) -eq 1 ] || order=$reversed
	echo "round $r of $rounds" >&2
	for j in $order; do
		"job_$j"
	done
	r=$((r + 1))
done
"$IPCQ" delete flow
"$IPCQ" delete cli

# ---- the table ----

# summary JOB KEY: "median min max" of the rounds (the median of an even
# number: the mean of the two in the middle), or nothing
summary() {
	[ -s "$T/m/$1.$2" ] || return 0
	sort -g "$T/m/$1.$2" | awk '{ v[NR] = $1 }
		END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'
}
med() { summary "$1" "$2" | cut -d' ' -f1; }

# Numbers as people read them: 1,234,567 for counts, two or three
# significant digits for the rest.
fmt() { # VALUE KIND: KIND rate (an integer), gbs (MB/s as GB/s), us, pct, mib (KiB as MiB)
	awk -v v="$1" -v kind="$2" 'function group(n,   s) {
			s = sprintf("%.0f", n)
			while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s)
			return s
		}
		BEGIN {
			if (kind == "rate") print group(v)
			else if (kind == "gbs") printf "%.2f GB/s\n", v / 1000
			else if (kind == "us") printf "%.1f µs\n", v
			else if (kind == "pct") printf "%.2f%%\n", v
			else if (kind == "mib") printf "%.2f MiB\n", v / 1024
		}'
}

# verdict RATIO OP TARGET: met, or by how much it is missed
verdict() {
	awk -v r="$1" -v op="$2" -v t="$3" 'BEGIN {
		if (op == ">=" && r <= 0) print "missed (no figure)"
		else if (op == ">=") {
			if (r >= t) print "met"
			else printf "missed by %.0f%% (needs %.2f× more)\n", 100 * (1 - r / t), t / r
		} else {
			if (r < t || (op == "<=" && r == t)) print "met"
			else printf "missed by %.0f%% (%.2f× over)\n", 100 * (r / t - 1), r / t
		}
	}'
}

# row WORKLOAD IPCQ_JOB IPCQ_KEY KIND OP TARGET BASE_LABEL BASE_JOB BASE_KEY BASE_STATE
# One judged comparison: ipcq's median over the baseline's, against the
# target (OP: >= or <=).  BASE_STATE is yes, or why the baseline is
# missing.
row() {
	workload=$1 ij=$2 ik=$3 kind=$4 op=$5 target=$6 blabel=$7 bj=$8 bk=$9 bstate=${10}
	iv=$(med "$ij" "$ik")
	ishow=$(fmt "$iv" "$kind")
	[ "$kind" != rate ] || ishow="$ishow $rate_unit"
	if [ "$bstate" != yes ]; then
		printf '| %s | %s | %s: %s | n/a | %s %s× | %s |\n' "$workload" "$ishow" "$blabel" "$bstate" "$op" "$target" \
			"$bstate"
		return
	fi
	bv=$(med "$bj" "$bk")
	bshow=$(fmt "$bv" "$kind")
	[ "$kind" != rate ] || bshow="$bshow $rate_unit"
	ratio=$(awk -v a="$iv" -v b="$bv" 'BEGIN { printf "%.2f\n", a / b }')
	printf '| %s | %s | %s: %s | %s× | %s %s× | %s |\n' "$workload" "$ishow" "$blabel" "$bshow" "$ratio" "$op" \
		"$target" "$(verdict "$ratio" "$op" "$target")"
}

# bound WORKLOAD VALUE KIND LIMIT STATE: an absolute bound (value < limit)
bound() {
	if [ "$5" != yes ]; then
		printf '| %s | %s | | | < %s | %s |\n' "$1" "$5" "$(fmt "$4" "$3")" "$5"
		return
	fi
	printf '| %s | %s | | | < %s | %s |\n' "$1" "$(fmt "$2" "$3")" "$(fmt "$4" "$3")" "$(verdict "$2" "<" "$4")"
}

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
zmq_version=$(pkg-config --modversion libzmq 2>/dev/null || echo "?")
hiredis_version=$(pkg-config --modversion hiredis 2>/dev/null || echo "?")
redis_version=$(redis-server --version 2>/dev/null | sed -n 's/.* v=\([^ ]*\).*/\1/p')
cflags=$(sed -n 's/^CFLAGS = //p' "$B/Makefile" 2>/dev/null | head -n 1)
san=$(sed -n 's/^SAN_CFLAGS = //p' "$B/Makefile" 2>/dev/null | head -n 1)

echo "## The table"
echo
echo "Machine: $(nproc) CPUs ($cpu_model), Linux $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC')."
echo "Load average (1, 5, 15 min) before the run: $load_before; after it: $(cut -d' ' -f1-3 /proc/loadavg)."
# (--no-optional-locks: the benchmark never writes a checkout's index)
if rev=$(git --no-optional-locks -C "$top" rev-parse --short HEAD 2>/dev/null); then
	[ -z "$(git --no-optional-locks -C "$top" status --porcelain --untracked-files=no 2>/dev/null)" ] ||
		rev="$rev with uncommitted changes"
else
	rev="not a git checkout"
fi
echo "Sources: $rev."
echo "Build: CFLAGS=${cflags:-?}${san:+ $san}; ZeroMQ $zmq_version, hiredis $hiredis_version, Redis ${redis_version:-not installed}."
if [ $quick = yes ]; then
	echo "Sizes: --quick (a smoke test: counts too small for the figures to mean much), $rounds round(s)."
else
	echo "Sizes: full, $rounds rounds; every job once a round, interleaved (the order reversed every other round); medians."
fi
echo
echo "| workload | ipcbroker | compared with | ratio | target | result |"
echo "|---|---:|---|---:|---|---|"
rate_unit=msgs/s
row "64 B, one message per call (ipcq_send/ipcq_recv), 1→1" ipcq_one msgs_per_s rate ">=" 2 \
	"raw POSIX mq pair (10 × 512 B)" mq_pair msgs_per_s yes
row "64 B, batches of 64 (ipcq_send_batch/ipcq_recv_batch), 1→1" ipcq_batch msgs_per_s rate ">=" 2 \
	"ZeroMQ PUSH/PULL over ipc://, 64 B" zmq_64 msgs_per_s "$zmq_state"
rate_unit=lines/s
iv=$(med cli lines_per_s)
if [ "$zmq_state" = yes ]; then
	printf '| `seq %s \\| ipcq send q` with `ipcq recv -c %s q >/dev/null` beside it | %s lines/s | ZeroMQ PUSH/PULL, 64 B: %s msgs/s | %s× | >= 1× | %s |\n' \
		"$NCLI" "$NCLI" "$(fmt "$iv" rate)" "$(fmt "$(med zmq_64 msgs_per_s)" rate)" \
		"$(awk -v a="$iv" -v b="$(med zmq_64 msgs_per_s)" 'BEGIN { printf "%.2f\n", a / b }')" \
		"$(verdict "$(awk -v a="$iv" -v b="$(med zmq_64 msgs_per_s)" 'BEGIN { printf "%.2f\n", a / b }')" ">=" 1)"
else
	printf '| `seq %s \\| ipcq send q` with `ipcq recv -c %s q >/dev/null` beside it | %s lines/s | ZeroMQ PUSH/PULL, 64 B: %s | n/a | >= 1× | %s |\n' \
		"$NCLI" "$NCLI" "$(fmt "$iv" rate)" "$zmq_state" "$zmq_state"
fi
row "64 B round trip over two queues, p50 (p99: $(fmt "$(med ipcq_rtt p99)" us); raw mq: $(fmt "$(med mq_pingpong p99_us)" us))" \
	ipcq_rtt p50 us "<=" 0.5 "raw mq ping-pong, p50" mq_pingpong p50_us yes
rate_unit=msgs/s
row "64 KiB, 1→1, copy API" ipcq_64k msgs_per_s rate ">=" 5 "ZeroMQ PUSH/PULL, 64 KiB" zmq_64k msgs_per_s "$zmq_state"
row "64 KiB, 1→1, copy API" ipcq_64k msgs_per_s rate ">=" 50 "Redis LPUSH/BRPOP unpipelined, 64 KiB" redis_64k msgs_per_s \
	"$redis_state"
row "64 KiB, 1→1, zero-copy API" ipcq_64k_zc msgs_per_s rate ">=" 5 "ZeroMQ PUSH/PULL, 64 KiB" zmq_64k msgs_per_s \
	"$zmq_state"
row "64 KiB, 1→1, zero-copy API" ipcq_64k_zc msgs_per_s rate ">=" 50 "Redis LPUSH/BRPOP unpipelined, 64 KiB" \
	redis_64k msgs_per_s "$redis_state"
row "64 B, one message per call, 1→1" ipcq_one msgs_per_s rate ">=" 10 "Redis LPUSH/BRPOP unpipelined, 64 B" \
	redis_64 msgs_per_s "$redis_state"
row "64 B, one message per call, 1→1" ipcq_one msgs_per_s rate ">=" 2 \
	"Redis LPUSH/BRPOP pipelined ×100 on both sides, 64 B" redis_64_p100 msgs_per_s "$redis_state"
row "1 MiB, copy API (ipcq_send → ipcq_recv)" ipcq_1m_copy mb_per_s gbs ">=" 0.5 \
	"single-thread memcpy of 1 MiB" memcpy_1m mb_per_s yes
row "1 MiB, zero-copy API (ipcq_loan/ipcq_publish → ipcq_recv_view/ipcq_release)" ipcq_1m_zc mb_per_s gbs ">=" 0.8 \
	"raw shm ring with process-shared semaphores ($RING_SLOTS slots)" shm_ring_1m mb_per_s yes
zc_vs_memcpy=$(awk -v a="$(med ipcq_1m_zc mb_per_s)" -v b="$(med memcpy_1m mb_per_s)" 'BEGIN { printf "%.2f\n", a / b }')
printf '| 1 MiB, zero-copy API, beside memcpy | %s | single-thread memcpy of 1 MiB: %s | %s× | (say how it compares) | |\n' \
	"$(fmt "$(med ipcq_1m_zc mb_per_s)" gbs)" "$(fmt "$(med memcpy_1m mb_per_s)" gbs)" "$zc_vs_memcpy"
row "4 producers × 4 consumers, 64 B, one per call, aggregate" ipcq_4x4 msgs_per_s rate ">=" 1 \
	"ipcq 1→1, one per call" ipcq_one msgs_per_s yes
row "4 producers × 4 consumers, 64 B, batches of 64, aggregate" ipcq_4x4_batch msgs_per_s rate ">=" 1 \
	"ipcq 1→1, batches of 64" ipcq_batch msgs_per_s yes
cpu_state=yes
[ $daemon_proc = yes ] || cpu_state="not run (no /proc entry for the daemon)"
bound "daemon CPU while $N1 messages flow (64 B one per call), % of one core (clock ticks of /proc/PID/stat: $(fmt "$(med daemon tick_pct)" pct))" \
	"$(med daemon cpu_pct)" pct 1 "$cpu_state"
[ $daemon_proc = yes ] || rss_state="not run (no /proc entry for the daemon)"
bound "daemon RSS with $RSS_QUEUES queues (idle: $(fmt "$(med daemon rss_idle_kib)" mib))" "$(med daemon rss_kib)" mib 4096 \
	"$rss_state"

echo
echo "## Every measurement"
echo
echo "Median, lowest and highest of the rounds; MB = 10^6 bytes."
echo
echo "| job | what | messages a run | median | lowest | highest |"
echo "|---|---|---:|---:|---:|---:|"
# describe JOB KEY WHAT COUNT UNIT
describe() {
	s=$(summary "$1" "$2")
	[ -n "$s" ] || return 0
	set -- "$1" "$2" "$3" "$4" "$5" $s
	awk -v job="$1" -v what="$3" -v n="$4" -v unit="$5" -v m="$6" -v lo="$7" -v hi="$8" 'BEGIN {
		f = unit == "µs" || unit == "%" ? "%.2f" : "%.0f"
		printf "| %s | %s | %s | " f " %s | " f " | " f " |\n", job, what, n, m, unit, lo, hi
	}'
}
describe mq_pair msgs_per_s "raw POSIX mq pair, 64 B" "$N1" msgs/s
describe ipcq_one msgs_per_s "ipcq, 64 B, one per call" "$N1" msgs/s
describe pipe_pair msgs_per_s "pipe, 64 B records, one write and read each (reference)" "$N1" msgs/s
describe ipcq_batch msgs_per_s "ipcq, 64 B, batches of 64, default queue (prefetch 16)" "$NB" msgs/s
describe ipcq_batch_p64 msgs_per_s "ipcq, 64 B, batches of 64, a queue with prefetch 64 (reference)" "$NB" msgs/s
describe zmq_64 msgs_per_s "ZeroMQ PUSH/PULL, 64 B" "$NB" msgs/s
describe redis_64 msgs_per_s "Redis LPUSH/BRPOP unpipelined, 64 B" "$NR1" msgs/s
describe redis_64_p100 msgs_per_s "Redis LPUSH/BRPOP pipelined ×100, 64 B" "$NRP" msgs/s
describe cli lines_per_s "seq \\\\| ipcq send, ipcq recv -c" "$NCLI" lines/s
describe mq_pingpong p50_us "raw mq ping-pong, round trip p50" "$NRTT" µs
describe mq_pingpong p99_us "raw mq ping-pong, round trip p99" "$NRTT" µs
describe ipcq_rtt p50 "ipcq round trip over two queues, p50" "$NRTT" µs
describe ipcq_rtt p99 "ipcq round trip over two queues, p99" "$NRTT" µs
describe ipcq_64k msgs_per_s "ipcq, 64 KiB" "$N64K" msgs/s
describe ipcq_64k_zc msgs_per_s "ipcq zero-copy API, 64 KiB" "$N64K" msgs/s
describe zmq_64k msgs_per_s "ZeroMQ PUSH/PULL, 64 KiB" "$NZ64K" msgs/s
describe redis_64k msgs_per_s "Redis LPUSH/BRPOP unpipelined, 64 KiB" "$NR64K" msgs/s
describe memcpy_1m mb_per_s "memcpy, 1 MiB" "$NMEMCPY" MB/s
describe ipcq_1m_copy mb_per_s "ipcq copy API, 1 MiB" "$N1M" MB/s
describe shm_ring_1m mb_per_s "raw shm ring, $RING_SLOTS slots, 1 MiB" "$NRING" MB/s
describe ipcq_1m_zc mb_per_s "ipcq zero-copy API, 1 MiB" "$N1M" MB/s
describe shm_ring_1m_64 mb_per_s "raw shm ring, $RING_SLOTS_BIG slots (64 MiB, like ipcq's default ring; reference), 1 MiB" "$N1M" MB/s
describe ipcq_4x4 msgs_per_s "ipcq 4 × 4, 64 B, one per call" "$N1" msgs/s
describe ipcq_4x4_batch msgs_per_s "ipcq 4 × 4, 64 B, batches of 64" "$NB" msgs/s
describe daemon cpu_pct "daemon CPU during ipcq 64 B one per call (schedstat)" "$N1" %
describe daemon tick_pct "daemon CPU during ipcq 64 B one per call (stat ticks)" "$N1" %
describe daemon rss_idle_kib "daemon RSS, no queue" - KiB
describe daemon rss_kib "daemon RSS, $RSS_QUEUES queues" - KiB
describe daemon rss_anon_kib "daemon RSS, $RSS_QUEUES queues: anonymous (RssAnon)" - KiB
describe daemon rss_shmem_kib "daemon RSS, $RSS_QUEUES queues: shared memory mapped (RssShmem)" - KiB
