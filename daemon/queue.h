/*
 * queue.h - the queues a daemon owns: a POSIX mq and a shm ring each,
 * named "/ipcq.<namespace>.<queue>" (mq) and ".../<queue>.ring" (shm),
 * created mode 0600 so only the daemon can open them by name; clients get
 * them as descriptors.  The list of queues is kept in a registry file so a
 * restarted daemon adopts what the previous one created.
 */
#ifndef IPCQ_QUEUE_H
#define IPCQ_QUEUE_H

#include <mqueue.h>
#include <stdbool.h>

#include "daemon.h"
#include "ring.h"

struct queue {
	struct queue *next;
	char name[IPCQ_NAME_MAX + 1];
	uint32_t id;
	ipcq_geometry geo;
	enum delivery_mode delivery;
	bool from_config; /* declared in the config (not auto-created) */
	mqd_t mq;         /* the daemon's own descriptor: O_RDWR | O_NONBLOCK */
	struct ring ring;
};

/* Create queue name with geometry geo (every field set), or adopt it when
 * its kernel objects exist already (adopt_only: never create).  On error,
 * errbuf says why in a sentence fit for the user. */
int queue_create(struct daemon *d, const char *name, const ipcq_geometry *geo, enum delivery_mode delivery,
                 bool adopt_only, char *errbuf, size_t errcap, struct queue **out);
/* Remove a queue from the daemon; unlink its kernel objects if asked. */
void queue_destroy(struct daemon *d, struct queue *q, bool unlink_objects);
struct queue *queue_find(struct daemon *d, const char *name);
/* New descriptors of the queue for a client: the mq opened for what flags
 * ask, and the ring. */
int queue_open_fds(struct daemon *d, struct queue *q, int flags, int *mq_fd, int *ring_fd);
/* Drop every waiting message; returns how many. */
int queue_purge(struct queue *q);
void queue_stats(struct queue *q, ipcq_stats *st);
/* Reclaim what dead clients hold in the queue's ring. */
int queue_reclaim(struct queue *q, pid_t dead);

/* registry.c */
int registry_save(struct daemon *d);
/* Adopt every queue the registry lists that is not in the list yet. */
int registry_adopt(struct daemon *d);

#endif
