/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mpmc.c - many producer processes, many consumer processes, one queue,
 * and exact accounting of every message.
 *
 *   mpmc QUEUE PRODUCERS CONSUMERS MESSAGES_PER_PRODUCER [--mixed MAXSIZE]
 *
 * Every message starts with a header {producer, seq, len, checksum}; the
 * rest is derived from (producer, seq) alone, so a consumer can check a
 * message without knowing anything else: the length it must have, the
 * checksum of the bytes it must carry.  Without --mixed every message is
 * 64 bytes; with it, sizes go from the header size up to MAXSIZE, half of
 * them around the inline limit so that both paths (inline and ring) and
 * the boundary between them are used.
 *
 * Producers and consumers are processes (fork), each with its own
 * connection and handle.  They tick a shared table of P*N counters (an
 * anonymous shared mapping made before fork); the parent checks that
 * every counter is exactly 1.  Half of the consumers copy (ipcq_recv),
 * half read in place (ipcq_recv_view / ipcq_release).
 *
 * A consumer stops when a receive times out that began after every
 * producer had finished: from then on the queue can only get emptier,
 * so nothing is left behind.  The parent kills everything and fails if
 * the whole run takes longer than WATCHDOG_S.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipcq.h"
#include "pattern.h"

#define MSG_SIZE_DEFAULT 64u
#define RECV_POLL_MS 200
#define WATCHDOG_S 300
#define REPORT_MAX 10 /* problems of one kind printed in full */

struct msg_hdr {
	uint32_t producer;
	uint32_t seq;
	uint32_t len; /* whole message, header included */
	uint32_t checksum;
};

/* Shared by every process of the run. */
struct shared {
	_Atomic uint32_t ready;     /* children connected and opened */
	_Atomic uint32_t go;        /* start signal */
	_Atomic uint32_t producers_done;
	_Atomic uint64_t received;  /* messages accepted into the table */
	_Atomic uint64_t last_ns;   /* CLOCK_MONOTONIC of the latest receipt */
	_Atomic uint64_t bad_len;   /* received length disagrees with the header or the sender */
	_Atomic uint64_t bad_range; /* producer or seq out of range: invented */
	_Atomic uint64_t bad_sum;   /* payload does not match its checksum */
	_Atomic uint64_t recv_errors;
	_Atomic uint32_t count[];   /* [producer * n + seq] */
};

struct run {
	const char *queue;
	uint32_t producers, consumers, n;
	size_t maxsize; /* 0: fixed 64-byte messages */
	struct shared *sh;
};

/* ---- deterministic content ---- */

static uint64_t seed_of(uint32_t producer, uint32_t seq)
{
	return ((uint64_t)producer << 32 | seq) * 0x2545f4914f6cdd1dull + 0x51ed270b;
}

/* Length of message (producer, seq), header included. */
static size_t size_of(const struct run *rn, uint32_t producer, uint32_t seq)
{
	uint64_t s = seed_of(producer, seq) ^ 0xa5a5a5a5a5a5a5a5ull;
	uint64_t r = splitmix64(&s);
	size_t lo = sizeof(struct msg_hdr), hi;

	if (!rn->maxsize)
		return MSG_SIZE_DEFAULT;
	/* half of the messages near the inline limit (504 by default) */
	hi = (r & 1) ? rn->maxsize : (rn->maxsize < 1024 ? rn->maxsize : 1024);
	return lo + (size_t)((r >> 1) % (hi - lo + 1));
}

/* The pattern checksum folded to the header's 32 bits. */
static uint32_t checksum(const unsigned char *p, size_t n)
{
	uint64_t h = pattern_checksum(p, n);

	return (uint32_t)(h ^ (h >> 32));
}

/* The payload of message (producer, seq): n bytes. */
static void fill_payload(unsigned char *p, size_t n, uint32_t producer, uint32_t seq)
{
	pattern_fill(p, n, seed_of(producer, seq));
}

static size_t build_msg(const struct run *rn, unsigned char *buf, uint32_t producer, uint32_t seq)
{
	size_t len = size_of(rn, producer, seq);
	struct msg_hdr h = { .producer = producer, .seq = seq, .len = (uint32_t)len };

	fill_payload(buf + sizeof(h), len - sizeof(h), producer, seq);
	h.checksum = checksum(buf + sizeof(h), len - sizeof(h));
	memcpy(buf, &h, sizeof(h));
	return len;
}

