/* SPDX-License-Identifier: Apache-2.0 */
/*
 * space.pml - a spin model of how producers wait for room in the ring
 * (common/ring.c: ring_with_room, ring_advance_tail, consumer_release,
 * wake_space).
 *
 * What it models, with sequentially consistent atomics (the state word's
 * compare-and-swap and the load of tail in consumer_release, the load of
 * a state word and the compare-and-swap of tail in ring_advance_tail):
 *  - the ring: CAP chunks of one size, positions that only grow, head and
 *    tail, and each chunk's state: published, taken, released;
 *  - NPROD producers of N chunks each, under the producers' lock: read
 *    space_seq, move tail over the released chunks at its front, reserve
 *    (and publish) a chunk if there is room; else count themselves in
 *    waiters, let the lock go and sleep on space_seq (a futex: asleep
 *    only while it still holds what they read), then look again; one that
 *    got room after a wait passes one wake-up on;
 *  - NCONS receive-only consumers (they cannot move tail): each takes any
 *    published chunk (receivers take chunks in any order: several
 *    receivers, the window beside the backlog), and releases it: the state
 *    word, then, if tail has come to the chunk, space_seq moved on and the
 *    waiting producers woken, else space_seq moved on alone.
 *
 * Checked: no producer sleeps for room that is there or will be: a state
 * where nothing can move before every chunk was sent and taken is an
 * invalid end state (spin reports it), and at the end every chunk was
 * released and tail reached head.
 * Not modelled: the daemon (its walk wakes the waiters whatever the ring
 * holds, which would hide a lost wake-up for a second at a time), chunk
 * sizes, pads, timeouts, the depth bound.
 *
 * Variant: BROKEN_STRICT wakes only when tail has passed the chunk (a
 * release at tail then wakes nobody): t_model.sh checks that the search
 * finds it.
 *
 * Run: tests/integration/t_model.sh, or by hand
 *   spin -a space.pml && gcc -O2 -DSAFETY -o pan pan.c && ./pan
 */

#ifndef NPROD
#define NPROD 2
#endif
#ifndef N
#define N 2             /* chunks each producer sends */
#endif
#ifndef NCONS
#define NCONS 2
#endif
#define CAP 2           /* chunks the ring holds */
#define TOTAL (NPROD * N)
#define WAKE_MAX 64     /* RING_WAKE_MAX */

#define PUB 1
#define TAKEN 2
#define REL 3

byte st[CAP];           /* the state of the chunk at pos % CAP */
byte head, tail;
byte seq;               /* space_seq */
byte waiters;
bool asleep[NPROD];     /* on the space_seq futex */
byte lock;              /* the producers' lock: 0, or the holder's _pid + 1 */
byte npub;              /* chunks published and not taken (what a consumer waits for) */
byte taken;             /* chunks taken by consumers */
byte released;

inline LOCK() {
	atomic { lock == 0 -> lock = _pid + 1 }
}

inline UNLOCK() {
	lock = 0
}

/* FUTEX_WAKE of up to max sleepers on space_seq, after moving it on */
inline WAKE(max) {
	seq++;
	atomic {
		k = (waiters < max -> waiters : max);
		i = 0;
		do
		:: i < NPROD && k > 0 && asleep[i] -> asleep[i] = false; k--; i++
		:: i < NPROD && !(k > 0 && asleep[i]) -> i++
		:: i == NPROD -> break
		od
	}
}

proctype producer(byte me) {
	byte n = N, s, i, k;
	bool waited = false;

	do
	:: n == 0 -> break
	:: n > 0 ->
		LOCK();
look:
		s = seq;
		/* ring_advance_tail: over the released chunks at the front */
		do
		:: tail < head && st[tail % CAP] == REL -> tail++
		:: else -> break
		od;
		if
		:: head - tail < CAP ->
			atomic { st[head % CAP] = PUB; npub++ };
			head++;
			n--;
			UNLOCK();
			/* the wake-ups are bounded: pass one on */
			if
			:: waited -> WAKE(1); waited = false
			:: else -> skip
			fi
		:: else ->
			waiters++;
			UNLOCK();
			atomic {
				if
				:: seq == s -> asleep[me] = true
				:: else -> skip
				fi
			};
			!asleep[me];
			waiters--;
			waited = true;
			LOCK();
			goto look
		fi
	od
}

proctype consumer() {
	byte pos, i, k;
	bool got;

	do
	:: atomic {
		npub > 0 ->
		/* any published chunk */
		pos = tail;
		got = false;
		do
		:: pos < head && st[pos % CAP] != PUB -> pos++
		:: pos < head && st[pos % CAP] == PUB -> st[pos % CAP] = TAKEN; npub--; taken++; got = true; break
		:: pos < head && st[pos % CAP] == PUB -> pos++
		:: pos == head -> break
		od
	   };
		if
		:: !got -> skip /* it took none of those it saw: look again */
		:: else ->
			st[pos % CAP] = REL;
			released++;
#ifdef BROKEN_STRICT
			if
			:: tail > pos -> WAKE(WAKE_MAX)
			:: else -> seq++
			fi
#else
			if
			:: tail >= pos -> WAKE(WAKE_MAX)
			:: else -> seq++
			fi
#endif
		fi
	:: taken == TOTAL -> break
	od
}

init {
	byte p;

	atomic {
		p = 0;
		do
		:: p < NPROD -> run producer(p); p++
		:: else -> break
		od;
		p = 0;
		do
		:: p < NCONS -> run consumer(); p++
		:: else -> break
		od
	};
	/* everyone is done: every chunk went through */
	(_nr_pr == 1);
	assert(taken == TOTAL && released == TOTAL && head == TOTAL)
}
