/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_bench.c - ipcq bench: throughput and latency of one queue between
 * processes, reported the way redis-benchmark and nats bench report it.
 *
 * The ipcq process coordinates and moves no message.  It creates the
 * temporary queue (when no QUEUE is given), disconnects, and only then
 * forks P producers and C consumers: nothing connected crosses a fork,
 * each child connects and opens the queue itself, as separate programs
 * would.  A child writes a byte on the "ready" pipe once its queue is
 * open and then reads the "go" pipe; the coordinator closes that pipe
 * when all are ready, so they start together and no connection set-up is
 * timed.  Results come back in an anonymous shared mapping made before
 * the fork: a slot per child and the consumers' latency samples.
 *
 * Counting.  The count is split among producers (the first count % P send
 * one more).  Consumers of one queue cannot know beforehand which of them
 * gets what, so each adds what it received to a shared total (every
 * FLUSH_EVERY messages, whenever that may complete the count, and when a
 * receive times out) and stops once the total reaches the count; with
 * several consumers a receive times out every CONSUMER_POLL_MS so that
 * the ones left waiting see it, while a lone consumer blocks as a user's
 * would.  The coordinator then checks as many messages were received as
 * were sent, each with the size it was sent with, and with one consumer
 * each producer's in the order it sent them (a duplicate shows there).  A queue that stops moving (no message
 * sent or received for STALL_SECONDS) ends the run with the counts: a lost
 * message makes the benchmark fail, never hang.
 *
 * Round trips (--round-trip) run over two queues between two processes: a
 * pinger sends a message on the first and waits for it on the second
 * before it sends the next; an echo sends back every message it receives
 * from the first on the second, unchanged.  The echo takes the producer's
 * slot (it counts what it sent back), the pinger the consumer's (it
 * counts the answers, checks their order and keeps the latency samples),
 * so the counting and checks below hold for both kinds of run.
 *
 * Timing.  Throughput is the count over the time from the first producer's
 * start to the last message received.  A payload of 8 bytes or more
 * starts with its CLOCK_MONOTONIC send time (one clock for all
 * processes) if it is timed, else 0; one of 16 or more then carries its
 * producer and sequence number.  A throughput run times one message in
 * SAMPLE_EVERY of each producer's (the clock is read for those alone, so
 * that the benchmark's own clock reads weigh little beside the library's
 * work), a round trip every one, and SAMPLES_MAX in all at most (a longer
 * stride beyond); consumers keep receive minus send times for the
 * percentiles.  Under a
 * saturating load these latencies include the time spent waiting in the
 * queue, as nats bench's do.  A round trip's latency is the time from the
 * pinger's send to its receive of the answer, one message in flight.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "stats_print.h"
#include "util.h"

#define BENCH_COUNT_DEFAULT 100000
#define BENCH_SIZE_DEFAULT 64
#define BENCH_PROCS_MAX 256
#define BENCH_BATCH_MAX 1024
#define SAMPLES_MAX (1u << 20)   /* latency samples kept, all consumers together */
#define SAMPLE_EVERY 16          /* a throughput run times one message in this many */
#define FLUSH_EVERY 64           /* a consumer adds to the shared total this often */
#define CONSUMER_POLL_MS 10      /* how soon an idle consumer sees the count reached */
#define STALL_SECONDS 10         /* no message moved that long: the run failed */
#define STAMP_BYTES 8            /* send time */
#define SEQ_BYTES 16             /* send time, then producer << 40 | sequence */
#define SEQ_BITS 40

enum {
	OPT_SIZE = CLI_OPT_FIRST_COMMAND_,
	OPT_PRODUCERS,
	OPT_CONSUMERS,
	OPT_BATCH,
	OPT_ZERO_COPY,
	OPT_JSON,
	OPT_RING_SIZE,
	OPT_PREFETCH,
	OPT_MAX_MSGS,
	OPT_ROUND_TRIP,
	OPT_SENDERS,
};

/* What one child reports.  Each on its own cache lines: the progress
 * counter is written after every call and read by the coordinator. */
struct bench_slot {
	_Alignas(64) _Atomic uint64_t progress; /* messages sent or received so far */
	uint64_t start_ns;                      /* when it started (after "go") */
	uint64_t end_ns;                        /* last send returned / last message received */
	uint64_t count;                         /* messages sent or received */
	uint64_t samples;                       /* latency samples written */
	uint64_t bad_size;                      /* messages of another size than sent */
	uint64_t out_of_order;                  /* messages out of their producer's order */
	uint64_t first_disorder[3];             /* the first: producer, expected, received */
};

struct bench_shared {
	_Alignas(64) _Atomic uint64_t received; /* consumers' flushed total */
	_Alignas(64) struct bench_slot slots[]; /* producers, then consumers */
};

struct bench {
	/* what was asked */
	const char *queues[2];   /* the queue; with --round-trip, the answers' queue second */
	unsigned nqueues;        /* 1, or 2 with --round-trip */
	char temp_names[2][IPCQ_NAME_MAX + 1];
	bool temporary;          /* queues are temp_names, made here and deleted after */
	unsigned created;        /* temporary queues made so far */
	uint64_t size;
	uint64_t count;
	unsigned producers, consumers, batch;
	bool zero_copy, json, round_trip;
	ipcq_geometry geo;
	bool geo_given;
	const char *socket_path;
	/* the run */
	struct bench_shared *sh;
	size_t sh_len;
	uint64_t *samples;       /* consumers' arrays of sample_cap each */
	uint64_t sample_cap;
	uint64_t sample_stride;
	pid_t *pids;             /* producers, then consumers; 0 once reaped */
	int ready_r, ready_w, go_r, go_w;
	int signal_fd;           /* SIGCHLD */
	int stop_fd;             /* SIGINT, SIGTERM, SIGHUP */
};

