/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_recv.c - ipcq recv: receive messages and write them out.
 *
 * Waiting is a receive that does not block and, while the queue is
 * empty, a poll() on the queue's descriptor, a signalfd for SIGINT and
 * SIGTERM, which is also looked at before every receive, and the output
 * when it is not a regular file (a pipe whose reader went polls POLLERR,
 * a hung-up terminal or socket POLLHUP).  So a signal is seen between two
 * messages even while messages keep coming, and never in the middle of
 * one: "ipcq recv -c 0" ends cleanly with the last message written whole;
 * and "ipcq recv -c 0 q | head -n 3" ends as soon as head has gone, even
 * when no message comes.
 *
 * Messages are taken in batches (ipcq_recv_batch, at most RECV_BATCH_MAX
 * and never more than -c leaves to take), which the library fills with
 * what is waiting, without waiting for more than the first.  A batch is
 * written in place (in the ring for large messages) with one writev() of
 * payloads and separators, and then each message is released.  Writing
 * what has arrived at once, with no stdio buffer, is what makes "ipcq
 * recv -c 0 q | grep x" stream, at one write per batch.
 *
 * A message is released (acknowledged) only once it is out of our hands:
 * written whole by write(2), with nothing buffered in this process, so
 * that a kill at any instant loses nothing the output has not got.  For a
 * pipe (or FIFO) of an at-least-once queue that is not enough: what sits
 * in a pipe is lost with its reader ("ipcq recv -c 0 q | head -n 3" would
 * acknowledge all ten messages it wrote into the pipe, and head reads
 * three).  There recv hands messages over one at a time: it takes one,
 * writes it, and releases it once the reader has read it all, that is
 * once the pipe is empty again; with the pipe shrunk to one page (one
 * buffer slot), the pipe polls writable exactly when it is empty, so this
 * is a poll() and not a sleep.  The reader then never holds more than the
 * message it read last, and a message it did not read goes back to the
 * queue.  This costs a round trip per message, and is done only where it
 * buys something: in an at-most-once queue a message not acknowledged is
 * lost anyway.
 *
 * A message whose write fails, or that the reader of a pipe did not take,
 * is not released: ipcq_close gives it back to an at-least-once queue
 * (delivered again, flagged); an at-most-once queue drops it.  A closed
 * output (EPIPE, POLLERR, POLLHUP; SIGPIPE is ignored) ends recv at once
 * with RECV_EXIT_OUTPUT_CLOSED and one line on stderr.  A signal is looked
 * at between batches, so it never cuts a batch, let alone a message; one
 * that comes while the reader of a pipe has not taken the last message
 * ends the wait, and that message is not acknowledged.
 *
 * With -F or --json a batch is first rendered into one buffer, a piece
 * per message, and written the same way: one writev(), an iovec per
 * message, so that "written whole" still means one message.  --json
 * writes a payload that is valid UTF-8 as a JSON string, and any other as
 * base64, saying which in "encoding" (see format.c for why not \u
 * escapes).
 *
 * --drain receives until a receive finds the queue empty (after waiting
 * -t for more, 0 by default), which ends it with status 0; -W is a
 * deadline for the whole command: no wait lasts past it, and no batch is
 * taken once it has passed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cli.h"
#include "textbuf.h"
#include "util.h"

#define RECV_BATCH_MAX 64 /* the most messages taken at once (prefetch's bound) */
/* Exit status when the output was closed by its reader (ipcq(1)). */
#define RECV_EXIT_OUTPUT_CLOSED 6

enum {
	OPT_JSON = CLI_OPT_FIRST_COMMAND_,
};

/* How each message is written. */
enum recv_output {
	OUTPUT_RAW,    /* the payload, and the separator if any */
	OUTPUT_FORMAT, /* -F */
	OUTPUT_JSON,   /* --json */
};

