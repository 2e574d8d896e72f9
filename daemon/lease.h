/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lease.h - how long the receivers of an at-least-once queue have held
 * what they took, as the daemon's sweeps saw it (the design is lease.c's
 * top comment).
 */
#ifndef IPCQ_LEASE_H
#define IPCQ_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* The daemon's sweeps can be this late, or early, against each other: a
 * lease counts as held for a timeout when the walks that saw it span the
 * timeout less this. */
#define LEASE_CLOCK_SLACK_MS 100u

/* A lease as a walk met it: the chunk at offset, TAKEN with word (holder
 * and generation) for the deliveries-th time, since first_seen_ms. */
struct lease {
	uint64_t offset;
	uint64_t word;
	uint64_t first_seen_ms;
	uint16_t deliveries;
};

/* The leases of one queue, in the daemon's own memory: nothing a client
 * can write says how long a chunk was held. */
struct lease_table {
	char ring[PROTO_TOKEN_LEN + 1]; /* the token of the ring they are in */
	struct lease *seen;             /* by the last walks, sorted by offset */
	size_t n_seen, cap_seen;
	struct lease *met;              /* by the walk under way, in its order */
	size_t n_met, cap_met;
	size_t max;                     /* chunks the ring can hold: most leases */
	uint64_t now_ms;                /* when the walk under way began */
	uint64_t timeout_ms;
};

/* Free what the table holds; it is empty afterwards (and may be used again). */
void lease_table_clear(struct lease_table *t);

/* A walk of the ring named ring (its objects' token: a table of another
 * ring's leases is cleared first) begins at now_ms, CLOCK_MONOTONIC; the
 * ring holds at most max chunks, and leases run out after timeout_ms. */
void lease_walk_begin(struct lease_table *t, const char *ring, size_t max, uint64_t timeout_ms, uint64_t now_ms);
/* The walk met a chunk TAKEN by a live holder: whether its lease ran out
 * (the walks that met the same offset, word and deliveries span the
 * timeout).  One that ran out is forgotten: the caller takes it back, or
 * it moved on by itself. */
bool lease_walk_met(struct lease_table *t, uint64_t offset, uint64_t word, unsigned deliveries);
/* lease_walk_met, telling how long the walks saw the lease held
 * (*held_ms: 0 for one met first by this walk). */
bool lease_walk_met_held(struct lease_table *t, uint64_t offset, uint64_t word, unsigned deliveries,
                         uint64_t *held_ms);
/* The walk ended: after a whole one (tail to head) the leases it did not
 * meet are gone; after a partial one they are kept. */
void lease_walk_end(struct lease_table *t, bool whole);

/* Leases the table knows. */
static inline size_t lease_count(const struct lease_table *t)
{
	return t->n_seen;
}

#endif
