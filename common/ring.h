/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ring.h - the per-queue shared-memory ring: layout and operations.
 *
 * See the comment at the top of ring.c for the design (layout, invariants,
 * memory ordering, crash points).  The daemon formats and adopts rings and
 * reclaims what dead clients held; the library reserves, publishes, takes
 * and releases chunks.  Both use this one definition.
 */
#ifndef IPCQ_RING_H
#define IPCQ_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipcq.h"
#include "proto.h"

#define RING_MAGIC 0x474e495251435049ull /* "IPCQRING" */
#define RING_DATA_MAGIC 0x4154414451435049ull /* "IPCQDATA" */
#define RING_VERSION 6u
#define RING_ALIGN 128u                  /* chunk alignment, and smallest chunk: one state each */
#define RING_CHUNK_HDR 64u               /* the chunk header, before the payload */
#define RING_SPAGE_SIZE 4096u            /* the senders' page, at the start of the data object */
#define RING_CHUNK_MAGIC 0x4b4e4843u     /* "CHNK" */
#define RING_SLOTS 128u                  /* receive slots per queue */
#define RING_WAKE_MAX 64u                /* most waiting producers one release wakes */
#define RING_LOCK_GRACE_MS 100           /* the lock wait of a call with timeout 0 (a holder descheduled) */
#define RING_LOCK_SPIN 200u              /* looks at a held lock before waiting in the kernel */
#define RING_TAKE_TRIES 1000u            /* CAS attempts on one chunk word */
#define RING_HDR_SIZE 4096u
#define RING_LEVELS 8u                   /* priorities the backlog keeps apart */
#define RING_RETURNED RING_LEVELS        /* the level of batches given back: served first */
#define RING_BATCH_MAX 64u               /* messages in one batch chunk (a bit each) */
#define RING_REC_MAX 16384u              /* largest message a batch chunk carries */
#define RING_MOVE_MAX 64u                /* chunks one move puts in the window */
#define RING_HOT (8u << 20)              /* the most of the data area kept to while little is in use */
#define RING_HOT_MIN (1u << 20)          /* the least of it */
#define RING_HOT_CHUNKS 16u              /* chunks of a size it holds */

/* Chunk states, the low byte of ring_chunk.word. */
enum ring_state {
	RING_FREE = 0,       /* never used (fresh memory) */
	RING_RESERVED = 1,   /* a producer owns it and is writing the payload */
	RING_PUBLISHING = 2, /* payload complete; the producer is sending its descriptor */
	RING_PUBLISHED = 3,  /* its descriptor is on the mq (or in a receive slot) */
	RING_TAKEN = 4,      /* a consumer owns it and is reading the payload */
	RING_RELEASED = 5,   /* done; space returns when every earlier chunk is done */
	RING_PAD = 6,        /* filler up to the end of the data area (no payload) */
	RING_QUEUED = 7,     /* complete, in the backlog: its descriptor is not on the mq yet */
	/* a receiver gave it up for good (expired, delivered max_deliveries
	 * times, rejected): the daemon's sweep dead-letters or drops what of
	 * it is not done (no holder) */
	RING_DOOMED = 8,
};

/* Whether the daemon may move a TAKEN chunk's message aside (out of the
 * ring, into its own keeping) so that the space behind it moves on while
 * its holder keeps it long (ring.c, "Moving aside"). */
enum ring_aside {
	RING_ASIDE_NO = 0,     /* its holder may point into it */
	RING_ASIDE_OK = 1,     /* its holder keeps no pointer into it */
	RING_ASIDE_MOVING = 2, /* the daemon is copying it */
	RING_ASIDE_MOVED = 3,  /* the daemon keeps it: its holder tells the daemon, not the ring */
};

/* What a chunk's payload is. */
enum ring_kind {
	RING_KIND_RAW = 0,   /* one message: len bytes (a loan, or a large send) */
	RING_KIND_BATCH = 1, /* count records, each a ring_rec and its bytes, 8-aligned */
};

/* A record of a batch chunk; the next starts 8-aligned after its bytes. */
struct ring_rec {
	uint32_t len;
	uint32_t reserved;
};
/* bytes a record of len payload bytes takes in a batch */
static inline uint64_t ring_rec_size(uint64_t len)
{
	return (sizeof(struct ring_rec) + len + 7u) & ~(uint64_t)7u;
}

