/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_send.c - ipcq send: messages from the arguments, from standard input
 * (one per line, NUL-separated records, or all of it), or from a file.
 *
 * Standard input is cut into records straight out of a read buffer rather
 * than with stdio: no copy per record, and the buffer never grows much
 * past the queue's max_payload, so input without a delimiter ends in a
 * clear error instead of eating memory.
 *
 * Records go out in batches (ipcq_send_batch), of what stdin has ready:
 * after the first record, which is waited for, a batch takes what is
 * already buffered and what a read that would not block gives, up to
 * SEND_BATCH_MAX, and is sent at once.  So a fast producer (seq 1000000 |
 * ipcq send q) costs one send per many lines, and a slow one (tail -f log
 * | ipcq send logs) still has each line go out as soon as it has arrived:
 * a batch never waits to fill.  Records stay in the buffer until their
 * batch is sent: the buffer is only compacted from the batch's start.
 *
 * A file too large to travel inline is read straight into a loan in the
 * ring, in pieces so that a progress bar can follow, and then published:
 * its bytes are copied once, from the page cache into the ring.
 *
 * A deadline (-W) bounds the whole command: every wait (for room, for
 * input) ends by it, and once it has passed no further batch is sent,
 * even one that would not wait, so that a producer that never waits
 * still stops.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

#define READ_CHUNK (64 * 1024)
#define SEND_BATCH_MAX 64 /* the most messages one batch carries (prefetch's bound) */
#define SEND_BATCH_BYTES (4 * READ_CHUNK) /* a batch reads no more once it holds this much */
#define FILE_PIECE (1024 * 1024)
#define PROGRESS_DELAY_NS 500000000ull /* a bar only for sends slower than this */
#define PROGRESS_PERIOD_NS 100000000ull
#define PROGRESS_WIDTH 30

struct sender {
	ipcq_queue *q;
	const char *name;
	uint64_t max_payload;
	unsigned prio;
	int timeout_ms;       /* per message; -1: forever */
	uint64_t deadline_ns; /* of the whole command; 0: none */
	size_t sent;          /* messages sent so far */
	uint64_t bytes;       /* and their bytes */
};

static int deadline_passed(const struct sender *s)
{
	cli_error("deadline passed; sent %zu messages to '%s'", s->sent, s->name);
	return CLI_EXIT_TIMEOUT;
}

static int send_failed(const struct sender *s, int err)
{
	if ((err == -ETIMEDOUT || err == -EAGAIN) && cli_deadline_passed(s->deadline_ns))
		return deadline_passed(s);
	if (err == -ETIMEDOUT || err == -EAGAIN)
		return cli_fail(err, "queue '%s' stayed full", s->name);
	return cli_fail(err, "cannot send to '%s'", s->name);
}

static int send_one(struct sender *s, const void *data, size_t len)
{
	int r;

	if (cli_deadline_passed(s->deadline_ns))
		return deadline_passed(s);
	r = ipcq_send(s->q, data, len, s->prio, cli_wait_ms(s->timeout_ms, s->deadline_ns));
	if (r < 0)
		return send_failed(s, r);
	s->sent++;
	s->bytes += len;
	return CLI_EXIT_OK;
}

/* Send msgs[0..n) as one batch.  A part of it sent means the timeout hit
 * before the rest found room. */
static int send_batch(struct sender *s, const struct iovec *msgs, unsigned n)
{
	int r;

	if (n == 0)
		return CLI_EXIT_OK;
	if (cli_deadline_passed(s->deadline_ns))
		return deadline_passed(s);
	r = ipcq_send_batch(s->q, msgs, n, s->prio, cli_wait_ms(s->timeout_ms, s->deadline_ns));
	for (int i = 0; i < r; i++) {
		s->sent++;
		s->bytes += msgs[i].iov_len;
	}
	if (r >= 0 && (unsigned)r < n)
		r = -ETIMEDOUT;
	return r < 0 ? send_failed(s, r) : CLI_EXIT_OK;
}

/* what and index name the message: "line 3", "message 2", "FILE" (0). */
static int too_large(const struct sender *s, const char *what, size_t index)
{
	if (index)
		return cli_error("%s %zu is larger than the max_payload of queue '%s' (%" PRIu64 " bytes)", what,
				 index, s->name, s->max_payload);
	return cli_error("%s is larger than the max_payload of queue '%s' (%" PRIu64 " bytes)", what, s->name,
			 s->max_payload);
}

