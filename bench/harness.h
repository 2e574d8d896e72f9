/* SPDX-License-Identifier: Apache-2.0 */
/*
 * harness.h - what the baseline and peer programs of bench/ share: the
 * clock, argument parsing, a peer process started with a "ready"
 * handshake, memory shared with it, latency percentiles, and the one
 * result line bench/run.sh reads.
 *
 * Every program measures one producer (or pinger) in the parent and one
 * consumer (or echo) in a child forked after the kernel objects are made:
 * the child dies with the parent (PR_SET_PDEATHSIG), says "ready" on a
 * pipe once it can take messages, and the parent's clock starts only
 * then, so no set-up is timed.  Both read CLOCK_MONOTONIC, one clock for
 * all processes; the child's figures come back in a MAP_SHARED mapping
 * made before the fork.
 *
 * The result line is "PROGRAM key=value key=value ..." on standard
 * output, one line a run; errors go to standard error and make the
 * program exit 1 (2 for a usage error).
 */
#ifndef IPCQ_BENCH_HARNESS_H
#define IPCQ_BENCH_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

uint64_t bench_now_ns(void);

/* A decimal integer in [min, max], or -1. */
int bench_parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/* What a benchmark's consumer reports to the parent, in shared memory:
 * when it received the last message, how many it received, and how many
 * were of another size or out of order. */
struct bench_shared {
	uint64_t end_ns;
	uint64_t received;
	uint64_t bad;
};

/* Zeroed memory shared with the children forked after it, or NULL. */
void *bench_shared_alloc(size_t len);

/* A child process running fn(arg, ready_fd): it writes a byte on
 * ready_fd once it can take messages, and its return value is its exit
 * status.  It dies with the parent. */
struct bench_peer {
	pid_t pid;
	int ready_fd; /* the parent's end */
};
int bench_peer_start(struct bench_peer *p, int (*fn)(void *arg, int ready_fd), void *arg);
/* Wait for the child's "ready"; -1 if it died first. */
int bench_peer_wait_ready(struct bench_peer *p);
/* Reap the child: 0 if it exited 0.  With kill set, end it first. */
int bench_peer_finish(struct bench_peer *p, int kill_it);
/* Tell the child "ready" from inside fn. */
int bench_say_ready(int ready_fd);

/* Sort samples[0..n) (nanoseconds) and give nearest-rank percentiles in
 * microseconds. */
struct bench_latency {
	double p50_us, p99_us, max_us;
};
void bench_latency_of(uint64_t *samples, size_t n, struct bench_latency *out);

/* A rate, 0 when no time passed. */
double bench_rate(double n, uint64_t ns);

#endif