struct bench_result {
	uint64_t sent, received, bad_size, out_of_order, samples;
	double seconds, send_seconds;
	double p50_us, p99_us, max_us;
};

/* ---- the children ---- */

static struct bench_slot *slot_of(const struct bench *b, bool consumer, unsigned idx)
{
	return &b->sh->slots[(consumer ? b->producers : 0) + idx];
}

static uint64_t producer_share(const struct bench *b, unsigned idx)
{
	return b->count / b->producers + (idx < b->count % b->producers);
}

/* Whether message seq of a producer is timed: its send time is written
 * in it, and its consumer reads the clock for its latency (the others
 * carry 0, and cost neither side a look at the clock). */
static bool timed(const struct bench *b, uint64_t seq)
{
	return seq % b->sample_stride == 0;
}

/* Write what identifies message seq of producer idx into its payload,
 * with its send time now (0: not timed). */
static void stamp_message(const struct bench *b, void *p, unsigned idx, uint64_t seq, uint64_t now)
{
	uint64_t id = (uint64_t)idx << SEQ_BITS | seq;

	if (b->size >= STAMP_BYTES)
		memcpy(p, &now, sizeof(now));
	if (b->size >= SEQ_BYTES)
		memcpy((char *)p + STAMP_BYTES, &id, sizeof(id));
}

static int produce_one_by_one(const struct bench *b, unsigned idx, ipcq_queue *q, const void *tmpl,
			      struct bench_slot *slot)
{
	uint64_t share = producer_share(b, idx);
	_cleanup_free_ void *buf = malloc(b->size ? b->size : 1);
	int r;

	if (!buf)
		return cli_fail(-ENOMEM, "producer %u", idx);
	memcpy(buf, tmpl, b->size);
	for (uint64_t sent = 0; sent < share; sent++) {
		void *p = buf;

		if (b->zero_copy) {
			r = ipcq_loan(q, b->size, &p, -1);
			if (r < 0)
				return cli_fail(r, "producer %u: cannot loan", idx);
			memcpy(p, tmpl, b->size); /* the producer writes its payload in place */
		}
		stamp_message(b, p, idx, sent, timed(b, sent) ? now_ns(CLOCK_MONOTONIC) : 0);
		if (b->zero_copy)
			r = ipcq_publish(q, p, b->size, 0);
		else
			r = ipcq_send(q, p, b->size, 0, -1);
		if (r < 0)
			return cli_fail(r, "producer %u: cannot %s", idx, b->zero_copy ? "publish" : "send");
		atomic_store_explicit(&slot->progress, sent + 1, memory_order_relaxed);
	}
	slot->count = share;
	return 0;
}

static int produce_batches(const struct bench *b, unsigned idx, ipcq_queue *q, const void *tmpl,
			   struct bench_slot *slot)
{
	uint64_t share = producer_share(b, idx), sent = 0;
	_cleanup_free_ struct iovec *iov = calloc(b->batch, sizeof(*iov));
	_cleanup_free_ char *buf = malloc(b->batch * (b->size ? b->size : 1));
	int r;

	if (!iov || !buf)
		return cli_fail(-ENOMEM, "producer %u", idx);
	for (unsigned i = 0; i < b->batch; i++) {
		iov[i] = (struct iovec){ .iov_base = buf + i * b->size, .iov_len = b->size };
		memcpy(iov[i].iov_base, tmpl, b->size);
	}
	while (sent < share) {
		unsigned n = (unsigned)MIN((uint64_t)b->batch, share - sent);
		uint64_t now = now_ns(CLOCK_MONOTONIC);

		for (unsigned i = 0; i < n; i++)
			stamp_message(b, iov[i].iov_base, idx, sent + i, timed(b, sent + i) ? now : 0);
		r = ipcq_send_batch(q, iov, n, 0, -1);
		if (r < 0)
			return cli_fail(r, "producer %u: cannot send a batch", idx);
		if (r == 0 || (unsigned)r > n)
			return cli_error("producer %u: ipcq_send_batch of %u messages returned %d", idx, n, r);
		sent += (unsigned)r; /* a prefix: the rest goes again, restamped */
		atomic_store_explicit(&slot->progress, sent, memory_order_relaxed);
	}
	slot->count = sent;
	return 0;
}

static int produce(const struct bench *b, unsigned idx, ipcq_queue *q)
{
	struct bench_slot *slot = slot_of(b, false, idx);
	_cleanup_free_ unsigned char *tmpl = malloc(b->size ? b->size : 1);
	int r;

	if (!tmpl)
		return cli_fail(-ENOMEM, "producer %u", idx);
	for (uint64_t i = 0; i < b->size; i++)
		tmpl[i] = (unsigned char)(i * 131 + idx);
	slot->start_ns = now_ns(CLOCK_MONOTONIC);
	if (b->batch > 1)
		r = produce_batches(b, idx, q, tmpl, slot);
	else
		r = produce_one_by_one(b, idx, q, tmpl, slot);
	slot->end_ns = now_ns(CLOCK_MONOTONIC);
	return r;
}

struct consumer {
	const struct bench *b;
	struct bench_slot *slot;
	uint64_t *samples;
	uint64_t got;          /* messages received */
	uint64_t unflushed;    /* of which not yet added to the shared total */
	uint64_t *next_seq;    /* per producer: the sequence number expected next */
	int timeout_ms;        /* of each receive */
};

/* Count each break in a producer's order once: after one, expect what
 * follows the message that came. */
