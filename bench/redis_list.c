/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis_list.c - the peer ipcq is measured against as a work queue: a
 * Redis list, one producer process pushing with LPUSH and one consumer
 * process popping with BRPOP, through hiredis over a Unix socket, as a
 * user would write it.  PIPELINE 1 sends each command and waits for its
 * reply (unpipelined); PIPELINE K > 1 sends K commands, then reads their
 * K replies, on both sides (a BRPOP late in the consumer's pipeline
 * waits for the producer, as blocking pops do).
 *
 * It talks to a redis-server someone else started (bench/run.sh starts a
 * private one on a socket in a temporary directory), on a list of its own
 * (ipcq-bench.PID), deleted before and after.  The clock runs from the
 * producer's first LPUSH, after the consumer has connected, to the
 * consumer's last reply.  A BRPOP that waits STALL_SECONDS ends the run
 * as a failure rather than hang.
 *
 * usage: redis_list SOCKET [SIZE [COUNT [PIPELINE]]]
 *                                      (default: 64 bytes, 100000, 1)
 * prints: redis_list size=SIZE count=COUNT pipeline=K seconds=S msgs_per_s=R mb_per_s=M
 */
#include "config.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define SIZE_MAX_ARG (64ul << 20)
#define PIPELINE_MAX 10000
#define STALL_SECONDS 10

struct run {
	const char *socket;
	char key[64];
	unsigned long size, count, pipeline;
	struct bench_shared *sh;
};

static redisContext *connect_to(const struct run *run)
{
	redisContext *c = redisConnectUnix(run->socket);

	if (!c || c->err) {
		fprintf(stderr, "redis_list: cannot connect to %s: %s\n", run->socket, c ? c->errstr : "out of memory");
		if (c)
			redisFree(c);
		return NULL;
	}
	return c;
}

/* Read one reply; NULL (after saying why) unless it has the type wanted. */
static redisReply *get_reply(redisContext *c, int type, const char *what)
{
	void *p = NULL;
	redisReply *reply;

	if (redisGetReply(c, &p) != REDIS_OK) {
		fprintf(stderr, "redis_list: %s: %s\n", what, c->errstr);
		return NULL;
	}
	reply = p;
	if (reply->type != type) {
		if (reply->type == REDIS_REPLY_ERROR)
			fprintf(stderr, "redis_list: %s: %s\n", what, reply->str);
		else if (reply->type == REDIS_REPLY_NIL)
			fprintf(stderr, "redis_list: %s: nothing for %d s\n", what, STALL_SECONDS);
		else
			fprintf(stderr, "redis_list: %s: a reply of type %d\n", what, reply->type);
		freeReplyObject(reply);
		return NULL;
	}
	return reply;
}

static int delete_key(const struct run *run, redisContext *c)
{
	redisReply *reply = redisCommand(c, "DEL %s", run->key);

	if (!reply || reply->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "redis_list: DEL %s: %s\n", run->key, reply ? reply->str : c->errstr);
		if (reply)
			freeReplyObject(reply);
		return -1;
	}
	freeReplyObject(reply);
	return 0;
}

static int consume_replies(const struct run *run, redisContext *c, unsigned long first, unsigned long n)
{
	for (unsigned long i = first; i < first + n; i++) {
		redisReply *reply = get_reply(c, REDIS_REPLY_ARRAY, "BRPOP");
		uint64_t seq = i;

		if (!reply)
			return -1;
		if (reply->elements != 2 || reply->element[1]->type != REDIS_REPLY_STRING) {
			fprintf(stderr, "redis_list: BRPOP: an unexpected reply\n");
			freeReplyObject(reply);
			return -1;
		}
		memcpy(&seq, reply->element[1]->str, reply->element[1]->len < sizeof(seq) ? reply->element[1]->len : sizeof(seq));
		run->sh->bad += reply->element[1]->len != run->size || (run->size >= sizeof(seq) && seq != i);
		run->sh->received++;
		freeReplyObject(reply);
	}
	return 0;
}

