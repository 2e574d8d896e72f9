/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbuf.h - the receive buffers of receiving handles, which the daemon
 * maps read-only to find the ring descriptors a dead receiver held.
 */
#ifndef IPCQ_RBUF_H
#define IPCQ_RBUF_H

#include <stddef.h>
#include <stdint.h>

struct daemon;
struct queue;

struct rbuf {
	struct rbuf *next;
	uint32_t queue_id;
	uint32_t msg_size;
	const unsigned char *base;
	size_t len;
};

/* Most receiving handles one connection, and the daemon, may register:
 * each is a mapping, and a process has a bounded number of those
 * (vm.max_map_count, 65530 by default) that the rings need too. */
#define RBUF_PER_CONN_MAX 256u
#define RBUF_PER_USER_MAX 1024u /* root and the daemon's user are not bound */
#define RBUF_TOTAL_MAX 16384u

/* Map the buffers of a receiving handle of q: fd must be a memfd sealed
 * against shrinking and growing, of PROTO_RECV_BUFS x msg_size bytes.
 * 0, or a negative errno with a reason in err. */
int rbuf_add(struct rbuf **list, unsigned *count, const struct queue *q, int fd, char *err, size_t errcap);
/* Send again every ring descriptor the buffers hold (their receiver died,
 * or its connection closed), then let the buffers go. */
void rbuf_release_all(struct daemon *d, struct rbuf **list, unsigned *count);

#endif
