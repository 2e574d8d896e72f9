/*
 * cmd_recv.c - ipcq recv: receive messages and write them out.
 *
 * Waiting is a receive that does not block and, while the queue is
 * empty, a poll() on two descriptors, the queue's and a signalfd for
 * SIGINT and SIGTERM, which is also looked at before every receive.  So a
 * signal is seen between two messages even while messages keep coming,
 * and never in the middle of one: "ipcq recv -c 0" ends cleanly with the
 * last message written whole.
 *
 * Messages are taken in batches (ipcq_recv_batch, at most RECV_BATCH_MAX
 * and never more than -c leaves to take), which the library fills with
 * what is waiting, without waiting for more than the first.  A batch is
 * written in place (in the ring for large messages) with one writev() of
 * payloads and separators, and then each message is released.  Writing
 * what has arrived at once, with no stdio buffer, is what makes "ipcq
 * recv -c 0 q | grep x" stream, at one write per batch.  A message whose
 * write fails is not released (acknowledged): what becomes of it is the
 * library's and the daemon's decision for an unacknowledged message, not
 * a success.  A signal is looked at between batches, so it never cuts a
 * batch, let alone a message.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

#define RECV_BATCH_MAX 64 /* the most messages taken at once (prefetch's bound) */

struct receiver {
	ipcq_queue *q;
	const char *name;
	int queue_fd;
	int signal_fd;
	int out_fd;
	char sep;      /* written after each message if has_sep */
	bool has_sep;
	int timeout_ms; /* per message; -1: forever */
	int signo;      /* the signal that stopped us, or 0 */
};

static int remaining_ms(uint64_t deadline_ns)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);

	if (now >= deadline_ns)
		return 0;
	return (int)((deadline_ns - now + 999999) / 1000000);
}

/* Wait for the next messages: how many of at most n were put in msgs
 * (>= 1), -ETIMEDOUT, -EINTR when a SIGINT or SIGTERM arrived (rc->signo
 * is set), or a negative errno. */
static int wait_messages(struct receiver *rc, ipcq_msg *msgs, unsigned n)
{
	uint64_t deadline = 0;

	if (rc->timeout_ms >= 0)
		deadline = now_ns(CLOCK_MONOTONIC) + (uint64_t)rc->timeout_ms * 1000000u;
	for (bool first = true;; first = false) {
		struct pollfd pfd[2] = {
			{ .fd = rc->signal_fd, .events = POLLIN },
			{ .fd = rc->queue_fd, .events = POLLIN },
		};
		struct signalfd_siginfo si;
		int r;

		/* Look before waiting: a backlog beside an empty window does not
		 * make the queue's descriptor readable, and a receive takes from
		 * it.  Only an empty queue is waited on. */
		r = poll(pfd, 2, first ? 0 : rc->timeout_ms < 0 ? -1 : remaining_ms(deadline));
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0 && pfd[0].revents) {
			if (read(rc->signal_fd, &si, sizeof(si)) == sizeof(si))
				rc->signo = (int)si.ssi_signo;
			return -EINTR;
		}
		r = ipcq_recv_batch(rc->q, msgs, n, 0);
		/* Empty: nothing came, or another receiver was quicker. */
		if (r != -EAGAIN && r != -ETIMEDOUT)
			return r;
		if (rc->timeout_ms >= 0 && remaining_ms(deadline) == 0)
			return -ETIMEDOUT;
	}
}

/* Write all of iov[0..n), however short the writes; *done counts the
 * iovecs written whole, also on failure. */
