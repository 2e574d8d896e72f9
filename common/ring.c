/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ring.c - the per-queue shared-memory ring that carries bulk payloads.
 *
 * A ring is two shared objects (shm_open, created mode 0600 by the daemon),
 * so that page protections can follow a client's rights:
 *
 *   control object, read-write for every client of the queue:
 *     [ ring_hdr: one page ][ RING_SLOTS receive slots ][ chunk states ]
 *   data object, read-write for senders and the daemon, read-only for
 *   receive-only clients (the daemon passes them a read-only descriptor):
 *     [ ring_spage: the senders' page ][ data area, data_size ]
 *
 * The data area holds chunks laid end to end.  A chunk is a 64-byte
 * ring_chunk header followed by the payload, rounded up to RING_ALIGN
 * (128) bytes.  A chunk never wraps: when one does not fit before the end
 * of the area, a PAD chunk fills the rest and the chunk starts at offset
 * 0.  Every chunk's state (its word, a batch's handed and done bits, its
 * backlog level) lives apart, in the control object's table, one entry
 * per RING_ALIGN bytes of data area: chunks are at least that long, so no
 * two share an entry.
 *
 * Positions.  head and tail (in the senders' page) are monotonic 64-bit
 * byte positions; a chunk at position p lives at offset p % data_size.
 * Bytes in use = head - tail, so a full ring and an empty one are never
 * confused.  Every chunk between tail and head has a valid header;
 * nothing outside that range matters.
 *
 * Who writes what.
 *  - head, next_gen, last, the header and payload of a chunk: its sender,
 *    under the locks (ring_reserve, backlog.c).  The sealed word of a
 *    header says the payload is whole: it holds the chunk's generation
 *    from the moment the sender is done with the bytes, and 0 before.
 *  - tail: senders and the daemon, without a lock (advance_tail): it
 *    moves by compare-and-swap over the run of RELEASED/PAD chunks that
 *    starts at it.  Receivers only mark their chunks RELEASED and wake
 *    the senders waiting for room, who move the tail themselves.  So
 *    consumers may release out of order, space returns as soon as every
 *    chunk before it is released, and neither a consumer nor the daemon
 *    ever waits for a lock a client holds.
 *  - a chunk's word (state | holder | low 32 bits of its generation), in
 *    the table: changed only by compare-and-swap or by its current owner,
 *    without the lock.  The generation in the word makes a CAS fail if the
 *    chunk was reused in between (no ABA), so a stale descriptor can never
 *    take a newer chunk.
 *  - the backlog's levels and counters, in ring_hdr: under the shared lock
 *    (backlog.c).
 *
 * Two locks, both futex words naming their holder (see "The locks"
 * below): the senders' lock, in the senders' page, and the shared lock,
 * in ring_hdr.  A process that maps the data object writable takes the
 * senders' lock, then the shared one; a receive-only client only the
 * shared one (to take from the backlog, or give a batch back).  So what a
 * receive-only client can write (the shared lock included) never lets two
 * senders lay chunks over each other.
 *
 * Life of a chunk:
 *   RESERVED(producer) -> PUBLISHING(producer) -> [descriptor on the mq]
 *   -> PUBLISHED -> TAKEN(consumer) -> RELEASED -> (the tail passes it)
 * A consumer may take a chunk in PUBLISHING or PUBLISHED whose header is
 * sealed with its generation: the producer seals it and stores PUBLISHING
 * (release) before it sends the descriptor.
 *
 * Memory ordering.  Payload writes happen before the seal and the
 * PUBLISHING store (release); a consumer's successful CAS (acquire) makes
 * them visible.  A consumer's reads of the payload happen before its
 * RELEASED store (release); advance_tail loads the word with acquire
 * before the tail CAS that hands the space to a new producer.  A new
 * chunk's header is written before head moves past it (release), and is
 * overwritten only after tail has passed it: so a header read (after an
 * acquire load of head) is genuine if tail had not passed it by the time
 * it was read.
 *
 * Waiting for space.  The lock is never held while waiting.  space_seq is
 * a futex word that every release moves on.  A producer reads it, looks
 * for room (which moves and reads tail), and when there is none counts
 * itself in waiters and sleeps on the futex with its deadline, as long as
 * space_seq still holds what it read; a releaser marks its chunk, then
 * moves space_seq, then wakes up to waiters producers, bounded by
 * RING_WAKE_MAX (waiters is shared memory).  So a release either comes
 * before the producer's look (which sees the room) or moves space_seq
 * before the sleep (which then returns at once) or sees the producer in
 * waiters (and wakes it): no wake-up is lost.  A producer that got room
 * after a wait passes one wake-up on.  Not a POSIX semaphore: glibc
 * aborts the process when a sem_t it posts holds garbage, and any client
 * can write garbage there.
 *
 * The locks are held only for a few stores; every wait for them has the
 * caller's deadline.  Every store sequence under them leaves the ring
 * consistent at each step (a new chunk's header is written before head
 * moves past it), so when a holder dies the daemon breaks its locks and
 * the next producer goes on.
 *
 * Crash points, and who cleans up (the daemon, ring_reclaim, when it
 * learns from a pidfd that a client died, and on a periodic sweep; what
 * a client holds is marked with the holder id the daemon gave its process,
 * see daemon/peer.h):
 *  - producer dies holding the locks: see above.
 *  - producer dies after reserve, before PUBLISHING: the chunk is RESERVED
 *    by a dead holder; the daemon releases it.
 *  - producer dies between PUBLISHING and the mq send completing: the
 *    descriptor may or may not be on the mq.  The daemon sends it again,
 *    flagged RESENT; if both copies exist, the second one finds the chunk
 *    no longer takeable and is dropped silently as a duplicate.
 *  - consumer dies after taking the descriptor off the mq, before taking
 *    the chunk: consumers receive into buffers of their own that they
 *    share with the daemon alone (a memfd per receiving handle, see
 *    libclient/open.c and daemon/rbuf.c), so the daemon finds the
 *    descriptor there and sends it again, if it names a sealed chunk
 *    waiting to be taken (ring_resend_desc).  Should a descriptor be lost
 *    all the same (a handle whose buffers the daemon does not have), the
 *    chunk stays PUBLISHED with no descriptor anywhere; the daemon's sweep
 *    finds it: a chunk PUBLISHED with the same generation at two walks
 *    that each began with the window empty is an orphan, and its
 *    descriptor is sent again (orphan_check).  A consumer only slow to
 *    take it finds the chunk taken by then, and drops its copy as a
 *    duplicate.
 *  - consumer dies holding a TAKEN chunk (a view): at-least-once queues
 *    get it redelivered; at-most-once queues drop it (counted).
 *  - the daemon dies: rings and mqs persist; the new daemon adopts the
 *    ring (ring_attach checks magic, version and layout) and its periodic
 *    sweep finishes any redelivery the old one left half done (chunks
 *    left in PUBLISHING with owner 0).
 *
 * Untrusted input.  Clients that may use a queue can write its control
 * object, senders its data object too, and the daemon and every other
 * client read both, so nothing read from shared memory is trusted:
 *  - bounds: the geometry is copied into struct ring at attach time (the
 *    daemon checked it at create), every descriptor and every chunk header
 *    met on a walk is checked against it, and head and tail must be
 *    positions the ring could have (positions_valid);
 *  - loops: every walk is bounded by the number of chunks the data area
 *    can hold, every CAS retry loop by a count, every wake-up of waiting
 *    producers by RING_WAKE_MAX, whatever the counters say;
 *  - waits: the daemon takes no lock on the ring at all (it reclaims and
 *    moves the tail with atomics alone), and a client's lock and space
 *    waits end at its own deadline;
 *  - a state that fails a check is marked corrupt: the library returns
 *    -EBADMSG, and the daemon quarantines the queue (daemon/queue.c).
 * Rights.  A receive-only client writes no chunk header, no payload, no
 * position and not the senders' lock: it cannot make a message appear
 * that no sender wrote, nor make a half-written one takeable (the seal).
 * What it can still do, with the states and the shared lock it must be
 * able to write to receive at all, is written in the README's threat
 * model: replay a message whose bytes are still in the ring, drop
 * messages, hold the shared lock, spoil the backlog's order and counters,
 * and release a chunk another receiver holds, so that a sender may reuse
 * its space under that receiver's view (a copy is checked after it is
 * made, see recv.c).  A sender can do all that and write any payload.
 */
#include "config.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ring_impl.h"
#include "util.h"

_Static_assert(RING_CHUNK_HDR == PROTO_RING_RESERVE, "max_payload leaves room for exactly one chunk header");
_Static_assert(PROTO_RING_PAGE % RING_ALIGN == 0, "a data area is whole chunks");

static uint64_t slot_size_for(uint32_t msg_size)
{
	(void)msg_size;
	return sizeof(struct ring_slot);
}

static uint64_t slots_bytes(uint32_t msg_size)
{
	return ALIGN_UP(slot_size_for(msg_size) * RING_SLOTS, (uint64_t)RING_HDR_SIZE);
}

static uint64_t states_bytes(uint64_t data_size)
{
	return ALIGN_UP(data_size / RING_ALIGN * sizeof(struct ring_cstate), (uint64_t)RING_HDR_SIZE);
}

int ring_geometry_check(const struct ring_geometry *geo, const char **why)
{
	ipcq_geometry g = { .max_msgs = 1, .msg_size = geo->msg_size, .ring_size = geo->data_size, .prefetch = 1,
		            .max_payload = geo->max_payload };

	if (geo->delivery > 1) {
		if (why)
			*why = "unknown delivery mode";
		return -EINVAL;
	}
	return proto_geometry_check(&g, why);
}

size_t ring_map_size(const struct ring_geometry *geo)
{
	return RING_HDR_SIZE + slots_bytes(geo->msg_size) + states_bytes(geo->data_size);
}

size_t ring_data_map_size(const struct ring_geometry *geo)
{
	return RING_SPAGE_SIZE + geo->data_size;
}

static void ring_bind(struct ring *r, void *mem, size_t map_len, void *data, size_t data_len, bool writable)
{
	r->hdr = mem;
	r->map_len = map_len;
	r->slots = (unsigned char *)mem + r->hdr->slots_offset;
	r->states = (struct ring_cstate *)((unsigned char *)mem + r->hdr->states_offset);
	r->sp = data;
	r->data = (unsigned char *)data + RING_SPAGE_SIZE;
	r->data_map_len = data_len;
	r->writable = writable;
	r->data_size = r->hdr->data_size;
	r->max_payload = r->hdr->max_payload;
	r->slot_size = r->hdr->slot_size;
	r->msg_size = r->hdr->msg_size;
	r->delivery = r->hdr->delivery;
	r->bell = -1;
	r->nowait = false;
	r->q = r->hdr;
	r->lane = 0;
}

/* The header's fixed fields (all but the magic, written last). */
static void write_fixed(struct ring_hdr *h, const struct ring_geometry *geo, uint32_t slot_size, uint64_t states_offset,
                        uint64_t total_size)
{
	h->version = RING_VERSION;
	h->hdr_size = RING_HDR_SIZE;
	h->data_size = geo->data_size;
	h->max_payload = geo->max_payload;
	h->msg_size = geo->msg_size;
	h->delivery = geo->delivery;
	h->nslots = RING_SLOTS;
	h->slot_size = slot_size;
	h->slots_offset = RING_HDR_SIZE;
	h->states_offset = states_offset;
	h->total_size = total_size;
}

