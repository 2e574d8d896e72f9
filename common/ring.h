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
#define RING_VERSION 3u
#define RING_ALIGN 64u                   /* chunk alignment and header size */
#define RING_CHUNK_MAGIC 0x4b4e4843u     /* "CHNK" */
#define RING_SLOTS 128u                  /* receive slots per queue */
#define RING_WAKE_MAX 64u                /* most waiting producers one release wakes */
#define RING_LOCK_GRACE_MS 100           /* the lock wait of a call with timeout 0 (a holder descheduled) */
#define RING_TAKE_TRIES 1000u            /* CAS attempts on one chunk word */
#define RING_HDR_SIZE 4096u
#define RING_LEVELS 8u                   /* priorities the backlog keeps apart */
#define RING_RETURNED RING_LEVELS        /* the level of batches given back: served first */
#define RING_BATCH_MAX 64u               /* messages in one batch chunk (a bit each) */
#define RING_REC_MAX 16384u              /* largest message a batch chunk carries */
#define RING_MOVE_MAX 64u                /* chunks one move puts in the window */

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
/* the producers' lock word: holder << 1 | others wait */
#define RING_LOCK_HOLDER(w) ((w) >> 1)

struct ring_chunk {
	_Atomic uint64_t word;
	uint64_t gen;   /* full generation; equals the descriptor's */
	uint64_t size;  /* bytes of the chunk, header included, multiple of RING_ALIGN */
	uint32_t len;   /* payload bytes (a batch: its records, headers included) */
	uint32_t magic; /* RING_CHUNK_MAGIC */
	uint64_t pos;   /* monotonic position, for ring_published's liveness check */
	uint32_t prio;  /* mq priority, set when published: redelivery keeps it */
	uint8_t kind;   /* enum ring_kind */
	uint8_t level;  /* backlog level, while QUEUED (backlog.c) */
	uint16_t count; /* records of a batch */
	/* a batch's records, a bit each: handed to a receiver, and done with
	 * (released, or given up by the daemon); the holder of the TAKEN
	 * chunk sets them, the daemon reads them when the holder died */
	_Atomic uint64_t handed;
	_Atomic uint64_t done;
};

/* A receive slot: a consumer receives mq messages straight into buf, so a
 * message it took off the mq is visible to the daemon if it dies. */
struct ring_slot {
	_Atomic uint32_t owner; /* holder, 0 = free */
	unsigned int prio;      /* mq_receive writes the message's priority here */
	uint32_t pad_[14];
	unsigned char buf[]; /* msg_size bytes, starts with struct proto_msg_hdr */
};

struct ring_hdr {
	/* immutable after ring_format() */
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;
	uint64_t data_size;
	uint64_t max_payload;
	uint64_t slots_offset;
	uint64_t data_offset;
	uint64_t total_size;
	uint32_t nslots;
	uint32_t slot_size;
	uint32_t msg_size;
	uint32_t delivery;

	/* the producers' lock (a futex word, see ring.c) and what it guards */
	_Atomic uint32_t lock __attribute__((aligned(64)));
	_Atomic uint32_t space_seq; /* futex: moves on at every release (see ring.c) */
	_Atomic uint64_t head;    /* position of the next reservation (monotonic) */
	_Atomic uint64_t tail;    /* position of the oldest unreclaimed chunk */
	_Atomic uint64_t next_gen;
	_Atomic uint64_t chunks;  /* chunks between tail and head */
	_Atomic uint64_t hwm;     /* high-water mark of head - tail */
	_Atomic uint32_t waiters; /* producers waiting on space */
	_Atomic uint32_t corrupt; /* a chunk header failed validation on the walk */
	uint64_t last;            /* position of the newest chunk (the one a batch may grow) */

	/* the backlog (backlog.c): chunks QUEUED in the ring, in levels by
	 * priority; levels are written under the lock */
	struct ring_level {
		uint32_t prio;
		uint32_t chunks; /* QUEUED chunks of the level (a hint: the walk is the truth) */
		uint64_t cursor; /* no QUEUED chunk of the level lies before it */
	} levels[RING_LEVELS + 1];
	_Atomic uint64_t backlog __attribute__((aligned(64))); /* messages QUEUED; 0: senders may go straight to the window */
	_Atomic uint32_t window_full;                          /* a move found the window full (a hint, backlog.c) */
	_Atomic uint32_t returned;                             /* chunks in the returned level (a hint) */
	_Atomic uint64_t window_seq;                           /* moves into the window (backlog.c) */
	_Atomic int64_t depth __attribute__((aligned(64)));    /* messages waiting (see backlog.c) */

