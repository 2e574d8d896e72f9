/* SPDX-License-Identifier: Apache-2.0 */
/*
 * recv.c - libipcq's receive paths.
 *
 * A receiver takes from the window (the queue's mq) first; when the
 * window is empty and the backlog is not, it takes the backlog's next
 * chunk itself (backlog.c).  What it takes is an inline message, a ring
 * chunk with one message, or a batch: a batch is held by the handle and
 * handed out a message at a time (at most prefetch messages ahead, so
 * work stays shared among receivers); its chunk is released when every
 * message of it is.
 *
 * Receiving from the mq goes through a receive slot: each receiving
 * handle claims a home slot in the ring at open (so receivers are counted
 * and bounded), and a second thread receiving on the same handle at the
 * same time borrows a free slot for the duration of the call.  The
 * message itself is received into this process's memory, a buffer of the
 * handle's own that stays busy while an inline view points into it (which
 * buffers are busy the handle alone decides: a slot's owner word is
 * shared memory any receiver can rewrite): what the mq gave a receiver is
 * what it hands out, whatever other clients write into shared memory.  A
 * ring descriptor stays in that buffer, which the daemon reads too
 * (daemon/rbuf.c), until its chunk is taken: if this process dies in
 * between, the daemon sends it again (and if it dies before the copy, the daemon's
 * sweep finds the chunk orphaned, ring.c).  An inline message is lost
 * then, which is why at-least-once queues carry every message in the ring
 * (send.c).
 *
 * A message's opaque_ words say what it is: opaque_[1] == 0, an inline
 * message in this handle's buffer opaque_[0] >> 32, received holding slot
 * (uint32_t)opaque_[0]; else a chunk at offset opaque_[0] (low 40 bits) of
 * generation opaque_[1] in the ring of lane (opaque_[0] >> 40) & 0xff, and
 * in the high bits the record of a batch plus one (0 for a chunk of one
 * message).
 *
 * Lanes (ring.h): in a queue whose senders each have a ring of their
 * own, a descriptor names its lane, and a receiver maps a lane the first
 * time it meets it (lane_ring, open.c); every chunk operation goes to the
 * ring of the chunk's lane (ref_ring), and a receiver looking at the
 * backlog looks at the queue's ring and then at the lanes', a different
 * lane first each time.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "ring_impl.h"

#define TOKEN_OFFSET_MASK ((1ull << PROTO_LANE_SHIFT) - 1)
#define TOKEN_LANE_SHIFT PROTO_LANE_SHIFT
#define TOKEN_LANE_MASK 0xffu
#define TOKEN_RECORD_SHIFT 48
#define TOKEN_BUF_SHIFT 32

/* A slot index, with HOME_SLOT set when it is the handle's home slot
 * (given back by clearing home_busy) rather than one borrowed from the
 * ring's free slots (given back by freeing it). */
#define HOME_SLOT 0x10000

static int slot_acquire(ipcq_queue *q)
{
	if (home_slot_mine(q) && !atomic_flag_test_and_set_explicit(&q->home_busy, memory_order_acquire))
		return q->home_slot | HOME_SLOT;
	return ring_slot_claim(&q->ring);
}

/* A receive buffer of this handle's own, busy until buf_put: its index,
 * or -EUSERS when every one is busy. */
static int buf_get(ipcq_queue *q)
{
	for (unsigned i = 0; i < RECV_BUFS; i++)
		if (!atomic_flag_test_and_set_explicit(&q->buf_busy[i], memory_order_acquire))
			return (int)i;
	return -EUSERS;
}

static void buf_put(ipcq_queue *q, int b)
{
	atomic_flag_clear_explicit(&q->buf_busy[b], memory_order_release);
}

static void slot_put(ipcq_queue *q, int handle)
{
	if (handle & HOME_SLOT) {
		atomic_flag_clear_explicit(&q->home_busy, memory_order_release);
	} else {
		ring_slot_free(&q->ring, handle);
	}
}

static ssize_t mq_get(mqd_t mq, void *buf, size_t cap, unsigned *prio, int timeout_ms)
{
	ssize_t n;

	if (timeout_ms < 0) {
		n = mq_receive(mq, buf, cap, prio);
	} else if (timeout_ms == 0) {
		/* a deadline long past: the kernel returns at once, where one
		 * of "now" arms a timer and sleeps on it */
		static const struct timespec past = { 0, 0 };

		n = mq_timedreceive(mq, buf, cap, prio, &past);
	} else {
		struct timespec dl = deadline_after(CLOCK_REALTIME, timeout_ms);

		n = mq_timedreceive(mq, buf, cap, prio, &dl);
	}
	if (n >= 0)
		return n;
	return errno == ETIMEDOUT ? timeout_error(timeout_ms) : -errno;
}

/* ---- handing messages out ---- */

/* Under recv_lock: the handle's bell (ipcq_fd) says whether it holds
 * messages.  Set once at the end of each receive call, not at every take
 * within it: a batch taken and handed out in the same call costs no
 * system call. */
void held_bell_update(ipcq_queue *q)
{
	bool want = q->nheld || q->nkept;

	if (q->held_bell < 0 || want == q->held_rung)
		return;
	eventfd_level(q->held_bell, want);
	q->held_rung = want;
}

/* The ring a chunk this handle took is in (mapped when it took it). */
static struct ring *ref_ring(ipcq_queue *q, const struct ring_ref *ref)
{
	struct ring *r = ref->lane && ref->lane <= PROTO_LANES_MAX
	                         ? atomic_load_explicit(&q->lane[ref->lane], memory_order_acquire)
	                         : NULL;

	return r ? r : &q->ring;
}

/* One message leaves the queue for this receiver. */
static void handed_out(ipcq_queue *q)
{
	struct ring *r = &q->ring;

	atomic_fetch_add_explicit(&q->nviews, 1, memory_order_relaxed);
	count_n(&r->hdr->received, 1);
	ring_depth_add(r, -1);
	/* senders may wait for depth to drop under max_depth, each in the
	 * ring it sends through (the queue's, or the lanes this handle maps) */
	if (!q->geo.max_depth)
		return;
	if (atomic_load_explicit(&r->hdr->waiters, memory_order_relaxed))
		ring_wake_room(r);
	for (uint64_t mapped = atomic_load_explicit(&q->lanes_mapped, memory_order_acquire); mapped;
	     mapped &= mapped - 1) {
		struct ring *l = atomic_load_explicit(&q->lane[__builtin_ctzll(mapped) + 1], memory_order_acquire);

		if (l && atomic_load_explicit(&l->hdr->waiters, memory_order_relaxed))
			ring_wake_room(l);
	}
}

/* Under recv_lock: the next record of a held batch, or false when it has
 * none left (the batch is then dropped from the handle). */
static bool hand_record(ipcq_queue *q, struct held_batch *hb, ipcq_msg *m)
{
	while (hb->next < hb->ref.count) {
		unsigned i = hb->next++;
		uint64_t bit = (uint64_t)1 << i;

		if (hb->skip & bit)
			continue;
		if (!ring_batch_handed(ref_ring(q, &hb->ref), hb->ref.offset, hb->ref.gen, i)) {
			hb->next = hb->ref.count; /* taken back: the rest is another's */
			return false;
		}
		*m = (ipcq_msg){ .data = hb->rec[i].data,
			         .len = hb->rec[i].len,
			         .prio = hb->ref.prio,
			         .flags = (hb->ref.handed & bit) ? IPCQ_MSG_REDELIVERED : 0,
			         .deliveries = (hb->ref.handed & bit) ? MAX(hb->ref.deliveries, 2u) : 1,
			         .opaque_ = { hb->ref.offset | (uint64_t)hb->ref.lane << TOKEN_LANE_SHIFT |
			                              ((uint64_t)(i + 1) << TOKEN_RECORD_SHIFT),
			                      hb->ref.gen } };
		handed_out(q);
		return true;
	}
	return false;
}