/* The arguments, in batches; those before one that is too large are sent. */
static int send_args(struct sender *s, char **msgs, int n)
{
	struct iovec batch[SEND_BATCH_MAX];
	unsigned k = 0;
	int i, r;

	for (i = 0; i < n; i++) {
		size_t len = strlen(msgs[i]);

		if (len > s->max_payload) {
			r = send_batch(s, batch, k);
			return r ? r : too_large(s, "message", (size_t)i + 1);
		}
		batch[k++] = (struct iovec){ .iov_base = msgs[i], .iov_len = len };
		if (k == SEND_BATCH_MAX) {
			r = send_batch(s, batch, k);
			if (r)
				return r;
			k = 0;
		}
	}
	return send_batch(s, batch, k);
}

/* ---- reading standard input ---- */

struct reader {
	int fd;
	char delim;
	uint64_t limit;       /* longest record wanted */
	uint64_t deadline_ns; /* no wait for input past it (0: none) */
	char *buf;
	size_t cap, start, end; /* unconsumed input is buf[start, end) */
	size_t base;            /* records handed out but still in use begin here */
	size_t scanned;         /* bytes after start known to hold no delim */
	bool eof;
};

static int reader_init(struct reader *rd, int fd, char delim, uint64_t limit, uint64_t deadline_ns)
{
	*rd = (struct reader){
		.fd = fd, .delim = delim, .limit = limit, .deadline_ns = deadline_ns, .cap = 4 * READ_CHUNK
	};
	rd->buf = malloc(rd->cap);
	return rd->buf ? 0 : -ENOMEM;
}

static void reader_deinit(struct reader *rd)
{
	free(rd->buf);
}

/* Wait until rd->fd is readable: 0, -ETIMEDOUT at the deadline, or a
 * negative errno. */
