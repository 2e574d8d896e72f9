/* SPDX-License-Identifier: Apache-2.0 */
/*
 * payloads.c - every payload size that matters, through every API.
 *
 *   payloads QUEUE
 *
 * One process, one queue opened for send and receive.  Sizes are taken
 * around each boundary of the data path: empty, the inline limit
 * (msg_size - 8) and its neighbours, page sizes, a megabyte, and
 * max_payload itself.  Each payload is seeded random bytes, sent and
 * received one at a time and compared in full.  Then the error paths:
 * one byte over max_payload, a receive buffer one byte too small (the
 * message must stay receivable), and the zero-copy API: loan, publish
 * (also shorter than loaned), unloan, view and release.  At the end the
 * ring must be empty: nothing leaked.
 *
 * Prints one line per failed check and exits 0 only when all pass.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ipcq.h"
#include "pattern.h"

#define TIMEOUT_MS 5000

static int failures;
static const char *queue_name;
static ipcq_client *client;
static ipcq_queue *queue;
static ipcq_geometry geo;
static size_t inline_max;
static unsigned char *sendbuf, *recvbuf;
static size_t bufcap;

#define CHECK(cond, ...)                                   \
	do {                                               \
		if (!(cond)) {                             \
			fprintf(stderr, "FAIL: " __VA_ARGS__); \
			fputc('\n', stderr);               \
			failures++;                        \
		}                                          \
	} while (0)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int stat_queue(ipcq_stats *st)
{
	int r = ipcq_stat(client, queue_name, st);

	CHECK(r == 0, "ipcq_stat(%s): %s", queue_name, ipcq_strerror(r));
	return r;
}

/* ---- copy API ---- */

/* Send len seeded bytes with ipcq_send and get them back with ipcq_recv. */
static void round_trip_copy(size_t len, uint64_t seed)
{
	uint64_t sum;
	ssize_t n;
	unsigned prio = 99;
	int r;

	pattern_fill(sendbuf, len, seed);
	sum = pattern_checksum(sendbuf, len);
	r = ipcq_send(queue, sendbuf, len, 3, TIMEOUT_MS);
	CHECK(r == 0, "ipcq_send of %zu bytes: %s", len, ipcq_strerror(r));
	if (r < 0)
		return;
	memset(recvbuf, 0xee, len + 1 < bufcap ? len + 1 : bufcap);
	n = ipcq_recv(queue, recvbuf, bufcap, &prio, TIMEOUT_MS);
	CHECK(n == (ssize_t)len, "ipcq_recv of a %zu-byte message returned %zd (%s)", len, n,
	      n < 0 ? ipcq_strerror((int)n) : "wrong length");
	if (n != (ssize_t)len)
		return;
	CHECK(pattern_checksum(recvbuf, len) == sum && memcmp(recvbuf, sendbuf, len) == 0,
	      "%zu-byte message came back with other content", len);
	CHECK(prio == 3, "%zu-byte message came back with priority %u, sent with 3", len, prio);
}

/* Send len bytes with ipcq_send and read them in place. */
static void round_trip_view(size_t len, uint64_t seed)
{
	ipcq_msg m;
	int r;

	pattern_fill(sendbuf, len, seed);
	r = ipcq_send(queue, sendbuf, len, 0, TIMEOUT_MS);
	CHECK(r == 0, "ipcq_send of %zu bytes: %s", len, ipcq_strerror(r));
	if (r < 0)
		return;
	r = ipcq_recv_view(queue, &m, TIMEOUT_MS);
	CHECK(r == 0, "ipcq_recv_view of a %zu-byte message: %s", len, ipcq_strerror(r));
	if (r < 0)
		return;
	CHECK(m.len == len, "ipcq_recv_view: %zu bytes, sent %zu", m.len, len);
	CHECK(m.len != len || len == 0 || memcmp(m.data, sendbuf, len) == 0,
	      "ipcq_recv_view: %zu-byte message with other content", len);
	CHECK(m.flags == 0, "ipcq_recv_view: flags %#x on a fresh message", m.flags);
	r = ipcq_release(queue, &m);
	CHECK(r == 0, "ipcq_release of a %zu-byte view: %s", len, ipcq_strerror(r));
}

static void test_sizes_round_trip(void)
{
	const size_t sizes[] = {
		0, 1, 2, inline_max - 1, inline_max, inline_max + 1, 4095, 4096, 65536,
		(1u << 20) - 1, 1u << 20, geo.max_payload - 1, geo.max_payload,
	};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		round_trip_copy(sizes[i], 1000 + i);
		round_trip_view(sizes[i], 2000 + i);
	}
}