struct receiver {
	ipcq_queue *q;
	const char *name;
	int queue_fd;
	int signal_fd;
	int out_fd;
	const char *out_name; /* "standard output" or the -o file, for messages */
	bool out_pollable;    /* not a regular file: poll it for its reader leaving */
	bool handoff;         /* a pipe of an at-least-once queue: one message at a
	                       * time, released once the reader has read it */
	bool small_pipe;      /* the pipe holds one page: POLLOUT means it is empty */
	int pipe_size;        /* the pipe's size before we shrank it; 0: unchanged */
	char sep;             /* written after each message if has_sep */
	bool has_sep;
	int timeout_ms;       /* per message; -1: forever */
	uint64_t deadline_ns; /* of the whole command (-W); 0: none */
	bool deadline_hit;    /* the deadline, not the timeout, ended a wait */
	bool drain;           /* an empty queue ends the command with 0 */
	enum recv_output output;
	const char *format;   /* -F */
	struct textbuf *text; /* a batch rendered by -F or --json */
	unsigned long got;    /* messages written */
	uint64_t bytes;       /* their payloads' bytes */
	int signo;            /* the signal that stopped us, or 0 */
};

static int output_closed(const struct receiver *rc)
{
	cli_error("%s: closed by its reader; stopped receiving from '%s'", rc->out_name, rc->name);
	return RECV_EXIT_OUTPUT_CLOSED;
}

static void take_signal(struct receiver *rc)
{
	struct signalfd_siginfo si;

	if (read(rc->signal_fd, &si, sizeof(si)) == sizeof(si))
		rc->signo = (int)si.ssi_signo;
}

static int remaining_ms(uint64_t deadline_ns)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);

	if (now >= deadline_ns)
		return 0;
	return (int)((deadline_ns - now + 999999) / 1000000);
}

/* Wait for the next messages: how many of at most n were put in msgs
 * (>= 1), -ETIMEDOUT (rc->deadline_hit tells whether -W's deadline, not
 * the timeout, ended it), -EINTR when a SIGINT or SIGTERM arrived
 * (rc->signo is set), -EPIPE when the output was closed, or a negative
 * errno. */
static int wait_messages(struct receiver *rc, ipcq_msg *msgs, unsigned n)
{
	uint64_t deadline = 0;

	if (cli_deadline_passed(rc->deadline_ns)) {
		rc->deadline_hit = true;
		return -ETIMEDOUT;
	}
	if (rc->timeout_ms >= 0)
		deadline = now_ns(CLOCK_MONOTONIC) + (uint64_t)rc->timeout_ms * 1000000u;
	for (bool first = true;; first = false) {
		/* The output is polled for nothing but POLLERR and POLLHUP,
		 * which poll() always reports. */
		struct pollfd pfd[3] = {
			{ .fd = rc->signal_fd, .events = POLLIN },
			{ .fd = rc->queue_fd, .events = POLLIN },
			{ .fd = rc->out_fd, .events = 0 },
		};
		int wait_ms = rc->timeout_ms < 0 ? -1 : remaining_ms(deadline);
		int r;

		/* Look before waiting: a backlog beside an empty window does not
		 * make the queue's descriptor readable, and a receive takes from
		 * it.  Only an empty queue is waited on. */
		r = poll(pfd, rc->out_pollable ? 3 : 2, first ? 0 : cli_wait_ms(wait_ms, rc->deadline_ns));
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0 && pfd[0].revents) {
			take_signal(rc);
			return -EINTR;
		}
		if (r > 0 && (pfd[2].revents & (POLLERR | POLLHUP | POLLNVAL)))
			return -EPIPE;
		r = ipcq_recv_batch(rc->q, msgs, n, 0);
		/* Empty: nothing came, or another receiver was quicker. */
		if (r != -EAGAIN && r != -ETIMEDOUT)
			return r;
		if (rc->timeout_ms >= 0 && remaining_ms(deadline) == 0)
			return -ETIMEDOUT;
		if (cli_deadline_passed(rc->deadline_ns)) {
			rc->deadline_hit = true;
			return -ETIMEDOUT;
		}
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

/* In hand-off mode, after a write: wait until the pipe's reader has read
 * all that is in the pipe (0), or say -EPIPE if it went away first,
 * -EINTR on a signal (rc->signo is set), or -ETIMEDOUT when -W's
 * deadline passed first.  With a one-page pipe this
 * sleeps in poll() until the pipe is empty; with a larger one (it could
 * not be shrunk) POLLOUT only means room, and the pipe is looked at
 * again after growing pauses. */
static int wait_taken(struct receiver *rc)
{
	bool closed = false, signalled = false, timed = !rc->small_pipe;
	int pause_ms = 1;

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = rc->signal_fd, .events = POLLIN },
			{ .fd = rc->out_fd, .events = POLLOUT },
		};
		int unread = 0, r;

		/* A pipe always answers; were it not to, the message counts as
		 * written, as it would in any other output. */
		if (ioctl(rc->out_fd, FIONREAD, &unread) < 0 || unread == 0)
			return 0;
		if (closed)
			return -EPIPE;
		if (signalled) {
			take_signal(rc);
			return -EINTR;
		}
		if (cli_deadline_passed(rc->deadline_ns)) {
			rc->deadline_hit = true;
			return -ETIMEDOUT;
		}
		r = poll(pfd, 2, cli_wait_ms(timed ? pause_ms : -1, rc->deadline_ns));
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		signalled = pfd[0].revents != 0;
		closed = (pfd[1].revents & (POLLERR | POLLHUP | POLLNVAL)) != 0;
		/* Writable yet not empty: another writer's bytes, or a pipe of
		 * more than one slot after all.  Look again after a pause. */
		if (pfd[1].revents & POLLOUT)
			timed = true;
		if (timed && pause_ms < 64)
			pause_ms *= 2;
	}
}

