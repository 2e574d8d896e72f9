/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backlog.pml - a spin model of the backlog's synchronization protocol
 * (common/backlog.c; recv.c, recv_next; send.c, send_one).
 *
 * What it models, with sequentially consistent atomics (spin's
 * interleaving, which is what the seq_cst fences of move_locked and
 * backlog_window_drained give):
 *  - the window: the mq, a FIFO of WCAP mq messages (one priority), sent
 *    to without waiting, received from with or without waiting;
 *  - a chunk: one message, or a batch of two (PREFETCH 2), as an mq
 *    message or in the backlog;
 *  - the backlog: chunks in order, touched only under the producers' lock,
 *    beside what is read without it: the count `backlog`, the hint
 *    `wfull` (window_full) and `wseq` (window_seq); the bell (the eventfd)
 *    as a flag;
 *  - two senders, sending N0 and N1 messages numbered in order: straight
 *    to the window while the count is 0, a receiver sleeps (the sleepers
 *    count) and the window's count is 0 (backlog_wakes_by_window; a full
 *    window sends it on), else under the lock into the backlog, coalesced
 *    into the newest batch or as a chunk of its own (either may happen:
 *    send_one coalesces, backlog_submit does not), ringing the bell if
 *    the backlog was empty, then move_locked: unless the hint is set, no
 *    receiver sleeps or the window's count is above 0, a chunk from the
 *    backlog into the window, and more while that still holds; on a full
 *    window the chunk stays and the hint is set;
 *  - NRECV receivers, each looping in recv_next: clear the hint, and if
 *    the count is not 0, read wseq, try the window without waiting, else
 *    (backlog_take) under the lock take from the backlog only if wseq is
 *    unchanged, else look again; sleep only after seeing the backlog
 *    empty, counted among the sleepers before a last look at the backlog
 *    count, and then on the window and the bell at once (epoll_wait on
 *    both, added with EPOLLEXCLUSIVE), looking again once either is
 *    readable; one that takes from the backlog and leaves some there
 *    while others sleep rings the bell again (the baton, backlog_take);
 *  - exclusive wake-ups, as the kernel makes them: each mq send and each
 *    write to the bell goes down that file's waiters in order, marking
 *    each receiver's epoll set ready for it, until it finds one asleep in
 *    epoll_wait, which it wakes and stops at.  The order is fixed: a set
 *    joins a file's wait queue once, when the file is added to it, and
 *    stays (receivers being alike, one order stands for all).  A set
 *    marked ready returns at once while the file is readable
 *    (level-triggered), and drops the mark when it finds the file not
 *    readable;
 *  - the window's count (backlog.h, window_counted): senders count an mq
 *    message before they send it and take the count back if the send
 *    failed, receivers take it off after they received one; a receiver
 *    looks at the window (and backlog_take asks about it) only while the
 *    count is above 0, or when the window woke it.
 * Taking a chunk (from the window or the backlog) is where its messages
 * leave the queue, in order.  Every read or write of a shared word is a
 * step of its own; steps under the lock that touch only what the lock
 * guards are merged with the next visible one.
 *
 * Checked:
 *  - order: each sender's messages leave the queue in the order sent, none
 *    twice (assertion at every take);
 *  - no sleeping on work: when nothing can move (senders done, receivers
 *    blocked on the window), every message was taken and the window and
 *    the backlog are empty (the watcher's assertion at timeout; spin also
 *    reports any other state where nothing can move as an invalid end);
 *  - the bell: whenever the lock is free, the bell is readable exactly
 *    when the backlog count is not 0 (both move only under the lock, so an
 *    assertion at every unlock covers every such state);
 *  - every message leaves the queue on every run, livelocks included (the
 *    LTL property all_taken, with no fairness assumed).
 * A receiver woken by the window may find it emptied by another before it
 * looks: it then sleeps again, as recv.c does.
 * The run of t_model.sh has two senders of two messages each (21.2 M
 * states); with three for one of them the safety search stored 46.5 M
 * states and found no error before the wake-ups were exclusive, too long
 * for every test run.
 * Not modelled: crashes and the daemon's sweep (nudges, lock breaking),
 * priorities, batches given back (RING_RETURNED), timeouts, ring space,
 * queues without a bell and those whose signal someone waits for (their
 * senders use the window whenever a receiver sleeps, as all did before).
 *
 * backlog_take looks again when the window is not empty (mq_getattr under
 * the lock), as backlog.c does: without that check the model finds a
 * sender's messages out of order (a send straight to the window after the
 * receiver looked, then the next one appended to the backlog).
 * Variants (spin -D...): FIX_DIRECT_SEQ, a send straight to the window
 * moves wseq on too (another fix, at a cost on every send; not what the
 * code does).  NO_ORDER_CHECK leaves out the order assertion, to check the
 * rest alone.  BROKEN_DEAF: receivers that sleep uncounted and deaf to the
 * bell (t_model.sh checks that both searches catch it).
 *
 * Run: tests/integration/t_model.sh, or by hand
 *   spin -a backlog.pml && gcc -O2 -DSAFETY -DNOCLAIM -o pan pan.c && ./pan
 *   gcc -O2 -DNFAIR=3 -o pan pan.c && ./pan -a          (all_taken)
 *   spin -T -t backlog.pml               (replays a trail pan wrote)
 */

