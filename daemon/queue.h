/* SPDX-License-Identifier: Apache-2.0 */
/*
 * queue.h - the queues a daemon owns: a POSIX mq, a shm ring and a shm meta
 * page each, named "/ipcq.<namespace>.<queue>.<token>" (mq), "....ring" and
 * "....meta" (shm) with
 * a random token per queue (see proto_object_name), created exclusively
 * and mode 0600 so that only the daemon can open them by name; clients get
 * them as descriptors.  The queues are kept in a registry file (0600) so a
 * restarted daemon adopts what the previous one created, and nothing else.
 */
#ifndef IPCQ_QUEUE_H
#define IPCQ_QUEUE_H

#include <mqueue.h>
#include <stdbool.h>

#include "aside.h"
#include "daemon.h"
#include "lane.h"
#include "lease.h"
#include "ring.h"

struct notify_queue;

/* What the registry keeps of a queue: enough to find and check its objects. */
struct queue_record {
	char name[IPCQ_NAME_MAX + 1];
	char token[PROTO_TOKEN_LEN + 1];
	ipcq_geometry geo;
	enum delivery_mode delivery;
	uid_t creator; /* who asked for it: the daemon's uid for config queues */
	ipcq_queue_opts opts; /* the policy it was created with (0 and "": none) */
};

struct queue {
	struct queue *next;
	struct queue_record rec;
	uint32_t id;
	bool from_config; /* declared in the config (not auto-created) */
	mqd_t mq;         /* the daemon's own descriptor: O_RDWR | O_NONBLOCK */
	int bell;         /* the backlog's eventfd (backlog.c), passed to clients */
	struct ring ring; /* ring.hdr is NULL while the queue is quarantined at adoption */
	struct proto_meta *meta; /* the daemon-owned page (NULL if it was unusable at adoption) */
	/* Set when the queue's shared memory failed a check: the daemon stops
	 * touching it, opens are refused, purge rebuilds it, delete removes it. */
	char quarantine[160];
	/* the window as the last sweep saw it (queue_sweep_window) */
	uint32_t stuck_sweeps;
	/* the last sweep found the queue at rest (rest.valid), with: */
	int64_t rest_depth, rest_window;
	uint64_t rest_lanes_backlog;
	/* the lanes' backlog count the last sweep saw below their own counts'
	 * sum (UINT64_MAX: not below), and that sum */
	uint64_t low_lanes_backlog, low_lanes_sum;
	struct ring_rest rest; /* its own ring's chunk counts (a lane's are its own) */
	/* messages sent and received as the last sweep saw them, the sweeps
	 * since they last moved, and whether its ring's pages were given back
	 * since (queue_reclaim) */
	uint64_t idle_traffic;
	uint64_t idle_since_ms; /* CLOCK_MONOTONIC, when the idle sweeps began */
	uint32_t idle_sweeps;
	bool given_back;
	/* at-least-once: a message held longer than this (ms) is delivered
	 * again, from the config (queue_apply_config); 0: never */
	uint32_t ack_timeout_ms;
	struct lease_table leases; /* how long each lease was held (lease.c) */
	struct aside_table aside;  /* messages kept out of the ring for their receivers (aside.c) */
	/* ttl, max_deliveries and dead-letter queue, from the config and the
	 * creation (queue_apply_config) */
	struct queue_policy policy;
	struct notify_queue *notify; /* its listeners (notify.c), NULL when none */
	/* its lanes (lane.c), by id; NULL while not made */
	struct lane *lanes[PROTO_LANES_MAX + 1];
};

static inline bool queue_quarantined(const struct queue *q)
{
	return q->quarantine[0] != '\0';
}

/* Let go of the daemon's pages of the queue's shared memory (the ring's
 * objects and the meta page: ring_let_go): between sweeps an idle queue
 * is no resident memory of the daemon's; the pages stay in the objects,
 * and what the daemon touches later is mapped again. */
void queue_let_go(struct queue *q);

/* Create a queue with new kernel objects (geometry with every field set,
 * checked here against the bounds of proto_geometry_check).  On error,
 * errbuf says why in a sentence fit for the user. */
int queue_new(struct daemon *d, const struct queue_record *rec, char *errbuf, size_t errcap, struct queue **out);
/* Adopt the objects a registry record names, after a restart: only when
 * they are owned by this daemon's uid with mode 0600 (else -EPERM, and
 * they are left alone).  Objects that are ours but fail a check give a
 * quarantined queue, so that it can still be purged and deleted. */