int ring_format(struct ring *r, void *mem, size_t map_len, void *data, size_t data_len,
                const struct ring_geometry *geo)
{
	struct ring_hdr *h = mem;
	struct ring_spage *sp = data;

	if (ring_geometry_check(geo, NULL) || map_len != ring_map_size(geo) || data_len != ring_data_map_size(geo))
		return -EINVAL;
	memset(h, 0, RING_HDR_SIZE);
	write_fixed(h, geo, (uint32_t)slot_size_for(geo->msg_size), RING_HDR_SIZE + slots_bytes(geo->msg_size), map_len);
	atomic_store(&h->lock, 0);
	atomic_store(&h->space_seq, 0);
	/* the chunk states come zero with the fresh object (ring.h): written
	 * here, all of them would be resident, a quarter of the data area */
	memset((unsigned char *)mem + h->slots_offset, 0, h->states_offset - h->slots_offset);
	memset(sp, 0, RING_SPAGE_SIZE);
	sp->version = RING_VERSION;
	sp->data_size = geo->data_size;
	atomic_store(&sp->next_gen, 1);
	/* the magics go last: a half-formatted ring is never adopted */
	atomic_thread_fence(memory_order_release);
	sp->magic = RING_DATA_MAGIC;
	h->magic = RING_MAGIC;
	ring_bind(r, mem, map_len, data, data_len, true);
	return 0;
}

int ring_attach(struct ring *r, void *mem, size_t map_len, void *data, size_t data_len, bool writable)
{
	const struct ring_hdr *h = mem;
	const struct ring_spage *sp = data;
	struct ring_geometry geo;

	if (map_len < RING_HDR_SIZE || h->magic != RING_MAGIC || data_len < RING_SPAGE_SIZE ||
	    sp->magic != RING_DATA_MAGIC)
		return -EPROTO;
	if (h->version != RING_VERSION || h->hdr_size != RING_HDR_SIZE || sp->version != RING_VERSION)
		return -EPROTO;
	geo = (struct ring_geometry){ .data_size = h->data_size,
		                      .max_payload = h->max_payload,
		                      .msg_size = h->msg_size,
		                      .delivery = h->delivery };
	if (ring_geometry_check(&geo, NULL) || h->nslots != RING_SLOTS ||
	    h->slot_size != slot_size_for(h->msg_size) || h->slots_offset != RING_HDR_SIZE ||
	    h->states_offset != RING_HDR_SIZE + slots_bytes(h->msg_size) || h->total_size != map_len ||
	    ring_map_size(&geo) != map_len || sp->data_size != h->data_size || ring_data_map_size(&geo) != data_len)
		return -EINVAL;
	ring_bind(r, mem, map_len, data, data_len, writable);
	return 0;
}

void ring_join(struct ring *lane, const struct ring *home, unsigned id)
{
	lane->q = home->hdr;
	/* receivers are the queue's: its receive slots count them (a sender
	 * at a lap's end waits for them, ring_reserve) */
	lane->slots = home->slots;
	lane->slot_size = home->slot_size;
	lane->lane = (uint16_t)id;
	lane->bell = home->bell;
	lane->self = home->self;
	lane->nowait = home->nowait;
}

bool ring_geometry_equal(const struct ring *r, const struct ring_geometry *geo)
{
	return r->data_size == geo->data_size && r->max_payload == geo->max_payload &&
	       r->msg_size == geo->msg_size;
}

/* ---- the lock ---- */

/*
 * The locks: each a futex word, 0 when free, else its holder's id
 * shifted left by one, with bit 0 set once someone waits.  Not a pthread
 * mutex: a robust mutex keeps list pointers inside itself, which glibc
 * follows and writes through on lock and unlock, so any client that can
 * write the ring could make another client write where it chose.  A word
 * holds no pointer.  Every wait for it ends at the caller's deadline, so a
 * client stopped while holding it (SIGSTOP, a debugger) holds others up
 * only as long as they agreed to wait; when its holder dies, the daemon
 * breaks it (ring_reclaim), which every step under it allows: each leaves
 * the ring consistent.  The daemon itself never takes one.  Writers take
 * the senders' lock first, then the shared one, and give them back in
 * the other order.
 */
static long futex(_Atomic uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts, uint32_t val3)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, val3);
}

static int lock_word_until(_Atomic uint32_t *w, uint32_t self, const struct timespec *dl)
{
	uint32_t me = self << 1, cur = 0;

	if (atomic_compare_exchange_strong_explicit(w, &cur, me, memory_order_acquire, memory_order_relaxed))
		return 0;
	/* held for a few stores: a holder that runs lets go within the spin,
	 * and the wait in the kernel (and its wake-up) is spared */
	for (unsigned i = 0; i < RING_LOCK_SPIN && cur != 0; i++) {
		cpu_relax();
		cur = atomic_load_explicit(w, memory_order_relaxed);
		if (cur == 0 &&
		    atomic_compare_exchange_strong_explicit(w, &cur, me, memory_order_acquire, memory_order_relaxed))
			return 0;
	}
	for (;;) {
		if (cur == 0) {
			/* taken after a wait: others may wait too, so keep the bit */
			if (atomic_compare_exchange_weak_explicit(w, &cur, me | 1, memory_order_acquire,
			                                          memory_order_relaxed))
				return 0;
			continue;
		}
		if (!(cur & 1) && !atomic_compare_exchange_weak_explicit(w, &cur, cur | 1, memory_order_relaxed,
		                                                         memory_order_relaxed))
			continue;
		if (futex(w, FUTEX_WAIT_BITSET, cur | 1, dl, FUTEX_BITSET_MATCH_ANY) < 0 && errno == ETIMEDOUT)
			return -ETIMEDOUT;
		cur = atomic_load_explicit(w, memory_order_relaxed);
		if (dl && cur != 0) {
			struct timespec now;

			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec > dl->tv_sec || (now.tv_sec == dl->tv_sec && now.tv_nsec >= dl->tv_nsec))
				return -ETIMEDOUT;
		}
	}
}

static void unlock_word(_Atomic uint32_t *w)
{
	uint32_t was = atomic_exchange_explicit(w, 0, memory_order_release);

	if (was & 1)
		futex(w, FUTEX_WAKE, 1, NULL, 0);
}

int ring_lock_until(struct ring *r, const struct timespec *dl)
{
	int ret;

	if (r->self == 0 || r->self > PROTO_HOLDER_MAX)
		return -EOWNERDEAD;
	if (r->nowait)
		return ring_trylock(r) == 0 ? 0 : -ETIMEDOUT;
	if (!r->writable)
		return lock_word_until(&r->hdr->lock, r->self, dl);
	ret = lock_word_until(&r->sp->lock, r->self, dl);
	if (ret == 0 && (ret = lock_word_until(&r->hdr->lock, r->self, dl)) < 0)
		unlock_word(&r->sp->lock);
	return ret;
}

int ring_trylock(struct ring *r)
{
	uint32_t cur = 0;

	if (r->self == 0 || r->self > PROTO_HOLDER_MAX)
		return -EOWNERDEAD;
	if (r->writable && !atomic_compare_exchange_strong_explicit(&r->sp->lock, &cur, r->self << 1,
	                                                            memory_order_acquire, memory_order_relaxed))
		return -EBUSY;
	cur = 0;
	if (atomic_compare_exchange_strong_explicit(&r->hdr->lock, &cur, r->self << 1, memory_order_acquire,
	                                            memory_order_relaxed))
		return 0;
	if (r->writable)
		unlock_word(&r->sp->lock);
	return -EBUSY;
}

int ring_lock_ms(struct ring *r, int timeout_ms)
{
	struct timespec dl;
	int ret = ring_trylock(r);

	if (ret != -EBUSY)
		return ret;
	if (timeout_ms < 0)
		return ring_lock_until(r, NULL);
	dl = deadline_after(CLOCK_MONOTONIC, timeout_ms > 0 ? timeout_ms : RING_LOCK_GRACE_MS);
	return ring_lock_until(r, &dl);
}

/* The lock for at most RING_LOCK_GRACE_MS, for the last look of a
 * producer whose wait for space timed out. */
static int ring_lock_briefly(struct ring *r)
{
	struct timespec dl = deadline_after(CLOCK_MONOTONIC, RING_LOCK_GRACE_MS);

	return ring_lock_until(r, &dl);
}

void ring_unlock(struct ring *r)
{
	unlock_word(&r->hdr->lock);
	if (r->writable)
		unlock_word(&r->sp->lock);
}

/* Daemon: break a lock if a dead holder has it; waiters try again.  A
 * free lock wakes whoever still sleeps on it: an unlock wakes one waiter,
 * and one killed between its wake-up and its take passes the wake-up on
 * to no one; the next holder that took the lock without waiting (the bit
 * was gone with the unlock) wakes no one either.  So every walk of the
 * daemon's (each sweep, each death) wakes them; a waiter woken for
 * nothing looks at the word and sleeps again. */
static void break_word_of_dead(_Atomic uint32_t *w, const struct ring_reclaim_ops *ops)
{
	uint32_t cur = atomic_load_explicit(w, memory_order_acquire);

	if (cur != 0 && !ops->is_dead(RING_LOCK_HOLDER(cur), ops->ctx))
		return;
	if (cur == 0 ||
	    atomic_compare_exchange_strong_explicit(w, &cur, 0, memory_order_release, memory_order_relaxed))
		futex(w, FUTEX_WAKE, INT32_MAX, NULL, 0);
}

static void break_lock_of_dead(struct ring *r, const struct ring_reclaim_ops *ops)
{
	break_word_of_dead(&r->sp->lock, ops);
	break_word_of_dead(&r->hdr->lock, ops);
	/* (producers waiting for room: ring_reclaim wakes them at its end) */
}

/* Move space_seq on, and wake at most max producers waiting for space
 * (bounded: waiters is shared memory a client may have set to anything). */
static void wake_space(struct ring *r, uint32_t max)
{
	uint32_t n;

	atomic_fetch_add_explicit(&r->hdr->space_seq, 1, memory_order_seq_cst);
	n = atomic_load_explicit(&r->hdr->waiters, memory_order_seq_cst);
	if (n)
		futex(&r->hdr->space_seq, FUTEX_WAKE, MIN(n, max), NULL, 0);
}

void ring_wake_room(struct ring *r)
{
	wake_space(r, RING_WAKE_MAX);
}

/* Whether a chunk at pos (before head) may have this size: shared memory
 * is not trusted, so every walk checks it. */
static bool chunk_size_valid(const struct ring *r, uint64_t pos, uint64_t head, uint64_t size)
{
	return size >= RING_ALIGN && size % RING_ALIGN == 0 && pos % r->data_size + size <= r->data_size &&
	       size <= head - pos;
}

/* Whether head and tail are positions this ring could have: tail <= head,
 * at most the data area apart, both on chunk boundaries. */
bool ring_positions_valid(const struct ring *r, uint64_t head, uint64_t tail)
{
	return tail <= head && head - tail <= r->data_size && head % RING_ALIGN == 0 && tail % RING_ALIGN == 0;
}

static void mark_corrupt(struct ring *r)
{
	atomic_store_explicit(&r->hdr->corrupt, 1, memory_order_relaxed);
}

/* A consistent pair of positions read without the lock: tail first (so
 * head, read after, is not behind it), and again while tail moved between
 * the reads (head may then be more than the data area past the old tail).
 * -EBADMSG when they are impossible with tail standing still, -EAGAIN
 * when tail kept moving (retry later; not corruption). */
static int load_positions(const struct ring *r, uint64_t *head, uint64_t *tail)
{
	for (int tries = 0; tries < 8; tries++) {
		*tail = atomic_load_explicit(&r->sp->tail, memory_order_acquire);
		*head = atomic_load_explicit(&r->sp->head, memory_order_acquire);
		if (ring_positions_valid(r, *head, *tail))
			return 0;
		if (atomic_load_explicit(&r->sp->tail, memory_order_acquire) == *tail)
			return -EBADMSG;
	}
	return -EAGAIN;
}

