/* SPDX-License-Identifier: Apache-2.0 */
/*
 * send.c - libipcq's send paths.
 *
 * A message goes to the window (the queue's mq) at once when the backlog
 * is empty and the window has room: inline when it fits an mq message
 * (in an at-most-once queue), else written into a ring chunk whose
 * descriptor goes on the mq.  When
 * the window is full, or the backlog is not empty, it goes to the
 * backlog in the ring (backlog.c): small ones coalesced into the newest
 * batch of their priority, so a burst under backpressure costs one mq
 * message per batch, not per message.  A send waits only for room in the
 * ring or under max_depth, up to its timeout; never for receivers.
 *
 * ipcq_send_batch writes up to prefetch small messages into one chunk
 * and submits it as one mq message (or one backlog chunk).
 *
 * A message with a ttl (the queue's, or the handle's: ipcq_set_ttl) goes
 * through the ring, its chunk stamped with when it expires: the receiver
 * that takes it late gives it to the daemon to dead-letter (recv.c).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "ring_impl.h"

#define STACK_MSG_MAX 8192u

int window_send(void *ctx, const void *msg, size_t len, unsigned prio)
{
	ipcq_queue *q = ctx;

	return window_put(q->sring, q->mq, msg, len, prio);
}

static int check_send(ipcq_queue *q, unsigned prio)
{
	int r = check_owner(q);

	if (r < 0)
		return r;
	if (!(q->flags & IPCQ_SEND))
		return -EBADF;
	r = queue_state(q);
	if (r < 0)
		return r;
	if (prio >= (unsigned)MQ_PRIO_MAX)
		return -EINVAL;
	return 0;
}

/* ---- max_depth ---- */

struct depth_args {
	uint64_t max;
	unsigned want;
	unsigned room;
};

static int try_depth(struct ring *r, void *arg)
{
	struct depth_args *a = arg;
	uint64_t d = ring_depth(r);

	if (d >= a->max)
		return -EAGAIN;
	a->room = (unsigned)MIN((uint64_t)a->want, a->max - d);
	return 0;
}

/* How many of want messages max_depth lets in now (>= 1), waiting up to
 * timeout_ms while it lets in none.  Receivers wake the waiters (recv.c). */
static int depth_room(ipcq_queue *q, unsigned want, int timeout_ms)
{
	struct depth_args a = { .max = q->geo.max_depth, .want = want };
	uint64_t d;
	int r;

	if (!a.max)
		return (int)MIN(want, (unsigned)INT32_MAX);
	d = ring_depth(q->sring);
	if (d < a.max)
		return (int)MIN((uint64_t)want, a.max - d);
	r = ring_with_room(q->sring, timeout_ms, try_depth, &a);
	if (r < 0)
		return r;
	ring_unlock(q->sring);
	return (int)a.room;
}

/* ---- one message ---- */

/* n messages (negative: the count of a send that failed) are counted
 * sent before they can be on their way, so that one whose sender dies
 * after that counts as sent (the daemon sends its descriptor again,
 * ring.c), not as something the daemon made up. */
static void count_sent(ipcq_queue *q, int64_t n, bool ring)
{
	count_n(&q->ring.hdr->sent, (uint64_t)n);
	if (ring)
		count_n(&q->ring.hdr->sent_ring, (uint64_t)n);
}

/* A send's result r, with the count of its n messages taken back when it
 * failed. */
static int sent_or_not(ipcq_queue *q, int r, unsigned n, bool ring)
{
	if (r < 0)
		count_sent(q, -(int64_t)n, ring);
	return r;
}

/* Inline, straight into the window; -EAGAIN when it is full. */
static int send_inline_now(ipcq_queue *q, const void *buf, size_t len, unsigned prio)
{
	unsigned char stackbuf[STACK_MSG_MAX];
	_cleanup_free_ unsigned char *heapbuf = NULL;
	unsigned char *msg = stackbuf;
	struct proto_msg_hdr h = { .kind = PROTO_MSG_INLINE, .len = (uint32_t)len };
	int r;

	if (PROTO_MSG_HDR_SIZE + len > sizeof(stackbuf)) {
		msg = heapbuf = malloc(PROTO_MSG_HDR_SIZE + len);
		if (!msg)
			return -ENOMEM;
	}
	memcpy(msg, &h, sizeof(h));
	if (len)
		memcpy(msg + sizeof(h), buf, len);
	/* counted before it can be taken, so depth never dips below 0 */
	ring_depth_add(q->sring, 1);
	count_sent(q, 1, false);
	r = sent_or_not(q, window_send(q, msg, sizeof(h) + len, prio), 1, false);
	if (r < 0)
		ring_depth_add(q->sring, -1);
	return r;
}