static int write_all(int fd, struct iovec *iov, int n, int *done)
{
	*done = 0;
	while (n > 0) {
		ssize_t w = writev(fd, iov, n); /* n <= 2 * RECV_BATCH_MAX, far below IOV_MAX */

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		for (; n > 0 && (size_t)w >= iov->iov_len; iov++, n--, (*done)++)
			w -= (ssize_t)iov->iov_len;
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Write msgs[0..n), each with its separator, and release each one
 * written whole (those not written are not released).  Returns an exit
 * status. */
static int write_messages(const struct receiver *rc, ipcq_msg *msgs, unsigned n)
{
	struct iovec iov[2 * RECV_BATCH_MAX];
	int per = rc->has_sep ? 2 : 1;
	int niov = 0, done, r, w;

	for (unsigned i = 0; i < n; i++) {
		iov[niov++] = (struct iovec){ .iov_base = (void *)msgs[i].data, .iov_len = msgs[i].len };
		if (rc->has_sep)
			iov[niov++] = (struct iovec){ .iov_base = (void *)&rc->sep, .iov_len = 1 };
	}
	w = write_all(rc->out_fd, iov, niov, &done);
	for (int i = 0; i < done / per; i++) {
		r = ipcq_release(rc->q, &msgs[i]);
		if (r < 0)
			return cli_fail(r, "cannot release a message of '%s'", rc->name);
	}
	if (w == -EPIPE)
		return CLI_EXIT_ERROR; /* the reader left: nothing to say */
	if (w < 0)
		return cli_error("writing a message: %s", strerror(-w));
	return CLI_EXIT_OK;
}

/* Receive up to count messages (0: no limit); returns an exit status. */
static int receive(struct receiver *rc, unsigned long count)
{
	ipcq_msg msgs[RECV_BATCH_MAX];
	unsigned long got = 0;
	int r;

	while (count == 0 || got < count) {
		unsigned want = RECV_BATCH_MAX, n;

		if (count > 0 && count - got < want)
			want = (unsigned)(count - got);
		r = wait_messages(rc, msgs, want);
		if (r == -ESTALE || r == -EBADMSG) {
			cli_warn("skipped a bad message on '%s': %s", rc->name, ipcq_strerror(r));
			continue;
		}
		if (r == -EINTR)
			return CLI_EXIT_OK;
		if (r == -ETIMEDOUT) {
			cli_error("timed out waiting for a message on '%s' (received %lu)", rc->name, got);
			return CLI_EXIT_TIMEOUT;
		}
		if (r < 0)
			return cli_fail(r, "cannot receive from '%s'", rc->name);
		n = MIN((unsigned)r, want);
		r = write_messages(rc, msgs, n);
		if (r)
			return r;
		got += n;
	}
	return CLI_EXIT_OK;
}

/* Block SIGINT and SIGTERM and receive them on a descriptor instead;
 * SIGPIPE becomes EPIPE from write(). */
static int setup_signals(void)
{
	sigset_t mask;
	int fd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}


int cmd_recv(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "null", no_argument, NULL, '0' },
		{ "no-separator", no_argument, NULL, 'N' },
		{ "output", required_argument, NULL, 'o' },
		CLI_GLOBAL_OPTIONS,
		{ 0 },
	};
	_cleanup_queue_ ipcq_queue *q = NULL;
	_cleanup_close_ int signal_fd = -1;
	_cleanup_close_ int out_fd = -1;
	struct receiver rc = { .timeout_ms = -1, .out_fd = STDOUT_FILENO };
	const char *output = NULL;
	bool nul = false, no_sep = false;
	unsigned long count = 1;
	int opt, r;

	while ((opt = getopt_long(argc, argv, ":c:t:0No:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			if (cli_parse_uint(optarg, ULONG_MAX, &count) < 0)
				return cli_usage_error(cli, "bad count '%s'", optarg);
			break;
		case 't':
			if (cli_parse_timeout(optarg, &rc.timeout_ms) < 0)
				return cli_usage_error(cli, "bad timeout '%s' (seconds, e.g. 0.5)", optarg);
			break;
		case '0':
			nul = true;
			break;
		case 'N':
			no_sep = true;
			break;
		case 'o':
			output = optarg;
			break;
		default:
			r = cli_common_option(cli, opt, argv);
			if (r >= 0)
				return r;
		}
	}
	if (optind != argc - 1)
		return cli_usage_error(cli, optind >= argc ? "no queue given" : "too many arguments");
	if (nul && no_sep)
		return cli_usage_error(cli, "-0 and -N exclude each other");
	rc.name = argv[optind];
	/* A file gets the payloads as they are (ipcq send -f round-trips). */
	rc.sep = nul ? '\0' : '\n';
	rc.has_sep = nul || (!no_sep && !output);

	r = cli_open_queue(cli, rc.name, IPCQ_RECV, &q);
	if (r)
		return r;
	/* Only now: a missing queue must not truncate the file. */
	if (output) {
		out_fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (out_fd < 0)
			return cli_error("%s: %s", output, strerror(errno));
		rc.out_fd = out_fd;
	}
	rc.q = q;
	rc.queue_fd = ipcq_fd(q);
	if (rc.queue_fd < 0)
		return cli_fail(rc.queue_fd, "cannot wait on queue '%s'", rc.name);
	signal_fd = setup_signals();
	if (signal_fd < 0)
		return cli_error("cannot set up signals: %s", strerror(-signal_fd));
	rc.signal_fd = signal_fd;

	r = receive(&rc, count);
	if (rc.signo && count > 0) {
		ipcq_close(TAKE_PTR(q));
		cli_disconnect(cli);
		cli_die_of_signal(rc.signo);
	}
	return r;
}