static void check_order(struct consumer *cs, const void *data)
{
	struct bench_slot *slot = cs->slot;
	uint64_t id, seq;
	unsigned producer;

	memcpy(&id, (const char *)data + STAMP_BYTES, sizeof(id));
	producer = (unsigned)(id >> SEQ_BITS);
	seq = id & ((1ull << SEQ_BITS) - 1);
	if (producer < cs->b->producers && seq == cs->next_seq[producer]) {
		cs->next_seq[producer]++;
		return;
	}
	if (slot->out_of_order++ == 0) {
		slot->first_disorder[0] = producer;
		slot->first_disorder[1] = producer < cs->b->producers ? cs->next_seq[producer] : 0;
		slot->first_disorder[2] = seq;
	}
	if (producer < cs->b->producers)
		cs->next_seq[producer] = seq + 1;
}

static void examine_message(struct consumer *cs, const void *data, size_t len, uint64_t now)
{
	const struct bench *b = cs->b;
	uint64_t sent_ns;

	if (len != b->size) {
		cs->slot->bad_size++;
		return;
	}
	if (b->size >= STAMP_BYTES && cs->slot->samples < b->sample_cap) {
		memcpy(&sent_ns, data, sizeof(sent_ns));
		if (sent_ns)
			cs->samples[cs->slot->samples++] = now - sent_ns;
	}
	if (cs->next_seq)
		check_order(cs, data);
}

/* When a message received one by one came: the clock, read only for a
 * timed message (or one too short to say); 0 for the others (consume
 * reads it at every flush too, so the run's end is never far behind). */
static uint64_t arrival(const struct consumer *cs, const void *data, size_t len)
{
	uint64_t sent_ns = 1;

	if (len >= STAMP_BYTES && cs->b->size >= STAMP_BYTES)
		memcpy(&sent_ns, data, sizeof(sent_ns));
	return sent_ns ? now_ns(CLOCK_MONOTONIC) : 0;
}

/* Receive what one call gives: how many messages (>= 1), or a negative
 * errno (-ETIMEDOUT or -EAGAIN when none came in time). */
static int receive_some(struct consumer *cs, ipcq_queue *q, void *buf, ipcq_msg *msgs)
{
	const struct bench *b = cs->b;
	uint64_t now;
	ssize_t len;
	int n, r;

	if (b->batch > 1) {
		n = ipcq_recv_batch(q, msgs, b->batch, cs->timeout_ms);
		if (n <= 0)
			return n < 0 ? n : -EPROTO;
		now = now_ns(CLOCK_MONOTONIC);
		for (int i = 0; i < n; i++) {
			examine_message(cs, msgs[i].data, msgs[i].len, now);
			cs->got++;
			r = ipcq_release(q, &msgs[i]);
			if (r < 0)
				return r;
		}
		cs->slot->end_ns = now;
		return n;
	}
	if (b->zero_copy) {
		r = ipcq_recv_view(q, &msgs[0], cs->timeout_ms);
		if (r < 0)
			return r;
		now = arrival(cs, msgs[0].data, msgs[0].len);
		examine_message(cs, msgs[0].data, msgs[0].len, now);
		r = ipcq_release(q, &msgs[0]);
		if (r < 0)
			return r;
	} else {
		len = ipcq_recv(q, buf, b->size ? b->size : 1, NULL, cs->timeout_ms);
		if (len < 0)
			return (int)len;
		now = arrival(cs, buf, (size_t)len);
		examine_message(cs, buf, (size_t)len, now);
	}
	cs->got++;
	if (now)
		cs->slot->end_ns = now;
	return 1;
}

/* Add what this consumer received to the shared total; whether the
 * count is reached. */
static bool flush_received(struct consumer *cs)
{
	uint64_t total = atomic_fetch_add_explicit(&cs->b->sh->received, cs->unflushed, memory_order_relaxed);

	total += cs->unflushed;
	cs->unflushed = 0;
	return total >= cs->b->count;
}

static int consume(const struct bench *b, unsigned idx, ipcq_queue *q)
{
	struct consumer cs = {
		.b = b,
		.slot = slot_of(b, true, idx),
		.samples = b->samples + (uint64_t)idx * b->sample_cap,
		.timeout_ms = b->consumers > 1 ? CONSUMER_POLL_MS : -1,
	};
	_cleanup_free_ void *buf = malloc(b->size ? b->size : 1);
	_cleanup_free_ ipcq_msg *msgs = calloc(b->batch, sizeof(*msgs));
	_cleanup_free_ uint64_t *next_seq = NULL;
	int n;

	/* Each producer's messages come out in its order only to a lone
	 * consumer; several share them out. */
	if (b->consumers == 1 && b->size >= SEQ_BYTES) {
		next_seq = calloc(b->producers, sizeof(*next_seq));
		cs.next_seq = next_seq;
	}
	if (!buf || !msgs || (b->consumers == 1 && b->size >= SEQ_BYTES && !next_seq))
		return cli_fail(-ENOMEM, "consumer %u", idx);
	cs.slot->start_ns = now_ns(CLOCK_MONOTONIC);
	for (;;) {
		n = receive_some(&cs, q, buf, msgs);
		if (n == -ETIMEDOUT || n == -EAGAIN) {
			if (flush_received(&cs))
				break;
			continue;
		}
		if (n < 0)
			return cli_fail(n, "consumer %u: cannot receive", idx);
		atomic_store_explicit(&cs.slot->progress, cs.got, memory_order_relaxed);
		cs.unflushed += (unsigned)n;
		if (cs.unflushed >= FLUSH_EVERY ||
		    cs.unflushed + atomic_load_explicit(&b->sh->received, memory_order_relaxed) >= b->count) {
			/* just after a receive: its time (one not timed left it behind) */
			cs.slot->end_ns = now_ns(CLOCK_MONOTONIC);
			if (flush_received(&cs))
				break;
		}
	}
	cs.slot->count = cs.got;
	return 0;
}

/* ---- round trips ---- */

