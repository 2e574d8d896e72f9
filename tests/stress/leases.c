/* SPDX-License-Identifier: Apache-2.0 */
/*
 * leases.c - what becomes of a message its receiver held and did not
 * acknowledge; for t_leases.sh.
 *
 *   leases CASE QUEUE VARIANT
 *
 * VARIANT says how the case's messages travel: "small", 100 bytes each
 * with ipcq_send (inline in an at-most-once queue, a ring chunk each in an
 * at-least-once one); "large", 20000 bytes each with ipcq_send (a ring
 * chunk each); "batch", 100 bytes each with one ipcq_send_batch call
 * (several records in one chunk: checked through ring_chunks).
 *
 * CASE, in QUEUE (at-least-once unless said):
 *   kill    a worker receives a copy with ipcq_recv and is SIGKILLed before
 *           its next call: the message comes back flagged redelivered with
 *           deliveries 2, and the redelivered counter moves
 *   ack     a worker receives two copies of three, calls ipcq_ack and is
 *           killed: neither comes back, the third comes once, unflagged;
 *           nothing is redelivered, depth ends at 0
 *   loop    a worker receives five copies in the plain loop and is killed:
 *           only the fifth comes back
 *   close   of one handle, the main thread receives a copy and another
 *           thread one; the main thread closes the handle: its copy is
 *           acknowledged, the other thread's comes back
 *   views   three views, then ipcq_close without ipcq_release: at-least-once,
 *           all three come back; at-most-once (QUEUE of that mode), none;
 *           records of a batch never handed out come back in both
 *   bound   64 views held: the handle takes nothing more from the queue
 *           (what it took already, the rest of a batch, still goes out),
 *           then the next receive fails at once with -ENOBUFS
 *           (ipcq_recv_batch and ipcq_recv too); meanwhile
 *           another handle receives what the first did not hand out (the
 *           rest of a batch it took included), new handles open and
 *           receive, and releases down under the bound let the first
 *           receive again.  Run
 *           in an at-most-once queue too
 *   twice   two workers killed holding the same message: it arrives with
 *           deliveries 3
 *   acked   the acked counter moves by one per acknowledgement (ipcq_recv's
 *           next call, ipcq_ack, ipcq_release) and by nothing else; QUEUE
 *           may be of either mode
 *
 * Every case also checks the acked counter against the releases and
 * acknowledgements it made, every message for its bytes and its
 * deliveries (IPCQ_MSG_REDELIVERED exactly when deliveries > 1), and that
 * the queue holds nothing afterwards.  Workers are child processes with
 * their own connection, driven through a pipe: they are killed while they
 * wait for their next command, so between two library calls.
 * Exit 0 on success, 1 on a failed check (the reason on stderr), 2 on a
 * usage error.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipcq.h"
#include "pattern.h"
#include "timing.h"

#define MSG_MAGIC 0x5345534cu /* "LSES" */
#define SMALL_LEN 100u
#define LARGE_LEN 20000u
#define MAX_MSGS 80u
#define HELD_MAX 64u       /* the contract's bound on what a handle holds */
#define PREFETCH 16u       /* the queues' prefetch (the default): a batch's most records */
#define WAIT_MS 5000       /* for a message that must come */
#define QUIET_MS 300       /* for one that must not, once the daemon acted */
#define SETTLE_MS 3000     /* for the daemon's and the ring's bookkeeping */
#define ENOBUFS_FAST_MS 1000
#define WORKER_REPLY_MS 10000

enum variant { V_SMALL, V_LARGE, V_BATCH };
static const char *const variant_names[] = { "small", "large", "batch" };

struct msg_hdr {
	uint32_t magic;
	uint32_t run; /* this invocation's, so leftovers of another are told apart */
	uint32_t id;
	uint32_t len; /* whole message, header included */
};

struct env {
	const char *cmd;
	const char *name;
	enum variant v;
	size_t len;
	uint32_t run;
	unsigned prefetch;
	bool alo; /* at-least-once */
	ipcq_client *c;
	ipcq_queue *tx, *rx; /* the sender, and "the next receiver" */
	ipcq_stats base;     /* counters when the case began */
	uint64_t acks;       /* acknowledgements the case made so far */
};

static struct env E;

/* workers alive, killed on a failure */
#define MAX_WORKERS 4
static pid_t live[MAX_WORKERS];

static void kill_workers(void)
{
	for (unsigned i = 0; i < MAX_WORKERS; i++) {
		if (live[i] > 0) {
			kill(live[i], SIGKILL);
			waitpid(live[i], NULL, 0);
			live[i] = 0;
		}
	}
}

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "leases %s %s %s: ", E.cmd, E.name, variant_names[E.v]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	kill_workers();
	exit(1);
}

