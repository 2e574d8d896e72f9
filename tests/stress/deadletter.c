/* SPDX-License-Identifier: Apache-2.0 */
/*
 * deadletter.c - what a queue does with messages it must not deliver:
 * nacked, rejected, delivered max_deliveries times, expired; for
 * t_deadletter.sh.
 *
 *   deadletter CASE VARIANT
 *
 * Each case makes its own queues with ipcq_create_ex ("dl.CASE.VARIANT"
 * and its dead-letter queue "dl.CASE.VARIANT.dead"; the daemon's defaults
 * must be at-least-once) and deletes them at the end, failed or not.
 * VARIANT says how its messages travel: "small", 100 bytes each with
 * ipcq_send; "large", 20000 bytes each (a ring chunk each); "batch", 100
 * bytes each with one ipcq_send_batch call (records of one chunk).
 *
 * CASE:
 *   nack     views given back with ipcq_nack come again at once, flagged,
 *            deliveries 2; acknowledged then, nothing is dead-lettered
 *   reject   views rejected (IPCQ_NACK_REJECT) are never delivered again
 *            and arrive in the dead-letter queue intact, with their
 *            priority; nacked and dead_lettered count them
 *   maxdel   max_deliveries 2: each message given back twice is not
 *            delivered a third time, it arrives in the dead-letter queue
 *   copy     the copy API: ipcq_nack(q, NULL, 0) gives back the copy
 *            ipcq_recv returned; max_deliveries 3 sends each to the
 *            dead-letter queue after its third receipt; -ENOENT when the
 *            thread holds no copy
 *   kill     max_deliveries 1: a worker killed holding a view; the
 *            message is not delivered again, it is dead-lettered
 *   ttl      a queue ttl of 400 ms: what is received in time arrives,
 *            what waited longer never does and is dead-lettered, counted
 *            in expired; a handle's ttl (ipcq_set_ttl, 150 ms) shorter
 *            than the queue's expires its messages sooner
 *   drop     no dead-letter queue: rejected and expired messages are
 *            dropped and counted in dropped
 *   bad      ipcq_create_ex refuses a dead-letter queue that does not
 *            exist (-ENOENT) or names the queue itself (-EINVAL)
 *
 * Every case ends with both queues empty: depth 0 and no ring bytes in
 * use.  Exit 0 on success, 1 on a failed check, 2 on a usage error.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipcq.h"
#include "pattern.h"
#include "timing.h"

#define NMSGS 5u
#define SMALL_LEN 100u
#define LARGE_LEN 20000u
#define PRIO 3u
#define WAIT_MS 5000  /* for what must come (the daemon sweeps once a second) */
#define QUIET_MS 300  /* for what must not */

enum variant { V_SMALL, V_LARGE, V_BATCH };
static const char *const variant_names[] = { "small", "large", "batch" };

static struct {
	const char *cmd;
	enum variant v;
	size_t len;
	uint32_t run;
	char name[IPCQ_NAME_MAX + 1], dead[IPCQ_NAME_MAX + 1];
	ipcq_client *c;
	ipcq_queue *tx, *rx, *drx; /* the queue's sender and receiver, the dead-letter queue's receiver */
	pid_t worker;
} E;

static void cleanup(void)
{
	if (E.worker > 0) {
		kill(E.worker, SIGKILL);
		waitpid(E.worker, NULL, 0);
		E.worker = 0;
	}
	if (E.c) {
		ipcq_delete(E.c, E.name);
		ipcq_delete(E.c, E.dead);
	}
}

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "deadletter %s %s: ", E.cmd, variant_names[E.v]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cleanup();
	exit(1);
}

/* ---- messages: [run][id][pattern of (run, id)] ---- */

static void build(unsigned char *p, uint32_t id)
{
	memcpy(p, &E.run, 4);
	memcpy(p + 4, &id, 4);
	pattern_fill(p + 8, E.len - 8, (uint64_t)E.run << 32 | id);
}