/* Whether a message may travel as a record of a batch. */
static bool batchable(const ipcq_queue *q, size_t len)
{
	return len <= RING_REC_MAX && ring_rec_size(len) <= q->geo.max_payload;
}

/* When a message sent now expires (ring_chunk.expires): the shorter of
 * the queue's ttl and the handle's; 0 for none. */
static uint64_t send_expiry(const ipcq_queue *q)
{
	uint64_t qttl = atomic_load_explicit(&q->meta->ttl_ms, memory_order_relaxed);
	uint64_t httl = atomic_load_explicit(&q->ttl_ms, memory_order_relaxed);
	uint64_t ttl = qttl && httl ? MIN(qttl, httl) : qttl | httl;

	return ttl ? ring_now_ms() + ttl : 0;
}

static void stamp(ipcq_queue *q, const struct ring_ref *ref, uint64_t expires)
{
	ring_chunk_at(q->sring, ref->pos)->expires = expires;
}

static int send_one(ipcq_queue *q, const void *buf, size_t len, unsigned prio, int timeout_ms)
{
	uint64_t start = call_start(timeout_ms), expires = send_expiry(q);
	struct ring_ref ref;
	int r;

	/* at-least-once: every message in the ring, where the daemon can find
	 * it again if its receiver dies (recv.c); so is one with a ttl */
	if (len <= q->inline_max && !q->ring.delivery && !expires && !backlog_busy(q->sring) &&
	    backlog_wakes_by_window(q->sring, &q->window)) {
		r = send_inline_now(q, buf, len, prio);
		if (r != -EAGAIN)
			return r;
	}
	if (len <= q->inline_max && batchable(q, len)) {
		/* backpressure: into the backlog, coalesced */
		count_sent(q, 1, true);
		r = backlog_append(q->sring, buf, len, prio, expires, q->geo.prefetch, &q->window, timeout_ms);
		return sent_or_not(q, r, 1, true);
	}
	r = ring_reserve(q->sring, len, timeout_ms, &ref);
	if (r < 0)
		return r;
	memcpy(ref.payload, buf, len);
	stamp(q, &ref, expires);
	count_sent(q, 1, true);
	r = backlog_submit(q->sring, &ref, prio, 1, &q->window, time_left(timeout_ms, start), 0);
	return sent_or_not(q, r, 1, true);
}

EXPORT int ipcq_send(ipcq_queue *q, const void *buf, size_t len, unsigned prio, int timeout_ms)
{
	uint64_t start = call_start(timeout_ms);
	int r;

	r = check_send(q, prio);
	if (r < 0)
		return r;
	if (!buf && len)
		return -EINVAL;
	if (len > q->geo.max_payload)
		return -EMSGSIZE;
	r = depth_room(q, 1, timeout_ms);
	if (r < 0)
		return r;
	return send_one(q, buf, len, prio, time_left(timeout_ms, start));
}

/* ---- batches ---- */

/* How many of msgs[0..n) go in one batch chunk: small ones, at most
 * prefetch, within max_payload; *bytes gets the chunk's payload size. */
static unsigned batch_span(const ipcq_queue *q, const struct iovec *msgs, unsigned n, uint64_t *bytes)
{
	unsigned k = 0, max = MIN(n, q->geo.prefetch);

	*bytes = 0;
	for (; k < max; k++) {
		uint64_t rec = ring_rec_size(msgs[k].iov_len);

		if (!batchable(q, msgs[k].iov_len) || (!msgs[k].iov_base && msgs[k].iov_len) ||
		    *bytes + rec > q->geo.max_payload)
			break;
		*bytes += rec;
	}
	return k;
}

