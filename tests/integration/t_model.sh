#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# t_model.sh - model-check the backlog's synchronization protocol
# (tests/model/backlog.pml, a spin model of common/backlog.c and its
# callers) and how producers wait for room in the ring
# (tests/model/space.pml, common/ring.c) exhaustively:
#  - safety: per-sender order, no receiver asleep beside a waiting message
#    (the watcher's assertion, invalid end states), the bell readable
#    exactly while the backlog count is not 0 whenever the lock is free;
#  - liveness: every message leaves the queue on every run (the model's
#    LTL property, no acceptance cycle, no fairness assumed);
#  - room: no producer sleeps for room that a release made (invalid end
#    states), with releases in any order by receive-only consumers.
# The harness is checked too: a protocol with a step left out must fail
# (receivers that sleep uncounted and deaf to the bell; releases at tail
# that wake nobody).
# Needs spin (scripts/deps.sh installs it) and a C compiler.
. "$(dirname "$0")/lib.sh"

MODEL="$S/tests/model/backlog.pml"
SPACE="$S/tests/model/space.pml"
LANES="$S/tests/model/lanes.pml"
CC=${CC:-cc}
command -v spin >/dev/null 2>&1 || {
	echo "SKIP: spin is not installed (Debian package spin; scripts/deps.sh installs it)"
	exit 77
}
command -v "$CC" >/dev/null 2>&1 || CC=gcc
command -v "$CC" >/dev/null 2>&1 || fail "no C compiler to build spin's verifier with (\$CC, cc, gcc)"
[ -f "$MODEL" ] || fail "no model at $MODEL"
[ -f "$SPACE" ] || fail "no model at $SPACE"
[ -f "$LANES" ] || fail "no model at $LANES"

# search NAME MODELFILE SPINFLAGS CCFLAGS PANFLAGS: generate, build and run
# a verifier in $T/NAME; its report is $T/NAME/out.  Returns 1 when the
# search found an error, 0 when it completed without one.
search() {
	name=$1 model=$2 spinflags=$3 ccflags=$4 panflags=$5
	mkdir -p "$T/$name"
	cp "$model" "$T/$name/backlog.pml"
	# shellcheck disable=SC2086
	(cd "$T/$name" && spin $spinflags -a backlog.pml) >"$T/$name/spin.out" 2>&1 ||
		fail "$name: spin -a: $(cat "$T/$name/spin.out")"
	# spin's generated C warns a lot: its output is of no interest
	# shellcheck disable=SC2086
	(cd "$T/$name" && "$CC" -O1 -w $ccflags -o pan pan.c) >"$T/$name/cc.out" 2>&1 ||
		fail "$name: cannot build the verifier: $(tail -n 20 "$T/$name/cc.out")"
	# shellcheck disable=SC2086
	(cd "$T/$name" && ./pan $panflags) >"$T/$name/out" 2>&1 || fail "$name: pan: $(tail -n 20 "$T/$name/out")"
	grep -q 'errors: [0-9]' "$T/$name/out" || fail "$name: pan said no error count: $(tail -n 20 "$T/$name/out")"
	! grep -q 'errors: 0$' "$T/$name/out" && return 1
	# a search cut short proves nothing
	if grep -Eq 'max search depth too small|Search not completed' "$T/$name/out"; then
		fail "$name: the search did not complete: $(cat "$T/$name/out")"
	fi
	return 0
}

# The counterexample pan wrote, replayed by spin: the model's account of
# each step (printf), then the state it ends in.
trail() {
	name=$1 spinflags=$2
	# shellcheck disable=SC2086
	(cd "$T/$name" && spin $spinflags -T -t backlog.pml) 2>&1 | head -n 300
}

stats() { # the lines of pan's report that say what was searched
	grep -E 'State-vector|states, stored|transitions|elapsed time' "$T/$1/out" | sed 's/^[[:space:]]*/  /'
}

test_protocol_is_safe() {
	if ! search safety "$MODEL" "" "-DSAFETY -DNOCLAIM" "-m20000"; then
		echo "--- what pan found ---" >&2
		grep -E '^pan:' "$T/safety/out" >&2 || true
		echo "--- the trail ---" >&2
		trail safety "" >&2
		fail "the backlog protocol breaks a safety property (above: order, no sleeping on work, or the bell)"
	fi
	stats safety
	pass "order, no sleeping on work and the bell hold in every state"
}