/* The id of a message this run sent, checked byte for byte. */
static uint32_t check_msg(const void *data, size_t len, const char *where)
{
	unsigned char want[LARGE_LEN];
	uint32_t run, id;

	if (len != E.len)
		fail("%s: a message of %zu bytes, sent %zu", where, len, E.len);
	memcpy(&run, data, 4);
	memcpy(&id, (const unsigned char *)data + 4, 4);
	if (run != E.run || id >= NMSGS)
		fail("%s: a message no sender of this run sent (run %u, id %u)", where, run, id);
	build(want, id);
	if (memcmp(want, data, len) != 0)
		fail("%s: message %u damaged", where, id);
	return id;
}

static void send_all(ipcq_queue *q)
{
	static unsigned char bufs[NMSGS][LARGE_LEN];
	struct iovec iov[NMSGS];
	int r;

	for (uint32_t i = 0; i < NMSGS; i++) {
		build(bufs[i], i);
		iov[i] = (struct iovec){ .iov_base = bufs[i], .iov_len = E.len };
	}
	if (E.v == V_BATCH) {
		r = ipcq_send_batch(q, iov, NMSGS, PRIO, WAIT_MS);
		if (r != (int)NMSGS)
			fail("ipcq_send_batch: %d (%s)", r, r < 0 ? ipcq_strerror(r) : "short");
		return;
	}
	for (uint32_t i = 0; i < NMSGS; i++) {
		r = ipcq_send(q, bufs[i], E.len, PRIO, WAIT_MS);
		if (r < 0)
			fail("ipcq_send: %s", ipcq_strerror(r));
	}
}

static ipcq_stats stats_of(const char *name)
{
	ipcq_stats st;
	int r = ipcq_stat(E.c, name, &st);

	if (r < 0)
		fail("ipcq_stat %s: %s", name, ipcq_strerror(r));
	return st;
}

/* A view that must come within timeout_ms. */
static void view(ipcq_queue *q, ipcq_msg *m, int timeout_ms, const char *what)
{
	int r = ipcq_recv_view(q, m, timeout_ms);

	if (r < 0)
		fail("%s: ipcq_recv_view: %s", what, ipcq_strerror(r));
	if (m->prio != PRIO)
		fail("%s: priority %u, sent with %u", what, m->prio, PRIO);
}

static void nothing_more(ipcq_queue *q, const char *what)
{
	ipcq_msg m;
	int r = ipcq_recv_view(q, &m, QUIET_MS);

	if (r == 0)
		fail("%s: message %u delivered (deliveries %u)", what, check_msg(m.data, m.len, what), m.deliveries);
	if (r != -ETIMEDOUT)
		fail("%s: ipcq_recv_view: %s", what, ipcq_strerror(r));
}

/* Every message once, intact, from the dead-letter queue; then nothing. */
static void dead_lettered_all(const char *what)
{
	bool seen[NMSGS] = { false };

	for (unsigned i = 0; i < NMSGS; i++) {
		ipcq_msg m;
		uint32_t id;

		view(E.drx, &m, WAIT_MS, what);
		id = check_msg(m.data, m.len, what);
		if (seen[id])
			fail("%s: message %u dead-lettered twice", what, id);
		seen[id] = true;
		if (m.deliveries != 1)
			fail("%s: dead-lettered message %u with deliveries %u, not 1", what, id, m.deliveries);
		ipcq_release(E.drx, &m);
	}
	nothing_more(E.drx, what);
}

static void expect_counter(const char *name, const char *key, uint64_t got, uint64_t want)
{
	if (got != want)
		fail("queue %s: %s is %" PRIu64 ", expected %" PRIu64, name, key, got, want);
}

/* Both queues empty, their rings too (the sweep may be a moment). */
static void both_empty(void)
{
	const char *names[] = { E.name, E.dead };

	for (unsigned i = 0; i < 2; i++) {
		uint64_t end = now_ms() + WAIT_MS;
		ipcq_stats st;

		while (st = stats_of(names[i]), (st.depth || st.ring_used) && now_ms() < end)
			sleep_ms(20);
		expect_counter(names[i], "depth", st.depth, 0);
		expect_counter(names[i], "ring_used", st.ring_used, 0);
	}
}

/* ---- setting up ---- */

