/* SPDX-License-Identifier: Apache-2.0 */
/*
 * deep.c - deep queues and batches, checked message by message.
 *
 *   deep produce QUEUE N [-i ID] [-s SIZE | -m MAXSIZE] [-p PRIO] [-t MS] [-b K] [-d]
 *   deep consume QUEUE N [-S SENDERS] [-f FIRST] [-t MS] [-b K] [-k]
 *   deep roundtrip QUEUE
 *   deep priority QUEUE
 *   deep held QUEUE
 *   deep maxdepth QUEUE          (a queue made with max_depth 100)
 *   deep batch QUEUE SMALLQUEUE  (QUEUE: default geometry; SMALLQUEUE: a 256 KiB ring)
 *   deep fairness QUEUE WORKERS JOBS JOB_MS MIN_JOBS MAX_RATIO [--produce]
 *
 * Every message of produce, consume, roundtrip, priority, held and maxdepth
 * starts with a header {magic, sender, seq, len, prio}; the bytes after it
 * are derived from (sender, seq) alone.  A receiver checks each message
 * whole: its length, its priority, its content, and that it is the next
 * one of its sender (FIFO per sender, which with one sender per priority
 * is FIFO within a priority).  So a message lost, duplicated, reordered,
 * torn or mixed up with another is reported, with what was expected.
 *
 * produce sends N messages, one ipcq_send each (or ipcq_send_batch of K
 * with -b); with -d it checks, before closing its handle, that the queue
 * holds all N: nothing may wait in the producer's memory.  consume
 * receives N from senders 0..S-1, each from seq FIRST (default 0), and
 * then, unless -k, checks that nothing is left.
 * The other modes are self-contained tests of one behaviour each; see the
 * comment above each.  fairness forks WORKERS processes that take JOBS
 * one message at a time, sleeping JOB_MS for each, and checks the bound
 * the work-sharing promise gives (every job done once, each worker at
 * least MIN_JOBS, all done within MAX_RATIO of the ideal time).
 *
 * Prints one line per failed check (at most REPORT_MAX of one kind) and
 * exits 0 only when all pass.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipcq.h"
#include "pattern.h"
#include "timing.h"

#define DEEP_MAGIC 0x70656564u /* "deep" */
#define WATCHDOG_S 60
#define RECV_TIMEOUT_MS 10000 /* a message that should be there takes no longer */
#define REPORT_MAX 10
#define PRIO_LIMIT 64 /* priorities these tests use are below it */
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct seq_hdr {
	uint32_t magic;
	uint32_t sender;
	uint64_t seq;
	uint32_t len; /* whole message, header included */
	uint32_t prio;
};

static int failures;
static ipcq_client *client;