/* Holders.  What marks a chunk, a slot or the lock as held names its
 * holder by the id the daemon gave the holder's process when it connected
 * (PROTO_HOLDER_MAX at most), never by a pid: a pid means something else
 * in another PID namespace.  0 is no one (and, in a chunk the daemon is
 * redelivering, the daemon). */

/* word = gen low 32 bits << 32 | holder << 8 | state */
#define RING_WORD(state, holder, gen) \
	(((uint64_t)(uint32_t)(gen) << 32) | ((uint64_t)((uint32_t)(holder)&PROTO_HOLDER_MAX) << 8) | (uint64_t)(state))
#define RING_WORD_STATE(w) ((enum ring_state)((w)&0xffu))
#define RING_WORD_HOLDER(w) ((uint32_t)(((w) >> 8) & PROTO_HOLDER_MAX))
#define RING_WORD_GEN32(w) ((uint32_t)((w) >> 32))
/* a lock word: holder << 1 | others wait */
#define RING_LOCK_HOLDER(w) ((w) >> 1)

/* A chunk's header, in the data object: written by its sender alone (a
 * receive-only client maps the data object read-only). */
struct ring_chunk {
	uint64_t gen;   /* full generation; equals the descriptor's */
	uint64_t size;  /* bytes of the chunk, header included, multiple of RING_ALIGN */
	uint32_t len;   /* payload bytes (a batch: its records, headers included) */
	uint32_t magic; /* RING_CHUNK_MAGIC */
	uint64_t pos;   /* monotonic position, for ring_published's liveness check */
	uint32_t prio;  /* mq priority, set when published: redelivery keeps it */
	uint8_t kind;   /* enum ring_kind */
	uint8_t pad_;
	uint16_t count; /* records of a batch */
	/* gen once the payload is whole (0 while the sender writes it): a
	 * state word someone set by hand does not make a half-written chunk
	 * takeable */
	_Atomic uint64_t sealed;
	/* CLOCK_MONOTONIC milliseconds from which it is never delivered (its
	 * ttl ran out); 0: never.  A batch's records share it. */
	uint64_t expires;
	/* in a lane (ring.h, "Lanes"): the queue's ticket when it joined the
	 * backlog (backlog.c), by which receivers take the oldest first from
	 * among the lanes; written by its sender, so a hint */
	uint64_t ticket;
};

/* A chunk's state, in the control object's table (one per RING_ALIGN
 * bytes of the data area): written by senders, receivers and the daemon. */
struct ring_cstate {
	_Atomic uint64_t word;
	/* a batch's records, a bit each: handed to a receiver, and done with
	 * (released, or given up by the daemon); the holder of the TAKEN
	 * chunk sets them, the daemon reads them when the holder died */
	_Atomic uint64_t handed;
	_Atomic uint64_t done;
	uint8_t level;       /* backlog level, while QUEUED (backlog.c) */
	_Atomic uint8_t aside; /* enum ring_aside: may the daemon move it (ring.c) */
	uint16_t deliveries; /* times a receiver took it (saturating) */
	/* the daemon saw it PUBLISHED beside an empty window: its generation's
	 * low bits, with bit 0 set (ring.c, orphan_check) */
	uint32_t orphan;
};

/* The senders' page, at the start of the data object: what says where
 * chunks are, so that a receive-only client cannot move it. */
struct ring_spage {
	uint64_t magic; /* RING_DATA_MAGIC */
	uint32_t version;
	uint32_t pad_;
	uint64_t data_size;
	/* the senders' lock: taken before the shared one by every process
	 * that maps the data object writable (see ring.c) */
	_Atomic uint32_t lock __attribute__((aligned(64)));
	_Atomic uint64_t head __attribute__((aligned(64))); /* position of the next reservation (monotonic) */
	_Atomic uint64_t tail;     /* position of the oldest unreclaimed chunk */
	_Atomic uint64_t next_gen;
	uint64_t last;             /* position of the newest chunk (the one a batch may grow) */
};

/* A receive slot: held by a receiving handle (its home) or by a call
 * under way, so that receivers can be counted and bounded.  Messages are
 * received into the receiver's own buffers, never here: what another
 * client could rewrite is not what a receiver hands out. */