static void make_queues(uint64_t ttl_ms, uint32_t max_deliveries, bool with_dead)
{
	ipcq_queue_opts o = { .ttl_ms = ttl_ms, .max_deliveries = max_deliveries };
	int r;

	r = ipcq_create(E.c, E.dead, NULL);
	if (r < 0)
		fail("create %s: %s (%s)", E.dead, ipcq_strerror(r), ipcq_last_error(E.c));
	if (with_dead)
		snprintf(o.dead_letter, sizeof(o.dead_letter), "%s", E.dead);
	r = ipcq_create_ex(E.c, E.name, NULL, &o);
	if (r < 0)
		fail("create %s: %s (%s)", E.name, ipcq_strerror(r), ipcq_last_error(E.c));
	r = ipcq_open(E.c, E.name, IPCQ_SEND, &E.tx);
	if (r == 0)
		r = ipcq_open(E.c, E.name, IPCQ_RECV, &E.rx);
	if (r == 0)
		r = ipcq_open(E.c, E.dead, IPCQ_RECV, &E.drx);
	if (r < 0)
		fail("open: %s (%s)", ipcq_strerror(r), ipcq_last_error(E.c));
}

static void check_policy(uint64_t ttl_ms, uint32_t max_deliveries, bool with_dead)
{
	ipcq_stats st = stats_of(E.name);

	if (st.delivery != 1)
		fail("the daemon's defaults must be at-least-once");
	expect_counter(E.name, "ttl_ms", st.ttl_ms, ttl_ms);
	expect_counter(E.name, "max_deliveries", st.max_deliveries, max_deliveries);
	if (strcmp(st.dead_letter, with_dead ? E.dead : "") != 0)
		fail("queue %s: dead_letter is '%s'", E.name, st.dead_letter);
}

/* ---- the cases ---- */

static void case_nack(void)
{
	unsigned seen[NMSGS] = { 0 };
	ipcq_stats st;

	make_queues(0, 0, true);
	send_all(E.tx);
	/* what is given back comes first (a batch's records once the rest of
	 * the batch is done): the order is the queue's to choose */
	for (unsigned i = 0; i < 2 * NMSGS; i++) {
		ipcq_msg m;
		uint32_t id;
		int r;

		view(E.rx, &m, WAIT_MS, "delivery");
		id = check_msg(m.data, m.len, "delivery");
		if (++seen[id] > 2)
			fail("message %u delivered a third time", id);
		if (m.deliveries != seen[id] || !(m.flags & IPCQ_MSG_REDELIVERED) != (seen[id] == 1))
			fail("message %u at its delivery %u: deliveries %u, flags %#x", id, seen[id], m.deliveries,
			     m.flags);
		if (seen[id] == 2) {
			ipcq_release(E.rx, &m);
			continue;
		}
		r = ipcq_nack(E.rx, &m, 0);
		if (r < 0)
			fail("ipcq_nack: %s", ipcq_strerror(r));
		if (m.data)
			fail("ipcq_nack left the view set");
	}
	nothing_more(E.rx, "after acks");
	nothing_more(E.drx, "dead-letter queue");
	st = stats_of(E.name);
	expect_counter(E.name, "nacked", st.nacked, NMSGS);
	expect_counter(E.name, "acked", st.acked, NMSGS);
	expect_counter(E.name, "dead_lettered", st.dead_lettered, 0);
	both_empty();
}

static void case_reject(void)
{
	ipcq_stats st;

	make_queues(0, 0, true);
	check_policy(0, 0, true);
	send_all(E.tx);
	for (unsigned i = 0; i < NMSGS; i++) {
		ipcq_msg m;
		int r;

		view(E.rx, &m, WAIT_MS, "before reject");
		check_msg(m.data, m.len, "before reject");
		r = ipcq_nack(E.rx, &m, IPCQ_NACK_REJECT);
		if (r < 0)
			fail("ipcq_nack reject: %s", ipcq_strerror(r));
	}
	dead_lettered_all("rejected");
	nothing_more(E.rx, "after rejects");
	st = stats_of(E.name);
	expect_counter(E.name, "nacked", st.nacked, NMSGS);
	expect_counter(E.name, "dead_lettered", st.dead_lettered, NMSGS);
	expect_counter(E.name, "redelivered", st.redelivered, 0);
	expect_counter(E.name, "dropped", st.dropped, 0);
	expect_counter(E.dead, "sent", stats_of(E.dead).sent, NMSGS);
	both_empty();
}