static bool expire_held_locked(ipcq_queue *q, struct held_batch *hb, struct taken *fin);
static void finish_batch(ipcq_queue *q, const struct taken *t);

/* A message from the batches this handle holds.  Those whose ttl ran out
 * while held are never handed out. */
static bool take_held(ipcq_queue *q, ipcq_msg *m)
{
	struct taken fin;
	bool got = false, finish = false;

	if (!q->nheld)
		return false;
	pthread_mutex_lock(&q->recv_lock);
	while (q->nheld && !got && !finish) {
		struct held_batch *hb = &q->held[q->nheld - 1];

		finish = expire_held_locked(q, hb, &fin);
		if (hb->next < hb->ref.count)
			got = hand_record(q, hb, m);
		if (hb->next >= hb->ref.count)
			q->nheld--;
	}
	pthread_mutex_unlock(&q->recv_lock);
	if (finish) {
		finish_batch(q, &fin);
		if (!got)
			return take_held(q, m); /* bounded: a batch less each time */
	}
	return got;
}

/* A growing array arr of *cap elements of size bytes, n of them in use,
 * with room for one more: arr itself, or grown (*cap updated); NULL when
 * it is full and cannot grow (arr is left as it was). */
static void *with_room(void *arr, unsigned *cap, unsigned n, size_t size)
{
	unsigned want = *cap ? 2 * *cap : 8;
	void *grown;

	if (n < *cap)
		return arr;
	grown = reallocarray(arr, want, size);
	if (grown)
		*cap = want;
	return grown;
}

/* Under recv_lock: note a chunk taken (for ipcq_close), or forget it. */
static void taken_add(ipcq_queue *q, const struct ring_ref *ref, uint64_t reject)
{
	struct taken *t = with_room(q->taken, &q->taken_cap, q->ntaken, sizeof(*t));

	/* without room it is not given back at close: the daemon does, at exit */
	if (t) {
		q->taken = t;
		q->taken[q->ntaken++] = (struct taken){ .ref = *ref, .reject = reject };
		if (reject)
			atomic_fetch_add_explicit(&q->nmasked, 1, memory_order_seq_cst);
	}
}

static struct taken *taken_find(ipcq_queue *q, const struct ring_ref *ref)
{
	for (unsigned i = q->ntaken; i-- > 0;)
		if (q->taken[i].ref.offset == ref->offset && q->taken[i].ref.gen == ref->gen &&
		    q->taken[i].ref.lane == ref->lane)
			return &q->taken[i];
	return NULL;
}

static void taken_del(ipcq_queue *q, const struct ring_ref *ref)
{
	struct taken *t = taken_find(q, ref);

	if (!t)
		return;
	if (t->requeue | t->reject)
		atomic_fetch_sub_explicit(&q->nmasked, 1, memory_order_relaxed);
	*t = q->taken[--q->ntaken];
}

/* Forget a chunk this handle took and no longer holds. */
static void forget_taken(ipcq_queue *q, const struct ring_ref *ref)
{
	pthread_mutex_lock(&q->recv_lock);
	taken_del(q, ref);
	pthread_mutex_unlock(&q->recv_lock);
}

/* Release a chunk this handle took. */
static void release_taken(ipcq_queue *q, const struct ring_ref *ref)
{
	pthread_mutex_lock(&q->recv_lock);
	taken_del(q, ref);
	pthread_mutex_unlock(&q->recv_lock);
	ring_release(ref_ring(q, ref), ref);
}

static bool chunk_expired(const struct ring_ref *ref)
{
	return ref->expires && ring_expired(ref->expires, ring_now_ms());
}

/* Messages of a chunk just taken that must not be delivered: all of it
 * when it expired, or (at-least-once) those delivered before when it was
 * delivered more than max_deliveries times.  A mask of a batch's records
 * (bit 0 alone for a chunk of one message). */
static uint64_t undeliverable(const ipcq_queue *q, const struct ring_ref *ref)
{
	uint32_t maxd = atomic_load_explicit(&q->meta->max_deliveries, memory_order_relaxed);
	uint64_t full = ref->kind == RING_KIND_BATCH ? ring_batch_mask(ref->count) & ~ref->done : 1;

	if (chunk_expired(ref))
		return full;
	if (!maxd || ref->deliveries <= maxd || !q->ring.delivery)
		return 0;
	return ref->kind == RING_KIND_BATCH ? full & ref->handed : 1;
}

/* Messages (a mask of them) of a chunk this handle took that it will not
 * deliver: they leave the depth, and are counted when they expired. */
static void undelivered(ipcq_queue *q, const struct ring_ref *ref, uint64_t msgs)
{
	int n = __builtin_popcountll(msgs);

	ring_depth_add(&q->ring, -n);
	if (chunk_expired(ref))
		count_n(&q->ring.hdr->expired, (uint64_t)n);
}

/* A chunk just taken that holds nothing to deliver: to the daemon, which
 * dead-letters or drops it (ring.c). */
static void doom_taken(ipcq_queue *q, const struct ring_ref *ref, uint64_t msgs)
{
	undelivered(q, ref, msgs);
	ring_doom(ref_ring(q, ref), ref->offset, ref->gen);
}

/* A chunk this handle took (from the window or the backlog): its message,
 * or the first of its batch, with the rest held for the next receives. */
static int deliver_chunk(ipcq_queue *q, const struct ring_ref *ref, unsigned flags, ipcq_msg *m)
{
	struct held_batch hb = { .ref = *ref, .skip = ref->done };
	uint64_t undeliv = undeliverable(q, ref);
	bool got;

	if (ref->kind != RING_KIND_BATCH && undeliv) {
		doom_taken(q, ref, 1);
		return -ESTALE;
	}
	if (ref->kind == RING_KIND_BATCH && undeliv == (ring_batch_mask(ref->count) & ~ref->done)) {
		doom_taken(q, ref, undeliv);
		return -ESTALE;
	}
	if (ref->kind != RING_KIND_BATCH) {
		*m = (ipcq_msg){ .data = ref->payload,
			         .len = ref->len,
			         .prio = ref->prio,
			         .flags = flags | (ref->deliveries > 1 ? IPCQ_MSG_REDELIVERED : 0),
			         .deliveries = MAX(ref->deliveries, 1u),
			         .opaque_ = { ref->offset | (uint64_t)ref->lane << TOKEN_LANE_SHIFT, ref->gen } };
		pthread_mutex_lock(&q->recv_lock);
		taken_add(q, ref, 0);
		pthread_mutex_unlock(&q->recv_lock);
		handed_out(q);
		return 0;
	}
	if (ring_batch_records(ref_ring(q, ref), ref, hb.rec) < 0) {
		/* records that do not fit their chunk: a sender's forgery */
		count_n(&q->ring.hdr->rejected, 1);
		ring_release(ref_ring(q, ref), ref);
		return -EBADMSG;
	}
	/* those it must not deliver wait, not done, for the rest: then the
	 * chunk goes to the daemon (finish_batch) */
	hb.skip |= undeliv;
	undelivered(q, ref, undeliv);
	pthread_mutex_lock(&q->recv_lock);
	taken_add(q, ref, undeliv);
	got = hand_record(q, &hb, m);
	if (hb.next < hb.ref.count) {
		/* the rest is held for the next receives on the handle; never
		 * given back here, where one of its messages is in a view.
		 * Without memory to hold them, the rest stays taken by this
		 * process until it exits, and the daemon gives it to others */
		struct held_batch *h = with_room(q->held, &q->held_cap, q->nheld, sizeof(*h));

		if (h) {
			q->held = h;
			q->held[q->nheld++] = hb;
		}
	}
	pthread_mutex_unlock(&q->recv_lock);
	if (!got) {
		/* every record was done with before (a redelivery raced) */
		release_taken(q, ref);
		return -ESTALE;
	}
	return 0;
}

