/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzzq.h - the queue the data-path fuzz targets work on (fuzz_mq.c,
 * fuzz_ring.c), and mkseeds.c writes their seeds from.
 *
 * One queue of the smallest geometry, made in this process as the daemon
 * and ipcq_open make one, without a daemon:
 *  - its ring's two objects (control and data), each mapped between two
 *    inaccessible pages, so that a read or write past either end of
 *    either faults at once, and the data object mapped read-only while a
 *    receive-only handle runs, as the daemon's read-only descriptor
 *    makes it;
 *  - its window: a POSIX mq, unlinked as soon as it is open, so that it
 *    leaves nothing behind whatever happens to the process;
 *  - its bell (an eventfd) and its meta page;
 *  - a handle of libipcq on it (struct ipcq_queue, filled in as
 *    ipcq_open fills it), whose control connection goes nowhere: a call
 *    to the daemon fails with EBADF, as one to a daemon that left would.
 *
 * The ring starts every run from one of FQ_IMAGES images, made once by
 * the ring's and the backlog's own senders and receivers (fq_setup):
 * quiet (chunks PUBLISHED, their descriptors nowhere: what the fuzzer's
 * descriptors may name) or busy (also a backlog in two levels, a batch
 * given back, and what dead clients held: reserved, publishing, taken,
 * a receive slot), each at-most-once and at-least-once.  Its chunks
 * wrap round the end of the data area (a PAD chunk).
 */
#ifndef IPCQ_FUZZQ_H
#define IPCQ_FUZZQ_H

#include <mqueue.h>
#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "proto.h"
#include "ring.h"

#define FQ_DATA_SIZE PROTO_RING_SIZE_MIN
#define FQ_MSG_SIZE 256u
#define FQ_MAX_MSGS 8u
#define FQ_MAX_PAYLOAD (16u << 10)
#define FQ_PREFETCH 8u

/* Holder ids: live clients, and one the daemon knows to be dead (any id
 * but the live ones is dead to it). */
enum { FQ_SENDER = 11, FQ_RECEIVER = 12, FQ_DEAD = 13 };

enum {
	FQ_BUSY = 1u << 0,          /* the busy image, else the quiet one */
	FQ_AT_LEAST_ONCE = 1u << 1, /* delivery */
	FQ_IMAGES = 4,
};

/* The descriptors of the chunks an image holds PUBLISHED. */
#define FQ_KNOWN_MAX 8
struct fq_known {
	struct proto_ring_desc desc[FQ_KNOWN_MAX];
	unsigned prio[FQ_KNOWN_MAX];
	unsigned n;
};

struct fq {
	unsigned char *ctl, *data; /* the ring's control and data objects */
	size_t ctl_len, data_len;
	unsigned char *img_ctl[FQ_IMAGES], *img_data[FQ_IMAGES];
	struct ring img_ring[FQ_IMAGES]; /* the daemon's view of each, as it made it */
	struct fq_known known[FQ_IMAGES];
	int home_slot[FQ_IMAGES];        /* the handle's receive slot */
	unsigned image;
	struct ring daemon;              /* the daemon's view (holder 0) of the ring now */
	struct proto_meta *meta;         /* the daemon's page */
	mqd_t mq_rw, mq_ro;              /* the window: read-write, and a receive-only client's */
	int bell;
	ipcq_client client;
	ipcq_queue q; /* the handle, after fq_reset */
};

/* Make the queue and its images, once; 0 or a negative errno. */
int fq_setup(struct fq *f);
/* Start a run: the ring from image (FQ_BUSY | FQ_AT_LEAST_ONCE), an
 * empty window, and a fresh handle opened with flags (IPCQ_SEND and/or
 * IPCQ_RECV). */
void fq_reset(struct fq *f, unsigned image, int flags);
/* While a receive-only handle runs, its data object is read-only (and
 * writable again for the daemon, the image and the seeds). */
void fq_data_writable(struct fq *f, bool writable);
/* End a run: the handle closed (what it holds given back, as
 * ipcq_close does) and the window emptied. */
void fq_finish(struct fq *f);
/* Take every message off the window; how many (none is looked at). */
unsigned fq_drain(struct fq *f);

/* The daemon's reclaim ops, with stubs where the daemon asks its own
 * state (daemon/queue.c): holders other than FQ_SENDER and FQ_RECEIVER
 * are dead; resend and window_empty use the window as queue.c does;
 * lease_check answers lease (enum ring_lease) for every lease;
 * dead_letter reads every message it is given and answers dl (1 moved,
 * 0 dropped, -EAGAIN), or with dl 1 and write set, what write answers
 * (it writes them into the dead-letter queue); move_aside reads the
 * message it is given. */
struct fq_reclaim {
	struct fq *f;
	int lease;
	int dl;
	int (*write)(const struct ring_recview *msgs, unsigned n, unsigned prio, struct fq *f);
};
struct ring_reclaim_ops fq_reclaim_ops(struct fq_reclaim *rc, bool sweep, unsigned max_deliveries);

/* The daemon writing n messages into the queue of ring, mq and bell, as
 * into its dead-letter queue (daemon/inject.c's inject_write, in
 * fqinject.c): 1, 0 or -EAGAIN as that answers. */
int fq_inject(const struct ring *ring, mqd_t mq, int bell, const struct ring_recview *msgs, unsigned n,
              unsigned prio);

#endif