static void case_maxdel(void)
{
	unsigned seen[NMSGS] = { 0 };

	make_queues(0, 2, true);
	check_policy(0, 2, true);
	send_all(E.tx);
	for (unsigned i = 0; i < 2 * NMSGS; i++) {
		ipcq_msg m;
		uint32_t id;

		view(E.rx, &m, WAIT_MS, "delivery");
		id = check_msg(m.data, m.len, "delivery");
		if (++seen[id] > 2)
			fail("message %u delivered a third time (max_deliveries 2)", id);
		if (m.deliveries != seen[id])
			fail("message %u: deliveries %u at its delivery %u", id, m.deliveries, seen[id]);
		if (ipcq_nack(E.rx, &m, 0) < 0)
			fail("ipcq_nack failed");
	}
	nothing_more(E.rx, "after two deliveries each");
	dead_lettered_all("delivered max_deliveries times");
	expect_counter(E.name, "dead_lettered", stats_of(E.name).dead_lettered, NMSGS);
	both_empty();
}

static void case_copy(void)
{
	unsigned seen[NMSGS] = { 0 };
	unsigned char buf[LARGE_LEN];
	int r;

	make_queues(0, 3, true);
	r = ipcq_nack(E.rx, NULL, 0);
	if (r != -ENOENT)
		fail("ipcq_nack(NULL) holding no copy: %d, expected -ENOENT", r);
	send_all(E.tx);
	for (unsigned i = 0; i < 3 * NMSGS; i++) {
		ssize_t n = ipcq_recv(E.rx, buf, sizeof(buf), NULL, WAIT_MS);
		uint32_t id;

		if (n < 0)
			fail("ipcq_recv: %s", ipcq_strerror((int)n));
		id = check_msg(buf, (size_t)n, "copy");
		if (++seen[id] > 3)
			fail("message %u received a fourth time (max_deliveries 3)", id);
		r = ipcq_nack(E.rx, NULL, 0);
		if (r < 0)
			fail("ipcq_nack(NULL): %s", ipcq_strerror(r));
	}
	r = (int)ipcq_recv(E.rx, buf, sizeof(buf), NULL, QUIET_MS);
	if (r != -ETIMEDOUT)
		fail("after three receipts each: ipcq_recv gave %d", r);
	dead_lettered_all("copies given back three times");
	both_empty();
}

static void case_kill(void)
{
	ipcq_msg m;
	int st;

	make_queues(0, 1, true);
	send_all(E.tx);
	E.worker = fork();
	if (E.worker < 0)
		fail("fork: %s", strerror(errno));
	if (E.worker == 0) {
		/* a receiver of its own that takes every message and dies */
		ipcq_client *c;
		ipcq_queue *q;
		unsigned got = 0;

		if (ipcq_connect(&c, NULL) < 0 || ipcq_open(c, E.name, IPCQ_RECV, &q) < 0)
			_exit(3);
		while (got < NMSGS && ipcq_recv_view(q, &m, WAIT_MS) == 0)
			got++;
		kill(getpid(), got == NMSGS ? SIGKILL : SIGTERM);
		_exit(4);
	}
	waitpid(E.worker, &st, 0);
	E.worker = 0;
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		fail("the worker did not take every message before its death (status %#x)", st);
	dead_lettered_all("held by a killed worker, max_deliveries 1");
	nothing_more(E.rx, "after the worker's death");
	both_empty();
}

