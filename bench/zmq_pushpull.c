/* SPDX-License-Identifier: Apache-2.0 */
/*
 * zmq_pushpull.c - the peer ipcq is measured against for 64-byte and
 * 64 KiB messages: ZeroMQ PUSH/PULL over ipc://, one producer process,
 * one consumer process, one zmq_send and one zmq_recv per message, with
 * ZeroMQ's defaults (high-water marks of 1000 messages), as a user would
 * write it.  ZeroMQ batches small messages into each write under load,
 * which is why it beats one syscall per message.
 *
 * The socket lives in a private directory made with mkdtemp; the consumer
 * binds it, the producer connects.  The directory and the socket are
 * removed at the end, and on SIGINT, SIGTERM or SIGHUP (the consumer dies
 * with the producer).  The clock runs from the producer's first send,
 * after the consumer has bound, to the consumer's last receive
 * (CLOCK_MONOTONIC, one clock for both processes).  The producer keeps
 * its socket open until the consumer is done, so that no message is lost
 * to a teardown; a consumer that waits STALL_SECONDS for a message
 * reports what it got and fails rather than hang.
 *
 * usage: zmq_pushpull [SIZE [COUNT]]    (default: 64 bytes, 1000000)
 * prints: zmq_pushpull size=SIZE count=COUNT seconds=S msgs_per_s=R mb_per_s=M
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"

#define SIZE_MAX_ARG (64ul << 20)
#define STALL_SECONDS 10

/* Where the socket is, for the signal handler too; a Unix socket's path
 * holds at most 107 bytes. */
static char dir_path[100];
static char sock_path[sizeof(dir_path) + 2];

static void remove_socket_dir(void)
{
	unlink(sock_path);
	rmdir(dir_path);
}

/* Only async-signal-safe calls: unlink, rmdir, signal, raise. */
static void on_signal(int signo)
{
	remove_socket_dir();
	signal(signo, SIG_DFL);
	raise(signo);
}

static int zmq_fail(const char *what)
{
	fprintf(stderr, "zmq_pushpull: %s: %s\n", what, zmq_strerror(zmq_errno()));
	return 1;
}

struct run {
	char endpoint[sizeof(sock_path) + 6];
	unsigned long size, count;
	struct bench_shared *sh;
};

static int consume(void *arg, int ready_fd)
{
	const struct run *run = arg;
	struct bench_shared *sh = run->sh;
	char *buf = malloc(run->size + 1);
	void *ctx = zmq_ctx_new();
	void *s = ctx ? zmq_socket(ctx, ZMQ_PULL) : NULL;
	int stall_ms = STALL_SECONDS * 1000;
	int r = 1;

	if (!buf || !s)
		goto out;
	if (zmq_setsockopt(s, ZMQ_RCVTIMEO, &stall_ms, sizeof(stall_ms)) < 0) {
		zmq_fail("zmq_setsockopt");
		goto out;
	}
	if (zmq_bind(s, run->endpoint) < 0) {
		zmq_fail("zmq_bind");
		goto out;
	}
	if (bench_say_ready(ready_fd) < 0)
		goto out;
	for (unsigned long i = 0; i < run->count; i++) {
		int n = zmq_recv(s, buf, run->size + 1, 0);
		uint64_t seq = i;

		if (n < 0 && zmq_errno() == EINTR) {
			i--;
			continue;
		}
		if (n < 0 && zmq_errno() == EAGAIN) {
			fprintf(stderr, "zmq_pushpull: no message for %d s: received %" PRIu64 " of %lu\n", STALL_SECONDS,
				sh->received, run->count);
			goto out;
		}
		if (n < 0) {
			zmq_fail("zmq_recv");
			goto out;
		}
		memcpy(&seq, buf, (size_t)n < sizeof(seq) ? (size_t)n : sizeof(seq));
		sh->bad += (unsigned long)n != run->size || (n >= (int)sizeof(seq) && seq != i);
		sh->received++;
	}
	sh->end_ns = bench_now_ns();
	r = 0;
out:
	if (s)
		zmq_close(s);
	if (ctx)
		zmq_ctx_term(ctx);
	free(buf);
	return r;
}