/* Move tail over the run of released chunks at its front.  Lock-free, so
 * anyone may: a releaser, a producer short of space, the daemon after a
 * reclaim.  tail only grows, so a compare-and-swap from the position whose
 * header was read makes each step exact (no ABA), and a header read while
 * tail still pointed at it was not yet overwritten.  Bounded by the number
 * of chunks the data area can hold, whatever is in shared memory. */
void ring_advance_tail(struct ring *r)
{
	struct ring_hdr *h = r->hdr;

	if (!r->writable)
		return; /* a receive-only client: senders and the daemon move it */
	for (uint64_t steps = r->data_size / RING_ALIGN + 1; steps; steps--) {
		uint64_t head, tail, size;
		struct ring_chunk *c;
		enum ring_state st;
		int ret = load_positions(r, &head, &tail);

		if (ret == -EBADMSG)
			mark_corrupt(r);
		if (ret < 0)
			return;
		if (tail == head)
			return;
		c = ring_chunk_at(r, tail);
		/* (seq_cst with the CAS below: see consumer_release) */
		st = RING_WORD_STATE(atomic_load_explicit(&ring_cs(r, c)->word, memory_order_seq_cst));
		if (st != RING_RELEASED && st != RING_PAD)
			return;
		size = c->size;
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&r->sp->tail, memory_order_relaxed) != tail)
			continue; /* moved meanwhile: what we read may be stale */
		if (!chunk_size_valid(r, tail, head, size)) {
			mark_corrupt(r);
			return;
		}
		if (atomic_compare_exchange_strong_explicit(&r->sp->tail, &tail, tail + size, memory_order_seq_cst,
		                                            memory_order_relaxed))
			atomic_fetch_sub_explicit(&h->chunks, 1, memory_order_relaxed);
	}
}

/* Release a chunk and let its space (and any behind it) return. */
static void release_and_advance(struct ring *r, struct ring_chunk *c, uint64_t gen)
{
	atomic_store_explicit(&ring_cs(r, c)->word, RING_WORD(RING_RELEASED, 0, gen), memory_order_release);
	ring_advance_tail(r);
	ring_wake_room(r);
}

/* A consumer's release: only of a chunk it still holds (the daemon may
 * have given it to another receiver meanwhile).  Producers asleep for
 * room are woken only when tail has come to the chunk at pos (or past
 * it): space returns in order, so the release of a chunk behind tail's
 * frees nothing a producer could use until the chunk at tail is released,
 * and that release wakes them (a receive-only consumer cannot move tail:
 * the producer it wakes does).  The others only move space_seq, which a
 * producer between its look and its sleep sees.  Both sides order their
 * store before their load (the state word here, then tail; tail in
 * ring_advance_tail, then the state word), so one of them sees the
 * other's: a release that finds tail behind it is passed over by the
 * release at tail, whose releaser wakes the producers. */
static void consumer_release(struct ring *r, struct ring_chunk *c, uint64_t pos, uint64_t gen)
{
	uint64_t w = RING_WORD(RING_TAKEN, r->self, gen);

	if (!atomic_compare_exchange_strong_explicit(&ring_cs(r, c)->word, &w, RING_WORD(RING_RELEASED, 0, gen),
	                                             memory_order_seq_cst, memory_order_relaxed))
		return;
	ring_advance_tail(r);
	if (atomic_load_explicit(&r->sp->tail, memory_order_seq_cst) >= pos)
		ring_wake_room(r);
	else
		atomic_fetch_add_explicit(&r->hdr->space_seq, 1, memory_order_seq_cst);
}

/* ---- producer ---- */

void ring_bump_hwm(struct ring_hdr *h, uint64_t used)
{
	uint64_t old = atomic_load_explicit(&h->hwm, memory_order_relaxed);

	while (used > old &&
	       !atomic_compare_exchange_weak_explicit(&h->hwm, &old, used, memory_order_relaxed,
	                                              memory_order_relaxed))
		;
}

/* Fill the rest of the data area with a PAD chunk, so the next chunk
 * starts at offset 0.  If the ring was empty, the tail passes it at once. */
static void pad_to_end_locked(struct ring *r, uint64_t head)
{
	struct ring_chunk *c = ring_chunk_at(r, head);

	c->gen = 0;
	c->size = r->data_size - head % r->data_size;
	c->len = 0;
	c->magic = RING_CHUNK_MAGIC;
	c->pos = head;
	c->kind = RING_KIND_RAW;
	c->count = 0;
	atomic_store_explicit(&ring_cs(r, c)->word, RING_WORD(RING_PAD, 0, 0), memory_order_release);
	atomic_fetch_add_explicit(&r->hdr->chunks, 1, memory_order_relaxed);
	atomic_store_explicit(&r->sp->head, head + c->size, memory_order_release);
	ring_advance_tail(r);
}

/* A holder that died growing the newest batch (backlog.c) may have left
 * it longer than head allows; its end becomes head.  With or without the
 * lock: a compare-and-swap from the head it read, to the value a live
 * grower would store itself. */
void ring_repair_newest(struct ring *r)
{
	uint64_t head = atomic_load_explicit(&r->sp->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&r->sp->tail, memory_order_acquire);
	uint64_t last = r->sp->last, size;
	struct ring_chunk *c;

	if (!r->writable) /* receive-only: senders and the daemon repair */
		return;
	if (last < tail || last >= head || last % RING_ALIGN || !ring_positions_valid(r, head, tail))
		return;
	c = ring_chunk_at(r, last);
	size = c->size;
	if (c->magic == RING_CHUNK_MAGIC && c->pos == last && size > head - last && size % RING_ALIGN == 0 &&
	    last % r->data_size + size <= r->data_size && last + size - tail <= r->data_size &&
	    RING_WORD_STATE(atomic_load_explicit(&ring_cs(r, c)->word, memory_order_acquire)) == RING_QUEUED)
		atomic_compare_exchange_strong_explicit(&r->sp->head, &head, last + size, memory_order_release,
		                                        memory_order_relaxed);
}

/* A walk without the lock met a chunk at pos whose *size does not fit
 * before *head.  Either head moved since the walk read it (a sender grew
 * the newest batch and may have published it since: the word is read
 * first, then head again), or the newest batch is growing right now, or
 * its grower died mid-growth (it is QUEUED, longer than head allows:
 * nothing in it needs reclaiming, and it is repaired), or it is corrupt.
 * Returns WALK_ON to go on with *head and *size read again, WALK_TAIL
 * when the tail passed pos meanwhile (go on from the tail), WALK_STOP to
 * stop the walk here, or -EBADMSG. */
enum { WALK_STOP = 0, WALK_ON = 1, WALK_TAIL = 2 };
static int walk_recheck(struct ring *r, const struct ring_chunk *c, uint64_t pos, uint64_t *head, uint64_t *size)
{
	uint64_t w = atomic_load_explicit(&ring_cs(r, c)->word, memory_order_acquire);
	uint64_t h2 = atomic_load_explicit(&r->sp->head, memory_order_acquire);

	*size = c->size;
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&r->sp->tail, memory_order_relaxed) > pos)
		return WALK_TAIL; /* what we read may be a newer chunk's */
	if (h2 != *head) {
		*head = h2;
		if (chunk_size_valid(r, pos, h2, *size))
			return WALK_ON;
	}
	if (RING_WORD_STATE(w) == RING_QUEUED && *size > *head - pos && *size % RING_ALIGN == 0 &&
	    pos % r->data_size + *size <= r->data_size) {
		ring_repair_newest(r);
		return WALK_STOP;
	}
	return -EBADMSG;
}

/* One step of a walk without the lock: the chunk at *pos (into *c, its
 * size into *size), its header read while the tail had not passed it and
 * its size checked against *head (walk_recheck when it does not fit).
 * WALK_ON: use *c, then go on at *pos + *size; WALK_TAIL: the tail passed
 * *pos meanwhile, and *pos is the tail now; WALK_STOP; or -EBADMSG. */
static int walk_step(struct ring *r, uint64_t *pos, uint64_t *head, struct ring_chunk **c, uint64_t *size)
{
	int ret;

	*c = ring_chunk_at(r, *pos);
	*size = (*c)->size;
	atomic_thread_fence(memory_order_acquire);
	ret = atomic_load_explicit(&r->sp->tail, memory_order_relaxed) > *pos ? WALK_TAIL
	      : chunk_size_valid(r, *pos, *head, *size)                      ? WALK_ON
	                                                                      : walk_recheck(r, *c, *pos, head, size);
	if (ret == WALK_TAIL)
		*pos = atomic_load_explicit(&r->sp->tail, memory_order_acquire);
	return ret;
}

/* The start of the data area chunks of this size keep to while little is
 * in use: room for RING_HOT_CHUNKS of them, within RING_HOT_MIN and
 * RING_HOT.  Small, so that it stays in the caches (on a machine with
 * 512 KiB of L2 a core, 64 KiB messages went 1.5-2 times as fast through
 * 1 MiB as through 8 MiB); no smaller than a few chunks, so that large
 * ones still go round it rather than through the whole area. */
static uint64_t hot_extent(uint64_t size)
{
	return MIN(MAX(size * RING_HOT_CHUNKS, (uint64_t)RING_HOT_MIN), (uint64_t)RING_HOT);
}

/* Whether a chunk of size bytes reserved at head (tail <= head) would
 * end past the hot extent of a large data area while little is in use:
 * it wraps early then, if no chunk waits (ring_try_reserve_locked). */
static bool wrap_early(const struct ring *r, uint64_t head, uint64_t tail, uint64_t size)
{
	uint64_t ds = r->data_size, hot = hot_extent(size);

	return ds >= 4 * RING_HOT && head % ds + size > hot && head % ds + size <= ds && head - tail + size <= hot / 2;
}

/* Whether chunk c, which a receiver took, is a batch it has not handed
 * all of out (a count out of range is none). */
static bool held_batch_waits(const struct ring *r, const struct ring_chunk *c)
{
	unsigned count = c->count;

	return c->kind == RING_KIND_BATCH && count && count <= RING_BATCH_MAX &&
	       (atomic_load_explicit(&ring_cs(r, c)->handed, memory_order_relaxed) & ring_batch_mask(count)) !=
	               ring_batch_mask(count);
}

/* Whether no chunk between tail and head waits to be taken (each is held
 * by a receiver, or done with), looking at 64 at most.  Exact under the
 * lock; a hint without it. */
static bool none_waiting(struct ring *r, uint64_t tail, uint64_t head)
{
	uint64_t pos = tail;

	for (unsigned steps = 64; pos < head; steps--) {
		struct ring_chunk *c;
		uint64_t size, w;
		enum ring_state st;
		int ok;

		if (!steps)
			return false;
		ok = walk_step(r, &pos, &head, &c, &size);
		if (ok == WALK_TAIL)
			continue;
		if (ok != WALK_ON)
			return false;
		w = atomic_load_explicit(&ring_cs(r, c)->word, memory_order_acquire);
		st = RING_WORD_STATE(w);
		/* a batch with messages its receiver has not handed out (or a
		 * count that cannot say) */
		if (st == RING_TAKEN && c->kind == RING_KIND_BATCH &&
		    (c->count == 0 || c->count > RING_BATCH_MAX || held_batch_waits(r, c)))
			return false;
		if (st != RING_TAKEN && st != RING_RELEASED && st != RING_PAD && st != RING_DOOMED)
			return false;
		pos += size;
	}
	return true;
}

