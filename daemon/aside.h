/* SPDX-License-Identifier: Apache-2.0 */
/*
 * aside.h - messages the daemon moved out of a queue's ring while their
 * receiver keeps them long (aside.c; the handshake is ring.c's "Moving
 * aside").
 */
#ifndef IPCQ_ASIDE_H
#define IPCQ_ASIDE_H

#include <stdbool.h>
#include <stdint.h>

#include "ring.h"

struct daemon;
struct queue;

/* Bounds, per queue: messages kept, and their bytes (as a share of the
 * ring: what is kept aside is what the ring would have held). */
#define ASIDE_MAX 4096u
#define ASIDE_BYTES_SHARE 4u /* at most ring_size / 4 */

/* One message kept aside: leased to holder, who knows it as the chunk
 * at from_offset of generation from_gen.  Its bytes are in a shared
 * object of the daemon's own ("<queue's objects>.a<seq>", mode 0600,
 * never passed to a client), so that a restarted daemon finds them. */
struct aside_entry {
	uint32_t holder;
	uint32_t seq;
	uint64_t from_offset, from_gen;
	uint64_t since_ms; /* when it was moved: ack_timeout counts from here, so a lease
	                    * moved aside may last the time before its move longer */
	uint64_t expires;
	uint32_t prio, deliveries, len;
	uint8_t pending;   /* enum aside_how: what its holder asked and the daemon has still to do */
};

struct aside_table {
	struct aside_entry *v;
	size_t n, cap;
	uint64_t bytes;
	uint32_t next_seq;
};

/* What a holder does with a message kept aside (PROTO_OP_MOVED's arg). */
enum aside_how {
	ASIDE_KEEP = 0,    /* nothing yet (an entry's pending) */
	ASIDE_ACK = 1,     /* acknowledged: forgotten */
	ASIDE_REQUEUE = 2, /* given back: into the queue again */
	ASIDE_REJECT = 3,  /* rejected: to the dead-letter queue */
};

/* Keep a message of holder's chunk aside (ring_reclaim_ops.move_aside):
 * 0, or a negative errno (-ENOSPC at the bounds). */
int aside_keep(struct daemon *d, struct queue *q, uint32_t holder, uint64_t offset, uint64_t gen,
               const struct ring_recview *msg, unsigned prio, unsigned deliveries, uint64_t expires);
/* Forget what aside_keep kept of that chunk (its holder came back for it). */
void aside_forget(struct daemon *d, struct queue *q, uint32_t holder, uint64_t offset, uint64_t gen);
/* Its holder acknowledges, gives back or rejects it: 0, or -ENOENT when
 * the daemon keeps nothing of that chunk for that holder. */
int aside_settle(struct daemon *d, struct queue *q, uint32_t holder, uint64_t offset, uint64_t gen, enum aside_how how);
/* The periodic sweep: what holders gave back, what dead holders held and
 * what was held past ack_timeout goes back into the queue (or to its
 * dead-letter queue, past max_deliveries or its ttl); rejected ones to
 * the dead-letter queue.  Without waiting: what cannot be written now
 * waits for the next sweep. */
void aside_sweep(struct daemon *d, struct queue *q);
/* A purge: what waits to go into the queue again (given back, or its
 * holder died) is dropped with the queue's other waiting messages; what a
 * live holder keeps (or rejected, on its way to the dead-letter queue)
 * stays.  Returns the messages dropped. */
unsigned aside_purge(struct daemon *d, struct queue *q);
/* After a restart: take back what the last daemon kept aside for q;
 * what it kept of a chunk its holder still has TAKEN (the move did not
 * finish) is forgotten. */
void aside_adopt(struct daemon *d, struct queue *q);
/* Forget everything kept for q; with unlink_objects, remove the objects. */
void aside_clear(struct daemon *d, struct queue *q, bool unlink_objects);

static inline bool aside_full(const struct aside_table *t, uint64_t ring_size)
{
	return t->n >= ASIDE_MAX || t->bytes >= ring_size / ASIDE_BYTES_SHARE;
}

#endif