/* ---- messages ---- */

static void build_msg(unsigned char *buf, size_t len, uint32_t run, uint32_t id)
{
	struct msg_hdr h = { .magic = MSG_MAGIC, .run = run, .id = id, .len = (uint32_t)len };

	memcpy(buf, &h, sizeof(h));
	pattern_fill(buf + sizeof(h), len - sizeof(h), ((uint64_t)run << 32) ^ id);
}

/* The id of message p[0..n) of this run, or -1 (with *why) if it is not
 * one intact. */
static long msg_id(const void *p, size_t n, uint32_t run, const char **why)
{
	static unsigned char want[LARGE_LEN];
	struct msg_hdr h;

	if (n < sizeof(h) || n > sizeof(want)) {
		*why = "a length no message of the test has";
		return -1;
	}
	memcpy(&h, p, sizeof(h));
	if (h.magic != MSG_MAGIC || h.len != n) {
		*why = "a damaged header";
		return -1;
	}
	if (h.run != run) {
		*why = "a message of another run (left over)";
		return -1;
	}
	build_msg(want, n, run, h.id);
	if (memcmp(want, p, n) != 0) {
		*why = "damaged bytes";
		return -1;
	}
	return h.id;
}

static void send_msgs(uint32_t first, unsigned n)
{
	static unsigned char bufs[MAX_MSGS][LARGE_LEN];
	struct iovec iov[MAX_MSGS];
	ipcq_stats before, after;
	unsigned sent = 0;
	int r;

	if (n > MAX_MSGS)
		fail("%u messages asked, at most %u", n, MAX_MSGS);
	for (unsigned i = 0; i < n; i++) {
		build_msg(bufs[i], E.len, E.run, first + i);
		iov[i] = (struct iovec){ .iov_base = bufs[i], .iov_len = E.len };
	}
	if (E.v != V_BATCH) {
		for (unsigned i = 0; i < n; i++) {
			r = ipcq_send(E.tx, bufs[i], E.len, 0, WAIT_MS);
			if (r < 0)
				fail("ipcq_send of message %u: %s", first + i, ipcq_strerror(r));
		}
		return;
	}
	r = ipcq_stat(E.c, E.name, &before);
	if (r < 0)
		fail("ipcq_stat: %s", ipcq_strerror(r));
	while (sent < n) {
		r = ipcq_send_batch(E.tx, iov + sent, n - sent, 0, WAIT_MS);
		if (r <= 0)
			fail("ipcq_send_batch of messages %u..%u: %s", first + sent, first + n - 1, ipcq_strerror(r));
		sent += (unsigned)r;
	}
	/* the case tests records of a batch chunk only if they are that (one
	 * message alone travels as ipcq_send sends it) */
	r = ipcq_stat(E.c, E.name, &after);
	if (r < 0)
		fail("ipcq_stat: %s", ipcq_strerror(r));
	if (n > 1 && after.ring_chunks - before.ring_chunks != (n + E.prefetch - 1) / E.prefetch)
		fail("ipcq_send_batch of %u messages made %" PRIu64 " ring chunks, expected %u (prefetch %u)", n,
		     after.ring_chunks - before.ring_chunks, (n + E.prefetch - 1) / E.prefetch, E.prefetch);
}

/* ---- the queue's counters ---- */

static ipcq_stats stats(void)
{
	ipcq_stats st;
	int r = ipcq_stat(E.c, E.name, &st);

	if (r < 0)
		fail("ipcq_stat: %s", ipcq_strerror(r));
	return st;
}

/* Wait until nothing waits, nothing is held and the ring is empty. */
static void wait_empty(const char *when)
{
	uint64_t end = now_ms() + SETTLE_MS;
	ipcq_stats st;

	for (;;) {
		st = stats();
		if (st.depth == 0 && st.ring_chunks == 0 && st.ring_used == 0)
			return;
		if (now_ms() > end)
			break;
		sleep_ms(20);
	}
	fail("%s: depth %" PRIu64 ", ring_chunks %" PRIu64 ", ring_used %" PRIu64 " after %d ms, expected 0", when,
	     st.depth, st.ring_chunks, st.ring_used, SETTLE_MS);
}

/* Wait until the daemon freed the receive slots of the workers killed:
 * it takes back their chunks in the same step. */
static void wait_receivers(uint32_t want)
{
	uint64_t end = now_ms() + SETTLE_MS;
	ipcq_stats st;

	for (;;) {
		st = stats();
		if (st.receivers == want)
			return;
		if (now_ms() > end)
			break;
		sleep_ms(10);
	}
	fail("%u receive slots in use %d ms after a worker was killed, expected %u", st.receivers, SETTLE_MS, want);
}