/* ---- children ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int open_queue(const struct run *rn, int flags, ipcq_client **c, ipcq_queue **q, const char *who)
{
	int r = ipcq_connect(c, NULL);

	if (r < 0) {
		fprintf(stderr, "mpmc: %s: connect: %s\n", who, ipcq_strerror(r));
		return r;
	}
	r = ipcq_open(*c, rn->queue, flags | IPCQ_CREATE, q);
	if (r < 0) {
		fprintf(stderr, "mpmc: %s: open %s: %s (%s)\n", who, rn->queue, ipcq_strerror(r), ipcq_last_error(*c));
		ipcq_disconnect(*c);
	}
	return r;
}

static void wait_for_go(struct shared *sh)
{
	atomic_fetch_add(&sh->ready, 1);
	while (!atomic_load(&sh->go))
		usleep(200);
}

static int run_producer(const struct run *rn, uint32_t id)
{
	size_t cap = rn->maxsize ? rn->maxsize : MSG_SIZE_DEFAULT;
	unsigned char *buf = malloc(cap);
	ipcq_client *c;
	ipcq_queue *q;
	int r;

	if (!buf || open_queue(rn, IPCQ_SEND, &c, &q, "producer") < 0)
		return 1;
	wait_for_go(rn->sh);
	for (uint32_t seq = 0; seq < rn->n; seq++) {
		size_t len = build_msg(rn, buf, id, seq);

		r = ipcq_send(q, buf, len, 0, -1);
		if (r < 0) {
			fprintf(stderr, "mpmc: producer %u: send #%u (%zu bytes): %s\n", id, seq, len, ipcq_strerror(r));
			return 1;
		}
	}
	ipcq_close(q);
	ipcq_disconnect(c);
	free(buf);
	return 0;
}

static void note_max(_Atomic uint64_t *v, uint64_t x)
{
	uint64_t old = atomic_load(v);

	while (x > old && !atomic_compare_exchange_weak(v, &old, x))
		;
}

/* Check one received message and tick its counter. */
static void account(const struct run *rn, const unsigned char *p, size_t n)
{
	struct shared *sh = rn->sh;
	struct msg_hdr h;
	uint64_t bad;

	if (n < sizeof(h)) {
		bad = atomic_fetch_add(&sh->bad_len, 1);
		if (bad < REPORT_MAX)
			fprintf(stderr, "mpmc: a message of %zu bytes, shorter than the header\n", n);
		return;
	}
	memcpy(&h, p, sizeof(h));
	if (h.producer >= rn->producers || h.seq >= rn->n) {
		bad = atomic_fetch_add(&sh->bad_range, 1);
		if (bad < REPORT_MAX)
			fprintf(stderr, "mpmc: invented message: producer %u seq %u (%zu bytes)\n", h.producer, h.seq, n);
		return;
	}
	if (h.len != n || n != size_of(rn, h.producer, h.seq)) {
		bad = atomic_fetch_add(&sh->bad_len, 1);
		if (bad < REPORT_MAX)
			fprintf(stderr, "mpmc: producer %u seq %u: received %zu bytes, header says %u, sent %zu\n",
			        h.producer, h.seq, n, h.len, size_of(rn, h.producer, h.seq));
		return;
	}
	if (checksum(p + sizeof(h), n - sizeof(h)) != h.checksum) {
		bad = atomic_fetch_add(&sh->bad_sum, 1);
		if (bad < REPORT_MAX)
			fprintf(stderr, "mpmc: producer %u seq %u (%zu bytes): payload does not match its checksum\n",
			        h.producer, h.seq, n);
		return;
	}
	atomic_fetch_add_explicit(&sh->count[(size_t)h.producer * rn->n + h.seq], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sh->received, 1, memory_order_relaxed);
}

/* The checksum proves the bytes arrived as sent; this proves the sender
 * sent the right ones (a header copied onto another payload fails). */
static bool content_is_expected(const struct run *rn, const unsigned char *p, size_t n, unsigned char *scratch)
{
	struct msg_hdr h;

	if (n < sizeof(h))
		return true; /* reported by account() */
	memcpy(&h, p, sizeof(h));
	if (h.producer >= rn->producers || h.seq >= rn->n || n != size_of(rn, h.producer, h.seq))
		return true;
	fill_payload(scratch, n - sizeof(h), h.producer, h.seq);
	return memcmp(scratch, p + sizeof(h), n - sizeof(h)) == 0;
}