int ring_try_reserve_locked(struct ring *r, uint64_t size, size_t len, struct ring_ref *out)
{
	struct ring_hdr *h = r->hdr;
	uint64_t ds = r->data_size, head, tail, gen;
	struct ring_chunk *c;

	ring_repair_newest(r);
	ring_advance_tail(r);
	head = atomic_load_explicit(&r->sp->head, memory_order_relaxed);
	tail = atomic_load_explicit(&r->sp->tail, memory_order_relaxed);
	if (!ring_positions_valid(r, head, tail))
		return -EBADMSG;

	/* While little is in use, keep to the first bytes of a large data
	 * area (hot_extent): they are still in the caches from the last lap,
	 * where the rest of the area would come from memory.  A chunk that
	 * would end past them wraps to the start early: a pad takes the rest
	 * of the lap, which the tail passes once what is in use is released.
	 * Only while no chunk waits to be taken (receivers hold them, or are
	 * done): a pad laid behind chunks still waiting would keep the rest
	 * of the lap from senders until those were received, and a queue
	 * whose receivers stopped then would hold a fraction of its ring (a
	 * sender waits a moment for that, see wait_to_wrap). */
	if (wrap_early(r, head, tail, size) && none_waiting(r, tail, head)) {
		pad_to_end_locked(r, head);
		head = atomic_load_explicit(&r->sp->head, memory_order_relaxed);
		tail = atomic_load_explicit(&r->sp->tail, memory_order_relaxed);
	}
	if (head % ds + size > ds) {
		/* does not fit before the end: the pad is needed first either
		 * way, so lay it as soon as it fits */
		if (ds - head % ds > ds - (head - tail))
			return -EAGAIN;
		pad_to_end_locked(r, head);
		head = atomic_load_explicit(&r->sp->head, memory_order_relaxed);
		tail = atomic_load_explicit(&r->sp->tail, memory_order_relaxed);
	}
	if (size > ds - (head - tail))
		return -EAGAIN;
	gen = atomic_fetch_add_explicit(&r->sp->next_gen, 1, memory_order_relaxed);
	c = ring_chunk_at(r, head);
	c->gen = gen;
	c->size = size;
	c->len = (uint32_t)len;
	c->magic = RING_CHUNK_MAGIC;
	c->pos = head;
	c->prio = 0;
	c->kind = RING_KIND_RAW;
	ring_cs(r, c)->level = 0;
	ring_cs(r, c)->deliveries = 0;
	atomic_store_explicit(&ring_cs(r, c)->aside, RING_ASIDE_NO, memory_order_relaxed);
	c->count = 0;
	c->expires = 0;
	atomic_store_explicit(&c->sealed, 0, memory_order_relaxed);
	atomic_store_explicit(&ring_cs(r, c)->handed, 0, memory_order_relaxed);
	atomic_store_explicit(&ring_cs(r, c)->done, 0, memory_order_relaxed);
	r->sp->last = head;
	/* the header is whole before head moves past it */
	atomic_store_explicit(&ring_cs(r, c)->word, RING_WORD(RING_RESERVED, r->self, gen), memory_order_release);
	atomic_fetch_add_explicit(&h->chunks, 1, memory_order_relaxed);
	atomic_store_explicit(&r->sp->head, head + size, memory_order_release);
	ring_bump_hwm(h, head + size - tail);

	*out = (struct ring_ref){
		.pos = head, .offset = head % ds, .gen = gen, .len = (uint32_t)len, .payload = c + 1, .lane = r->lane
	};
	return 0;
}

int ring_with_room(struct ring *r, int timeout_ms, int (*try)(struct ring *r, void *arg), void *arg)
{
	struct timespec dl, *until = NULL;
	bool waited = false;
	int ret;

	/* timeout 0 does not wait for room, but may wait a moment for the lock */
	if (timeout_ms >= 0) {
		dl = deadline_after(CLOCK_MONOTONIC, timeout_ms > 0 ? timeout_ms : RING_LOCK_GRACE_MS);
		until = &dl;
	}
	for (;;) {
		uint32_t seq;
		int w;

		ret = ring_lock_until(r, until);
		if (ret)
			return ret == -ETIMEDOUT && timeout_ms == 0 ? -EAGAIN : ret;
		seq = atomic_load_explicit(&r->hdr->space_seq, memory_order_seq_cst);
		ret = try(r, arg);
		if (ret != -EAGAIN || timeout_ms == 0) {
			if (ret != 0)
				ring_unlock(r);
			/* the wake-ups are bounded: pass one on to the next waiter */
			if (ret == 0 && waited)
				wake_space(r, 1);
			return ret;
		}
		atomic_fetch_add_explicit(&r->hdr->waiters, 1, memory_order_seq_cst);
		ring_unlock(r);

		w = futex(&r->hdr->space_seq, FUTEX_WAIT_BITSET, seq, until, FUTEX_BITSET_MATCH_ANY) < 0 ? errno : 0;
		atomic_fetch_sub_explicit(&r->hdr->waiters, 1, memory_order_relaxed);
		waited = true;
		if (w == ETIMEDOUT) {
			/* a last look: room may have come with the deadline */
			if (ring_lock_briefly(r) < 0)
				return -ETIMEDOUT;
			ret = try(r, arg);
			if (ret != 0)
				ring_unlock(r);
			return ret == -EAGAIN ? -ETIMEDOUT : ret;
		}
		if (w == EINTR)
			return -EINTR; /* a signal handler ran, as with mq_send */
		/* woken, or space_seq moved before we slept: look again */
	}
}

struct reserve_args {
	uint64_t size;
	size_t len;
	struct ring_ref *out;
};

static int try_reserve(struct ring *r, void *arg)
{
	struct reserve_args *a = arg;

	return ring_try_reserve_locked(r, a->size, a->len, a->out);
}

/* A sender whose chunk would end past the hot extent, while a little is
 * in use and some of it waits to be taken, waits a moment for receivers
 * to take it: the ring then wraps early (ring_try_reserve_locked), and
 * the next lap is in the caches too.  Otherwise a sender that keeps a
 * chunk ahead of its receivers never finds the ring able to wrap early,
 * goes round the whole data area, and every chunk comes from memory (1
 * MiB messages went 3 times as slowly).  At most as long as a copy of
 * the chunk at 2 bytes a nanosecond (WRAP_WAIT_MIN_NS at least), within
 * the call's timeout, once a lap; not at all for a call that must not
 * wait (timeout 0), without receivers, or on one CPU. */
#define WRAP_WAIT_MIN_NS 20000u
static void wait_to_wrap(struct ring *r, uint64_t size, int timeout_ms)
{
	static int ncpu;
	uint64_t start, budget, head, tail;

	if (!ncpu)
		ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 2 || timeout_ms == 0)
		return;
	head = atomic_load_explicit(&r->sp->head, memory_order_relaxed);
	tail = atomic_load_explicit(&r->sp->tail, memory_order_relaxed);
	if (head <= tail || !wrap_early(r, head, tail, size) || !ring_receivers(r))
		return;
	budget = MAX((uint64_t)WRAP_WAIT_MIN_NS, size / 2);
	if (timeout_ms > 0)
		budget = MIN(budget, (uint64_t)timeout_ms * 1000000u);
	start = now_ns(CLOCK_MONOTONIC);
	for (unsigned i = 1;; i++) {
		cpu_relax();
		if (i % 64)
			continue;
		if (atomic_load_explicit(&r->sp->head, memory_order_relaxed) != head)
			return; /* another sender's chunk: it decided */
		/* releases by receive-only receivers leave the tail to senders */
		ring_advance_tail(r);
		tail = atomic_load_explicit(&r->sp->tail, memory_order_acquire);
		if (tail > head || none_waiting(r, tail, head) || now_ns(CLOCK_MONOTONIC) - start > budget)
			return;
	}
}

int ring_reserve(struct ring *r, size_t len, int timeout_ms, struct ring_ref *out)
{
	struct reserve_args a = { .size = ring_chunk_size_for(len), .len = len, .out = out };
	int ret;

	if (len > r->max_payload)
		return -EMSGSIZE;
	wait_to_wrap(r, a.size, timeout_ms);
	ret = ring_with_room(r, timeout_ms, try_reserve, &a);
	if (ret == 0)
		ring_unlock(r);
	return ret;
}

void ring_publishing(struct ring *r, const struct ring_ref *ref, unsigned prio)
{
	struct ring_chunk *c = (struct ring_chunk *)(r->data + ref->offset);

	c->prio = prio;
	ring_seal(c);
	atomic_store_explicit(&ring_cs(r, c)->word, RING_WORD(RING_PUBLISHING, r->self, ref->gen), memory_order_release);
}

void ring_published(struct ring *r, const struct ring_ref *ref)
{
	struct ring_chunk *c = (struct ring_chunk *)(r->data + ref->offset);
	uint64_t expect = RING_WORD(RING_PUBLISHING, r->self, ref->gen);

	/* Once the descriptor is on the mq the chunk is no longer ours: a
	 * consumer may have taken and released it, and the tail passed it.
	 * While the tail is not past it the word is still its own; after, the
	 * space must come round the whole ring again before other bytes sit
	 * there, and those would have to equal this word (our holder id and
	 * generation) for the CAS to touch them.  Left PUBLISHING otherwise:
	 * consumers take that too. */
	if (ref->pos >= atomic_load_explicit(&r->sp->tail, memory_order_acquire))
		atomic_compare_exchange_strong_explicit(&ring_cs(r, c)->word, &expect, RING_WORD(RING_PUBLISHED, 0, ref->gen),
		                                        memory_order_release, memory_order_relaxed);
}

void ring_cancel(struct ring *r, const struct ring_ref *ref)
{
	release_and_advance(r, (struct ring_chunk *)(r->data + ref->offset), ref->gen);
}

void ring_describe(const struct ring_ref *ref, unsigned flags, struct proto_ring_desc *d)
{
	memset(d, 0, sizeof(*d));
	d->hdr.kind = PROTO_MSG_RING;
	d->hdr.flags = (uint8_t)flags;
	d->hdr.len = ref->len;
	d->offset = ref->offset;
	d->gen = ref->gen;
	d->hdr.lane = ref->lane;
}

/* ---- consumer ---- */

static bool takeable(uint64_t w, uint64_t gen)
{
	enum ring_state st = RING_WORD_STATE(w);

	return RING_WORD_GEN32(w) == (uint32_t)gen && (st == RING_PUBLISHING || st == RING_PUBLISHED);
}

static int take_as(struct ring *r, const struct proto_ring_desc *d, uint32_t holder, struct ring_ref *out)
{
	uint64_t ds = r->data_size, len = d->hdr.len, size, w;
	struct ring_chunk *c;

	if (d->hdr.kind != PROTO_MSG_RING || d->offset % RING_ALIGN || d->offset > ds - RING_ALIGN ||
	    len > r->max_payload)
		return -EBADMSG;
	size = ring_chunk_size_for(len);
	if (d->offset + size > ds)
		return -EBADMSG;
	/* a loan may be published shorter than reserved: size >= needed */
	if (d->gen == 0 || d->gen >= atomic_load_explicit(&r->sp->next_gen, memory_order_relaxed))
		return -EBADMSG; /* a generation never issued */
	c = (struct ring_chunk *)(r->data + d->offset);

	w = atomic_load_explicit(&ring_cs(r, c)->word, memory_order_acquire);
	/* bounded: a hostile client could flip the word for ever */
	for (unsigned tries = 0;; tries++) {
		if (tries == RING_TAKE_TRIES)
			return -EBADMSG;
		if (!takeable(w, d->gen))
			return -ESTALE;
		if (c->gen != d->gen || atomic_load_explicit(&c->sealed, memory_order_acquire) != d->gen ||
		    c->len != len || c->size < size || d->offset + c->size > ds || c->pos % ds != d->offset ||
		    c->magic != RING_CHUNK_MAGIC || c->kind > RING_KIND_BATCH ||
		    (c->kind == RING_KIND_BATCH && (c->count == 0 || c->count > RING_BATCH_MAX))) {
			/* the header is genuine only if the word did not move meanwhile */
			uint64_t again = atomic_load_explicit(&ring_cs(r, c)->word, memory_order_acquire);

			if (again == w)
				return -EBADMSG;
			w = again;
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(&ring_cs(r, c)->word, &w, RING_WORD(RING_TAKEN, holder, d->gen),
		                                          memory_order_acquire, memory_order_acquire))
			break;
	}
	atomic_store_explicit(&ring_cs(r, c)->aside, RING_ASIDE_NO, memory_order_relaxed);
	/* a receiver's take is a delivery (the daemon's, for a purge, is not) */
	if (holder && ring_cs(r, c)->deliveries < UINT16_MAX)
		ring_cs(r, c)->deliveries++;
	/* pos was checked, but a sender may rewrite it since: whatever its
	 * lap, it names this chunk (code addresses chunks by pos) */
	*out = (struct ring_ref){ .pos = ring_pos_at(c->pos, d->offset, ds),
		                  .lane = r->lane,
		                  .deliveries = ring_cs(r, c)->deliveries,
		                  .offset = d->offset,
		                  .gen = d->gen,
		                  .len = (uint32_t)len,
		                  .payload = c + 1,
		                  .kind = c->kind,
		                  .count = c->kind == RING_KIND_BATCH ? c->count : 0,
		                  .prio = c->prio,
		                  .expires = c->expires,
		                  .handed = atomic_load_explicit(&ring_cs(r, c)->handed, memory_order_relaxed),
		                  .done = atomic_load_explicit(&ring_cs(r, c)->done, memory_order_relaxed) };
	if (out->kind != RING_KIND_BATCH)
		out->handed = out->done = 0;
	return 0;
}

