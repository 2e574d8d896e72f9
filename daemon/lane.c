/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lane.c - lanes: a ring per sending user, so that senders of a queue
 * can neither read nor spoil each other's messages.
 *
 * In a queue made with senders = isolated, a sender does not map the
 * queue's ring writable: the daemon gives each sending user a lane of
 * its own, a ring (control and data objects, ".l<id>" and ".l<id>.data",
 * made like the queue's ring: exclusively, mode 0600, reserved), whose
 * data object that user's processes alone map writable.  Its receivers map it
 * read-only as they meet it (PROTO_OP_LANE; the meta page lists the
 * lanes there are); they write its control object as they take and
 * release its chunks, as they do the queue's ring's.  A sender so holds
 * no descriptor of any object that carries another sender's payloads:
 * not the queue's data object (read-only, and only the daemon writes
 * there: dead letters, messages kept aside coming back), not another
 * lane's.  What every client shares stays in the queue's own ring: the
 * receive slots, the counters and depth, the window's count, receivers
 * asleep (ring.h, ring.q).  The mq window is shared too: a sender can
 * put a descriptor there naming another lane's chunk, which hands that
 * chunk to a receiver (the chunk's own header and seal decide what it
 * is) and makes its real descriptor a duplicate, dropped: the message is
 * delivered once, maybe sooner, never changed.
 *
 * Each lane has its own lock, backlog and space: a sender that spoils its
 * lane spoils its own messages.  The daemon walks every lane as it walks
 * the queue's ring (reclaim, leases, orphans, dead letters, census), and
 * a lane that fails a check is retired alone (its objects removed, its id
 * never given again in the queue) where the queue's own ring would be
 * quarantined.
 *
 * Senders are told apart by their user, as the queue's rights are (the
 * config allows users and groups): the processes of one user share its
 * lane, as they all share the queue's ring when senders = shared, so a
 * shell loop of `ipcq send` takes one lane, not one a process.  A lane
 * belongs to its user (in the meta page, so that it outlives a restart of
 * the daemon) while a client of that user is connected; then it is given
 * to another only once it holds nothing and its pages were given back
 * (ring_give_back, which zeroes them): nothing of the last user's bytes
 * is left to read.  The daemon's own writes (dead letters, messages kept
 * aside going back) go through a lane of the daemon's.  Lanes stay made
 * until the queue is deleted; an idle one holds no memory once given
 * back.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "peer.h"
#include "queue.h"

bool queue_isolated(const struct queue *q)
{
	return q->rec.geo.senders == IPCQ_SENDERS_ISOLATED;
}

struct ring *queue_ring_of(struct queue *q, unsigned id)
{
	if (id == 0)
		return q->ring.hdr ? &q->ring : NULL;
	if (id > PROTO_LANES_MAX || !q->lanes[id] || q->lanes[id]->retired)
		return NULL;
	return &q->lanes[id]->ring;
}

struct ring *queue_daemon_ring(struct daemon *d, struct queue *q)
{
	char err[PROTO_ERRMSG_MAX];
	int id;

	if (!queue_isolated(q) || !q->meta)
		return q->ring.hdr ? &q->ring : NULL;
	id = lane_assign(d, q, LANE_OWNER_DAEMON, 0, err, sizeof(err));
	if (id < 0) {
		log_debug("queue %s: no lane for the daemon's writes now: %s", q->rec.name, err);
		return NULL;
	}
	return &q->lanes[id]->ring;
}

static uint64_t bit(unsigned id)
{
	return 1ull << (id - 1);
}

static void lane_joined(struct queue *q, struct lane *l)
{
	ring_join(&l->ring, &q->ring, l->id);
	l->ring.self = 0; /* the daemon's walks hold nothing */
}

