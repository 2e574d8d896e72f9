/* SPDX-License-Identifier: Apache-2.0 */
/*
 * threads.c - one queue handle shared by many threads: 4 threads send and
 * 4 receive through the same ipcq_queue at once, with sizes on both sides
 * of the inline limit, half the receivers copying and half reading in
 * place.  Exit 0 only if every message arrived exactly once and intact.
 *
 * With -s, 6 threads receive (more than the batches a handle holds), each
 * with ipcq_recv into a buffer that is mostly too small first: that
 * returns -EMSGSIZE and keeps the message on the handle, and a later
 * receive (this thread's, with a buffer big enough, or another's) returns
 * it.  The receivers start once a quarter of the messages wait, so they
 * take batches from a backlog.  Some messages are larger than a batch
 * record, so they travel as ring chunks of their own.  Exit 0 only if every message arrived exactly
 * once and intact, -EMSGSIZE did happen, and afterwards, with the handle
 * still open, the queue is empty and its ring holds no chunk.
 *
 * usage: threads [-s] QUEUE MESSAGES_PER_SENDER
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipcq.h"

#define SENDERS 4
#define RECEIVERS 4
#define RECEIVERS_SMALL_FIRST 6
#define MAX_SIZE 3000
#define BIG_SIZE 20000 /* above a batch record's largest (16 KiB) */
#define SMALL_CAP 64   /* the first buffer: less than this, so mostly too small */

struct msg_head {
	uint32_t sender;
	uint32_t seq;
	uint32_t len;
	uint32_t sum;
};

static ipcq_queue *queue;
static unsigned per_sender;
static bool small_first; /* -s */
static _Atomic unsigned *seen; /* SENDERS * per_sender counters */
static _Atomic unsigned sent, received, bad, too_small;
static _Atomic bool senders_done;

static uint32_t size_of(uint32_t sender, uint32_t seq)
{
	uint32_t spread = sender * 7919u + seq * 104729u;

	/* -s: mostly small (batch records under backpressure), some above
	 * the inline size (ring chunks), a few above a record's largest */
	if (small_first && spread % 17 == 0)
		return (uint32_t)sizeof(struct msg_head) + BIG_SIZE - spread % 1000;
	if (small_first && spread % 17 > 3)
		return (uint32_t)sizeof(struct msg_head) + spread % 400;
	return (uint32_t)sizeof(struct msg_head) + spread % MAX_SIZE;
}

static uint32_t fill(unsigned char *p, uint32_t n, uint32_t salt)
{
	uint32_t sum = 0;

	for (uint32_t i = 0; i < n; i++) {
		p[i] = (unsigned char)(i * 31u + salt);
		sum = sum * 33u + p[i];
	}
	return sum;
}

static void *sender(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	unsigned char buf[sizeof(struct msg_head) + BIG_SIZE];

	for (uint32_t seq = 0; seq < per_sender; seq++) {
		struct msg_head h = { .sender = id, .seq = seq, .len = size_of(id, seq) };
		int r;

		h.sum = fill(buf + sizeof(h), h.len - (uint32_t)sizeof(h), id ^ seq);
		memcpy(buf, &h, sizeof(h));
		r = ipcq_send(queue, buf, h.len, 0, -1);
		if (r < 0) {
			fprintf(stderr, "threads: send: %s\n", ipcq_strerror(r));
			atomic_fetch_add(&bad, 1);
		}
		atomic_fetch_add(&sent, 1);
	}
	return NULL;
}

static void check(const unsigned char *p, size_t n)
{
	unsigned char want[BIG_SIZE];
	struct msg_head h;

	if (n < sizeof(h)) {
		atomic_fetch_add(&bad, 1);
		return;
	}
	memcpy(&h, p, sizeof(h));
	if (h.sender >= SENDERS || h.seq >= per_sender || h.len != n || n != size_of(h.sender, h.seq) ||
	    fill(want, h.len - (uint32_t)sizeof(h), h.sender ^ h.seq) != h.sum ||
	    memcmp(want, p + sizeof(h), h.len - sizeof(h)) != 0) {
		atomic_fetch_add(&bad, 1);
		return;
	}
	atomic_fetch_add(&seen[h.sender * per_sender + h.seq], 1);
}

static void *receiver(void *arg)
{
	int in_place = (int)(uintptr_t)arg % 2;
	unsigned char buf[sizeof(struct msg_head) + MAX_SIZE];

	while (atomic_load(&received) < SENDERS * per_sender) {
		ipcq_msg m;
		ssize_t n;

		if (in_place) {
			n = ipcq_recv_view(queue, &m, 200);
			if (n == 0) {
				check(m.data, m.len);
				ipcq_release(queue, &m);
			}
		} else {
			n = ipcq_recv(queue, buf, sizeof(buf), NULL, 200);
			if (n >= 0)
				check(buf, (size_t)n);
		}
		if (n >= 0)
			atomic_fetch_add(&received, 1);
		else if (n == -ETIMEDOUT && atomic_load(&senders_done))
			break; /* nothing more is coming: what is missing is lost */
		else if (n != -ETIMEDOUT) {
			fprintf(stderr, "threads: recv: %s\n", ipcq_strerror((int)n));
			atomic_fetch_add(&bad, 1);
			break;
		}
	}
	return NULL;
}