static void test_oversized_send_fails_at_once(void)
{
	double t0 = now_s();
	void *loan = NULL;
	int r = ipcq_send(queue, sendbuf, geo.max_payload + 1, 0, -1);

	CHECK(r == -EMSGSIZE, "send of max_payload+1 bytes returned %d (%s), expected -EMSGSIZE", r,
	      ipcq_strerror(r));
	CHECK(now_s() - t0 < 1.0, "send of max_payload+1 bytes took %.2f s to fail", now_s() - t0);
	r = ipcq_loan(queue, geo.max_payload + 1, &loan, -1);
	CHECK(r == -EMSGSIZE, "loan of max_payload+1 bytes returned %d (%s), expected -EMSGSIZE", r,
	      ipcq_strerror(r));
}

/* A buffer one byte short gets -EMSGSIZE; the message stays queued, with
 * its priority, and comes whole with a big enough buffer. */
static void small_buffer_keeps_message(ipcq_queue *rq, size_t len, uint64_t seed, const char *how)
{
	ssize_t n;
	unsigned prio = 0;
	int r;

	pattern_fill(sendbuf, len, seed);
	r = ipcq_send(queue, sendbuf, len, 7, TIMEOUT_MS);
	CHECK(r == 0, "ipcq_send of %zu bytes: %s", len, ipcq_strerror(r));
	if (r < 0)
		return;
	n = ipcq_recv(rq, recvbuf, len - 1, NULL, TIMEOUT_MS);
	CHECK(n == -EMSGSIZE, "%s: ipcq_recv of a %zu-byte message into %zu bytes returned %zd (%s), expected -EMSGSIZE",
	      how, len, len - 1, n, ipcq_strerror((int)n));
	n = ipcq_recv(rq, recvbuf, bufcap, &prio, 1000);
	CHECK(n == (ssize_t)len, "%s: the %zu-byte message is not receivable after -EMSGSIZE: %zd (%s)", how, len, n,
	      n < 0 ? ipcq_strerror((int)n) : "wrong length");
	if (n == (ssize_t)len) {
		CHECK(memcmp(recvbuf, sendbuf, len) == 0, "%s: %zu-byte message changed after -EMSGSIZE", how, len);
		CHECK(prio == 7, "%s: %zu-byte message lost its priority after -EMSGSIZE (%u)", how, len, prio);
	}
}

static void test_small_buffer_gets_emsgsize(void)
{
	small_buffer_keeps_message(queue, 100, 3001, "send+recv handle");
	small_buffer_keeps_message(queue, inline_max, 3002, "send+recv handle");
	small_buffer_keeps_message(queue, 100000, 3003, "send+recv handle");
}

/* The same through a handle opened for receiving only, as consumers do. */
static void test_small_buffer_on_recv_only_handle(void)
{
	ipcq_queue *rq;
	int r = ipcq_open(client, queue_name, IPCQ_RECV, &rq);

	CHECK(r == 0, "open %s for receiving only: %s", queue_name, ipcq_strerror(r));
	if (r < 0)
		return;
	small_buffer_keeps_message(rq, 100, 3101, "receive-only handle");
	small_buffer_keeps_message(rq, 100000, 3102, "receive-only handle");
	ipcq_close(rq);
}

/* ---- zero-copy API ---- */

/* Loan loan_len bytes, write them, publish pub_len <= loan_len of them, and
 * read them in place. */
static void loan_publish_view(size_t loan_len, size_t pub_len, uint64_t seed)
{
	void *buf = NULL;
	ipcq_msg m;
	int r;

	r = ipcq_loan(queue, loan_len, &buf, TIMEOUT_MS);
	CHECK(r == 0 && buf, "ipcq_loan of %zu bytes: %s", loan_len, ipcq_strerror(r));
	if (r < 0)
		return;
	pattern_fill(buf, loan_len, seed);
	memcpy(sendbuf, buf, pub_len);
	r = ipcq_publish(queue, buf, pub_len, 2);
	CHECK(r == 0, "ipcq_publish of %zu of %zu loaned bytes: %s", pub_len, loan_len, ipcq_strerror(r));
	if (r < 0) {
		ipcq_unloan(queue, buf);
		return;
	}
	r = ipcq_recv_view(queue, &m, TIMEOUT_MS);
	CHECK(r == 0, "ipcq_recv_view of a published loan (%zu bytes): %s", pub_len, ipcq_strerror(r));
	if (r < 0)
		return;
	CHECK(m.len == pub_len, "published %zu of %zu loaned bytes, the view has %zu", pub_len, loan_len, m.len);
	CHECK(m.len != pub_len || pub_len == 0 || memcmp(m.data, sendbuf, pub_len) == 0,
	      "published loan of %zu bytes has other content", pub_len);
	CHECK(m.prio == 2, "published loan came with priority %u, published with 2", m.prio);
	r = ipcq_release(queue, &m);
	CHECK(r == 0, "ipcq_release of a %zu-byte view: %s", pub_len, ipcq_strerror(r));
}