#define SKIPPED 1

/* A receiver maps the lanes the daemon made before it takes from the
 * window, so that what it finds there names a lane it has: the daemon is
 * needed to map one, and may be away (restarting) when a message of a
 * lane made meanwhile comes (see park). */
static void sync_lanes(ipcq_queue *q)
{
	uint64_t want = lanes_made(q) & ~atomic_load_explicit(&q->lanes_mapped, memory_order_acquire);

	for (unsigned id = 1; want && id <= PROTO_LANES_MAX; id++)
		if (want & (1ull << (id - 1)))
			lane_ring(q, id);
}

/* The ring descriptor in receive buffer b names a lane this handle
 * cannot map now (the daemon is away): it stays there, where the daemon
 * finds it if this process dies, and is taken at a later call (take_parked). */
static void park(ipcq_queue *q, int b, unsigned prio)
{
	pthread_mutex_lock(&q->recv_lock);
	q->parked[q->nparked] = (struct parked){ .buf = b, .prio = prio };
	atomic_store_explicit(&q->nparked, q->nparked + 1, memory_order_release);
	pthread_mutex_unlock(&q->recv_lock);
}

static int take_desc(ipcq_queue *q, unsigned char *buf, unsigned prio, ipcq_msg *m);

/* A parked descriptor whose lane maps now, taken (SKIPPED when it was a
 * duplicate); -EAGAIN when none does. */
static int take_parked(ipcq_queue *q, ipcq_msg *m)
{
	struct parked p = { .buf = -1 };
	struct proto_msg_hdr h;
	int r;

	if (!atomic_load_explicit(&q->nparked, memory_order_acquire))
		return -EAGAIN;
	pthread_mutex_lock(&q->recv_lock);
	for (unsigned i = 0; i < q->nparked; i++) {
		memcpy(&h, q->buf[q->parked[i].buf], sizeof(h));
		if (lane_ring(q, h.lane)) {
			p = q->parked[i];
			q->parked[i] = q->parked[q->nparked - 1];
			atomic_store_explicit(&q->nparked, q->nparked - 1, memory_order_release);
			break;
		}
	}
	pthread_mutex_unlock(&q->recv_lock);
	if (p.buf < 0)
		return -EAGAIN;
	r = take_desc(q, q->buf[p.buf], p.prio, m);
	buf_put(q, p.buf);
	return r;
}

/* Take the chunk of the ring descriptor in buf (a receive buffer), and
 * hand out its message (or the first of its batch). */
static int take_desc(ipcq_queue *q, unsigned char *buf, unsigned prio, ipcq_msg *m)
{
	struct proto_ring_desc desc;
	struct ring_ref ref;
	struct ring *lr;
	unsigned flags;
	int r;

	memcpy(&desc, buf, sizeof(desc));
	flags = (desc.hdr.flags & PROTO_MSGF_REDELIVERED) ? IPCQ_MSG_REDELIVERED : 0;
	lr = lane_ring(q, desc.hdr.lane);
	/* the daemon finds the descriptor in the buffer if we die before
	 * the take; once the chunk is ours, it must not */
	r = lr ? ring_take(lr, &desc, &ref) : -EBADMSG;
	buf[0] = 0;
	if (r < 0) {
		/* a duplicate left by a crash recovery is expected; anything
		 * else is reported, and both are counted */
		count_n(&q->ring.hdr->rejected, 1);
		if (r == -ESTALE && (desc.hdr.flags & (PROTO_MSGF_RESENT | PROTO_MSGF_REDELIVERED)))
			return SKIPPED;
		return r;
	}
	ref.prio = prio;
	r = deliver_chunk(q, &ref, flags, m);
	return r == -ESTALE ? SKIPPED : r;
}

/* Take the next message off the mq into a slot and resolve it.  Returns
 * SKIPPED for a message that is not one (a duplicate descriptor left by a
 * crash recovery, a nudge, one parked). */
static int recv_window(ipcq_queue *q, ipcq_msg *m, int timeout_ms)
{
	union {
		struct proto_msg_hdr hdr;
		struct proto_ring_desc desc;
	} msg;
	unsigned char *buf;
	struct proto_msg_hdr h;
	unsigned prio = 0, flags;
	ssize_t n;
	int idx, b, kind, r;

	if (lanes_made(q))
		sync_lanes(q);
	idx = slot_acquire(q);
	if (idx < 0)
		return idx;
	b = buf_get(q);
	if (b < 0) {
		slot_put(q, idx);
		return b;
	}
	buf = q->buf[b];
	n = mq_get(q->mq, buf, q->geo.msg_size, &prio, timeout_ms);
	if (n < 0) {
		buf_put(q, b);
		slot_put(q, idx);
		return (int)n;
	}
	window_taken(&q->ring, 1);
	memcpy(&msg, buf, MIN((size_t)n, sizeof(msg)));
	kind = proto_msg_check(&msg, (size_t)n);
	h = msg.hdr;
	flags = (h.flags & PROTO_MSGF_REDELIVERED) ? IPCQ_MSG_REDELIVERED : 0;
	if (kind == PROTO_MSG_INLINE) {
		*m = (ipcq_msg){ .data = buf + sizeof(h),
			         .len = h.len,
			         .prio = prio,
			         .flags = flags,
			         .deliveries = 1,
			         .opaque_ = { (uint32_t)idx | (uint64_t)b << TOKEN_BUF_SHIFT, 0 } };
		handed_out(q);
		return 0;
	}
	if (kind == PROTO_MSG_RING) {
		/* a lane the daemon made that this handle cannot map now */
		if (h.lane && h.lane <= PROTO_LANES_MAX && (lanes_made(q) & (1ull << (h.lane - 1))) &&
		    !lane_ring(q, h.lane)) {
			slot_put(q, idx);
			park(q, b, prio);
			return SKIPPED;
		}
		r = take_desc(q, buf, prio, m);
		buf_put(q, b);
		slot_put(q, idx);
		return r;
	} else if (kind == PROTO_MSG_CLOSED) {
		/* the daemon sets the flag before it sends CLOSED: without it,
		 * the message is a sender's forgery, not a deletion */
		r = deleted(q) ? -EIDRM : -EBADMSG;
	} else if (kind == PROTO_MSG_NUDGE) {
		r = SKIPPED; /* look at the backlog */
	} else {
		r = kind;
	}
	buf_put(q, b);
	slot_put(q, idx);
	if (r < 0 && r != -EIDRM)
		count_n(&q->ring.hdr->rejected, 1);
	return r;
}

/* How many messages the window holds (backlog_take asks, under the lock). */
static long window_waiting(void *ctx)
{
	const ipcq_queue *q = ctx;
	struct mq_attr attr;

	if (!window_maybe_busy(&q->ring))
		return 0; /* the window's count says so (backlog.h) */
	return mq_getattr(q->mq, &attr) < 0 ? -errno : attr.mq_curmsgs;
}