#ifndef N0
#define N0 2            /* messages sender 0 sends (3: 46.5 M states before exclusive wake-ups) */
#endif
#ifndef N1
#define N1 2            /* messages sender 1 sends */
#endif
#ifndef NRECV
#define NRECV 2
#endif
#define WCAP 2          /* the window's capacity (mq_maxmsg) */
#define TOTAL (N0 + N1) /* a message makes one chunk at most */

/* A message: sender * 8 + sequence number + 1; 0 is none.  A chunk is a
 * pair of them: the second is 0 for a chunk of one. */
#define SENDER(m) (((m) - 1) / 8)
#define SEQ(m) (((m) - 1) % 8)

chan win = [WCAP] of { byte, byte };

byte bla[TOTAL];                   /* the backlog, oldest first: chunk k */
byte blb[TOTAL];                   /* is bla[k], blb[k]; bln of them */
byte bln;

byte lock;                         /* 0, or the holder's _pid + 1 */
byte backlog;                      /* messages in the backlog (atomic) */
bool wfull;                        /* the window_full hint (atomic) */
byte wseq;                         /* window_seq (atomic) */
bool bell;                         /* the eventfd is readable */
byte sleepers;                     /* receivers asleep, or about to be (atomic) */
byte wcount;                       /* the window's count (atomic): counted before a send, off after a receive */
bool waiting[NRECV];               /* receiver k is asleep in epoll_wait */
bool armw[NRECV];                  /* its epoll set is marked ready for the window */
bool armb[NRECV];                  /* ... for the bell */

byte expect[2];                    /* each sender's next message to leave */
byte delivered;

inline LOCK() {
	atomic { lock == 0 -> lock = _pid + 1 }
}

/* counters and bell move only under the lock: at every release they agree */
inline UNLOCK() {
	atomic {
		assert(bell == (backlog != 0));
		lock = 0
	}
}

#ifdef BROKEN_DEAF
#define SLEEPERS_DOWN() skip
#else
#define SLEEPERS_DOWN() sleepers--
#endif

inline DELIVER(m) {
	printf(" %d.%d", SENDER(m), SEQ(m));
#ifndef NO_ORDER_CHECK
	assert(SEQ(m) == expect[SENDER(m)]);
#endif
	expect[SENDER(m)]++;
	delivered++
}

/* chunk (a, b) leaves the queue */
inline TAKE(a, b) {
	DELIVER(a);
	if
	:: b != 0 -> DELIVER(b)
	:: else -> skip
	fi;
	printf("\n");
	a = 0;
	b = 0
}

/* the oldest chunk leaves the backlog's list (under the lock) */
inline SHIFT() {
	d_step {
		k = 1;
		do
		:: k < bln -> bla[k - 1] = bla[k]; blb[k - 1] = blb[k]; k++
		:: else -> break
		od;
		bln--;
		bla[bln] = 0;
		blb[bln] = 0;
		k = 0
	}
}

/* An exclusive wake-up on a file (WIN or BELL): down its waiters in
 * order, marking each set ready, until one asleep is woken. */
