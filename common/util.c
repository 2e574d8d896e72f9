/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.c - size parsing, environment flags and the cached pid.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

bool util_env_true(const char *name)
{
	const char *v = getenv(name);

	return v && *v && strcmp(v, "0") != 0 && strcasecmp(v, "no") != 0 && strcasecmp(v, "false") != 0;
}

int parse_digits(const char **s, uint64_t *out)
{
	const char *p = *s;
	uint64_t v = 0;

	if (!p || !isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		uint64_t digit = (uint64_t)(*p - '0');

		if (v > (UINT64_MAX - digit) / 10)
			return -ERANGE;
		v = v * 10 + digit;
	}
	*s = p;
	*out = v;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;
	int r = parse_digits(&p, &v);

	if (r < 0)
		return r;
	switch (*p) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mult = 1ull << 10;
		p++;
		break;
	case 'm':
	case 'M':
		mult = 1ull << 20;
		p++;
		break;
	case 'g':
	case 'G':
		mult = 1ull << 30;
		p++;
		break;
	default:
		return -EINVAL;
	}
	if (*p == 'i' || *p == 'B') /* accept "KiB", "MB" */
		p += (*p == 'i' && p[1] == 'B') ? 2 : 1;
	if (*p != '\0')
		return -EINVAL;
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

static _Atomic pid_t cached_pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void pid_reset_in_child(void)
{
	atomic_store_explicit(&cached_pid, 0, memory_order_relaxed);
}

static void pid_register_atfork(void)
{
	pthread_atfork(NULL, NULL, pid_reset_in_child);
}

pid_t self_pid(void)
{
	pid_t p = atomic_load_explicit(&cached_pid, memory_order_relaxed);

	if (p == 0) {
		pthread_once(&pid_once, pid_register_atfork);
		p = getpid();
		atomic_store_explicit(&cached_pid, p, memory_order_relaxed);
	}
	return p;
}

void eventfd_level(int fd, bool readable)
{
	uint64_t v = 1;

	if (fd < 0)
		return;
	if (readable ? write(fd, &v, sizeof(v)) < 0 : read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: it says so already (or a client filled it: it stays readable) */
	}
}

/* "0", or a whole number with a unit: ms, s, m or h.  A bare number other
 * than 0 is refused: "30" could mean seconds or milliseconds. */
int parse_duration_ms(const char *s, uint64_t *ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 }, { "h", 3600 * 1000 } };
	uint64_t v = 0;
	const char *p = s;
	int r = parse_digits(&p, &v);

	if (r < 0)
		return r;
	if (*p == '\0' && v == 0) {
		*ms = 0;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(p, units[i].unit) != 0)
			continue;
		if (v > UINT64_MAX / units[i].ms)
			return -ERANGE;
		*ms = v * units[i].ms;
		return 0;
	}
	return -EINVAL;
}

int fd_write_all(int fd, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}