static void check_counter(const char *what, uint64_t before, uint64_t now, uint64_t moved)
{
	if (now - before != moved)
		fail("counter %s moved by %" PRIu64 ", expected %" PRIu64, what, now - before, moved);
}

static void check_acked(const char *when)
{
	ipcq_stats st = stats();

	if (st.acked - E.base.acked != E.acks)
		fail("%s: counter acked moved by %" PRIu64 ", expected %" PRIu64, when, st.acked - E.base.acked, E.acks);
}

/* ---- receiving and checking ---- */

static void check_view(const ipcq_msg *m, long *id, const char *who)
{
	const char *why;

	*id = msg_id(m->data, m->len, E.run, &why);
	if (*id < 0)
		fail("%s received %s (%zu bytes)", who, why, m->len);
	if (((m->flags & IPCQ_MSG_REDELIVERED) != 0) != (m->deliveries > 1))
		fail("%s received message %ld with deliveries %u and flags %#x: redelivered must be set exactly when "
		     "deliveries > 1",
		     who, *id, m->deliveries, m->flags);
}

static void release(ipcq_queue *q, ipcq_msg *m)
{
	int r = ipcq_release(q, m);

	if (r < 0)
		fail("ipcq_release: %s", ipcq_strerror(r));
	E.acks++;
}

struct want {
	uint32_t id;
	unsigned deliveries;
	bool seen;
};

/* The next receiver (E.rx) gets exactly want[0..n), in any order, each
 * with its deliveries, and then nothing within QUIET_MS. */
static void expect(struct want *want, unsigned n)
{
	ipcq_msg m;
	long id;
	int r;

	for (unsigned got = 0; got < n; got++) {
		unsigned i;

		r = ipcq_recv_view(E.rx, &m, WAIT_MS);
		if (r < 0) {
			for (i = 0; i < n && want[i].seen; i++)
				;
			fail("message %u (deliveries %u) did not come within %d ms: %s", want[i].id, want[i].deliveries,
			     WAIT_MS, ipcq_strerror(r));
		}
		check_view(&m, &id, "the next receiver");
		for (i = 0; i < n && !(want[i].id == (uint32_t)id && !want[i].seen); i++)
			;
		if (i == n)
			fail("the next receiver got message %ld (deliveries %u, flags %#x): not expected, or twice", id,
			     m.deliveries, m.flags);
		if (m.deliveries != want[i].deliveries)
			fail("message %ld came with deliveries %u, flags %#x; expected deliveries %u", id, m.deliveries,
			     m.flags, want[i].deliveries);
		want[i].seen = true;
		release(E.rx, &m);
	}
	r = ipcq_recv_view(E.rx, &m, QUIET_MS);
	if (r == 0) {
		check_view(&m, &id, "the next receiver");
		fail("the next receiver got message %ld (deliveries %u, flags %#x) that should not come back", id,
		     m.deliveries, m.flags);
	}
	if (r != -ETIMEDOUT)
		fail("the receive after the expected messages: %s, expected a timeout", ipcq_strerror(r));
}

/* ---- workers ---- */

enum { CMD_RECV = 'r', CMD_VIEW = 'v', CMD_ACK = 'a' };

struct reply {
	int32_t rc;
	uint32_t id;
	uint32_t flags; /* views only */
	uint32_t deliveries;
	char why[64];
};

struct worker {
	pid_t pid;
	int cmd, rep;
};

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n, int timeout_ms)
{
	char *c = p;

	while (n) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t got;

		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -1;
		got = read(fd, c, n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		c += got;
		n -= (size_t)got;
	}
	return 0;
}

/* The child: its own connection and receiving handle; one reply to the
 * open, then one per command, until killed. */