struct ring_slot {
	_Atomic uint32_t owner; /* holder, 0 = free */
	/* its handle's receivers asleep (counted in ring_hdr.sleepers too):
	 * what the daemon takes off sleepers when the owner dies asleep */
	_Atomic uint32_t sleeping;
	uint32_t pad_[14];
};

struct ring_hdr {
	/* immutable after ring_format() */
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;
	uint64_t data_size;
	uint64_t max_payload;
	uint64_t slots_offset;
	uint64_t states_offset;
	uint64_t total_size; /* of the control object */
	uint32_t nslots;
	uint32_t slot_size;
	uint32_t msg_size;
	uint32_t delivery;

	/* the shared lock (a futex word, see ring.c) and what it guards */
	_Atomic uint32_t lock __attribute__((aligned(64)));
	_Atomic uint32_t space_seq; /* futex: moves on at every release (see ring.c) */
	_Atomic uint64_t chunks;  /* chunks between tail and head */
	_Atomic uint64_t hwm;     /* high-water mark of head - tail */
	_Atomic uint32_t waiters; /* producers waiting on space */
	_Atomic uint32_t corrupt; /* a chunk header failed validation on the walk */

	/* the backlog (backlog.c): chunks QUEUED in the ring, in levels by
	 * priority; levels are written under the lock */
	struct ring_level {
		uint32_t prio;
		uint32_t chunks; /* QUEUED chunks of the level (a hint: the walk is the truth) */
		uint64_t cursor; /* no QUEUED chunk of the level lies before it */
		uint64_t head;   /* in a lane: the ticket of its oldest QUEUED chunk (a hint, backlog.c) */
	} levels[RING_LEVELS + 1];
	_Atomic uint64_t backlog __attribute__((aligned(64))); /* messages QUEUED; 0: senders may go straight to the window */
	/* the queue's own ring of a queue with lanes: messages QUEUED in its
	 * lanes, and batches given back there, all lanes together (hints,
	 * backlog.c); 0 in a lane's header */
	_Atomic uint64_t lanes_backlog;
	_Atomic uint32_t lanes_returned;
	_Atomic uint32_t window_full;                          /* a move found the window full (a hint, backlog.c) */
	_Atomic uint32_t returned;                             /* chunks in the returned level (a hint) */
	_Atomic uint64_t window_seq;                           /* moves into the window (backlog.c) */
	_Atomic int64_t depth __attribute__((aligned(64)));    /* messages waiting (see backlog.c) */

	/* counters, updated with relaxed atomics; hot ones on their own lines */
	_Atomic uint64_t sent __attribute__((aligned(64)));
	_Atomic uint64_t received __attribute__((aligned(64)));
	/* receivers' too: on received's line, not the senders' */
	_Atomic uint64_t acked;
	_Atomic uint64_t nacked;        /* messages receivers gave back or rejected (ipcq_nack) */
	_Atomic uint64_t sent_ring __attribute__((aligned(64)));
	_Atomic uint64_t redelivered;
	_Atomic uint64_t dropped;
	_Atomic uint64_t reclaimed;
	_Atomic uint64_t rejected;
	_Atomic uint64_t expired;       /* messages whose ttl ran out before a receiver had them */
	_Atomic uint64_t dead_lettered; /* messages the daemon moved to the dead-letter queue */
	_Atomic uint64_t moved;         /* chunks held long that the daemon copied aside */
	/* receivers asleep in the kernel, or about to be (backlog.h,
	 * backlog_sleepers): a hint senders choose their path by */
	_Atomic uint32_t sleepers __attribute__((aligned(64)));
	/* mq messages in the window, or on their way there (backlog.h,
	 * window_counted): a hint receivers spare a system call by */
	_Atomic int64_t window_msgs __attribute__((aligned(64)));
	/* the queue's own ring of a queue with lanes: the next ticket of a
	 * chunk joining a lane's backlog (ring_chunk.ticket) */
	_Atomic uint64_t tickets __attribute__((aligned(64)));
};