/* -s: ipcq_recv into a buffer mostly too small, then into one that fits
 * every message.  A message refused with -EMSGSIZE stays on the handle:
 * the next receive on it, in whichever thread, returns it. */
static void *small_first_receiver(void *arg)
{
	uint32_t rnd = 0x9e3779b9u * ((uint32_t)(uintptr_t)arg + 1);
	unsigned char buf[sizeof(struct msg_head) + BIG_SIZE];

	/* start once a quarter is waiting: the window is full and the backlog
	 * holds batches, which the receivers then take all at once */
	while (atomic_load(&sent) < SENDERS * per_sender / 4 && !atomic_load(&senders_done))
		usleep(1000);
	while (atomic_load(&received) < SENDERS * per_sender) {
		ssize_t n;

		rnd ^= rnd << 13;
		rnd ^= rnd >> 17;
		rnd ^= rnd << 5;
		n = ipcq_recv(queue, buf, rnd % SMALL_CAP, NULL, 200);
		if (n == -EMSGSIZE) {
			atomic_fetch_add(&too_small, 1);
			n = ipcq_recv(queue, buf, sizeof(buf), NULL, 200);
		}
		if (n >= 0) {
			check(buf, (size_t)n);
			atomic_fetch_add(&received, 1);
		} else if (n == -ETIMEDOUT && atomic_load(&senders_done)) {
			break; /* nothing more is coming: what is missing is lost */
		} else if (n != -ETIMEDOUT) {
			fprintf(stderr, "threads: recv: %s\n", ipcq_strerror((int)n));
			atomic_fetch_add(&bad, 1);
			break;
		}
	}
	return NULL;
}

/* -s: with every message received and the handle still open, nothing
 * waits and no chunk is left in the ring (a kept message or a batch
 * given back that nobody released would hold one). */
static unsigned leftovers(ipcq_client *c, const char *name)
{
	ipcq_stats st;
	int ret = ipcq_stat(c, name, &st);

	if (ret < 0) {
		fprintf(stderr, "threads: stat: %s\n", ipcq_strerror(ret));
		return 1;
	}
	if (st.depth || st.ring_used || st.ring_chunks) {
		fprintf(stderr, "threads: afterwards depth %llu, ring_used %llu, ring_chunks %llu\n",
		        (unsigned long long)st.depth, (unsigned long long)st.ring_used,
		        (unsigned long long)st.ring_chunks);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	pthread_t s[SENDERS], r[RECEIVERS_SMALL_FIRST];
	unsigned receivers = RECEIVERS, missing = 0, dups = 0, left = 0;
	ipcq_client *c;
	int ret;

	if (argc == 4 && strcmp(argv[1], "-s") == 0) {
		small_first = true;
		receivers = RECEIVERS_SMALL_FIRST;
		argv++;
		argc--;
	}
	if (argc != 3 || (per_sender = (unsigned)strtoul(argv[2], NULL, 10)) == 0) {
		fprintf(stderr, "usage: threads [-s] QUEUE MESSAGES_PER_SENDER\n");
		return 2;
	}
	seen = calloc((size_t)SENDERS * per_sender, sizeof(*seen));
	ret = ipcq_connect(&c, NULL);
	if (ret == 0)
		ret = ipcq_open(c, argv[1], IPCQ_SEND | IPCQ_RECV | IPCQ_CREATE, &queue);
	if (ret < 0 || !seen) {
		fprintf(stderr, "threads: %s\n", ipcq_strerror(ret));
		return 1;
	}
	for (uintptr_t i = 0; i < receivers; i++)
		pthread_create(&r[i], NULL, small_first ? small_first_receiver : receiver, (void *)i);
	for (uintptr_t i = 0; i < SENDERS; i++)
		pthread_create(&s[i], NULL, sender, (void *)i);
	for (int i = 0; i < SENDERS; i++)
		pthread_join(s[i], NULL);
	atomic_store(&senders_done, true);
	for (unsigned i = 0; i < receivers; i++)
		pthread_join(r[i], NULL);
	for (unsigned i = 0; i < SENDERS * per_sender; i++) {
		missing += seen[i] == 0;
		dups += seen[i] > 1;
	}
	if (small_first)
		left = leftovers(c, argv[1]);
	ipcq_close(queue);
	ipcq_disconnect(c);
	free(seen);
	printf("threads: %u messages, %u missing, %u duplicated, %u bad", SENDERS * per_sender, missing, dups,
	       atomic_load(&bad));
	if (small_first)
		printf(", %u receives with a buffer too small", atomic_load(&too_small));
	printf("\n");
	if (small_first && atomic_load(&too_small) == 0) {
		fprintf(stderr, "threads: no receive found its buffer too small: the case was not exercised\n");
		return 1;
	}
	return missing || dups || atomic_load(&bad) || left ? 1 : 0;
}