test_every_message_leaves() {
	if ! search liveness "$MODEL" "" "-DNFAIR=3" "-a -m20000"; then
		echo "--- what pan found ---" >&2
		grep -E '^pan:' "$T/liveness/out" >&2 || true
		echo "--- the trail ---" >&2
		trail liveness "" >&2
		fail "a run of the backlog protocol leaves a message behind (or breaks an assertion)"
	fi
	stats liveness
	pass "every message leaves the queue on every run (no acceptance cycle)"
}

# A broken protocol must be caught: receivers that go to sleep without
# counting themselves asleep (so senders leave everything in the backlog)
# and sleep on the window alone (not the bell) sleep beside a backlog.
# The order check is left out (-DNO_ORDER_CHECK) so that what fails is the
# watcher.
test_harness_catches_a_lost_wakeup() {
	grep -q 'ifndef BROKEN_DEAF' "$MODEL" ||
		fail "the model has no BROKEN_DEAF variant (receivers that sleep uncounted and deaf to the bell)"
	search broken_safety "$MODEL" "-DNO_ORDER_CHECK -DBROKEN_DEAF" "-DSAFETY -DNOCLAIM" "-m20000" &&
		fail "the safety search missed a lost wake-up"
	grep -q 'assertion violated.*delivered' "$T/broken_safety/out" ||
		fail "the safety search failed otherwise than on the watcher: $(grep '^pan:' "$T/broken_safety/out")"
	search broken_liveness "$MODEL" "-DNO_ORDER_CHECK -DBROKEN_DEAF" "-DNFAIR=3" "-a -A -E -m20000" &&
		fail "the liveness search missed a lost wake-up"
	grep -q 'acceptance cycle' "$T/broken_liveness/out" ||
		fail "the liveness search failed otherwise than on an acceptance cycle: $(grep '^pan:' "$T/broken_liveness/out")"
	pass "a protocol whose receivers sleep uncounted and deaf to the bell fails both searches"
}

# Producers waiting for room: every chunk is sent and taken, whatever the
# order of the releases; and a release at tail that wakes nobody (only one
# that tail has passed) is caught.
test_waiting_for_room_loses_no_wakeup() {
	if ! search space "$SPACE" "" "-DSAFETY" "-m20000"; then
		echo "--- what pan found ---" >&2
		grep -E '^pan:' "$T/space/out" >&2 || true
		echo "--- the trail ---" >&2
		trail space "" >&2
		fail "a producer sleeps for room a release made (above)"
	fi
	stats space
	search space_broken "$SPACE" "-DBROKEN_STRICT" "-DSAFETY" "-m20000" &&
		fail "the search missed a release at tail that wakes nobody"
	grep -q 'invalid end state' "$T/space_broken/out" ||
		fail "the broken room protocol failed otherwise than on an invalid end state: $(grep '^pan:' "$T/space_broken/out")"
	pass "no producer sleeps beside room a release made; waking only past tail is caught"
}

# The bell of a queue with lanes: no receiver sleeps on a silent bell
# beside a lane's message, with each lane's lock guarding its own count
# alone; a silence not checked after it is caught.
test_lanes_ring_the_bell() {
	if ! search lanes "$LANES" "" "-DSAFETY -DNOCLAIM" "-m100000"; then
		grep -E '^pan:' "$T/lanes/out" >&2 || true
		trail lanes "" >&2
		fail "a receiver sleeps on a silent bell beside a lane's message (above)"
	fi
	stats lanes
	search lanes_liveness "$LANES" "" "-DNFAIR=4" "-a -f -m100000" ||
		fail "a run of the lanes' bell leaves a message behind: $(grep '^pan:' "$T/lanes_liveness/out")"
	search lanes_broken "$LANES" "-DBROKEN_UNCHECKED" "-DSAFETY -DNOCLAIM" "-m100000" &&
		fail "the search missed a silence that is not checked after it"
	grep -q 'assertion violated' "$T/lanes_broken/out" ||
		fail "the unchecked silence failed otherwise than on the watcher: $(grep '^pan:' "$T/lanes_broken/out")"
	pass "lanes: the bell rings while any lane's backlog holds a message (every run, weak fairness); an unchecked silence is caught"
}

test_harness_catches_a_lost_wakeup
test_protocol_is_safe
test_every_message_leaves
test_waiting_for_room_loses_no_wakeup
test_lanes_ring_the_bell
