/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mq_pingpong.c - the baseline under an ipcq round trip: two raw POSIX
 * message queues (10 messages of 512 bytes, a default ipcq queue's mq),
 * a pinger process that sends a message on one and waits for it to come
 * back on the other, and an echo process that sends back each message it
 * receives.  Each round trip is timed on its own (CLOCK_MONOTONIC from
 * before the mq_send to after the mq_receive of the answer), and the
 * percentiles of all of them are reported.  Both queues are unlinked as
 * soon as both processes hold them.
 *
 * usage: mq_pingpong [SIZE [COUNT]]    (default: 64 bytes, 100000 round trips)
 * prints: mq_pingpong size=SIZE count=COUNT seconds=S rtt_per_s=R
 *         p50_us=X p99_us=Y max_us=Z
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define PINGPONG_MAX_MSGS 10
#define PINGPONG_MSG_SIZE 512
#define PINGPONG_COUNT_MAX (100ul << 20) /* samples kept in memory: 800 MiB at most */

struct run {
	mqd_t ping, pong;
	unsigned long size, count;
};

static ssize_t receive(mqd_t mq, char *buf)
{
	ssize_t n;

	do
		n = mq_receive(mq, buf, PINGPONG_MSG_SIZE, NULL);
	while (n < 0 && errno == EINTR);
	return n;
}

static int transmit(mqd_t mq, const char *buf, size_t len)
{
	int r;

	do
		r = mq_send(mq, buf, len, 0);
	while (r < 0 && errno == EINTR);
	return r;
}

static int echo(void *arg, int ready_fd)
{
	const struct run *run = arg;
	char buf[PINGPONG_MSG_SIZE];

	if (bench_say_ready(ready_fd) < 0)
		return 1;
	for (unsigned long i = 0; i < run->count; i++) {
		ssize_t n = receive(run->ping, buf);

		if (n < 0 || transmit(run->pong, buf, (size_t)n) < 0) {
			perror("mq_pingpong: echo");
			return 1;
		}
	}
	return 0;
}

static int ping(const struct run *run, uint64_t *samples)
{
	char buf[PINGPONG_MSG_SIZE], back[PINGPONG_MSG_SIZE];

	memset(buf, 0x5a, sizeof(buf));
	for (unsigned long i = 0; i < run->count; i++) {
		uint64_t t0 = bench_now_ns(), seq = i;
		ssize_t n;

		memcpy(buf, &seq, run->size < sizeof(seq) ? run->size : sizeof(seq));
		if (transmit(run->ping, buf, run->size) < 0 || (n = receive(run->pong, back)) < 0) {
			perror("mq_pingpong: ping");
			return 1;
		}
		samples[i] = bench_now_ns() - t0;
		if ((size_t)n != run->size || memcmp(buf, back, run->size) != 0) {
			fprintf(stderr, "mq_pingpong: round trip %lu came back changed\n", i);
			return 1;
		}
	}
	return 0;
}

static mqd_t open_unlinked(const char *what)
{
	struct mq_attr attr = { .mq_maxmsg = PINGPONG_MAX_MSGS, .mq_msgsize = PINGPONG_MSG_SIZE };
	char name[64];
	mqd_t mq;

	snprintf(name, sizeof(name), "/ipcq-bench-mq_pingpong.%s.%ld", what, (long)getpid());
	mq = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
	if (mq == (mqd_t)-1)
		fprintf(stderr, "mq_pingpong: mq_open %s: %s\n", name, strerror(errno));
	else
		mq_unlink(name);
	return mq;
}

int main(int argc, char **argv)
{
	struct run run = { .size = 64, .count = 100000 };
	struct bench_peer echoer;
	struct bench_latency lat;
	uint64_t *samples, start, ns;

	if (argc > 3 || (argc > 1 && bench_parse_ulong(argv[1], 0, PINGPONG_MSG_SIZE, &run.size) < 0) ||
	    (argc > 2 && bench_parse_ulong(argv[2], 1, PINGPONG_COUNT_MAX, &run.count) < 0)) {
		fprintf(stderr, "usage: mq_pingpong [SIZE [COUNT]]   (SIZE at most %d, COUNT 1 to %lu)\n",
			PINGPONG_MSG_SIZE, PINGPONG_COUNT_MAX);
		return 2;
	}
	samples = malloc(run.count * sizeof(*samples));
	if (!samples) {
		perror("mq_pingpong");
		return 1;
	}
	run.ping = open_unlinked("ping");
	run.pong = run.ping == (mqd_t)-1 ? (mqd_t)-1 : open_unlinked("pong");
	if (run.pong == (mqd_t)-1) {
		free(samples);
		return 1;
	}
	if (bench_peer_start(&echoer, echo, &run) < 0 || bench_peer_wait_ready(&echoer) < 0) {
		fprintf(stderr, "mq_pingpong: the echo process did not start\n");
		bench_peer_finish(&echoer, 1);
		free(samples);
		return 1;
	}
	start = bench_now_ns();
	if (ping(&run, samples)) {
		bench_peer_finish(&echoer, 1);
		free(samples);
		return 1;
	}
	ns = bench_now_ns() - start;
	if (bench_peer_finish(&echoer, 0) < 0) {
		fprintf(stderr, "mq_pingpong: the echo process failed\n");
		free(samples);
		return 1;
	}
	mq_close(run.ping);
	mq_close(run.pong);
	bench_latency_of(samples, run.count, &lat);
	free(samples);
	printf("mq_pingpong size=%lu count=%lu seconds=%.6f rtt_per_s=%.0f p50_us=%.3f p99_us=%.3f max_us=%.3f\n",
	       run.size, run.count, (double)ns / 1e9, bench_rate((double)run.count, ns), lat.p50_us, lat.p99_us,
	       lat.max_us);
	return 0;
}