/* Send one message, by copy or through a loan. */
static int rtt_send(const struct bench *b, ipcq_queue *q, const void *data, size_t len)
{
	void *p;
	int r;

	if (!b->zero_copy)
		return ipcq_send(q, data, len, 0, -1);
	r = ipcq_loan(q, len, &p, -1);
	if (r < 0)
		return r;
	memcpy(p, data, len);
	return ipcq_publish(q, p, len, 0);
}

/* Receive one message into buf, or as a view in *m (released by the
 * caller); *data points at it.  Its length, or a negative errno. */
static ssize_t rtt_recv(const struct bench *b, ipcq_queue *q, void *buf, ipcq_msg *m, const void **data)
{
	int r;

	if (!b->zero_copy) {
		*data = buf;
		return ipcq_recv(q, buf, b->size, NULL, -1);
	}
	r = ipcq_recv_view(q, m, -1);
	if (r < 0)
		return r;
	*data = m->data;
	return (ssize_t)m->len;
}

/* The echo: send back every message from in on out. */
static int echo(const struct bench *b, ipcq_queue *in, ipcq_queue *out)
{
	struct bench_slot *slot = slot_of(b, false, 0);
	_cleanup_free_ void *buf = malloc(b->size);
	ipcq_msg m;
	int r;

	if (!buf)
		return cli_fail(-ENOMEM, "echo");
	slot->start_ns = now_ns(CLOCK_MONOTONIC);
	for (uint64_t i = 0; i < b->count; i++) {
		const void *data;
		ssize_t len = rtt_recv(b, in, buf, &m, &data);

		if (len < 0)
			return cli_fail((int)len, "echo: cannot receive");
		r = rtt_send(b, out, data, (size_t)len);
		if (r < 0)
			return cli_fail(r, "echo: cannot send");
		if (b->zero_copy && (r = ipcq_release(in, &m)) < 0)
			return cli_fail(r, "echo: cannot release");
		atomic_store_explicit(&slot->progress, i + 1, memory_order_relaxed);
	}
	slot->count = b->count;
	slot->end_ns = now_ns(CLOCK_MONOTONIC);
	return 0;
}

/* The pinger: one message in flight, timed from its send on out to the
 * answer's arrival on in. */
static int ping(const struct bench *b, ipcq_queue *out, ipcq_queue *in)
{
	struct consumer cs = {
		.b = b,
		.slot = slot_of(b, true, 0),
		.samples = b->samples,
	};
	_cleanup_free_ unsigned char *buf = malloc(b->size);
	_cleanup_free_ void *answer = malloc(b->size);
	uint64_t next_seq = 0;
	ipcq_msg m;
	int r;

	if (!buf || !answer)
		return cli_fail(-ENOMEM, "pinger");
	cs.next_seq = &next_seq;
	for (uint64_t i = 0; i < b->size; i++)
		buf[i] = (unsigned char)(i * 131);
	cs.slot->start_ns = now_ns(CLOCK_MONOTONIC);
	for (uint64_t i = 0; i < b->count; i++) {
		const void *data;
		ssize_t len;

		stamp_message(b, buf, 0, i, timed(b, i) ? now_ns(CLOCK_MONOTONIC) : 0);
		r = rtt_send(b, out, buf, b->size);
		if (r < 0)
			return cli_fail(r, "pinger: cannot send");
		len = rtt_recv(b, in, answer, &m, &data);
		if (len < 0)
			return cli_fail((int)len, "pinger: cannot receive");
		examine_message(&cs, data, (size_t)len, now_ns(CLOCK_MONOTONIC));
		if (b->zero_copy && (r = ipcq_release(in, &m)) < 0)
			return cli_fail(r, "pinger: cannot release");
		cs.got++;
		atomic_store_explicit(&cs.slot->progress, cs.got, memory_order_relaxed);
	}
	cs.slot->count = cs.got;
	cs.slot->end_ns = now_ns(CLOCK_MONOTONIC);
	return 0;
}

/* The coordinator's signals are its own; a child dies with it, so that
 * none is left blocked on a queue that nobody empties. */
static void reset_signals_in_child(const struct bench *b, pid_t coordinator)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	close(b->signal_fd);
	close(b->stop_fd);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != coordinator)
		_exit(CLI_EXIT_ERROR);
}

/* A child's life: connect and open on its own, say it is ready, wait for
 * the start, work, report.  Never returns. */
static _Noreturn void run_child(const struct bench *b, pid_t coordinator, bool consumer, unsigned idx)
{
	const char *role = b->round_trip ? (consumer ? "pinger" : "echo") : consumer ? "consumer" : "producer";
	ipcq_client *c = NULL;
	ipcq_queue *q[2] = { NULL, NULL };
	char ch = 0;
	int r;

	reset_signals_in_child(b, coordinator);
	/* A line at a time, so that children failing together stay legible. */
	setvbuf(stderr, NULL, _IOLBF, 0);
	close(b->ready_r);
	close(b->go_w);
	r = ipcq_connect(&c, b->socket_path);
	if (r < 0) {
		cli_fail(r, "%s %u: cannot connect to %s", role, idx, b->socket_path);
		_exit(CLI_EXIT_ERROR);
	}
	/* A consumer receives from the queue, a producer sends to it; the
	 * pinger sends on the first queue and receives on the second, the
	 * echo the other way round. */
	for (unsigned i = 0; i < b->nqueues; i++) {
		bool receives = b->round_trip ? consumer == (i == 1) : consumer;

		r = ipcq_open(c, b->queues[i], receives ? IPCQ_RECV : IPCQ_SEND, &q[i]);
		if (r < 0) {
			cli_fail_request(&(struct cli){ .client = c }, r, "%s %u: cannot open queue '%s'", role, idx,
					 b->queues[i]);
			_exit(CLI_EXIT_ERROR);
		}
	}
	if (write(b->ready_w, &ch, 1) != 1)
		_exit(CLI_EXIT_ERROR);
	close(b->ready_w);
	while (read(b->go_r, &ch, 1) < 0 && errno == EINTR)
		;
	if (b->round_trip)
		r = consumer ? ping(b, q[0], q[1]) : echo(b, q[0], q[1]);
	else
		r = consumer ? consume(b, idx, q[0]) : produce(b, idx, q[0]);
	for (unsigned i = 0; i < b->nqueues; i++)
		ipcq_close(q[i]);
	ipcq_disconnect(c);
	_exit(r ? CLI_EXIT_ERROR : CLI_EXIT_OK);
}