#define CHECK(cond, ...)                                      \
	do {                                                  \
		if (!(cond)) {                                \
			fprintf(stderr, "deep: FAIL: " __VA_ARGS__); \
			fputc('\n', stderr);                  \
			failures++;                           \
		}                                             \
	} while (0)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double since_s(uint64_t t0)
{
	return (double)(now_ns() - t0) / 1e9;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "deep: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

static void connect_client(void)
{
	int r = ipcq_connect(&client, NULL);

	if (r < 0) {
		fprintf(stderr, "deep: connect: %s\n", ipcq_strerror(r));
		exit(1);
	}
}

static ipcq_queue *open_queue(const char *name, int flags)
{
	ipcq_queue *q;
	int r = ipcq_open(client, name, flags, &q);

	if (r < 0) {
		fprintf(stderr, "deep: open %s: %s (%s)\n", name, ipcq_strerror(r), ipcq_last_error(client));
		exit(1);
	}
	return q;
}

static ipcq_geometry geometry_of(ipcq_queue *q)
{
	ipcq_geometry g;
	int r = ipcq_geometry_of(q, &g);

	if (r < 0) {
		fprintf(stderr, "deep: ipcq_geometry_of: %s\n", ipcq_strerror(r));
		exit(1);
	}
	return g;
}

static ipcq_stats stat_of(const char *name)
{
	ipcq_stats st;
	int r = ipcq_stat(client, name, &st);

	if (r < 0) {
		fprintf(stderr, "deep: ipcq_stat %s: %s\n", name, ipcq_strerror(r));
		exit(1);
	}
	return st;
}

static void close_queue(ipcq_queue *q, const char *what)
{
	int r = ipcq_close(q);

	CHECK(r == 0, "%s: ipcq_close: %s", what, ipcq_strerror(r));
}

/* ---- sequenced messages ---- */

static uint64_t seed_of(uint32_t sender, uint64_t seq)
{
	return ((uint64_t)sender << 40 ^ seq) * 0x2545f4914f6cdd1dull + 0x7f4a7c15;
}

/* Length of message (sender, seq) under the mixed policy: one in eight
 * through the ring, up to maxsize; the others small, up to a quarter of
 * the inline slot. */
static size_t mixed_size(uint32_t sender, uint64_t seq, size_t inline_size, size_t maxsize)
{
	uint64_t s = seed_of(sender, seq) ^ 0x5bd1e995u;
	uint64_t r = splitmix64(&s);
	size_t lo = sizeof(struct seq_hdr);

	if ((r & 7) == 0 && maxsize > inline_size + 1)
		return inline_size + 1 + (size_t)((r >> 3) % (maxsize - inline_size));
	return lo + (size_t)((r >> 3) % (inline_size / 4 > lo ? inline_size / 4 - lo + 1 : 1));
}

static size_t build_msg(unsigned char *buf, uint32_t sender, uint64_t seq, size_t len, unsigned prio)
{
	struct seq_hdr h = { .magic = DEEP_MAGIC, .sender = sender, .seq = seq, .len = (uint32_t)len, .prio = prio };

	memcpy(buf, &h, sizeof(h));
	pattern_fill(buf + sizeof(h), len - sizeof(h), seed_of(sender, seq));
	return len;
}

/* What a receiver knows and checks: the next seq of each sender, how many
 * of each priority came, and optionally a bound on how many messages of a
 * lower priority may come before a message. */
struct checker {
	const char *what;
	uint32_t senders;
	uint64_t *next;
	uint64_t got;
	uint64_t per_prio[PRIO_LIMIT];
	uint64_t inversion_bound; /* 0: not checked */
	uint64_t worst_inversion;
	unsigned reported;
	unsigned char *scratch;
	size_t scratch_cap;
};

static void checker_init(struct checker *ck, const char *what, uint32_t senders, size_t maxlen)
{
	*ck = (struct checker){ .what = what, .senders = senders, .scratch_cap = maxlen };
	ck->next = calloc(senders, sizeof(*ck->next));
	ck->scratch = xmalloc(maxlen);
	if (!ck->next)
		exit(1);
}

static void checker_deinit(struct checker *ck)
{
	free(ck->next);
	free(ck->scratch);
}

#define REPORT(ck, ...)                                                        \
	do {                                                                   \
		failures++;                                                    \
		if ((ck)->reported++ < REPORT_MAX) {                           \
			fprintf(stderr, "deep: FAIL: %s: message #%" PRIu64 ": ", \
				(ck)->what, (ck)->got);                        \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
		}                                                              \
	} while (0)

/* Check one received message; false if anything is wrong with it. */
static bool check_msg(struct checker *ck, const void *data, size_t len, unsigned prio)
{
	struct seq_hdr h;
	uint64_t lower = 0;

	ck->got++;
	if (len < sizeof(h)) {
		REPORT(ck, "%zu bytes, shorter than a header", len);
		return false;
	}
	memcpy(&h, data, sizeof(h));
	if (h.magic != DEEP_MAGIC || h.sender >= ck->senders) {
		REPORT(ck, "not a message of this test (magic %#x, sender %u)", h.magic, h.sender);
		return false;
	}
	if (h.len != len) {
		REPORT(ck, "sender %u seq %" PRIu64 ": %zu bytes, sent %u", h.sender, h.seq, len, h.len);
		return false;
	}
	if (h.prio != prio)
		REPORT(ck, "sender %u seq %" PRIu64 ": priority %u, sent with %u", h.sender, h.seq, prio, h.prio);
	if (h.seq != ck->next[h.sender])
		REPORT(ck, "sender %u: seq %" PRIu64 ", expected %" PRIu64 " (%s)", h.sender, h.seq,
		       ck->next[h.sender], h.seq < ck->next[h.sender] ? "duplicate or reordered" : "lost or reordered");
	if (h.seq >= ck->next[h.sender])
		ck->next[h.sender] = h.seq + 1;
	if (len > ck->scratch_cap) {
		REPORT(ck, "%zu bytes, more than any message sent", len);
		return false;
	}
	pattern_fill(ck->scratch, len - sizeof(h), seed_of(h.sender, h.seq));
	if (memcmp((const unsigned char *)data + sizeof(h), ck->scratch, len - sizeof(h)) != 0)
		REPORT(ck, "sender %u seq %" PRIu64 ": content differs from what was sent", h.sender, h.seq);
	if (prio >= PRIO_LIMIT) {
		REPORT(ck, "priority %u, above any sent", prio);
		return false;
	}
	for (unsigned p = 0; p < prio; p++)
		lower += ck->per_prio[p];
	if (lower > ck->worst_inversion)
		ck->worst_inversion = lower;
	if (ck->inversion_bound && lower > ck->inversion_bound)
		REPORT(ck, "sender %u seq %" PRIu64 " of priority %u came after %" PRIu64
		       " messages of lower priority, more than the bound %" PRIu64,
		       h.sender, h.seq, prio, lower, ck->inversion_bound);
	ck->per_prio[prio]++;
	return true;
}

/* Each sender's count so far must be what it sent. */
static void check_all_came(struct checker *ck, const uint64_t *sent)
{
	for (uint32_t s = 0; s < ck->senders; s++)
		CHECK(ck->next[s] == sent[s], "%s: sender %u: last seq received %" PRIu64 ", sent %" PRIu64, ck->what,
		      s, ck->next[s], sent[s]);
}

/* Receive n messages into the checker, with ipcq_recv, or ipcq_recv_batch
 * of up to batch at a time (released in reverse order). */
static uint64_t receive_checked(ipcq_queue *q, struct checker *ck, uint64_t n, unsigned batch, int timeout_ms)
{
	unsigned char *buf = batch ? NULL : xmalloc(ck->scratch_cap);
	ipcq_msg *msgs = batch ? xmalloc(batch * sizeof(*msgs)) : NULL;
	uint64_t got = 0;

	while (got < n) {
		if (!batch) {
			unsigned prio = 0;
			ssize_t len = ipcq_recv(q, buf, ck->scratch_cap, &prio, timeout_ms);

			if (len < 0) {
				CHECK(false, "%s: ipcq_recv after %" PRIu64 " of %" PRIu64 " messages: %s", ck->what,
				      got, n, ipcq_strerror((int)len));
				break;
			}
			check_msg(ck, buf, (size_t)len, prio);
			got++;
			continue;
		}
		unsigned want = n - got < batch ? (unsigned)(n - got) : batch;
		int r = ipcq_recv_batch(q, msgs, want, timeout_ms);

		if (r < 0) {
			CHECK(false, "%s: ipcq_recv_batch after %" PRIu64 " of %" PRIu64 " messages: %s", ck->what, got,
			      n, ipcq_strerror(r));
			break;
		}
		CHECK(r >= 1 && (unsigned)r <= want, "%s: ipcq_recv_batch of %u returned %d", ck->what, want, r);
		if (r < 1 || (unsigned)r > want)
			break;
		for (int i = 0; i < r; i++)
			check_msg(ck, msgs[i].data, msgs[i].len, msgs[i].prio);
		for (int i = r - 1; i >= 0; i--) {
			int rr = ipcq_release(q, &msgs[i]);

			CHECK(rr == 0, "%s: ipcq_release: %s", ck->what, ipcq_strerror(rr));
		}
		got += (uint64_t)r;
	}
	free(buf);
	free(msgs);
	return got;
}

/* Nothing more to receive: a receive that does not wait finds nothing. */
static void check_empty(ipcq_queue *q, const char *what)
{
	unsigned char buf[64];
	ssize_t r = ipcq_recv(q, buf, sizeof(buf), NULL, 0);

	CHECK(r == -EAGAIN, "%s: a receive on the drained queue returned %zd (%s), expected -EAGAIN", what, r,
	      r < 0 ? ipcq_strerror((int)r) : "a message");
}

/* Send messages seq first..first+n-1 of sender, one ipcq_send each; the
 * number sent before the first failure. */
static uint64_t send_run(ipcq_queue *q, const char *what, uint32_t sender, uint64_t first, uint64_t n, size_t len,
			 unsigned prio, int timeout_ms)
{
	unsigned char *buf = xmalloc(len);
	uint64_t i;

	for (i = 0; i < n; i++) {
		int r;

		build_msg(buf, sender, first + i, len, prio);
		r = ipcq_send(q, buf, len, prio, timeout_ms);
		if (r < 0) {
			CHECK(false, "%s: ipcq_send of sender %u seq %" PRIu64 " (%zu bytes, prio %u): %s", what, sender,
			      first + i, len, prio, ipcq_strerror(r));
			break;
		}
	}
	free(buf);
	return i;
}

/* ---- produce / consume ---- */

struct options {
	uint32_t id, senders;
	uint64_t first;
	size_t size, maxsize;
	unsigned prio, batch;
	int timeout_ms;
	bool check_depth, keep;
};

static int parse_options(int argc, char **argv, struct options *o)
{
	int opt;

	*o = (struct options){ .senders = 1, .size = 64, .timeout_ms = RECV_TIMEOUT_MS };
	while ((opt = getopt(argc, argv, "i:S:f:s:m:p:t:b:dk")) != -1) {
		switch (opt) {
		case 'i':
			o->id = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'S':
			o->senders = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'f':
			o->first = strtoull(optarg, NULL, 0);
			break;
		case 's':
			o->size = strtoul(optarg, NULL, 0);
			break;
		case 'm':
			o->maxsize = strtoul(optarg, NULL, 0);
			break;
		case 'p':
			o->prio = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 't':
			o->timeout_ms = atoi(optarg);
			break;
		case 'b':
			o->batch = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'd':
			o->check_depth = true;
			break;
		case 'k':
			o->keep = true;
			break;
		default:
			return -1;
		}
	}
	if (o->size < sizeof(struct seq_hdr) || o->senders == 0 || o->prio >= PRIO_LIMIT ||
	    (o->maxsize && o->maxsize < sizeof(struct seq_hdr)))
		return -1;
	return 0;
}

static size_t size_for(const struct options *o, const ipcq_geometry *g, uint64_t seq)
{
	return o->maxsize ? mixed_size(o->id, seq, g->msg_size, o->maxsize) : o->size;
}

static int run_produce(const char *name, uint64_t n, const struct options *o)
{
	ipcq_queue *q;
	ipcq_geometry g;
	size_t cap;
	unsigned char *buf;
	uint64_t t0, sent = 0;

	connect_client();
	q = open_queue(name, IPCQ_SEND);
	g = geometry_of(q);
	cap = o->maxsize ? o->maxsize : o->size;
	buf = xmalloc(cap * (o->batch ? o->batch : 1));
	t0 = now_ns();
	if (!o->batch) {
		for (; sent < n; sent++) {
			size_t len = build_msg(buf, o->id, sent, size_for(o, &g, sent), o->prio);
			int r = ipcq_send(q, buf, len, o->prio, o->timeout_ms);

			if (r < 0) {
				CHECK(false, "produce: ipcq_send of seq %" PRIu64 " (%zu bytes, timeout %d ms): %s", sent,
				      len, o->timeout_ms, ipcq_strerror(r));
				break;
			}
		}
	} else {
		struct iovec *iov = xmalloc(o->batch * sizeof(*iov));

		while (sent < n) {
			unsigned k = n - sent < o->batch ? (unsigned)(n - sent) : o->batch;
			int r;

			for (unsigned i = 0; i < k; i++) {
				iov[i].iov_base = buf + i * cap;
				iov[i].iov_len = build_msg(iov[i].iov_base, o->id, sent + i, size_for(o, &g, sent + i),
							   o->prio);
			}
			r = ipcq_send_batch(q, iov, k, o->prio, o->timeout_ms);
			if (r <= 0 || (unsigned)r > k) {
				CHECK(false, "produce: ipcq_send_batch of %u from seq %" PRIu64 ": %d (%s)", k, sent, r,
				      r < 0 ? ipcq_strerror(r) : "a bad count");
				break;
			}
			CHECK((unsigned)r == k || o->timeout_ms >= 0,
			      "produce: ipcq_send_batch of %u without a timeout sent %d", k, r);
			sent += (uint64_t)r;
		}
		free(iov);
	}
	fprintf(stderr, "deep: produce: sender %u sent %" PRIu64 " messages in %.2f s\n", o->id, sent, since_s(t0));
	if (o->check_depth) {
		ipcq_stats st = stat_of(name);

		CHECK(st.depth == sent, "produce: before closing, the queue's depth is %" PRIu64 ", sent %" PRIu64
		      " with no receiver", st.depth, sent);
	}
	close_queue(q, "produce");
	free(buf);
	ipcq_disconnect(client);
	return sent == n && !failures ? 0 : 1;
}

static int run_consume(const char *name, uint64_t n, const struct options *o)
{
	struct checker ck;
	ipcq_queue *q;
	ipcq_geometry g;
	uint64_t t0, got;

	connect_client();
	q = open_queue(name, IPCQ_RECV);
	g = geometry_of(q);
	checker_init(&ck, "consume", o->senders, g.max_payload);
	for (uint32_t s = 0; s < o->senders; s++)
		ck.next[s] = o->first;
	t0 = now_ns();
	got = receive_checked(q, &ck, n, o->batch, o->timeout_ms);
	fprintf(stderr, "deep: consume: %" PRIu64 " messages in %.2f s\n", got, since_s(t0));
	CHECK(got == n, "consume: received %" PRIu64 " of %" PRIu64, got, n);
	if (!o->keep)
		check_empty(q, "consume");
	close_queue(q, "consume");
	checker_deinit(&ck);
	ipcq_disconnect(client);
	return failures ? 1 : 0;
}

/* ---- roundtrip: send everything first, then receive ---- */

/* 1000 messages sent before any is received come back in order. */
static void test_thousand_then_receive(ipcq_queue *q, const ipcq_geometry *g)
{
	struct checker ck;
	uint64_t sent[1], got;

	checker_init(&ck, "1000 then receive", 1, g->max_payload);
	sent[0] = send_run(q, ck.what, 0, 0, 1000, 64, 0, 0);
	got = receive_checked(q, &ck, sent[0], 0, RECV_TIMEOUT_MS);
	CHECK(sent[0] == 1000 && got == 1000, "1000 then receive: sent %" PRIu64 ", received %" PRIu64, sent[0], got);
	check_all_came(&ck, sent);
	check_empty(q, ck.what);
	checker_deinit(&ck);
}

/* Payloads of mixed sizes, inline and through the ring, more than the
 * window holds, all sent before the first receive: each comes back whole
 * and in order, through the copy API and through views. */
static void mixed_then_receive(ipcq_queue *q, const ipcq_geometry *g, bool view)
{
	const size_t inl = g->msg_size;
	const size_t sizes[12] = {
		0, 1, inl / 2, inl - 9, inl - 8, inl - 7, inl, inl * 2, 4096, 65536, 300000, 3,
	};
	unsigned char *buf = xmalloc(g->max_payload), *want = xmalloc(g->max_payload);
	const char *what = view ? "12 mixed sizes, received as views" : "12 mixed sizes, received by copy";
	size_t i;
	int r;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		size_t len = sizes[i] < g->max_payload ? sizes[i] : g->max_payload;

		pattern_fill(buf, len, 900 + i);
		r = ipcq_send(q, buf, len, 0, 0);
		CHECK(r == 0, "%s: ipcq_send of payload %zu (%zu bytes) with timeout 0: %s", what, i, len,
		      ipcq_strerror(r));
	}
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		size_t len = sizes[i] < g->max_payload ? sizes[i] : g->max_payload;
		const void *data = buf;
		ipcq_msg m;
		ssize_t n;

		pattern_fill(want, len, 900 + i);
		if (view) {
			r = ipcq_recv_view(q, &m, RECV_TIMEOUT_MS);
			n = r < 0 ? r : (ssize_t)m.len;
			data = m.data;
		} else {
			n = ipcq_recv(q, buf, g->max_payload, NULL, RECV_TIMEOUT_MS);
		}
		if (n < 0) {
			CHECK(false, "%s: receive of payload %zu: %s", what, i, ipcq_strerror((int)n));
			break;
		}
		CHECK((size_t)n == len && memcmp(data, want, len) == 0,
		      "%s: payload %zu came back as %zd bytes%s, sent %zu", what, i, n,
		      (size_t)n == len ? " of other content" : "", len);
		if (view) {
			r = ipcq_release(q, &m);
			CHECK(r == 0, "%s: ipcq_release: %s", what, ipcq_strerror(r));
		}
	}
	check_empty(q, what);
	free(buf);
	free(want);
}