#define WIN 0
#define BELL 1
inline MARK(file) {
	if
	:: file == WIN -> armw[k] = true
	:: else -> armb[k] = true
	fi
}

inline WAKE(file) {
	k = 0;
	do
	:: k < NRECV && !waiting[k] -> MARK(file); k++
	:: k < NRECV && waiting[k] -> MARK(file); waiting[k] = false; k = NRECV
	:: k >= NRECV -> break
	od;
	k = 0
}

/* backlog_sub_locked */
inline BACKLOG_SUB(n) {
	backlog = backlog - n;
	if
	:: backlog == 0 -> bell = false
	:: else -> skip
	fi
}

/* move_locked, under the lock: the seq_cst fence, then the hint */
inline MOVE() {
	if
	:: wfull -> printf("S%d sees window_full: no move\n", s)
	:: !wfull && (sleepers == 0 || wcount != 0) -> printf("S%d sees no receiver asleep, or the window's count above 0: no move\n", s)
	:: !wfull && sleepers != 0 && wcount == 0 ->
		do
		:: backlog != 0 && (!ok || (sleepers != 0 && wcount == 0)) ->
			wcount++;
			atomic {
			/* claim the oldest chunk, try the window without waiting */
			if
			:: len(win) < WCAP -> win!bla[0], blb[0]; ok = true; WAKE(WIN);
				printf("S%d moves a chunk into the window\n", s)
			:: else -> ok = false;
				printf("S%d finds the window full: sets window_full\n", s)
			fi
		   };
			if
			:: !ok -> wcount--
			:: else -> skip
			fi;
			if
			:: ok ->
				atomic {
					n = (blb[0] != 0 -> 2 : 1);
					SHIFT();
					BACKLOG_SUB(n);
					n = 0
				};
				wseq++
			:: else ->
				/* back to the backlog as it was; the hint */
				wfull = true;
				break
			fi
		:: else -> break
		od;
		ok = false
	fi
}

proctype Sender(byte s; byte nmsg)
{
	byte q = 0, k, n;
	bool ok;

	do
	:: q < nmsg ->
		/* send_one: straight to the window while the backlog is empty,
		 * a receiver sleeps and the window's count is 0
		 * (backlog_wakes_by_window) */
		if
		:: backlog == 0 && sleepers != 0 && wcount == 0 ->
			printf("S%d reads backlog 0, a receiver asleep and the window's count 0 for %d.%d\n", s, s, q);
			wcount++;
			atomic {
				if
				:: len(win) < WCAP -> win!s * 8 + q + 1, 0; ok = true; WAKE(WIN);
					printf("S%d sends %d.%d straight into the window\n", s, s, q)
				:: else -> ok = false;
					printf("S%d finds the window full for %d.%d\n", s, s, q)
				fi
			};
			if
			:: !ok -> wcount--
			:: else -> skip
			fi
#ifdef FIX_DIRECT_SEQ
			if
			:: ok -> wseq++
			:: else -> skip
			fi
#endif
		:: else -> ok = false
		fi;
		if
		:: ok -> skip
		:: else ->
			/* backlog_append or backlog_submit: under the lock */
			LOCK();
			atomic {
				if
				:: bln > 0 && blb[bln - 1] == 0 ->
					/* grow the newest batch (backlog_append) */
					blb[bln - 1] = s * 8 + q + 1;
					printf("S%d appends %d.%d to the newest batch in the backlog\n", s, s, q)
				:: true ->
					bla[bln] = s * 8 + q + 1;
					bln++;
					printf("S%d queues %d.%d in the backlog\n", s, s, q)
				fi;
				if
				:: backlog == 0 -> bell = true; WAKE(BELL)
				:: else -> skip
				fi;
				backlog++
			};
			ok = false;
			MOVE();
			UNLOCK()
		fi;
		ok = false;
		q++
	:: else -> break
	od
}