/* The first conversion of -F's format that is not one, or NULL. */
static const char *bad_conversion(const char *fmt)
{
	for (const char *p = fmt; *p; p++) {
		if (*p != '%')
			continue;
		if (!p[1] || !strchr("mxlprdqnt0%", p[1]))
			return p;
		p++;
	}
	return NULL;
}

static void render_format(struct textbuf *tb, const char *fmt, const ipcq_msg *m, const char *queue)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *data = m->data;

	for (const char *p = fmt; *p; p++) {
		const char *pct = strchr(p, '%');

		if (!pct) {
			textbuf_adds(tb, p);
			return;
		}
		textbuf_add(tb, p, (size_t)(pct - p));
		p = pct + 1; /* a valid conversion: bad_conversion() said so */
		switch (*p) {
		case 'm':
			textbuf_add(tb, m->data, m->len);
			break;
		case 'x':
			for (size_t i = 0; i < m->len; i++) {
				textbuf_addc(tb, hex[data[i] >> 4]);
				textbuf_addc(tb, hex[data[i] & 15]);
			}
			break;
		case 'l':
			textbuf_addf(tb, "%zu", m->len);
			break;
		case 'p':
			textbuf_addf(tb, "%u", m->prio);
			break;
		case 'r':
			textbuf_addc(tb, m->flags & IPCQ_MSG_REDELIVERED ? '1' : '0');
			break;
		case 'd':
			textbuf_addf(tb, "%u", m->deliveries);
			break;
		case 'q':
			textbuf_adds(tb, queue);
			break;
		case 'n':
			textbuf_addc(tb, '\n');
			break;
		case 't':
			textbuf_addc(tb, '\t');
			break;
		case '0':
			textbuf_addc(tb, '\0');
			break;
		default: /* %% */
			textbuf_addc(tb, '%');
		}
	}
}

static void render_json(struct textbuf *tb, const ipcq_msg *m)
{
	bool text = utf8_valid(m->data, m->len);

	textbuf_addf(tb, "{\"priority\":%u,\"redelivered\":%s,\"deliveries\":%u,\"length\":%zu,\"encoding\":",
	             m->prio, m->flags & IPCQ_MSG_REDELIVERED ? "true" : "false", m->deliveries, m->len);
	if (text) {
		textbuf_adds(tb, "\"utf-8\",\"data\":");
		json_add_string(tb, m->data, m->len);
	} else {
		textbuf_adds(tb, "\"base64\",\"data\":\"");
		base64_add(tb, m->data, m->len);
		textbuf_addc(tb, '"');
	}
	textbuf_adds(tb, "}\n");
}

/* The options recv and peek share: how each message is written. */
struct output_opts {
	bool nul, no_sep, json;
	const char *format;
};

/* Whether opt is one of them (-0, -N, -F, --json): taken into o, with
 * *status set to a usage error's exit status when its value is bad. */