static int run_consumer(const struct run *rn, uint32_t id)
{
	struct shared *sh = rn->sh;
	size_t cap = rn->maxsize ? rn->maxsize : MSG_SIZE_DEFAULT;
	unsigned char *buf = malloc(cap), *scratch = malloc(cap);
	bool copy = id % 2 == 0;
	ipcq_client *c;
	ipcq_queue *q;

	if (!buf || !scratch || open_queue(rn, IPCQ_RECV, &c, &q, "consumer") < 0)
		return 1;
	wait_for_go(sh);
	for (;;) {
		bool done_before = atomic_load(&sh->producers_done);
		const unsigned char *p;
		ipcq_msg m;
		ssize_t n;

		if (copy) {
			n = ipcq_recv(q, buf, cap, NULL, RECV_POLL_MS);
			p = buf;
		} else {
			n = ipcq_recv_view(q, &m, RECV_POLL_MS);
			if (n == 0)
				n = (ssize_t)m.len;
			p = m.data;
		}
		if (n == -ETIMEDOUT) {
			if (done_before)
				break;
			continue;
		}
		if (n < 0) {
			uint64_t e = atomic_fetch_add(&sh->recv_errors, 1);

			if (e < REPORT_MAX)
				fprintf(stderr, "mpmc: consumer %u: %s: %s\n", id, copy ? "ipcq_recv" : "ipcq_recv_view",
				        ipcq_strerror((int)n));
			if (n == -EBADMSG || n == -ESTALE || n == -EMSGSIZE)
				continue;
			return 1;
		}
		if (!content_is_expected(rn, p, (size_t)n, scratch)) {
			uint64_t bad = atomic_fetch_add(&sh->bad_sum, 1);
			struct msg_hdr h;

			memcpy(&h, p, sizeof(h));
			if (bad < REPORT_MAX)
				fprintf(stderr, "mpmc: producer %u seq %u: payload is not the one it was sent with\n",
				        h.producer, h.seq);
		} else {
			account(rn, p, (size_t)n);
		}
		note_max(&sh->last_ns, now_ns());
		if (!copy) {
			int r = ipcq_release(q, &m);

			if (r < 0) {
				fprintf(stderr, "mpmc: consumer %u: ipcq_release: %s\n", id, ipcq_strerror(r));
				return 1;
			}
		}
	}
	ipcq_close(q);
	ipcq_disconnect(c);
	free(buf);
	free(scratch);
	return 0;
}

/* ---- parent ---- */

static volatile sig_atomic_t timed_out;

static void on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
}

static void kill_all(const pid_t *pids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
	while (wait(NULL) > 0)
		;
}