/* Send every message, then wait for the consumer before closing. */
static int produce(const struct run *run, struct bench_peer *consumer, uint64_t *start)
{
	char *buf = malloc(run->size ? run->size : 1);
	void *ctx = zmq_ctx_new();
	void *s = ctx ? zmq_socket(ctx, ZMQ_PUSH) : NULL;
	int r = 1;

	if (!buf || !s)
		goto out;
	memset(buf, 0x5a, run->size);
	if (zmq_connect(s, run->endpoint) < 0) {
		zmq_fail("zmq_connect");
		goto out;
	}
	*start = bench_now_ns();
	for (unsigned long i = 0; i < run->count; i++) {
		uint64_t seq = i; /* as the consumer reads it, whatever the width of long */

		memcpy(buf, &seq, run->size < sizeof(seq) ? run->size : sizeof(seq));
		if (zmq_send(s, buf, run->size, 0) < 0) {
			if (zmq_errno() == EINTR) {
				i--;
				continue;
			}
			zmq_fail("zmq_send");
			goto out;
		}
	}
	if (bench_peer_finish(consumer, 0) == 0)
		r = 0;
	else
		fprintf(stderr, "zmq_pushpull: the consumer failed\n");
out:
	if (s)
		zmq_close(s);
	if (ctx)
		zmq_ctx_term(ctx);
	free(buf);
	return r;
}

static int run_pair(struct run *run)
{
	struct bench_peer consumer;
	uint64_t start = 0, ns;

	snprintf(run->endpoint, sizeof(run->endpoint), "ipc://%s", sock_path);
	if (bench_peer_start(&consumer, consume, run) < 0 || bench_peer_wait_ready(&consumer) < 0) {
		fprintf(stderr, "zmq_pushpull: the consumer did not start\n");
		bench_peer_finish(&consumer, 1);
		return 1;
	}
	if (produce(run, &consumer, &start)) {
		bench_peer_finish(&consumer, 1);
		return 1;
	}
	if (run->sh->received != run->count || run->sh->bad) {
		fprintf(stderr, "zmq_pushpull: received %" PRIu64 " messages (%" PRIu64 " of another size or out of order), sent %lu\n",
			run->sh->received, run->sh->bad, run->count);
		return 1;
	}
	ns = run->sh->end_ns - start;
	printf("zmq_pushpull size=%lu count=%lu seconds=%.6f msgs_per_s=%.0f mb_per_s=%.3f\n", run->size, run->count,
	       (double)ns / 1e9, bench_rate((double)run->count, ns),
	       bench_rate((double)run->size * (double)run->count, ns) / 1e6);
	return 0;
}

int main(int argc, char **argv)
{
	const char *tmp = getenv("TMPDIR");
	struct run run = { .size = 64, .count = 1000000 };
	struct sigaction sa = { .sa_handler = on_signal };
	int r;

	if (argc > 3 || (argc > 1 && bench_parse_ulong(argv[1], 0, SIZE_MAX_ARG, &run.size) < 0) ||
	    (argc > 2 && bench_parse_ulong(argv[2], 1, ULONG_MAX, &run.count) < 0)) {
		fprintf(stderr, "usage: zmq_pushpull [SIZE [COUNT]]   (SIZE at most %lu, COUNT at least 1)\n",
			SIZE_MAX_ARG);
		return 2;
	}
	run.sh = bench_shared_alloc(sizeof(*run.sh));
	if (!run.sh) {
		perror("zmq_pushpull: mmap");
		return 1;
	}
	if (snprintf(dir_path, sizeof(dir_path), "%s/ipcq-bench-zmq.XXXXXX", tmp && *tmp ? tmp : "/tmp") >=
	    (int)sizeof(dir_path)) {
		fprintf(stderr, "zmq_pushpull: TMPDIR is too long for a socket path: %s\n", tmp);
		return 1;
	}
	/* Handlers first, so no signal finds the directory made and not known. */
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaddset(&sa.sa_mask, SIGHUP);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (!mkdtemp(dir_path)) {
		fprintf(stderr, "zmq_pushpull: mkdtemp %s: %s\n", dir_path, strerror(errno));
		dir_path[0] = '\0';
		return 1;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/s", dir_path);
	r = run_pair(&run);
	remove_socket_dir();
	return r;
}