/* 2000 sequenced messages of mixed sizes, one in eight through the ring. */
static void test_mixed_thousands_then_receive(ipcq_queue *q, const ipcq_geometry *g)
{
	struct options o = { .maxsize = 20000 };
	unsigned char *buf = xmalloc(o.maxsize);
	struct checker ck;
	uint64_t sent[1] = { 0 }, got;

	checker_init(&ck, "2000 mixed then receive", 1, g->max_payload);
	for (; sent[0] < 2000; sent[0]++) {
		size_t len = build_msg(buf, 0, sent[0], size_for(&o, g, sent[0]), 0);
		int r = ipcq_send(q, buf, len, 0, 0);

		if (r < 0) {
			CHECK(false, "%s: ipcq_send of seq %" PRIu64 " (%zu bytes): %s", ck.what, sent[0], len,
			      ipcq_strerror(r));
			break;
		}
	}
	got = receive_checked(q, &ck, sent[0], 0, RECV_TIMEOUT_MS);
	CHECK(got == 2000, "%s: received %" PRIu64, ck.what, got);
	check_all_came(&ck, sent);
	check_empty(q, ck.what);
	checker_deinit(&ck);
	free(buf);
}

/* An event loop waits on ipcq_fd() and receives without waiting: the fd
 * must poll readable whenever a message waits, in the window or in the
 * backlog, or such a loop stalls with messages queued. */
static void test_fd_readable_while_messages_wait(const char *name, ipcq_queue *q, const ipcq_geometry *g)
{
	struct checker ck;
	uint64_t sent[1], got = 0;
	unsigned char buf[64];
	struct pollfd pfd = { .fd = ipcq_fd(q), .events = POLLIN };

	checker_init(&ck, "poll on ipcq_fd, then receive without waiting", 1, g->max_payload);
	sent[0] = send_run(q, ck.what, 0, 0, 60, sizeof(buf), 0, 0);
	while (got < sent[0]) {
		unsigned prio = 0;
		ssize_t n;
		int r = poll(&pfd, 1, 2000);

		if (r != 1) {
			ipcq_stats st = stat_of(name);

			CHECK(false, "%s: ipcq_fd not readable within 2 s with %" PRIu64 " of %" PRIu64
			      " messages waiting (stat: depth %" PRIu64 ", window %u, backlog %" PRIu64 ")", ck.what,
			      sent[0] - got, sent[0], st.depth, st.window, st.backlog);
			break;
		}
		n = ipcq_recv(q, buf, sizeof(buf), &prio, 0);
		if (n == -EAGAIN)
			continue; /* woken for no message: poll again */
		if (n < 0) {
			CHECK(false, "%s: ipcq_recv: %s", ck.what, ipcq_strerror((int)n));
			break;
		}
		check_msg(&ck, buf, (size_t)n, prio);
		got++;
	}
	check_all_came(&ck, sent);
	check_empty(q, ck.what);
	checker_deinit(&ck);
}

static int run_roundtrip(const char *name)
{
	ipcq_queue *q;
	ipcq_geometry g;
	ipcq_stats st;

	connect_client();
	q = open_queue(name, IPCQ_SEND | IPCQ_RECV);
	g = geometry_of(q);
	test_thousand_then_receive(q, &g);
	mixed_then_receive(q, &g, false);
	mixed_then_receive(q, &g, true);
	test_mixed_thousands_then_receive(q, &g);
	test_fd_readable_while_messages_wait(name, q, &g);
	close_queue(q, "roundtrip");
	st = stat_of(name);
	CHECK(st.depth == 0 && st.backlog == 0 && st.ring_used == 0,
	      "roundtrip: afterwards depth %" PRIu64 ", backlog %" PRIu64 ", ring_used %" PRIu64 ", expected 0",
	      st.depth, st.backlog, st.ring_used);
	ipcq_disconnect(client);
	return failures ? 1 : 0;
}

/* ---- priority ---- */

/* The documented bound on inversion: messages of a lower priority that
 * may come before a message, those already in the window. */
static uint64_t inversion_bound(const ipcq_geometry *g)
{
	return (uint64_t)g->max_msgs * g->prefetch;
}

/* A backlog of low-priority messages, then one of a higher priority: it
 * comes within the first bound + 1 messages. */