	/* counters, updated with relaxed atomics; hot ones on their own lines */
	_Atomic uint64_t sent __attribute__((aligned(64)));
	_Atomic uint64_t received __attribute__((aligned(64)));
	_Atomic uint64_t sent_ring __attribute__((aligned(64)));
	_Atomic uint64_t redelivered;
	_Atomic uint64_t dropped;
	_Atomic uint64_t reclaimed;
	_Atomic uint64_t rejected;
};

_Static_assert(sizeof(struct ring_hdr) <= RING_HDR_SIZE, "ring header fits its page");
_Static_assert(sizeof(struct ring_chunk) == RING_ALIGN, "chunk header is one alignment unit");

/* Process-local view of a mapped ring. */
struct ring {
	struct ring_hdr *hdr;
	unsigned char *data;
	unsigned char *slots;
	size_t map_len;
	/* geometry copied at attach: shared memory is not trusted for bounds */
	uint64_t data_size;
	uint64_t max_payload;
	uint32_t slot_size;
	uint32_t msg_size;
	uint32_t delivery;
	uint32_t self; /* this process's holder id (the library's; 0 in the daemon) */
	int bell;      /* the queue's eventfd, readable while the backlog is not empty; -1: none */
};

/* A chunk held by this process (reserved or taken). */
struct ring_ref {
	uint64_t pos; /* monotonic position of the chunk */
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

/* Bytes to map for a ring of this geometry. */
size_t ring_map_size(const struct ring_geometry *geo);
/* Check a geometry; 0 or -EINVAL with a reason in *why. */
int ring_geometry_check(const struct ring_geometry *geo, const char **why);

/* Daemon: initialize a fresh mapping (lock and space words, empty ring). */
int ring_format(struct ring *r, void *mem, size_t map_len, const struct ring_geometry *geo);
/* Both: check magic, version and layout of a mapping, and attach to it.
 * -EPROTO for foreign or other-version rings, -EINVAL for a bad layout. */
int ring_attach(struct ring *r, void *mem, size_t map_len);
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
/* Consumer: done with a taken chunk. */
void ring_release(struct ring *r, const struct ring_ref *ref);
/* Consumer: the records of a taken batch, each checked against the
 * chunk (ref->count of them); -EBADMSG if they do not fit it. */
int ring_batch_records(const struct ring *r, const struct ring_ref *ref, struct ring_recview *out);
/* Consumer: record idx of a taken batch was handed out / is done with;
 * ring_batch_done returns true when it was the last, and the caller then
 * releases the chunk. */
void ring_batch_handed(struct ring *r, uint64_t offset, unsigned idx);
bool ring_batch_done(struct ring *r, uint64_t offset, uint64_t gen, unsigned idx);

/* Receive slots, claimed for r->self. */
int ring_slot_claim(struct ring *r);   /* index or -EUSERS */
void ring_slot_free(struct ring *r, int idx);
static inline struct ring_slot *ring_slot_at(const struct ring *r, unsigned idx)
{
	return (struct ring_slot *)(r->slots + (size_t)idx * r->slot_size);
}

/* Daemon: what to do with messages of dead clients. */
struct ring_reclaim_ops {
	/* whether holder is dead (and its holdings may be reclaimed): an id
	 * the daemon gave no live process counts as dead */
	bool (*is_dead)(uint32_t holder, void *ctx);
	/* put a message back on the mq; returns 0 or a negative errno */
	int (*resend)(const void *msg, size_t len, unsigned prio, void *ctx);
	void *ctx;
};

/* Daemon: reclaim every chunk and slot held by dead processes, and break
 * the producers' lock if a dead one holds it; without taking the lock (a
 * client could hold it, or have scribbled over it).
 * Returns the number of chunks and slots reclaimed, or -EBADMSG with *why
 * saying what failed when the shared state is not one the ring could be
 * in (the daemon then quarantines the queue). */
int ring_reclaim(struct ring *r, const struct ring_reclaim_ops *ops, const char **why);

/* Receive slots in use: receiving handles open, and calls under way. */
unsigned ring_receivers(const struct ring *r);
/* Usage figures for stat. */
uint64_t ring_bytes_used(const struct ring *r);
void ring_fill_stats(const struct ring *r, ipcq_stats *st);

/* Daemon (purge): take and release the chunk of a descriptor drained
 * from the mq (no lock is taken); returns the messages it held, or a
 * negative errno. */
int ring_take_for_purge(struct ring *r, const struct proto_ring_desc *d);
/* Daemon (purge): release every chunk waiting in the backlog, without the
 * lock; returns the messages dropped. */
uint64_t ring_purge_backlog(struct ring *r);
/* Messages waiting (window and backlog), as clients count them. */
uint64_t ring_depth(const struct ring *r);
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

#endif
