/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.h - small helpers shared by the daemon, the library and the tools:
 * cleanup attributes, time arithmetic and size parsing.
 */
#ifndef IPCQ_UTIL_H
#define IPCQ_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + ((a)-1)) & ~((__typeof__(x))(a)-1))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ __attribute__((cleanup(freep)))

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define _cleanup_close_ __attribute__((cleanup(closep)))

/* Hand ownership of a pointer or fd out of a cleanup scope. */
#define TAKE_PTR(p)                          \
	({                                   \
		__typeof__(p) take_tmp_ = (p); \
		(p) = NULL;                   \
		take_tmp_;                    \
	})
#define TAKE_FD(fd)              \
	({                       \
		int take_tmp_ = (fd); \
		(fd) = -1;           \
		take_tmp_;           \
	})

/* A busy-wait loop's pause: lets the other hardware thread run. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

static inline uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Absolute deadline timeout_ms from now on clock clk (timeout_ms >= 0). */
static inline struct timespec deadline_after(clockid_t clk, int timeout_ms)
{
	uint64_t t = now_ns(clk) + (uint64_t)timeout_ms * 1000000ull;
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000ull), .tv_nsec = (long)(t % 1000000000ull) };

	return ts;
}

/* Parse "123", "64K", "16M", "1G" (binary multiples) into *out.
 * Returns 0, or -EINVAL on a malformed string, -ERANGE on overflow. */
/* A run of decimal digits at *s (at least one), moving *s past it;
 * -EINVAL, or -ERANGE beyond 64 bits. */
int parse_digits(const char **s, uint64_t *out);
int parse_size(const char *s, uint64_t *out);
/* "0", or a whole number with a unit (ms, s, m, h) into milliseconds;
 * -EINVAL, -ERANGE. */
int parse_duration_ms(const char *s, uint64_t *ms);

/* Whether environment variable name holds a yes: set, not empty, and not
 * "0", "no" or "false" (IPCQ_USER=1). */
bool util_env_true(const char *name);
/* Write all of p[0..n) to fd (again after EINTR and short writes): 0, or
 * a negative errno (-EIO for a write that wrote nothing). */
int fd_write_all(int fd, const void *p, size_t n);

/* The caller's pid, cached (refreshed in a forked child). */
pid_t self_pid(void);

/* An eventfd used as a level: readable (written once) or not (read empty).
 * A full or empty one stays as it is; the caller says -1 for none. */
void eventfd_level(int fd, bool readable);

#endif
