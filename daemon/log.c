/*
 * log.c - leveled logging to stderr.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "util.h"

static enum log_level max_level = LOG_LEVEL_INFO;

void log_set_level(enum log_level level)
{
	max_level = level;
}

__attribute__((format(printf, 2, 0))) static void log_v(enum log_level level, const char *fmt, va_list ap)
{
	/* syslog priorities: err, warning, info, debug */
	static const int prio[] = { 3, 4, 6, 7 };
	static const char *const name[] = { "error", "warning", "info", "debug" };
	bool journal = getenv("JOURNAL_STREAM") != NULL;

	flockfile(stderr);
	if (journal)
		fprintf(stderr, "<%d>", prio[level]);
	else
		fprintf(stderr, "ipcbrokerd: %s: ", name[level]);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > max_level)
		return;
	va_start(ap, fmt);
	log_v(level, fmt, ap);
	va_end(ap);
}

void log_limited(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);
	va_list ap;

	if (level > max_level)
		return;
	if (now - rl->window_start_ns >= LOG_WINDOW_SEC * 1000000000ull) {
		if (rl->suppressed)
			log_msg(level, "(%u more lines like the next were left out in the last %us)", rl->suppressed,
			        LOG_WINDOW_SEC);
		rl->window_start_ns = now;
		rl->printed = rl->suppressed = 0;
	}
	if (rl->printed >= LOG_BURST) {
		rl->suppressed++;
		return;
	}
	rl->printed++;
	va_start(ap, fmt);
	log_v(level, fmt, ap);
	va_end(ap);
}