static void test_loan_publish_view(void)
{
	const size_t sizes[] = { 0, 1, inline_max, inline_max + 1, 4096, 100000, 1u << 20, geo.max_payload };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		loan_publish_view(sizes[i], sizes[i], 4000 + i);
	/* publishing fewer bytes than loaned */
	loan_publish_view(100000, 5000, 4100);
	loan_publish_view(100000, 0, 4101);
	loan_publish_view(1u << 20, inline_max, 4102);
	loan_publish_view(1000, 999, 4103);
}

/* A loaned message can also be received with the copy API. */
static void test_loan_received_by_copy(void)
{
	void *buf = NULL;
	ssize_t n;
	int r = ipcq_loan(queue, 70000, &buf, TIMEOUT_MS);

	CHECK(r == 0, "ipcq_loan of 70000 bytes: %s", ipcq_strerror(r));
	if (r < 0)
		return;
	pattern_fill(buf, 70000, 4200);
	memcpy(sendbuf, buf, 70000);
	r = ipcq_publish(queue, buf, 70000, 0);
	CHECK(r == 0, "ipcq_publish: %s", ipcq_strerror(r));
	n = ipcq_recv(queue, recvbuf, bufcap, NULL, TIMEOUT_MS);
	CHECK(n == 70000 && memcmp(recvbuf, sendbuf, 70000) == 0, "copy receive of a published loan: %zd", n);
}

static void test_publish_more_than_loaned_fails(void)
{
	void *buf = NULL;
	int r = ipcq_loan(queue, 1000, &buf, TIMEOUT_MS);

	CHECK(r == 0, "ipcq_loan of 1000 bytes: %s", ipcq_strerror(r));
	if (r < 0)
		return;
	r = ipcq_publish(queue, buf, 100000, 0);
	CHECK(r < 0, "publishing 100000 bytes of a 1000-byte loan succeeded");
	r = ipcq_unloan(queue, buf);
	CHECK(r == 0, "ipcq_unloan after a refused publish: %s", ipcq_strerror(r));
}

static void test_unloan_gives_space_back(void)
{
	void *a = NULL, *b = NULL, *c = NULL;
	ipcq_stats st;
	ipcq_msg m;
	int r;

	r = ipcq_loan(queue, 1u << 20, &a, TIMEOUT_MS);
	CHECK(r == 0, "ipcq_loan of 1 MiB: %s", ipcq_strerror(r));
	if (r < 0)
		return;
	if (stat_queue(&st) == 0)
		CHECK(st.ring_used >= (1u << 20) + 64, "ring_used %" PRIu64 " with a 1 MiB loan out", st.ring_used);
	r = ipcq_unloan(queue, a);
	CHECK(r == 0, "ipcq_unloan: %s", ipcq_strerror(r));
	if (stat_queue(&st) == 0)
		CHECK(st.ring_used == 0 && st.ring_chunks == 0,
		      "after ipcq_unloan: ring_used %" PRIu64 ", ring_chunks %" PRIu64 ", expected 0", st.ring_used,
		      st.ring_chunks);
	r = ipcq_unloan(queue, a);
	CHECK(r < 0, "a second ipcq_unloan of the same loan succeeded");

	/* out of order: the first loan goes back while later ones live */
	r = ipcq_loan(queue, 200000, &a, TIMEOUT_MS);
	if (r == 0)
		r = ipcq_loan(queue, 300000, &b, TIMEOUT_MS);
	if (r == 0)
		r = ipcq_loan(queue, 400000, &c, TIMEOUT_MS);
	CHECK(r == 0, "three loans: %s", ipcq_strerror(r));
	if (r < 0)
		return;
	pattern_fill(b, 300000, 4300);
	memcpy(sendbuf, b, 300000);
	r = ipcq_unloan(queue, a);
	CHECK(r == 0, "ipcq_unloan of the first of three loans: %s", ipcq_strerror(r));
	r = ipcq_publish(queue, b, 300000, 0);
	CHECK(r == 0, "ipcq_publish of the second loan: %s", ipcq_strerror(r));
	r = ipcq_unloan(queue, c);
	CHECK(r == 0, "ipcq_unloan of the third loan: %s", ipcq_strerror(r));
	r = ipcq_unloan(queue, b);
	CHECK(r < 0, "ipcq_unloan of a published loan succeeded");
	r = ipcq_recv_view(queue, &m, TIMEOUT_MS);
	CHECK(r == 0 && m.len == 300000 && memcmp(m.data, sendbuf, 300000) == 0,
	      "the loan published between two unloans did not arrive intact: %s", ipcq_strerror(r));
	if (r == 0)
		ipcq_release(queue, &m);
}