static void test_high_priority_overtakes_backlog(ipcq_queue *q, const ipcq_geometry *g)
{
	const uint64_t bound = inversion_bound(g);
	const uint64_t backlog = bound * 3 > 500 ? bound * 3 : 500;
	struct checker ck;
	uint64_t sent[6] = { 0 }, got;
	unsigned char buf[64];
	uint64_t position = 0;

	checker_init(&ck, "prio 5 after a prio-1 backlog", 6, g->max_payload);
	sent[1] = send_run(q, ck.what, 1, 0, backlog, 64, 1, 0);
	sent[5] = send_run(q, ck.what, 5, 0, 1, 64, 5, 0);
	for (got = 0; got < sent[1] + sent[5]; got++) {
		unsigned prio = 0;
		ssize_t n = ipcq_recv(q, buf, sizeof(buf), &prio, RECV_TIMEOUT_MS);

		if (n < 0) {
			CHECK(false, "%s: ipcq_recv after %" PRIu64 ": %s", ck.what, got, ipcq_strerror((int)n));
			break;
		}
		check_msg(&ck, buf, (size_t)n, prio);
		if (prio == 5)
			position = got + 1;
	}
	CHECK(position >= 1 && position <= bound + 1,
	      "%s: the prio-5 message came as message %" PRIu64 " of %" PRIu64
	      " (0: never), the bound is max_msgs %u * prefetch %u + 1 = %" PRIu64,
	      ck.what, position, got, g->max_msgs, g->prefetch, bound + 1);
	check_all_came(&ck, sent);
	check_empty(q, ck.what);
	fprintf(stderr, "deep: priority: the prio-5 message came as number %" PRIu64 " behind a backlog of %" PRIu64
		" (bound %" PRIu64 ")\n", position, backlog, bound + 1);
	checker_deinit(&ck);
}

/* Several backlogs of up to 8 distinct priorities, sent in a shuffled
 * order, some through the ring: FIFO within each priority, and no message
 * comes after more than the bound of lower-priority messages. */
static void test_priorities_interleaved(ipcq_queue *q, const ipcq_geometry *g)
{
	static const unsigned prios[8] = { 1, 3, 2, 7, 0, 6, 4, 5 };
	unsigned char *buf = xmalloc(g->msg_size * 3);
	struct checker ck;
	uint64_t sent[8] = { 0 }, total = 0, got;

	checker_init(&ck, "8 priorities interleaved", 8, g->max_payload);
	ck.inversion_bound = inversion_bound(g);
	for (unsigned round = 0; round < 4; round++) {
		for (unsigned i = 0; i < ARRAY_SIZE(prios); i++) {
			unsigned p = prios[(i + round * 3) % 8];
			unsigned count = 40 + 13 * ((p + round) % 5);

			for (unsigned k = 0; k < count; k++) {
				size_t len = (k % 9 == 4) ? g->msg_size * 3 : 40;
				int r;

				build_msg(buf, p, sent[p], len, p);
				r = ipcq_send(q, buf, len, p, 0);
				if (r < 0) {
					CHECK(false, "%s: ipcq_send at prio %u: %s", ck.what, p, ipcq_strerror(r));
					goto receive;
				}
				sent[p]++;
				total++;
			}
		}
	}
receive:
	got = receive_checked(q, &ck, total, 0, RECV_TIMEOUT_MS);
	CHECK(got == total, "%s: received %" PRIu64 " of %" PRIu64, ck.what, got, total);
	check_all_came(&ck, sent);
	check_empty(q, ck.what);
	fprintf(stderr, "deep: priority: %" PRIu64 " messages of 8 priorities, worst inversion %" PRIu64
		" (bound %" PRIu64 ")\n", total, ck.worst_inversion, ck.inversion_bound);
	checker_deinit(&ck);
	free(buf);
}

/* More distinct priorities than the backlog keeps apart: everything is
 * still delivered, with its priority, FIFO within each priority. */
static void test_many_priorities_deliver_everything(ipcq_queue *q, const ipcq_geometry *g)
{
	enum { NPRIO = 20, PER_PRIO = 60 };
	unsigned char buf[64];
	struct checker ck;
	uint64_t sent[NPRIO] = { 0 }, total = 0, got;

	checker_init(&ck, "20 distinct priorities", NPRIO, g->max_payload);
	for (unsigned k = 0; k < PER_PRIO; k++) {
		for (unsigned i = 0; i < NPRIO; i++) {
			unsigned p = (i * 7 + k) % NPRIO;
			int r;

			build_msg(buf, p, sent[p], sizeof(buf), p);
			r = ipcq_send(q, buf, sizeof(buf), p, 0);
			if (r < 0) {
				CHECK(false, "%s: ipcq_send at prio %u: %s", ck.what, p, ipcq_strerror(r));
				goto receive;
			}
			sent[p]++;
			total++;
		}
	}
receive:
	got = receive_checked(q, &ck, total, 0, RECV_TIMEOUT_MS);
	CHECK(got == total, "%s: received %" PRIu64 " of %" PRIu64, ck.what, got, total);
	check_all_came(&ck, sent);
	check_empty(q, ck.what);
	checker_deinit(&ck);
}

static int run_priority(const char *name)
{
	ipcq_queue *q;
	ipcq_geometry g;

	connect_client();
	q = open_queue(name, IPCQ_SEND | IPCQ_RECV);
	g = geometry_of(q);
	if (g.prefetch == 0 || g.max_msgs == 0) {
		fprintf(stderr, "deep: FAIL: priority: geometry says max_msgs %u, prefetch %u\n", g.max_msgs,
			g.prefetch);
		return 1;
	}
	test_high_priority_overtakes_backlog(q, &g);
	test_priorities_interleaved(q, &g);
	test_many_priorities_deliver_everything(q, &g);
	close_queue(q, "priority");
	ipcq_disconnect(client);
	return failures ? 1 : 0;
}

/* ---- messages a receiver holds ---- */

/* depth must stay n for ms milliseconds (the daemon's sweeps included) */
static void check_depth_stays(const char *name, uint64_t n, unsigned ms, const char *what)
{
	for (unsigned t = 0; t <= ms; t += 100) {
		ipcq_stats st = stat_of(name);

		if (st.depth != n) {
			CHECK(false, "held: %s, after %u ms: depth %" PRIu64 " (window %u, backlog %" PRIu64
			      "), %" PRIu64 " messages wait", what, t, st.depth, st.window, st.backlog, n);
			return;
		}
		sleep_ms(100);
	}
}

/* A receiver that took part of a batch holds the rest: they still count
 * in depth while it holds them, and after it closes its handle, with
 * nothing else queued. */
static void test_held_messages_count_in_depth(const char *name, ipcq_queue *q, const ipcq_geometry *g)
{
	/* a window's worth inline, the rest one batch in the backlog */
	const uint64_t n = 2 * (uint64_t)g->max_msgs, first = g->max_msgs + 1;
	struct checker ck;
	ipcq_queue *rq = open_queue(name, IPCQ_RECV);
	uint64_t sent[1], got;

	checker_init(&ck, "held: depth", 1, g->max_payload);
	sent[0] = send_run(q, ck.what, 0, 0, n, 64, 0, 0);
	got = receive_checked(rq, &ck, first, 0, RECV_TIMEOUT_MS);
	check_depth_stays(name, sent[0] - got, 2500, "a receiver holds the rest of a batch");
	close_queue(rq, "held");
	check_depth_stays(name, sent[0] - got, 2500, "the receiver closed its handle");
	rq = open_queue(name, IPCQ_RECV);
	got += receive_checked(rq, &ck, sent[0] - got, 0, RECV_TIMEOUT_MS);
	check_all_came(&ck, sent);
	check_empty(rq, ck.what);
	close_queue(rq, "held");
	checker_deinit(&ck);
}

/* Batches in the window, a receiver takes one message and closes: the
 * rest of its batch comes next, before the batches behind it. */
static void test_given_back_messages_come_first(const char *name, ipcq_queue *q, const ipcq_geometry *g)
{
	enum { N = 100 };
	unsigned char *mem = xmalloc(N * 64);
	struct iovec iov[N];
	struct checker ck;
	ipcq_queue *rq = open_queue(name, IPCQ_RECV);
	uint64_t sent[1] = { 0 }, got;
	int r;

	checker_init(&ck, "held: given back", 1, g->max_payload);
	for (unsigned i = 0; i < N; i++)
		iov[i] = (struct iovec){ .iov_base = mem + i * 64, .iov_len = build_msg(mem + i * 64, 0, i, 64, 0) };
	r = ipcq_send_batch(q, iov, N, 0, 0);
	CHECK(r == N, "%s: ipcq_send_batch of %d returned %d", ck.what, N, r);
	sent[0] = r > 0 ? (uint64_t)r : 0;
	got = receive_checked(rq, &ck, 1, 0, RECV_TIMEOUT_MS);
	close_queue(rq, "held");
	rq = open_queue(name, IPCQ_RECV);
	got += receive_checked(rq, &ck, sent[0] - got, 0, RECV_TIMEOUT_MS);
	check_all_came(&ck, sent);
	check_empty(rq, ck.what);
	close_queue(rq, "held");
	checker_deinit(&ck);
	free(mem);
}

