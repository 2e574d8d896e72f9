/*
 * log.h - the daemon's log: one line per event on stderr, where journald
 * picks it up (with a <N> priority prefix when stderr is the journal).
 */
#ifndef IPCQ_LOG_H
#define IPCQ_LOG_H

#include <stdint.h>

#include "conf.h"

void log_set_level(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Lines a peer can cause are rate-limited: at most LOG_BURST per
 * LOG_WINDOW_SEC for each call site's state, then one line saying how many
 * were left out.  A client cannot fill the journal. */
#define LOG_BURST 10u
#define LOG_WINDOW_SEC 10u
struct log_ratelimit {
	uint64_t window_start_ns;
	unsigned printed;
	unsigned suppressed;
};
void log_limited(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
