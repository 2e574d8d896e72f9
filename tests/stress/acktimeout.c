/* SPDX-License-Identifier: Apache-2.0 */
/*
 * acktimeout.c - a receiver that lives but holds a message past its
 * queue's ack_timeout; for t_acktimeout.sh.
 *
 *   acktimeout CASE QUEUE API
 *
 * A holder (a child process with its own connection) receives one
 * 2000-byte message (through the ring) with API "view" (ipcq_recv_view)
 * or "copy" (ipcq_recv), and holds it, alive, until told to let go
 * (ipcq_release, or ipcq_ack).  Meanwhile another handle receives:
 *
 *   takeback  the message comes back flagged redelivered with
 *             deliveries 2, its bytes intact, no sooner than the
 *             timeout less a tenth and within 3 s of the take, and the
 *             redelivered counter moves by one; then the holder lets go
 *             late, and that changes nothing: the new holder's chunk
 *             stays in use (ring_used), its bytes stay intact, nobody
 *             else gets the message, and the new holder's release empties
 *             the ring.  QUEUE: at-least-once with ack_timeout = "1s".
 *   keep      nothing comes back within 3.5 s, nothing is redelivered,
 *             and the holder's release empties the ring.  QUEUE:
 *             at-least-once with ack_timeout = "0", or at-most-once.
 *
 * Exit 0 on success, 1 on a failed check (the reason on stderr), 2 on a
 * usage error.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipcq.h"
#include "pattern.h"
#include "timing.h"

#define MSG_LEN 2000u
#define TAKE_WAIT_MS 5000      /* for the holder's first receive */
#define ACK_TIMEOUT_MS 1000u   /* the takeback queue's */
#define EARLIEST_MS 800u       /* the timeout less its slack, and some */
#define LATEST_MS 3000u        /* the timeout plus two sweeps, and some */
#define KEEP_WAIT_MS 3500      /* a keep queue gives nothing back in this */
#define REPLY_MS 10000         /* the holder answers within this */
#define SETTLE_MS 2000         /* for ring_used to come back to 0 */

static const char *cmd, *qname, *api;
static pid_t holder_pid;

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "acktimeout %s %s %s: ", cmd, qname, api);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (holder_pid > 0) {
		kill(holder_pid, SIGKILL);
		waitpid(holder_pid, NULL, 0);
	}
	exit(1);
}

/* One byte from fd within timeout_ms, or -1. */
static int read_byte(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	unsigned char b;

	if (poll(&p, 1, timeout_ms) != 1 || read(fd, &b, 1) != 1)
		return -1;
	return b;
}

static void write_byte(int fd, unsigned char b)
{
	if (write(fd, &b, 1) != 1)
		_exit(3);
}

static bool intact(const void *data, size_t len, uint64_t seed)
{
	unsigned char want[MSG_LEN];

	pattern_fill(want, MSG_LEN, seed);
	return len == MSG_LEN && memcmp(data, want, MSG_LEN) == 0;
}

/* ---- the holder ---- */

/* Receives the message, says 'T' (or 'E' on a failed check), holds it
 * until told, lets go, and says 'R' (or 'E'). */
static void holder_main(int cmd_fd, int rep_fd, uint64_t seed)
{
	unsigned char buf[MSG_LEN];
	ipcq_client *c = NULL;
	ipcq_queue *q = NULL;
	bool view = strcmp(api, "view") == 0;
	ipcq_msg m = { 0 };
	int r;

	if (ipcq_connect(&c, NULL) < 0 || ipcq_open(c, qname, IPCQ_RECV, &q) < 0)
		_exit(4);
	if (view) {
		r = ipcq_recv_view(q, &m, TAKE_WAIT_MS);
		if (r < 0 || !intact(m.data, m.len, seed) || m.deliveries != 1 || (m.flags & IPCQ_MSG_REDELIVERED)) {
			write_byte(rep_fd, 'E');
			_exit(5);
		}
	} else {
		ssize_t n = ipcq_recv(q, buf, sizeof(buf), NULL, TAKE_WAIT_MS);

		if (n < 0 || !intact(buf, (size_t)n, seed)) {
			write_byte(rep_fd, 'E');
			_exit(5);
		}
	}
	write_byte(rep_fd, 'T');
	if (read_byte(cmd_fd, 60000) != 'R')
		_exit(6);
	r = view ? ipcq_release(q, &m) : ipcq_ack(q);
	write_byte(rep_fd, r == 0 ? 'R' : 'E');
	ipcq_close(q);
	ipcq_disconnect(c);
	_exit(0);
}

