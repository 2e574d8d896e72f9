/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lanes.pml - a spin model of how a queue's bell follows the backlogs of
 * its lanes (common/backlog.c: backlog_add_locked, backlog_sub_locked,
 * bell_silence_checked, backlog_silence_idle_bell; recv.c, recv_next and
 * wait_window_or_bell; ring.h, "Lanes").
 *
 * Each lane has its own lock and its own backlog count; the queue counts
 * the lanes' messages together (lanes_backlog), and its one bell (an
 * eventfd, here a flag) must be readable while any lane holds a message:
 * a receiver that finds every backlog empty sleeps on it.  Each lane's
 * lock guards its own count only, so a receiver that empties one lane
 * and silences the bell can race a sender adding to another lane; the
 * silence is checked after it (bell_silence_checked): whoever counts a
 * message after the check rings after it.
 *
 * What it models, with sequentially consistent atomics:
 *  - two senders, each into a lane of its own, N messages each: under
 *    its lane's lock, the lane's count, then the queue's (fetch_add: the
 *    one that finds it 0 rings the bell);
 *  - RECV receivers, the first of which stops after one message (its
 *    application is done), each looping: while the queue's count is not 0, take
 *    a message from a lane that holds one (under that lane's lock:
 *    the lane's count down, the queue's down, and when the queue's count
 *    reads 0, the bell silenced and then, if it reads above 0 again,
 *    rung); else sleep until the bell is readable, and one woken beside a
 *    count of 0 silences the idle bell, checked the same way
 *    (backlog_silence_idle_bell, under the queue's own lock, which no
 *    sender of a lane takes).
 * The window is left out: backlog.pml models it, and the senders here
 * always go to the backlog (no receiver asleep beside an empty window is
 * their path to the window, which wakes a receiver by itself).
 *
 * Checked: when nothing can move, every message was taken (the watcher's
 * assertion at timeout; spin reports any other state where nothing can
 * move as an invalid end), i.e. no receiver sleeps on a silent bell
 * beside a lane's message; and every message leaves on every run (the
 * LTL property all_taken).
 * -DBROKEN_UNCHECKED silences the bell without the check after it, as a
 * single ring could: the search must find a receiver asleep beside a
 * message (t_model.sh checks that it does).
 */
#ifndef N
#define N 2
#endif
#ifndef RECV
#define RECV 2
#endif

byte lb[2];      /* each lane's backlog count */
byte LB;         /* the queue's count of the lanes' messages */
bool bell;       /* the eventfd: readable */
bool lock[2];    /* each lane's lock */
bool qlock;      /* the queue's own ring's lock */
byte taken;      /* messages taken, in all */
byte sent;       /* messages counted in, in all */

inline acquire(l) { atomic { !l -> l = true } }
inline release(l) { l = false }

/* bell_silence_checked */
inline silence_checked() {
	bell = false;
#ifndef BROKEN_UNCHECKED
	if
	:: LB != 0 -> bell = true
	:: else -> skip
	fi
#endif
}

proctype sender(byte me)
{
	byte i = 0, was;

	do
	:: i < N ->
		acquire(lock[me]);
		lb[me]++;
		atomic { was = LB; LB++; sent++ }
		if
		:: was == 0 -> bell = true
		:: else -> skip
		fi;
		release(lock[me]);
		i++
	:: else -> break
	od
}

proctype receiver(byte quota)
{
	byte l, mine = 0;

end_loop:
	do
	:: mine == quota -> break /* its application stops receiving */
	:: mine < quota && LB != 0 ->
		/* the first lane that holds a message (a hint: checked under
		 * its lock; another receiver may take it first) */
		if
		:: lb[0] > 0 -> l = 0
		:: else -> l = 1
		fi;
		acquire(lock[l]);
		if
		:: lb[l] > 0 ->
			lb[l]--;
			LB--;
			taken++;
			mine++;
			if
			:: LB == 0 -> silence_checked()
			:: else -> skip
			fi
		:: else -> skip
		fi;
		release(lock[l])
	:: mine < quota && LB == 0 ->
		/* asleep on the bell; woken when it is readable */
end_asleep:
		bell;
		if
		:: LB == 0 ->
			acquire(qlock);
			if
			:: LB == 0 -> silence_checked()
			:: else -> skip
			fi;
			release(qlock)
		:: else -> skip
		fi
	od
}

active proctype watcher()
{
	timeout -> assert(taken == 2 * N && LB == 0 && lb[0] == 0 && lb[1] == 0)
}

init
{
	byte r;

	atomic {
		run sender(0);
		run sender(1);
		/* the first stops after one message: the others must not sleep
		 * through what it leaves */
		run receiver(1);
		r = 1;
		do
		:: r < RECV -> run receiver(2 * N); r++
		:: else -> break
		od
	}
}

ltl all_taken { <>(taken == 2 * N) }