/* ---- the coordinator ---- */

static int setup_run(struct bench *b)
{
	unsigned nproc = b->producers + b->consumers;
	size_t slots = sizeof(struct bench_shared) + nproc * sizeof(struct bench_slot);
	int ready[2], go[2];
	sigset_t mask;

	b->sample_cap = SAMPLES_MAX / b->consumers;
	/* a round trip times every message: that is what it measures */
	b->sample_stride = MAX((b->count + SAMPLES_MAX - 1) / SAMPLES_MAX, b->round_trip ? 1 : SAMPLE_EVERY);
	b->sh_len = ALIGN_UP(slots, 64) + b->consumers * b->sample_cap * sizeof(uint64_t);
	b->sh = mmap(NULL, b->sh_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (b->sh == MAP_FAILED) {
		b->sh = NULL;
		return -errno;
	}
	b->samples = (uint64_t *)((char *)b->sh + ALIGN_UP(slots, 64));
	b->pids = calloc(nproc, sizeof(*b->pids));
	if (!b->pids)
		return -ENOMEM;
	if (pipe2(ready, O_CLOEXEC) < 0)
		return -errno;
	b->ready_r = ready[0];
	b->ready_w = ready[1];
	if (pipe2(go, O_CLOEXEC) < 0)
		return -errno;
	b->go_r = go[0];
	b->go_w = go[1];
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	b->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	return b->signal_fd < 0 ? -errno : 0;
}

static void teardown_run(struct bench *b)
{
	int *fds[] = { &b->ready_r, &b->ready_w, &b->go_r, &b->go_w, &b->signal_fd, &b->stop_fd };

	for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	if (b->sh)
		munmap(b->sh, b->sh_len);
	b->sh = NULL;
	free(b->pids);
	b->pids = NULL;
}

static void kill_children(const struct bench *b)
{
	for (unsigned i = 0; i < b->producers + b->consumers; i++)
		if (b->pids[i] > 0)
			kill(b->pids[i], SIGTERM);
}

static int fork_children(struct bench *b)
{
	pid_t self = getpid();

	fflush(stdout);
	fflush(stderr);
	for (unsigned i = 0; i < b->producers + b->consumers; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return -errno;
		if (pid == 0)
			run_child(b, self, i >= b->producers, i >= b->producers ? i - b->producers : i);
		b->pids[i] = pid;
	}
	/* Only the children write "ready"; if all die, the read sees EOF. */
	close(b->ready_w);
	b->ready_w = -1;
	return 0;
}

/* Messages the producers sent, or the consumers received, so far. */
static uint64_t progress_of(const struct bench *b, bool consumers)
{
	unsigned n = consumers ? b->consumers : b->producers;
	uint64_t sum = 0;

	for (unsigned i = 0; i < n; i++)
		sum += atomic_load_explicit(&slot_of(b, consumers, i)->progress, memory_order_relaxed);
	return sum;
}

/* Reap what exited; returns how many children are left, and sets *failed
 * when one did not exit 0. */
static unsigned reap_children(struct bench *b, bool *failed)
{
	unsigned left = 0;
	int status;

	for (unsigned i = 0; i < b->producers + b->consumers; i++) {
		if (b->pids[i] <= 0)
			continue;
		if (waitpid(b->pids[i], &status, WNOHANG) == b->pids[i]) {
			b->pids[i] = 0;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				*failed = true;
		} else {
			left++;
		}
	}
	return left;
}

/* Start the children together, wait for them all, and watch for a stall
 * and for signals.  0, CLI_EXIT_ERROR, or 128 + the signal that
 * interrupted the run (after every child is gone). */
static int supervise(struct bench *b)
{
	unsigned nproc = b->producers + b->consumers, ready = 0, left = nproc;
	uint64_t progress = 0, moved_ns = now_ns(CLOCK_MONOTONIC);
	bool failed = false, stopping = false;
	int interrupted = 0;

	while (left > 0) {
		struct pollfd pfd[3] = {
			{ .fd = b->signal_fd, .events = POLLIN },
			{ .fd = b->stop_fd, .events = POLLIN },
			{ .fd = ready < nproc ? b->ready_r : -1, .events = POLLIN },
		};
		struct signalfd_siginfo si;
		char buf[64];
		ssize_t n;

		if (poll(pfd, 3, 100) < 0 && errno != EINTR && !failed) {
			cli_error("poll: %s", strerror(errno));
			failed = true; /* stop the children, and reap them */
		}
		while (read(b->signal_fd, &si, sizeof(si)) == sizeof(si))
			;
		if (pfd[1].revents && read(b->stop_fd, &si, sizeof(si)) == sizeof(si) && !interrupted)
			interrupted = (int)si.ssi_signo;
		if (pfd[2].revents) {
			n = read(b->ready_r, buf, MIN(sizeof(buf), (size_t)(nproc - ready)));
			if (n > 0)
				ready += (unsigned)n;
			if (ready == nproc) {
				close(b->go_w); /* go */
				b->go_w = -1;
				moved_ns = now_ns(CLOCK_MONOTONIC);
			}
		}
		left = reap_children(b, &failed);
		if (ready == nproc && !failed && !interrupted && left > 0) {
			uint64_t p = progress_of(b, false) + progress_of(b, true), now = now_ns(CLOCK_MONOTONIC);

			if (p != progress) {
				progress = p;
				moved_ns = now;
			} else if (now - moved_ns > STALL_SECONDS * 1000000000ull) {
				cli_error("no message moved for %d s: sent %" PRIu64 ", received %" PRIu64 " of %" PRIu64,
					  STALL_SECONDS, progress_of(b, false), progress_of(b, true), b->count);
				failed = true;
			}
		}
		if ((failed || interrupted) && !stopping && left > 0) {
			kill_children(b);
			stopping = true;
		}
	}
	if (interrupted)
		return 128 + interrupted;
	return failed ? CLI_EXIT_ERROR : 0;
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of sorted s[0..n). */
static double percentile_us(const uint64_t *s, uint64_t n, unsigned pct)
{
	uint64_t rank = (n * pct + 99) / 100;

	return (double)s[rank ? rank - 1 : 0] / 1e3;
}

static int collect_results(const struct bench *b, struct bench_result *res)
{
	uint64_t first_start = UINT64_MAX, last_send = 0, last_recv = 0, k = 0;
	_cleanup_free_ uint64_t *all = NULL;

	*res = (struct bench_result){ 0 };
	for (unsigned i = 0; i < b->producers; i++) {
		const struct bench_slot *s = slot_of(b, false, i);

		res->sent += s->count;
		first_start = MIN(first_start, s->start_ns);
		last_send = MAX(last_send, s->end_ns);
	}
	for (unsigned i = 0; i < b->consumers; i++) {
		const struct bench_slot *s = slot_of(b, true, i);

		res->received += s->count;
		res->bad_size += s->bad_size;
		res->out_of_order += s->out_of_order;
		res->samples += s->samples;
		last_recv = MAX(last_recv, s->end_ns);
	}
	res->seconds = last_recv > first_start ? (double)(last_recv - first_start) / 1e9 : 0;
	res->send_seconds = last_send > first_start ? (double)(last_send - first_start) / 1e9 : 0;
	if (res->samples == 0)
		return 0;
	all = malloc(res->samples * sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (unsigned i = 0; i < b->consumers; i++) {
		const struct bench_slot *s = slot_of(b, true, i);

		memcpy(all + k, b->samples + (uint64_t)i * b->sample_cap, s->samples * sizeof(*all));
		k += s->samples;
	}
	qsort(all, res->samples, sizeof(*all), compare_u64);
	res->p50_us = percentile_us(all, res->samples, 50);
	res->p99_us = percentile_us(all, res->samples, 99);
	res->max_us = (double)all[res->samples - 1] / 1e3;
	return 0;
}

static double rate(uint64_t n, double seconds)
{
	return seconds > 0 ? (double)n / seconds : 0;
}

static const char *mode_name(const struct bench *b)
{
	return b->zero_copy ? "zero-copy" : "copy";
}

static void print_round_trips(const struct bench *b, const struct bench_result *res)
{
	printf("queues %s and %s%s: %" PRIu64 " round trips of %" PRIu64 " B, one in flight, %s\n", b->queues[0],
	       b->queues[1], b->temporary ? " (temporary)" : "", b->count, b->size, mode_name(b));
	printf("round trips: %.0f/s (%" PRIu64 " in %.3f s)\n", rate(res->received, res->seconds), res->received,
	       res->seconds);
	printf("round trip: p50 %.1f us, p99 %.1f us, max %.1f us (%" PRIu64 " samples)\n", res->p50_us, res->p99_us,
	       res->max_us, res->samples);
}

static void print_text(const struct bench *b, const struct bench_result *res)
{
	if (b->round_trip) {
		print_round_trips(b, res);
		return;
	}
	printf("queue %s%s: %u producer%s -> %u consumer%s, %" PRIu64 " messages of %" PRIu64 " B, ", b->queues[0],
	       b->temporary ? " (temporary)" : "", b->producers, b->producers == 1 ? "" : "s", b->consumers,
	       b->consumers == 1 ? "" : "s", b->count, b->size);
	if (b->batch > 1)
		printf("batches of %u, %s\n", b->batch, mode_name(b));
	else
		printf("one per call, %s\n", mode_name(b));
	printf("throughput: %.0f msgs/s, %.2f MB/s (%" PRIu64 " received in %.3f s)\n", rate(res->received, res->seconds),
	       rate(res->received * b->size, res->seconds) / 1e6, res->received, res->seconds);
	printf("sending:    %.0f msgs/s (%" PRIu64 " sent in %.3f s)\n", rate(res->sent, res->send_seconds), res->sent,
	       res->send_seconds);
	if (res->samples)
		printf("latency:    p50 %.1f us, p99 %.1f us, max %.1f us (%" PRIu64 " samples)\n", res->p50_us,
		       res->p99_us, res->max_us, res->samples);
	else
		printf("latency:    not measured (messages under %d B carry no send time)\n", STAMP_BYTES);
	for (unsigned i = 0; b->producers + b->consumers > 2 && i < b->producers + b->consumers; i++) {
		bool consumer = i >= b->producers;
		unsigned idx = consumer ? i - b->producers : i;
		const struct bench_slot *s = slot_of(b, consumer, idx);
		double t = s->end_ns > s->start_ns ? (double)(s->end_ns - s->start_ns) / 1e9 : 0;

		printf("  %s %u: %" PRIu64 " messages, %.0f msgs/s\n", consumer ? "consumer" : "producer", idx, s->count,
		       rate(s->count, t));
	}
}

static void print_json(const struct bench *b, const struct bench_result *res)
{
	printf("{\"queue\": \"%s\", \"temporary\": %s, \"size\": %" PRIu64 ", \"count\": %" PRIu64
	       ", \"producers\": %u, \"consumers\": %u, \"batch\": %u, \"zero_copy\": %s",
	       b->queues[0], b->temporary ? "true" : "false", b->size, b->count, b->producers,
	       b->consumers, b->batch, b->zero_copy ? "true" : "false");
	if (b->round_trip)
		printf(", \"round_trip\": true, \"reply_queue\": \"%s\"", b->queues[1]);
	printf(", \"sent\": %" PRIu64 ", \"received\": %" PRIu64 ", \"seconds\": %.6f, \"msgs_per_s\": %.0f"
	       ", \"mb_per_s\": %.3f, \"send_msgs_per_s\": %.0f",
	       res->sent, res->received, res->seconds, rate(res->received, res->seconds),
	       rate(res->received * b->size, res->seconds) / 1e6, rate(res->sent, res->send_seconds));
	if (res->samples)
		printf(", \"latency_us\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f, \"samples\": %" PRIu64 "}",
		       res->p50_us, res->p99_us, res->max_us, res->samples);
	else
		fputs(", \"latency_us\": null", stdout);
	fputs("}\n", stdout);
}

/* The checks that make a run count: all sent, as many received, whole,
 * and (with one consumer) in order.  Returns an exit status. */
static int check_results(const struct bench *b, const struct bench_result *res)
{
	int st = CLI_EXIT_OK;

	if (res->sent != b->count)
		st = cli_error("the producers sent %" PRIu64 " messages of %" PRIu64, res->sent, b->count);
	if (res->received != res->sent)
		st = cli_error("received %" PRIu64 " messages, sent %" PRIu64, res->received, res->sent);
	if (res->bad_size)
		st = cli_error("%" PRIu64 " messages came with another size than %" PRIu64 " B", res->bad_size, b->size);
	if (res->out_of_order) {
		const uint64_t *d = slot_of(b, true, 0)->first_disorder;

		st = cli_error("%" PRIu64 " times a message came out of its producer's order (the first: producer %" PRIu64
			       " message %" PRIu64 " where %" PRIu64 " was next)",
			       res->out_of_order, d[0], d[2], d[1]);
	}
	return st;
}

/* Check the given queues exist and are empty (what waits in them would
 * be counted); create the temporary ones otherwise. */
static int prepare_queues(struct cli *cli, struct bench *b)
{
	ipcq_stats st;
	int r;

	r = cli_connect(cli);
	if (r)
		return r;
	for (unsigned i = 0; i < b->nqueues; i++) {
		if (b->temporary) {
			r = ipcq_create(cli->client, b->queues[i], &b->geo);
			if (r < 0)
				return cli_fail_request(cli, r, "cannot create queue '%s'", b->queues[i]);
			b->created++;
			continue;
		}
		r = ipcq_stat(cli->client, b->queues[i], &st);
		if (r < 0)
			return cli_fail_request(cli, r, "cannot stat queue '%s'", b->queues[i]);
		if (st.depth > 0)
			return cli_error("queue '%s' has %" PRIu64 " messages waiting; purge it first", b->queues[i],
					 (uint64_t)st.depth);
	}
	return CLI_EXIT_OK;
}

static int delete_temporary(struct cli *cli, struct bench *b)
{
	int r, st = CLI_EXIT_OK;

	if (b->created == 0)
		return CLI_EXIT_OK;
	r = cli_connect(cli);
	if (r)
		return r;
	for (unsigned i = 0; i < b->created; i++) {
		r = ipcq_delete(cli->client, b->queues[i]);
		if (r < 0)
			st = cli_fail_request(cli, r, "cannot delete queue '%s'", b->queues[i]);
	}
	b->created = 0;
	return st;
}

static int run_bench(struct bench *b)
{
	struct bench_result res;
	int r;

	r = setup_run(b);
	if (r < 0)
		return cli_fail(r, "cannot set up the run");
	r = fork_children(b);
	if (r < 0) {
		cli_fail(r, "cannot start the producers and consumers");
		kill_children(b);
		for (unsigned i = 0; i < b->producers + b->consumers; i++)
			if (b->pids[i] > 0)
				waitpid(b->pids[i], NULL, 0);
		return CLI_EXIT_ERROR;
	}
	r = supervise(b);
	if (r)
		return r;
	r = collect_results(b, &res);
	if (r < 0)
		return cli_fail(r, "cannot sort the latencies");
	if (b->json)
		print_json(b, &res);
	else
		print_text(b, &res);
	r = cli_finish_stdout();
	return r ? r : check_results(b, &res);
}

/* SIGINT, SIGTERM and SIGHUP end the run cleanly (children stopped, the
 * temporary queue deleted); SIGCHLD wakes the coordinator.  All blocked
 * from the start, so that none comes between creating and deleting the
 * temporary queue unseen. */
static int block_signals(void)
{
	sigset_t mask;
	int fd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	sigdelset(&mask, SIGCHLD);
	fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}


static int parse_count_option(struct cli *cli, const char *what, unsigned long min, unsigned long max,
			      unsigned long *out)
{
	if (cli_parse_uint(optarg, max, out) < 0 || *out < min)
		return cli_usage_error(cli, "bad %s '%s' (%lu to %lu)", what, optarg, min, max);
	return -1;
}

static int parse_bench_option(struct cli *cli, struct bench *b, int opt)
{
	unsigned long v = 0;
	uint64_t size;
	int r = -1;

	switch (opt) {
	case 'c':
		r = parse_count_option(cli, "count", 1, MIN(1ull << SEQ_BITS, ULONG_MAX), &v);
		b->count = v;
		break;
	case OPT_SIZE:
	case OPT_RING_SIZE:
		if (parse_size(optarg, &size) < 0)
			return cli_usage_error(cli, "bad size '%s' (bytes, or with K, M or G)", optarg);
		if (opt == OPT_SIZE && size > (1ull << 30))
			return cli_usage_error(cli, "--size is at most 1G");
		if (opt == OPT_SIZE)
			b->size = size;
		else
			b->geo.ring_size = size;
		b->geo_given |= opt == OPT_RING_SIZE;
		break;
	case OPT_PRODUCERS:
		r = parse_count_option(cli, "number of producers", 1, BENCH_PROCS_MAX, &v);
		b->producers = (unsigned)v;
		break;
	case OPT_CONSUMERS:
		r = parse_count_option(cli, "number of consumers", 1, BENCH_PROCS_MAX, &v);
		b->consumers = (unsigned)v;
		break;
	case OPT_BATCH:
		r = parse_count_option(cli, "batch", 1, BENCH_BATCH_MAX, &v);
		b->batch = (unsigned)v;
		break;
	case OPT_ZERO_COPY:
		b->zero_copy = true;
		break;
	case OPT_JSON:
		b->json = true;
		break;
	case OPT_PREFETCH:
		r = parse_count_option(cli, "prefetch", 1, UINT32_MAX, &v);
		b->geo.prefetch = (uint32_t)v;
		b->geo_given = true;
		break;
	case OPT_MAX_MSGS:
		r = parse_count_option(cli, "max-msgs", 1, UINT32_MAX, &v);
		b->geo.max_msgs = (uint32_t)v;
		b->geo_given = true;
		break;
	case OPT_ROUND_TRIP:
		b->round_trip = true;
		break;
	case OPT_SENDERS:
		if (stats_senders_value(optarg, &b->geo.senders) < 0)
			return cli_usage_error(cli, "--senders '%s': not one of isolated, shared", optarg);
		b->geo_given = true;
		break;
	}
	return r;
}

int cmd_bench(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "producers", required_argument, NULL, OPT_PRODUCERS },
		{ "consumers", required_argument, NULL, OPT_CONSUMERS },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "zero-copy", no_argument, NULL, OPT_ZERO_COPY },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "ring-size", required_argument, NULL, OPT_RING_SIZE },
		{ "prefetch", required_argument, NULL, OPT_PREFETCH },
		{ "max-msgs", required_argument, NULL, OPT_MAX_MSGS },
		{ "round-trip", no_argument, NULL, OPT_ROUND_TRIP },
		{ "senders", required_argument, NULL, OPT_SENDERS },
		CLI_GLOBAL_OPTIONS,
		{ 0 },
	};
	struct bench b = {
		.size = BENCH_SIZE_DEFAULT,
		.count = BENCH_COUNT_DEFAULT,
		.producers = 1,
		.consumers = 1,
		.batch = 1,
		.ready_r = -1, .ready_w = -1, .go_r = -1, .go_w = -1, .signal_fd = -1, .stop_fd = -1,
	};
	int opt, r, st;

	while ((opt = cli_getopt(cli, argc, argv, ":c:" CLI_GLOBAL_SHORT, longopts)) != -1) {
		if (opt == 'c' || opt >= OPT_SIZE)
			r = parse_bench_option(cli, &b, opt);
		else
			r = cli_common_option(cli, opt, argv);
		if (r >= 0)
			return r;
	}
	b.nqueues = b.round_trip ? 2 : 1;
	if (argc - optind > (int)b.nqueues)
		return cli_usage_error(cli, "too many arguments");
	if (optind < argc && argc - optind < (int)b.nqueues)
		return cli_usage_error(cli, "--round-trip takes two queues (there and back) or none");
	b.temporary = optind == argc;
	if (!b.temporary && b.geo_given)
		return cli_usage_error(cli, "--ring-size, --prefetch, --max-msgs and --senders shape the temporary queue: "
		                            "not with QUEUE");
	if (b.zero_copy && b.batch > 1)
		return cli_usage_error(cli, "--zero-copy sends one loan at a time: not with --batch (batches are received in place anyway)");
	if (b.round_trip && (b.producers != 1 || b.consumers != 1 || b.batch != 1))
		return cli_usage_error(cli, "--round-trip keeps one message in flight between two processes: not with --producers, --consumers or --batch");
	if (b.round_trip && b.size < SEQ_BYTES)
		return cli_usage_error(cli, "--round-trip times each message by the send time it carries: --size at least %d", SEQ_BYTES);
	snprintf(b.temp_names[0], sizeof(b.temp_names[0]), "bench.%ld", (long)getpid());
	snprintf(b.temp_names[1], sizeof(b.temp_names[1]), "bench.%ld.back", (long)getpid());
	for (unsigned i = 0; i < b.nqueues; i++) {
		b.queues[i] = b.temporary ? b.temp_names[i] : argv[optind + i];
		r = cli_check_queue_name(cli, b.queues[i]);
		if (r)
			return r;
	}

	b.stop_fd = block_signals();
	if (b.stop_fd < 0)
		return cli_fail(b.stop_fd, "cannot block signals");
	r = prepare_queues(cli, &b);
	if (r) {
		delete_temporary(cli, &b);
		close(b.stop_fd);
		return r;
	}
	b.socket_path = cli->socket_path;
	/* Nothing connected crosses the fork. */
	cli_disconnect(cli);
	st = run_bench(&b);
	teardown_run(&b);
	r = delete_temporary(cli, &b);
	if (st > 128) {
		/* end as the signal would have ended us, so a calling script stops */
		cli_die_of_signal(st - 128);
		return st;
	}
	return st ? st : r;
}
