/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_watch.c - ipcq watch: a line each time the daemon signals that a
 * queue went from empty to non-empty (ipcq_notify).
 *
 * The notification signal (SIGRTMIN) is blocked with SIGINT and SIGTERM,
 * and all three are taken with sigtimedwait: nothing runs in a signal
 * handler, and a line is never cut.  Only a SIGRTMIN sent with sigqueue's
 * code and the queue's id counts, so a stray one prints nothing.  Each
 * line is the time (ISO 8601, local, to the millisecond), the queue and
 * its depth, which ipcq_stat asks the daemon for at that moment, so it may
 * already be lower than what arrived.
 *
 * watch opens the queue for receiving, as only a receiver may be
 * notified, but never takes a message.  While no signal comes it asks
 * the daemon for the queue now and then, so that a daemon gone (its
 * registration went with it) or a queue deleted ends the command rather
 * than leaving it waiting forever.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "util.h"

/* how often a watch without signals checks that its queue and daemon
 * are still there */
#define WATCH_CHECK_MS 5000

struct watcher {
	struct cli *cli;
	const char *name;
	uint32_t id;    /* the queue's id: the signals' si_value */
	int timeout_ms; /* without a notification: -1 forever */
	sigset_t set;   /* the notification signal, SIGINT and SIGTERM */
	int signo;      /* the SIGINT or SIGTERM that stopped us, or 0 */
};

/* Wait for the next notification: 0, -ETIMEDOUT, -EINTR when a SIGINT or
 * SIGTERM arrived (w->signo is set), or a negative errno of the check
 * that the queue is still there. */
static int wait_notification(struct watcher *w)
{
	uint64_t start = now_ns(CLOCK_MONOTONIC), since_check = start;

	for (;;) {
		uint64_t now = now_ns(CLOCK_MONOTONIC);
		int64_t wait_ms = WATCH_CHECK_MS - (int64_t)((now - since_check) / 1000000u);
		struct timespec ts;
		siginfo_t si;
		ipcq_stats st;
		int sig, r;

		if (w->timeout_ms >= 0) {
			int64_t left = w->timeout_ms - (int64_t)((now - start) / 1000000u);

			if (left <= 0)
				return -ETIMEDOUT;
			wait_ms = MIN(wait_ms, left);
		}
		if (wait_ms <= 0) {
			r = ipcq_stat(w->cli->client, w->name, &st);
			if (r < 0)
				return r;
			since_check = now_ns(CLOCK_MONOTONIC);
			continue;
		}
		ts.tv_sec = (time_t)(wait_ms / 1000);
		ts.tv_nsec = (long)(wait_ms % 1000) * 1000000L;
		sig = sigtimedwait(&w->set, &si, &ts);
		if (sig < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (sig < 0)
			return -errno;
		if (sig == SIGINT || sig == SIGTERM) {
			w->signo = sig;
			return -EINTR;
		}
		if (si.si_code == SI_QUEUE && (uint32_t)si.si_value.sival_int == w->id)
			return 0;
	}
}

/* "2026-11-05T14:03:27.512+01:00" */
static void format_now(char *buf, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	long off;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	off = tm.tm_gmtoff / 60;
	snprintf(buf + n, cap - n, ".%03ld%c%02ld:%02ld", ts.tv_nsec / 1000000L, off < 0 ? '-' : '+',
	         (off < 0 ? -off : off) / 60, (off < 0 ? -off : off) % 60);
}

/* Print a line per notification, up to count (0: no limit); returns an
 * exit status. */
static int watch(struct watcher *w, unsigned long count)
{
	unsigned long got = 0;
	char when[64];
	ipcq_stats st;
	int r;

	while (count == 0 || got < count) {
		r = wait_notification(w);
		if (r == -EINTR)
			return CLI_EXIT_OK;
		if (r == -ETIMEDOUT) {
			cli_error("no notification on '%s' for %.3g s (got %lu)", w->name, w->timeout_ms / 1000.0,
			          got);
			return CLI_EXIT_TIMEOUT;
		}
		if (r == 0) {
			format_now(when, sizeof(when));
			r = ipcq_stat(w->cli->client, w->name, &st);
		}
		if (r == -ENOENT)
			return cli_fail_request(w->cli, r, "queue '%s' is gone", w->name);
		if (r == -EPIPE || r == -ECONNRESET)
			return cli_error("the daemon went away, and the registration on '%s' with it", w->name);
		if (r < 0)
			return cli_fail_request(w->cli, r, "cannot watch queue '%s'", w->name);
		printf("%s\t%s\t%llu\n", when, w->name, (unsigned long long)st.depth);
		if (fflush(stdout) != 0)
			return errno == EPIPE ? CLI_EXIT_ERROR : cli_finish_stdout();
		got++;
	}
	return CLI_EXIT_OK;
}

int cmd_watch(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		CLI_GLOBAL_OPTIONS,
		{ 0 },
	};
	_cleanup_queue_ ipcq_queue *q = NULL;
	struct watcher w = { .cli = cli, .timeout_ms = -1 };
	unsigned long count = 0;
	ipcq_stats st;
	int opt, r;

	while ((opt = cli_getopt(cli, argc, argv, ":c:t:" CLI_GLOBAL_SHORT, longopts)) != -1) {
		switch (opt) {
		case 'c':
			if (cli_parse_uint(optarg, ULONG_MAX, &count) < 0)
				return cli_usage_error(cli, "bad count '%s'", optarg);
			break;
		case 't':
			if (cli_parse_timeout(optarg, &w.timeout_ms) < 0)
				return cli_usage_error(cli, "bad timeout '%s' (seconds, e.g. 0.5)", optarg);
			break;
		default:
			r = cli_common_option(cli, opt, argv);
			if (r >= 0)
				return r;
		}
	}
	if (optind != argc - 1)
		return cli_usage_error(cli, optind >= argc ? "no queue given" : "too many arguments");
	w.name = argv[optind];

	/* blocked before the registration: the first signal may come at once */
	sigemptyset(&w.set);
	sigaddset(&w.set, SIGRTMIN);
	sigaddset(&w.set, SIGINT);
	sigaddset(&w.set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &w.set, NULL) < 0)
		return cli_error("cannot block signals: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);

	r = cli_open_queue(cli, w.name, IPCQ_RECV, &q);
	if (r)
		return r;
	r = ipcq_stat(cli->client, w.name, &st);
	if (r < 0)
		return cli_fail_request(cli, r, "cannot watch queue '%s'", w.name);
	w.id = st.id;
	r = ipcq_notify(q, SIGRTMIN);
	if (r < 0)
		return cli_fail_request(cli, r, "cannot watch queue '%s'", w.name);

	r = watch(&w, count);
	if (w.signo && count > 0) {
		ipcq_close(TAKE_PTR(q));
		cli_disconnect(cli);
		cli_die_of_signal(w.signo);
	}
	return r;
}