int ring_take(struct ring *r, const struct proto_ring_desc *d, struct ring_ref *out)
{
	return take_as(r, d, r->self, out);
}

bool ring_unspoilt(const struct ring *r, uint64_t offset, uint64_t gen)
{
	const struct ring_chunk *c;

	if (offset % RING_ALIGN || offset > r->data_size - RING_ALIGN)
		return false;
	c = (const struct ring_chunk *)(r->data + offset);
	/* the reads of the payload come before these */
	atomic_thread_fence(memory_order_acquire);
	return c->gen == gen && atomic_load_explicit(&c->sealed, memory_order_relaxed) == gen &&
	       atomic_load_explicit(&r->sp->tail, memory_order_relaxed) <= c->pos;
}

void ring_release(struct ring *r, const struct ring_ref *ref)
{
	consumer_release(r, (struct ring_chunk *)(r->data + ref->offset), ref->pos, ref->gen);
}

int ring_batch_records(const struct ring *r, const struct ring_ref *ref, struct ring_recview *out)
{
	const unsigned char *p = ref->payload;
	uint64_t off = 0;

	(void)r;
	if (ref->count == 0 || ref->count > RING_BATCH_MAX)
		return -EBADMSG;
	/* the sender wrote these bytes: check each record against the
	 * length the descriptor and the header agreed on */
	for (unsigned i = 0; i < ref->count; i++) {
		struct ring_rec rec;

		if (ref->len - off < sizeof(rec))
			return -EBADMSG;
		memcpy(&rec, p + off, sizeof(rec));
		if (rec.len > RING_REC_MAX || ring_rec_size(rec.len) > ref->len - off)
			return -EBADMSG;
		out[i] = (struct ring_recview){ .data = p + off + sizeof(rec), .len = rec.len };
		off += ring_rec_size(rec.len);
	}
	return 0;
}

bool ring_holds(const struct ring *r, uint64_t offset, uint64_t gen)
{
	const struct ring_chunk *c;

	if (offset % RING_ALIGN || offset > r->data_size - RING_ALIGN)
		return false;
	c = (const struct ring_chunk *)(r->data + offset);
	return atomic_load_explicit(&ring_cs(r, c)->word, memory_order_acquire) == RING_WORD(RING_TAKEN, r->self, gen);
}

bool ring_batch_handed(struct ring *r, uint64_t offset, uint64_t gen, unsigned idx)
{
	struct ring_chunk *c = (struct ring_chunk *)(r->data + offset);

	if (!ring_holds(r, offset, gen))
		return false; /* its lease ran out: another receiver has it */
	atomic_fetch_or_explicit(&ring_cs(r, c)->handed, (uint64_t)1 << idx, memory_order_relaxed);
	return true;
}

bool ring_batch_done(struct ring *r, uint64_t offset, uint64_t gen, unsigned idx)
{
	struct ring_chunk *c = (struct ring_chunk *)(r->data + offset);
	uint64_t bit = (uint64_t)1 << idx, was;
	unsigned n = c->count;

	if (c->gen != gen || n == 0 || n > RING_BATCH_MAX)
		return false; /* not ours any more (or spoilt): leave it to the daemon */
	was = atomic_fetch_or_explicit(&ring_cs(r, c)->done, bit, memory_order_acq_rel);
	return !(was & bit) && ((was | bit) & ring_batch_mask(n)) == ring_batch_mask(n);
}

bool ring_doom(struct ring *r, uint64_t offset, uint64_t gen)
{
	struct ring_chunk *c;
	uint64_t w = RING_WORD(RING_TAKEN, r->self, gen);

	if (offset % RING_ALIGN || offset > r->data_size - RING_ALIGN)
		return false;
	c = (struct ring_chunk *)(r->data + offset);
	return atomic_compare_exchange_strong_explicit(&ring_cs(r, c)->word, &w, RING_WORD(RING_DOOMED, 0, gen),
	                                               memory_order_release, memory_order_relaxed);
}

uint64_t ring_now_ms(void)
{
	return now_ns(CLOCK_MONOTONIC) / 1000000u;
}

/* ---- receive slots ---- */

void ring_forget_sleepers(struct ring *r, struct ring_slot *s)
{
	uint32_t n = atomic_exchange_explicit(&s->sleeping, 0, memory_order_relaxed);
	uint32_t cur = atomic_load_explicit(&r->q->sleepers, memory_order_relaxed);

	/* bounded: both are shared memory a client may have set to anything */
	for (unsigned tries = 0; n && tries < RING_TAKE_TRIES; tries++)
		if (atomic_compare_exchange_weak_explicit(&r->q->sleepers, &cur, cur - MIN(cur, n), memory_order_relaxed,
		                                          memory_order_relaxed))
			break;
}

int ring_slot_claim(struct ring *r)
{
	unsigned start = r->self % RING_SLOTS;

	for (unsigned i = 0; i < RING_SLOTS; i++) {
		unsigned idx = (start + i) % RING_SLOTS;
		struct ring_slot *s = ring_slot_at(r, idx);
		uint32_t expect = 0;

		if (atomic_load_explicit(&s->owner, memory_order_relaxed) != 0)
			continue;
		if (atomic_compare_exchange_strong_explicit(&s->owner, &expect, r->self,
		                                            memory_order_acquire, memory_order_relaxed)) {
			atomic_store_explicit(&s->sleeping, 0, memory_order_relaxed);
			return (int)idx;
		}
	}
	return -EUSERS;
}

void ring_slot_free(struct ring *r, int idx)
{
	atomic_store_explicit(&ring_slot_at(r, (unsigned)idx)->owner, 0, memory_order_release);
}

/* ---- reclaim (daemon) ---- */

/* Put a chunk's descriptor back on the mq.  The chunk is first marked
 * PUBLISHING with no owner, so if the send fails (mq full) or the daemon
 * dies, the next sweep tries again. */
static int redeliver_chunk(struct ring *r, struct ring_chunk *c, uint64_t w, const struct ring_reclaim_ops *ops)
{
	uint64_t gen = c->gen;
	uint64_t pending = RING_WORD(RING_PUBLISHING, 0, gen);
	struct ring_ref ref = {
		.offset = (uint64_t)((unsigned char *)c - r->data), .gen = gen, .len = c->len, .lane = r->lane
	};
	unsigned prio = c->prio;
	struct proto_ring_desc d;

	if (w != pending &&
	    !atomic_compare_exchange_strong_explicit(&ring_cs(r, c)->word, &w, pending, memory_order_acq_rel, memory_order_relaxed))
		return 0; /* it moved on by itself */
	/* a raw chunk a dead consumer held is marked handed (reclaim_chunk) */
	ring_describe(&ref,
	              PROTO_MSGF_RESENT | (atomic_load_explicit(&ring_cs(r, c)->handed, memory_order_relaxed) ? PROTO_MSGF_REDELIVERED : 0),
	              &d);
	if (ops->resend(&d, sizeof(d), prio, ops->ctx) < 0)
		return 0;
	atomic_compare_exchange_strong_explicit(&ring_cs(r, c)->word, &pending, RING_WORD(RING_PUBLISHED, 0, gen),
	                                        memory_order_release, memory_order_relaxed);
	return 1;
}

/* A batch a dead consumer held: what it had not done with goes back (in
 * an at-most-once queue, what it had been handed counts as done: dropped,
 * never delivered twice).  Returns the records left to deliver, with the
 * done bits of the others set, so the next taker skips them; *again says
 * how many of those the dead consumer had been handed (redelivered). */
static unsigned batch_leftover(struct ring *r, struct ring_chunk *c, unsigned *again)
{
	struct ring_hdr *h = r->hdr;
	uint64_t full = ring_batch_mask(c->count);
	uint64_t handed = atomic_load_explicit(&ring_cs(r, c)->handed, memory_order_relaxed) & full;
	uint64_t done = atomic_load_explicit(&ring_cs(r, c)->done, memory_order_acquire) & full;
	uint64_t left;

	if (h->delivery == 0 && (handed & ~done)) {
		atomic_fetch_or_explicit(&ring_cs(r, c)->done, handed, memory_order_relaxed);
		atomic_fetch_add_explicit(&r->q->dropped, (uint64_t)__builtin_popcountll(handed & ~done),
		                          memory_order_relaxed);
		done |= handed;
	}
	left = full & ~done;
	/* handed out, not done: they count as waiting again */
	*again = (unsigned)__builtin_popcountll(left & handed);
	ring_depth_add(r, *again);
	return (unsigned)__builtin_popcountll(left);
}

/* A PUBLISHED chunk whose descriptor is on no mq: a receiver took it off
 * the window and died before it took the chunk (it receives into its own
 * memory, where the daemon cannot see it).  Its descriptor can only be
 * with a receiver, between mq_receive and its take, or lost: so a chunk
 * found PUBLISHED, with the same generation, by two walks that each began
 * with the window empty is sent again.  If a receiver was only slow, the
 * second descriptor finds the chunk taken and is dropped as a duplicate. */
enum { WINDOW_UNASKED = -1 };
static int orphan_check(struct ring *r, struct ring_chunk *c, uint64_t w, int window_empty,
                        const struct ring_reclaim_ops *ops)
{
	struct ring_cstate *cs = ring_cs(r, c);
	uint32_t mark;

	if (window_empty == WINDOW_UNASKED)
		return 0; /* a walk for a death, not the sweep: marks stay as they are */
	/* the mark names the chunk by its generation (never 0), so a mark
	 * left at this offset by an earlier chunk is no mark */
	mark = (uint32_t)c->gen | 1u;
	if (RING_WORD_STATE(w) != RING_PUBLISHED || !window_empty || RING_WORD_GEN32(w) != (uint32_t)c->gen) {
		if (cs->orphan)
			cs->orphan = 0;
		return 0;
	}
	if (cs->orphan != mark) {
		cs->orphan = mark;
		return 0;
	}
	cs->orphan = 0;
	if (!redeliver_chunk(r, c, w, ops))
		return 0;
	atomic_fetch_add_explicit(&r->q->reclaimed, 1, memory_order_relaxed);
	return 1;
}

/* A chunk a receiver DOOMED: what of it is not done goes to the
 * dead-letter queue, or is dropped (see ring_reclaim_ops.dead_letter);
 * then it is released.  Its header was written by a sender: checked
 * before its bytes are read. */
/* Whether the header of a chunk whose word is w says what a sender
 * sealed: the daemon reads a chunk's bytes only then. */