/* A look at the window without waiting, unless its count says it is
 * empty (backlog.h) and the kernel did not just say otherwise (ask). */
static int look_at_window(ipcq_queue *q, ipcq_msg *m, bool ask)
{
	if (!ask && !window_maybe_busy(&q->ring))
		return -EAGAIN;
	return recv_window(q, m, 0);
}

/* The lane whose backlog a receiver takes from next: of those whose
 * backlog holds messages (batches given back, with BACKLOG_RETURNED), the
 * one whose waiting messages have the highest priority, and of those the
 * oldest (backlog_top: hints read without a lock), the first from start
 * on a tie; NULL when none is left to try (tried: the lanes already
 * tried, a bit each).  The queue's own ring holds no chunk when it has
 * lanes. */
static struct ring *next_backlog(ipcq_queue *q, uint64_t lanes, unsigned start, unsigned flags, uint64_t *tried)
{
	unsigned rot = start % 64;
	uint64_t left = lanes & ~*tried;
	/* the lanes left, from lane start + 1 round */
	uint64_t order = rot ? (left >> rot) | (left << (64 - rot)) : left;
	struct ring *best = NULL;
	uint32_t best_prio = 0;
	uint64_t best_ticket = UINT64_MAX;

	while (order) {
		unsigned bit = (__builtin_ctzll(order) + rot) % 64;
		struct ring *ring = lane_ring(q, bit + 1);
		uint32_t prio = 0;
		uint64_t ticket = UINT64_MAX;

		order &= order - 1;
		if (!ring || !((flags & BACKLOG_RETURNED) ? backlog_returned(ring) : backlog_busy(ring))) {
			*tried |= 1ull << bit;
			continue;
		}
		if (!(flags & BACKLOG_RETURNED) && !backlog_top(ring, &prio, &ticket)) {
			prio = 0;
			ticket = UINT64_MAX;
		}
		if (!best || prio > best_prio || (prio == best_prio && ticket < best_ticket)) {
			best = ring;
			best_prio = prio;
			best_ticket = ticket;
		}
	}
	if (best)
		*tried |= 1ull << (best->lane - 1);
	return best;
}

/* From the backlog: -EAGAIN if it is empty, -EINPROGRESS if the window
 * holds older messages (see backlog_take).  In a queue with lanes, from
 * the lane whose waiting messages have the highest priority, lanes of the
 * same taking turns (next_backlog).  A lane that fails its checks (its
 * sender wrote garbage into it) is passed over: the daemon takes it out
 * of the queue at its next sweep. */
static int recv_backlog(ipcq_queue *q, ipcq_msg *m, int timeout_ms, unsigned flags, uint64_t window_seq)
{
	const struct backlog_window w = { .waiting = window_waiting, .ctx = q };
	uint64_t lanes = lanes_made(q), tried = 0;
	unsigned start = lanes ? atomic_fetch_add_explicit(&q->lane_turn, 1, memory_order_relaxed) : 0;
	struct ring_ref ref;
	struct ring *ring;
	int r = -EAGAIN;

	if (!lanes) {
		r = backlog_take(&q->ring, &ref, timeout_ms, flags, window_seq, &w);
	} else {
		while ((r == -EAGAIN || r == -EBADMSG) && (ring = next_backlog(q, lanes, start, flags, &tried)))
			r = backlog_take(ring, &ref, timeout_ms, flags, window_seq, &w);
		if (r == -EBADMSG)
			r = -EAGAIN;
	}
	if (r < 0)
		return r;
	r = deliver_chunk(q, &ref, 0, m);
	return r == -ESTALE ? SKIPPED : r;
}

/* A message an earlier ipcq_recv could not fit in its buffer (the oldest
 * first: several threads may each have kept one). */
static bool take_pending(ipcq_queue *q, ipcq_msg *m)
{
	bool got = false;

	if (!atomic_load_explicit(&q->nkept, memory_order_acquire))
		return false;
	pthread_mutex_lock(&q->recv_lock);
	if (q->nkept) {
		*m = q->kept[0];
		memmove(&q->kept[0], &q->kept[1], (q->nkept - 1) * sizeof(*m));
		atomic_store_explicit(&q->nkept, q->nkept - 1, memory_order_relaxed);
		got = true;
		count_n(&q->ring.hdr->received, 1);
	}
	pthread_mutex_unlock(&q->recv_lock);
	return got;
}

/* Keep m for the next receive on the handle: a receiving descriptor
 * cannot put it back on the mq, and it must not be lost. */
static int keep_pending(ipcq_queue *q, const ipcq_msg *m)
{
	ipcq_msg *k;
	int r = 0;

	pthread_mutex_lock(&q->recv_lock);
	k = with_room(q->kept, &q->kept_cap, q->nkept, sizeof(*k));
	if (k)
		q->kept = k;
	else
		r = -ENOMEM;
	if (r == 0) {
		q->kept[q->nkept] = *m;
		atomic_store_explicit(&q->nkept, q->nkept + 1, memory_order_release);
		atomic_fetch_sub_explicit(&q->ring.hdr->received, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&q->recv_lock);
	return r;
}

/* Sleep until the window or the bell is readable, or timeout_ms (-1: for
 * ever) passes: 0, or -EAGAIN at the deadline.  A bell readable beside an
 * empty backlog (a hostile write, or a count a crash left) is silenced
 * under the lock, so the next sleep is one.  Without bell (a backlog that
 * rings but hands out nothing for now: its newest batch waits for a
 * repair only a sender or the daemon can make), the window alone, for at
 * most BELL_DEAF_MS, so the receiver neither spins nor oversleeps. */
#define BELL_DEAF_MS 10

/* What the handle's receivers sleep on: an epoll set of the window and
 * the bell, both with EPOLLEXCLUSIVE, so that a message sent, or a
 * backlog that fills, wakes one receiver asleep rather than all of them
 * (poll wakes every process polling the mq at each mq_send: with four
 * receivers asleep, three woke for nothing at every message).  Made at
 * the first sleep; -1 when it cannot be (the caller polls then). */
static int sleep_set(ipcq_queue *q)
{
	int ep = atomic_load_explicit(&q->sleep_ep, memory_order_acquire), fresh, expect = -1;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };

	if (ep != -1)
		return ep >= 0 ? ep : -1;
	fresh = epoll_create1(EPOLL_CLOEXEC);
	ev.data.fd = q->mq;
	if (fresh >= 0 && epoll_ctl(fresh, EPOLL_CTL_ADD, q->mq, &ev) == 0) {
		ev.data.fd = q->ring.bell;
		if (epoll_ctl(fresh, EPOLL_CTL_ADD, q->ring.bell, &ev) == 0)
			ep = fresh;
	}
	if (ep < 0 && fresh >= 0)
		close(fresh);
	/* (EPOLLEXCLUSIVE is Linux 4.5's: an older kernel refuses it) */
	if (ep < 0)
		ep = SLEEP_SET_NONE;
	/* another thread of the handle may have made one first */
	if (!atomic_compare_exchange_strong_explicit(&q->sleep_ep, &expect, ep, memory_order_acq_rel,
	                                             memory_order_acquire)) {
		if (ep >= 0)
			close(ep);
		ep = expect;
	}
	return ep >= 0 ? ep : -1;
}

