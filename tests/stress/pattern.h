/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pattern.h - deterministic test payloads and their checksums, shared by
 * the stress helpers: a message's bytes are regenerated from its seed on
 * receipt, so any corruption or mix-up is caught.
 */
#ifndef IPCQ_TEST_PATTERN_H
#define IPCQ_TEST_PATTERN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* n bytes of the splitmix64 stream seeded with seed */
static inline void pattern_fill(unsigned char *p, size_t n, uint64_t seed)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w = splitmix64(&seed);

		memcpy(p + i, &w, 8);
	}
	if (i < n) {
		uint64_t w = splitmix64(&seed);

		memcpy(p + i, &w, n - i);
	}
}

/* FNV-1a over 64-bit words, then over the tail bytes */
static inline uint64_t pattern_checksum(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
	}
	for (; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

#endif