static bool chunk_intact(const struct ring *r, const struct ring_chunk *c, uint64_t w)
{
	uint64_t gen = c->gen;

	return RING_WORD_GEN32(w) == (uint32_t)gen && atomic_load_explicit(&c->sealed, memory_order_acquire) == gen &&
	       c->magic == RING_CHUNK_MAGIC && c->len <= r->max_payload && ring_chunk_size_for(c->len) <= c->size &&
	       c->kind <= RING_KIND_BATCH && (c->kind != RING_KIND_BATCH || (c->count && c->count <= RING_BATCH_MAX));
}

/* The messages of a chunk the daemon takes over (its header checked by
 * chunk_intact) that are not done: a raw chunk's one, or a batch's
 * records not done, into recs; how many, or -1 if the records do not fit
 * the chunk. */
static int messages_left(const struct ring *r, const struct ring_chunk *c, struct ring_recview *recs)
{
	struct ring_ref ref = { .payload = (void *)(c + 1), .len = c->len, .count = c->count };
	struct ring_recview all[RING_BATCH_MAX];
	uint64_t left;
	int n = 0;

	if (c->kind != RING_KIND_BATCH) {
		recs[0] = (struct ring_recview){ .data = c + 1, .len = c->len };
		return 1;
	}
	if (ring_batch_records(r, &ref, all) < 0)
		return -1;
	left = ring_batch_mask(c->count) & ~atomic_load_explicit(&ring_cs(r, c)->done, memory_order_acquire);
	for (unsigned i = 0; i < c->count; i++)
		if (left & ((uint64_t)1 << i))
			recs[n++] = all[i];
	return n;
}

static int doomed_chunk(struct ring *r, struct ring_chunk *c, uint64_t w, const struct ring_reclaim_ops *ops)
{
	struct ring_recview recs[RING_BATCH_MAX];
	int n = chunk_intact(r, c, w) ? messages_left(r, c, recs) : -1;
	bool intact = n >= 0;
	int ret = 0;

	if (!ops->dead_letter)
		return 0; /* the periodic sweep's work */
	if (n < 0)
		n = 0;
	if (n)
		ret = ops->dead_letter(recs, (unsigned)n, c->prio, ops->ctx);
	if (ret == -EAGAIN)
		return 0;
	if (!atomic_compare_exchange_strong_explicit(&ring_cs(r, c)->word, &w, RING_WORD(RING_RELEASED, 0, RING_WORD_GEN32(w)),
	                                             memory_order_acq_rel, memory_order_relaxed))
		return 0;
	if (!intact)
		atomic_fetch_add_explicit(&r->q->rejected, 1, memory_order_relaxed);
	/* expired ones were counted by the receiver that found them so */
	atomic_fetch_add_explicit(ret > 0 ? &r->q->dead_lettered : &r->q->dropped, (uint64_t)n, memory_order_relaxed);
	return 1;
}

/* What becomes of the lease of a live holder on its TAKEN chunk: asked in
 * the daemon's sweep of an at-least-once ring alone (the ring's delivery
 * mode is the one copied at attach, not the header's). */
static int lease_state(const struct ring *r, const struct ring_chunk *c, uint64_t w, const struct ring_reclaim_ops *ops)
{
	const struct ring_cstate *cs = ring_cs(r, c);

	if (RING_WORD_STATE(w) != RING_TAKEN || r->delivery == 0 || !ops->lease_check)
		return RING_LEASE_KEEP;
	return ops->lease_check((uint64_t)((const unsigned char *)c - r->data), w, cs->deliveries,
	                        atomic_load_explicit(&cs->aside, memory_order_relaxed) == RING_ASIDE_OK, ops->ctx);
}

/*
 * Moving aside.  A receiver that keeps a message long holds its chunk,
 * and ring space comes back in order: everything sent after it waits for
 * it, and once the ring has gone round, senders wait too.  So the daemon
 * takes such a message out of the ring into its own keeping (a shared
 * object of its own, daemon/aside.c), still leased to the same holder,
 * and releases the chunk.  Only a chunk its holder marked RING_ASIDE_OK
 * moves: one it keeps no pointer into, with one message left to
 * acknowledge (a copy ipcq_recv made).  The aside byte is the handshake:
 * the daemon claims it OK -> MOVING, keeps the message, then MOVING ->
 * MOVED and releases the chunk; the holder, before it acts on the chunk,
 * swaps the byte to NO (ring_stop_aside): if it found MOVING, the
 * daemon's second step fails and it forgets what it kept; if MOVED, the
 * holder acknowledges or gives back the message through the daemon.  A
 * daemon killed between the two steps leaves the chunk TAKEN by the
 * holder: the next daemon forgets what it kept of a chunk still TAKEN, and
 * the holder, finding the daemon does not know the message, acts on the
 * chunk as before.
 */
static int move_aside(struct ring *r, struct ring_chunk *c, uint64_t w, const struct ring_reclaim_ops *ops)
{
	struct ring_cstate *cs = ring_cs(r, c);
	uint64_t offset = (uint64_t)((unsigned char *)c - r->data), gen = c->gen;
	uint32_t holder = RING_WORD_HOLDER(w);
	uint8_t expect = RING_ASIDE_OK;
	struct ring_recview recs[RING_BATCH_MAX];

	/* the one message left (a batch's last record) */
	if (!ops->move_aside || !chunk_intact(r, c, w) || messages_left(r, c, recs) != 1)
		return 0;
	if (!atomic_compare_exchange_strong_explicit(&cs->aside, &expect, RING_ASIDE_MOVING, memory_order_acq_rel,
	                                             memory_order_relaxed))
		return 0;
	if (ops->move_aside(holder, offset, gen, &recs[0], c->prio, cs->deliveries, c->expires, ops->ctx) < 0) {
		expect = RING_ASIDE_MOVING;
		atomic_compare_exchange_strong_explicit(&cs->aside, &expect, RING_ASIDE_OK, memory_order_relaxed,
		                                        memory_order_relaxed);
		return 0;
	}
	expect = RING_ASIDE_MOVING;
	if (!atomic_compare_exchange_strong_explicit(&cs->aside, &expect, RING_ASIDE_MOVED, memory_order_acq_rel,
	                                             memory_order_relaxed)) {
		/* its holder came back for it meanwhile */
		ops->unmove(holder, offset, gen, ops->ctx);
		return 0;
	}
	atomic_compare_exchange_strong_explicit(&cs->word, &w, RING_WORD(RING_RELEASED, 0, RING_WORD_GEN32(w)),
	                                        memory_order_release, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->q->moved, 1, memory_order_relaxed);
	return 1;
}

void ring_allow_aside(struct ring *r, uint64_t offset, uint64_t gen)
{
	struct ring_chunk *c;
	uint8_t expect = RING_ASIDE_NO;

	if (offset % RING_ALIGN || offset > r->data_size - RING_ALIGN || !ring_holds(r, offset, gen))
		return;
	c = (struct ring_chunk *)(r->data + offset);
	atomic_compare_exchange_strong_explicit(&ring_cs(r, c)->aside, &expect, RING_ASIDE_OK, memory_order_release,
	                                        memory_order_relaxed);
}

bool ring_stop_aside(struct ring *r, uint64_t offset, uint64_t gen)
{
	struct ring_chunk *c;
	struct ring_cstate *cs;

	if (offset % RING_ALIGN || offset > r->data_size - RING_ALIGN)
		return false;
	c = (struct ring_chunk *)(r->data + offset);
	cs = ring_cs(r, c);
	/* not touched unless it may be this holder's, moved or not: the byte
	 * of another holder's chunk is that holder's */
	if (atomic_load_explicit(&cs->aside, memory_order_relaxed) == RING_ASIDE_NO ||
	    RING_WORD_GEN32(atomic_load_explicit(&cs->word, memory_order_acquire)) != (uint32_t)gen)
		return false;
	return atomic_exchange_explicit(&cs->aside, RING_ASIDE_NO, memory_order_acq_rel) == RING_ASIDE_MOVED;
}

/* Whether what a receiver held of chunk c was delivered as often as the
 * queue allows: then it is DOOMED, not delivered again. */
static bool delivered_enough(const struct ring *r, const struct ring_chunk *c, const struct ring_reclaim_ops *ops)
{
	return r->delivery != 0 && ops->max_deliveries && ring_cs(r, c)->deliveries >= ops->max_deliveries;
}

/* A chunk whose holder died (or whose lease ran out: *expired counts
 * those taken back): what it held goes back, is dropped, or its
 * descriptor is sent again.  Returns 1 if the chunk was dealt with. */
static int reclaim_chunk(struct ring *r, struct ring_chunk *c, int window_empty, const struct ring_reclaim_ops *ops,
                         unsigned *expired)
{
	struct ring_hdr *h = r->hdr;
	uint64_t w = atomic_load_explicit(&ring_cs(r, c)->word, memory_order_acquire);
	enum ring_state st = RING_WORD_STATE(w);
	uint32_t holder = RING_WORD_HOLDER(w);
	uint64_t released = RING_WORD(RING_RELEASED, 0, RING_WORD_GEN32(w));
	uint64_t pending = RING_WORD(RING_PUBLISHING, 0, c->gen);
	bool batch = c->kind == RING_KIND_BATCH && c->count > 0 && c->count <= RING_BATCH_MAX;
	bool lease = false;

	if (st == RING_DOOMED)
		return doomed_chunk(r, c, w, ops);
	if (st != RING_RESERVED && st != RING_PUBLISHING && st != RING_TAKEN)
		return orphan_check(r, c, w, window_empty, ops);
	if (holder != 0 && !ops->is_dead(holder, ops->ctx)) {
		/* a live holder keeps what it holds, but a lease that ran out;
		 * what it keeps long may move aside */
		int ls = lease_state(r, c, w, ops);

		if (ls == RING_LEASE_MOVE)
			return move_aside(r, c, w, ops);
		if (ls != RING_LEASE_EXPIRED)
			return 0;
		lease = true;
	}
	if (st == RING_TAKEN && batch) {
		unsigned again, left;

		/* claimed first, so the bookkeeping is done once; a live holder
		 * whose lease ran out finds the chunk no longer its own, and its
		 * release does nothing */
		if (!atomic_compare_exchange_strong_explicit(&ring_cs(r, c)->word, &w, pending, memory_order_acq_rel,
		                                             memory_order_relaxed))
			return 0;
		*expired += lease;
		left = batch_leftover(r, c, &again);
		if (left == 0) {
			atomic_store_explicit(&ring_cs(r, c)->word, released, memory_order_release);
			return 1;
		}
		if (again == left && delivered_enough(r, c, ops)) {
			ring_depth_add(r, -(int64_t)again);
			atomic_store_explicit(&ring_cs(r, c)->word, RING_WORD(RING_DOOMED, 0, c->gen), memory_order_release);
			return 1;
		}
		/* redelivered: the messages a receiver had; reclaimed: a chunk
		 * whose messages it never saw */
		if (again)
			atomic_fetch_add_explicit(&r->q->redelivered, again, memory_order_relaxed);
		else
			atomic_fetch_add_explicit(&r->q->reclaimed, 1, memory_order_relaxed);
		redeliver_chunk(r, c, pending, ops); /* if the window is full, the next sweep sends it */
		return 1;
	}
	if (st == RING_RESERVED || (st == RING_TAKEN && h->delivery == 0)) {
		if (!atomic_compare_exchange_strong_explicit(&ring_cs(r, c)->word, &w, released, memory_order_acq_rel,
		                                             memory_order_relaxed))
			return 0;
		atomic_fetch_add_explicit(st == RING_RESERVED ? &r->q->reclaimed : &r->q->dropped, 1, memory_order_relaxed);
		return 1;
	}
	if (st == RING_TAKEN) {
		/* at-least-once: claimed first too, then sent again flagged
		 * redelivered (its next taker sees it handed) */
		if (!atomic_compare_exchange_strong_explicit(&ring_cs(r, c)->word, &w, pending, memory_order_acq_rel,
		                                             memory_order_relaxed))
			return 0;
		*expired += lease;
		if (delivered_enough(r, c, ops)) {
			atomic_store_explicit(&ring_cs(r, c)->word, RING_WORD(RING_DOOMED, 0, c->gen), memory_order_release);
			return 1;
		}
		atomic_store_explicit(&ring_cs(r, c)->handed, 1, memory_order_relaxed);
		ring_depth_add(r, 1);
		atomic_fetch_add_explicit(&r->q->redelivered, 1, memory_order_relaxed);
		redeliver_chunk(r, c, pending, ops); /* if the window is full, the next sweep sends it */
		return 1;
	}
	/* PUBLISHING by a dead producer (or left half done): send the
	 * descriptor again.  With no holder and records handed, it is what a
	 * receiver held, claimed and counted by an earlier sweep whose send
	 * found the window full. */
	if (!redeliver_chunk(r, c, w, ops))
		return 0;
	if (holder != 0 || !atomic_load_explicit(&ring_cs(r, c)->handed, memory_order_relaxed))
		atomic_fetch_add_explicit(&r->q->reclaimed, 1, memory_order_relaxed);
	return 1;
}

