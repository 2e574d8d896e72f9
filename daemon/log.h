/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.h - the daemon's log: one line per event.  Run by systemd (stderr
 * is the journal stream JOURNAL_STREAM names), each line goes to the
 * journal through its native protocol, with its priority and the fields
 * of what it is about; otherwise it goes to stderr as
 * "ipcbrokerd: LEVEL: text".
 */
#ifndef IPCQ_LOG_H
#define IPCQ_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"

/* What a line is about.  The journal gets each as a field of its own
 * (QUEUE=, PEER_UID=, PEER_PID=), to filter on (journalctl QUEUE=jobs);
 * the text says it too, for stderr. */
struct log_about {
	const char *queue; /* NULL: no queue */
	bool peer;         /* uid and pid are a client's */
	uid_t uid;
	pid_t pid;
};
#define LOG_QUEUE(name) (&(const struct log_about){ .queue = (name) })
#define LOG_PEER(name, uid_, pid_) \
	(&(const struct log_about){ .queue = (name), .peer = true, .uid = (uid_), .pid = (pid_) })

void log_set_level(enum log_level level);
/* Whether lines go to the journal (stderr is the stream JOURNAL_STREAM
 * names), decided at the first line. */
bool log_to_journal(void);
void log_about_msg(enum log_level level, const struct log_about *about, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

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
void log_about_limited(struct log_ratelimit *rl, enum log_level level, const struct log_about *about,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_msg(level, ...) log_about_msg(level, NULL, __VA_ARGS__)
#define log_limited(rl, level, ...) log_about_limited(rl, level, NULL, __VA_ARGS__)
#define log_error(...) log_about_msg(LOG_LEVEL_ERROR, NULL, __VA_ARGS__)
#define log_warning(...) log_about_msg(LOG_LEVEL_WARNING, NULL, __VA_ARGS__)
#define log_info(...) log_about_msg(LOG_LEVEL_INFO, NULL, __VA_ARGS__)
#define log_debug(...) log_about_msg(LOG_LEVEL_DEBUG, NULL, __VA_ARGS__)
/* A line about queue name (see struct log_about). */
#define log_queue(level, name, ...) log_about_msg(level, LOG_QUEUE(name), __VA_ARGS__)

#endif