static __attribute__((noreturn)) void worker_main(int cmd, int rep)
{
	static unsigned char buf[LARGE_LEN];
	struct reply rp = { 0 };
	ipcq_client *c;
	ipcq_queue *q = NULL;
	char op;

	rp.rc = ipcq_connect(&c, NULL);
	if (rp.rc == 0)
		rp.rc = ipcq_open(c, E.name, IPCQ_RECV, &q);
	if (write_all(rep, &rp, sizeof(rp)) < 0 || rp.rc < 0)
		_exit(1);
	while (read(cmd, &op, 1) == 1) {
		const char *why = "";
		ipcq_msg m;
		long id = 0;

		rp = (struct reply){ 0 };
		if (op == CMD_RECV) {
			ssize_t n = ipcq_recv(q, buf, sizeof(buf), NULL, WAIT_MS);

			rp.rc = (int32_t)n;
			if (n >= 0)
				id = msg_id(buf, (size_t)n, E.run, &why);
		} else if (op == CMD_VIEW) {
			rp.rc = ipcq_recv_view(q, &m, WAIT_MS);
			if (rp.rc == 0) {
				id = msg_id(m.data, m.len, E.run, &why);
				rp.flags = m.flags;
				rp.deliveries = m.deliveries;
			}
		} else if (op == CMD_ACK) {
			rp.rc = ipcq_ack(q);
		} else {
			_exit(2);
		}
		if (id < 0) {
			rp.rc = -EBADMSG;
			snprintf(rp.why, sizeof(rp.why), "%s", why);
		}
		rp.id = (uint32_t)id;
		if (write_all(rep, &rp, sizeof(rp)) < 0)
			_exit(1);
	}
	/* never reached in the tests: they kill the worker */
	_exit(0);
}

static void worker_start(struct worker *w)
{
	int cmd[2], rep[2];
	struct reply rp;
	unsigned i;

	for (i = 0; i < MAX_WORKERS && live[i] > 0; i++)
		;
	if (i == MAX_WORKERS)
		fail("too many workers");
	if (pipe(cmd) < 0 || pipe(rep) < 0)
		fail("pipe: %s", strerror(errno));
	fflush(NULL);
	w->pid = fork();
	if (w->pid < 0)
		fail("fork: %s", strerror(errno));
	if (w->pid == 0) {
		close(cmd[1]);
		close(rep[0]);
		worker_main(cmd[0], rep[1]);
	}
	live[i] = w->pid;
	close(cmd[0]);
	close(rep[1]);
	w->cmd = cmd[1];
	w->rep = rep[0];
	if (read_all(w->rep, &rp, sizeof(rp), WORKER_REPLY_MS) < 0)
		fail("worker %d did not start", (int)w->pid);
	if (rp.rc < 0)
		fail("worker: connect or open %s: %s", E.name, ipcq_strerror(rp.rc));
}

static struct reply worker_do(struct worker *w, char op)
{
	struct reply rp;

	if (write_all(w->cmd, &op, 1) < 0 || read_all(w->rep, &rp, sizeof(rp), WORKER_REPLY_MS) < 0)
		fail("worker %d did not answer command '%c'", (int)w->pid, op);
	return rp;
}

/* The worker receives a copy: message want_id, intact. */
static void worker_recv(struct worker *w, uint32_t want_id)
{
	struct reply rp = worker_do(w, CMD_RECV);

	if (rp.rc == -EBADMSG && rp.why[0])
		fail("a worker's ipcq_recv returned %s", rp.why);
	if (rp.rc < 0)
		fail("a worker's ipcq_recv: %s", ipcq_strerror(rp.rc));
	if ((size_t)rp.rc != E.len || rp.id != want_id)
		fail("a worker's ipcq_recv returned message %u of %d bytes, expected %u of %zu", rp.id, rp.rc, want_id,
		     E.len);
}

static void worker_kill(struct worker *w)
{
	int status;

	if (kill(w->pid, SIGKILL) < 0 || waitpid(w->pid, &status, 0) != w->pid)
		fail("kill worker %d: %s", (int)w->pid, strerror(errno));
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail("worker %d ended with status %#x before it was killed", (int)w->pid, status);
	for (unsigned i = 0; i < MAX_WORKERS; i++)
		if (live[i] == w->pid)
			live[i] = 0;
	close(w->cmd);
	close(w->rep);
}

/* ---- set-up ---- */

static void env_open(void)
{
	ipcq_geometry g;
	ipcq_stats st;
	int r;

	r = ipcq_connect(&E.c, NULL);
	if (r < 0)
		fail("connect: %s", ipcq_strerror(r));
	r = ipcq_open(E.c, E.name, IPCQ_SEND, &E.tx);
	if (r == 0)
		r = ipcq_open(E.c, E.name, IPCQ_RECV, &E.rx);
	if (r < 0)
		fail("open: %s (%s)", ipcq_strerror(r), ipcq_last_error(E.c));
	r = ipcq_geometry_of(E.tx, &g);
	if (r < 0)
		fail("ipcq_geometry_of: %s", ipcq_strerror(r));
	E.prefetch = g.prefetch;
	if (E.prefetch < 2)
		fail("prefetch %u: no batch of several records possible", E.prefetch);
	st = stats();
	E.alo = st.delivery == 1;
	wait_empty("before the case");
	E.base = stats();
	E.acks = 0;
}