static int wait_window_or_bell(ipcq_queue *q, int timeout_ms, bool bell, bool *window)
{
	struct pollfd pfd[2] = { { .fd = q->mq, .events = POLLIN }, { .fd = q->ring.bell, .events = POLLIN } };
	struct epoll_event ev[2];
	int ep = bell ? sleep_set(q) : -1, n;
	bool rang = false;

	if (!bell) {
		pfd[1].fd = -1;
		if (timeout_ms < 0 || timeout_ms > BELL_DEAF_MS)
			timeout_ms = BELL_DEAF_MS;
	}
	do
		n = ep >= 0 ? epoll_wait(ep, ev, 2, timeout_ms) : poll(pfd, 2, timeout_ms);
	while (n < 0 && errno == EINTR && timeout_ms < 0);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EAGAIN;
	if (ep >= 0) {
		*window = false;
		for (int i = 0; i < n; i++) {
			*window |= ev[i].data.fd == q->mq;
			rang |= ev[i].data.fd == q->ring.bell;
		}
	} else {
		*window = pfd[0].revents & POLLIN;
		rang = pfd[1].revents & POLLIN;
	}
	if (rang && !*window && !backlog_queue_busy(&q->ring))
		backlog_silence_idle_bell(&q->ring);
	return 0;
}

/* Spinning.  A receiver that had a message a moment ago looks at the
 * backlog for a little while before it sleeps: a sender that sees no
 * receiver asleep leaves its message in the backlog (backlog.h,
 * backlog_wakes_by_window), and a receiver still awake takes it with no
 * wake-up at all, which is most of a round trip's cost.  Only while
 * messages come often (the last within SPIN_RECENT_NS; a message is timed
 * when the receiver next runs out of them, so that taking one reads no
 * clock), and never on one CPU: an idle receiver sleeps at once and costs
 * nothing.  Only while it pays: a spin that found nothing (a peer that
 * cannot run, on a machine with more runnable processes than CPUs)
 * shortens the next by a quarter, down to SPIN_MIN_NS; one that found a
 * message restores SPIN_MAX_NS; and every SPIN_PROBE-th spin is a full
 * one, so that a spin cut short does not stay short once it would pay
 * again (a short one cannot outwait a peer that sleeps because its own
 * spin was short). */
#define SPIN_RECENT_NS 200000u
#define SPIN_MAX_NS 50000u
#define SPIN_MIN_NS 1000u
#define SPIN_PROBE 32u

static bool spin_for_backlog(ipcq_queue *q)
{
	static int ncpu;
	uint64_t start, last = atomic_load_explicit(&q->last_msg_ns, memory_order_relaxed);
	uint32_t budget = atomic_load_explicit(&q->spin_ns, memory_order_relaxed);

	if (!ncpu)
		ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	start = now_ns(CLOCK_MONOTONIC);
	if (atomic_load_explicit(&q->got_msg, memory_order_relaxed)) {
		atomic_store_explicit(&q->got_msg, false, memory_order_relaxed);
		atomic_store_explicit(&q->last_msg_ns, start, memory_order_relaxed);
		last = start;
	}
	if (ncpu < 2 || start - last > SPIN_RECENT_NS)
		return false;
	budget = budget ? MIN(budget, SPIN_MAX_NS) : SPIN_MAX_NS;
	if (atomic_fetch_add_explicit(&q->spins, 1, memory_order_relaxed) % SPIN_PROBE == 0)
		budget = SPIN_MAX_NS;
	for (unsigned i = 1;; i++) {
		if (backlog_queue_busy(&q->ring)) {
			atomic_store_explicit(&q->spin_ns, SPIN_MAX_NS, memory_order_relaxed);
			return true;
		}
		cpu_relax();
		if (i % 64 == 0 && now_ns(CLOCK_MONOTONIC) - start > budget) {
			atomic_store_explicit(&q->spin_ns, MAX(budget - budget / 4, SPIN_MIN_NS), memory_order_relaxed);
			return false;
		}
	}
}

/* Sleep on the window (and the bell), counted among the receivers asleep
 * so that senders wake us through the window; SKIPPED when the backlog
 * filled meanwhile. */
static int sleep_on_window(ipcq_queue *q, ipcq_msg *m, int left, bool deaf, bool *window)
{
	/* counted in the home slot too, so that the daemon can take it off
	 * again if this process dies asleep */
	struct ring_slot *home = home_slot_mine(q) ? ring_slot_at(&q->ring, (unsigned)q->home_slot) : NULL;
	int r;

	if (home)
		atomic_fetch_add_explicit(&home->sleeping, 1, memory_order_relaxed);
	backlog_sleeping(&q->ring, 1);
	/* (a deaf sleep is beside a backlog that hands out nothing for now) */
	if (!deaf && backlog_queue_busy(&q->ring))
		r = SKIPPED;
	else if (q->ring.bell < 0)
		r = recv_window(q, m, left);
	else
		r = wait_window_or_bell(q, left, !deaf, window);
	backlog_sleeping(&q->ring, -1);
	if (home)
		atomic_fetch_sub_explicit(&home->sleeping, 1, memory_order_relaxed);
	return r;
}

static int recv_next(ipcq_queue *q, ipcq_msg *m, int timeout_ms)
{
	uint64_t start;
	bool ask = false; /* the kernel said the window is readable: look whatever its count says */
	int r;

	/* a batch the handle holds hands out its next message without a
	 * look at the clock */
	if (take_held(q, m))
		return 0;
	start = call_start(timeout_ms);
	for (unsigned rounds = 0;; rounds++) {
		/* (the first round starts with all of it: no second look) */
		int left = rounds ? time_left(timeout_ms, start) : timeout_ms;
		bool looked = false; /* the window was found empty this round */
		/* the backlog rang and handed out nothing, or a message waits
		 * for a lane to map: look again soon */
		bool deaf = atomic_load_explicit(&q->nparked, memory_order_relaxed) != 0;

		if (take_held(q, m))
			return 0;
		r = queue_state(q);
		if (r < 0)
			return r;
		r = take_parked(q, m);
		if (r == 0)
			return 0;
		backlog_window_drained(&q->ring);
		r = -EAGAIN;
		/* batches given back were at the head of the line */
		if (backlog_queue_returned(&q->ring))
			r = recv_backlog(q, m, left, BACKLOG_RETURNED, 0);
		if (r == -EAGAIN && backlog_queue_busy(&q->ring)) {
			/* the window first (it is older), then the backlog */
			uint64_t seq = backlog_window_seq(&q->ring);

			r = look_at_window(q, m, ask);
			looked = r == -EAGAIN;
			if (r == -EAGAIN) {
				r = recv_backlog(q, m, left, 0, seq);
				deaf = r == -EAGAIN && backlog_queue_busy(&q->ring);
			}
			if (r == -EINPROGRESS)
				r = SKIPPED; /* the window was refilled: look again */
		}
		if (r == -EAGAIN && !looked)
			r = look_at_window(q, m, ask);
		ask = false;
		if (r == -EAGAIN && left != 0 && !deaf && spin_for_backlog(q))
			r = SKIPPED;
		if (r == -EAGAIN && left != 0 && q->ring.bell < 0) {
			r = sleep_on_window(q, m, left, false, &ask); /* no bell: the window alone */
		} else if (r == -EAGAIN && left != 0) {
			/* nothing anywhere: sleep on the window and the bell at
			 * once, so a backlog that fills while the window stays
			 * empty (its sender saw no receiver asleep, or found the
			 * window full a moment ago) wakes us too, then look again */
			r = sleep_on_window(q, m, left, deaf, &ask);
			/* a deaf sleep is short: the deadline may not be here yet */
			if (r == 0 || (r == -EAGAIN && deaf && time_left(timeout_ms, start) != 0))
				r = SKIPPED;
		}
		if (r == 0 && !atomic_load_explicit(&q->got_msg, memory_order_relaxed))
			atomic_store_explicit(&q->got_msg, true, memory_order_relaxed);
		if (r != SKIPPED)
			break;
		/* not a message: go on to the next, within the deadline */
		if (left == 0 && rounds > 2)
			return -EAGAIN;
	}
	/* the deadline may have run out on a retry */
	return r == -EAGAIN ? timeout_error(timeout_ms) : r;
}