_Static_assert(sizeof(struct ring_hdr) <= RING_HDR_SIZE, "ring header fits its page");
_Static_assert(sizeof(struct ring_chunk) == RING_CHUNK_HDR, "the chunk header's size");
_Static_assert(sizeof(struct ring_slot) == 64, "a receive slot is a cache line");
_Static_assert(sizeof(struct ring_cstate) == 32, "a chunk state is a quarter of the smallest chunk");
_Static_assert(sizeof(struct ring_spage) <= RING_SPAGE_SIZE, "the senders' page fits its page");

/* Lanes.  A queue whose senders are isolated (ipcq_geometry.senders,
 * daemon/lane.c) has a ring per sending user besides its own: a lane,
 * laid out and operated as any ring (this file, backlog.c), its data
 * object writable by that user's processes alone.  A lane's ring is
 * joined to the queue's own (ring_join): what belongs to the queue as a
 * whole (depth, the counters, the window's count and sequence, receivers
 * asleep, the tickets that order the lanes' backlogs, the lanes' backlog
 * count) is read and written in the queue's own header, ring.q; what
 * belongs to the ring (its lock, space, backlog levels, chunk states) in
 * its own.  A descriptor on the mq names the lane of its chunk
 * (proto_msg_hdr.lane; 0: the queue's own ring).  The queue's own ring
 * then carries no payload: the daemon makes it the smallest there is
 * (proto_home_ring_size). */

/* Process-local view of a mapped ring. */
struct ring {
	struct ring_hdr *hdr;       /* the control object: read-write for every client */
	/* the queue's header: where what belongs to the queue as a whole is
	 * (the counters, depth, the window's count and sequence, receivers
	 * asleep): hdr itself, or for a lane its queue's own ring's */
	struct ring_hdr *q;
	uint16_t lane;              /* 0: the queue's own ring; else the lane's id */
	unsigned char *slots;
	struct ring_cstate *states;
	struct ring_spage *sp;      /* the data object: read-only for receive-only clients */
	unsigned char *data;
	size_t map_len;             /* of the control object */
	size_t data_map_len;        /* of the data object */
	bool writable;              /* the data object is mapped writable (a sender, the daemon) */
	/* geometry copied at attach: shared memory is not trusted for bounds */
	uint64_t data_size;
	uint64_t max_payload;
	uint32_t slot_size;
	uint32_t msg_size;
	uint32_t delivery;
	uint32_t self; /* this process's holder id (the library's; 0 in the daemon) */
	/* locks are tried, never waited for (the daemon writing to a
	 * dead-letter queue, as holder PROTO_HOLDER_DAEMON) */
	bool nowait;
	int bell;      /* the queue's eventfd, readable while the backlog is not empty; -1: none */
};

/* A chunk held by this process (reserved or taken). */
struct ring_ref {
	uint64_t pos; /* monotonic position of the chunk */
	uint16_t lane; /* of the ring it is in (ring.lane) */
	uint64_t offset;
	uint64_t gen;
	uint32_t len;
	void *payload;
	/* what a consumer's take found (ring_take) */
	uint8_t kind;    /* enum ring_kind */
	uint16_t count;  /* records of a batch */
	uint32_t prio;
	uint64_t handed; /* records handed out before (a redelivered batch) */
	uint64_t done;   /* records done with before: skip them */
	unsigned deliveries; /* times taken by a receiver, this take included */
	uint64_t expires;    /* the chunk's expiry (ring_chunk.expires) */
};

/* A record of a taken batch, checked against the chunk's bounds. */
struct ring_recview {
	const void *data;
	uint32_t len;
};

struct ring_geometry {
	uint64_t data_size;
	uint64_t max_payload;
	uint32_t msg_size;
	uint32_t delivery;
};

/* Bytes of the two objects of a ring of this geometry: the control
 * object (header, receive slots, chunk states) and the data object (the
 * senders' page and the data area). */
size_t ring_map_size(const struct ring_geometry *geo);
size_t ring_data_map_size(const struct ring_geometry *geo);
/* Check a geometry; 0 or -EINVAL with a reason in *why. */
int ring_geometry_check(const struct ring_geometry *geo, const char **why);

/* Daemon: initialize a fresh mapping (lock and space words, empty ring).
 * The control object must be zero-filled, as a new object is: its chunk
 * states are not written here. */
int ring_format(struct ring *r, void *mem, size_t map_len, void *data, size_t data_len,
                const struct ring_geometry *geo);
