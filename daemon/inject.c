/* SPDX-License-Identifier: Apache-2.0 */
/*
 * inject.c - the daemon writes messages into a queue: what receivers
 * gave up for good (expired, delivered max_deliveries times, rejected:
 * chunks DOOMED in a queue's ring, see ring.c) into the queue's
 * dead-letter queue, and a message it moved aside (aside.c) back into its
 * queue when its holder gives it back or dies.
 *
 * This is the one place the daemon writes messages.  It writes as a
 * sender of the queue would, through the same ring and
 * backlog code, under the holder id PROTO_HOLDER_DAEMON, with one
 * difference: it never waits.  Its locks are tried, not waited for (a
 * client holds them for microseconds, or forever if it is stopped), room
 * in the ring is taken only if it is there, and the window is sent to
 * without blocking.  What cannot be written now stays DOOMED in the
 * source ring and is tried again at the next sweep.  What could never be
 * written (larger than the dead-letter queue takes) is dropped.
 *
 * Every message of a doomed chunk goes into one chunk of the dead-letter
 * queue (a batch when there are several), so a chunk is moved whole or
 * not at all, and a retry never writes part of it twice.  If the daemon
 * dies between the write and the release of the source (a chunk, or what
 * it kept aside), the next one writes it again: at least once.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "backlog.h"
#include "inject.h"
#include "ring_impl.h"
#include "util.h"

static int window_send(void *ctx, const void *msg, size_t len, unsigned prio)
{
	const struct queue *q = ctx;

	return window_put(&q->ring, q->mq, msg, len, prio);
}

static long window_waiting(void *ctx)
{
	const struct queue *q = ctx;
	struct mq_attr attr;

	return mq_getattr(q->mq, &attr) < 0 ? -errno : attr.mq_curmsgs;
}

int inject_write(struct queue *q, const struct ring *into, const struct ring_recview *msgs, unsigned n, unsigned prio,
                 unsigned deliveries, uint64_t expires)
{
	const struct backlog_window w = { .send = window_send, .waiting = window_waiting, .ctx = q };
	struct ring r;
	struct ring_ref ref;
	struct ring_chunk *c;
	uint64_t bytes = 0;
	int ret;

	if (!q->ring.hdr || queue_quarantined(q) || n == 0 || n > RING_BATCH_MAX)
		return 0;
	if (!into)
		return -EAGAIN; /* no lane for the daemon now (lane.c) */
	/* a view of its own: the daemon's ring has no holder id */
	r = *into;
	r.self = PROTO_HOLDER_DAEMON;
	r.nowait = true;
	r.bell = q->bell;
	if (n == 1) {
		bytes = msgs[0].len;
	} else {
		for (unsigned i = 0; i < n; i++)
			bytes += ring_rec_size(msgs[i].len);
	}
	if (bytes > r.max_payload)
		return 0; /* it can never take them */
	ret = ring_reserve(&r, bytes, 0, &ref);
	if (ret < 0)
		return ret == -EMSGSIZE ? 0 : -EAGAIN;
	c = ring_chunk_at(&r, ref.pos);
	if (n == 1) {
		memcpy(ref.payload, msgs[0].data, msgs[0].len);
	} else {
		unsigned char *p = ref.payload;

		for (unsigned i = 0; i < n; i++) {
			struct ring_rec rec = { .len = msgs[i].len };

			memcpy(p, &rec, sizeof(rec));
			memcpy(p + sizeof(rec), msgs[i].data, msgs[i].len);
			p += ring_rec_size(msgs[i].len);
		}
		c->kind = RING_KIND_BATCH;
		c->count = (uint16_t)n;
	}
	c->expires = expires;
	if (deliveries) {
		/* what a receiver had: its next taker sees it redelivered */
		ring_cs(&r, c)->deliveries = (uint16_t)MIN(deliveries, UINT16_MAX);
		atomic_store_explicit(&ring_cs(&r, c)->handed, n == 1 ? 1 : ring_batch_mask(n), memory_order_relaxed);
	}
	if (backlog_submit(&r, &ref, prio, n, &w, 0, 0) < 0)
		return -EAGAIN; /* the chunk was given back */
	if (deliveries) {
		atomic_fetch_add_explicit(&r.q->redelivered, n, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&r.q->sent, n, memory_order_relaxed);
		atomic_fetch_add_explicit(&r.q->sent_ring, n, memory_order_relaxed);
	}
	return 1;
}
