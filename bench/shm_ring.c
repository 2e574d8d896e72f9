/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shm_ring.c - the baseline under ipcq's zero-copy API: a hand-rolled
 * ring of SLOTS slots of SIZE bytes in shared memory between one producer
 * process and one consumer process, with two process-shared POSIX
 * semaphores counting free and filled slots.  The producer waits for a
 * free slot, writes its message into it with one memcpy from its source
 * buffer (as an ipcq_loan'd producer does) and posts it; the consumer
 * waits for a filled slot, reads the message in place (its sequence
 * number, as ipcq bench's consumer reads a view's header) and frees it.
 * One producer and one consumer each step through the slots in order, so
 * the semaphores are the only shared state: the least a safe ring between
 * two processes can do, with none of ipcq's checks, crash recovery or
 * many-to-many sharing.  A few slots keep the ring cache-hot.
 *
 * The ring is an anonymous shared mapping (tmpfs behind it, as a POSIX
 * shm object has) made before the fork: no name, nothing to clean up.
 *
 * usage: shm_ring [SIZE [COUNT [SLOTS]]]  (default: 1048576 bytes, 2000, 4 slots)
 * prints: shm_ring size=SIZE count=COUNT slots=SLOTS seconds=S msgs_per_s=R mb_per_s=M
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define RING_SIZE_MAX (256ul << 20)
#define RING_SLOTS_MAX 1024
#define RING_SLOT_ALIGN 4096
#define STALL_SECONDS 10

/* Each semaphore on a cache line of its own: the producer waits on one
 * and posts the other, the consumer the other way round. */
struct ring {
	_Alignas(64) sem_t free_slots;
	_Alignas(64) sem_t filled;
	_Alignas(64) uint64_t end_ns; /* the consumer's last release */
	uint64_t bad;                 /* messages out of order */
};

struct run {
	struct ring *ring;
	unsigned char *slots;
	unsigned long size, count, nslots, stride;
};

/* Wait with a deadline, so that a peer gone does not hang the run. */
static int wait_slot(sem_t *sem)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += STALL_SECONDS;
	while (sem_timedwait(sem, &ts) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "shm_ring: sem_timedwait: %s\n", strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int consume(void *arg, int ready_fd)
{
	const struct run *run = arg;

	if (bench_say_ready(ready_fd) < 0)
		return 1;
	for (unsigned long i = 0; i < run->count; i++) {
		const unsigned char *slot = run->slots + (i % run->nslots) * run->stride;
		uint64_t seq;

		if (wait_slot(&run->ring->filled) < 0)
			return 1;
		memcpy(&seq, slot, sizeof(seq));
		run->ring->bad += seq != i;
		sem_post(&run->ring->free_slots);
	}
	run->ring->end_ns = bench_now_ns();
	return 0;
}

static int produce(const struct run *run, unsigned char *src)
{
	for (unsigned long i = 0; i < run->count; i++) {
		unsigned char *slot = run->slots + (i % run->nslots) * run->stride;
		uint64_t seq = i;

		if (wait_slot(&run->ring->free_slots) < 0)
			return 1;
		memcpy(src, &seq, sizeof(seq));
		memcpy(slot, src, run->size);
		sem_post(&run->ring->filled);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct run run = { .size = 1ul << 20, .count = 2000, .nslots = 4 };
	struct bench_peer consumer;
	unsigned char *src;
	uint64_t start, ns;

	if (argc > 4 || (argc > 1 && bench_parse_ulong(argv[1], 8, RING_SIZE_MAX, &run.size) < 0) ||
	    (argc > 2 && bench_parse_ulong(argv[2], 1, ULONG_MAX, &run.count) < 0) ||
	    (argc > 3 && bench_parse_ulong(argv[3], 1, RING_SLOTS_MAX, &run.nslots) < 0)) {
		fprintf(stderr, "usage: shm_ring [SIZE [COUNT [SLOTS]]]   (SIZE 8 to %lu, SLOTS 1 to %d)\n",
			RING_SIZE_MAX, RING_SLOTS_MAX);
		return 2;
	}
	run.stride = (run.size + RING_SLOT_ALIGN - 1) / RING_SLOT_ALIGN * RING_SLOT_ALIGN;
	if (run.stride * run.nslots > 4 * RING_SIZE_MAX) {
		fprintf(stderr, "shm_ring: a ring of %lu slots of %lu bytes is too large\n", run.nslots, run.size);
		return 2;
	}
	run.ring = bench_shared_alloc(RING_SLOT_ALIGN + run.stride * run.nslots);
	src = malloc(run.size);
	if (!run.ring || !src) {
		perror("shm_ring");
		free(src);
		return 1;
	}
	run.slots = (unsigned char *)run.ring + RING_SLOT_ALIGN;
	if (sem_init(&run.ring->free_slots, 1, (unsigned)run.nslots) < 0 || sem_init(&run.ring->filled, 1, 0) < 0) {
		perror("shm_ring: sem_init");
		free(src);
		return 1;
	}
	memset(src, 0xa5, run.size);
	/* Touch the ring once, so that page faults are not timed. */
	memset(run.slots, 0, run.stride * run.nslots);
	if (bench_peer_start(&consumer, consume, &run) < 0 || bench_peer_wait_ready(&consumer) < 0) {
		fprintf(stderr, "shm_ring: the consumer did not start\n");
		bench_peer_finish(&consumer, 1);
		free(src);
		return 1;
	}
	start = bench_now_ns();
	if (produce(&run, src)) {
		bench_peer_finish(&consumer, 1);
		free(src);
		return 1;
	}
	free(src);
	if (bench_peer_finish(&consumer, 0) < 0) {
		fprintf(stderr, "shm_ring: the consumer failed\n");
		return 1;
	}
	if (run.ring->bad) {
		fprintf(stderr, "shm_ring: %" PRIu64 " messages out of order\n", run.ring->bad);
		return 1;
	}
	ns = run.ring->end_ns - start;
	printf("shm_ring size=%lu count=%lu slots=%lu seconds=%.6f msgs_per_s=%.0f mb_per_s=%.3f\n", run.size,
	       run.count, run.nslots, (double)ns / 1e9, bench_rate((double)run.count, ns),
	       bench_rate((double)run.size * (double)run.count, ns) / 1e6);
	return 0;
}