proctype Receiver(byte me)
{
	byte a, b, seq, k, n;
	bool got, ask;

again:
	/* backlog_window_drained: a relaxed load, then a seq_cst store */
	if
	:: wfull -> wfull = false; printf("R%d clears window_full\n", me)
	:: else -> skip
	fi;
	if
	:: backlog != 0 ->
		/* the window first (it is older), then the backlog */
		atomic { seq = wseq; printf("R%d sees the backlog busy, reads window_seq %d\n", me, seq) };
		atomic {
			if
			:: (wcount > 0 || ask) && len(win) > 0 -> win?a, b; printf("R%d takes from the window:", me); TAKE(a, b); got = true
			:: else -> got = false; printf("R%d finds the window empty (or its count 0)\n", me)
			fi;
			ask = false
		};
		if
		:: got -> wcount--; got = false; seq = 0; goto again
		:: else -> skip
		fi;
		/* backlog_take */
		if
		:: backlog == 0 -> seq = 0; printf("R%d sees the backlog empty\n", me); goto block
		:: else -> skip
		fi;
		LOCK();
		if
		:: wseq != seq ->
			/* moved into the window meanwhile: look there again */
			printf("R%d: window_seq moved on, looks again\n", me);
			seq = 0;
			UNLOCK();
			goto again
		:: else -> seq = 0
		fi;
		if
		:: wcount > 0 && len(win) > 0 ->
			/* the window holds older ones: look there again */
			printf("R%d: the window is not empty, looks again\n", me);
			UNLOCK();
			goto again
		:: else -> skip
		fi;
		if
		:: bln == 0 ->
			/* claim_next_locked: every level empty */
			atomic { backlog = 0; bell = false; printf("R%d finds the backlog empty\n", me) };
			UNLOCK();
			goto block
		:: else ->
			/* claim_next_locked: the oldest chunk */
			atomic {
				printf("R%d takes from the backlog:", me);
				a = bla[0];
				b = blb[0];
				n = (b != 0 -> 2 : 1);
				SHIFT();
				TAKE(a, b)
			};
			/* dequeued_locked */
			atomic { BACKLOG_SUB(n); n = 0 };
			/* the baton: more wait, and others sleep */
			if
			:: backlog != 0 && sleepers != 0 ->
				atomic { bell = true; WAKE(BELL); printf("R%d rings the bell for the next\n", me) }
			:: else -> skip
			fi;
			UNLOCK();
			goto again
		fi
	:: else ->
		/* the window without waiting (recv_window with timeout 0) */
		atomic {
			printf("R%d sees the backlog empty\n", me);
			if
			:: (wcount > 0 || ask) && len(win) > 0 -> win?a, b; printf("R%d takes from the window:", me); TAKE(a, b); got = true
			:: else -> got = false
			fi;
			ask = false
		};
		if
		:: got -> wcount--; got = false; goto again
		:: else -> skip
		fi
	fi;
block:
	/* sleep_on_window: counted asleep, the backlog looked at once more,
	 * then epoll_wait on the window and the bell at once */
#ifndef BROKEN_DEAF
	sleepers++;
#endif
	if
	:: backlog != 0 -> SLEEPERS_DOWN(); printf("R%d sees the backlog fill before it sleeps\n", me); goto again
	:: else -> skip
	fi;
	waiting[me] = true;
end_block:
	do
	:: atomic { armw[me] && len(win) > 0 -> waiting[me] = false; SLEEPERS_DOWN(); ask = true; printf("R%d wakes on the window\n", me); break }
#ifndef BROKEN_DEAF
	:: atomic { armb[me] && bell -> waiting[me] = false; SLEEPERS_DOWN(); printf("R%d wakes on the bell\n", me); break }
#endif
	/* a mark whose file is not readable any more is dropped, asleep */
	:: atomic { armw[me] && len(win) == 0 -> armw[me] = false; waiting[me] = true }
	:: atomic { armb[me] && !bell -> armb[me] = false; waiting[me] = true }
	od;
	goto again
}

/* When nothing can move, nothing may wait. */
active proctype Watch()
{
end_watch:
	timeout ->
	assert(delivered == TOTAL && len(win) == 0 && bln == 0 && backlog == 0 && !bell && lock == 0 && wcount == 0)
}

init {
	byte r = 0;

	atomic {
		run Sender(0, N0);
		run Sender(1, N1);
		do
		:: r < NRECV -> run Receiver(r); r++
		:: else -> break
		od
	}
}

/* Every message leaves the queue, on every run (livelock included). */
ltl all_taken { <> (delivered == TOTAL) }