static bool output_option(const struct cli *cli, struct output_opts *o, int opt, const char *arg, int *status)
{
	const char *bad;

	switch (opt) {
	case 'F':
		bad = bad_conversion(arg);
		if (bad)
			*status = cli_usage_error(cli, "bad conversion '%.2s' in format '%s' (%%m, %%x, %%l, %%p, "
			                          "%%r, %%d, %%q, %%n, %%t, %%0 or %%%%)", bad, arg);
		o->format = arg;
		return true;
	case OPT_JSON:
		o->json = true;
		return true;
	case '0':
		o->nul = true;
		return true;
	case 'N':
		o->no_sep = true;
		return true;
	default:
		return false;
	}
}

/* An output option, or one every command has: -1 to go on parsing, or
 * the exit status to end the command with. */
static int shared_option(struct cli *cli, struct output_opts *o, int opt, const char *arg, char **argv)
{
	int status = -1;

	if (output_option(cli, o, opt, arg, &status))
		return status;
	return cli_common_option(cli, opt, argv);
}

/* Set rc's output from o (to a file: no newline unless asked); -1, or a
 * usage error's exit status. */
static int output_setup(const struct cli *cli, const struct output_opts *o, struct receiver *rc, bool to_file)
{
	if (o->nul + o->no_sep + !!o->format + o->json > 1)
		return cli_usage_error(cli, "-0, -N, -F and --json exclude each other");
	rc->format = o->format;
	rc->sep = o->nul ? '\0' : '\n';
	rc->has_sep = o->nul || (!o->no_sep && !to_file);
	rc->output = o->json ? OUTPUT_JSON : o->format ? OUTPUT_FORMAT : OUTPUT_RAW;
	return -1;
}

/* The iovecs that write msgs[0..n): payload and separator, or each
 * message rendered (-F, --json); how many, or -ENOMEM.  *per is the
 * number of iovecs per message. */
static int build_iovecs(struct receiver *rc, const ipcq_msg *msgs, unsigned n, struct iovec *iov, int *per)
{
	size_t ends[RECV_BATCH_MAX];
	int niov = 0;

	if (rc->output == OUTPUT_RAW) {
		*per = rc->has_sep ? 2 : 1;
		for (unsigned i = 0; i < n; i++) {
			iov[niov++] = (struct iovec){ .iov_base = (void *)msgs[i].data, .iov_len = msgs[i].len };
			if (rc->has_sep)
				iov[niov++] = (struct iovec){ .iov_base = (void *)&rc->sep, .iov_len = 1 };
		}
		return niov;
	}
	/* rendered first, pointed at after: the buffer may move as it grows */
	rc->text->len = 0;
	textbuf_add(rc->text, NULL, 0); /* allocated, even for empty renderings */
	for (unsigned i = 0; i < n; i++) {
		if (rc->output == OUTPUT_JSON)
			render_json(rc->text, &msgs[i]);
		else
			render_format(rc->text, rc->format, &msgs[i], rc->name);
		ends[i] = rc->text->len;
	}
	if (rc->text->failed)
		return -ENOMEM;
	*per = 1;
	for (unsigned i = 0; i < n; i++) {
		size_t start = i ? ends[i - 1] : 0;

		iov[niov++] = (struct iovec){ .iov_base = rc->text->data + start, .iov_len = ends[i] - start };
	}
	return niov;
}

/* Write msgs[0..n), each with its separator, and release each one
 * written whole (in hand-off mode: once the reader has read them);
 * those not written are not released.  Returns an exit status; on a
 * signal while the reader had not yet read them, 0 with rc->signo set. */
