/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mqlimits.c - POSIX mq limits.  mq_open reports a full per-user budget as
 * EMFILE and a too-deep queue as EINVAL, which tell a user nothing; here
 * each refusal becomes a sentence naming the sysctl or rlimit to raise.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mqlimits.h"
#include "util.h"

static long read_sysctl(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static void raise_rlimit(int resource)
{
	struct rlimit rl;

	if (getrlimit(resource, &rl) < 0)
		return;
	if (resource == RLIMIT_MSGQUEUE) {
		struct rlimit inf = { RLIM_INFINITY, RLIM_INFINITY };

		/* works with CAP_SYS_RESOURCE; otherwise fall back to soft = hard */
		if (setrlimit(resource, &inf) == 0)
			return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(resource, &rl);
	}
}

void limits_init(struct mq_limits *l)
{
	raise_rlimit(RLIMIT_MSGQUEUE);
	raise_rlimit(RLIMIT_NOFILE);
	l->msg_max = read_sysctl("/proc/sys/fs/mqueue/msg_max");
	l->msgsize_max = read_sysctl("/proc/sys/fs/mqueue/msgsize_max");
	l->queues_max = read_sysctl("/proc/sys/fs/mqueue/queues_max");
	if (getrlimit(RLIMIT_MSGQUEUE, &l->msgqueue) < 0)
		l->msgqueue.rlim_cur = l->msgqueue.rlim_max = RLIM_INFINITY;
}

unsigned long limits_queue_bytes(const ipcq_geometry *geo)
{
	/* the kernel's charge (ipc/mqueue.c): messages, their headers, and
	 * the priority tree, roughly one pointer-sized node per message */
	return (unsigned long)geo->max_msgs * (geo->msg_size + 2 * sizeof(void *) + 48);
}

void limits_explain(const struct mq_limits *l, int err, const ipcq_geometry *geo, char *buf, size_t cap)
{
	if (err == EINVAL && l->msg_max > 0 && geo->max_msgs > (unsigned long)l->msg_max) {
		snprintf(buf, cap,
		         "max_msgs %u exceeds the kernel limit fs.mqueue.msg_max=%ld: lower max_msgs, or raise "
		         "the limit with 'sysctl fs.mqueue.msg_max=%u' (and keep it in " SYSCTLDIR "/60-ipcbroker.conf)",
		         geo->max_msgs, l->msg_max, geo->max_msgs);
	} else if (err == EINVAL && l->msgsize_max > 0 && geo->msg_size > (unsigned long)l->msgsize_max) {
		snprintf(buf, cap,
		         "msg_size %u exceeds the kernel limit fs.mqueue.msgsize_max=%ld: lower msg_size (larger "
		         "messages go through the ring anyway), or raise it with 'sysctl fs.mqueue.msgsize_max=%u'",
		         geo->msg_size, l->msgsize_max, geo->msg_size);
	} else if (err == EMFILE) {
		snprintf(buf, cap,
		         "the per-user POSIX mq budget RLIMIT_MSGQUEUE (%llu bytes) is used up; this queue needs "
		         "about %lu bytes: raise it with LimitMSGQUEUE= in ipcbrokerd.service or 'ulimit -q', "
		         "or use a smaller msg_size or max_msgs",
		         (unsigned long long)l->msgqueue.rlim_cur, limits_queue_bytes(geo));
	} else if (err == ENOSPC) {
		snprintf(buf, cap,
		         "the kernel limit fs.mqueue.queues_max=%ld queues is reached: delete unused queues or "
		         "raise it with 'sysctl fs.mqueue.queues_max=N'",
		         l->queues_max);
	} else if (err == ENOMEM) {
		snprintf(buf, cap, "out of memory creating the queue");
	} else {
		snprintf(buf, cap, "cannot create the message queue: %s", strerror(err));
	}
}