/* Both: check magic, version and layout of a mapping, and attach to it.
 * -EPROTO for foreign or other-version rings, -EINVAL for a bad layout. */
int ring_attach(struct ring *r, void *mem, size_t map_len, void *data, size_t data_len, bool writable);
/* A lane of a queue: what belongs to the queue as a whole is in home's
 * header, its receive slots and bell are home's, and its descriptors name
 * it by id. */
void ring_join(struct ring *lane, const struct ring *home, unsigned id);
/* Whether an attached ring has exactly this geometry. */
bool ring_geometry_equal(const struct ring *r, const struct ring_geometry *geo);

/* Producer: reserve room for len bytes, waiting up to timeout_ms for
 * space.  -EMSGSIZE if len can never fit, -ETIMEDOUT, -EAGAIN (timeout 0). */
int ring_reserve(struct ring *r, size_t len, int timeout_ms, struct ring_ref *out);
/* Producer: the reservation a loaned payload pointer belongs to, with its
 * final length len (<= the reserved length); -EINVAL if it is none. */
int ring_loan_ref(struct ring *r, void *payload, size_t len, struct ring_ref *out);
/* Producer: the payload is complete; next the descriptor goes on the mq
 * with priority prio. */
void ring_publishing(struct ring *r, const struct ring_ref *ref, unsigned prio);
/* Producer: the descriptor is on the mq. */
void ring_published(struct ring *r, const struct ring_ref *ref);
/* Producer: give a reservation back (mq_send failed, or unloan). */
void ring_cancel(struct ring *r, const struct ring_ref *ref);
/* Fill a descriptor for ref. */
void ring_describe(const struct ring_ref *ref, unsigned flags, struct proto_ring_desc *d);

/* Consumer: validate a descriptor and take its chunk.  -EBADMSG for a
 * forged descriptor (out of bounds, bad header, future generation),
 * -ESTALE for one whose chunk was already taken or reclaimed. */
int ring_take(struct ring *r, const struct proto_ring_desc *d, struct ring_ref *out);
/* Consumer: whether the bytes of a chunk it holds (at offset, of
 * generation gen) are still the sender's: no sender can have reused
 * them, which only a client that spoilt the chunk states makes possible
 * (tail is in the senders' page; a reuse needs it past the chunk).  Asked
 * after a copy is made: a copy made while it holds is whole. */
bool ring_unspoilt(const struct ring *r, uint64_t offset, uint64_t gen);
/* Consumer: done with a taken chunk. */
void ring_release(struct ring *r, const struct ring_ref *ref);
/* Consumer: the records of a taken batch, each checked against the
 * chunk (ref->count of them); -EBADMSG if they do not fit it. */
int ring_batch_records(const struct ring *r, const struct ring_ref *ref, struct ring_recview *out);
/* Consumer: record idx of a taken batch is handed out (false: the chunk
 * is no longer this process's, hand nothing) / is done with;
 * ring_batch_done returns true when it was the last, and the caller then
 * releases the chunk. */
bool ring_batch_handed(struct ring *r, uint64_t offset, uint64_t gen, unsigned idx);
/* Consumer: whether this process still holds the chunk (TAKEN by it, of
 * generation gen): the daemon takes back a lease that ran out. */
bool ring_holds(const struct ring *r, uint64_t offset, uint64_t gen);
bool ring_batch_done(struct ring *r, uint64_t offset, uint64_t gen, unsigned idx);

/* Consumer: give up a chunk this process holds for good (TAKEN by it,
 * of generation gen): expired, delivered too often, or rejected.  What of
 * it is not done the daemon dead-letters or drops.  false if it was not
 * this process's any more. */
bool ring_doom(struct ring *r, uint64_t offset, uint64_t gen);
/* Consumer: the chunk it holds (TAKEN by it, of generation gen) is one
 * it keeps no pointer into: the daemon may move it aside. */
void ring_allow_aside(struct ring *r, uint64_t offset, uint64_t gen);
/* Consumer, before it acts on a chunk it took (release, nack, give
 * back): the daemon may no longer move it; true when it did already:
 * the holder then acknowledges (or gives back) the message through the
 * daemon (PROTO_OP_MOVED). */