/* Release a view out of order: a later chunk before an earlier one. */
static void test_views_released_out_of_order(void)
{
	ipcq_msg m[3];
	int r;

	for (int i = 0; i < 3; i++) {
		pattern_fill(sendbuf, 50000 + (size_t)i, 4400 + (uint64_t)i);
		r = ipcq_send(queue, sendbuf, 50000 + (size_t)i, 0, TIMEOUT_MS);
		CHECK(r == 0, "ipcq_send: %s", ipcq_strerror(r));
	}
	for (int i = 0; i < 3; i++) {
		r = ipcq_recv_view(queue, &m[i], TIMEOUT_MS);
		CHECK(r == 0 && m[i].len == 50000 + (size_t)i, "view %d: %s, %zu bytes", i, ipcq_strerror(r),
		      r == 0 ? m[i].len : 0);
		if (r < 0)
			return;
		pattern_fill(sendbuf, 50000 + (size_t)i, 4400 + (uint64_t)i);
		CHECK(memcmp(m[i].data, sendbuf, m[i].len) == 0, "view %d has other content", i);
	}
	r = ipcq_release(queue, &m[2]);
	CHECK(r == 0, "release of the third view: %s", ipcq_strerror(r));
	r = ipcq_release(queue, &m[0]);
	CHECK(r == 0, "release of the first view: %s", ipcq_strerror(r));
	r = ipcq_release(queue, &m[1]);
	CHECK(r == 0, "release of the second view: %s", ipcq_strerror(r));
}

static void test_nothing_leaked(void)
{
	ipcq_stats st;
	ssize_t n = ipcq_recv(queue, recvbuf, bufcap, NULL, 0);

	CHECK(n == -EAGAIN, "a message is left over at the end: ipcq_recv returned %zd", n);
	if (stat_queue(&st) < 0)
		return;
	CHECK(st.depth == 0, "depth %" PRIu64 " at the end, expected 0", st.depth);
	CHECK(st.ring_used == 0 && st.ring_chunks == 0,
	      "at the end: ring_used %" PRIu64 ", ring_chunks %" PRIu64 ", expected 0 and 0", st.ring_used,
	      st.ring_chunks);
	CHECK(st.sent == st.received, "sent %" PRIu64 " but received %" PRIu64, st.sent, st.received);
}

int main(int argc, char **argv)
{
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: payloads QUEUE\n");
		return 2;
	}
	queue_name = argv[1];
	r = ipcq_connect(&client, NULL);
	if (r < 0) {
		fprintf(stderr, "payloads: connect: %s\n", ipcq_strerror(r));
		return 1;
	}
	r = ipcq_open(client, queue_name, IPCQ_SEND | IPCQ_RECV | IPCQ_CREATE, &queue);
	if (r < 0) {
		fprintf(stderr, "payloads: open %s: %s (%s)\n", queue_name, ipcq_strerror(r), ipcq_last_error(client));
		return 1;
	}
	r = ipcq_geometry_of(queue, &geo);
	if (r < 0 || geo.msg_size <= 8 || geo.max_payload < (1u << 20) + 1) {
		fprintf(stderr, "payloads: unusable geometry (%s)\n", ipcq_strerror(r));
		return 1;
	}
	inline_max = geo.msg_size - 8;
	bufcap = geo.max_payload + 1;
	sendbuf = malloc(bufcap);
	recvbuf = malloc(bufcap);
	if (!sendbuf || !recvbuf)
		return 1;

	test_sizes_round_trip();
	test_oversized_send_fails_at_once();
	test_small_buffer_gets_emsgsize();
	test_loan_publish_view();
	test_loan_received_by_copy();
	test_publish_more_than_loaned_fails();
	test_unloan_gives_space_back();
	test_views_released_out_of_order();
	/* last: when it fails it leaves a message or a chunk behind */
	test_small_buffer_on_recv_only_handle();
	test_nothing_leaked();

	ipcq_close(queue);
	ipcq_disconnect(client);
	free(sendbuf);
	free(recvbuf);
	if (failures) {
		fprintf(stderr, "payloads: %d checks failed\n", failures);
		return 1;
	}
	printf("payloads: all checks passed (inline_max %zu, max_payload %" PRIu64 ")\n", inline_max,
	       geo.max_payload);
	return 0;
}