static int reader_wait(struct reader *rd)
{
	struct pollfd pfd = { .fd = rd->fd, .events = POLLIN };
	int r = poll(&pfd, 1, cli_wait_ms(-1, rd->deadline_ns));

	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

/* Move the input still in use to the front, make room and read once;
 * -ETIMEDOUT when the deadline passes first. */
static int reader_fill(struct reader *rd)
{
	ssize_t n;
	int r;

	if (rd->base > 0) {
		memmove(rd->buf, rd->buf + rd->base, rd->end - rd->base);
		rd->end -= rd->base;
		rd->start -= rd->base;
		rd->base = 0;
	}
	if (rd->cap - rd->end < READ_CHUNK) {
		char *buf = realloc(rd->buf, rd->cap * 2);

		if (!buf)
			return -ENOMEM;
		rd->buf = buf;
		rd->cap *= 2;
	}
	if (rd->deadline_ns && (r = reader_wait(rd)) < 0)
		return r;
	n = read(rd->fd, rd->buf + rd->end, rd->cap - rd->end);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return reader_wait(rd); /* a non-blocking descriptor, inherited */
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	rd->eof = n == 0;
	rd->end += (size_t)n;
	return 0;
}

/* Whether a read of rd->fd would return at once (data, end or error). */
static bool reader_ready(const struct reader *rd)
{
	struct pollfd pfd = { .fd = rd->fd, .events = POLLIN };

	return poll(&pfd, 1, 0) > 0 && pfd.revents;
}

/* The next record: 1 with *off and *len set, 0 at the end of input, or a
 * negative errno; -EMSGSIZE when a record grows past the limit before its
 * delimiter arrives; with wait false, -EAGAIN when no whole record is
 * there without waiting for input, or without reading more once the
 * records not yet released hold SEND_BATCH_BYTES.  A last record without
 * a delimiter still counts.  *off counts from the first record not yet
 * released (the record is at rd->buf + rd->base + *off): records handed
 * out stay in the buffer, though it may move, until reader_release(). */
static int reader_next(struct reader *rd, bool wait, size_t *off, size_t *len)
{
	for (;;) {
		char *s = rd->buf + rd->start;
		size_t avail = rd->end - rd->start;
		char *d = memchr(s + rd->scanned, rd->delim, avail - rd->scanned);
		int r;

		if (d || (rd->eof && avail)) {
			*off = rd->start - rd->base;
			*len = d ? (size_t)(d - s) : avail;
			rd->start += d ? *len + 1 : avail;
			rd->scanned = 0;
			return 1;
		}
		if (rd->eof)
			return 0;
		if (avail > rd->limit)
			return -EMSGSIZE;
		rd->scanned = avail;
		if (!wait && (rd->start - rd->base >= SEND_BATCH_BYTES || !reader_ready(rd)))
			return -EAGAIN;
		r = reader_fill(rd);
		if (r < 0)
			return r;
	}
}

/* The records handed out so far are done with. */
static void reader_release(struct reader *rd)
{
	rd->base = rd->start;
}

/* Records of standard input, in batches of what is ready.  Whatever ends
 * the input (its end, a record too large, a read error), the records
 * before it are sent first. */
static int send_records(struct sender *s, char delim)
{
	__attribute__((cleanup(reader_deinit))) struct reader rd = { 0 };
	const char *what = delim ? "line" : "record";
	size_t offs[SEND_BATCH_MAX];
	struct iovec batch[SEND_BATCH_MAX];
	size_t sent = 0;
	unsigned k = 0;
	int r, st;

	if (reader_init(&rd, STDIN_FILENO, delim, s->max_payload, s->deadline_ns) < 0)
		return cli_error("%s", strerror(ENOMEM));
	for (;;) {
		size_t off = 0, len = 0;
		bool fits;

		/* wait for the first record of a batch, not for the others */
		r = reader_next(&rd, k == 0, &off, &len);
		fits = r > 0 && len <= s->max_payload;
		if (fits) {
			offs[k] = off;
			batch[k++].iov_len = len;
			if (k < SEND_BATCH_MAX)
				continue;
		}
		/* the buffer may have moved since the offsets were taken */
		for (unsigned i = 0; i < k; i++)
			batch[i].iov_base = rd.buf + rd.base + offs[i];
		st = send_batch(s, batch, k);
		if (st)
			return st;
		sent += k;
		k = 0;
		reader_release(&rd);
		if (fits || r == -EAGAIN)
			continue;
		if (r == 0)
			return CLI_EXIT_OK;
		if (r > 0 || r == -EMSGSIZE)
			return too_large(s, what, sent + 1);
		if (r == -ETIMEDOUT)
			return deadline_passed(s);
		return cli_error("reading standard input: %s", strerror(-r));
	}
}

/* All of fd (up to max_payload) as one message. */
static int send_whole(struct sender *s, int fd, const char *what)
{
	__attribute__((cleanup(reader_deinit))) struct reader rd = { 0 };
	int r;

	r = reader_init(&rd, fd, 0, s->max_payload, s->deadline_ns);
	while (r == 0 && !rd.eof && rd.end <= rd.limit)
		r = reader_fill(&rd);
	if (r == -ETIMEDOUT)
		return deadline_passed(s);
	if (r < 0)
		return cli_error("reading %s: %s", what, strerror(-r));
	if (rd.end > rd.limit)
		return too_large(s, what, 0);
	return send_one(s, rd.buf, rd.end);
}

/* ---- files through a loan, with a progress bar ---- */

struct progress {
	const char *label;
	uint64_t total;
	uint64_t start_ns, drawn_ns;
	bool tty, shown;
};

static void progress_start(struct progress *p, const char *label, uint64_t total)
{
	*p = (struct progress){
		.label = label,
		.total = total,
		.start_ns = now_ns(CLOCK_MONOTONIC),
		.tty = isatty(STDERR_FILENO) && !cli_quiet(),
	};
}

static void progress_update(struct progress *p, uint64_t done)
{
	char bar[PROGRESS_WIDTH + 1];
	size_t fill;
	uint64_t now;

	if (!p->tty)
		return;
	now = now_ns(CLOCK_MONOTONIC);
	if (now - p->start_ns < PROGRESS_DELAY_NS)
		return;
	if (p->shown && now - p->drawn_ns < PROGRESS_PERIOD_NS && done < p->total)
		return;
	fill = (size_t)(done * PROGRESS_WIDTH / p->total);
	memset(bar, '#', fill);
	memset(bar + fill, ' ', PROGRESS_WIDTH - fill);
	bar[PROGRESS_WIDTH] = '\0';
	fprintf(stderr, "\r%s [%s] %3u%% %.1f/%.1f MiB", p->label, bar, (unsigned)(done * 100 / p->total),
		(double)done / (1 << 20), (double)p->total / (1 << 20));
	p->shown = true;
	p->drawn_ns = now;
}

static void progress_end(struct progress *p)
{
	if (p->shown)
		fputc('\n', stderr);
}

static int send_file_loaned(struct sender *s, int fd, const char *path, size_t size)
{
	struct progress bar;
	size_t done = 0;
	void *buf;
	int r;

	if (cli_deadline_passed(s->deadline_ns))
		return deadline_passed(s);
	r = ipcq_loan(s->q, size, &buf, cli_wait_ms(s->timeout_ms, s->deadline_ns));
	if ((r == -ETIMEDOUT || r == -EAGAIN) && cli_deadline_passed(s->deadline_ns))
		return deadline_passed(s);
	if (r == -ETIMEDOUT || r == -EAGAIN)
		return cli_fail(r, "the ring of queue '%s' stayed full", s->name);
	if (r < 0)
		return cli_fail(r, "cannot reserve %zu bytes in queue '%s'", size, s->name);
	progress_start(&bar, path, size);
	while (done < size) {
		ssize_t n = read(fd, (char *)buf + done, MIN(size - done, (size_t)FILE_PIECE));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : 0;

			progress_end(&bar);
			ipcq_unloan(s->q, buf);
			if (err)
				return cli_error("%s: %s", path, strerror(err));
			return cli_error("%s: file shrank while being sent", path);
		}
		done += (size_t)n;
		progress_update(&bar, done);
	}
	progress_end(&bar);
	r = ipcq_publish(s->q, buf, size, s->prio);
	if (r < 0)
		return cli_fail(r, "cannot send to '%s'", s->name);
	s->sent++;
	s->bytes += size;
	return CLI_EXIT_OK;
}

