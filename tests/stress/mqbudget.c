/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mqbudget - how much of the caller's per-user POSIX mq budget
 * (RLIMIT_MSGQUEUE) is still free, found by trying.
 *
 *   mqbudget PREFIX NEED    takes up to NEED bytes of the budget, prints
 *                           "FREE LIMIT" in bytes, FREE being what it got
 *                           (so all that is free when below NEED), and
 *                           gives it back ("unlimited unlimited" for an
 *                           unlimited rlimit)
 *   mqbudget --hold PREFIX  takes all that is free, prints the same, and
 *                           keeps it until killed (a test stands in for
 *                           other processes that used the budget up)
 *
 * The kernel counts the budget per user across IPC namespaces and shows
 * the sum nowhere, so the only way to learn whether what a test needs is
 * free is to take it: open queues, large ones first and then smaller,
 * until NEED is reached or the kernel refuses with EMFILE.  Taking no more
 * than NEED matters: tests run side by side, and a probe that grabbed the
 * whole budget, even for a moment, would make the others fail.  Each queue
 * is unlinked as soon as it is made and only its descriptor keeps it (and
 * its charge) alive, so nothing outlives this process, even if it is
 * killed.  The figure is short of the truth by at most one small queue's
 * charge.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* What the kernel charges for a queue (ipc/mqueue.c): its messages plus a
 * struct msg_msg and a priority-tree node per message.  The overhead is an
 * estimate; it only shifts the answer by a few bytes per queue. */
#define MQ_OVERHEAD_PER_MSG 96ul

static long read_long(const char *path, long dflt)
{
	FILE *f = fopen(path, "re");
	long v = dflt;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = dflt;
		fclose(f);
	}
	return v;
}

/* Open (and unlink) one queue of maxmsg × msgsize; 1 if it fitted. */
static int take(const char *prefix, unsigned *serial, long maxmsg, long msgsize)
{
	struct mq_attr attr = { .mq_maxmsg = maxmsg, .mq_msgsize = msgsize };
	char name[256];
	mqd_t q;

	snprintf(name, sizeof(name), "/%s.budget.%u", prefix, (*serial)++);
	q = mq_open(name, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
	if (q == (mqd_t)-1) {
		if (errno == EMFILE || errno == ENOSPC || errno == ENOMEM)
			return 0;
		fprintf(stderr, "mqbudget: mq_open %s: %m\n", name);
		exit(1);
	}
	mq_unlink(name);
	return 1; /* the descriptor stays open: the charge stays taken */
}

int main(int argc, char **argv)
{
	long msg_max = read_long("/proc/sys/fs/mqueue/msg_max", 10);
	long size_max = read_long("/proc/sys/fs/mqueue/msgsize_max", 8192);
	unsigned long taken = 0, need = ULONG_MAX;
	unsigned serial = 0;
	struct rlimit rl;
	int hold = argc == 3 && strcmp(argv[1], "--hold") == 0;

	if (hold) {
		argv++;
	} else if (argc == 3) {
		char *end;

		need = strtoul(argv[2], &end, 10);
		if (*end || !*argv[2])
			argc = 0;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: mqbudget PREFIX NEED | mqbudget --hold PREFIX\n");
		return 2;
	}
	if (getrlimit(RLIMIT_MSGQUEUE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY) {
		puts("unlimited unlimited");
		return 0;
	}
	if (msg_max > 10)
		msg_max = 10;
	/* coarse: whole queues of the largest geometry, then halve the
	 * message size down to single small messages */
	for (long maxmsg = msg_max, size = size_max; size >= 1;) {
		if (taken < need && taken < rl.rlim_cur && take(argv[1], &serial, maxmsg, size)) {
			taken += (unsigned long)maxmsg * ((unsigned long)size + MQ_OVERHEAD_PER_MSG);
			continue;
		}
		if (maxmsg > 1)
			maxmsg = 1;
		else
			size /= 2;
	}
	printf("%lu %llu\n", taken, (unsigned long long)rl.rlim_cur);
	if (hold) {
		fflush(stdout);
		for (;;)
			pause();
	}
	return 0;
}