static int write_messages(struct receiver *rc, ipcq_msg *msgs, unsigned n)
{
	struct iovec iov[2 * RECV_BATCH_MAX];
	int per = 1, niov, done, r, w, taken, t = 0;

	niov = build_iovecs(rc, msgs, n, iov, &per);
	if (niov < 0)
		return cli_error("%s", strerror(-niov));
	w = write_all(rc->out_fd, iov, niov, &done);
	taken = done / per;
	if (rc->handoff && taken > 0) {
		t = wait_taken(rc);
		if (t < 0)
			taken = 0; /* all in the pipe or none: the pipe is empty or not */
	}
	for (int i = 0; i < taken; i++) {
		r = ipcq_release(rc->q, &msgs[i]);
		if (r < 0)
			return cli_fail(r, "cannot release a message of '%s'", rc->name);
		rc->got++;
		rc->bytes += msgs[i].len;
	}
	if (w == -EPIPE || t == -EPIPE)
		return output_closed(rc);
	if (w < 0)
		return cli_error("%s: writing a message: %s", rc->out_name, strerror(-w));
	if (t == -ETIMEDOUT) {
		cli_error("deadline passed before the reader of %s had read the last message of '%s', which goes "
		          "back to the queue (received %lu)", rc->out_name, rc->name, rc->got);
		return CLI_EXIT_TIMEOUT;
	}
	if (t < 0 && t != -EINTR)
		return cli_error("%s: waiting for its reader: %s", rc->out_name, strerror(-t));
	return CLI_EXIT_OK;
}

/* Receive up to count messages (0: no limit); returns an exit status. */
static int receive(struct receiver *rc, unsigned long count)
{
	ipcq_msg msgs[RECV_BATCH_MAX];
	unsigned long got = 0;
	int r;

	while (count == 0 || got < count) {
		unsigned want = rc->handoff ? 1 : RECV_BATCH_MAX, n;

		if (count > 0 && count - got < want)
			want = (unsigned)(count - got);
		r = wait_messages(rc, msgs, want);
		if (r == -ESTALE || r == -EBADMSG) {
			cli_warn("skipped a bad message on '%s': %s", rc->name, ipcq_strerror(r));
			continue;
		}
		if (r == -EINTR)
			return CLI_EXIT_OK;
		if (r == -EPIPE)
			return output_closed(rc);
		if (r == -ETIMEDOUT && rc->deadline_hit) {
			cli_error("deadline passed receiving from '%s' (received %lu)", rc->name, got);
			return CLI_EXIT_TIMEOUT;
		}
		if (r == -ETIMEDOUT && rc->drain) {
			cli_info("'%s' is empty: received %lu", rc->name, got);
			return CLI_EXIT_OK;
		}
		if (r == -ETIMEDOUT) {
			cli_error("timed out waiting for a message on '%s' (received %lu)", rc->name, got);
			return CLI_EXIT_TIMEOUT;
		}
		if (r < 0)
			return cli_fail(r, "cannot receive from '%s'", rc->name);
		n = MIN((unsigned)r, want);
		r = write_messages(rc, msgs, n);
		if (r || rc->signo)
			return r;
		got += n;
	}
	return CLI_EXIT_OK;
}

/* Block SIGINT and SIGTERM and receive them on a descriptor instead;
 * SIGPIPE is ignored: a closed output is EPIPE from write(), or POLLERR
 * or POLLHUP from poll(). */
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

/* Look at what the output is: whether to poll it, and whether to hand
 * messages to a pipe's reader one at a time (shrinking the pipe to one
 * page, so that it polls writable only when empty). */
static void setup_output(struct receiver *rc, bool at_least_once)
{
	long page = sysconf(_SC_PAGESIZE);
	struct stat st;
	int size;

	if (fstat(rc->out_fd, &st) < 0)
		return; /* the first write will say what is wrong */
	rc->out_pollable = !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode);
	if (!at_least_once || !S_ISFIFO(st.st_mode))
		return;
	rc->handoff = true;
	size = fcntl(rc->out_fd, F_GETPIPE_SZ);
	if (size < 0 || page <= 0)
		return;
	if (size > page) {
		/* EBUSY when other writers' bytes fill more than a page */
		if (fcntl(rc->out_fd, F_SETPIPE_SZ, (int)page) < 0)
			return;
		rc->pipe_size = size;
		size = fcntl(rc->out_fd, F_GETPIPE_SZ);
	}
	rc->small_pipe = size == page;
}

/* Give the pipe back its size, for whoever writes to it after us. */
static void restore_output(struct receiver *rc)
{
	if (rc->pipe_size > 0)
		(void)fcntl(rc->out_fd, F_SETPIPE_SZ, rc->pipe_size);
	rc->pipe_size = 0;
}