static int send_span(ipcq_queue *q, const struct iovec *msgs, unsigned k, uint64_t bytes, unsigned prio,
                     int timeout_ms)
{
	uint64_t start = call_start(timeout_ms);
	struct ring_chunk *c;
	struct ring_ref ref;
	unsigned char *p;
	int r;

	r = ring_reserve(q->sring, bytes, timeout_ms, &ref);
	if (r < 0)
		return r;
	p = ref.payload;
	for (unsigned i = 0; i < k; i++) {
		struct ring_rec rec = { .len = (uint32_t)msgs[i].iov_len };

		memcpy(p, &rec, sizeof(rec));
		if (rec.len)
			memcpy(p + sizeof(rec), msgs[i].iov_base, rec.len);
		p += ring_rec_size(rec.len);
	}
	c = (struct ring_chunk *)(q->sring->data + ref.offset);
	c->kind = RING_KIND_BATCH;
	c->count = (uint16_t)k;
	c->expires = send_expiry(q);
	count_sent(q, k, true);
	r = backlog_submit(q->sring, &ref, prio, k, &q->window, time_left(timeout_ms, start), 0);
	return sent_or_not(q, r, k, true);
}

EXPORT int ipcq_send_batch(ipcq_queue *q, const struct iovec *msgs, unsigned n, unsigned prio, int timeout_ms)
{
	uint64_t start = call_start(timeout_ms);
	unsigned sent = 0;
	int r = check_send(q, prio);

	if (r < 0)
		return r;
	if (!msgs || n == 0 || n > INT32_MAX)
		return -EINVAL;
	while (sent < n) {
		const struct iovec *m = &msgs[sent];
		int left = time_left(timeout_ms, start);
		uint64_t bytes;
		unsigned k;

		if (m->iov_len > q->geo.max_payload)
			r = -EMSGSIZE;
		else if (!m->iov_base && m->iov_len)
			r = -EINVAL;
		else
			r = depth_room(q, n - sent, left);
		if (r < 0)
			break;
		k = batch_span(q, m, (unsigned)r, &bytes);
		if (k <= 1) {
			/* a large message, or one alone: as ipcq_send sends it */
			r = send_one(q, m->iov_base, m->iov_len, prio, left);
			k = 1;
		} else {
			r = send_span(q, m, k, bytes, prio, left);
		}
		if (r < 0)
			break;
		sent += k;
	}
	if (sent)
		return (int)sent;
	return r == -EAGAIN && timeout_ms != 0 ? -ETIMEDOUT : r;
}

/* ---- loans ---- */

EXPORT int ipcq_loan(ipcq_queue *q, size_t len, void **buf, int timeout_ms)
{
	uint64_t start = call_start(timeout_ms);
	struct ring_ref ref;
	int r;

	r = check_send(q, 0);
	if (r < 0)
		return r;
	if (!buf)
		return -EINVAL;
	r = depth_room(q, 1, timeout_ms);
	if (r < 0)
		return r;
	r = ring_reserve(q->sring, len, time_left(timeout_ms, start), &ref);
	if (r < 0)
		return r;
	*buf = ref.payload;
	return 0;
}

EXPORT int ipcq_publish_timed(ipcq_queue *q, void *buf, size_t len, unsigned prio, int timeout_ms)
{
	struct ring_ref ref;
	int r;

	r = check_send(q, prio);
	if (r < 0)
		return r;
	r = ring_loan_ref(q->sring, buf, len, &ref);
	if (r < 0)
		return r;
	stamp(q, &ref, send_expiry(q));
	/* never waits for the window: a full one sends it to the backlog */
	count_sent(q, 1, true);
	r = backlog_submit(q->sring, &ref, prio, 1, &q->window, timeout_ms, BACKLOG_KEEP_ON_TIMEOUT);
	return sent_or_not(q, r, 1, true);
}

EXPORT int ipcq_publish(ipcq_queue *q, void *buf, size_t len, unsigned prio)
{
	return ipcq_publish_timed(q, buf, len, prio, -1);
}

EXPORT int ipcq_set_ttl(ipcq_queue *q, uint64_t ttl_ms)
{
	int r = check_owner(q);

	if (r < 0)
		return r;
	if (ttl_ms > IPCQ_TTL_MAX_MS)
		return -EINVAL;
	atomic_store_explicit(&q->ttl_ms, ttl_ms, memory_order_relaxed);
	return 0;
}

EXPORT int ipcq_unloan(ipcq_queue *q, void *buf)
{
	struct ring_ref ref;
	int r = check_owner(q);

	if (r < 0)
		return r;
	r = ring_loan_ref(q->sring, buf, 0, &ref);
	if (r < 0)
		return r;
	ring_cancel(q->sring, &ref);
	return 0;
}
