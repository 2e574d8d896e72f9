/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbuf.c - receive buffers: where a receiving handle's mq_receive lands.
 *
 * A receiver takes a message off a queue's mq into a buffer of its own:
 * a memfd it shares with the daemon alone (libclient/open.c), one buffer
 * per call under way or inline message held.  Not in the ring's shared
 * memory, where any client of the queue could rewrite a message between
 * the kernel's copy and the receiver's look.  But a receiver killed after
 * mq_receive returned a ring descriptor and before it took the chunk
 * leaves that chunk published with its descriptor nowhere but in the
 * buffer: so the daemon maps every receiving handle's buffers read-only,
 * and when the receiver's process dies, or its connection closes, it
 * reads the first bytes of each buffer and sends again the ring
 * descriptors it finds (the receiver clears a buffer's first byte once it
 * took the chunk).
 *
 * The buffers are the receiver's memory, so what they hold is hostile
 * input: a descriptor is sent again only if it names a chunk its sender
 * sealed that waits to be taken (ring_resend_desc); then it is at worst a
 * duplicate, which the take's compare-and-swap drops.  An inline message
 * there is never sent (the receiver could have written it).  The memfd
 * must be sealed against shrinking, so the daemon's reads never fault;
 * the daemon maps it read-only and never waits on it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "daemon.h"
#include "proto.h"
#include "queue.h"
#include "rbuf.h"

/* Receive buffers mapped in the daemon (it is single-threaded). */
static unsigned rbufs_mapped;

int rbuf_add(struct rbuf **list, unsigned *count, const struct queue *q, int fd, char *err, size_t errcap)
{
	size_t len = (size_t)PROTO_RECV_BUFS * q->rec.geo.msg_size;
	int seals = fcntl(fd, F_GET_SEALS);
	struct stat st;
	struct rbuf *b;
	void *mem;

	if (*count >= RBUF_PER_CONN_MAX) {
		snprintf(err, errcap, "more than %u receiving handles on one connection", RBUF_PER_CONN_MAX);
		return -EUSERS;
	}
	if (rbufs_mapped >= RBUF_TOTAL_MAX) {
		snprintf(err, errcap, "the daemon holds %u receiving handles' buffers already", RBUF_TOTAL_MAX);
		return -EUSERS;
	}
	if (seals < 0 || !(seals & F_SEAL_SHRINK) || !(seals & F_SEAL_GROW)) {
		snprintf(err, errcap, "receive buffers must be a memfd sealed against shrinking and growing");
		return -EINVAL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != len) {
		snprintf(err, errcap, "receive buffers must be %zu bytes", len);
		return -EINVAL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	mem = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		int ret = -errno;

		free(b);
		snprintf(err, errcap, "cannot map the receive buffers: %s", strerror(-ret));
		return ret;
	}
	*b = (struct rbuf){ .next = *list,
		            .queue_id = q->id,
		            .msg_size = q->rec.geo.msg_size,
		            .base = mem,
		            .len = len };
	*list = b;
	(*count)++;
	rbufs_mapped++;
	return 0;
}

static struct queue *queue_of_id(struct daemon *d, uint32_t id)
{
	for (struct queue *q = d->queues; q; q = q->next)
		if (q->id == id)
			return q;
	return NULL;
}

void rbuf_release_all(struct daemon *d, struct rbuf **list, unsigned *count)
{
	while (*list) {
		struct rbuf *b = *list;
		struct queue *q = queue_of_id(d, b->queue_id);

		for (unsigned i = 0; q && i < PROTO_RECV_BUFS; i++) {
			struct proto_ring_desc desc;

			memcpy(&desc, b->base + (size_t)i * b->msg_size, sizeof(desc));
			if (desc.hdr.kind == PROTO_MSG_RING)
				queue_resend_desc(d, q, &desc);
		}
		*list = b->next;
		munmap((void *)b->base, b->len);
		free(b);
		rbufs_mapped--;
	}
	*count = 0;
}