static int run_held(const char *name)
{
	ipcq_queue *q;
	ipcq_geometry g;

	connect_client();
	q = open_queue(name, IPCQ_SEND);
	g = geometry_of(q);
	test_held_messages_count_in_depth(name, q, &g);
	test_given_back_messages_come_first(name, q, &g);
	close_queue(q, "held");
	ipcq_disconnect(client);
	return failures ? 1 : 0;
}

/* ---- max_depth ---- */

struct delayed_recv {
	ipcq_queue *q;
	unsigned delay_ms, count;
	unsigned got;
	size_t cap;
};

/* After delay_ms, receive count messages on another handle. */
static void *delayed_receiver(void *arg)
{
	struct delayed_recv *d = arg;
	unsigned char *buf = xmalloc(d->cap);

	sleep_ms(d->delay_ms);
	for (d->got = 0; d->got < d->count; d->got++) {
		ssize_t n = ipcq_recv(d->q, buf, d->cap, NULL, RECV_TIMEOUT_MS);

		if (n < 0) {
			fprintf(stderr, "deep: FAIL: delayed receiver: ipcq_recv %u: %s\n", d->got,
				ipcq_strerror((int)n));
			break;
		}
	}
	free(buf);
	return NULL;
}

static int start_delayed_receiver(pthread_t *t, struct delayed_recv *d)
{
	int r = pthread_create(t, NULL, delayed_receiver, d);

	if (r)
		fprintf(stderr, "deep: pthread_create: %s\n", strerror(r));
	return -r;
}

/* Fill to max_depth with inline and ring messages; the next send gets
 * -EAGAIN without waiting, -ETIMEDOUT after its timeout, and succeeds
 * once a receiver took one. */
static void test_max_depth_blocks_sends(const char *name, ipcq_queue *q, ipcq_queue *rq, const ipcq_geometry *g)
{
	const uint64_t depth = g->max_depth;
	struct checker ck;
	struct delayed_recv d = { .q = rq, .delay_ms = 300, .count = 1, .cap = g->max_payload };
	pthread_t t;
	uint64_t sent[1], t0, got;
	unsigned char buf[64];
	double waited;
	int r;

	checker_init(&ck, "max_depth", 1, g->max_payload);
	/* half inline, half through the ring: max_depth counts messages */
	sent[0] = send_run(q, ck.what, 0, 0, depth / 2, 64, 0, 0);
	sent[0] += send_run(q, ck.what, 0, sent[0], depth - depth / 2, g->msg_size * 2, 0, 0);
	CHECK(sent[0] == depth, "max_depth: %" PRIu64 " sends with timeout 0 into an empty queue of max_depth %"
	      PRIu64 " made %" PRIu64, depth, depth, sent[0]);
	CHECK(stat_of(name).depth == depth, "max_depth: depth %" PRIu64 " after %" PRIu64 " sends",
	      stat_of(name).depth, depth);

	build_msg(buf, 0, sent[0], sizeof(buf), 0);
	t0 = now_ns();
	r = ipcq_send(q, buf, sizeof(buf), 0, 0);
	CHECK(r == -EAGAIN, "max_depth: send %" PRIu64 " with timeout 0 returned %d (%s), expected -EAGAIN",
	      depth + 1, r, ipcq_strerror(r));
	CHECK(since_s(t0) < 1.0, "max_depth: send with timeout 0 took %.2f s", since_s(t0));
	t0 = now_ns();
	r = ipcq_send(q, buf, sizeof(buf), 0, 300);
	waited = since_s(t0);
	CHECK(r == -ETIMEDOUT, "max_depth: send %" PRIu64 " with timeout 300 ms returned %d (%s), expected -ETIMEDOUT",
	      depth + 1, r, ipcq_strerror(r));
	CHECK(waited >= 0.28, "max_depth: send with timeout 300 ms gave up after %.3f s", waited);
	CHECK(stat_of(name).depth == depth, "max_depth: depth %" PRIu64 " after the refused sends",
	      stat_of(name).depth);

	if (start_delayed_receiver(&t, &d) == 0) {
		t0 = now_ns();
		r = ipcq_send(q, buf, sizeof(buf), 0, RECV_TIMEOUT_MS);
		waited = since_s(t0);
		pthread_join(t, NULL);
		CHECK(r == 0, "max_depth: a send waiting for room returned %d (%s) after a receiver took one", r,
		      ipcq_strerror(r));
		CHECK(d.got == 1, "max_depth: the receiver thread got %u", d.got);
		CHECK(waited >= 0.2, "max_depth: a send into a full queue returned after %.3f s, before the "
		      "receiver took a message (300 ms)", waited);
		if (r == 0)
			sent[0]++;
	}
	/* the delayed receiver took seq 0 */
	ck.next[0] = 1;
	got = receive_checked(rq, &ck, sent[0] - 1, 0, RECV_TIMEOUT_MS);
	CHECK(got == sent[0] - 1, "max_depth: drained %" PRIu64 " of %" PRIu64, got, sent[0] - 1);
	check_all_came(&ck, sent);
	check_empty(rq, ck.what);
	checker_deinit(&ck);
}

/* A batch larger than max_depth into an empty queue sends a prefix of
 * max_depth messages; with the queue full, a batch gets -EAGAIN. */
static void test_max_depth_cuts_a_batch(const char *name, ipcq_queue *q, ipcq_queue *rq, const ipcq_geometry *g)
{
	const unsigned n = (unsigned)g->max_depth + (unsigned)g->max_depth / 2;
	unsigned char *bufs = xmalloc((size_t)n * 64);
	struct iovec *iov = xmalloc(n * sizeof(*iov));
	struct checker ck;
	uint64_t sent[1], got, t0;
	int r;

	checker_init(&ck, "max_depth batch", 1, g->max_payload);
	for (unsigned i = 0; i < n; i++)
		iov[i] = (struct iovec){ .iov_base = bufs + (size_t)i * 64,
					 .iov_len = build_msg(bufs + (size_t)i * 64, 0, i, 64, 2) };
	r = ipcq_send_batch(q, iov, n, 2, 0);
	CHECK(r == (int)g->max_depth, "max_depth: ipcq_send_batch of %u into an empty queue of max_depth %" PRIu64
	      " with timeout 0 returned %d (%s), expected %" PRIu64, n, g->max_depth, r,
	      r < 0 ? ipcq_strerror(r) : "a count", g->max_depth);
	sent[0] = r > 0 ? (uint64_t)r : 0;
	CHECK(stat_of(name).depth == sent[0], "max_depth: depth %" PRIu64 " after a batch that sent %" PRIu64,
	      stat_of(name).depth, sent[0]);
	r = ipcq_send_batch(q, iov + sent[0], n - (unsigned)sent[0], 2, 0);
	CHECK(r == -EAGAIN, "max_depth: ipcq_send_batch into the full queue with timeout 0 returned %d (%s), "
	      "expected -EAGAIN", r, ipcq_strerror(r));
	t0 = now_ns();
	r = ipcq_send_batch(q, iov + sent[0], n - (unsigned)sent[0], 2, 200);
	CHECK(r == -ETIMEDOUT && since_s(t0) >= 0.18, "max_depth: ipcq_send_batch into the full queue with timeout "
	      "200 ms returned %d (%s) after %.3f s, expected -ETIMEDOUT", r, ipcq_strerror(r), since_s(t0));
	got = receive_checked(rq, &ck, sent[0], 0, RECV_TIMEOUT_MS);
	CHECK(got == sent[0], "max_depth batch: drained %" PRIu64 " of %" PRIu64, got, sent[0]);
	check_all_came(&ck, sent);
	check_empty(rq, ck.what);
	checker_deinit(&ck);
	free(iov);
	free(bufs);
}

static int run_maxdepth(const char *name)
{
	ipcq_queue *q, *rq;
	ipcq_geometry g;
	ipcq_stats st;

	connect_client();
	q = open_queue(name, IPCQ_SEND);
	rq = open_queue(name, IPCQ_RECV);
	g = geometry_of(q);
	if (g.max_depth == 0 || g.max_depth > 10000) {
		fprintf(stderr, "deep: FAIL: maxdepth: the queue's max_depth is %" PRIu64 ", not a small limit\n",
			g.max_depth);
		return 1;
	}
	test_max_depth_blocks_sends(name, q, rq, &g);
	test_max_depth_cuts_a_batch(name, q, rq, &g);
	close_queue(q, "maxdepth");
	close_queue(rq, "maxdepth");
	st = stat_of(name);
	CHECK(st.depth == 0 && st.backlog == 0 && st.ring_used == 0,
	      "maxdepth: afterwards depth %" PRIu64 ", backlog %" PRIu64 ", ring_used %" PRIu64, st.depth, st.backlog,
	      st.ring_used);
	ipcq_disconnect(client);
	return failures ? 1 : 0;
}

/* ---- the batch API ---- */

