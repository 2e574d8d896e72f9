/*
 * bulk.c - bulk throughput of one queue, 1 producer process -> 1 consumer
 * process, next to baselines measured in the same run:
 *
 *   memcpy     one copy of SIZE bytes, buffer to buffer, both cache-hot
 *              (the ceiling for the copy API, which copies twice: into
 *              the ring, out of it)
 *   memcpy-64M the same, but the destination moves through 64 MiB like a
 *              ring does, so it is not cache-resident
 *   copy       ipcq_send -> ipcq_recv into the consumer's buffer
 *   zero-copy  ipcq_loan, producer writes SIZE bytes in place (one
 *              memcpy from its source), ipcq_publish -> ipcq_recv_view,
 *              consumer checks the sequence number in place, ipcq_release
 *
 * usage: bulk QUEUE SIZE COUNT      (needs a running daemon: IPCQ_SOCKET)
 * Prints one line per workload: MiB/s, msgs/s, and the ratio to memcpy.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipcq.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int r)
{
	fprintf(stderr, "bulk: %s: %s\n", what, ipcq_strerror(r));
	exit(1);
}

static ipcq_queue *open_queue(ipcq_client **c, const char *name, int flags)
{
	ipcq_queue *q;
	int r = ipcq_connect(c, NULL);

	if (r < 0)
		die("connect", r);
	r = ipcq_open(*c, name, flags | IPCQ_CREATE, &q);
	if (r < 0)
		die("open", r);
	return q;
}

static double bench_memcpy(size_t size, long count, size_t area)
{
	size_t slots = area / size ? area / size : 1;
	unsigned char *src = malloc(size), *dst = malloc(slots * size);
	double t0, t;

	memset(src, 0x5a, size);
	memset(dst, 0, slots * size);
	t0 = now_s();
	for (long i = 0; i < count; i++) {
		unsigned char *d = dst + (size_t)i % slots * size;

		src[0] = (unsigned char)i;
		memcpy(d, src, size);
		__asm__ volatile("" ::"r"(d) : "memory");
	}
	t = now_s() - t0;
	free(src);
	free(dst);
	return t;
}

static void consumer(const char *name, size_t size, long count, int zero_copy)
{
	ipcq_client *c;
	ipcq_queue *q = open_queue(&c, name, IPCQ_RECV);
	unsigned char *buf = malloc(size);

	for (long i = 0; i < count; i++) {
		uint64_t seq;
		int r;

		if (zero_copy) {
			ipcq_msg m;

			r = ipcq_recv_view(q, &m, -1);
			if (r < 0)
				die("recv_view", r);
			memcpy(&seq, m.data, sizeof(seq));
			ipcq_release(q, &m);
		} else {
			ssize_t n = ipcq_recv(q, buf, size, NULL, -1);

			if (n < 0)
				die("recv", (int)n);
			memcpy(&seq, buf, sizeof(seq));
		}
		if (seq != (uint64_t)i) {
			fprintf(stderr, "bulk: message %ld carries sequence %llu\n", i, (unsigned long long)seq);
			exit(1);
		}
	}
	free(buf);
	ipcq_close(q);
	ipcq_disconnect(c);
	exit(0);
}

static double bench_queue(const char *name, size_t size, long count, int zero_copy)
{
	ipcq_client *c;
	ipcq_queue *q = open_queue(&c, name, IPCQ_SEND);
	unsigned char *src = malloc(size);
	double t0, t;
	pid_t pid;
	int st;

	memset(src, 0xa5, size);
	pid = fork();
	if (pid == 0)
		consumer(name, size, count, zero_copy);
	t0 = now_s();
	for (long i = 0; i < count; i++) {
		uint64_t seq = (uint64_t)i;
		int r;

		memcpy(src, &seq, sizeof(seq));
		if (zero_copy) {
			void *p;

			r = ipcq_loan(q, size, &p, -1);
			if (r < 0)
				die("loan", r);
			memcpy(p, src, size);
			r = ipcq_publish(q, p, size, 0);
		} else {
			r = ipcq_send(q, src, size, 0, -1);
		}
		if (r < 0)
			die("send", r);
	}
	waitpid(pid, &st, 0);
	t = now_s() - t0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bulk: consumer failed\n");
		exit(1);
	}
	free(src);
	ipcq_close(q);
	ipcq_disconnect(c);
	return t;
}

static void report(const char *what, size_t size, long count, double t, double t_memcpy)
{
	double mib = (double)size * (double)count / (1024.0 * 1024.0);

	printf("%-10s %8zu B x %6ld: %9.1f MiB/s %10.0f msgs/s  %5.2fx memcpy\n", what, size, count, mib / t,
	       (double)count / t, t_memcpy / t);
}

int main(int argc, char **argv)
{
	size_t size;
	long count;
	double tm, tm64, tc, tz;

	if (argc != 4) {
		fprintf(stderr, "usage: bulk QUEUE SIZE COUNT\n");
		return 2;
	}
	size = strtoul(argv[2], NULL, 0);
	count = strtol(argv[3], NULL, 0);
	if (size < sizeof(uint64_t) || count <= 0) {
		fprintf(stderr, "bulk: SIZE must be at least 8 and COUNT positive\n");
		return 2;
	}
	tm = bench_memcpy(size, count, size);
	tm64 = bench_memcpy(size, count, 64u << 20);
	tc = bench_queue(argv[1], size, count, 0);
	tz = bench_queue(argv[1], size, count, 1);
	report("memcpy", size, count, tm, tm);
	report("memcpy-64M", size, count, tm64, tm);
	report("copy", size, count, tc, tm);
	report("zero-copy", size, count, tz, tm);
	return 0;
}
