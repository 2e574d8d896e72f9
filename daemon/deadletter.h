/*
 * deadletter.h - moving messages into a dead-letter queue (deadletter.c).
 */
#ifndef IPCQ_DEADLETTER_H
#define IPCQ_DEADLETTER_H

#include "queue.h"

/* Write n messages (at most RING_BATCH_MAX) into dlq with priority prio,
 * as one chunk, without waiting: 1 written, 0 never can be (dlq cannot
 * take them: they are to be dropped), -EAGAIN not now (its locks are
 * busy, or its ring full). */
int deadletter_write(struct queue *dlq, const struct ring_recview *msgs, unsigned n, unsigned prio);

#endif