bool ring_stop_aside(struct ring *r, uint64_t offset, uint64_t gen);
/* The clock of chunk expiries: CLOCK_MONOTONIC milliseconds. */
uint64_t ring_now_ms(void);
static inline bool ring_expired(uint64_t expires, uint64_t now_ms)
{
	return expires != 0 && now_ms >= expires;
}

/* Daemon: a dead receiver's slot says how many of its receivers were
 * asleep: they leave the ring's sleepers count (backlog.h). */
void ring_forget_sleepers(struct ring *r, struct ring_slot *s);

/* Receive slots, claimed for r->self. */
int ring_slot_claim(struct ring *r);   /* index or -EUSERS */
void ring_slot_free(struct ring *r, int idx);
static inline struct ring_slot *ring_slot_at(const struct ring *r, unsigned idx)
{
	return (struct ring_slot *)(r->slots + (size_t)idx * r->slot_size);
}

/* What becomes of a lease a live holder has (ring_reclaim_ops.lease_check). */
enum ring_lease {
	RING_LEASE_KEEP,    /* nothing */
	RING_LEASE_EXPIRED, /* taken back: delivered again */
	RING_LEASE_MOVE,    /* copied aside, if its holder allows it */
};

/* Daemon: what to do with messages of dead clients, and of leases that
 * ran out. */
struct ring_reclaim_ops {
	/* whether holder is dead (and its holdings may be reclaimed): an id
	 * the daemon gave no live process counts as dead */
	bool (*is_dead)(uint32_t holder, void *ctx);
	/* put a message back on the mq; returns 0 or a negative errno */
	int (*resend)(const void *msg, size_t len, unsigned prio, void *ctx);
	/* whether the window (the mq) holds no message now; NULL in a walk
	 * that is not the periodic sweep (orphans are told by the sweep's
	 * walks, some time apart, see ring.c) */
	bool (*window_empty)(void *ctx);
	/* Leases, in a walk of the periodic sweep of an at-least-once ring
	 * (NULL in other walks, and when leases never time out): asked of
	 * every chunk a live holder has TAKEN, whether its lease ran out,
	 * given its offset, its word (holder and generation) and how many
	 * times it was delivered.  The answer is the daemon's, from its own
	 * memory (daemon/lease.c): nothing in shared memory says how long a
	 * chunk was held.  A lease that ran out is taken back as a dead
	 * holder's would be: its holder's release then does nothing.
	 * walk_begin and walk_end frame each walk that asks; walk_end says
	 * whether the walk went from tail to head (whole: a lease it did not
	 * meet is gone) and how many leases it took back. */
	void (*walk_begin)(void *ctx);
	/* enum ring_lease: aside says its holder marked it RING_ASIDE_OK */
	int (*lease_check)(uint64_t offset, uint64_t word, unsigned deliveries, bool aside, void *ctx);
	void (*walk_end)(bool whole, unsigned taken_back, void *ctx);
	/* A chunk a live holder keeps long (RING_LEASE_MOVE): its message (a
	 * raw chunk's, or the one record of a batch left to acknowledge, in
	 * place in the ring) kept by the daemon outside the ring, under the
	 * holder and the chunk's offset and generation, so that the chunk can
	 * be released: 0, or a negative errno (it then stays).  unmove: its
	 * holder came back for it meanwhile: forget it. */
	int (*move_aside)(uint32_t holder, uint64_t offset, uint64_t gen, const struct ring_recview *msg, unsigned prio,
	                  unsigned deliveries, uint64_t expires, void *ctx);
	void (*unmove)(uint32_t holder, uint64_t offset, uint64_t gen, void *ctx);
	/* Chunks receivers DOOMED, in the periodic sweep (NULL in other
	 * walks): what of one is not done (n messages, checked against the
	 * chunk's bounds, in place in the ring) goes to the queue's
	 * dead-letter queue: 1 moved, 0 dropped (none is set, or it cannot
	 * take them), -EAGAIN to try again at the next sweep (its locks were
	 * busy, it is full).  The chunk is then released, and counted. */
	int (*dead_letter)(const struct ring_recview *msgs, unsigned n, unsigned prio, void *ctx);
	/* at-least-once: what a holder held that was delivered this many
	 * times is DOOMED rather than delivered again (0: no bound) */
	unsigned max_deliveries;
	void *ctx;
};