/* Payload i of a batch test: len bytes from seed. */
static void fill_iov(struct iovec *iov, unsigned char *p, size_t len, uint64_t seed)
{
	pattern_fill(p, len, seed);
	*iov = (struct iovec){ .iov_base = p, .iov_len = len };
}

static bool same_payload(const ipcq_msg *m, const struct iovec *want)
{
	return m->len == want->iov_len && (m->len == 0 || memcmp(m->data, want->iov_base, m->len) == 0);
}

/* Receive exactly n messages with ipcq_recv_batch (up to per_call at a
 * time) and compare them with want[0..n) in order; release order: 0 in
 * order, 1 reversed, 2 odd ones first then even ones. */
static unsigned recv_batch_compare(ipcq_queue *q, const struct iovec *want, unsigned n, unsigned per_call,
				   int release_order, const char *what)
{
	ipcq_msg *msgs = xmalloc(per_call * sizeof(*msgs));
	unsigned got = 0;

	while (got < n) {
		int r = ipcq_recv_batch(q, msgs, per_call, RECV_TIMEOUT_MS);

		if (r < 0) {
			CHECK(false, "%s: ipcq_recv_batch after %u of %u: %s", what, got, n, ipcq_strerror(r));
			break;
		}
		if (r < 1 || (unsigned)r > per_call || got + (unsigned)r > n) {
			CHECK(false, "%s: ipcq_recv_batch of %u returned %d with %u of %u received", what, per_call, r,
			      got, n);
			break;
		}
		for (int i = 0; i < r; i++)
			CHECK(same_payload(&msgs[i], &want[got + i]),
			      "%s: message %u: %zu bytes%s, sent %zu", what, got + i, msgs[i].len,
			      msgs[i].len == want[got + i].iov_len ? " of other content" : "", want[got + i].iov_len);
		for (int k = 0; k < r; k++) {
			int i = release_order == 0 ? k : release_order == 1 ? r - 1 - k :
				(k < r / 2 ? 2 * k + 1 : 2 * (k - r / 2));
			int rr = ipcq_release(q, &msgs[i]);

			CHECK(rr == 0, "%s: ipcq_release of message %d of a batch of %d: %s", what, i, r,
			      ipcq_strerror(rr));
		}
		got += (unsigned)r;
	}
	free(msgs);
	return got;
}

/* The calls that are wrong whatever the queue holds. */
static void test_batch_errors(const char *name, ipcq_queue *q, const ipcq_geometry *g)
{
	unsigned char small[8] = "ok";
	unsigned char *big = xmalloc(g->max_payload + 1);
	struct iovec iov[4], recvd[2];
	ipcq_msg msgs[4];
	ipcq_queue *rq = open_queue(name, IPCQ_RECV), *sq = open_queue(name, IPCQ_SEND);
	uint64_t t0;
	int r;

	memset(big, 'x', g->max_payload + 1);
	iov[0] = (struct iovec){ .iov_base = small, .iov_len = 2 };
	iov[1] = (struct iovec){ .iov_base = small, .iov_len = 1 };
	iov[2] = (struct iovec){ .iov_base = big, .iov_len = g->max_payload + 1 };
	iov[3] = (struct iovec){ .iov_base = small, .iov_len = 2 };

	r = ipcq_send_batch(q, iov, 0, 0, 0);
	CHECK(r == -EINVAL, "ipcq_send_batch of 0 messages returned %d (%s), expected -EINVAL", r, ipcq_strerror(r));
	r = ipcq_send_batch(q, NULL, 3, 0, 0);
	CHECK(r == -EINVAL, "ipcq_send_batch with msgs NULL returned %d (%s), expected -EINVAL", r, ipcq_strerror(r));
	r = ipcq_send_batch(q, iov + 2, 2, 0, 0);
	CHECK(r == -EMSGSIZE, "ipcq_send_batch whose first message is max_payload+1 bytes returned %d (%s), "
	      "expected -EMSGSIZE", r, ipcq_strerror(r));
	CHECK(stat_of(name).depth == 0, "after a refused batch the depth is %" PRIu64, stat_of(name).depth);
	r = ipcq_send_batch(q, iov, 4, 0, 0);
	CHECK(r == 2, "ipcq_send_batch whose third message is max_payload+1 bytes returned %d (%s), expected 2 "
	      "(the prefix)", r, r < 0 ? ipcq_strerror(r) : "a count");
	if (r == 2) {
		recvd[0] = iov[0];
		recvd[1] = iov[1];
		CHECK(recv_batch_compare(q, recvd, 2, 4, 0, "the prefix before an oversized message") == 2,
		      "the prefix before an oversized message did not come back");
	}
	r = ipcq_send_batch(rq, iov, 2, 0, 0);
	CHECK(r == -EBADF, "ipcq_send_batch on a receive-only handle returned %d (%s), expected -EBADF", r,
	      ipcq_strerror(r));
	r = ipcq_recv_batch(sq, msgs, 4, 0);
	CHECK(r == -EBADF, "ipcq_recv_batch on a send-only handle returned %d (%s), expected -EBADF", r,
	      ipcq_strerror(r));
	{
		unsigned char pbuf[64];

		r = ipcq_peek(sq, msgs, 4, pbuf, sizeof(pbuf));
		CHECK(r == -EBADF, "ipcq_peek on a send-only handle returned %d (%s), expected -EBADF", r,
		      ipcq_strerror(r));
		r = ipcq_peek(q, NULL, 4, pbuf, sizeof(pbuf));
		CHECK(r == -EINVAL, "ipcq_peek with msgs NULL returned %d (%s), expected -EINVAL", r, ipcq_strerror(r));
		r = ipcq_peek(q, msgs, 0, pbuf, sizeof(pbuf));
		CHECK(r == 0, "ipcq_peek of 0 messages returned %d (%s), expected 0", r, r < 0 ? ipcq_strerror(r) : "");
	}
	r = ipcq_recv_batch(q, msgs, 0, 0);
	CHECK(r == -EINVAL, "ipcq_recv_batch of 0 messages returned %d (%s), expected -EINVAL", r, ipcq_strerror(r));
	r = ipcq_recv_batch(q, NULL, 4, 0);
	CHECK(r == -EINVAL, "ipcq_recv_batch with msgs NULL returned %d (%s), expected -EINVAL", r, ipcq_strerror(r));
	CHECK(stat_of(name).depth == 0, "the receive-only handle's send made the depth %" PRIu64, stat_of(name).depth);

	r = ipcq_recv_batch(q, msgs, 4, 0);
	CHECK(r == -EAGAIN, "ipcq_recv_batch on an empty queue with timeout 0 returned %d (%s), expected -EAGAIN", r,
	      r < 0 ? ipcq_strerror(r) : "a count");
	t0 = now_ns();
	r = ipcq_recv_batch(q, msgs, 4, 200);
	CHECK(r == -ETIMEDOUT, "ipcq_recv_batch on an empty queue with timeout 200 ms returned %d (%s), expected "
	      "-ETIMEDOUT", r, r < 0 ? ipcq_strerror(r) : "a count");
	CHECK(since_s(t0) >= 0.18, "ipcq_recv_batch with timeout 200 ms gave up after %.3f s", since_s(t0));
	close_queue(rq, "batch errors");
	close_queue(sq, "batch errors");
	free(big);
}

/* A batch of mixed sizes, inline and through the ring, bigger than the
 * window: received in batches of every size, released in every order. */
static void test_batch_mixed_sizes(ipcq_queue *q, const ipcq_geometry *g)
{
	const size_t inl = g->msg_size;
	const size_t pick[] = { 1, 0, inl - 8, 64, inl, inl + 1, 3, 5000, 40, 70000, inl - 9, 2 };
	enum { N = 300 };
	struct iovec iov[N];
	unsigned char *mem;
	size_t total = 0, off = 0;
	static const unsigned per_call[] = { 1, 3, 16, 64 };

	for (unsigned i = 0; i < N; i++)
		total += pick[i % ARRAY_SIZE(pick)];
	mem = xmalloc(total);
	for (unsigned i = 0; i < N; i++) {
		size_t len = pick[i % ARRAY_SIZE(pick)];

		fill_iov(&iov[i], mem + off, len, 5000 + i);
		off += len;
	}
	for (unsigned v = 0; v < ARRAY_SIZE(per_call); v++) {
		char what[96];
		int r;
		unsigned got;

		snprintf(what, sizeof(what), "a mixed batch of %u received %u at a time, release order %u", N,
			 per_call[v], v % 3);
		r = ipcq_send_batch(q, iov, N, 0, RECV_TIMEOUT_MS);
		CHECK(r == N, "%s: ipcq_send_batch returned %d (%s)", what, r, r < 0 ? ipcq_strerror(r) : "a count");
		if (r <= 0)
			continue;
		got = recv_batch_compare(q, iov, (unsigned)r, per_call[v], (int)(v % 3), what);
		CHECK(got == (unsigned)r, "%s: received %u of %d", what, got, r);
		check_empty(q, what);
	}
	free(mem);
}

