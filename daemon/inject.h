/* SPDX-License-Identifier: Apache-2.0 */
/*
 * inject.h - the daemon writing messages into a queue (inject.c): into
 * a dead-letter queue, and back into the queue a message moved aside
 * came from.
 */
#ifndef IPCQ_INJECT_H
#define IPCQ_INJECT_H

#include "queue.h"

/* Write n messages (at most RING_BATCH_MAX) into q with priority prio,
 * as one chunk, without waiting: 1 written, 0 never can be (q cannot
 * take them: they are to be dropped), -EAGAIN not now (its locks are
 * busy, or its ring full).  deliveries > 0 writes one message delivered
 * that many times before (its next taker sees it redelivered); expires
 * is its expiry (ring_chunk.expires), 0 for none.  into: the ring of q
 * the daemon writes (queue_daemon_ring). */
int inject_write(struct queue *q, const struct ring *into, const struct ring_recview *msgs, unsigned n, unsigned prio,
                 unsigned deliveries, uint64_t expires);

#endif