int cmd_recv(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "null", no_argument, NULL, '0' },
		{ "no-separator", no_argument, NULL, 'N' },
		{ "output", required_argument, NULL, 'o' },
		{ "drain", no_argument, NULL, 'e' },
		{ "deadline", required_argument, NULL, 'W' },
		{ "format", required_argument, NULL, 'F' },
		{ "json", no_argument, NULL, OPT_JSON },
		CLI_GLOBAL_OPTIONS,
		{ 0 },
	};
	_cleanup_queue_ ipcq_queue *q = NULL;
	_cleanup_close_ int signal_fd = -1;
	_cleanup_close_ int out_fd = -1;
	__attribute__((cleanup(textbuf_deinit))) struct textbuf text = { 0 };
	struct receiver rc = { .timeout_ms = -1, .out_fd = STDOUT_FILENO, .out_name = "standard output" };
	ipcq_stats st;
	struct output_opts oo = { 0 };
	const char *output = NULL;
	bool count_given = false, timeout_given = false;
	unsigned long count = 1;
	int opt, r;

	while ((opt = cli_getopt(cli, argc, argv, ":c:t:0No:eW:F:" CLI_GLOBAL_SHORT, longopts)) != -1) {
		switch (opt) {
		case 'c':
			if (cli_parse_uint(optarg, ULONG_MAX, &count) < 0)
				return cli_usage_error(cli, "bad count '%s'", optarg);
			count_given = true;
			break;
		case 't':
			if (cli_parse_timeout(optarg, &rc.timeout_ms) < 0)
				return cli_usage_error(cli, "bad timeout '%s' (seconds, e.g. 0.5)", optarg);
			timeout_given = true;
			break;
		case 'W':
			if (cli_parse_deadline(optarg, &rc.deadline_ns) < 0)
				return cli_usage_error(cli, "bad deadline '%s' (seconds, e.g. 0.5)", optarg);
			break;
		case 'e':
			rc.drain = true;
			break;
		case 'o':
			output = optarg;
			break;
		default:
			r = shared_option(cli, &oo, opt, optarg, argv);
			if (r >= 0)
				return r;
		}
	}
	if (optind != argc - 1)
		return cli_usage_error(cli, optind >= argc ? "no queue given" : "too many arguments");
	/* A file gets the payloads as they are (ipcq send -f round-trips). */
	r = output_setup(cli, &oo, &rc, output);
	if (r >= 0)
		return r;
	rc.name = argv[optind];
	rc.text = &text;
	if (rc.drain && !count_given)
		count = 0;
	if (rc.drain && !timeout_given)
		rc.timeout_ms = 0;

	r = cli_open_queue(cli, rc.name, IPCQ_RECV, &q);
	if (r)
		return r;
	/* Only now: a missing queue must not truncate the file. */
	if (output) {
		out_fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (out_fd < 0)
			return cli_error("%s: %s", output, strerror(errno));
		rc.out_fd = out_fd;
		rc.out_name = output;
	}
	rc.q = q;
	rc.queue_fd = ipcq_fd(q);
	if (rc.queue_fd < 0)
		return cli_fail(rc.queue_fd, "cannot wait on queue '%s'", rc.name);
	signal_fd = setup_signals();
	if (signal_fd < 0)
		return cli_error("cannot set up signals: %s", strerror(-signal_fd));
	rc.signal_fd = signal_fd;
	/* Not knowing the delivery mode, take the safe side. */
	setup_output(&rc, ipcq_stat(cli->client, rc.name, &st) < 0 || st.delivery != 0);

	r = receive(&rc, count);
	if (r == CLI_EXIT_OK)
		cli_info("received %lu messages (%" PRIu64 " bytes) from '%s'", rc.got, rc.bytes, rc.name);
	restore_output(&rc);
	if (output && close(TAKE_FD(out_fd)) < 0 && r == CLI_EXIT_OK)
		r = cli_error("%s: %s", output, strerror(errno));
	if (rc.signo && count > 0) {
		ipcq_close(TAKE_PTR(q));
		cli_disconnect(cli);
		cli_die_of_signal(rc.signo);
	}
	return r;
}

/* ---- peek ---- */