/* Exact accounting: every (producer, seq) exactly once. */
static int check_table(const struct run *rn)
{
	const struct shared *sh = rn->sh;
	uint64_t missing = 0, dup = 0;
	int bad = 0;

	for (uint32_t p = 0; p < rn->producers; p++) {
		for (uint32_t s = 0; s < rn->n; s++) {
			uint32_t k = atomic_load(&sh->count[(size_t)p * rn->n + s]);

			if (k == 1)
				continue;
			if (k == 0 && missing++ < REPORT_MAX)
				fprintf(stderr, "mpmc: producer %u seq %u never received\n", p, s);
			if (k > 1 && dup++ < REPORT_MAX)
				fprintf(stderr, "mpmc: producer %u seq %u received %u times\n", p, s, k);
		}
	}
	if (missing || dup) {
		fprintf(stderr, "mpmc: %" PRIu64 " messages missing, %" PRIu64 " received more than once\n", missing,
		        dup);
		bad = 1;
	}
#define CHECK_ZERO(field, what)                                                                        \
	do {                                                                                           \
		uint64_t v_ = atomic_load(&sh->field);                                                 \
		if (v_) {                                                                              \
			fprintf(stderr, "mpmc: %" PRIu64 " %s\n", v_, what);                           \
			bad = 1;                                                                       \
		}                                                                                      \
	} while (0)
	CHECK_ZERO(bad_len, "messages with a wrong length");
	CHECK_ZERO(bad_range, "invented messages (producer or seq out of range)");
	CHECK_ZERO(bad_sum, "messages with corrupt content");
	CHECK_ZERO(recv_errors, "receive errors");
#undef CHECK_ZERO
	return bad;
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: mpmc QUEUE PRODUCERS CONSUMERS MESSAGES_PER_PRODUCER [--mixed MAXSIZE]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct run rn = { 0 };
	size_t table, nchildren, started = 0;
	uint64_t t0, total;
	pid_t *pids;
	uint32_t producers_left, maxsize = 0;
	int status, failed = 0;
	double secs;

	if (argc != 5 && !(argc == 7 && strcmp(argv[5], "--mixed") == 0))
		return usage();
	rn.queue = argv[1];
	if (parse_u32(argv[2], 1, 256, &rn.producers) || parse_u32(argv[3], 1, 256, &rn.consumers) ||
	    parse_u32(argv[4], 1, 100000000, &rn.n) ||
	    (argc == 7 && parse_u32(argv[6], sizeof(struct msg_hdr), UINT32_MAX, &maxsize)))
		return usage();
	rn.maxsize = maxsize;
	total = (uint64_t)rn.producers * rn.n;
	table = sizeof(struct shared) + total * sizeof(_Atomic uint32_t);
	rn.sh = mmap(NULL, table, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rn.sh == MAP_FAILED) {
		perror("mpmc: mmap");
		return 1;
	}
	nchildren = rn.producers + rn.consumers;
	pids = calloc(nchildren, sizeof(*pids));
	if (!pids)
		return 1;

	signal(SIGALRM, on_alarm);
	alarm(WATCHDOG_S);
	fflush(NULL);
	for (size_t i = 0; i < nchildren; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("mpmc: fork");
			kill_all(pids, started);
			return 1;
		}
		if (pid == 0) {
			alarm(0);
			if (i < rn.producers)
				_exit(run_producer(&rn, (uint32_t)i));
			_exit(run_consumer(&rn, (uint32_t)(i - rn.producers)));
		}
		pids[i] = pid;
		started++;
	}
	/* everyone connected: start the clock */
	while (atomic_load(&rn.sh->ready) < nchildren) {
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid > 0 || timed_out) {
			fprintf(stderr, "mpmc: a child failed during set-up\n");
			kill_all(pids, nchildren);
			return 1;
		}
		usleep(1000);
	}
	t0 = now_ns();
	atomic_store(&rn.sh->go, 1);

	producers_left = rn.producers;
	for (size_t left = nchildren; left > 0;) {
		pid_t pid = waitpid(-1, &status, 0);
		size_t i;

		if (pid < 0) {
			if (errno == EINTR && timed_out) {
				fprintf(stderr, "mpmc: no end after %d s (%" PRIu64 " of %" PRIu64 " received)\n",
				        WATCHDOG_S, atomic_load(&rn.sh->received), total);
				kill_all(pids, nchildren);
				return 1;
			}
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < nchildren && pids[i] != pid; i++)
			;
		if (i == nchildren)
			continue;
		pids[i] = 0;
		left--;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "mpmc: %s %zu failed (%s %d)\n", i < rn.producers ? "producer" : "consumer",
			        i < rn.producers ? i : i - rn.producers, WIFEXITED(status) ? "status" : "signal",
			        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
			failed = 1;
			/* a producer may be blocked on a queue nobody empties */
			kill_all(pids, nchildren);
			break;
		}
		if (i < rn.producers && --producers_left == 0)
			atomic_store(&rn.sh->producers_done, 1);
	}
	alarm(0);

	secs = (double)(atomic_load(&rn.sh->last_ns) - t0) / 1e9;
	if (secs <= 0)
		secs = 1e-9;
	failed |= check_table(&rn);
	printf("mpmc: %" PRIu64 " messages (%u producers x %u consumers, %s%u bytes) in %.3f s: %.0f msgs/s%s\n",
	       atomic_load(&rn.sh->received), rn.producers, rn.consumers, rn.maxsize ? "mixed up to " : "",
	       rn.maxsize ? maxsize : MSG_SIZE_DEFAULT, secs, (double)atomic_load(&rn.sh->received) / secs,
	       failed ? " - FAILED" : ", exact accounting");
	free(pids);
	return failed;
}
