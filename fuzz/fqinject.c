/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fqinject.c - the daemon's writer (daemon/inject.c) into a ring of the
 * fuzz targets' queue (fuzzq.h), as the daemon's dead-letter queue.  Apart
 * from fuzzq.c: the daemon's headers and libipcq's internal ones each
 * define a struct lease.
 */
#include "config.h"

#include <string.h>

#include "inject.h"

/* (fuzzq.h declares it, but includes libipcq's headers) */
int fq_inject(const struct ring *ring, mqd_t mq, int bell, const struct ring_recview *msgs, unsigned n,
              unsigned prio);

int fq_inject(const struct ring *ring, mqd_t mq, int bell, const struct ring_recview *msgs, unsigned n,
              unsigned prio)
{
	struct queue dlq;

	memset(&dlq, 0, sizeof(dlq));
	dlq.ring = *ring;
	dlq.mq = mq;
	dlq.bell = bell;
	return inject_write(&dlq, &dlq.ring, msgs, n, prio, 0, 0);
}