#define PEEK_MAX 65536u           /* the most messages one peek shows */
#define PEEK_BUF_MAX (256u << 20) /* and the most bytes */

/* Write peeked messages, RECV_BATCH_MAX at a time, as recv would. */
static int write_peeked(struct receiver *rc, const ipcq_msg *msgs, unsigned n)
{
	struct iovec iov[2 * RECV_BATCH_MAX];

	for (unsigned i = 0; i < n; i += RECV_BATCH_MAX) {
		unsigned k = MIN(n - i, RECV_BATCH_MAX);
		int per = 1, done, w, niov = build_iovecs(rc, msgs + i, k, iov, &per);

		if (niov < 0)
			return cli_error("%s", strerror(-niov));
		w = write_all(rc->out_fd, iov, niov, &done);
		if (w == -EPIPE)
			return output_closed(rc);
		if (w < 0)
			return cli_error("%s: writing a message: %s", rc->out_name, strerror(-w));
	}
	return CLI_EXIT_OK;
}

int cmd_peek(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "null", no_argument, NULL, '0' },
		{ "no-separator", no_argument, NULL, 'N' },
		{ "format", required_argument, NULL, 'F' },
		{ "json", no_argument, NULL, OPT_JSON },
		CLI_GLOBAL_OPTIONS,
		{ 0 },
	};
	_cleanup_queue_ ipcq_queue *q = NULL;
	__attribute__((cleanup(textbuf_deinit))) struct textbuf text = { 0 };
	_cleanup_free_ ipcq_msg *msgs = NULL;
	_cleanup_free_ void *buf = NULL;
	struct receiver rc = { .out_fd = STDOUT_FILENO, .out_name = "standard output" };
	struct output_opts oo = { 0 };
	ipcq_geometry geo;
	ipcq_stats st;
	unsigned long count = 10;
	size_t cap;
	int opt, r, n;

	while ((opt = cli_getopt(cli, argc, argv, ":c:0NF:" CLI_GLOBAL_SHORT, longopts)) != -1) {
		switch (opt) {
		case 'c':
			if (cli_parse_uint(optarg, PEEK_MAX, &count) < 0)
				return cli_usage_error(cli, "bad count '%s' (0 to %u)", optarg, PEEK_MAX);
			break;
		default:
			r = shared_option(cli, &oo, opt, optarg, argv);
			if (r >= 0)
				return r;
		}
	}
	if (optind != argc - 1)
		return cli_usage_error(cli, optind >= argc ? "no queue given" : "too many arguments");
	r = output_setup(cli, &oo, &rc, false);
	if (r >= 0)
		return r;
	rc.name = argv[optind];
	rc.text = &text;
	if (count == 0)
		count = PEEK_MAX;

	r = cli_open_queue(cli, rc.name, IPCQ_RECV, &q);
	if (r)
		return r;
	r = ipcq_geometry_of(q, &geo);
	if (r < 0)
		return cli_fail(r, "cannot read the geometry of '%s'", rc.name);
	/* room for count of the largest; untouched pages cost nothing */
	cap = (size_t)MIN((uint64_t)count * MAX(geo.max_payload, 1), (uint64_t)PEEK_BUF_MAX);
	cap = MAX(cap, (size_t)MIN(geo.max_payload, (uint64_t)PEEK_BUF_MAX));
	msgs = calloc(count, sizeof(*msgs));
	buf = malloc(cap ? cap : 1);
	if (!msgs || !buf)
		return cli_error("%s", strerror(ENOMEM));
	n = ipcq_peek(q, msgs, (unsigned)count, buf, cap);
	if (n < 0)
		return cli_fail(n, "cannot peek at '%s'", rc.name);
	r = write_peeked(&rc, msgs, (unsigned)n);
	if (r != CLI_EXIT_OK)
		return r;
	if ((unsigned long)n < count && ipcq_stat(cli->client, rc.name, &st) == 0 && st.depth > (uint64_t)n)
		cli_info("%" PRIu64 " messages wait in '%s', %d shown: the others are in the kernel's window "
		         "(sent inline while a receiver slept), which cannot be read without receiving them",
		         st.depth, rc.name, n);
	else
		cli_info("%d messages of '%s' shown", n, rc.name);
	return CLI_EXIT_OK;
}