static int consume(void *arg, int ready_fd)
{
	const struct run *run = arg;
	redisContext *c = connect_to(run);
	int r = 1;

	if (!c || bench_say_ready(ready_fd) < 0)
		goto out;
	for (unsigned long done = 0; done < run->count;) {
		unsigned long n = run->count - done < run->pipeline ? run->count - done : run->pipeline;

		for (unsigned long i = 0; i < n; i++)
			if (redisAppendCommand(c, "BRPOP %s %d", run->key, STALL_SECONDS) != REDIS_OK) {
				fprintf(stderr, "redis_list: BRPOP: %s\n", c->errstr);
				goto out;
			}
		if (consume_replies(run, c, done, n) < 0)
			goto out;
		done += n;
	}
	run->sh->end_ns = bench_now_ns();
	r = 0;
out:
	if (c)
		redisFree(c);
	return r;
}

static int produce(const struct run *run, redisContext *c)
{
	char *buf = malloc(run->size ? run->size : 1);
	int r = -1;

	if (!buf) {
		perror("redis_list");
		return -1;
	}
	memset(buf, 0x5a, run->size);
	for (unsigned long done = 0; done < run->count;) {
		unsigned long n = run->count - done < run->pipeline ? run->count - done : run->pipeline;

		for (unsigned long i = 0; i < n; i++) {
			uint64_t seq = done + i;

			memcpy(buf, &seq, run->size < sizeof(seq) ? run->size : sizeof(seq));
			if (redisAppendCommand(c, "LPUSH %s %b", run->key, buf, (size_t)run->size) != REDIS_OK) {
				fprintf(stderr, "redis_list: LPUSH: %s\n", c->errstr);
				goto out;
			}
		}
		for (unsigned long i = 0; i < n; i++) {
			redisReply *reply = get_reply(c, REDIS_REPLY_INTEGER, "LPUSH");

			if (!reply)
				goto out;
			freeReplyObject(reply);
		}
		done += n;
	}
	r = 0;
out:
	free(buf);
	return r;
}

int main(int argc, char **argv)
{
	struct run run = { .size = 64, .count = 100000, .pipeline = 1 };
	struct bench_peer consumer = { .pid = 0, .ready_fd = -1 };
	redisContext *c = NULL;
	uint64_t start, ns;
	int r = 1;

	if (argc < 2 || argc > 5 || (argc > 2 && bench_parse_ulong(argv[2], 0, SIZE_MAX_ARG, &run.size) < 0) ||
	    (argc > 3 && bench_parse_ulong(argv[3], 1, ULONG_MAX, &run.count) < 0) ||
	    (argc > 4 && bench_parse_ulong(argv[4], 1, PIPELINE_MAX, &run.pipeline) < 0)) {
		fprintf(stderr, "usage: redis_list SOCKET [SIZE [COUNT [PIPELINE]]]   (SIZE at most %lu, PIPELINE 1 to %d)\n",
			SIZE_MAX_ARG, PIPELINE_MAX);
		return 2;
	}
	run.socket = argv[1];
	snprintf(run.key, sizeof(run.key), "ipcq-bench.%ld", (long)getpid());
	run.sh = bench_shared_alloc(sizeof(*run.sh));
	if (!run.sh) {
		perror("redis_list: mmap");
		return 1;
	}
	c = connect_to(&run);
	if (!c || delete_key(&run, c) < 0)
		goto out;
	if (bench_peer_start(&consumer, consume, &run) < 0 || bench_peer_wait_ready(&consumer) < 0) {
		fprintf(stderr, "redis_list: the consumer did not start\n");
		goto out;
	}
	start = bench_now_ns();
	if (produce(&run, c) < 0)
		goto out;
	if (bench_peer_finish(&consumer, 0) < 0) {
		fprintf(stderr, "redis_list: the consumer failed\n");
		goto out;
	}
	if (run.sh->received != run.count || run.sh->bad) {
		fprintf(stderr, "redis_list: received %" PRIu64 " messages (%" PRIu64 " of another size or out of order), sent %lu\n",
			run.sh->received, run.sh->bad, run.count);
		goto out;
	}
	ns = run.sh->end_ns - start;
	printf("redis_list size=%lu count=%lu pipeline=%lu seconds=%.6f msgs_per_s=%.0f mb_per_s=%.3f\n", run.size,
	       run.count, run.pipeline, (double)ns / 1e9, bench_rate((double)run.count, ns),
	       bench_rate((double)run.size * (double)run.count, ns) / 1e6);
	r = 0;
out:
	if (consumer.pid > 0)
		bench_peer_finish(&consumer, 1);
	if (c) {
		delete_key(&run, c);
		redisFree(c);
	}
	return r;
}