/* Walk the chunks from tail to head and reclaim what dead clients hold,
 * and the leases that ran out.
 * Lock-free: a chunk's header is complete before head passes it, and is
 * overwritten only after tail passes it, so a header read while tail is
 * still at or before it is genuine; one that fails the size checks then
 * is corrupt.  The walk is bounded however the positions move. */
static int reclaim_chunks(struct ring *r, const struct ring_reclaim_ops *ops, const char **why)
{
	uint64_t steps = 2 * (r->data_size / RING_ALIGN) + 2;
	uint64_t head, pos;
	/* asked before the walk: a descriptor sent after it is on the mq */
	int window_empty = ops->window_empty ? ops->window_empty(ops->ctx) : WINDOW_UNASKED;
	bool leases = ops->lease_check && r->delivery != 0;
	unsigned expired = 0;
	int n = 0, ret = load_positions(r, &head, &pos);

	if (ret == -EAGAIN)
		return 0; /* busy: the next sweep walks */
	if (ret < 0) {
		*why = "the ring's head and tail are not positions it could have";
		return -EBADMSG;
	}
	if (leases && ops->walk_begin)
		ops->walk_begin(ops->ctx);
	while (pos < head && steps--) {
		struct ring_chunk *c;
		uint64_t size;
		int ok = walk_step(r, &pos, &head, &c, &size);

		if (ok == WALK_TAIL && ring_positions_valid(r, head, pos))
			continue; /* passed meanwhile: go on from the tail */
		if (ok == WALK_TAIL || ok == WALK_STOP)
			break;
		if (ok < 0) {
			*why = "a chunk header between the ring's tail and head has an impossible size";
			n = -EBADMSG;
			break;
		}
		n += reclaim_chunk(r, c, window_empty, ops, &expired);
		pos += size;
	}
	if (leases && ops->walk_end)
		ops->walk_end(n >= 0 && pos >= head, expired, ops->ctx);
	return n;
}

int ring_resend_desc(struct ring *r, const struct proto_ring_desc *desc, const struct ring_reclaim_ops *ops)
{
	struct proto_ring_desc d;
	struct ring_chunk *c;
	uint64_t w;

	memcpy(&d, desc, sizeof(d));
	if (d.hdr.kind != PROTO_MSG_RING || d.offset % RING_ALIGN || d.offset > r->data_size - RING_ALIGN)
		return 0;
	c = (struct ring_chunk *)(r->data + d.offset);
	w = atomic_load_explicit(&ring_cs(r, c)->word, memory_order_acquire);
	if (!takeable(w, d.gen) || c->gen != d.gen || atomic_load_explicit(&c->sealed, memory_order_acquire) != d.gen)
		return 0;
	if (!redeliver_chunk(r, c, w, ops))
		return -EAGAIN;
	/* its receiver never had it: sent again, not redelivered */
	atomic_fetch_add_explicit(&r->q->reclaimed, 1, memory_order_relaxed);
	return 1;
}

/* Whether the header still says what it said when the ring was made or
 * attached: a client may have overwritten it. */
static bool header_intact(const struct ring *r)
{
	const volatile struct ring_hdr *h = r->hdr;

	return h->magic == RING_MAGIC && h->version == RING_VERSION && h->hdr_size == RING_HDR_SIZE &&
	       h->data_size == r->data_size && h->max_payload == r->max_payload && h->msg_size == r->msg_size &&
	       h->delivery == r->delivery && h->nslots == RING_SLOTS && h->slot_size == r->slot_size &&
	       h->slots_offset == RING_HDR_SIZE && h->total_size == r->map_len &&
	       h->states_offset == (uint64_t)((unsigned char *)r->states - (unsigned char *)r->hdr);
}

bool ring_header_restore(struct ring *r)
{
	struct ring_hdr *h = r->hdr;

	if (header_intact(r))
		return false;
	write_fixed(h,
	            &(struct ring_geometry){ .data_size = r->data_size,
	                                     .max_payload = r->max_payload,
	                                     .msg_size = r->msg_size,
	                                     .delivery = r->delivery },
	            r->slot_size, (uint64_t)((unsigned char *)r->states - (unsigned char *)r->hdr), r->map_len);
	atomic_thread_fence(memory_order_release);
	h->magic = RING_MAGIC;
	return true;
}

int ring_reclaim(struct ring *r, const struct ring_reclaim_ops *ops, const char **why)
{
	int n = 0, ret;

	if (!header_intact(r)) {
		*why = "the ring's header was overwritten";
		return -EBADMSG;
	}
	if (atomic_load_explicit(&r->hdr->corrupt, memory_order_relaxed)) {
		*why = "a client found a chunk header with an impossible size";
		return -EBADMSG;
	}
	break_lock_of_dead(r, ops);
	/* a dead receiver's slots (the descriptors it held are in its receive
	 * buffers, which the daemon scans first: ring_resend_desc) */
	for (unsigned i = 0; i < RING_SLOTS; i++) {
		uint32_t owner = atomic_load_explicit(&ring_slot_at(r, i)->owner, memory_order_acquire);

		if (owner == 0 || !ops->is_dead(owner, ops->ctx))
			continue;
		ring_forget_sleepers(r, ring_slot_at(r, i));
		ring_slot_free(r, (int)i);
		n++;
	}
	ret = reclaim_chunks(r, ops, why);
	if (ret < 0)
		return ret;
	ring_advance_tail(r);
	ring_wake_room(r);
	return n + ret;
}

/* ---- figures ---- */

uint64_t ring_bytes_used(const struct ring *r)
{
	uint64_t head = atomic_load_explicit(&r->sp->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&r->sp->tail, memory_order_acquire);

	return head > tail ? MIN(head - tail, r->data_size) : 0;
}

void ring_fill_stats(struct ring *r, ipcq_stats *st)
{
	const struct ring_hdr *h = r->hdr;

	ring_advance_tail(r); /* receivers leave it to senders and to us */

	st->ring_used = ring_bytes_used(r);
	st->ring_hwm = atomic_load_explicit(&h->hwm, memory_order_relaxed);
	st->ring_chunks = atomic_load_explicit(&h->chunks, memory_order_relaxed);
	st->sent = atomic_load_explicit(&r->q->sent, memory_order_relaxed);
	st->received = atomic_load_explicit(&r->q->received, memory_order_relaxed);
	st->sent_ring = atomic_load_explicit(&r->q->sent_ring, memory_order_relaxed);
	st->redelivered = atomic_load_explicit(&r->q->redelivered, memory_order_relaxed);
	st->dropped = atomic_load_explicit(&r->q->dropped, memory_order_relaxed);
	st->reclaimed = atomic_load_explicit(&r->q->reclaimed, memory_order_relaxed);
	st->rejected = atomic_load_explicit(&r->q->rejected, memory_order_relaxed);
	st->acked = atomic_load_explicit(&r->q->acked, memory_order_relaxed);
	st->expired = atomic_load_explicit(&r->q->expired, memory_order_relaxed);
	st->dead_lettered = atomic_load_explicit(&r->q->dead_lettered, memory_order_relaxed);
	st->nacked = atomic_load_explicit(&r->q->nacked, memory_order_relaxed);
	st->moved = atomic_load_explicit(&r->q->moved, memory_order_relaxed);
	st->delivery = r->delivery;
	st->receivers = ring_receivers(r);
	st->depth = ring_depth(r);
	st->backlog = atomic_load_explicit(&h->backlog, memory_order_relaxed);
	st->backlog += MIN(atomic_load_explicit(&h->lanes_backlog, memory_order_relaxed), UINT64_MAX - st->backlog);
	st->backlog = MIN(st->backlog, st->depth);
}

void ring_add_usage(struct ring *r, ipcq_stats *st)
{
	ring_advance_tail(r);
	st->ring_used += ring_bytes_used(r);
	st->ring_hwm += MIN(atomic_load_explicit(&r->hdr->hwm, memory_order_relaxed), r->data_size);
	st->ring_chunks += MIN(atomic_load_explicit(&r->hdr->chunks, memory_order_relaxed), r->data_size / RING_ALIGN);
}

unsigned ring_receivers(const struct ring *r)
{
	unsigned n = 0;

	for (unsigned i = 0; i < RING_SLOTS; i++)
		n += atomic_load_explicit(&ring_slot_at(r, i)->owner, memory_order_relaxed) != 0;
	return n;
}

/* Take a chunk on behalf of the daemon (purge) and release it at once. */
int ring_take_for_purge(struct ring *r, const struct proto_ring_desc *d)
{
	struct ring_ref ref;
	int ret = take_as(r, d, 0, &ref);
	unsigned msgs;

	if (ret < 0)
		return ret;
	msgs = ref.kind == RING_KIND_BATCH
	               ? (unsigned)__builtin_popcountll(ring_batch_mask(ref.count) & ~ref.done)
	               : 1;
	release_and_advance(r, (struct ring_chunk *)(r->data + ref.offset), ref.gen);
	return (int)msgs;
}

uint64_t ring_purge_backlog(struct ring *r)
{
	struct ring_hdr *h = r->hdr;
	uint64_t steps = r->data_size / RING_ALIGN + 1;
	uint64_t head, pos, msgs = 0;

	ring_repair_newest(r);
	if (load_positions(r, &head, &pos) < 0)
		return 0;
	while (pos < head && steps--) {
		struct ring_chunk *c;
		uint64_t size, w;
		unsigned n;
		int ok = walk_step(r, &pos, &head, &c, &size);

		if (ok == WALK_TAIL)
			continue;
		if (ok != WALK_ON)
			break;
		w = atomic_load_explicit(&ring_cs(r, c)->word, memory_order_acquire);
		n = ring_chunk_msgs(r, c);
		/* in the backlog, or a redelivery of ours waiting for room in
		 * the window (PUBLISHING with no holder) */
		if ((RING_WORD_STATE(w) == RING_QUEUED || RING_WORD_STATE(w) == RING_DOOMED ||
		     (RING_WORD_STATE(w) == RING_PUBLISHING && RING_WORD_HOLDER(w) == 0)) &&
		    atomic_compare_exchange_strong_explicit(&ring_cs(r, c)->word, &w, RING_WORD(RING_RELEASED, 0, RING_WORD_GEN32(w)),
		                                            memory_order_acq_rel, memory_order_relaxed))
			msgs += n;
		pos += size;
	}
	atomic_store_explicit(&h->backlog, 0, memory_order_relaxed);
	atomic_store_explicit(&h->returned, 0, memory_order_relaxed);
	eventfd_level(r->bell, false);
	ring_advance_tail(r);
	ring_wake_room(r);
	return msgs;
}

