/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lane.h - the lanes of a queue whose senders are isolated from each
 * other: a ring per sending user (the design is lane.c's top comment).
 */
#ifndef IPCQ_LANE_H
#define IPCQ_LANE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lease.h"
#include "ring.h"

struct daemon;
struct queue;

/* Most processes a lane's writers list keeps (struct lane.writers). */
#define LANE_WRITERS_MAX 4096u

/* A ring's chunk count and the walk's, as a sweep at rest saw them;
 * valid: the last sweep did. */
struct ring_rest {
	bool valid;
	uint64_t chunks, census;
};

struct lane {
	struct ring ring; /* joined to its queue's ring (ring_join) */
	unsigned id;
	/* it failed a check: its objects are gone, its id is never given
	 * again in this queue (proto_meta.lanes_retired) */
	bool retired;
	struct lease_table leases; /* of its chunks (lease.c) */
	/* the processes (holder ids) given its data object writable: it goes
	 * to another owner only once none of them lives (a process may keep
	 * its mapping after it closed its connection); all: too many to
	 * keep, never to another owner */
	uint32_t *writers;
	unsigned nwriters, writers_cap;
	bool writers_all;
	/* the chunk count as the last sweeps saw it at rest (queue.c) */
	struct ring_rest rest;
};

/* Whether the queue gives each sending user a lane of its own. */
bool queue_isolated(const struct queue *q);
/* The ring of lane id of q (0: q's own), or NULL when it has none. */
struct ring *queue_ring_of(struct queue *q, unsigned id);
/* The ring the daemon writes into q through (dead letters, messages
 * kept aside going back): q's own, or with lanes one of the daemon's
 * own (lane_assign); NULL when it has none now. */
struct ring *queue_daemon_ring(struct daemon *d, struct queue *q);

/* Who a lane is (proto_meta.lane_owner): a user (its uid + 1), or the
 * daemon; 0 nobody. */
#define LANE_OWNER_DAEMON UINT32_MAX
static inline uint32_t lane_owner_of_uid(uid_t uid)
{
	return (uint32_t)uid + 1u < LANE_OWNER_DAEMON ? (uint32_t)uid + 1u : LANE_OWNER_DAEMON - 1u;
}

/* The lane of owner (lane_owner_of_uid, or LANE_OWNER_DAEMON) for the
 * process holder (0: the daemon), which will map it writable: the one
 * the owner has, else one whose owner is gone (no process it was given to
 * lives, no client of its user is connected) and that holds nothing (its
 * pages given back, so that nothing of the last owner's is left to read),
 * else a new one.  Its id, or a negative errno with errbuf saying why
 * (-EUSERS: every lane in use). */
int lane_assign(struct daemon *d, struct queue *q, uint32_t owner, uint32_t holder, char *errbuf, size_t errcap);
/* New descriptors of lane id's objects: control read-write, data
 * read-write for its sender or read-only. */
int lane_fds(struct daemon *d, struct queue *q, unsigned id, bool writable, int fds[2]);
/* After a restart: map the lanes the queue's meta page says it has. */
void lanes_adopt(struct daemon *d, struct queue *q);
/* A lane failed a check: it leaves the queue (its messages with it: only
 * its own sender could spoil it), logged once. */
void lane_retire(struct daemon *d, struct queue *q, struct lane *l, const char *why);
/* Unmap every lane (and with unlink_objects, remove their objects). */
void lanes_free(struct daemon *d, struct queue *q, bool unlink_objects);

#endif