static int send_file(struct sender *s, const ipcq_geometry *geo, const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0)
		return cli_error("%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return send_whole(s, fd, path); /* a pipe or device: size unknown */
	if ((uint64_t)st.st_size > s->max_payload)
		return too_large(s, path, 0);
	/* Beyond the inline size the message goes through the ring anyway:
	 * read it straight there. */
	if ((uint64_t)st.st_size > geo->msg_size && geo->ring_size > 0)
		return send_file_loaned(s, fd, path, (size_t)st.st_size);
	return send_whole(s, fd, path);
}

int cmd_send(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "null", no_argument, NULL, '0' },
		{ "single", no_argument, NULL, 's' },
		{ "file", required_argument, NULL, 'f' },
		{ "priority", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "deadline", required_argument, NULL, 'W' },
		{ "ttl", required_argument, NULL, 'T' },
		CLI_GLOBAL_OPTIONS,
		{ 0 },
	};
	_cleanup_queue_ ipcq_queue *q = NULL;
	struct sender s = { .timeout_ms = -1 };
	bool nul = false, single = false;
	const char *file = NULL;
	unsigned long prio = 0;
	uint64_t ttl_ms = 0;
	ipcq_geometry geo;
	int opt, r;

	while ((opt = cli_getopt(cli, argc, argv, ":0sf:p:t:W:T:" CLI_GLOBAL_SHORT, longopts)) != -1) {
		switch (opt) {
		case '0':
			nul = true;
			break;
		case 's':
			single = true;
			break;
		case 'f':
			file = optarg;
			break;
		case 'p':
			if (cli_parse_uint(optarg, 31, &prio) < 0)
				return cli_usage_error(cli, "priority must be 0 to 31, not '%s'", optarg);
			break;
		case 't':
			if (cli_parse_timeout(optarg, &s.timeout_ms) < 0)
				return cli_usage_error(cli, "bad timeout '%s' (seconds, e.g. 0.5)", optarg);
			break;
		case 'W':
			if (cli_parse_deadline(optarg, &s.deadline_ns) < 0)
				return cli_usage_error(cli, "bad deadline '%s' (seconds, e.g. 0.5)", optarg);
			break;
		case 'T':
			r = cli_parse_ttl(cli, optarg, &ttl_ms);
			if (r)
				return r;
			break;
		default:
			r = cli_common_option(cli, opt, argv);
			if (r >= 0)
				return r;
		}
	}
	if (optind >= argc)
		return cli_usage_error(cli, "no queue given");
	if (nul + single + !!file + (argc - optind > 1) > 1)
		return cli_usage_error(cli, "MESSAGE arguments, -0, -s and -f exclude each other");
	s.name = argv[optind++];
	s.prio = (unsigned)prio;

	r = cli_open_queue(cli, s.name, IPCQ_SEND | IPCQ_CREATE, &q);
	if (r)
		return r;
	r = ipcq_geometry_of(q, &geo);
	if (r < 0)
		return cli_fail(r, "cannot read the geometry of queue '%s'", s.name);
	s.q = q;
	s.max_payload = geo.max_payload;
	if (ttl_ms)
		ipcq_set_ttl(q, ttl_ms);

	if (optind < argc)
		r = send_args(&s, argv + optind, argc - optind);
	else if (file)
		r = send_file(&s, &geo, file);
	else if (single)
		r = send_whole(&s, STDIN_FILENO, "standard input");
	else
		r = send_records(&s, nul ? '\0' : '\n');
	if (r == CLI_EXIT_OK)
		cli_info("sent %zu messages (%" PRIu64 " bytes) to '%s'", s.sent, s.bytes, s.name);
	return r;
}
