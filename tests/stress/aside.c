/* SPDX-License-Identifier: Apache-2.0 */
/*
 * aside.c - a receiver that keeps a message long does not stall its
 * queue; for t_aside.sh.
 *
 *   aside QUEUE COUNT SIZE
 *   aside hold QUEUE COUNT SIZE READY
 *   aside expect QUEUE SIZE ID
 *
 * QUEUE is at-least-once, with a ring of about 64 messages of SIZE bytes
 * and ack_timeout far away.  A holder takes message 0 with ipcq_recv and
 * keeps it, unacknowledged, while COUNT more go through the queue to a
 * worker that acknowledges each (many times the ring's room: ring space
 * comes back in order, so without the daemon moving the held chunk aside
 * the sender would wait for the holder).  Then the holder acknowledges
 * with ipcq_ack: the message is never delivered again, the counters say
 * it was moved and acknowledged, and the ring is empty.  Then the same
 * with ipcq_close in place of ipcq_ack.
 *
 * hold: the holder's part alone, with message id COUNT + 1 held: once
 * the daemon moved it aside, create the file READY and wait to be
 * killed, or for SIGUSR1: then acknowledge it with ipcq_ack (through the
 * daemon, which keeps it: also one restarted meanwhile), print
 * "acked: ok" or the error, and exit.  expect: that message comes again (to a view: intact, flagged
 * redelivered, deliveries 2 or more), once.
 * Exit 0 on success, 1 on a failed check, 2 on a usage error.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipcq.h"
#include "pattern.h"
#include "timing.h"

#define SEND_TIMEOUT_MS 5000 /* the daemon moves a chunk held a second or more: well within */
#define QUIET_MS 1500

static const char *name;
static unsigned count;
static size_t size;
static ipcq_client *client;

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("aside: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void build(unsigned char *p, uint32_t id)
{
	memcpy(p, &id, 4);
	pattern_fill(p + 4, size - 4, id);
}

static uint32_t check(const unsigned char *p, size_t n)
{
	unsigned char *want = malloc(size);
	uint32_t id;

	if (!want || n != size)
		fail("a message of %zu bytes, sent %zu", n, size);
	memcpy(&id, p, 4);
	if (id > 2 * count + 1)
		fail("message id %u never sent", id);
	build(want, id);
	if (memcmp(want, p, n) != 0)
		fail("message %u damaged", id);
	free(want);
	return id;
}

static ipcq_queue *open_as(int flags)
{
	ipcq_queue *q;
	int r = ipcq_open(client, name, flags, &q);

	if (r < 0)
		fail("open: %s", ipcq_strerror(r));
	return q;
}

static ipcq_stats stats(void)
{
	ipcq_stats st;
	int r = ipcq_stat(client, name, &st);

	if (r < 0)
		fail("stat: %s", ipcq_strerror(r));
	return st;
}

struct worker {
	ipcq_queue *q;
	uint32_t held; /* the id it must never see */
	unsigned want;
	unsigned got;
	const char *err;
};

/* Receive want messages, acknowledging each by the next ipcq_recv. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned char *buf = malloc(size);

	while (buf && w->got < w->want) {
		ssize_t n = ipcq_recv(w->q, buf, size, NULL, SEND_TIMEOUT_MS * 2);

		if (n < 0) {
			w->err = "the worker's receive timed out or failed";
			break;
		}
		if (check(buf, (size_t)n) == w->held) {
			w->err = "the held message was delivered to the worker";
			break;
		}
		w->got++;
	}
	ipcq_ack(w->q);
	free(buf);
	return NULL;
}

/* The holder takes message `first` (into kept) and keeps it while count
 * more go through to a worker; w is the worker's, done. */
static void pass_by(uint32_t first, ipcq_queue *tx, ipcq_queue *holder, unsigned char *kept, struct worker *w)
{
	unsigned char *msg = malloc(size);
	ipcq_stats before = stats(), after;
	uint64_t start, end;
	pthread_t th;
	ssize_t n;
	int r;

	if (!msg)
		fail("out of memory");
	*w = (struct worker){ .q = open_as(IPCQ_RECV), .held = first, .want = count };
	build(msg, first);
	r = ipcq_send(tx, msg, size, 0, SEND_TIMEOUT_MS);
	if (r < 0)
		fail("send: %s", ipcq_strerror(r));
	n = ipcq_recv(holder, kept, size, NULL, SEND_TIMEOUT_MS);
	if (n < 0 || check(kept, (size_t)n) != first)
		fail("the holder did not get message %u", first);
	if (pthread_create(&th, NULL, worker_main, w) != 0)
		fail("pthread_create");
	start = now_ms();
	for (uint32_t i = 1; i <= count; i++) {
		build(msg, first + i);
		r = ipcq_send(tx, msg, size, 0, SEND_TIMEOUT_MS);
		if (r < 0)
			fail("send %u of %u while a holder keeps one: %s (the held chunk stalls the ring)", i, count,
			     ipcq_strerror(r));
	}
	end = now_ms();
	pthread_join(th, NULL);
	if (w->err)
		fail("%s (%u of %u received)", w->err, w->got, w->want);
	after = stats();
	if (after.moved == before.moved)
		fail("nothing was moved aside");
	printf("aside: %u messages of %zu bytes went by a held one in %" PRIu64 " ms; moved %" PRIu64 "\n", count, size,
	       end - start, after.moved - before.moved);
	if (check(kept, size) != first)
		fail("the holder's copy changed");
	free(msg);
}

/* The holder takes message `first` and keeps it while count more go
 * through; then lets it go with ipcq_ack (or ipcq_close). */
static void round_of(uint32_t first, bool by_close)
{
	ipcq_queue *tx = open_as(IPCQ_SEND), *holder = open_as(IPCQ_RECV);
	unsigned char *msg = malloc(size), *kept = malloc(size);
	ipcq_stats before = stats(), after;
	struct worker w;
	ssize_t n;
	int r;

	if (!msg || !kept)
		fail("out of memory");
	pass_by(first, tx, holder, kept, &w);
	r = by_close ? ipcq_close(holder) : ipcq_ack(holder);
	if (r < 0)
		fail("%s: %s", by_close ? "ipcq_close" : "ipcq_ack", ipcq_strerror(r));
	/* never again: not to the worker, not to anyone */
	n = ipcq_recv(w.q, msg, size, NULL, QUIET_MS);
	if (n >= 0)
		fail("message %u delivered after the holder let it go", check(msg, (size_t)n));
	after = stats();
	if (after.acked - before.acked != count + 1)
		fail("acked moved by %" PRIu64 ", expected %u", after.acked - before.acked, count + 1);
	if (after.redelivered != before.redelivered)
		fail("redelivered moved by %" PRIu64, after.redelivered - before.redelivered);
	if (!by_close)
		ipcq_close(holder);
	ipcq_close(w.q);
	ipcq_close(tx);
	for (unsigned i = 0; i < 100 && (after = stats()).ring_used; i++)
		sleep_ms(20);
	if (after.ring_used || after.depth)
		fail("ring_used %" PRIu64 ", depth %" PRIu64 " once drained", after.ring_used, after.depth);
	free(msg);
	free(kept);
}

/* hold: keep message count + 1 until killed, once it was moved aside;
 * acknowledge it on SIGUSR1. */
__attribute__((noreturn)) static void hold(const char *ready)
{
	ipcq_queue *tx, *holder;
	unsigned char *kept = malloc(size);
	struct worker w;
	sigset_t usr1;
	FILE *f;
	int sig, r;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL); /* (the worker thread inherits it) */
	tx = open_as(IPCQ_SEND);
	holder = open_as(IPCQ_RECV);
	if (!kept)
		fail("out of memory");
	pass_by(count + 1, tx, holder, kept, &w);
	ipcq_close(w.q);
	f = fopen(ready, "w");
	if (!f || fclose(f) != 0)
		fail("cannot create %s", ready);
	if (sigwait(&usr1, &sig) != 0)
		fail("sigwait");
	r = ipcq_ack(holder);
	printf("acked: %s\n", r < 0 ? ipcq_strerror(r) : "ok");
	fflush(stdout);
	ipcq_close(holder);
	ipcq_close(tx);
	ipcq_disconnect(client);
	free(kept);
	exit(r < 0 ? 1 : 0);
}