static void case_ttl(void)
{
	ipcq_msg m;
	ipcq_stats st;
	int r;

	make_queues(400, 0, true);
	check_policy(400, 0, true);
	send_all(E.tx);
	view(E.rx, &m, WAIT_MS, "within the ttl");
	check_msg(m.data, m.len, "within the ttl");
	ipcq_release(E.rx, &m);
	sleep_ms(600);
	/* batch: the records left share the batch's expiry; the others were
	 * sent one by one, each with its own */
	nothing_more(E.rx, "after the ttl");
	for (unsigned i = 1; i < NMSGS; i++) {
		view(E.drx, &m, WAIT_MS, "expired");
		check_msg(m.data, m.len, "expired");
		ipcq_release(E.drx, &m);
	}
	nothing_more(E.drx, "expired, all there");
	st = stats_of(E.name);
	expect_counter(E.name, "expired", st.expired, NMSGS - 1);
	expect_counter(E.name, "dead_lettered", st.dead_lettered, NMSGS - 1);

	/* a handle's shorter ttl */
	r = ipcq_set_ttl(E.tx, 150);
	if (r < 0)
		fail("ipcq_set_ttl: %s", ipcq_strerror(r));
	send_all(E.tx);
	sleep_ms(250);
	nothing_more(E.rx, "after the handle's ttl");
	dead_lettered_all("expired by the handle's ttl");
	expect_counter(E.name, "expired", stats_of(E.name).expired, 2 * NMSGS - 1);
	both_empty();
}

static void case_drop(void)
{
	ipcq_msg m;
	ipcq_stats st;

	make_queues(200, 0, false);
	check_policy(200, 0, false);
	send_all(E.tx);
	view(E.rx, &m, WAIT_MS, "before reject");
	check_msg(m.data, m.len, "before reject");
	if (ipcq_nack(E.rx, &m, IPCQ_NACK_REJECT) < 0)
		fail("ipcq_nack reject failed");
	sleep_ms(400);
	nothing_more(E.rx, "after the ttl");
	both_empty();
	st = stats_of(E.name);
	expect_counter(E.name, "dropped", st.dropped, NMSGS);
	expect_counter(E.name, "expired", st.expired, NMSGS - 1);
	expect_counter(E.name, "dead_lettered", st.dead_lettered, 0);
	nothing_more(E.drx, "no dead-letter queue set");
}

static void case_bad(void)
{
	ipcq_queue_opts o = { 0 };
	int r;

	snprintf(o.dead_letter, sizeof(o.dead_letter), "%s", E.dead);
	r = ipcq_create_ex(E.c, E.name, NULL, &o);
	if (r != -ENOENT)
		fail("a dead-letter queue that does not exist: %d, expected -ENOENT", r);
	snprintf(o.dead_letter, sizeof(o.dead_letter), "%s", E.name);
	r = ipcq_create_ex(E.c, E.name, NULL, &o);
	if (r != -EINVAL)
		fail("a queue its own dead-letter queue: %d, expected -EINVAL", r);
	r = ipcq_stat(E.c, E.name, &(ipcq_stats){ 0 });
	if (r != -ENOENT)
		fail("a refused queue exists: %d", r);
}

static const struct {
	const char *name;
	void (*run)(void);
} cases[] = {
	{ "nack", case_nack }, { "reject", case_reject }, { "maxdel", case_maxdel }, { "copy", case_copy },
	{ "kill", case_kill }, { "ttl", case_ttl },       { "drop", case_drop },     { "bad", case_bad },
};

int main(int argc, char **argv)
{
	int r;

	if (argc != 3)
		goto usage;
	E.cmd = argv[1];
	for (E.v = V_SMALL; E.v <= V_BATCH && strcmp(argv[2], variant_names[E.v]) != 0; E.v++)
		;
	if (E.v > V_BATCH)
		goto usage;
	E.len = E.v == V_LARGE ? LARGE_LEN : SMALL_LEN;
	E.run = (uint32_t)getpid();
	snprintf(E.name, sizeof(E.name), "dl.%s.%s", argv[1], argv[2]);
	snprintf(E.dead, sizeof(E.dead), "dl.%s.%s.dead", argv[1], argv[2]);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (strcmp(cases[i].name, E.cmd) != 0)
			continue;
		r = ipcq_connect(&E.c, NULL);
		if (r < 0)
			fail("connect: %s", ipcq_strerror(r));
		cases[i].run();
		if (E.tx)
			ipcq_close(E.tx);
		if (E.rx)
			ipcq_close(E.rx);
		if (E.drx)
			ipcq_close(E.drx);
		cleanup();
		ipcq_disconnect(E.c);
		return 0;
	}
usage:
	fprintf(stderr, "usage: deadletter nack|reject|maxdel|copy|kill|ttl|drop|bad small|large|batch\n");
	return 2;
}