/* Daemon: reclaim every chunk and slot held by dead processes (and the
 * chunks whose lease ran out, see ops->lease_expired), and break
 * the locks if a dead one holds them; without taking a lock (a
 * client could hold it, or have scribbled over it).
 * Returns the number of chunks and slots reclaimed, or -EBADMSG with *why
 * saying what failed when the shared state is not one the ring could be
 * in (the daemon then quarantines the queue). */
int ring_reclaim(struct ring *r, const struct ring_reclaim_ops *ops, const char **why);
/* Daemon: a ring descriptor a dead receiver held (found in its receive
 * buffers): sent again through ops->resend if it names a chunk its sender
 * sealed that waits to be taken (1), else nothing (0: anything else a
 * receiver may have written there is no message); -EAGAIN when the window
 * was full. */
int ring_resend_desc(struct ring *r, const struct proto_ring_desc *d, const struct ring_reclaim_ops *ops);

/* Daemon: write the header's fixed fields (magic, version, geometry,
 * layout) again from what the daemon kept, if a client overwrote them;
 * whether it had to.  For a ring that holds no chunk a client could have
 * made (the queue's own ring of a queue with lanes, ring.h): there, the
 * header is all a sender could spoil. */
bool ring_header_restore(struct ring *r);

/* Receive slots in use: receiving handles open, and calls under way. */
unsigned ring_receivers(const struct ring *r);
/* Usage figures for stat. */
uint64_t ring_bytes_used(const struct ring *r);
void ring_fill_stats(struct ring *r, ipcq_stats *st);
/* A lane's usage figures added to its queue's (ring_used, ring_hwm,
 * ring_chunks). */
void ring_add_usage(struct ring *r, ipcq_stats *st);

/* Daemon (purge): take and release the chunk of a descriptor drained
 * from the mq (no lock is taken); returns the messages it held, or a
 * negative errno. */
int ring_take_for_purge(struct ring *r, const struct proto_ring_desc *d);
/* Daemon (purge): release every chunk waiting in the backlog, without the
 * lock; returns the messages dropped. */
uint64_t ring_purge_backlog(struct ring *r);
/* Messages waiting (window and backlog), as clients count them. */
uint64_t ring_depth(const struct ring *r);

/* Consumer: copies of up to n messages that wait in the ring, without
 * taking them, in about the order receivers would take them (batches
 * given back and batches a receiver holds first, then what is in the
 * window by priority, then the backlog by priority; oldest first within
 * each).  Each message's bytes go into buf (cap bytes, one after the
 * other); out[i] says where.  Returns how many (0: none waits in the
 * ring), -EMSGSIZE when the first does not fit in cap, -EAGAIN when the
 * ring moved too much under the walk, -ENOMEM.  A snapshot: a chunk
 * taken while it is copied is left out.  Every byte read is checked
 * against the geometry kept at attach. */
struct ring_peeked {
	size_t at; /* its bytes: buf + at */
	uint32_t len;
	uint32_t prio;
	bool redelivered;
};
int ring_peek(struct ring *r, struct ring_peeked *out, unsigned n, unsigned char *buf, size_t cap);
/* Daemon: a walk without the lock over the chunks between tail and head:
 * how many, and how many of them hold messages that wait (in the backlog,
 * with their descriptor on its way or in the window, or in a batch a
 * receiver has not handed out).  -EAGAIN when the walk could not tell
 * (the ring moved under it). */
struct ring_census {
	uint64_t chunks;
	uint64_t waiting;
};
int ring_census(struct ring *r, struct ring_census *out);
/* Daemon: a ring that holds no chunk gives its pages back to the system
 * (the data area and the chunk states that describe it; they come back
 * zero when next used).  Under both locks, tried, never waited for: 1 if
 * it gave them back, 0 if it holds a chunk or a lock is busy (try again
 * later), -EBADMSG if its positions are not ones it could have. */
int ring_give_back(const struct ring *r);
/* Daemon: drop this process's mappings of the pages every walk reads (the
 * header, the receive slots, the senders' page: madvise MADV_DONTNEED),
 * so that an idle queue costs the daemon no resident memory; their
 * contents are untouched. */
void ring_let_go(const struct ring *r);

#endif
