/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backlog.h - what does not fit a queue's mq window waits in its ring.
 *
 * See the comment at the top of backlog.c for the protocol and its crash
 * points.  The library's send and receive paths use it; the daemon only
 * reads what it leaves in the ring (ring.c reclaims and purges).
 */
#ifndef IPCQ_BACKLOG_H
#define IPCQ_BACKLOG_H

#include <mqueue.h>

#include "ring.h"

/* How a client reaches the mq window.  send never waits: 0, -EAGAIN when
 * the window is full, or another negative errno; NULL for a client that
 * may not send (it never moves the backlog).  waiting: how many messages
 * the window holds (a receiver asks under the lock before it takes from
 * the backlog, see backlog_take), or a negative errno. */
struct backlog_window {
	int (*send)(void *ctx, const void *msg, size_t len, unsigned prio);
	long (*waiting)(void *ctx);
	void *ctx;
	/* the daemon's word that processes wait for the queue's signal, which
	 * it learns of through the window (proto_meta.listened), or NULL */
	const _Atomic uint32_t *listened;
};

/* Whether a receiver sleeps in the kernel, or is about to: then a sender
 * may put its message into the window (an mq message wakes it, see
 * backlog_wakes_by_window); else it leaves the message in the backlog,
 * where receivers that are awake take it without a system call and
 * without a wake-up (coalesced with those that follow).  A hint: a
 * sleeping receiver also wakes on the bell, which rings as the backlog
 * fills (see backlog.c).  A queue whose signal someone waits for
 * (ipcq_notify) counts as asleep too: the daemon learns of arrivals
 * through the window. */
static inline bool backlog_sleepers(const struct ring *r, const struct backlog_window *w)
{
	return atomic_load_explicit(&r->q->sleepers, memory_order_seq_cst) != 0 ||
	       (w && w->listened && atomic_load_explicit(w->listened, memory_order_relaxed));
}

/* Whether a sender puts its message into the window rather than the
 * backlog.  While receivers sleep and the window is empty: the message
 * wakes one (receivers sleep with EPOLLEXCLUSIVE, recv.c) and goes with
 * it.  Not while the window holds some already: the receiver they woke
 * takes the backlog too, with no system call, where each mq message
 * costs the sender and a receiver one each (and the bell wakes the next
 * receiver, see backlog_take).  Always for the daemon, told of arrivals
 * by mq_notify for those waiting for the queue's signal, and for
 * receivers of a queue without a bell, whom the window alone wakes. */
static inline bool backlog_wakes_by_window(const struct ring *r, const struct backlog_window *w)
{
	if (w && w->listened && atomic_load_explicit(w->listened, memory_order_relaxed))
		return true;
	if (!backlog_sleepers(r, NULL))
		return false;
	return r->bell < 0 || atomic_load_explicit(&r->q->window_msgs, memory_order_seq_cst) <= 0;
}

/* Receiver: it is going to sleep (+1) or woke (-1).  Going to sleep, it
 * looks at the backlog once more after this (seq_cst): a sender either
 * sees it asleep (and uses the window, or the bell rings as the backlog
 * fills), or its message is seen. */
static inline void backlog_sleeping(struct ring *r, int n)
{
	atomic_fetch_add_explicit(&r->q->sleepers, (uint32_t)n, memory_order_seq_cst);
}

/* The window's count.  Whoever puts an mq message into the window counts
 * it first (and takes the count back if the send failed); a receiver
 * takes it off after it received one (window_taken).  So while every client keeps to
 * that, the count is never below what the window holds, and 0 says the
 * window is empty without asking the kernel (a receiver spares the two
 * system calls of a look at the window beside the backlog).  A hint: a
 * client killed between its count and its send leaves it high (receivers
 * then ask the kernel, as before), and one that writes anything there can
 * only make receivers of its own queue take backlog messages ahead of
 * window ones; a receiver woken by the window asks the kernel whatever
 * the count says. */
static inline void window_counted(const struct ring *r, int64_t n)
{
	atomic_fetch_add_explicit(&r->q->window_msgs, n, memory_order_seq_cst);
}

/* A receiver took n mq messages off the window (the daemon's purge, n at
 * once): off the count, which never goes below 0 (an uncounted message,
 * a forgery or the daemon's CLOSED, would otherwise leave the next
 * counted one at 0). */
static inline void window_taken(const struct ring *r, int64_t n)
{
	int64_t cur = atomic_load_explicit(&r->q->window_msgs, memory_order_relaxed);

	for (unsigned tries = 0; cur > 0 && tries < 64; tries++)
		if (atomic_compare_exchange_weak_explicit(&r->q->window_msgs, &cur, cur > n ? cur - n : 0,
		                                          memory_order_seq_cst, memory_order_relaxed))
			return;
}

/* Put one mq message into r's window through mq, counted, without
 * waiting (whether mq is a blocking descriptor or not): 0, -EAGAIN when
 * the window is full, or another negative errno. */
