/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mqlimits.h - the kernel's POSIX mq limits, read at start-up, and the
 * translation of a refused mq_open into a message that names the limit
 * and the way to raise it.
 */
#ifndef IPCQ_MQLIMITS_H
#define IPCQ_MQLIMITS_H

#include <stddef.h>
#include <sys/resource.h>

#include "ipcq.h"

struct mq_limits {
	long msg_max;     /* fs.mqueue.msg_max */
	long msgsize_max; /* fs.mqueue.msgsize_max */
	long queues_max;  /* fs.mqueue.queues_max */
	struct rlimit msgqueue; /* RLIMIT_MSGQUEUE */
};

/* Raise RLIMIT_MSGQUEUE and RLIMIT_NOFILE as far as allowed, then read
 * the limits. */
void limits_init(struct mq_limits *l);
/* Bytes of RLIMIT_MSGQUEUE a queue of this geometry uses. */
unsigned long limits_queue_bytes(const ipcq_geometry *geo);
/* Explain why mq_open(O_CREAT) failed with err for this geometry. */
void limits_explain(const struct mq_limits *l, int err, const ipcq_geometry *geo, char *buf, size_t cap);

#endif