static void env_close(void)
{
	int r;

	check_acked("at the end");
	r = ipcq_close(E.rx);
	if (r == 0)
		r = ipcq_close(E.tx);
	if (r < 0)
		fail("ipcq_close: %s", ipcq_strerror(r));
	wait_empty("after the case");
	ipcq_disconnect(E.c);
}

static void need_alo(void)
{
	if (!E.alo)
		fail("this case needs an at-least-once queue");
}

/* ---- the cases ---- */

static void case_kill(void)
{
	struct want want[] = { { 0, 2, false }, { 1, 1, false }, { 2, 1, false } };
	uint32_t receivers = stats().receivers;
	struct worker w;

	need_alo();
	send_msgs(0, 3);
	worker_start(&w);
	worker_recv(&w, 0);
	worker_kill(&w);
	wait_receivers(receivers);
	check_counter("redelivered", E.base.redelivered, stats().redelivered, 1);
	expect(want, 3);
	check_counter("redelivered", E.base.redelivered, stats().redelivered, 1);
	check_counter("depth", 0, stats().depth, 0);
}

static void case_ack(void)
{
	struct want want[] = { { 2, 1, false } };
	uint32_t receivers = stats().receivers;
	struct worker w;
	struct reply rp;

	need_alo();
	send_msgs(0, 3);
	worker_start(&w);
	worker_recv(&w, 0);
	worker_recv(&w, 1);
	rp = worker_do(&w, CMD_ACK);
	if (rp.rc < 0)
		fail("a worker's ipcq_ack: %s", ipcq_strerror(rp.rc));
	E.acks += 2;
	check_acked("after the worker's two copies");
	worker_kill(&w);
	wait_receivers(receivers);
	/* the one it never received is still there, not flagged; then nothing */
	expect(want, 1);
	check_counter("redelivered", E.base.redelivered, stats().redelivered, 0);
	check_counter("depth", 0, stats().depth, 0);
}

static void case_loop(void)
{
	struct want want[] = { { 4, 2, false }, { 5, 1, false }, { 6, 1, false }, { 7, 1, false } };
	uint32_t receivers = stats().receivers;
	struct worker w;

	need_alo();
	send_msgs(0, 8);
	worker_start(&w);
	for (uint32_t i = 0; i < 5; i++) {
		worker_recv(&w, i);
		E.acks += i > 0; /* each call acks the copy before */
		check_acked("in the worker's loop");
	}
	worker_kill(&w);
	wait_receivers(receivers);
	check_counter("redelivered", E.base.redelivered, stats().redelivered, 1);
	expect(want, 4);
	check_counter("depth", 0, stats().depth, 0);
}

struct recv_thread_arg {
	ipcq_queue *q;
	ssize_t n;
	long id;
	const char *why;
};

static void *recv_thread(void *p)
{
	static unsigned char buf[LARGE_LEN];
	struct recv_thread_arg *a = p;

	a->n = ipcq_recv(a->q, buf, sizeof(buf), NULL, WAIT_MS);
	if (a->n >= 0)
		a->id = msg_id(buf, (size_t)a->n, E.run, &a->why);
	return NULL;
}

static void case_close(void)
{
	static unsigned char buf[LARGE_LEN];
	struct want want[] = { { 1, 2, false }, { 2, 1, false }, { 3, 1, false } };
	struct recv_thread_arg a = { 0 };
	const char *why = "";
	ipcq_queue *h;
	pthread_t t;
	ssize_t n;
	long id;
	int r;

	need_alo();
	send_msgs(0, 4);
	r = ipcq_open(E.c, E.name, IPCQ_RECV, &h);
	if (r < 0)
		fail("open a second receiving handle: %s", ipcq_strerror(r));
	n = ipcq_recv(h, buf, sizeof(buf), NULL, WAIT_MS);
	if (n < 0)
		fail("the main thread's ipcq_recv: %s", ipcq_strerror((int)n));
	id = msg_id(buf, (size_t)n, E.run, &why);
	if (id != 0)
		fail("the main thread received message %ld (%s), expected 0", id, id < 0 ? why : "intact");
	a.q = h;
	r = pthread_create(&t, NULL, recv_thread, &a);
	if (r != 0)
		fail("pthread_create: %s", strerror(r));
	pthread_join(t, NULL);
	if (a.n < 0)
		fail("the other thread's ipcq_recv: %s", ipcq_strerror((int)a.n));
	if (a.id != 1)
		fail("the other thread received message %ld (%s), expected 1", a.id, a.id < 0 ? a.why : "intact");
	check_acked("before the close");
	r = ipcq_close(h);
	if (r < 0)
		fail("ipcq_close: %s", ipcq_strerror(r));
	E.acks++; /* the main thread's copy */
	check_acked("after the close");
	expect(want, 3);
	check_counter("depth", 0, stats().depth, 0);
}

