/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memcpy_bw.c - the ceiling for moving bulk data: one thread copying
 * SIZE bytes from one buffer to another, COUNT times, with memcpy.  Both
 * buffers are reused, so they stay as cache-hot as their size allows: the
 * best a copy can do, which ipcq's copy API (a copy into the ring and one
 * out of it, in two processes) is judged against.  The first word of the
 * source changes every time and the destination escapes to the compiler,
 * so no copy is optimized away.
 *
 * usage: memcpy_bw [SIZE [COUNT]]      (default: 1048576 bytes, 10000)
 * prints: memcpy_bw size=SIZE count=COUNT seconds=S msgs_per_s=R mb_per_s=M
 *         (MB: 10^6 bytes, as ipcq bench reports)
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MEMCPY_SIZE_MAX (1ul << 30)

int main(int argc, char **argv)
{
	unsigned long size = 1ul << 20, count = 10000;
	unsigned char *src, *dst;
	uint64_t start, ns;

	if (argc > 3 || (argc > 1 && bench_parse_ulong(argv[1], 8, MEMCPY_SIZE_MAX, &size) < 0) ||
	    (argc > 2 && bench_parse_ulong(argv[2], 1, ULONG_MAX, &count) < 0)) {
		fprintf(stderr, "usage: memcpy_bw [SIZE [COUNT]]   (SIZE 8 to %lu, COUNT at least 1)\n", MEMCPY_SIZE_MAX);
		return 2;
	}
	src = malloc(size);
	dst = malloc(size);
	if (!src || !dst) {
		perror("memcpy_bw");
		free(src);
		free(dst);
		return 1;
	}
	memset(src, 0x5a, size);
	memset(dst, 0, size);
	start = bench_now_ns();
	for (unsigned long i = 0; i < count; i++) {
		memcpy(src, &i, sizeof(i));
		memcpy(dst, src, size);
		__asm__ volatile("" : : "r"(dst) : "memory");
	}
	ns = bench_now_ns() - start;
	if (memcmp(dst, src, size) != 0) {
		fprintf(stderr, "memcpy_bw: the last copy differs from its source\n");
		free(src);
		free(dst);
		return 1;
	}
	free(src);
	free(dst);
	printf("memcpy_bw size=%lu count=%lu seconds=%.6f msgs_per_s=%.0f mb_per_s=%.3f\n", size, count,
	       (double)ns / 1e9, bench_rate((double)count, ns), bench_rate((double)size * (double)count, ns) / 1e6);
	return 0;
}
