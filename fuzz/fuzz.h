/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz.h - what the fuzz targets share: libFuzzer's entry point, and a
 * reader of the fuzzer's bytes.
 *
 * Each target (fuzz_*.c) is built twice: with clang's libFuzzer for
 * 'make fuzz' (scripts/fuzz.sh runs them), and with the project's own
 * compiler and a main() of its own (replay.c) for 'make check', which
 * runs every input of fuzz/corpus/ and fuzz/regress/ through the same
 * entry point.  An input is whatever bytes the fuzzer made: a target
 * reads it front to back with a fuzz_in, and what runs out reads as 0.
 */
#ifndef IPCQ_FUZZ_H
#define IPCQ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
	uint16_t hi = fuzz_u8(in);

	return (uint16_t)(hi << 8 | fuzz_u8(in));
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
	uint32_t hi = fuzz_u16(in);

	return hi << 16 | fuzz_u16(in);
}

/* Up to len bytes into dst (the rest of dst zero); how many were there. */
static inline size_t fuzz_bytes(struct fuzz_in *in, void *dst, size_t len)
{
	size_t n = len < in->n ? len : in->n;

	if (n)
		memcpy(dst, in->p, n);
	memset((unsigned char *)dst + n, 0, len - n);
	in->p += n;
	in->n -= n;
	return n;
}

/* Pass over up to len bytes. */
static inline void fuzz_skip(struct fuzz_in *in, size_t len)
{
	size_t n = len < in->n ? len : in->n;

	in->p += n;
	in->n -= n;
}

#endif
