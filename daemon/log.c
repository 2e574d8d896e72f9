/*
 * log.c - leveled logging to stderr.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

static enum log_level max_level = LOG_LEVEL_INFO;

void log_set_level(enum log_level level)
{
	max_level = level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	/* syslog priorities: err, warning, info, debug */
	static const int prio[] = { 3, 4, 6, 7 };
	static const char *const name[] = { "error", "warning", "info", "debug" };
	bool journal = getenv("JOURNAL_STREAM") != NULL;
	va_list ap;

	if (level > max_level)
		return;
	flockfile(stderr);
	if (journal)
		fprintf(stderr, "<%d>", prio[level]);
	else
		fprintf(stderr, "ipcbrokerd: %s: ", name[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}
