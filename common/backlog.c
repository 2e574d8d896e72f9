/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backlog.c - a queue holds what its ring holds, not what the kernel lets
 * its mq hold.
 *
 * The mq is the window receivers take messages through: it gives them
 * the order (priorities), the wake-up (mq_receive, the pollable fd) and
 * the crash record (receive slots, see ring.c).  The kernel keeps it
 * small (msg_max is 10 by default), so what does not fit waits in the
 * ring as the backlog: chunks in state QUEUED, complete, their
 * descriptors not on the mq yet.
 *
 * Shape.  A QUEUED chunk is a raw message (a large send, a loan) or a
 * batch: up to prefetch small messages as records (ring.h).  Chunks are
 * kept in levels, one per priority (RING_LEVELS of them in the ring
 * header; a priority beyond that shares the nearest level).  A level
 * needs no list: its chunks are the QUEUED ones marked with its index,
 * and position order in the ring is their order, so a level is a cursor
 * (no QUEUED chunk of it lies before) and a count (a hint).  The lock
 * (ring.c: the shared lock, and for senders the senders' lock before it)
 * guards levels, cursors, the growth of the newest batch and every
 * QUEUED -> other move; the counters
 * `backlog` (messages QUEUED) and `depth` (messages waiting anywhere) are
 * atomics read without it.
 *
 * Senders.  While the backlog is empty and a receiver sleeps beside an
 * empty window, a send goes straight to the window (mq_send that does not
 * wait), and wakes it: an idle queue adds no latency.  Otherwise (the
 * window full, or holding what woke a receiver already; the backlog not
 * empty, so nothing overtakes what waits there; or every receiver awake)
 * the message goes to the backlog under the lock: appended to the newest
 * batch of its priority when that is the last chunk of the ring and has
 * room (coalescing under backpressure only), else as a new chunk; then,
 * still under the lock, the sender moves what it can from the backlog
 * into the window, highest level first, oldest first, on the same terms
 * (backlog.h, backlog_wakes_by_window: for a queue without a bell, or
 * one whose signal someone waits for, whenever a receiver sleeps).
 * Receivers sleep on the window and the bell with EPOLLEXCLUSIVE (recv.c),
 * so each mq message, and each ring of the bell, wakes one: the one woken
 * takes the backlog too, and one that takes from the backlog while more
 * waits there and others sleep rings the bell again for the next
 * (backlog_take), so that a burst is still shared among them.
 *
 * Receivers take from the window; when it is empty and the backlog is
 * not, they take the oldest chunk of the highest level straight from the
 * backlog (under the lock).  This departs from "backlog non-empty implies
 * window non-empty", on purpose: a receive-only client's mq descriptor is
 * read-only (so it cannot forge a message onto the mq), and a backlog
 * whose senders have all gone drains all the same.  What that invariant
 * gave, these give instead:
 *  - order: the window's messages are older than the backlog's (a
 *    message enters the backlog only after the window was full, or behind
 *    a backlog), so a receiver takes from the backlog only under the lock
 *    and only while the window is empty (asked of the mq under the lock:
 *    a sender that saw the backlog empty may have sent straight to the
 *    window after the receiver last looked, and then appended its next
 *    message to the backlog); window_seq (moves since it looked) spares
 *    the question when the answer is plainly no; else it looks again;
 *  - no sleeping on work: a receiver blocks in mq_receive only after it
 *    saw the backlog empty; a message enters the backlog only when the
 *    window was full or the backlog not empty, and its sender then moves
 *    what fits into the window (the window_full hint, cleared by
 *    receivers before they look, never hides room: see move_locked);
 *  - a pollable fd: the bell, an eventfd the daemon passes to every
 *    client, is readable while the backlog is not empty (rung and
 *    silenced under the lock as the backlog count leaves and reaches 0),
 *    and ipcq_fd() is an epoll set of the mq and the bell;
 *  - after a crash: a sender killed between its append and its move
 *    leaves the window empty beside a backlog; the bell still rings, and
 *    the daemon's sweep sends a nudge (PROTO_MSG_NUDGE) that wakes a
 *    receiver blocked in mq_receive, which then takes from the backlog.
 * A batch a receiver gives back unfinished (a handle closed, see recv.c)
 * was at the head of the line: it goes to a level of its own
 * (RING_RETURNED) that receivers serve before the window, and that
 * senders never move into the window (it would go behind newer messages).
 *
 * Priorities: the window orders what is in it; the backlog hands out its
 * highest level first.  A message of higher priority may wait behind
 * what is already in the window: at most max_msgs mq messages, each at
 * most a batch of prefetch messages (stated in ipcq.h).
 *
 * Growing the newest batch.  Under the lock, with the chunk QUEUED (no
 * receiver can hold it), the record is written past the chunk's end, in
 * free space; then size grows, then head moves (release); then the
 * chunk's len and count take the record in.  A reader without the lock
 * (the daemon's walk) that sees the new size with the old head stops its
 * walk there (ring.c); one that sees the new head sees the new size.
 *
 * Crash points (any client killed at any instruction):
 *  - a sender dies holding the lock: the daemon breaks it (ring.c); every
 *    step under it leaves the ring consistent, in this order:
 *  - ... after reserving a new batch chunk, before it is QUEUED: the
 *    chunk is RESERVED by a dead holder, and the daemon frees it (the
 *    send never returned: nothing acknowledged is lost);
 *  - ... while growing a batch, after size and before head: the next
 *    holder of the lock finds the newest chunk longer than head allows
 *    and moves head to its end (ring_try_reserve_locked); the record,
 *    not yet in len and count, is not part of the batch;
 *  - ... after len and count, before the counters: the counters are low
 *    by one.  Counts are hints: a level whose walk finds no QUEUED chunk
 *    is emptied, a backlog whose levels are all empty is zeroed, and the
 *    daemon puts depth right when the queue is at rest;
 *  - a sender or receiver dies moving a chunk (QUEUED -> PUBLISHING
 *    under its holder id -> descriptor on the mq -> PUBLISHED): the
 *    daemon finds it PUBLISHING by a dead holder and sends the descriptor
 *    again, flagged REDELIVERED; a second copy finds the chunk taken and
 *    is dropped as a duplicate (ring.c);
 *  - a receiver dies taking from the backlog (QUEUED -> PUBLISHING(it)
 *    -> TAKEN(it)): as above, or as a dead consumer's chunk;
 *  - a receiver dies holding a batch: the records it had not done with
 *    are redelivered in an at-least-once queue; in an at-most-once queue
 *    what it had been handed is dropped (counted) and the rest goes to
 *    others (ring.c, batch_leftover);
 *  - the daemon dies: the backlog is in the ring and survives it.
 * Without crashes, tests/model/backlog.pml models the protocol in spin
 * (t_model.sh checks it): per-sender order, no receiver asleep beside a
 * waiting message, and the bell readable while the backlog is not empty.
 * Untrusted input: everything here is read from shared memory a client
 * may have scribbled on; level indexes, cursors and counts are checked or
 * clamped, every walk is bounded by the chunks the data area can hold,
 * and a header that fails a check marks the ring corrupt (-EBADMSG).
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "backlog.h"
#include "ring_impl.h"
#include "util.h"

/* Take n from a counter a client may have spoiled, never below 0. */
static void sub_clamped(_Atomic uint64_t *ctr, uint64_t n)
{
	uint64_t v = atomic_load_explicit(ctr, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(ctr, &v, v > n ? v - n : 0, memory_order_release,
	                                              memory_order_relaxed))
		;
}

/* The bell: the queue's eventfd, readable while the backlog is not
 * empty, so that ipcq_fd() polls readable when messages wait beyond an
 * empty window.  Rung and silenced under the lock, at the transitions. */
static void bell_ring(const struct ring *r)
{
	eventfd_level(r->bell, true);
}

static void bell_silence(const struct ring *r)
{
	eventfd_level(r->bell, false);
}

/* The bell follows the queue's backlog, every lane's with its own ring's
 * (backlog_queue_busy).  A lane's lock guards its own count alone, so a
 * silence is checked after it: a sender that counts its message after
 * the check rings after it too. */
static void bell_silence_checked(const struct ring *r)
{
	bell_silence(r);
	atomic_thread_fence(memory_order_seq_cst);
	if (backlog_queue_busy(r))
		bell_ring(r);
}

void backlog_silence_idle_bell(struct ring *r)
{
	struct timespec dl = deadline_after(CLOCK_MONOTONIC, RING_LOCK_GRACE_MS);

	if (ring_lock_until(r, &dl) < 0)
		return;
	if (!backlog_queue_busy(r))
		bell_silence_checked(r);
	ring_unlock(r);
}

int window_put(const struct ring *r, mqd_t mq, const void *msg, size_t len, unsigned prio)
{
	/* a deadline long past: the kernel never waits */
	static const struct timespec past = { 0, 0 };

	window_counted(r, 1);
	if (mq_timedsend(mq, msg, len, prio, &past) == 0)
		return 0;
	window_counted(r, -1);
	return errno == ETIMEDOUT || errno == EAGAIN ? -EAGAIN : -errno;
}

/* Under the lock: n messages joined the backlog / left it (a lane's
 * count them in its queue's lanes_backlog too). */
static void backlog_add_locked(struct ring *r, uint64_t n)
{
	bool was_empty = atomic_fetch_add_explicit(&r->hdr->backlog, n, memory_order_seq_cst) == 0;

	if (r->q != r->hdr)
		was_empty = atomic_fetch_add_explicit(&r->q->lanes_backlog, n, memory_order_seq_cst) == 0;
	if (was_empty)
		bell_ring(r);
}

static void backlog_sub_locked(struct ring *r, uint64_t n)
{
	sub_clamped(&r->hdr->backlog, n);
	if (r->q != r->hdr)
		sub_clamped(&r->q->lanes_backlog, n);
	if (!backlog_queue_busy(r))
		bell_silence_checked(r);
}

/* Under the lock: a batch given back joined the backlog (+1) or left it. */
static void returned_add_locked(struct ring *r, int n)
{
	_Atomic uint32_t *ctr[2] = { &r->hdr->returned, r->q != r->hdr ? &r->q->lanes_returned : NULL };

	for (unsigned i = 0; i < 2 && ctr[i]; i++) {
		if (n > 0)
			atomic_fetch_add_explicit(ctr[i], 1, memory_order_relaxed);
		else if (atomic_load_explicit(ctr[i], memory_order_relaxed))
			atomic_fetch_sub_explicit(ctr[i], 1, memory_order_relaxed);
	}
}

/* The level of priority prio: its own, else a free one, else (all in use
 * by other priorities) the nearest, the higher one on a tie. */
static unsigned level_for(struct ring_hdr *h, unsigned prio)
{
	unsigned best = 0, unused = RING_LEVELS;
	uint64_t best_dist = UINT64_MAX;

	for (unsigned i = 0; i < RING_LEVELS; i++) {
		struct ring_level *l = &h->levels[i];
		uint64_t dist;

		if (l->chunks == 0) {
			if (unused == RING_LEVELS)
				unused = i;
			continue;
		}
		if (l->prio == prio)
			return i;
		dist = l->prio > prio ? 2 * (uint64_t)(l->prio - prio) : 2 * (uint64_t)(prio - l->prio) + 1;
		if (dist < best_dist) {
			best_dist = dist;
			best = i;
		}
	}
	if (unused < RING_LEVELS) {
		h->levels[unused].prio = prio;
		h->levels[unused].cursor = UINT64_MAX;
		return unused;
	}
	return best;
}

/* The level to serve first, or RING_LEVELS + 1 when all are empty:
 * batches given back first (with returned), then by priority. */
#define NO_LEVEL (RING_LEVELS + 1)
static unsigned top_level(const struct ring_hdr *h, bool returned)
{
	unsigned top = NO_LEVEL;

	if (returned && h->levels[RING_RETURNED].chunks)
		return RING_RETURNED;
	for (unsigned i = 0; i < RING_LEVELS; i++)
		if (h->levels[i].chunks && (top == NO_LEVEL || h->levels[i].prio > h->levels[top].prio))
			top = i;
	return top;
}

bool backlog_top(const struct ring *r, uint32_t *prio, uint64_t *ticket)
{
	bool any = false;

	for (unsigned i = 0; i < RING_LEVELS; i++) {
		const volatile struct ring_level *l = &r->hdr->levels[i];
		uint32_t p = l->prio;
		uint64_t t = l->head;

		if (l->chunks && (!any || p > *prio || (p == *prio && t < *ticket))) {
			*prio = p;
			*ticket = t;
			any = true;
		}
	}
	return any;
}

/* Under the lock: the oldest QUEUED chunk of level lv, at *pos; NULL when
 * there is none (or -EBADMSG through *err for a header that fails its
 * checks).  Headers between tail and head do not change under the lock
 * except their words: new chunks are laid only by its holder. */
static struct ring_chunk *find_queued(struct ring *r, unsigned lv, uint64_t *pos, int *err)
{
	struct ring_hdr *h = r->hdr;
	uint64_t head = atomic_load_explicit(&r->sp->head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&r->sp->tail, memory_order_acquire);
	uint64_t p = h->levels[lv].cursor, steps = r->data_size / RING_ALIGN + 1;
	bool from_tail = false;

	*err = 0;
	if (!ring_positions_valid(r, head, tail)) {
		*err = -EBADMSG;
		return NULL;
	}
	if (p < tail || p > head || p % RING_ALIGN) {
		p = tail;
		from_tail = true;
	}
	while (p < head && steps--) {
		struct ring_chunk *c = ring_chunk_at(r, p);
		uint64_t w = atomic_load_explicit(&ring_cs(r, c)->word, memory_order_acquire);
		uint64_t size = c->size;

		if (size < RING_ALIGN || size % RING_ALIGN || size > head - p || p % r->data_size + size > r->data_size ||
		    c->magic != RING_CHUNK_MAGIC) {
			/* the newest batch, left longer than head by a grower that
			 * died: a receive-only client cannot repair head; the next
			 * sender or the daemon's sweep will */
			if (!r->writable && p == r->sp->last && w == RING_WORD(RING_QUEUED, 0, c->gen) &&
			    size > head - p && size % RING_ALIGN == 0 && p % r->data_size + size <= r->data_size &&
			    c->magic == RING_CHUNK_MAGIC) {
				*err = -EAGAIN;
				return NULL;
			}
			/* a cursor a client set between chunks: walk from the tail once */
			if (!from_tail) {
				p = atomic_load_explicit(&r->sp->tail, memory_order_acquire);
				from_tail = true;
				continue;
			}
			*err = -EBADMSG;
			return NULL;
		}
		if (w == RING_WORD(RING_QUEUED, 0, c->gen) && ring_cs(r, c)->level == lv) {
			*pos = p;
			return c;
		}
		p += size;
	}
	h->levels[lv].cursor = p;
	return NULL;
}

/* Under the lock: a chunk of this process (RESERVED, or PUBLISHING when
 * its send found the window full, or TAKEN when given back) joins the
 * backlog with its n messages, in level lv.  The counters move before the
 * word says QUEUED, so a crash between leaves them high, which heals (see
 * top). */
static void queue_locked(struct ring *r, struct ring_chunk *c, uint64_t pos, unsigned n, unsigned lv)
{
	struct ring_hdr *h = r->hdr;
	struct ring_level *l = &h->levels[lv];

	ring_cs(r, c)->level = (uint8_t)lv;
	if (l->cursor > pos)
		l->cursor = pos;
	/* a lane's chunk takes a ticket of the queue's: receivers take the
	 * oldest of the lanes' first (batches given back are served first,
	 * and a receiver cannot write the chunk's header) */
	if (r->q != r->hdr && lv != RING_RETURNED) {
		c->ticket = atomic_fetch_add_explicit(&r->q->tickets, 1, memory_order_relaxed);
		if (!l->chunks || c->ticket < l->head)
			l->head = c->ticket;
	}
	l->chunks++;
	if (lv == RING_RETURNED)
		returned_add_locked(r, 1);
	backlog_add_locked(r, n);
	atomic_store_explicit(&ring_cs(r, c)->word, RING_WORD(RING_QUEUED, 0, c->gen), memory_order_release);
}

/* Under the lock: chunk c at pos left the backlog with its messages. */
static void dequeued_locked(struct ring *r, struct ring_chunk *c, uint64_t pos, unsigned n)
{
	unsigned lv = ring_cs(r, c)->level <= RING_RETURNED ? ring_cs(r, c)->level : 0;
	struct ring_level *l = &r->hdr->levels[lv];

	if (l->cursor <= pos)
		l->cursor = pos + c->size;
	if (l->chunks)
		l->chunks--;
	/* a lane's level whose oldest chunk left: the next one's ticket (the
	 * walk starts at the cursor, just past it, and is bounded) */
	if (r->q != r->hdr && lv != RING_RETURNED && l->chunks) {
		uint64_t next;
		int err;
		const struct ring_chunk *nc = find_queued(r, lv, &next, &err);

		l->head = nc ? nc->ticket : UINT64_MAX;
	}
	if (lv == RING_RETURNED)
		returned_add_locked(r, -1);
	backlog_sub_locked(r, n);
}

/* Under the lock: the next chunk to serve, marked PUBLISHING by this
 * process (so if it dies now, the daemon sends its descriptor again);
 * NULL when the backlog is empty. */
static struct ring_chunk *claim_next_locked(struct ring *r, bool returned, uint64_t *pos, int *err)
{
	struct ring_hdr *h = r->hdr;

	*err = 0;
	/* each round either empties a level or finds a chunk whose word moved
	 * meanwhile (the daemon purges without the lock): bounded either way */
	for (unsigned rounds = 0; rounds < 4 * RING_LEVELS; rounds++) {
		unsigned lv = top_level(h, returned);
		struct ring_chunk *c;
		uint64_t w;

		if (lv == NO_LEVEL) {
			/* every level empty: so is the backlog, whatever its count
			 * says (unless batches given back wait for a receiver) */
			if (!h->levels[RING_RETURNED].chunks) {
				atomic_store_explicit(&h->backlog, 0, memory_order_relaxed);
				if (!backlog_queue_busy(r))
					bell_silence_checked(r);
			}
			return NULL;
		}
		c = find_queued(r, lv, pos, err);
		if (*err)
			return NULL;
		if (!c) {
			h->levels[lv].chunks = 0;
			if (lv == RING_RETURNED)
				atomic_store_explicit(&h->returned, 0, memory_order_relaxed);
			continue;
		}
		w = RING_WORD(RING_QUEUED, 0, c->gen);
		if (atomic_compare_exchange_strong_explicit(&ring_cs(r, c)->word, &w, RING_WORD(RING_PUBLISHING, r->self, c->gen),
		                                            memory_order_acquire, memory_order_relaxed))
			return c;
	}
	return NULL;
}

static void describe_chunk(const struct ring *r, const struct ring_chunk *c, uint64_t pos, struct proto_ring_desc *d)
{
	struct ring_ref ref = { .pos = pos, .offset = pos % r->data_size, .gen = c->gen, .len = c->len, .lane = r->lane };

	ring_describe(&ref, atomic_load_explicit(&ring_cs(r, c)->handed, memory_order_relaxed) ? PROTO_MSGF_REDELIVERED : 0, d);
}

/* Under the lock: move what fits from the backlog into the window.
 * Once a move found the window full, senders do not try again (a system
 * call each) until a receiver says it took from it or is about to sleep
 * on it (backlog_window_drained): the receiver clears the hint and then
 * reads backlog, the sender counts its message in backlog and then reads
 * the hint, both sequentially consistent, so either the receiver sees the
 * backlog (and takes from it) or the sender sees the hint cleared (and
 * moves). */
static void move_locked(struct ring *r, const struct backlog_window *w)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (!w || !w->send || atomic_load_explicit(&r->q->window_full, memory_order_seq_cst) ||
	    !backlog_wakes_by_window(r, w))
		return;
	/* (with a bell, the one that wakes a receiver asleep is enough) */
	for (unsigned moved = 0; moved < RING_MOVE_MAX && backlog_busy(r) && (!moved || backlog_wakes_by_window(r, w));
	     moved++) {
		struct proto_ring_desc d;
		struct ring_chunk *c;
		uint64_t pos;
		unsigned n;
		int err;

		/* batches given back are older than the window: receivers take
		 * them from the backlog, ahead of it */
		c = claim_next_locked(r, false, &pos, &err);
		if (!c)
			return;
		n = ring_chunk_msgs(r, c);
		describe_chunk(r, c, pos, &d);
		if (w->send(w->ctx, &d, sizeof(d), c->prio) < 0) {
			/* the window is full: back to the backlog, as it was */
			atomic_store_explicit(&ring_cs(r, c)->word, RING_WORD(RING_QUEUED, 0, c->gen), memory_order_release);
			atomic_store_explicit(&r->q->window_full, 1, memory_order_relaxed);
			return;
		}
		dequeued_locked(r, c, pos, n);
		atomic_fetch_add_explicit(&r->q->window_seq, 1, memory_order_release);
		ring_published(r, &(struct ring_ref){ .pos = pos, .offset = d.offset, .gen = d.gen });
	}
}

int backlog_submit(struct ring *r, const struct ring_ref *ref, unsigned prio, unsigned nmsgs,
                   const struct backlog_window *w, int timeout_ms, unsigned flags)
{
	struct ring_chunk *c = ring_chunk_at(r, ref->pos);
	int ret;

	c->prio = prio;
	ring_depth_add(r, nmsgs);
	if (!backlog_busy(r) && w && w->send && backlog_wakes_by_window(r, w)) {
		struct proto_ring_desc d;

		ring_publishing(r, ref, prio);
		ring_describe(ref, 0, &d);
		ret = w->send(w->ctx, &d, sizeof(d), prio);
		if (ret == 0) {
			ring_published(r, ref);
			return 0;
		}
		if (ret != -EAGAIN)
			goto fail;
	}
	/* timeout 0 may wait a moment for the lock, as ring_with_room does */
	ret = ring_lock_ms(r, timeout_ms);
	if (ret < 0) {
		ret = ret == -ETIMEDOUT && timeout_ms == 0 ? -EAGAIN : ret;
		if (flags & BACKLOG_KEEP_ON_TIMEOUT) {
			/* the loan stays the caller's, RESERVED as it was */
			ring_depth_add(r, -(int64_t)nmsgs);
			atomic_store_explicit(&c->sealed, 0, memory_order_relaxed);
			atomic_store_explicit(&ring_cs(r, c)->word, RING_WORD(RING_RESERVED, r->self, c->gen), memory_order_release);
			return ret;
		}
		goto fail;
	}
	ring_seal(c);
	queue_locked(r, c, ref->pos, nmsgs, level_for(r->hdr, prio));
	move_locked(r, w);
	ring_unlock(r);
	return 0;
fail:
	ring_depth_add(r, -(int64_t)nmsgs);
	ring_cancel(r, ref);
	return ret;
}

struct append_args {
	const void *buf;
	uint32_t len;
	unsigned prio;
	unsigned batch_max;
	uint64_t expires;
};

static void put_record(unsigned char *at, const void *buf, uint32_t len)
{
	struct ring_rec rec = { .len = len };

	memcpy(at, &rec, sizeof(rec));
	if (len)
		memcpy(at + sizeof(rec), buf, len);
}

/* Under the lock: grow the newest chunk by one record, if it is a batch
 * of this priority and expiry in the backlog with room; -EAGAIN if it is
 * not.  Expiries are in milliseconds, so a burst shares them. */
static int grow_newest_locked(struct ring *r, const struct append_args *a)
{
	struct ring_hdr *h = r->hdr;
	uint64_t ds = r->data_size, rec = ring_rec_size(a->len), newsize, extra;
	uint64_t head = atomic_load_explicit(&r->sp->head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&r->sp->tail, memory_order_acquire);
	uint64_t last = r->sp->last;
	struct ring_chunk *c;

	if (last < tail || last >= head || last % RING_ALIGN)
		return -EAGAIN;
	c = ring_chunk_at(r, last);
	if (atomic_load_explicit(&ring_cs(r, c)->word, memory_order_acquire) != RING_WORD(RING_QUEUED, 0, c->gen) ||
	    c->magic != RING_CHUNK_MAGIC || c->pos != last || c->kind != RING_KIND_BATCH || c->prio != a->prio ||
	    c->expires != a->expires ||
	    c->count == 0 || c->count >= a->batch_max || c->count >= RING_BATCH_MAX || c->size != head - last ||
	    atomic_load_explicit(&ring_cs(r, c)->handed, memory_order_relaxed) != 0 || c->len > r->max_payload - rec)
		return -EAGAIN;
	newsize = ring_chunk_size_for(c->len + rec);
	extra = newsize - c->size;
	if (last % ds + newsize > ds || extra > ds - (head - tail))
		return -EAGAIN;
	put_record((unsigned char *)(c + 1) + c->len, a->buf, a->len);
	if (extra) {
		c->size = newsize;
		atomic_store_explicit(&r->sp->head, head + extra, memory_order_release);
		ring_bump_hwm(h, head + extra - tail);
	}
	c->len += (uint32_t)rec;
	c->count++;
	backlog_add_locked(r, 1);
	return 0;
}

static int try_append(struct ring *r, void *arg)
{
	const struct append_args *a = arg;
	uint64_t rec = ring_rec_size(a->len);
	struct ring_chunk *c;
	struct ring_ref ref;
	int ret = grow_newest_locked(r, a);

	if (ret != -EAGAIN)
		return ret;
	ret = ring_try_reserve_locked(r, ring_chunk_size_for(rec), rec, &ref);
	if (ret < 0)
		return ret;
	c = ring_chunk_at(r, ref.pos);
	c->kind = RING_KIND_BATCH;
	c->count = 1;
	c->prio = a->prio;
	c->expires = a->expires;
	put_record(ref.payload, a->buf, a->len);
	ring_seal(c);
	queue_locked(r, c, ref.pos, 1, level_for(r->hdr, a->prio));
	return 0;
}

int backlog_append(struct ring *r, const void *buf, size_t len, unsigned prio, uint64_t expires, unsigned batch_max,
                   const struct backlog_window *w, int timeout_ms)
{
	struct append_args a = {
		.buf = buf, .len = (uint32_t)len, .prio = prio, .batch_max = batch_max, .expires = expires
	};
	int ret;

	if (len > RING_REC_MAX || ring_rec_size(len) > r->max_payload)
		return -EMSGSIZE;
	ret = ring_with_room(r, timeout_ms, try_append, &a);
	if (ret < 0)
		return ret;
	ring_depth_add(r, 1);
	move_locked(r, w);
	ring_unlock(r);
	return 0;
}

int backlog_take(struct ring *r, struct ring_ref *out, int timeout_ms, unsigned flags, uint64_t window_seq,
                 const struct backlog_window *w)
{
	int ret;

	if (!backlog_busy(r))
		return -EAGAIN;
	ret = ring_lock_ms(r, timeout_ms);
	if (ret < 0)
		return ret == -ETIMEDOUT ? -EAGAIN : ret;
	/* a sender killed growing the newest batch: its senders may all be
	 * gone, and the backlog must drain all the same */
	ring_repair_newest(r);
	ret = -EAGAIN;
	for (unsigned tries = 0; tries < RING_LEVELS + 1; tries++) {
		struct proto_ring_desc d;
		struct ring_chunk *c;
		uint64_t pos;
		unsigned n;

		if ((flags & BACKLOG_RETURNED) && !r->hdr->levels[RING_RETURNED].chunks)
			break;
		/* a sender moved messages into the window while we waited for
		 * the lock: they are older than the backlog, take them first */
		if (!(flags & BACKLOG_RETURNED) &&
		    (atomic_load_explicit(&r->q->window_seq, memory_order_acquire) != window_seq ||
		     (w && w->waiting && w->waiting(w->ctx) > 0))) {
			ret = -EINPROGRESS;
			break;
		}
		c = claim_next_locked(r, true, &pos, &ret);
		if (!c) {
			ret = ret ? ret : -EAGAIN;
			break;
		}
		n = ring_chunk_msgs(r, c);
		describe_chunk(r, c, pos, &d);
		dequeued_locked(r, c, pos, n);
		/* PUBLISHING by us -> TAKEN by us, with every check a
		 * descriptor from the mq gets */
		ret = ring_take(r, &d, out);
		if (ret != -ESTALE)
			break;
	}
	/* The bell wakes one receiver asleep at a time (recv.c): one that
	 * takes from a backlog that still holds more, while others sleep,
	 * wakes the next, so that a burst is shared among them. */
	if (ret == 0 && backlog_queue_busy(r) && atomic_load_explicit(&r->q->sleepers, memory_order_seq_cst))
		bell_ring(r);
	ring_unlock(r);
	return ret;
}

int backlog_give_back(struct ring *r, const struct ring_ref *ref, uint64_t done)
{
	struct ring_chunk *c = ring_chunk_at(r, ref->pos);
	struct ring_cstate *cs = ring_cs(r, c);
	struct timespec dl = deadline_after(CLOCK_MONOTONIC, 1000);
	bool batch = ref->kind == RING_KIND_BATCH;
	uint64_t left = 1, again = 1, w;
	int ret;

	if (batch && (ref->count == 0 || ref->count > RING_BATCH_MAX))
		return -EINVAL;
	if (batch) {
		atomic_fetch_or_explicit(&cs->done, done, memory_order_release);
		left = ring_batch_mask(ref->count) & ~atomic_load_explicit(&cs->done, memory_order_acquire);
		if (!left) {
			ring_release(r, ref);
			return 0;
		}
		again = left & atomic_load_explicit(&cs->handed, memory_order_relaxed);
	}
	/* if the lock cannot be had, the chunk stays ours until this process
	 * exits, and the daemon gives it back then */
	ret = ring_lock_until(r, &dl);
	if (ret < 0)
		return ret;
	/* still ours?  The daemon takes back a lease that ran out (ring.c):
	 * then another receiver has it, and nothing goes back from here */
	w = RING_WORD(RING_TAKEN, r->self, ref->gen);
	if (!atomic_compare_exchange_strong_explicit(&cs->word, &w, RING_WORD(RING_PUBLISHING, r->self, ref->gen),
	                                             memory_order_acq_rel, memory_order_relaxed)) {
		ring_unlock(r);
		return 0;
	}
	if (!batch)
		atomic_store_explicit(&cs->handed, 1, memory_order_relaxed); /* its next taker: redelivered */
	/* what a receiver had and gives back unacknowledged goes again */
	atomic_fetch_add_explicit(&r->q->redelivered, batch ? (uint64_t)__builtin_popcountll(again) : 1,
	                          memory_order_relaxed);
	ring_depth_add(r, batch ? __builtin_popcountll(again) : 1);
	queue_locked(r, c, ref->pos, batch ? (unsigned)__builtin_popcountll(left) : 1, RING_RETURNED);
	ring_unlock(r);
	return 0;
}