int queue_adopt(struct daemon *d, const struct queue_record *rec, char *errbuf, size_t errcap, struct queue **out);
/* Remove a queue from the daemon; unlink its kernel objects if asked. */
void queue_destroy(struct daemon *d, struct queue *q, bool unlink_objects);
struct queue *queue_find(struct daemon *d, const char *name);
/* New descriptors of the queue for a client: the mq opened for what flags
 * ask, the ring, and the meta page read-only.  -EIO for a quarantined
 * queue. */
int queue_open_fds(struct daemon *d, struct queue *q, int flags, int fds[PROTO_OPEN_FDS]);
/* A queue whose senders are isolated: its own ring holds no chunk, so
 * what a client wrote over its header is put right (ring_header_restore,
 * and the counts of a backlog it cannot have), not quarantined. */
void queue_guard_home(struct queue *q);
/* Drop every waiting message; returns how many.  A quarantined queue is
 * rebuilt with new objects instead (its clients get -EIDRM). */
int queue_purge(struct daemon *d, struct queue *q);
void queue_stats(struct daemon *d, struct queue *q, ipcq_stats *st);
/* Reclaim what dead clients hold in the queue's ring: dead (a holder id
 * that just died, or 0) and every id no live process has. */
int queue_reclaim(struct daemon *d, struct queue *q, uint32_t dead);
/* Messages of q it gives up for good (n at most RING_BATCH_MAX) into its
 * dead-letter queue, without waiting: 1 written, 0 to be dropped (it has
 * none, or that one cannot take them; a missing one is logged), -EAGAIN
 * not now. */
int queue_dead_letter(struct daemon *d, struct queue *q, const struct ring_recview *msgs, unsigned n, unsigned prio);
/* The name of one of the queue's kernel objects ("/ipcq.<ns>.<queue>.<token><suffix>"). */
int queue_object_name(const struct daemon *d, const struct queue_record *rec, const char *suffix,
                      char buf[PROTO_OBJ_NAME_MAX]);
/* An object to adopt must be what this daemon would have made: owned by
 * its uid, mode 0600 (else -EPERM, with errbuf saying so).  While the
 * daemon takes over what it made before run_as (privilege.c), an object
 * of the uid it started as is given to its own. */
int queue_check_owned(const struct daemon *d, int fd, const char *what, const char *name, char *errbuf,
                      size_t errcap);
/* Send again a ring descriptor a dead receiver held (rbuf.c), if it names
 * a chunk waiting to be taken: 1 if sent, 0 if not, -EAGAIN (window full). */
int queue_resend_desc(struct daemon *d, struct queue *q, const struct proto_ring_desc *desc);
/* Stop trusting the queue's shared memory: logged once, counted. */
void queue_quarantine(struct daemon *d, struct queue *q, const char *why);
/* Apply what the config says of the queue beyond its geometry and
 * delivery mode (fixed at creation): its ack_timeout and its policy
 * (written to the meta page for its clients).  At creation, adoption and
 * every reload. */
void queue_apply_config(struct daemon *d, struct queue *q);

/* Rings of a queue's objects (queue.c), for its lanes (lane.c): made
 * exclusively and reserved, or adopted when ours; the name of a lane's
 * objects; unmapped. */
int queue_ring_make(const struct queue *q, const char *ctl_name, const char *data_name, struct ring *r,
                    char *errbuf, size_t errcap);
int queue_ring_adopt(const struct daemon *d, const struct queue *q, const char *ctl_name, const char *data_name,
                     struct ring *r, char *errbuf, size_t errcap);
void queue_ring_unmap(struct ring *r);
/* Reserve lane id's memory again (posix_fallocate) after its pages were
 * given back: 0 or a negative errno (logged with warn). */
int queue_reserve_lane(struct daemon *d, struct queue *q, unsigned id, bool warn);
int queue_lane_names(const struct daemon *d, const struct queue_record *rec, unsigned id,
                     char ctl[PROTO_OBJ_NAME_MAX], char data[PROTO_OBJ_NAME_MAX]);

/* registry.c */
int registry_save(struct daemon *d);
/* Adopt every queue the registry lists that is not in the list yet. */
int registry_adopt(struct daemon *d);

#endif