static int check_recv(ipcq_queue *q, const void *m)
{
	int r = check_owner(q);

	if (r < 0 || !m)
		return r < 0 ? r : -EINVAL;
	if (!(q->flags & IPCQ_RECV))
		return -EBADF;
	return 0;
}

/* Whether the handle may hand out another message. */
static bool may_hold_more(const ipcq_queue *q)
{
	return atomic_load_explicit(&q->nviews, memory_order_relaxed) < HELD_MAX;
}

/* ipcq_recv_view once its arguments are checked. */
static int recv_view(ipcq_queue *q, ipcq_msg *m, int timeout_ms)
{
	if (take_pending(q, m))
		return 0;
	/* at the bound, what the handle took already still goes out: only
	 * taking more from the queue waits for releases */
	if (!may_hold_more(q))
		return take_held(q, m) ? 0 : -ENOBUFS;
	return recv_next(q, m, timeout_ms);
}

/* The end of a receive call: the handle's bell follows what it holds. */
static void settle_bell(ipcq_queue *q)
{
	if (q->held_bell >= 0) {
		pthread_mutex_lock(&q->recv_lock);
		held_bell_update(q);
		pthread_mutex_unlock(&q->recv_lock);
	}
}

static int settled(ipcq_queue *q, int r)
{
	settle_bell(q);
	return r;
}

EXPORT int ipcq_recv_view(ipcq_queue *q, ipcq_msg *m, int timeout_ms)
{
	int r = check_recv(q, m);

	return r < 0 ? r : settled(q, recv_view(q, m, timeout_ms));
}

static int recv_batch(ipcq_queue *q, ipcq_msg *msgs, unsigned n, int timeout_ms)
{
	unsigned got = 0;
	int r;

	if (!take_pending(q, &msgs[0])) {
		if (may_hold_more(q))
			r = recv_next(q, &msgs[0], timeout_ms);
		else
			r = take_held(q, &msgs[0]) ? 0 : -ENOBUFS;
		if (r < 0)
			return r;
	}
	got = 1;
	/* the rest only as far as they are there already (at the bound, only
	 * what the handle took already) */
	while (got < n && (may_hold_more(q) ? recv_next(q, &msgs[got], 0) == 0 : take_held(q, &msgs[got])))
		got++;
	return (int)got;
}

EXPORT int ipcq_recv_batch(ipcq_queue *q, ipcq_msg *msgs, unsigned n, int timeout_ms)
{
	int r = check_recv(q, msgs);

	if (r < 0)
		return r;
	if (n == 0 || n > INT32_MAX)
		return -EINVAL;
	return settled(q, recv_batch(q, msgs, n, timeout_ms));
}

/* A batch with messages nacked is finished when every other one is
 * done: those nacked go back together (some were given back), or to the
 * daemon to dead-letter (all were rejected). */
static void finish_batch(ipcq_queue *q, const struct taken *t)
{
	struct ring *r = ref_ring(q, &t->ref);
	uint64_t done = atomic_load_explicit(&ring_cs(r, ring_chunk_at(r, t->ref.pos))->done, memory_order_acquire);

	if (t->requeue)
		backlog_give_back(r, &t->ref, done);
	else
		ring_doom(r, t->ref.offset, t->ref.gen);
	forget_taken(q, &t->ref);
}

/* Under recv_lock: whether the batch of t is finished now (see
 * finish_batch), the first time it is. */
static bool batch_finished_locked(ipcq_queue *q, struct taken *t)
{
	struct ring *r = ref_ring(q, &t->ref);
	uint64_t full = ring_batch_mask(t->ref.count);
	uint64_t done = atomic_load_explicit(&ring_cs(r, ring_chunk_at(r, t->ref.pos))->done, memory_order_seq_cst);

	if (t->finished || !(t->requeue | t->reject) || ((done | t->requeue | t->reject) & full) != full)
		return false;
	t->finished = true;
	return true;
}

/* Under recv_lock: a held batch whose ttl ran out: what it did not hand
 * out yet is never handed out; once the rest is done, it goes to the
 * daemon.  true when that is now: *fin is then the batch to finish. */
static bool expire_held_locked(ipcq_queue *q, struct held_batch *hb, struct taken *fin)
{
	uint64_t rest;
	struct taken *t;

	if (hb->next >= hb->ref.count || !chunk_expired(&hb->ref))
		return false;
	rest = ring_batch_mask(hb->ref.count) & ~ring_batch_mask(hb->next) & ~hb->skip;
	hb->next = hb->ref.count;
	t = taken_find(q, &hb->ref);
	if (!rest || !t || !ring_holds(ref_ring(q, &hb->ref), hb->ref.offset, hb->ref.gen))
		return false;
	undelivered(q, &hb->ref, rest);
	if (!(t->requeue | t->reject))
		atomic_fetch_add_explicit(&q->nmasked, 1, memory_order_seq_cst);
	t->reject |= rest;
	if (!batch_finished_locked(q, t))
		return false;
	*fin = *t;
	return true;
}

/* Record idx of a taken batch was done with, or nacked (into the mask
 * nack points at, in the handle's record of the chunk): finish the batch
 * if that was the last. */
static void batch_record_over(ipcq_queue *q, const struct ring_ref *ref, unsigned idx, bool nacked, bool reject)
{
	struct taken *t, copy;
	bool finish = false;

	if (!nacked) {
		if (ring_batch_done(ref_ring(q, ref), ref->offset, ref->gen, idx)) {
			release_taken(q, ref);
			return;
		}
		/* others of it nacked: the done bit is set, the masks decide */
		if (!atomic_load_explicit(&q->nmasked, memory_order_seq_cst))
			return;
	}
	pthread_mutex_lock(&q->recv_lock);
	t = taken_find(q, ref);
	if (t && nacked) {
		if (!(t->requeue | t->reject))
			atomic_fetch_add_explicit(&q->nmasked, 1, memory_order_seq_cst);
		*(reject ? &t->reject : &t->requeue) |= (uint64_t)1 << idx;
	}
	if (t && batch_finished_locked(q, t)) {
		copy = *t;
		finish = true;
	}
	pthread_mutex_unlock(&q->recv_lock);
	if (finish)
		finish_batch(q, &copy);
}

/* The chunk or record of a ring message a view names (-EINVAL: none). */
static int msg_ref(ipcq_queue *q, const ipcq_msg *m, struct ring_ref *ref, unsigned *rec)
{
	unsigned lane = (unsigned)(m->opaque_[0] >> TOKEN_LANE_SHIFT) & TOKEN_LANE_MASK;

	*ref = (struct ring_ref){
		.offset = m->opaque_[0] & TOKEN_OFFSET_MASK, .gen = m->opaque_[1], .len = (uint32_t)m->len, .lane = (uint16_t)lane
	};
	*rec = (unsigned)(m->opaque_[0] >> TOKEN_RECORD_SHIFT);
	if (lane > PROTO_LANES_MAX || (lane && !atomic_load_explicit(&q->lane[lane], memory_order_acquire)))
		return -EINVAL;
	if (ref->offset >= ref_ring(q, ref)->data_size || ref->offset % RING_ALIGN || *rec > RING_BATCH_MAX)
		return -EINVAL;
	return 0;
}

