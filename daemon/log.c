/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c - leveled logging, to the journal or to stderr.
 *
 * systemd tells a service that its stderr is connected to the journal by
 * JOURNAL_STREAM=DEV:INODE, the device and inode of that stream; a child
 * that inherited the variable but not the stream (stderr redirected to a
 * file) sees another inode, so the variable alone proves nothing.  Only
 * when the numbers match stderr's own does a line go to the journal, and
 * then through the native protocol (sd_journal_sendv), which carries the
 * priority and the fields of struct log_about.  sd_journal_sendv drops a
 * line without a word when the journal's socket does not exist, so the
 * socket is looked for first; without it, or when the send fails, the
 * line goes to stderr with a "<N>" priority prefix, which the stream
 * protocol understands.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* CODE_FILE= and CODE_LINE= would always name this file */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include "log.h"
#include "util.h"

/* a line longer than this is cut */
#define LOG_LINE_MAX 2048
/* where journald listens for the native protocol */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static enum log_level max_level = LOG_LEVEL_INFO;
static int journal = -1; /* -1: not decided yet */

void log_set_level(enum log_level level)
{
	max_level = level;
}

static bool stderr_is_journal_stream(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int end = 0;

	if (!e || sscanf(e, "%llu:%llu%n", &dev, &ino, &end) != 2 || e[end] != '\0')
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

bool log_to_journal(void)
{
	if (journal < 0)
		journal = stderr_is_journal_stream();
	return journal;
}

/* syslog priorities: err, warning, info, debug */
static const int prio[] = { 3, 4, 6, 7 };

static int journal_send(enum log_level level, const struct log_about *about, const char *text)
{
	char message[LOG_LINE_MAX + sizeof("MESSAGE=")], priority[16], queue[IPCQ_NAME_MAX + 16];
	char uid[32], pid[32];
	struct iovec iov[6];
	int n = 0;

	snprintf(message, sizeof(message), "MESSAGE=%s", text);
	snprintf(priority, sizeof(priority), "PRIORITY=%d", prio[level]);
	iov[n++] = (struct iovec){ message, strlen(message) };
	iov[n++] = (struct iovec){ priority, strlen(priority) };
	iov[n++] = (struct iovec){ (char *)"SYSLOG_IDENTIFIER=ipcbrokerd", strlen("SYSLOG_IDENTIFIER=ipcbrokerd") };
	if (about && about->queue) {
		snprintf(queue, sizeof(queue), "QUEUE=%s", about->queue);
		iov[n++] = (struct iovec){ queue, strlen(queue) };
	}
	if (about && about->peer) {
		snprintf(uid, sizeof(uid), "PEER_UID=%u", (unsigned)about->uid);
		snprintf(pid, sizeof(pid), "PEER_PID=%d", (int)about->pid);
		iov[n++] = (struct iovec){ uid, strlen(uid) };
		iov[n++] = (struct iovec){ pid, strlen(pid) };
	}
	return sd_journal_sendv(iov, n);
}

__attribute__((format(printf, 3, 0))) static void log_v(enum log_level level, const struct log_about *about,
                                                        const char *fmt, va_list ap)
{
	static const char *const name[] = { "error", "warning", "info", "debug" };
	char text[LOG_LINE_MAX];

	vsnprintf(text, sizeof(text), fmt, ap);
	if (log_to_journal() && access(JOURNAL_SOCKET, F_OK) == 0 && journal_send(level, about, text) >= 0)
		return;
	flockfile(stderr);
	if (log_to_journal())
		fprintf(stderr, "<%d>%s\n", prio[level], text);
	else
		fprintf(stderr, "ipcbrokerd: %s: %s\n", name[level], text);
	funlockfile(stderr);
}

void log_about_msg(enum log_level level, const struct log_about *about, const char *fmt, ...)
{
	va_list ap;

	if (level > max_level)
		return;
	va_start(ap, fmt);
	log_v(level, about, fmt, ap);
	va_end(ap);
}

void log_about_limited(struct log_ratelimit *rl, enum log_level level, const struct log_about *about,
                       const char *fmt, ...)
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
	log_v(level, about, fmt, ap);
	va_end(ap);
}
