/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ring_impl.h - the ring's internals that backlog.c shares with ring.c.
 * Not for the library's other files nor for the daemon: they use ring.h
 * and backlog.h.
 */
#ifndef IPCQ_RING_IMPL_H
#define IPCQ_RING_IMPL_H

#include <time.h>

#include "ring.h"

/* The position of the chunk at offset off, in the lap a header's pos (a
 * sender may have written anything there) says: always this chunk's. */
static inline uint64_t ring_pos_at(uint64_t pos, uint64_t off, uint64_t ds)
{
	uint64_t lap = pos - pos % ds;

	return lap > UINT64_MAX - ds ? off : lap + off; /* (no lap that wraps) */
}

static inline struct ring_chunk *ring_chunk_at(const struct ring *r, uint64_t pos)
{
	return (struct ring_chunk *)(r->data + pos % r->data_size);
}

/* The state of the chunk c (in the data area), in the control object. */
static inline struct ring_cstate *ring_cs(const struct ring *r, const struct ring_chunk *c)
{
	return &r->states[(size_t)((const unsigned char *)c - r->data) / RING_ALIGN];
}

static inline uint64_t ring_chunk_size_for(uint64_t len)
{
	return (RING_CHUNK_HDR + len + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1);
}

/* Sender: the chunk's payload is whole (before its word says so). */
static inline void ring_seal(struct ring_chunk *c)
{
	atomic_store_explicit(&c->sealed, c->gen, memory_order_release);
}

/* The locks (see ring.c): the senders' and the shared one for a process
 * that maps the data writable, the shared one alone for a receive-only
 * client.  ring_lock_until: by an absolute
 * CLOCK_MONOTONIC deadline (NULL: as long as it takes); -ETIMEDOUT, or
 * -EOWNERDEAD when this process is no holder.  ring_trylock: 0 or -EBUSY.
 * ring_lock_ms: as ring_lock_until, timeout_ms from now (< 0: as long as
 * it takes; 0: RING_LOCK_GRACE_MS, a holder descheduled), the clock read
 * only when the lock is busy. */
int ring_lock_until(struct ring *r, const struct timespec *dl);
int ring_trylock(struct ring *r);
int ring_lock_ms(struct ring *r, int timeout_ms);
void ring_unlock(struct ring *r);

/* Under the lock: wait (lock released meanwhile) until try(r, arg),
 * called with the lock held, returns something other than -EAGAIN, or
 * the timeout passes (-ETIMEDOUT; -EAGAIN with timeout 0).  Returns with
 * the lock held when try returned 0. */
int ring_with_room(struct ring *r, int timeout_ms, int (*try)(struct ring *r, void *arg), void *arg);

/* Under the lock: lay a new chunk of size bytes (header included) for a
 * payload of len at head, RESERVED by this process; -EAGAIN if no room. */
int ring_try_reserve_locked(struct ring *r, uint64_t size, size_t len, struct ring_ref *out);

/* Repair what a holder killed growing the newest batch left (ring.c). */
void ring_repair_newest(struct ring *r);

bool ring_positions_valid(const struct ring *r, uint64_t head, uint64_t tail);
void ring_advance_tail(struct ring *r);
/* Wake producers waiting for room (ring space or depth). */
void ring_wake_room(struct ring *r);
void ring_bump_hwm(struct ring_hdr *h, uint64_t used);

/* The full mask of a batch of n records. */
static inline uint64_t ring_batch_mask(unsigned n)
{
	return n >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1);
}

/* Messages of a chunk still waiting: a raw chunk's one, or a batch's
 * records not done. */
static inline unsigned ring_chunk_msgs(const struct ring *r, const struct ring_chunk *c)
{
	if (c->kind != RING_KIND_BATCH)
		return 1;
	if (c->count == 0 || c->count > RING_BATCH_MAX)
		return 0;
	return (unsigned)__builtin_popcountll(ring_batch_mask(c->count) &
	                                      ~atomic_load_explicit(&ring_cs(r, c)->done, memory_order_relaxed));
}

/* Depth bookkeeping: messages waiting, window and backlog. */
static inline void ring_depth_add(struct ring *r, int64_t n)
{
	atomic_fetch_add_explicit(&r->q->depth, n, memory_order_relaxed);
}

#endif