/* Make lane id of q. */
static int lane_make(struct daemon *d, struct queue *q, unsigned id, char *errbuf, size_t errcap)
{
	char ctl[PROTO_OBJ_NAME_MAX], data[PROTO_OBJ_NAME_MAX];
	struct lane *l;
	int ret = queue_lane_names(d, &q->rec, id, ctl, data);

	if (ret < 0) {
		snprintf(errbuf, errcap, "invalid lane name");
		return ret;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->id = id;
	ret = queue_ring_make(q, ctl, data, &l->ring, errbuf, errcap);
	if (ret == -EEXIST) {
		/* our names are unguessable: left by a daemon that died making it */
		shm_unlink(ctl);
		shm_unlink(data);
		ret = queue_ring_make(q, ctl, data, &l->ring, errbuf, errcap);
	}
	if (ret < 0) {
		free(l);
		return ret;
	}
	lane_joined(q, l);
	q->lanes[id] = l;
	atomic_fetch_or_explicit(&q->meta->lanes, bit(id), memory_order_release);
	log_debug("queue %s: lane %u made", q->rec.name, id);
	return 0;
}

/* Process holder maps lane l writable (0: the daemon, which always may). */
static void writer_add(struct lane *l, uint32_t holder)
{
	uint32_t *v;

	if (!holder || l->writers_all)
		return;
	for (unsigned i = 0; i < l->nwriters; i++)
		if (l->writers[i] == holder)
			return;
	if (l->nwriters == l->writers_cap) {
		unsigned cap = l->writers_cap ? 2 * l->writers_cap : 8;

		v = cap <= LANE_WRITERS_MAX ? reallocarray(l->writers, cap, sizeof(*v)) : NULL;
		if (!v) {
			l->writers_all = true; /* never to another owner */
			return;
		}
		l->writers = v;
		l->writers_cap = cap;
	}
	l->writers[l->nwriters++] = holder;
}

/* Whether a process l was given writable may still map it. */
static bool writers_live(struct daemon *d, struct lane *l)
{
	unsigned kept = 0;

	if (l->writers_all)
		return true;
	for (unsigned i = 0; i < l->nwriters; i++)
		if (peer_holder_alive(d, l->writers[i]))
			l->writers[kept++] = l->writers[i];
	l->nwriters = kept;
	return kept != 0;
}

/* Whether lane l may go to a new owner: no process it was given to
 * writable lives (the daemon's writes are done within a turn of its
 * loop), no client of its user is connected, nothing in it, and its pages
 * given back (zeroed). */
static bool lane_free(struct daemon *d, struct queue *q, struct lane *l)
{
	uint32_t owner = atomic_load_explicit(&q->meta->lane_owner[l->id - 1], memory_order_relaxed);

	/* (what a dead sender left reserved, the sweep reclaims first) */
	if (l->retired || writers_live(d, l) ||
	    (owner && owner != LANE_OWNER_DAEMON && ctl_uid_connected(d, (uid_t)(owner - 1))))
		return false;
	return ring_give_back(&l->ring) == 1;
}

int lane_assign(struct daemon *d, struct queue *q, uint32_t owner, uint32_t holder, char *errbuf, size_t errcap)
{
	uint64_t retired = atomic_load_explicit(&q->meta->lanes_retired, memory_order_relaxed);
	unsigned fresh = 0;
	int ret, reserve = 0;

	for (unsigned id = 1; id <= PROTO_LANES_MAX; id++) {
		if (q->lanes[id] && !q->lanes[id]->retired &&
		    atomic_load_explicit(&q->meta->lane_owner[id - 1], memory_order_relaxed) == owner) {
			writer_add(q->lanes[id], holder);
			return (int)id;
		}
	}
	for (unsigned id = 1; id <= PROTO_LANES_MAX; id++) {
		if (!q->lanes[id]) {
			if (!fresh && !(retired & bit(id)))
				fresh = id;
			continue;
		}
		/* its pages come back reserved, or it is not given: a sender
		 * touching a page /dev/shm has no room for would get a SIGBUS */
		if (lane_free(d, q, q->lanes[id]) && (reserve = queue_reserve_lane(d, q, id, false)) == 0) {
			atomic_store_explicit(&q->meta->lane_owner[id - 1], owner, memory_order_release);
			writer_add(q->lanes[id], holder);
			return (int)id;
		}
	}
	if (!fresh && reserve < 0) {
		snprintf(errbuf, errcap, "no room in /dev/shm for a lane of queue '%s' (%s)", q->rec.name,
		         strerror(-reserve));
		return -ENOSPC;
	}
	if (!fresh) {
		snprintf(errbuf, errcap,
		         "queue '%s' has %u lanes, each a sending user's or holding messages: no more users send "
		         "to it at once (senders = \"shared\" has no such bound)",
		         q->rec.name, PROTO_LANES_MAX);
		return -EUSERS;
	}
	ret = lane_make(d, q, fresh, errbuf, errcap);
	if (ret < 0) {
		log_queue(LOG_LEVEL_WARNING, q->rec.name, "queue %s: no lane made: %s", q->rec.name, errbuf);
		return ret;
	}
	atomic_store_explicit(&q->meta->lane_owner[fresh - 1], owner, memory_order_release);
	writer_add(q->lanes[fresh], holder);
	return (int)fresh;
}

int lane_fds(struct daemon *d, struct queue *q, unsigned id, bool writable, int fds[2])
{
	char ctl[PROTO_OBJ_NAME_MAX], data[PROTO_OBJ_NAME_MAX];
	int ret;

	if (!queue_ring_of(q, id) || id == 0)
		return -ENOENT;
	ret = queue_lane_names(d, &q->rec, id, ctl, data);
	if (ret < 0)
		return ret;
	fds[0] = shm_open(ctl, O_RDWR | O_CLOEXEC, 0);
	if (fds[0] < 0)
		return -errno;
	/* payloads: writable by the lane's sender alone */
	fds[1] = shm_open(data, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0);
	if (fds[1] < 0) {
		ret = -errno;
		close(fds[0]);
		fds[0] = -1;
		return ret;
	}
	return 0;
}

void lanes_adopt(struct daemon *d, struct queue *q)
{
	uint64_t made = q->meta ? atomic_load_explicit(&q->meta->lanes, memory_order_relaxed) : 0;

	for (unsigned id = 1; id <= PROTO_LANES_MAX; id++) {
		char ctl[PROTO_OBJ_NAME_MAX], data[PROTO_OBJ_NAME_MAX], err[PROTO_ERRMSG_MAX];
		struct lane *l;
		int ret;

		if (!(made & bit(id)) || queue_lane_names(d, &q->rec, id, ctl, data) < 0)
			continue;
		l = calloc(1, sizeof(*l));
		if (!l)
			break;
		l->id = id;
		ret = queue_ring_adopt(d, q, ctl, data, &l->ring, err, sizeof(err));
		if (ret < 0) {
			/* its messages are its sender's alone: the queue goes on */
			log_queue(LOG_LEVEL_WARNING, q->rec.name, "queue %s: lane %u not adopted: %s", q->rec.name, id,
			          err);
			free(l);
			atomic_fetch_and_explicit(&q->meta->lanes, ~bit(id), memory_order_release);
			if (ret != -EPERM && ret != -ENOENT) {
				atomic_fetch_or_explicit(&q->meta->lanes_retired, bit(id), memory_order_release);
				shm_unlink(ctl);
				shm_unlink(data);
			}
			continue;
		}
		lane_joined(q, l);
		/* the processes of the last daemon's that live may map it:
		 * it is no other owner's until they are gone */
		for (const struct peer *p = d->peers; p; p = p->next)
			writer_add(l, p->holder);
		q->lanes[id] = l;
	}
}

void lane_retire(struct daemon *d, struct queue *q, struct lane *l, const char *why)
{
	char ctl[PROTO_OBJ_NAME_MAX], data[PROTO_OBJ_NAME_MAX];
	uint32_t owner;

	if (l->retired)
		return;
	l->retired = true;
	owner = atomic_load_explicit(&q->meta->lane_owner[l->id - 1], memory_order_relaxed);
	atomic_fetch_or_explicit(&q->meta->lanes_retired, bit(l->id), memory_order_release);
	atomic_fetch_and_explicit(&q->meta->lanes, ~bit(l->id), memory_order_release);
	atomic_store_explicit(&q->meta->lane_owner[l->id - 1], 0, memory_order_release);
	if (queue_lane_names(d, &q->rec, l->id, ctl, data) >= 0) {
		shm_unlink(ctl);
		shm_unlink(data);
	}
	d->quarantined++;
	log_queue(LOG_LEVEL_ERROR, q->rec.name,
	          "queue %s: lane %u (%s %u's) taken out of the queue with what it held: %s; the queue's other "
	          "senders go on",
	          q->rec.name, l->id, owner == LANE_OWNER_DAEMON ? "the daemon" : "uid",
	          owner && owner != LANE_OWNER_DAEMON ? (unsigned)(owner - 1) : 0u, why && *why ? why : "a check failed");
	lease_table_clear(&l->leases);
	/* (its mapping stays until the queue goes: a walk may still hold it) */
}

void lanes_free(struct daemon *d, struct queue *q, bool unlink_objects)
{
	for (unsigned id = 1; id <= PROTO_LANES_MAX; id++) {
		struct lane *l = q->lanes[id];
		char ctl[PROTO_OBJ_NAME_MAX], data[PROTO_OBJ_NAME_MAX];

		if (unlink_objects && queue_lane_names(d, &q->rec, id, ctl, data) >= 0 &&
		    ((q->meta && (atomic_load_explicit(&q->meta->lanes, memory_order_relaxed) & bit(id))) || l)) {
			shm_unlink(ctl);
			shm_unlink(data);
		}
		if (!l)
			continue;
		lease_table_clear(&l->leases);
		queue_ring_unmap(&l->ring);
		free(l->writers);
		free(l);
		q->lanes[id] = NULL;
	}
}