int window_put(const struct ring *r, mqd_t mq, const void *msg, size_t len, unsigned prio);

static inline bool window_maybe_busy(const struct ring *r)
{
	return atomic_load_explicit(&r->q->window_msgs, memory_order_seq_cst) > 0;
}

/* Whether senders must go through the backlog (it is not empty): this
 * ring's, a lane's alone for a lane (ring.h). */
static inline bool backlog_busy(const struct ring *r)
{
	return atomic_load_explicit(&r->hdr->backlog, memory_order_acquire) != 0;
}

/* Whether any backlog of the queue holds messages: its own ring's, or
 * one of its lanes' (ring.h, "Lanes"), as receivers see it. */
static inline bool backlog_queue_busy(const struct ring *r)
{
	return atomic_load_explicit(&r->q->backlog, memory_order_seq_cst) != 0 ||
	       atomic_load_explicit(&r->q->lanes_backlog, memory_order_seq_cst) != 0;
}

/* Receiver, before it looks at the backlog and sleeps on the window:
 * the window is no longer full, so senders move the backlog into it
 * again (see backlog.c). */
static inline void backlog_window_drained(struct ring *r)
{
	if (atomic_load_explicit(&r->q->window_full, memory_order_relaxed))
		atomic_store_explicit(&r->q->window_full, 0, memory_order_seq_cst);
	atomic_thread_fence(memory_order_seq_cst);
}

/* Sender: a complete chunk this process reserved (payload written, kind
 * and count set), carrying nmsgs messages: into the window when the
 * backlog is empty and the window has room, else into the backlog.  Waits
 * only for the lock, up to timeout_ms; on failure the chunk is given back,
 * but with BACKLOG_KEEP_ON_TIMEOUT a lock wait that timed out leaves it
 * reserved by the caller (a loan, to publish again or give back). */
enum { BACKLOG_KEEP_ON_TIMEOUT = 1u << 0 };
int backlog_submit(struct ring *r, const struct ring_ref *ref, unsigned prio, unsigned nmsgs,
                   const struct backlog_window *w, int timeout_ms, unsigned flags);

/* Sender: one message of at most RING_REC_MAX bytes into the backlog,
 * expiring at expires (ring_chunk.expires), coalesced with the newest
 * batch of its priority and expiry while that has room (batch_max
 * messages at most); waits for ring space up to timeout_ms. */
int backlog_append(struct ring *r, const void *buf, size_t len, unsigned prio, uint64_t expires, unsigned batch_max,
                   const struct backlog_window *w, int timeout_ms);

/* Receiver: take the next chunk waiting in the backlog (batches given
 * back first, then the oldest of the highest priority), as ring_take
 * does; -EAGAIN when there is none.  With BACKLOG_RETURNED, only a batch
 * given back.  Otherwise the window's messages are older than the
 * backlog's: -EINPROGRESS (look there again) if, under the lock, the
 * window holds a message (w->waiting), or a sender moved messages into
 * it since the receiver read window_seq and found it empty. */
enum { BACKLOG_RETURNED = 1u << 0 };
int backlog_take(struct ring *r, struct ring_ref *out, int timeout_ms, unsigned flags, uint64_t window_seq,
                 const struct backlog_window *w);

/* Receiver, choosing among a queue's lanes: the priority of the highest
 * level of r's backlog that holds chunks, and the ticket of its oldest
 * (ring_chunk.ticket); false when none does.  Read without the lock: a
 * hint (a sender can only reorder what waits). */
bool backlog_top(const struct ring *r, uint32_t *prio, uint64_t *ticket);

/* Receiver: the bell rang but the backlog is empty: silence it, under the
 * lock (where it is rung), unless a message joined the backlog meanwhile. */
void backlog_silence_idle_bell(struct ring *r);

/* Whether batches given back wait (receivers take them before the
 * window): in this ring / in any ring of the queue. */
static inline bool backlog_returned(const struct ring *r)
{
	return atomic_load_explicit(&r->hdr->returned, memory_order_relaxed) != 0;
}

static inline bool backlog_queue_returned(const struct ring *r)
{
	return atomic_load_explicit(&r->q->returned, memory_order_relaxed) != 0 ||
	       atomic_load_explicit(&r->q->lanes_returned, memory_order_relaxed) != 0;
}

static inline uint64_t backlog_window_seq(const struct ring *r)
{
	return atomic_load_explicit(&r->q->window_seq, memory_order_acquire);
}

/* Receiver: give a taken chunk back to the backlog (a handle closed
 * before it was done with it), served before the window: a batch with the
 * records marked done in `done` skipped by its next taker, or a chunk of
 * one message, which its next taker gets flagged redelivered. */
int backlog_give_back(struct ring *r, const struct ring_ref *ref, uint64_t done);

#endif
