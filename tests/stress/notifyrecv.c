/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notifyrecv.c - a stand-in for systemd's notification socket, driven by
 * tests/integration/t_sdnotify.sh.
 *
 * Usage: notifyrecv PATH SECONDS
 *
 * Binds a Unix datagram socket at PATH (a leading '@' names an abstract
 * socket, as NOTIFY_SOCKET may) and prints every datagram it receives on
 * its own line of standard output, flushed at once, so that a test can
 * watch the output while the daemon runs.  A datagram that holds several
 * assignments ("READY=1\nSTATUS=...") prints as several lines, one per
 * assignment, which is how systemd reads it.  Descriptors or credentials
 * attached to a datagram are ignored.
 *
 * Exits 0 after SECONDS (fractions allowed) or on SIGTERM or SIGINT, and
 * removes PATH; 1 on an error, 2 on a usage error.  Signals arrive through
 * a signalfd polled beside the socket, so no datagram is cut short.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* sd_notify messages are short; this is far more than any of them. */
#define DATAGRAM_MAX 65536

static int usage(void)
{
	fputs("Usage: notifyrecv PATH SECONDS\n", stderr);
	return 2;
}

static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Bind a datagram socket at path; returns the fd or -1 after a message. */
static int bind_notify_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	bool abstract = path[0] == '@';
	socklen_t addrlen;
	int fd;

	if (len == 0 || len >= sizeof(sa.sun_path)) {
		fprintf(stderr, "notifyrecv: bad socket path '%s'\n", path);
		return -1;
	}
	memcpy(sa.sun_path, path, len);
	if (abstract)
		sa.sun_path[0] = '\0'; /* no file, and no trailing NUL in the name */
	addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + !abstract);

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "notifyrecv: socket: %s\n", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sa, addrlen) < 0) {
		fprintf(stderr, "notifyrecv: bind %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Print one datagram, without a trailing newline of its own, as a line. */
static int print_datagram(const char *buf, size_t len)
{
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (fwrite(buf, 1, len, stdout) != len || putchar('\n') == EOF || fflush(stdout) != 0) {
		fprintf(stderr, "notifyrecv: writing to standard output: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static int receive_until(int sock, int sigfd, uint64_t deadline_ms)
{
	static char buf[DATAGRAM_MAX];

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = sock, .events = POLLIN },
			{ .fd = sigfd, .events = POLLIN },
		};
		uint64_t now = monotonic_ms();
		ssize_t n;
		int r;

		if (now >= deadline_ms)
			return 0;
		r = poll(pfd, 2, (int)(deadline_ms - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "notifyrecv: poll: %s\n", strerror(errno));
			return -1;
		}
		/* Datagrams already queued are printed before a signal ends us. */
		if (pfd[0].revents & POLLIN) {
			n = recv(sock, buf, sizeof(buf), MSG_DONTWAIT);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				fprintf(stderr, "notifyrecv: recv: %s\n", strerror(errno));
				return -1;
			}
			if (n >= 0 && print_datagram(buf, (size_t)n) < 0)
				return -1;
			continue;
		}
		if (pfd[1].revents & POLLIN)
			return 0;
	}
}

int main(int argc, char **argv)
{
	sigset_t mask;
	double seconds;
	char *end;
	int sock, sigfd, r;

	if (argc != 3)
		return usage();
	errno = 0;
	seconds = strtod(argv[2], &end);
	if (end == argv[2] || *end || errno || !isfinite(seconds) || seconds <= 0 || seconds > 86400)
		return usage();

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
		fprintf(stderr, "notifyrecv: sigprocmask: %s\n", strerror(errno));
		return 1;
	}
	sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sigfd < 0) {
		fprintf(stderr, "notifyrecv: signalfd: %s\n", strerror(errno));
		return 1;
	}
	sock = bind_notify_socket(argv[1]);
	if (sock < 0)
		return 1;

	r = receive_until(sock, sigfd, monotonic_ms() + (uint64_t)(seconds * 1000.0));

	close(sock);
	close(sigfd);
	if (argv[1][0] != '@')
		unlink(argv[1]);
	return r < 0 ? 1 : 0;
}