/* ---- the other side ---- */

static ipcq_stats stat_of(ipcq_client *c)
{
	ipcq_stats st;
	int r = ipcq_stat(c, qname, &st);

	if (r < 0)
		fail("ipcq_stat: %s", ipcq_strerror(r));
	return st;
}

static void wait_ring_empty(ipcq_client *c)
{
	uint64_t until = now_ms() + SETTLE_MS;
	ipcq_stats st;

	for (;;) {
		st = stat_of(c);
		if (st.ring_used == 0 && st.depth == 0)
			return;
		if (now_ms() >= until)
			fail("ring_used %" PRIu64 ", depth %" PRIu64 " after the last release, not 0", st.ring_used,
			     st.depth);
		sleep_ms(50);
	}
}

static void holder_let_go(int cmd_fd, int rep_fd)
{
	int st = 0;

	write_byte(cmd_fd, 'R');
	if (read_byte(rep_fd, REPLY_MS) != 'R')
		fail("the holder's late release or ack failed");
	if (waitpid(holder_pid, &st, 0) != holder_pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail("the holder exited with status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	holder_pid = 0;
}

static void run_takeback(ipcq_client *c, uint64_t seed, const ipcq_stats *base, int cmd_fd, int rep_fd, uint64_t t0)
{
	ipcq_queue *rx = NULL, *other = NULL;
	ipcq_stats st;
	uint64_t got, held;
	ipcq_msg m;
	int r;

	r = ipcq_open(c, qname, IPCQ_RECV, &rx);
	if (r < 0)
		fail("open: %s", ipcq_strerror(r));
	r = ipcq_recv_view(rx, &m, (int)LATEST_MS + 1000);
	got = now_ms();
	if (r < 0)
		fail("the message held past ack_timeout did not come back in %u ms: %s", LATEST_MS + 1000,
		     ipcq_strerror(r));
	if (got - t0 < EARLIEST_MS)
		fail("the message came back %" PRIu64 " ms after the take, before ack_timeout (%u ms)", got - t0,
		     ACK_TIMEOUT_MS);
	if (got - t0 > LATEST_MS)
		fail("the message came back %" PRIu64 " ms after the take, later than %u ms", got - t0, LATEST_MS);
	if (!(m.flags & IPCQ_MSG_REDELIVERED) || m.deliveries != 2)
		fail("the message came back with flags %#x, deliveries %u: not flagged redelivered, 2", m.flags,
		     m.deliveries);
	if (!intact(m.data, m.len, seed))
		fail("the message came back with other bytes");
	st = stat_of(c);
	if (st.redelivered != base->redelivered + 1)
		fail("redelivered moved by %" PRIu64 ", not 1", st.redelivered - base->redelivered);

	/* the first holder lets go late: the chunk is not its any more */
	holder_let_go(cmd_fd, rep_fd);
	st = stat_of(c);
	if (st.ring_used == 0)
		fail("the late holder's release freed the chunk another receiver holds");
	if (!intact(m.data, m.len, seed))
		fail("the new holder's bytes changed after the late release");
	r = ipcq_open(c, qname, IPCQ_RECV, &other);
	if (r < 0)
		fail("open: %s", ipcq_strerror(r));
	{
		ipcq_msg m3;

		r = ipcq_recv_view(other, &m3, 0);
		if (r != -EAGAIN)
			fail("a third receiver got %s, not -EAGAIN, while the second holds the message",
			     r == 0 ? "a message" : ipcq_strerror(r));
	}
	ipcq_close(other);
	held = now_ms() - got;
	if (held >= ACK_TIMEOUT_MS - 100)
		fail("the second receiver held the message %" PRIu64 " ms, near its own ack_timeout: the machine "
		     "is too slow for this test to tell anything",
		     held);
	r = ipcq_release(rx, &m);
	if (r < 0)
		fail("release: %s", ipcq_strerror(r));
	printf("came back %" PRIu64 " ms after the take; held %" PRIu64 " ms by the second receiver\n", got - t0,
	       held);
	wait_ring_empty(c);
	st = stat_of(c);
	if (st.redelivered != base->redelivered + 1)
		fail("redelivered moved by %" PRIu64 " in all, not 1", st.redelivered - base->redelivered);
	ipcq_close(rx);
}

static void run_keep(ipcq_client *c, const ipcq_stats *base, int cmd_fd, int rep_fd)
{
	ipcq_queue *rx = NULL;
	ipcq_stats st;
	ipcq_msg m;
	int r;

	r = ipcq_open(c, qname, IPCQ_RECV, &rx);
	if (r < 0)
		fail("open: %s", ipcq_strerror(r));
	r = ipcq_recv_view(rx, &m, KEEP_WAIT_MS);
	if (r == 0)
		fail("the held message was delivered again (flags %#x, deliveries %u)", m.flags, m.deliveries);
	if (r != -ETIMEDOUT && r != -EAGAIN)
		fail("receive: %s", ipcq_strerror(r));
	st = stat_of(c);
	if (st.redelivered != base->redelivered)
		fail("redelivered moved by %" PRIu64, st.redelivered - base->redelivered);
	holder_let_go(cmd_fd, rep_fd);
	wait_ring_empty(c);
	ipcq_close(rx);
}

int main(int argc, char **argv)
{
	unsigned char msg[MSG_LEN];
	int to_holder[2], from_holder[2];
	ipcq_client *c = NULL;
	ipcq_queue *tx = NULL;
	ipcq_stats base;
	uint64_t seed, t0;
	int r;

	if (argc != 4 || (strcmp(argv[1], "takeback") != 0 && strcmp(argv[1], "keep") != 0) ||
	    (strcmp(argv[3], "view") != 0 && strcmp(argv[3], "copy") != 0)) {
		fprintf(stderr, "usage: acktimeout takeback|keep QUEUE view|copy\n");
		return 2;
	}
	cmd = argv[1];
	qname = argv[2];
	api = argv[3];
	seed = (uint64_t)getpid() << 20 ^ now_ms();
	if (pipe(to_holder) < 0 || pipe(from_holder) < 0)
		fail("pipe: %s", strerror(errno));
	/* the holder connects on its own: handles do not cross fork() */
	holder_pid = fork();
	if (holder_pid < 0)
		fail("fork: %s", strerror(errno));
	if (holder_pid == 0) {
		close(to_holder[1]);
		close(from_holder[0]);
		holder_main(to_holder[0], from_holder[1], seed);
	}
	close(to_holder[0]);
	close(from_holder[1]);

	r = ipcq_connect(&c, NULL);
	if (r < 0)
		fail("connect: %s", ipcq_strerror(r));
	r = ipcq_open(c, qname, IPCQ_SEND, &tx);
	if (r < 0)
		fail("open: %s", ipcq_strerror(r));
	base = stat_of(c);
	pattern_fill(msg, sizeof(msg), seed);
	r = ipcq_send(tx, msg, sizeof(msg), 0, 1000);
	if (r < 0)
		fail("send: %s", ipcq_strerror(r));
	r = read_byte(from_holder[0], REPLY_MS);
	if (r != 'T')
		fail("the holder did not receive the message intact (%s)", r < 0 ? "no answer" : "a check failed");
	t0 = now_ms();

	if (strcmp(cmd, "takeback") == 0)
		run_takeback(c, seed, &base, to_holder[1], from_holder[0], t0);
	else
		run_keep(c, &base, to_holder[1], from_holder[0]);
	ipcq_close(tx);
	ipcq_disconnect(c);
	return 0;
}