static void case_views(void)
{
	struct want want[5];
	unsigned nwant = 0;
	ipcq_msg m[3];
	ipcq_queue *h;
	long id;
	int r;

	send_msgs(0, 5);
	r = ipcq_open(E.c, E.name, IPCQ_RECV, &h);
	if (r < 0)
		fail("open a second receiving handle: %s", ipcq_strerror(r));
	for (unsigned i = 0; i < 3; i++) {
		r = ipcq_recv_view(h, &m[i], WAIT_MS);
		if (r < 0)
			fail("view %u: %s", i, ipcq_strerror(r));
		check_view(&m[i], &id, "the handle closed later");
		if (id != (long)i || m[i].deliveries != 1)
			fail("view %u is message %ld with deliveries %u, flags %#x; expected message %u, deliveries 1", i, id,
			     m[i].deliveries, m[i].flags, i);
	}
	r = ipcq_close(h);
	if (r < 0)
		fail("ipcq_close: %s", ipcq_strerror(r));
	check_acked("after the close"); /* a view is acknowledged by its release alone */
	/* at-least-once: the views come back; at-most-once: they were
	 * delivered once.  What the handle never handed out comes back in
	 * both (a batch's records it held, or what it never took) */
	if (E.alo)
		for (uint32_t i = 0; i < 3; i++)
			want[nwant++] = (struct want){ i, 2, false };
	for (uint32_t i = 3; i < 5; i++)
		want[nwant++] = (struct want){ i, 1, false };
	expect(want, nwant);
	if (!E.alo)
		check_counter("redelivered", E.base.redelivered, stats().redelivered, 0);
	check_counter("depth", 0, stats().depth, 0);
}

/* One view on a fresh handle, released, and the handle closed: false if
 * none came within WAIT_MS. */
static bool view_on_new_handle(const char *who, bool seen[])
{
	ipcq_queue *h;
	ipcq_msg m;
	long id;
	int r;

	r = ipcq_open(E.c, E.name, IPCQ_RECV, &h);
	if (r < 0)
		fail("%s: open while a handle holds %u messages: %s", who, HELD_MAX, ipcq_strerror(r));
	r = ipcq_recv_view(h, &m, WAIT_MS);
	if (r == -ETIMEDOUT) {
		ipcq_close(h);
		return false;
	}
	if (r < 0)
		fail("%s: ipcq_recv_view while another handle holds %u messages: %s", who, HELD_MAX, ipcq_strerror(r));
	check_view(&m, &id, who);
	if (id >= (long)MAX_MSGS || seen[id] || m.deliveries != 1)
		fail("%s got message %ld with deliveries %u: twice, or not with deliveries 1", who, id, m.deliveries);
	seen[id] = true;
	release(h, &m);
	/* the records of a batch it holds go back, for the next handle */
	r = ipcq_close(h);
	if (r < 0)
		fail("%s: ipcq_close: %s", who, ipcq_strerror(r));
	return true;
}