/* Before the handle acts on a chunk it took: if the daemon moved its
 * message aside meanwhile (ring.c, "Moving aside"), tell the daemon what
 * becomes of it (MOVED_*) and forget the chunk: true.  false: act on the
 * chunk if it is still this handle's.  The chunk's aside byte stops a
 * move under way; a move done shows as a chunk no longer held (the byte
 * goes with the space when it is reused), which is also what a lease
 * taken back looks like: the daemon tells them apart. */
static bool settled_aside(ipcq_queue *q, const struct ring_ref *ref, int how)
{
	struct ring *r = ref_ring(q, ref);
	bool moved = ring_stop_aside(r, ref->offset, ref->gen);

	if (!moved && ring_holds(r, ref->offset, ref->gen))
		return false;
	if (client_moved(q, ref->lane, ref->offset, ref->gen, how) < 0)
		return false;
	forget_taken(q, ref);
	return true;
}

/* A copy ipcq_recv leased: if it is the one message of its chunk left to
 * acknowledge, the handle keeps no pointer into the chunk, and the daemon
 * may move it aside while it waits (ring.c). */
static void lease_allow_aside(ipcq_queue *q, const ipcq_msg *m)
{
	struct ring_ref ref;
	unsigned rec;

	struct ring *r;

	if (msg_ref(q, m, &ref, &rec) < 0)
		return;
	r = ref_ring(q, &ref);
	if (rec) {
		const struct ring_chunk *c = (const struct ring_chunk *)(r->data + ref.offset);
		unsigned n = c->count;
		uint64_t done = atomic_load_explicit(&ring_cs(r, c)->done, memory_order_acquire);

		if (c->gen != ref.gen || n == 0 || n > RING_BATCH_MAX || rec > n ||
		    (done | (uint64_t)1 << (rec - 1)) != ring_batch_mask(n) || (done & (uint64_t)1 << (rec - 1)))
			return;
	}
	ring_allow_aside(r, ref.offset, ref.gen);
}

/* The chunk of one message this handle took, nacked: back to the queue,
 * or to the daemon to dead-letter. */
static void nack_chunk(ipcq_queue *q, const struct ring_ref *ref, bool reject)
{
	struct taken *t, copy;

	pthread_mutex_lock(&q->recv_lock);
	t = taken_find(q, ref);
	if (t)
		copy = *t;
	pthread_mutex_unlock(&q->recv_lock);
	if (!t)
		return; /* not given back at close either: the daemon's, at exit */
	if (reject)
		ring_doom(ref_ring(q, ref), ref->offset, ref->gen);
	else
		backlog_give_back(ref_ring(q, ref), &copy.ref, 0);
	forget_taken(q, ref);
}

enum { ACK, NACK, REJECT };

/* Release (acknowledge: how ACK) a message handed out, or nack it: its
 * slot and buffer, or its record or chunk. */
static int release_msg_as(ipcq_queue *q, ipcq_msg *m, int how)
{
	struct ring_ref ref;
	bool mine = true;
	unsigned rec;

	if (!m || !m->data)
		return -EINVAL;
	if (m->opaque_[1] == 0) {
		uint32_t slot = (uint32_t)m->opaque_[0];
		uint64_t b = m->opaque_[0] >> TOKEN_BUF_SHIFT;

		if ((slot & ~(uint32_t)HOME_SLOT) >= RING_SLOTS || b >= RECV_BUFS || m->data != q->buf[b] + PROTO_MSG_HDR_SIZE)
			return -EINVAL;
		if (how != ACK)
			return -EOPNOTSUPP; /* in the handle's memory alone: nowhere to go back to */
		buf_put(q, (int)b);
		slot_put(q, (int)slot);
	} else {
		if (msg_ref(q, m, &ref, &rec) < 0)
			return -EINVAL;
		/* a lease the daemon took back is acknowledged by nobody here */
		if (settled_aside(q, &ref, how == ACK ? MOVED_ACK : how == NACK ? MOVED_REQUEUE : MOVED_REJECT))
			mine = true;
		else if (!(mine = ring_holds(ref_ring(q, &ref), ref.offset, ref.gen)))
			forget_taken(q, &ref);
		else if (rec)
			batch_record_over(q, &ref, rec - 1, how != ACK, how == REJECT);
		else if (how == ACK)
			release_taken(q, &ref);
		else
			nack_chunk(q, &ref, how == REJECT);
	}
	m->data = NULL;
	atomic_fetch_sub_explicit(&q->nviews, 1, memory_order_relaxed);
	if (mine)
		count_n(how == ACK ? &q->ring.hdr->acked : &q->ring.hdr->nacked, 1);
	return 0;
}

static int release_msg(ipcq_queue *q, ipcq_msg *m)
{
	return release_msg_as(q, m, ACK);
}

EXPORT int ipcq_release(ipcq_queue *q, ipcq_msg *m)
{
	int r = check_owner(q);

	return r < 0 ? r : release_msg(q, m);
}

/* Ack the copies ipcq_recv returned to this thread, leased till now. */
static void ack_mine(ipcq_queue *q)
{
	pthread_t self = pthread_self();
	ipcq_msg mine[4];
	unsigned n = 0;

	if (!q->nleases)
		return;
	pthread_mutex_lock(&q->recv_lock);
	for (unsigned i = q->nleases; i-- > 0;) {
		if (!pthread_equal(q->leases[i].thread, self))
			continue;
		if (n == ARRAY_SIZE(mine))
			break; /* one a thread, but the rest at its next call */
		mine[n++] = q->leases[i].m;
		q->leases[i] = q->leases[--q->nleases];
	}
	pthread_mutex_unlock(&q->recv_lock);
	for (unsigned i = 0; i < n; i++)
		release_msg(q, &mine[i]);
}

/* Keep a copy's message leased to this thread until it acks it. */
static int lease_add(ipcq_queue *q, const ipcq_msg *m)
{
	struct lease *l;
	int r = 0;

	pthread_mutex_lock(&q->recv_lock);
	l = with_room(q->leases, &q->lease_cap, q->nleases, sizeof(*l));
	if (l)
		q->leases = l;
	else
		r = -ENOMEM;
	if (r == 0)
		q->leases[q->nleases++] = (struct lease){ .m = *m, .thread = pthread_self() };
	pthread_mutex_unlock(&q->recv_lock);
	return r;
}

EXPORT int ipcq_nack(ipcq_queue *q, ipcq_msg *m, unsigned flags)
{
	pthread_t self = pthread_self();
	ipcq_msg copy = { 0 };
	int r = check_owner(q);

	if (r < 0)
		return r;
	if (!(q->flags & IPCQ_RECV))
		return -EBADF;
	if (flags & ~(unsigned)IPCQ_NACK_REJECT)
		return -EINVAL;
	if (!m) {
		/* the copy this thread holds leased */
		pthread_mutex_lock(&q->recv_lock);
		for (unsigned i = q->nleases; i-- > 0;) {
			if (pthread_equal(q->leases[i].thread, self)) {
				copy = q->leases[i].m;
				q->leases[i] = q->leases[--q->nleases];
				break;
			}
		}
		pthread_mutex_unlock(&q->recv_lock);
		if (!copy.data)
			return -ENOENT;
		m = &copy;
	}
	return release_msg_as(q, m, (flags & IPCQ_NACK_REJECT) ? REJECT : NACK);
}