/* Two batches held at once, released across each other: the first
 * batch's messages stay intact while the second is received. */
static void test_batches_held_together(ipcq_queue *q)
{
	enum { N = 40 };
	unsigned char mem[N][100];
	struct iovec iov[N];
	ipcq_msg a[8], b[8];
	int ra, rb, r;

	for (unsigned i = 0; i < N; i++)
		fill_iov(&iov[i], mem[i], 20 + i * 2, 7000 + i);
	r = ipcq_send_batch(q, iov, N, 0, RECV_TIMEOUT_MS);
	CHECK(r == N, "two batches held: ipcq_send_batch returned %d", r);
	if (r != N)
		return;
	ra = ipcq_recv_batch(q, a, 8, RECV_TIMEOUT_MS);
	rb = ipcq_recv_batch(q, b, 8, RECV_TIMEOUT_MS);
	CHECK(ra >= 1 && rb >= 1, "two batches held: ipcq_recv_batch returned %d, then %d", ra, rb);
	if (ra < 1 || rb < 1)
		return;
	for (int i = 0; i < ra; i++)
		CHECK(same_payload(&a[i], &iov[i]), "two batches held: message %d of the first batch differs", i);
	for (int i = 0; i < rb; i++)
		CHECK(same_payload(&b[i], &iov[ra + i]), "two batches held: message %d of the second batch differs", i);
	/* interleaved: the second batch's even ones, the first's in reverse, the rest */
	for (int i = 0; i < rb; i += 2)
		CHECK(ipcq_release(q, &b[i]) == 0, "two batches held: release of b[%d]", i);
	for (int i = 0; i < ra; i++)
		CHECK(same_payload(&a[i], &iov[i]), "two batches held: message %d of the first batch changed after "
		      "releases of the second", i);
	for (int i = ra - 1; i >= 0; i--)
		CHECK(ipcq_release(q, &a[i]) == 0, "two batches held: release of a[%d]", i);
	for (int i = 1; i < rb; i += 2) {
		CHECK(same_payload(&b[i], &iov[ra + i]), "two batches held: message %d of the second batch changed "
		      "after releases of the first", i);
		CHECK(ipcq_release(q, &b[i]) == 0, "two batches held: release of b[%d]", i);
	}
	r = (int)recv_batch_compare(q, iov + ra + rb, N - (unsigned)(ra + rb), 5, 1, "two batches held: the rest");
	CHECK(r == N - ra - rb, "two batches held: %d of the rest came back", r);
	check_empty(q, "two batches held");
}

/* recv_batch returns what is there, up to n, without waiting for more. */
static void test_recv_batch_returns_what_is_there(ipcq_queue *q)
{
	unsigned char mem[3][8];
	struct iovec iov[3];
	ipcq_msg m[16];
	unsigned got = 0;
	uint64_t t0 = now_ns();
	int r;

	for (unsigned i = 0; i < 3; i++)
		fill_iov(&iov[i], mem[i], sizeof(mem[i]), 8000 + i);
	r = ipcq_send_batch(q, iov, 3, 0, 0);
	CHECK(r == 3, "3 waiting: ipcq_send_batch returned %d", r);
	while (got < 3) {
		r = ipcq_recv_batch(q, m, 16, 2000);
		if (r < 1 || got + (unsigned)r > 3) {
			CHECK(false, "3 waiting: ipcq_recv_batch of 16 returned %d after %u", r, got);
			break;
		}
		for (int i = 0; i < r; i++) {
			CHECK(same_payload(&m[i], &iov[got + (unsigned)i]), "3 waiting: message %u differs",
			      got + (unsigned)i);
			ipcq_release(q, &m[i]);
		}
		got += (unsigned)r;
	}
	CHECK(since_s(t0) < 1.5, "3 waiting: receiving them in batches of 16 with timeout 2 s took %.2f s",
	      since_s(t0));
	check_empty(q, "3 waiting");
}

/* With a small ring, a batch of ring-size messages sends the prefix that
 * fits; with the ring full, a batch gets -EAGAIN (timeout 0) or
 * -ETIMEDOUT; a batch that may wait completes as a receiver drains. */
static void test_batch_partial_on_full_ring(const char *name)
{
	enum { N = 10 };
	ipcq_queue *q = open_queue(name, IPCQ_SEND), *rq = open_queue(name, IPCQ_RECV);
	ipcq_geometry g = geometry_of(q);
	const size_t len = g.ring_size / 6; /* some fit, not all */
	unsigned char *mem = xmalloc(len * N);
	struct iovec iov[N];
	struct delayed_recv d = { .q = rq, .delay_ms = 200, .count = N, .cap = g.max_payload };
	pthread_t t;
	uint64_t t0;
	unsigned got;
	ipcq_stats st;
	int r, k;

	if (len <= g.msg_size || len > g.max_payload) {
		fprintf(stderr, "deep: FAIL: full ring: geometry (ring %" PRIu64 ", max_payload %" PRIu64
			") does not allow this test\n", g.ring_size, g.max_payload);
		failures++;
		goto out;
	}
	for (unsigned i = 0; i < N; i++)
		fill_iov(&iov[i], mem + i * len, len, 9000 + i);

	k = ipcq_send_batch(q, iov, N, 0, 0);
	CHECK(k >= 1 && k < N, "full ring: ipcq_send_batch of %d x %zu bytes into a %" PRIu64 "-byte ring with "
	      "timeout 0 returned %d (%s), expected a prefix", N, len, g.ring_size, k,
	      k < 0 ? ipcq_strerror(k) : "a count");
	st = stat_of(name);
	CHECK(k < 1 || st.depth == (uint64_t)k, "full ring: depth %" PRIu64 " after a prefix of %d", st.depth, k);
	if (k >= 1 && k < N) {
		r = ipcq_send_batch(q, iov + k, N - (unsigned)k, 0, 0);
		CHECK(r == -EAGAIN, "full ring: the rest with timeout 0 returned %d (%s), expected -EAGAIN", r,
		      r < 0 ? ipcq_strerror(r) : "a count");
		t0 = now_ns();
		r = ipcq_send_batch(q, iov + k, N - (unsigned)k, 0, 200);
		CHECK(r == -ETIMEDOUT && since_s(t0) >= 0.18, "full ring: the rest with timeout 200 ms returned %d (%s) "
		      "after %.3f s, expected -ETIMEDOUT", r, r < 0 ? ipcq_strerror(r) : "a count", since_s(t0));
		got = recv_batch_compare(rq, iov, (unsigned)k, 4, 1, "full ring: the prefix");
		CHECK(got == (unsigned)k, "full ring: %u of the prefix of %d came back", got, k);
	}
	check_empty(rq, "full ring, prefix drained");
	st = stat_of(name);
	CHECK(st.ring_used == 0, "full ring: ring_used %" PRIu64 " after the prefix was received", st.ring_used);

	/* a batch that may wait completes as the receiver drains the ring */
	if (start_delayed_receiver(&t, &d) == 0) {
		t0 = now_ns();
		r = ipcq_send_batch(q, iov, N, 0, RECV_TIMEOUT_MS);
		pthread_join(t, NULL);
		CHECK(r == N, "full ring: ipcq_send_batch of %d with a receiver draining returned %d (%s)", N, r,
		      r < 0 ? ipcq_strerror(r) : "a count");
		CHECK(d.got == (unsigned)(r > 0 ? r : 0), "full ring: the receiver got %u of %d", d.got, r);
	}
	check_empty(rq, "full ring, after the waiting batch");
	st = stat_of(name);
	CHECK(st.depth == 0 && st.ring_used == 0, "full ring: afterwards depth %" PRIu64 ", ring_used %" PRIu64,
	      st.depth, st.ring_used);
out:
	close_queue(q, "full ring");
	close_queue(rq, "full ring");
	free(mem);
}

static int run_batch(const char *name, const char *small_name)
{
	ipcq_queue *q;
	ipcq_geometry g;
	ipcq_stats st;

	connect_client();
	q = open_queue(name, IPCQ_SEND | IPCQ_RECV);
	g = geometry_of(q);
	test_batch_errors(name, q, &g);
	test_batch_mixed_sizes(q, &g);
	test_batches_held_together(q);
	test_recv_batch_returns_what_is_there(q);
	close_queue(q, "batch");
	st = stat_of(name);
	CHECK(st.depth == 0 && st.backlog == 0 && st.ring_used == 0,
	      "batch: afterwards depth %" PRIu64 ", backlog %" PRIu64 ", ring_used %" PRIu64, st.depth, st.backlog,
	      st.ring_used);
	test_batch_partial_on_full_ring(small_name);
	ipcq_disconnect(client);
	return failures ? 1 : 0;
}

