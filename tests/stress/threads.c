/*
 * threads.c - one queue handle shared by many threads: 4 threads send and
 * 4 receive through the same ipcq_queue at once, with sizes on both sides
 * of the inline limit, half the receivers copying and half reading in
 * place.  Exit 0 only if every message arrived exactly once and intact.
 *
 * usage: threads QUEUE MESSAGES_PER_SENDER
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

#include "ipcq.h"

#define SENDERS 4
#define RECEIVERS 4
#define MAX_SIZE 3000

struct msg_head {
	uint32_t sender;
	uint32_t seq;
	uint32_t len;
	uint32_t sum;
};

static ipcq_queue *queue;
static unsigned per_sender;
static _Atomic unsigned *seen; /* SENDERS * per_sender counters */
static _Atomic unsigned received, bad;
static _Atomic bool senders_done;

static uint32_t size_of(uint32_t sender, uint32_t seq)
{
	return (uint32_t)sizeof(struct msg_head) + (sender * 7919u + seq * 104729u) % MAX_SIZE;
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
	unsigned char buf[sizeof(struct msg_head) + MAX_SIZE];

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
	}
	return NULL;
}

static void check(const unsigned char *p, size_t n)
{
	unsigned char want[MAX_SIZE];
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

int main(int argc, char **argv)
{
	pthread_t s[SENDERS], r[RECEIVERS];
	ipcq_client *c;
	unsigned missing = 0, dups = 0;
	int ret;

	if (argc != 3 || (per_sender = (unsigned)strtoul(argv[2], NULL, 10)) == 0) {
		fprintf(stderr, "usage: threads QUEUE MESSAGES_PER_SENDER\n");
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
	for (uintptr_t i = 0; i < RECEIVERS; i++)
		pthread_create(&r[i], NULL, receiver, (void *)i);
	for (uintptr_t i = 0; i < SENDERS; i++)
		pthread_create(&s[i], NULL, sender, (void *)i);
	for (int i = 0; i < SENDERS; i++)
		pthread_join(s[i], NULL);
	atomic_store(&senders_done, true);
	for (int i = 0; i < RECEIVERS; i++)
		pthread_join(r[i], NULL);
	for (unsigned i = 0; i < SENDERS * per_sender; i++) {
		missing += seen[i] == 0;
		dups += seen[i] > 1;
	}
	ipcq_close(queue);
	ipcq_disconnect(c);
	free(seen);
	printf("threads: %u messages, %u missing, %u duplicated, %u bad\n", SENDERS * per_sender, missing, dups,
	       atomic_load(&bad));
	return missing || dups || atomic_load(&bad) ? 1 : 0;
}