/* expect: message id comes again, once, flagged. */
static void expect(uint32_t id)
{
	ipcq_queue *q = open_as(IPCQ_RECV);
	ipcq_msg m;
	int r = ipcq_recv_view(q, &m, SEND_TIMEOUT_MS);

	if (r < 0)
		fail("the held message did not come again: %s", ipcq_strerror(r));
	if (check(m.data, m.len) != id)
		fail("message %u came, not %u", check(m.data, m.len), id);
	if (!(m.flags & IPCQ_MSG_REDELIVERED) || m.deliveries < 2)
		fail("message %u came again with flags %#x, deliveries %u", id, m.flags, m.deliveries);
	printf("aside: message %u came again, deliveries %u\n", id, m.deliveries);
	ipcq_release(q, &m);
	r = ipcq_recv_view(q, &m, QUIET_MS);
	if (r == 0)
		fail("message %u came after it, deliveries %u", check(m.data, m.len), m.deliveries);
	ipcq_close(q);
}

static void check_queue(void)
{
	ipcq_stats st = stats();

	if (st.delivery != 1 || st.geo.ring_size / size > count / 4)
		fail("the queue must be at-least-once, with a ring of less than a quarter of the messages");
}

static int usage(void)
{
	fprintf(stderr, "usage: aside QUEUE COUNT SIZE | aside hold QUEUE COUNT SIZE READY | aside expect QUEUE SIZE ID\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *mode = "run";
	int r;

	if (argc == 4) {
		name = argv[1];
		count = (unsigned)atoi(argv[2]);
		size = (size_t)atol(argv[3]);
	} else if (argc == 6 && strcmp(argv[1], "hold") == 0) {
		mode = argv[1];
		name = argv[2];
		count = (unsigned)atoi(argv[3]);
		size = (size_t)atol(argv[4]);
	} else if (argc == 5 && strcmp(argv[1], "expect") == 0) {
		mode = argv[1];
		name = argv[2];
		size = (size_t)atol(argv[3]);
		count = (unsigned)atoi(argv[4]); /* the id: within check()'s bound */
	} else {
		return usage();
	}
	if (count == 0 || size < 8)
		return usage();
	r = ipcq_connect(&client, NULL);
	if (r < 0)
		fail("connect: %s", ipcq_strerror(r));
	if (strcmp(mode, "expect") == 0) {
		expect(count);
	} else {
		check_queue();
		if (strcmp(mode, "hold") == 0)
			hold(argv[5]);
		round_of(0, false);
		round_of(count + 1, true);
	}
	ipcq_disconnect(client);
	return 0;
}