/* ---- fairness ---- */

struct fair_shared {
	_Atomic uint32_t ready;
	_Atomic uint32_t go;
	_Atomic uint64_t t0_ns;
	_Atomic uint32_t errors;
	struct {
		_Atomic uint32_t jobs;
		_Atomic uint64_t last_done_ns;
		_Atomic uint64_t busy_ns; /* time its jobs really took */
	} worker[64];
	_Atomic uint32_t done[]; /* [job], jobs numbered from 1 */
};

/* One worker: one message at a time with ipcq_recv, job_ms of work each;
 * stops when the queue stays empty for idle_ms. */
static int fair_worker(const char *name, struct fair_shared *sh, unsigned id, unsigned jobs, unsigned job_ms)
{
	const int idle_ms = 500;
	ipcq_queue *q;
	char buf[64];

	connect_client();
	q = open_queue(name, IPCQ_RECV);
	atomic_fetch_add(&sh->ready, 1);
	while (!atomic_load(&sh->go))
		usleep(200);
	for (;;) {
		ssize_t n = ipcq_recv(q, buf, sizeof(buf) - 1, NULL, idle_ms);
		unsigned long job;

		if (n == -ETIMEDOUT)
			break;
		if (n < 0) {
			fprintf(stderr, "deep: FAIL: worker %u: ipcq_recv: %s\n", id, ipcq_strerror((int)n));
			atomic_fetch_add(&sh->errors, 1);
			break;
		}
		buf[n] = '\0';
		job = strtoul(buf, NULL, 10);
		if (job < 1 || job > jobs) {
			fprintf(stderr, "deep: FAIL: worker %u: job '%s' out of range\n", id, buf);
			atomic_fetch_add(&sh->errors, 1);
			continue;
		}
		atomic_fetch_add(&sh->done[job], 1);
		{
			uint64_t t = now_ns();

			sleep_ms(job_ms);
			atomic_fetch_add(&sh->worker[id].busy_ns, now_ns() - t);
		}
		atomic_fetch_add(&sh->worker[id].jobs, 1);
		atomic_store(&sh->worker[id].last_done_ns, now_ns());
	}
	close_queue(q, "worker");
	ipcq_disconnect(client);
	return 0;
}

static int run_fairness(const char *name, unsigned workers, unsigned jobs, unsigned job_ms, unsigned min_jobs,
			double max_ratio, bool produce)
{
	size_t size = sizeof(struct fair_shared) + (jobs + 1) * sizeof(_Atomic uint32_t);
	struct fair_shared *sh;
	pid_t pids[64];
	double ideal = (double)jobs * job_ms / 1000.0 / workers, wall;
	uint64_t last = 0;

	if (workers == 0 || workers > ARRAY_SIZE(pids) || jobs == 0) {
		fprintf(stderr, "deep: fairness: 1 to %zu workers, and some jobs\n", ARRAY_SIZE(pids));
		return 2;
	}
	sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("deep: mmap");
		return 1;
	}
	if (produce) {
		ipcq_queue *q;

		connect_client();
		q = open_queue(name, IPCQ_SEND);
		for (unsigned j = 1; j <= jobs; j++) {
			char buf[16];
			int len = snprintf(buf, sizeof(buf), "%u", j);
			int r = ipcq_send(q, buf, (size_t)len, 0, 0);

			CHECK(r == 0, "fairness: queueing job %u with timeout 0: %s", j, ipcq_strerror(r));
		}
		close_queue(q, "fairness producer");
		ipcq_disconnect(client);
	}
	for (unsigned i = 0; i < workers; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			perror("deep: fork");
			return 1;
		}
		if (pids[i] == 0)
			_exit(fair_worker(name, sh, i, jobs, job_ms));
	}
	for (unsigned i = 0; atomic_load(&sh->ready) < workers; i++) {
		if (i > 20000) {
			fprintf(stderr, "deep: FAIL: fairness: the workers did not get ready in 20 s\n");
			for (unsigned w = 0; w < workers; w++)
				kill(pids[w], SIGKILL);
			return 1;
		}
		usleep(1000);
	}
	sh->t0_ns = now_ns();
	atomic_store(&sh->go, 1);
	for (unsigned i = 0; i < workers; i++) {
		int st;

		if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			CHECK(false, "fairness: worker %u did not exit cleanly", i);
	}
	CHECK(atomic_load(&sh->errors) == 0, "fairness: the workers saw %u errors", atomic_load(&sh->errors));
	for (unsigned j = 1; j <= jobs; j++)
		CHECK(atomic_load(&sh->done[j]) == 1, "fairness: job %u done %u times", j, atomic_load(&sh->done[j]));
	for (unsigned i = 0; i < workers; i++) {
		uint64_t t = atomic_load(&sh->worker[i].last_done_ns);

		if (t > last)
			last = t;
	}
	wall = last > sh->t0_ns ? (double)(last - sh->t0_ns) / 1e9 : 0;
	/* On a loaded machine a 10 ms job takes longer than 10 ms, for every
	 * worker alike; what fairness is about is how the jobs were shared.
	 * So the ideal is the jobs' nominal time, or the time they really
	 * took spread evenly over the workers, whichever is longer. */
	{
		uint64_t busy = 0;

		for (unsigned i = 0; i < workers; i++)
			busy += atomic_load(&sh->worker[i].busy_ns);
		if ((double)busy / 1e9 / workers > ideal)
			ideal = (double)busy / 1e9 / workers;
	}
	fprintf(stderr, "deep: fairness: %u jobs of %u ms by %u workers in %.3f s (ideal %.3f s, nominal %.3f s); "
	                "jobs per worker:",
		jobs, job_ms, workers, wall, ideal, (double)jobs * job_ms / 1000.0 / workers);
	for (unsigned i = 0; i < workers; i++)
		fprintf(stderr, " %u", atomic_load(&sh->worker[i].jobs));
	fputc('\n', stderr);
	for (unsigned i = 0; i < workers; i++)
		CHECK(atomic_load(&sh->worker[i].jobs) >= min_jobs, "fairness: worker %u did %u jobs, fewer than %u", i,
		      atomic_load(&sh->worker[i].jobs), min_jobs);
	CHECK(wall <= ideal * max_ratio, "fairness: all jobs took %.3f s, more than %.2f x the ideal %.3f s", wall,
	      max_ratio, ideal);
	munmap(sh, size);
	return failures ? 1 : 0;
}

/* ---- main ---- */

static int usage(void)
{
	fputs("usage: deep produce QUEUE N [-i ID] [-s SIZE | -m MAXSIZE] [-p PRIO] [-t MS] [-b K] [-d]\n"
	      "       deep consume QUEUE N [-S SENDERS] [-f FIRST] [-t MS] [-b K] [-k]\n"
	      "       deep roundtrip QUEUE\n"
	      "       deep priority QUEUE\n"
	      "       deep held QUEUE\n"
	      "       deep maxdepth QUEUE\n"
	      "       deep batch QUEUE SMALLQUEUE\n"
	      "       deep fairness QUEUE WORKERS JOBS JOB_MS MIN_JOBS MAX_RATIO [--produce]\n",
	      stderr);
	return 2;
}

int main(int argc, char **argv)
{
	const char *mode, *name;
	struct options o;

	if (argc < 3)
		return usage();
	mode = argv[1];
	name = argv[2];
	alarm(WATCHDOG_S);
	if (!strcmp(mode, "produce") || !strcmp(mode, "consume")) {
		uint64_t n;

		if (argc < 4)
			return usage();
		n = strtoull(argv[3], NULL, 0);
		optind = 4;
		if (parse_options(argc, argv, &o) < 0 || optind != argc)
			return usage();
		if (o.senders <= o.id)
			o.senders = o.id + 1;
		return mode[0] == 'p' ? run_produce(name, n, &o) : run_consume(name, n, &o);
	}
	if (!strcmp(mode, "roundtrip") && argc == 3)
		return run_roundtrip(name);
	if (!strcmp(mode, "priority") && argc == 3)
		return run_priority(name);
	if (!strcmp(mode, "held") && argc == 3)
		return run_held(name);
	if (!strcmp(mode, "maxdepth") && argc == 3)
		return run_maxdepth(name);
	if (!strcmp(mode, "batch") && argc == 4)
		return run_batch(name, argv[3]);
	if (!strcmp(mode, "fairness") && (argc == 8 || (argc == 9 && !strcmp(argv[8], "--produce"))))
		return run_fairness(name, (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]), (unsigned)atoi(argv[5]),
				    (unsigned)atoi(argv[6]), atof(argv[7]), argc == 9);
	return usage();
}