/* No sender reserves while the daemon holds the locks, and with tail at
 * head no chunk exists that anyone may read: a stale descriptor finds a
 * zero state word and header and is dropped like any forgery.  Other
 * processes' mappings of the pages are zapped with them by the kernel. */
int ring_give_back(const struct ring *r)
{
	struct ring v = *r;
	uint64_t head, tail;
	int ret = 0;

	v.self = PROTO_HOLDER_DAEMON;
	v.nowait = true;
	if (!v.writable || ring_lock_until(&v, NULL) < 0)
		return 0;
	ring_advance_tail(&v);
	head = atomic_load_explicit(&v.sp->head, memory_order_acquire);
	tail = atomic_load_explicit(&v.sp->tail, memory_order_acquire);
	if (!ring_positions_valid(&v, head, tail))
		ret = -EBADMSG;
	else if (head == tail && madvise(v.data, v.data_size, MADV_REMOVE) == 0 &&
	         madvise(v.states, states_bytes(v.data_size), MADV_REMOVE) == 0)
		ret = 1;
	ring_unlock(&v);
	return ret;
}

/* The pages stay in the objects for everyone who maps them: only this
 * process's page-table entries go, and a later touch maps them again.
 * The chunk states and the data area are left alone: a walk of a busy
 * ring would fault them all in again, and an idle one gives them back
 * (ring_give_back), which takes them out of every mapping. */
void ring_let_go(const struct ring *r)
{
	if (r->hdr)
		madvise(r->hdr, (size_t)((unsigned char *)r->states - (unsigned char *)r->hdr), MADV_DONTNEED);
	if (r->sp)
		madvise(r->sp, RING_SPAGE_SIZE, MADV_DONTNEED);
}

int ring_census(struct ring *r, struct ring_census *out)
{
	uint64_t steps = r->data_size / RING_ALIGN + 1;
	uint64_t head, pos;

	*out = (struct ring_census){ 0 };
	if (load_positions(r, &head, &pos) < 0)
		return -EAGAIN;
	while (pos < head && steps--) {
		struct ring_chunk *c;
		uint64_t size;
		enum ring_state st;
		int ok = walk_step(r, &pos, &head, &c, &size);

		if (ok == WALK_TAIL) {
			*out = (struct ring_census){ 0 }; /* what was counted is gone */
			continue;
		}
		if (ok != WALK_ON)
			return -EAGAIN;
		st = RING_WORD_STATE(atomic_load_explicit(&ring_cs(r, c)->word, memory_order_acquire));
		out->chunks++;
		out->waiting += st == RING_QUEUED || st == RING_PUBLISHING || st == RING_PUBLISHED;
		/* a batch a receiver holds, with messages it has not handed out yet */
		if (st == RING_TAKEN && held_batch_waits(r, c))
			out->waiting++;
		pos += size;
	}
	return pos >= head ? 0 : -EAGAIN;
}

/* ---- peeking ---- */

/* A chunk whose messages wait, as the walk found it. */
struct peek_cand {
	uint64_t pos;
	uint64_t word;
	uint64_t handed; /* records handed out when it was found (a batch a receiver holds) */
	uint32_t prio;
	uint8_t rank;    /* 0 given back or held, 1 in the window, 2 in the backlog */
};

/* Whether a comes before b in the order receivers take them. */
static bool peek_before(const struct peek_cand *a, const struct peek_cand *b)
{
	if (a->rank != b->rank)
		return a->rank < b->rank;
	if (a->prio != b->prio)
		return a->prio > b->prio;
	return a->pos < b->pos;
}

/* Keep the first n candidates in order (cand holds *have of them). */
static void peek_keep(struct peek_cand *cand, unsigned *have, unsigned n, const struct peek_cand *c)
{
	unsigned lo = 0, hi = *have;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (peek_before(&cand[mid], c))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= n)
		return;
	if (*have == n)
		(*have)--;
	memmove(&cand[lo + 1], &cand[lo], (*have - lo) * sizeof(*cand));
	cand[lo] = *c;
	(*have)++;
}

/* What of chunk c waits, as a candidate; false if nothing does. */
static bool peek_candidate(struct ring *r, struct ring_chunk *c, uint64_t pos, uint64_t now, struct peek_cand *out)
{
	struct ring_cstate *cs = ring_cs(r, c);
	uint64_t w = atomic_load_explicit(&cs->word, memory_order_acquire), handed = 0;
	enum ring_state st = RING_WORD_STATE(w);
	uint8_t rank;

	if (c->kind != RING_KIND_RAW && c->kind != RING_KIND_BATCH)
		return false;
	if (st == RING_QUEUED)
		rank = cs->level == RING_RETURNED ? 0 : 2;
	else if (st == RING_PUBLISHING || st == RING_PUBLISHED)
		rank = 1;
	else if (st == RING_TAKEN && c->kind == RING_KIND_BATCH)
		rank = 0;
	else
		return false;
	if (ring_expired(c->expires, now))
		return false;
	if (c->kind == RING_KIND_BATCH) {
		if (c->count == 0 || c->count > RING_BATCH_MAX)
			return false;
		handed = atomic_load_explicit(&cs->handed, memory_order_relaxed) |
		         atomic_load_explicit(&cs->done, memory_order_relaxed);
		/* held by a receiver: only what it has not handed out waits */
		if (st == RING_TAKEN && (handed & ring_batch_mask(c->count)) == ring_batch_mask(c->count))
			return false;
		if (st != RING_TAKEN)
			handed = atomic_load_explicit(&cs->done, memory_order_relaxed);
	}
	*out = (struct peek_cand){ .pos = pos, .word = w, .handed = handed, .prio = c->prio, .rank = rank };
	return true;
}

/* Copy what of candidate k waits into buf at *at (cap bytes in all),
 * recording each message in out (room for n): how many, 0 if it changed
 * meanwhile, -EMSGSIZE if its bytes do not fit. */
static int peek_copy(struct ring *r, const struct peek_cand *k, struct ring_peeked *out, unsigned n,
                     unsigned char *buf, size_t cap, size_t *at)
{
	uint64_t ds = r->data_size, off = k->pos % ds, len;
	struct ring_chunk *c = ring_chunk_at(r, k->pos);
	struct ring_cstate *cs = ring_cs(r, c);
	bool batch = c->kind == RING_KIND_BATCH, redelivered;
	unsigned count = c->count, got = 0;
	uint64_t skip = k->handed;
	size_t start = *at, rec_at = *at;

	len = c->len;
	/* the sender wrote the header: its length must fit the chunk */
	if (len > r->max_payload || len > ds - off - RING_CHUNK_HDR)
		return 0;
	if (len > cap - *at)
		return -EMSGSIZE;
	memcpy(buf + *at, (const unsigned char *)(c + 1), len);
	atomic_thread_fence(memory_order_acquire);
	/* still waiting, and its bytes still the sender's */
	if (atomic_load_explicit(&cs->word, memory_order_relaxed) != k->word || (uint32_t)c->gen != RING_WORD_GEN32(k->word) ||
	    !ring_unspoilt(r, off, c->gen))
		return 0;
	redelivered = atomic_load_explicit(&cs->handed, memory_order_relaxed) != 0;
	/* a batch a receiver holds may have handed out more meanwhile */
	if (RING_WORD_STATE(k->word) == RING_TAKEN)
		skip |= atomic_load_explicit(&cs->handed, memory_order_acquire) |
		        atomic_load_explicit(&cs->done, memory_order_acquire);
	if (!batch) {
		out[0] = (struct ring_peeked){ .at = start, .len = (uint32_t)len, .prio = k->prio, .redelivered = redelivered };
		*at += len;
		return 1;
	}
	/* records, parsed from the copy: each one's bytes move down over the
	 * headers, so they follow each other in buf */
	if (count == 0 || count > RING_BATCH_MAX)
		return 0;
	for (unsigned i = 0, pos = 0; i < count && got < n; i++) {
		struct ring_rec rec;

		if (len - pos < sizeof(rec))
			return 0;
		memcpy(&rec, buf + start + pos, sizeof(rec));
		if (rec.len > RING_REC_MAX || ring_rec_size(rec.len) > len - pos)
			return 0;
		if (!(skip & ((uint64_t)1 << i))) {
			memmove(buf + rec_at, buf + start + pos + sizeof(rec), rec.len);
			out[got++] = (struct ring_peeked){
				.at = rec_at, .len = rec.len, .prio = k->prio,
				.redelivered = (atomic_load_explicit(&cs->handed, memory_order_relaxed) >> i) & 1
			};
			rec_at += rec.len;
		}
		pos += (unsigned)ring_rec_size(rec.len);
	}
	*at = rec_at;
	return (int)got;
}

int ring_peek(struct ring *r, struct ring_peeked *out, unsigned n, unsigned char *buf, size_t cap)
{
	uint64_t steps = r->data_size / RING_ALIGN + 1, head, pos, now = ring_now_ms();
	unsigned have = 0, got = 0;
	struct peek_cand *cand;
	size_t at = 0;

	if (n == 0)
		return 0;
	if (load_positions(r, &head, &pos) < 0)
		return -EAGAIN;
	/* a batch holds RING_BATCH_MAX messages at most, a chunk one at least:
	 * the first n chunks in order hold the first n messages */
	cand = calloc(n, sizeof(*cand));
	if (!cand)
		return -ENOMEM;
	while (pos < head && steps--) {
		struct peek_cand k;
		struct ring_chunk *c;
		uint64_t size;
		int ok = walk_step(r, &pos, &head, &c, &size);

		if (ok == WALK_TAIL)
			continue;
		if (ok != WALK_ON)
			break; /* the rest moved under us: what was found stands */
		if (peek_candidate(r, c, pos, now, &k))
			peek_keep(cand, &have, n, &k);
		pos += size;
	}
	for (unsigned i = 0; i < have && got < n; i++) {
		int ret = peek_copy(r, &cand[i], out + got, n - got, buf, cap, &at);

		if (ret == -EMSGSIZE) {
			if (got == 0) {
				free(cand);
				return -EMSGSIZE;
			}
			break;
		}
		got += (unsigned)ret;
	}
	free(cand);
	return (int)got;
}

uint64_t ring_depth(const struct ring *r)
{
	int64_t d = atomic_load_explicit(&r->q->depth, memory_order_relaxed);

	return d > 0 ? (uint64_t)d : 0;
}

/* Producer: find our reservation from the payload pointer of a loan and
 * fix its final length (at most what was reserved). */
int ring_loan_ref(struct ring *r, void *payload, size_t len, struct ring_ref *out)
{
	unsigned char *p = payload;
	struct ring_chunk *c;
	uint64_t off, w;

	if (p < r->data + RING_CHUNK_HDR || p >= r->data + r->data_size)
		return -EINVAL;
	off = (uint64_t)(p - r->data) - RING_CHUNK_HDR;
	if (off % RING_ALIGN)
		return -EINVAL;
	c = (struct ring_chunk *)(r->data + off);
	w = atomic_load_explicit(&ring_cs(r, c)->word, memory_order_acquire);
	if (w != RING_WORD(RING_RESERVED, r->self, c->gen))
		return -EINVAL; /* not a loan of this process */
	if (c->pos % r->data_size != off)
		return -EBADMSG; /* another sender overwrote its header */
	if (len > c->len)
		return -EMSGSIZE; /* beyond the reservation: bytes we never wrote */
	c->len = (uint32_t)len;
	*out = (struct ring_ref){
		.pos = ring_pos_at(c->pos, off, r->data_size), .offset = off, .gen = c->gen, .len = (uint32_t)len, .payload = p,
		.lane = r->lane
	};
	return 0;
}
