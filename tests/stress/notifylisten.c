/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notifylisten.c - a listener for signal notification (ipcq_notify),
 * driven by tests/integration/t_notify.sh.
 *
 * Usage: notifylisten [OPTIONS] QUEUE SECONDS
 *   -S SIGNO  the signal to ask for (default SIGRTMIN)
 *   -s        open the queue for sending only (the daemon must still
 *             refuse a process that may not receive)
 *   -C        close the handle right after registering, and go on waiting
 *             (nothing should come)
 *   -D        disconnect right after registering and keep the handle:
 *             print "notify after disconnect: TEXT" (a second ipcq_notify
 *             through the handle), wait as usual (nothing should come: the
 *             registration ended with the connection), close the handle
 *             last
 *   -R        on SIGUSR1, register again through the same client (after
 *             a restart of the daemon: the library connects again) and
 *             print "again: ok" or "again: TEXT"
 *   -f        fork a child that keeps this process's connection open, and
 *             print "child PID": this process's death is then seen through
 *             its pidfd alone
 *   -n N      register N times, each through a connection of its own, and
 *             print "registered K" and the first error; then exit (QUEUE
 *             may be a comma-separated list: each connection registers
 *             on each queue)
 *   -q        squat: take the queue's mq notification with mq_notify on
 *             the handle's mq descriptor (ipcq_fd of a send-only handle),
 *             as a hostile client could, print "squatting", and hold it
 *
 * Prints "registered id=ID pid=PID pending=P" once registered (P: 1 if the
 * signal was already pending when ipcq_notify returned), then one line per
 * signal that arrives: "signal SIGNO value VALUE code CODE", flushed at
 * once, until SECONDS (fractions allowed) have passed or SIGTERM comes.
 * Exits 0; 1 on an error, with "error ERRNO TEXT" on standard output
 * (TEXT: the daemon's explanation); 2 on a usage error.
 */
#include "config.h"

#include <errno.h>
#include <mqueue.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipcq.h"

struct options {
	int signo;
	bool send_only, close_after, disconnect_after, again_on_usr1, fork_keeper, squat;
	unsigned many;
	const char *queue;
	double seconds;
};

static int usage(void)
{
	fputs("Usage: notifylisten [-S SIGNO] [-s] [-C] [-f] [-n N] [-q] QUEUE SECONDS\n", stderr);
	return 2;
}

static int fail(ipcq_client *c, int err)
{
	const char *why = c ? ipcq_last_error(c) : "";

	printf("error %d %s\n", err, why && *why ? why : ipcq_strerror(err));
	fflush(stdout);
	return 1;
}

static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#define MANY_QUEUES_MAX 16

/* Register o->many times on each queue of the comma-separated list, a
 * connection each time; all end before it returns. */
static int register_many(const struct options *o)
{
	char names[256], *save = NULL, *queues[MANY_QUEUES_MAX];
	unsigned nq = 0, ok = 0;
	ipcq_client **c = calloc(o->many, sizeof(*c));
	ipcq_queue **q = calloc((size_t)o->many * MANY_QUEUES_MAX, sizeof(*q));
	int first = 0;
	char why[256] = "";

	snprintf(names, sizeof(names), "%s", o->queue);
	for (char *n = strtok_r(names, ",", &save); n && nq < MANY_QUEUES_MAX; n = strtok_r(NULL, ",", &save))
		queues[nq++] = n;
	if (!c || !q) {
		free(c);
		free(q);
		return fail(NULL, -ENOMEM);
	}
	for (unsigned i = 0; i < o->many; i++) {
		int r = ipcq_connect(&c[i], NULL);

		for (unsigned j = 0; j < nq; j++) {
			ipcq_queue **h = &q[(size_t)i * MANY_QUEUES_MAX + j];

			if (c[i])
				r = ipcq_open(c[i], queues[j], IPCQ_SEND, h);
			if (r == 0)
				r = ipcq_notify(*h, o->signo);
			if (r < 0 && first == 0) {
				first = r;
				snprintf(why, sizeof(why), "%s", c[i] ? ipcq_last_error(c[i]) : "");
			}
			ok += r == 0;
		}
	}
	printf("registered %u\n", ok);
	if (first)
		printf("error %d %s\n", first, *why ? why : ipcq_strerror(first));
	fflush(stdout);
	for (unsigned i = 0; i < o->many; i++) {
		for (unsigned j = 0; j < nq; j++)
			if (q[(size_t)i * MANY_QUEUES_MAX + j])
				ipcq_close(q[(size_t)i * MANY_QUEUES_MAX + j]);
		if (c[i])
			ipcq_disconnect(c[i]);
	}
	free(c);
	free(q);
	return 0;
}

/* Take the mq's notification before the daemon does, and hold it. */
static int squat(ipcq_queue *q)
{
	struct sigevent ev = { .sigev_notify = SIGEV_NONE };

	if (mq_notify((mqd_t)ipcq_fd(q), &ev) < 0) {
		printf("error %d mq_notify: %s\n", -errno, strerror(errno));
		return 1;
	}
	printf("squatting\n");
	fflush(stdout);
	return 0;
}

static void wait_signals(const struct options *o, const sigset_t *set, ipcq_queue *q)
{
	uint64_t end = monotonic_ms() + (uint64_t)(o->seconds * 1000.0);

	for (uint64_t now; (now = monotonic_ms()) < end;) {
		uint64_t left = end - now;
		struct timespec ts = { .tv_sec = (time_t)(left / 1000), .tv_nsec = (long)(left % 1000) * 1000000L };
		siginfo_t si;
		int sig = sigtimedwait(set, &si, &ts);

		if (sig < 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT)
			return;
		if (sig == SIGUSR1 && o->again_on_usr1 && q) {
			int r = ipcq_notify(q, o->signo);

			printf("again: %s\n", r ? ipcq_strerror(r) : "ok");
			fflush(stdout);
			continue;
		}
		printf("signal %d value %d code %d\n", sig, si.si_value.sival_int, si.si_code);
		fflush(stdout);
	}
}

int main(int argc, char **argv)
{
	struct options o = { .signo = SIGRTMIN };
	ipcq_client *c = NULL;
	ipcq_queue *q = NULL;
	ipcq_stats st;
	sigset_t set;
	char *end;
	int opt, r;

	while ((opt = getopt(argc, argv, "S:sCDRfn:q")) != -1) {
		switch (opt) {
		case 'S':
			o.signo = atoi(optarg);
			break;
		case 's':
			o.send_only = true;
			break;
		case 'C':
			o.close_after = true;
			break;
		case 'D':
			o.disconnect_after = true;
			break;
		case 'R':
			o.again_on_usr1 = true;
			break;
		case 'f':
			o.fork_keeper = true;
			break;
		case 'n':
			o.many = (unsigned)atoi(optarg);
			break;
		case 'q':
			o.squat = o.send_only = true;
			break;
		default:
			return usage();
		}
	}
	if (argc - optind != 2)
		return usage();
	o.queue = argv[optind];
	o.seconds = strtod(argv[optind + 1], &end);
	if (*end || o.seconds < 0)
		return usage();

	/* blocked before registering: the first signal may come at once */
	sigemptyset(&set);
	if (o.signo > 0 && o.signo < SIGRTMAX + 1 && o.signo != SIGKILL && o.signo != SIGSTOP)
		sigaddset(&set, o.signo);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (o.again_on_usr1)
		sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if (o.many)
		return register_many(&o);
	r = ipcq_connect(&c, NULL);
	if (r == 0)
		r = ipcq_open(c, o.queue, o.send_only ? IPCQ_SEND : IPCQ_RECV, &q);
	if (r == 0)
		r = ipcq_stat(c, o.queue, &st);
	if (r < 0)
		return fail(c, r);
	if (o.squat) {
		r = squat(q);
	} else {
		sigset_t pending;

		r = ipcq_notify(q, o.signo);
		if (r < 0)
			return fail(c, r);
		/* a signal sent while registering is pending already */
		sigpending(&pending);
		printf("registered id=%u pid=%d pending=%d\n", st.id, (int)getpid(), sigismember(&pending, o.signo));
	}
	if (r)
		return r;
	if (o.close_after) {
		ipcq_close(q);
		q = NULL;
	}
	if (o.disconnect_after) {
		ipcq_disconnect(c);
		c = NULL;
		printf("notify after disconnect: %s\n", ipcq_strerror(ipcq_notify(q, o.signo)));
	}
	if (o.fork_keeper) {
		pid_t child = fork();

		if (child == 0) {
			/* holds the connection's socket, inherited; does nothing */
			sigprocmask(SIG_UNBLOCK, &set, NULL);
			pause();
			_exit(0);
		}
		printf("child %d\n", (int)child);
	}
	fflush(stdout);
	wait_signals(&o, &set, q);
	if (q)
		ipcq_close(q);
	if (c)
		ipcq_disconnect(c);
	return 0;
}