/* ring_peek of the queue's ring, then of each lane's (ring.h, "Lanes"),
 * one after the other in buf, up to n of each; then the n first of them
 * all by priority (a stable sort: each lane's in its order, the lanes' in
 * theirs).  What does not fit buf is left out. */
static int peek_rings(ipcq_queue *q, struct ring_peeked *seen, unsigned n, unsigned char *buf, size_t cap)
{
	uint64_t lanes = lanes_made(q);
	unsigned rings = 1 + (unsigned)__builtin_popcountll(lanes), got = 0;
	_cleanup_free_ struct ring_peeked *all = NULL;
	size_t used = 0;

	if (!lanes)
		return ring_peek(&q->ring, seen, n, buf, cap);
	all = calloc((size_t)rings * n, sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (unsigned id = 0; id <= PROTO_LANES_MAX && got < (size_t)rings * n; id++) {
		size_t base = used;
		struct ring *r;
		int k;

		if (id && !(lanes & (1ull << (id - 1))))
			continue;
		r = lane_ring(q, id);
		if (!r)
			continue;
		k = ring_peek(r, all + got, n, buf ? buf + base : NULL, cap - base);
		if (k == -EMSGSIZE && got)
			break; /* what fits is shown */
		if (k < 0 && id == 0)
			return k;
		if (k < 0)
			continue; /* a lane that fails its checks shows nothing */
		for (int i = 0; i < k; i++) {
			all[got + (unsigned)i].at += base;
			used = MAX(used, all[got + (unsigned)i].at + all[got + (unsigned)i].len);
		}
		got += (unsigned)k;
	}
	for (unsigned i = 1; i < got; i++) {
		struct ring_peeked p = all[i];
		unsigned j = i;

		for (; j > 0 && all[j - 1].prio < p.prio; j--)
			all[j] = all[j - 1];
		all[j] = p;
	}
	got = MIN(got, n);
	memcpy(seen, all, got * sizeof(*seen));
	return (int)got;
}

EXPORT int ipcq_peek(ipcq_queue *q, ipcq_msg *msgs, unsigned n, void *buf, size_t cap)
{
	_cleanup_free_ struct ring_peeked *seen = NULL;
	int r = check_owner(q);

	if (r < 0)
		return r;
	if (!(q->flags & IPCQ_RECV))
		return -EBADF;
	if (n == 0)
		return 0;
	if (!msgs || (!buf && cap))
		return -EINVAL;
	seen = calloc(n, sizeof(*seen));
	if (!seen)
		return -ENOMEM;
	r = queue_state(q);
	if (r < 0)
		return r;
	r = peek_rings(q, seen, n, buf, cap);
	for (int i = 0; i < r; i++)
		msgs[i] = (ipcq_msg){ .data = (unsigned char *)buf + seen[i].at,
			              .len = seen[i].len,
			              .prio = seen[i].prio,
			              .flags = seen[i].redelivered ? IPCQ_MSG_REDELIVERED : 0,
			              .deliveries = 0 };
	return r;
}

EXPORT int ipcq_ack(ipcq_queue *q)
{
	int r = check_owner(q);

	if (r < 0)
		return r;
	if (!(q->flags & IPCQ_RECV))
		return -EBADF;
	ack_mine(q);
	return 0;
}

/* Whether the bytes of a ring message just copied are still its sender's
 * (ring_unspoilt). */
static bool copy_unspoilt(ipcq_queue *q, const ipcq_msg *m)
{
	struct ring_ref ref;
	unsigned rec;

	return msg_ref(q, m, &ref, &rec) == 0 && ring_unspoilt(ref_ring(q, &ref), ref.offset, ref.gen);
}

static ssize_t recv_copy(ipcq_queue *q, void *buf, size_t cap, unsigned *prio, int timeout_ms)
{
	ipcq_msg m;
	int r;

	/* the copy this thread had before is done with: acked */
	ack_mine(q);
	r = recv_view(q, &m, timeout_ms);
	if (r < 0)
		return r;
	if (m.len > cap) {
		r = keep_pending(q, &m);
		if (r < 0) {
			ipcq_release(q, &m);
			return r;
		}
		return -EMSGSIZE;
	}
	if (m.len)
		memcpy(buf, m.data, m.len);
	if (m.opaque_[1] && !copy_unspoilt(q, &m)) {
		/* a client released it under us and a sender reused its space */
		count_n(&q->ring.hdr->rejected, 1);
		ipcq_release(q, &m);
		return -EBADMSG;
	}
	if (prio)
		*prio = m.prio;
	/* at-least-once: leased to this thread until it acks (its next
	 * ipcq_recv, ipcq_ack); if it dies first, redelivered */
	if (!q->ring.delivery || !m.opaque_[1] || lease_add(q, &m) < 0)
		ipcq_release(q, &m);
	else
		lease_allow_aside(q, &m);
	return (ssize_t)m.len;
}

EXPORT ssize_t ipcq_recv(ipcq_queue *q, void *buf, size_t cap, unsigned *prio, int timeout_ms)
{
	ipcq_msg m;
	ssize_t n;
	int r;

	if (!buf && cap)
		return -EINVAL;
	r = check_recv(q, &m);
	if (r < 0)
		return r;
	n = recv_copy(q, buf, cap, prio, timeout_ms);
	settle_bell(q);
	return n;
}

void recv_close(ipcq_queue *q)
{
	/* a thread that closes the handle is done with the copies it received
	 * (its process lives on): they are acknowledged.  Then every chunk
	 * the handle took and did not release goes back: in an
	 * at-least-once queue with what it handed out and nobody released
	 * (redelivered); in an at-most-once queue without (delivered once) */
	ack_mine(q);
	for (unsigned i = 0; i < q->ntaken; i++) {
		struct ring_ref *ref = &q->taken[i].ref;
		struct ring_cstate *cs;
		struct ring *r;
		uint64_t done;

		if (settled_aside(q, ref, MOVED_REQUEUE)) {
			i--; /* forget_taken moved the last one here */
			continue;
		}
		r = ref_ring(q, ref);
		cs = ring_cs(r, ring_chunk_at(r, ref->pos));
		done = atomic_load_explicit(&cs->done, memory_order_acquire);

		if (q->ring.delivery == 0 && ref->kind != RING_KIND_BATCH)
			ring_release(r, ref);
		else
			backlog_give_back(r, ref,
			                  q->ring.delivery ? done : done | atomic_load_explicit(&cs->handed, memory_order_relaxed));
	}
	q->ntaken = 0;
	free(q->taken);
	q->taken = NULL;
	q->nheld = 0;
	free(q->held);
	q->held = NULL;
	/* inline messages kept or leased: their buffers (ring ones went back
	 * with their chunks) */
	for (unsigned i = 0; i < q->nkept; i++)
		if (!q->kept[i].opaque_[1])
			release_msg(q, &q->kept[i]);
	q->nkept = 0;
	free(q->kept);
	q->kept = NULL;
	for (unsigned i = 0; i < q->nleases; i++)
		if (!q->leases[i].m.opaque_[1])
			release_msg(q, &q->leases[i].m);
	q->nleases = 0;
	free(q->leases);
	q->leases = NULL;
}
