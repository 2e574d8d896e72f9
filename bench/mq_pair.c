/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mq_pair.c - the baseline under ipcq_send/ipcq_recv: a raw POSIX message
 * queue between one producer process and one consumer process, one
 * mq_send and one mq_receive per message, with the geometry of a default
 * ipcq queue's mq (10 messages of 512 bytes).
 *
 * The queue is unlinked as soon as both ends hold it (the producer opens
 * it before the fork, the consumer inherits the descriptor), so no name
 * is left behind whatever ends the run, a signal included.  The clock
 * runs from the producer's first send, after the consumer is up, to the
 * consumer's last receive.
 *
 * usage: mq_pair [SIZE [COUNT]]        (default: 64 bytes, 1000000)
 * prints: mq_pair size=SIZE count=COUNT seconds=S msgs_per_s=R
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define MQ_PAIR_MAX_MSGS 10
#define MQ_PAIR_MSG_SIZE 512

struct run {
	mqd_t mq;
	unsigned long size, count;
	struct bench_shared *sh;
};

static int consume(void *arg, int ready_fd)
{
	struct run *run = arg;
	char buf[MQ_PAIR_MSG_SIZE];

	if (bench_say_ready(ready_fd) < 0)
		return 1;
	for (unsigned long i = 0; i < run->count; i++) {
		ssize_t n = mq_receive(run->mq, buf, sizeof(buf), NULL);
		unsigned long seq = i;

		if (n < 0 && errno == EINTR) {
			i--;
			continue;
		}
		if (n < 0) {
			perror("mq_pair: mq_receive");
			return 1;
		}
		memcpy(&seq, buf, (size_t)n < sizeof(seq) ? (size_t)n : sizeof(seq));
		run->sh->bad += (unsigned long)n != run->size || (n >= (ssize_t)sizeof(seq) && seq != i);
		run->sh->received++;
	}
	run->sh->end_ns = bench_now_ns();
	return 0;
}

static int produce(const struct run *run)
{
	char buf[MQ_PAIR_MSG_SIZE];

	memset(buf, 0x5a, sizeof(buf));
	for (unsigned long i = 0; i < run->count; i++) {
		memcpy(buf, &i, run->size < sizeof(i) ? run->size : sizeof(i));
		if (mq_send(run->mq, buf, run->size, 0) < 0) {
			if (errno == EINTR) {
				i--;
				continue;
			}
			perror("mq_pair: mq_send");
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct mq_attr attr = { .mq_maxmsg = MQ_PAIR_MAX_MSGS, .mq_msgsize = MQ_PAIR_MSG_SIZE };
	struct run run = { .size = 64, .count = 1000000 };
	struct bench_peer consumer;
	char name[64];
	uint64_t start, ns;

	if (argc > 3 || (argc > 1 && bench_parse_ulong(argv[1], 0, MQ_PAIR_MSG_SIZE, &run.size) < 0) ||
	    (argc > 2 && bench_parse_ulong(argv[2], 1, ULONG_MAX, &run.count) < 0)) {
		fprintf(stderr, "usage: mq_pair [SIZE [COUNT]]   (SIZE at most %d, COUNT at least 1)\n",
			MQ_PAIR_MSG_SIZE);
		return 2;
	}
	run.sh = bench_shared_alloc(sizeof(*run.sh));
	if (!run.sh) {
		perror("mq_pair: mmap");
		return 1;
	}
	snprintf(name, sizeof(name), "/ipcq-bench-mq_pair.%ld", (long)getpid());
	run.mq = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
	if (run.mq == (mqd_t)-1) {
		fprintf(stderr, "mq_pair: mq_open %s: %s\n", name, strerror(errno));
		return 1;
	}
	mq_unlink(name);

	if (bench_peer_start(&consumer, consume, &run) < 0) {
		perror("mq_pair: fork");
		return 1;
	}
	if (bench_peer_wait_ready(&consumer) < 0) {
		fprintf(stderr, "mq_pair: the consumer did not start\n");
		bench_peer_finish(&consumer, 0);
		return 1;
	}
	start = bench_now_ns();
	if (produce(&run)) {
		bench_peer_finish(&consumer, 1);
		return 1;
	}
	if (bench_peer_finish(&consumer, 0) < 0) {
		fprintf(stderr, "mq_pair: the consumer failed\n");
		return 1;
	}
	mq_close(run.mq);
	if (run.sh->received != run.count || run.sh->bad) {
		fprintf(stderr, "mq_pair: received %" PRIu64 " messages (%" PRIu64 " of another size or out of order), sent %lu\n",
			run.sh->received, run.sh->bad, run.count);
		return 1;
	}
	ns = run.sh->end_ns - start;
	printf("mq_pair size=%lu count=%lu seconds=%.6f msgs_per_s=%.0f\n", run.size, run.count, (double)ns / 1e9,
	       bench_rate((double)run.count, ns));
	return 0;
}
