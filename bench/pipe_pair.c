/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pipe_pair.c - a reference for small messages: a pipe between one
 * producer process and one consumer process, one write(2) of SIZE bytes
 * per message and reads of exactly SIZE bytes (one read(2) per message
 * unless the kernel splits it), as a hand-rolled pipe protocol of fixed
 * records would do.  A pipe is a byte stream: it keeps no boundaries and
 * only one reader can share it safely, which is what a queue adds.
 *
 * usage: pipe_pair [SIZE [COUNT]]      (default: 64 bytes, 1000000)
 * prints: pipe_pair size=SIZE count=COUNT seconds=S msgs_per_s=R
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define PIPE_SIZE_MAX 4096 /* PIPE_BUF: a write of this much is never split among writers */

struct run {
	int fds[2];
	unsigned long size, count;
	struct bench_shared *sh;
};

static int consume(void *arg, int ready_fd)
{
	struct run *run = arg;
	char buf[PIPE_SIZE_MAX];

	close(run->fds[1]);
	if (bench_say_ready(ready_fd) < 0)
		return 1;
	for (unsigned long i = 0; i < run->count; i++) {
		size_t got = 0;
		uint64_t seq = i;

		while (got < run->size) {
			ssize_t n = read(run->fds[0], buf + got, run->size - got);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				fprintf(stderr, "pipe_pair: read: %s\n", n ? strerror(errno) : "end of file");
				return 1;
			}
			got += (size_t)n;
		}
		memcpy(&seq, buf, run->size < sizeof(seq) ? run->size : sizeof(seq));
		run->sh->bad += run->size >= sizeof(seq) && seq != i;
	}
	run->sh->end_ns = bench_now_ns();
	return 0;
}

static int produce(const struct run *run)
{
	char buf[PIPE_SIZE_MAX];

	memset(buf, 0x5a, sizeof(buf));
	for (unsigned long i = 0; i < run->count; i++) {
		uint64_t seq = i; /* as the consumer reads it, whatever the width of long */
		ssize_t n;

		memcpy(buf, &seq, run->size < sizeof(seq) ? run->size : sizeof(seq));
		do
			n = write(run->fds[1], buf, run->size);
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)run->size) {
			fprintf(stderr, "pipe_pair: write: %s\n", n < 0 ? strerror(errno) : "short");
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct run run = { .size = 64, .count = 1000000 };
	struct bench_peer consumer;
	uint64_t start, ns;

	if (argc > 3 || (argc > 1 && bench_parse_ulong(argv[1], 1, PIPE_SIZE_MAX, &run.size) < 0) ||
	    (argc > 2 && bench_parse_ulong(argv[2], 1, ULONG_MAX, &run.count) < 0)) {
		fprintf(stderr, "usage: pipe_pair [SIZE [COUNT]]   (SIZE 1 to %d, COUNT at least 1)\n", PIPE_SIZE_MAX);
		return 2;
	}
	run.sh = bench_shared_alloc(sizeof(*run.sh));
	if (!run.sh || pipe(run.fds) < 0) {
		perror("pipe_pair");
		return 1;
	}
	if (bench_peer_start(&consumer, consume, &run) < 0 || bench_peer_wait_ready(&consumer) < 0) {
		fprintf(stderr, "pipe_pair: the consumer did not start\n");
		bench_peer_finish(&consumer, 1);
		return 1;
	}
	close(run.fds[0]);
	start = bench_now_ns();
	if (produce(&run)) {
		bench_peer_finish(&consumer, 1);
		return 1;
	}
	close(run.fds[1]);
	if (bench_peer_finish(&consumer, 0) < 0) {
		fprintf(stderr, "pipe_pair: the consumer failed\n");
		return 1;
	}
	if (run.sh->bad) {
		fprintf(stderr, "pipe_pair: %" PRIu64 " records out of order\n", run.sh->bad);
		return 1;
	}
	ns = run.sh->end_ns - start;
	printf("pipe_pair size=%lu count=%lu seconds=%.6f msgs_per_s=%.0f\n", run.size, run.count, (double)ns / 1e9,
	       bench_rate((double)run.count, ns));
	return 0;
}