static void case_bound(void)
{
	enum { N = 72 };
	static ipcq_msg held[HELD_MAX + PREFETCH];
	static unsigned char buf[LARGE_LEN];
	struct want want[MAX_MSGS];
	bool seen[MAX_MSGS] = { false };
	unsigned nheld = 0, nwant = 0;
	ipcq_queue *a;
	uint64_t t0, spent;
	char who[32];
	long id;
	int r;

	/* batches: one of 8 first, so the bound falls inside a batch */
	send_msgs(0, 8);
	send_msgs(8, N - 8);
	r = ipcq_open(E.c, E.name, IPCQ_RECV, &a);
	if (r < 0)
		fail("open the holding handle: %s", ipcq_strerror(r));
	/* views until the bound: at 64 the handle takes nothing more from the
	 * queue, but still hands out the rest of a batch it took (at most a
	 * batch, prefetch - 1 more) */
	for (;;) {
		r = nheld % 2 ? ipcq_recv_view(a, &held[nheld], WAIT_MS) : ipcq_recv_batch(a, &held[nheld], 1, WAIT_MS);
		if (r == -ENOBUFS)
			break;
		if (r < 0)
			fail("view %u: %s", nheld, ipcq_strerror(r));
		if (++nheld == sizeof(held) / sizeof(held[0]))
			fail("%u views held and no -ENOBUFS: the bound of %u does not hold", nheld, HELD_MAX);
	}
	if (nheld < HELD_MAX || nheld >= HELD_MAX + PREFETCH)
		fail("-ENOBUFS after %u views: the bound is %u (and at most a batch of %u beyond it)", nheld, HELD_MAX,
		     PREFETCH);
	for (unsigned i = 0; i < nheld; i++) {
		check_view(&held[i], &id, "the holding handle");
		if (id >= (long)MAX_MSGS || seen[id] || held[i].deliveries != 1)
			fail("the holding handle got message %ld with deliveries %u: twice, or not with deliveries 1", id,
			     held[i].deliveries);
		seen[id] = true;
	}

	t0 = now_ms();
	r = ipcq_recv_view(a, &held[nheld], WAIT_MS);
	spent = now_ms() - t0;
	if (r != -ENOBUFS)
		fail("receive %u on a handle holding %u: %s, expected -ENOBUFS", HELD_MAX + 1, HELD_MAX,
		     r == 0 ? "a message" : ipcq_strerror(r));
	if (spent > ENOBUFS_FAST_MS)
		fail("-ENOBUFS came after %" PRIu64 " ms of a %d ms timeout: not at once", spent, WAIT_MS);
	r = ipcq_recv_batch(a, &held[nheld], 4, WAIT_MS);
	if (r != -ENOBUFS)
		fail("ipcq_recv_batch on a handle holding %u: %s, expected -ENOBUFS", HELD_MAX,
		     r > 0 ? "messages" : ipcq_strerror(r));
	r = (int)ipcq_recv(a, buf, sizeof(buf), NULL, WAIT_MS);
	if (r != -ENOBUFS)
		fail("ipcq_recv on a handle holding %u: %s, expected -ENOBUFS", HELD_MAX, r >= 0 ? "a message" : ipcq_strerror(r));
	check_acked("while the handle holds its views");

	/* what the handle did not hand out is not held up by it: not even
	 * the rest of a batch it took before it reached the bound */
	if (nheld < N && !view_on_new_handle("a receiver on another handle", seen))
		fail("%d messages sent were handed out by no one (depth %" PRIu64 "), but a receiver on another handle "
		     "timed out after %d ms while the first handle holds %u",
		     N - (int)nheld, stats().depth, WAIT_MS, nheld);
	/* new receivers open and take what is sent meanwhile */
	send_msgs(N, MAX_MSGS - N);
	for (unsigned i = 0; i < 4; i++) {
		snprintf(who, sizeof(who), "new receiving handle %u", i + 1);
		if (!view_on_new_handle(who, seen))
			fail("%s: ipcq_recv_view timed out after %d ms while messages wait", who, WAIT_MS);
	}

	/* back under the bound: the handle takes from the queue again */
	while (nheld >= HELD_MAX)
		release(a, &held[--nheld]);
	r = ipcq_recv_view(a, &held[nheld], WAIT_MS);
	if (r < 0)
		fail("ipcq_recv_view once under the bound again: %s", ipcq_strerror(r));
	check_view(&held[nheld], &id, "the holding handle");
	if (id >= (long)MAX_MSGS || seen[id] || held[nheld].deliveries != 1)
		fail("the holding handle got message %ld with deliveries %u: twice, or not with deliveries 1", id,
		     held[nheld].deliveries);
	seen[id] = true;
	nheld++;
	while (nheld)
		release(a, &held[--nheld]);
	check_acked("after the releases");
	r = ipcq_close(a);
	if (r < 0)
		fail("ipcq_close: %s", ipcq_strerror(r));
	for (uint32_t i = 0; i < MAX_MSGS; i++)
		if (!seen[i])
			want[nwant++] = (struct want){ i, 1, false };
	expect(want, nwant);
	check_counter("redelivered", E.base.redelivered, stats().redelivered, 0);
}

static void case_twice(void)
{
	struct want want[] = { { 0, 3, false }, { 1, 1, false }, { 2, 1, false } };
	/* single messages: one, so the second worker surely takes it */
	unsigned n = E.v == V_BATCH ? 3 : 1;
	uint32_t receivers = stats().receivers;
	struct worker w;
	struct reply rp;

	need_alo();
	send_msgs(0, n);
	worker_start(&w);
	worker_recv(&w, 0);
	worker_kill(&w);
	wait_receivers(receivers);

	/* the second holds it as a view */
	worker_start(&w);
	rp = worker_do(&w, CMD_VIEW);
	if (rp.rc < 0)
		fail("the second worker's ipcq_recv_view: %s %s", ipcq_strerror(rp.rc), rp.why);
	if (rp.id != 0 || rp.deliveries != 2 || !(rp.flags & IPCQ_MSG_REDELIVERED))
		fail("the second worker got message %u with deliveries %u, flags %#x; expected message 0, deliveries 2, "
		     "redelivered",
		     rp.id, rp.deliveries, rp.flags);
	worker_kill(&w);
	wait_receivers(receivers);
	check_counter("redelivered", E.base.redelivered, stats().redelivered, 2);
	expect(want, n);
	check_counter("depth", 0, stats().depth, 0);
}

