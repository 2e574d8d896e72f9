/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lease.c - how long each lease of an at-least-once queue has been held.
 *
 * A message a receiver took is leased to it: its ring chunk is TAKEN with
 * the receiver's holder id and the chunk's generation in the chunk's word
 * (ring.c).  A queue's ack_timeout bounds the lease: a chunk held longer
 * is taken back by the daemon's sweep and delivered again, as if its
 * holder had died.
 *
 * Nothing in shared memory can say how long a chunk was held: every
 * client of the queue can write the chunk states, and a time stamp there
 * would be the holder's to forge.  So the daemon keeps its own record.
 * Each sweep walks the ring from tail to head (ring_reclaim) and reports
 * every chunk a live holder has TAKEN: its offset, its word and how many
 * times it was delivered.  The table remembers, per offset, the first
 * walk that met that very lease: the same word (holder and generation,
 * so a chunk reused since is a new lease) and the same deliveries (so a
 * chunk given back and taken again by the same process is a new lease).
 * A lease met by walks that span the timeout has run out.
 *
 * Each walk builds the table anew from what it met, carrying the first
 * sighting over where the lease is the same, so leases released meanwhile
 * are forgotten at once and the table never holds more entries than the
 * ring holds chunks; a walk cut short (the ring moved under it) keeps the
 * leases it did not reach.  Memory is taken as leases appear, doubling,
 * and given back when none is left.
 *
 * The times are the daemon's CLOCK_MONOTONIC at the start of each walk,
 * so a lease is taken back between timeout and timeout plus about two
 * sweep intervals after it was taken (it is first met up to one interval
 * after the take), and never before the timeout less the timer's slack
 * (LEASE_CLOCK_SLACK_MS).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lease.h"
#include "util.h"

#define LEASE_TABLE_MIN 16u

void lease_table_clear(struct lease_table *t)
{
	free(t->seen);
	free(t->met);
	*t = (struct lease_table){ 0 };
}

void lease_walk_begin(struct lease_table *t, const char *ring, size_t max, uint64_t timeout_ms, uint64_t now_ms)
{
	if (strcmp(t->ring, ring) != 0) {
		lease_table_clear(t);
		snprintf(t->ring, sizeof(t->ring), "%s", ring);
	}
	t->max = max;
	t->timeout_ms = timeout_ms;
	t->now_ms = now_ms;
	t->n_met = 0;
}

static int by_offset(const void *a, const void *b)
{
	const struct lease *x = a, *y = b;

	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	if (x->word != y->word)
		return x->word < y->word ? -1 : 1;
	return (int)x->deliveries - (int)y->deliveries;
}

/* The lease at offset among the first n of sorted, or NULL. */
static const struct lease *find(const struct lease *sorted, size_t n, uint64_t offset)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sorted[mid].offset == offset)
			return &sorted[mid];
		if (sorted[mid].offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Add l to what the walk met; false when the table is at its bound or out
 * of memory (the lease is then not followed, and counts as new when next met). */
static bool met_add(struct lease_table *t, const struct lease *l)
{
	if (t->n_met == t->cap_met) {
		size_t cap = t->cap_met ? 2 * t->cap_met : LEASE_TABLE_MIN;
		struct lease *p;

		cap = MIN(cap, t->max);
		if (cap <= t->n_met)
			return false;
		p = reallocarray(t->met, cap, sizeof(*p));
		if (!p)
			return false;
		t->met = p;
		t->cap_met = cap;
	}
	t->met[t->n_met++] = *l;
	return true;
}

bool lease_walk_met(struct lease_table *t, uint64_t offset, uint64_t word, unsigned deliveries)
{
	uint64_t held;

	return lease_walk_met_held(t, offset, word, deliveries, &held);
}

bool lease_walk_met_held(struct lease_table *t, uint64_t offset, uint64_t word, unsigned deliveries,
                         uint64_t *held_ms)
{
	const struct lease *old = find(t->seen, t->n_seen, offset);
	struct lease l = {
		.offset = offset, .word = word, .first_seen_ms = t->now_ms, .deliveries = (uint16_t)deliveries
	};

	if (old && old->word == word && old->deliveries == l.deliveries)
		l.first_seen_ms = old->first_seen_ms;
	*held_ms = t->now_ms - MIN(l.first_seen_ms, t->now_ms);
	/* met by an earlier walk, and the walks span the timeout */
	if (t->timeout_ms && l.first_seen_ms < t->now_ms &&
	    t->now_ms - l.first_seen_ms + LEASE_CLOCK_SLACK_MS >= t->timeout_ms)
		return true;
	met_add(t, &l);
	return false;
}

void lease_walk_end(struct lease_table *t, bool whole)
{
	size_t n = 0, sorted;
	struct lease *swap;

	/* sorted, one lease an offset (a walk that went round the ring more
	 * than once may have met an offset twice) */
	if (t->n_met)
		qsort(t->met, t->n_met, sizeof(*t->met), by_offset);
	for (size_t i = 0; i < t->n_met; i++)
		if (n == 0 || t->met[n - 1].offset != t->met[i].offset)
			t->met[n++] = t->met[i];
	t->n_met = n;
	if (!whole) {
		/* what the walk did not reach is still held, as far as we know */
		sorted = t->n_met;
		for (size_t i = 0; i < t->n_seen; i++)
			if (!find(t->met, sorted, t->seen[i].offset) && !met_add(t, &t->seen[i]))
				break;
		if (t->n_met > sorted)
			qsort(t->met, t->n_met, sizeof(*t->met), by_offset);
	}
	swap = t->seen;
	t->seen = t->met;
	t->met = swap;
	n = t->cap_seen;
	t->cap_seen = t->cap_met;
	t->cap_met = n;
	t->n_seen = t->n_met;
	t->n_met = 0;
	if (t->n_seen == 0) {
		free(t->seen);
		free(t->met);
		t->seen = t->met = NULL;
		t->cap_seen = t->cap_met = 0;
	}
}