static void case_acked(void)
{
	static unsigned char buf[LARGE_LEN];
	const char *why = "";
	ipcq_msg m[4];
	ssize_t n;
	long id;
	int r;

	send_msgs(0, 6);
	for (uint32_t i = 0; i < 6; i++) {
		n = ipcq_recv(E.rx, buf, sizeof(buf), NULL, WAIT_MS);
		if (n < 0)
			fail("ipcq_recv %u: %s", i, ipcq_strerror((int)n));
		id = msg_id(buf, (size_t)n, E.run, &why);
		if (id != (long)i)
			fail("ipcq_recv %u returned message %ld (%s)", i, id, id < 0 ? why : "intact");
		/* at-least-once: this call acked the copy before; at-most-once:
		 * the copy is acknowledged as it is made */
		E.acks += E.alo ? i > 0 : 1;
		check_acked("after an ipcq_recv");
	}
	r = ipcq_ack(E.rx);
	if (r < 0)
		fail("ipcq_ack: %s", ipcq_strerror(r));
	E.acks += E.alo;
	check_acked("after ipcq_ack");
	r = ipcq_ack(E.rx);
	if (r < 0)
		fail("ipcq_ack again: %s", ipcq_strerror(r));
	check_acked("after a second ipcq_ack");
	r = ipcq_ack(E.tx);
	if (r != -EBADF)
		fail("ipcq_ack on a send-only handle: %s, expected -EBADF", ipcq_strerror(r));

	/* a receive that times out acks the copy before it too */
	send_msgs(6, 1);
	n = ipcq_recv(E.rx, buf, sizeof(buf), NULL, WAIT_MS);
	if (n < 0 || msg_id(buf, (size_t)n, E.run, &why) != 6)
		fail("ipcq_recv of message 6: %s", n < 0 ? ipcq_strerror((int)n) : why);
	E.acks += !E.alo;
	check_acked("after an ipcq_recv");
	n = ipcq_recv(E.rx, buf, sizeof(buf), NULL, QUIET_MS);
	if (n != -ETIMEDOUT)
		fail("ipcq_recv of an empty queue: %s, expected a timeout", n >= 0 ? "a message" : ipcq_strerror((int)n));
	E.acks += E.alo;
	check_acked("after an ipcq_recv that timed out");

	/* views: by their release alone */
	send_msgs(7, 4);
	r = ipcq_recv_batch(E.rx, m, 4, WAIT_MS);
	if (r != 4)
		fail("ipcq_recv_batch of 4 waiting messages: %d (%s)", r, r < 0 ? ipcq_strerror(r) : "messages");
	for (uint32_t i = 0; i < 4; i++) {
		check_view(&m[i], &id, "ipcq_recv_batch");
		if (id != (long)(7 + i) || m[i].deliveries != 1)
			fail("ipcq_recv_batch's message %u is %ld with deliveries %u, expected %u and 1", i, id,
			     m[i].deliveries, 7 + i);
	}
	check_acked("after ipcq_recv_batch");
	for (unsigned i = 0; i < 4; i++) {
		release(E.rx, &m[i]);
		check_acked("after an ipcq_release");
	}
}

static const struct {
	const char *name;
	void (*run)(void);
} cases[] = {
	{ "kill", case_kill },   { "ack", case_ack },     { "loop", case_loop },   { "close", case_close },
	{ "views", case_views }, { "bound", case_bound }, { "twice", case_twice }, { "acked", case_acked },
};

static int usage(void)
{
	fprintf(stderr, "usage: leases kill|ack|loop|close|views|bound|twice|acked QUEUE small|large|batch\n");
	return 2;
}

int main(int argc, char **argv)
{
	unsigned c, v;

	if (argc != 4)
		return usage();
	for (c = 0; c < sizeof(cases) / sizeof(cases[0]) && strcmp(cases[c].name, argv[1]) != 0; c++)
		;
	for (v = 0; v < 3 && strcmp(variant_names[v], argv[3]) != 0; v++)
		;
	if (c == sizeof(cases) / sizeof(cases[0]) || v == 3)
		return usage();
	E.cmd = argv[1];
	E.name = argv[2];
	E.v = (enum variant)v;
	E.len = E.v == V_LARGE ? LARGE_LEN : SMALL_LEN;
	E.run = (uint32_t)getpid();
	env_open();
	cases[c].run();
	env_close();
	printf("ok: leases %s %s %s\n", E.cmd, E.name, variant_names[E.v]);
	return 0;
}
