/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_backlog.c - the backlog (common/backlog.c) alone, in one
 * process: a ring formatted in two anonymous shared mappings (its control
 * and data objects), driven by the sender's and the receiver's backlog
 * operations directly, with a fake window standing in for the mq: an
 * array of descriptors with a capacity the test sets, whose send says
 * -EAGAIN when it is full, drained the way the mq hands messages out
 * (highest priority first, FIFO within one).
 *
 * Every message carries its id, its length and a pattern derived from
 * both, so what comes out is checked to be exactly what went in, once.
 * A dead client is a holder id (DEAD_HOLDER) that the fake daemon's
 * is_dead declares dead; where it matters, a forked child with that id
 * really dies in the middle of an operation.  A receive-only client is a
 * second view of the ring whose data object is mapped read-only (from a
 * memfd): a write it made there would kill the test with SIGSEGV.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backlog.h"
#include "proto.h"
#include "ring.h"
#include "ring_impl.h"
#include "util.h"
#include "ring_fixture.h"

#define BIT(i) ((uint64_t)1 << (i))

/* The bits of a batch of n records. */
static uint64_t all_records(unsigned n)
{
	return n >= 64 ? ~(uint64_t)0 : BIT(n) - 1;
}

/* ---- fixtures (ring_fixture.h) ---- */

static struct ring_chunk *chunk_at(const struct ring *r, uint64_t pos)
{
	return (struct ring_chunk *)(r->data + pos % r->data_size);
}

/* The state word of the chunk at pos, in the control object's table. */
static _Atomic uint64_t *word_at(const struct ring *r, uint64_t pos)
{
	return &ring_cs(r, chunk_at(r, pos))->word;
}

static uint64_t chunks_of(const struct ring *r)
{
	return atomic_load(&r->hdr->chunks);
}

static uint64_t backlog_of(const struct ring *r)
{
	return atomic_load(&r->hdr->backlog);
}

static uint64_t elapsed_ms_since(uint64_t start_ns)
{
	return (now_ns(CLOCK_MONOTONIC) - start_ns) / 1000000u;
}

static uint32_t xorshift32(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* ---- messages ---- */

#define MSG_MIN 8u   /* id and length */
#define MSG_MAX 4096u

static void make_msg(unsigned char *buf, uint32_t id, uint32_t len)
{
	assert_true(len >= MSG_MIN && len <= MSG_MAX);
	memcpy(buf, &id, 4);
	memcpy(buf + 4, &len, 4);
	for (uint32_t i = MSG_MIN; i < len; i++)
		buf[i] = (unsigned char)(id * 131u + i * 7u + len);
}

/* The id of a message, or -1 if its bytes are not one make_msg made. */
static int64_t msg_id(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t id, want;

	if (len < MSG_MIN || len > MSG_MAX)
		return -1;
	memcpy(&id, p, 4);
	memcpy(&want, p + 4, 4);
	if (want != len)
		return -1;
	for (uint32_t i = MSG_MIN; i < len; i++)
		if (p[i] != (unsigned char)(id * 131u + i * 7u + len))
			return -1;
	return id;
}

static int append_msg(struct test_ring *t, const struct backlog_window *w, uint32_t id, uint32_t len, unsigned prio,
                      unsigned batch_max, int timeout_ms)
{
	unsigned char buf[MSG_MAX];

	make_msg(buf, id, len);
	return backlog_append(&t->r, buf, len, prio, 0, batch_max, w, timeout_ms);
}

static void append_ok(struct test_ring *t, const struct backlog_window *w, uint32_t id, uint32_t len, unsigned prio,
                      unsigned batch_max)
{
	assert_int_equal(append_msg(t, w, id, len, prio, batch_max, 0), 0);
}

/* A raw chunk of one message, reserved, written and submitted as a
 * sender's large message is. */
static int submit_raw(struct test_ring *t, const struct backlog_window *w, uint32_t id, uint32_t len, unsigned prio)
{
	struct ring_ref ref;

	assert_int_equal(ring_reserve(&t->r, len, 0, &ref), 0);
	make_msg(ref.payload, id, len);
	return backlog_submit(&t->r, &ref, prio, 1, w, 0, 0);
}

/* A receiver's take from the backlog, having just found the window
 * empty (so no sender has moved anything into it since). */
static int take(struct test_ring *t, struct ring_ref *out, int timeout_ms)
{
	return backlog_take(&t->r, out, timeout_ms, 0, backlog_window_seq(&t->r), NULL);
}

/* ---- the fake window ---- */

#define WINDOW_MAX 256

struct fake_window {
	unsigned cap;     /* descriptors it holds; send is -EAGAIN beyond */
	_Atomic unsigned n; /* the daemon's sweep may ask it from another thread */
	unsigned sends;   /* descriptors accepted, in all */
	unsigned refused; /* sends refused because it was full */
	/* no receiver asleep (backlog_sleepers): senders leave messages in the
	 * backlog; else (the default) one is asleep and they use the window */
	bool all_awake;
	struct {
		struct proto_ring_desc d;
		unsigned prio;
	} msgs[WINDOW_MAX];
	/* every descriptor accepted, in order, for the move-order tests */
	struct proto_ring_desc log[WINDOW_MAX];
	unsigned log_prio[WINDOW_MAX];
};

static int fake_send(void *ctx, const void *msg, size_t len, unsigned prio)
{
	struct fake_window *w = ctx;

	assert_int_equal(len, sizeof(struct proto_ring_desc));
	if (w->n >= w->cap) {
		w->refused++;
		return -EAGAIN;
	}
	assert_true(w->n < WINDOW_MAX);
	memcpy(&w->msgs[w->n].d, msg, len);
	assert_int_equal(proto_msg_check(&w->msgs[w->n].d, len), PROTO_MSG_RING);
	w->msgs[w->n].prio = prio;
	if (w->sends < WINDOW_MAX) {
		w->log[w->sends] = w->msgs[w->n].d;
		w->log_prio[w->sends] = prio;
	}
	w->n++;
	w->sends++;
	return 0;
}

static long fake_waiting(void *ctx)
{
	return ((struct fake_window *)ctx)->n;
}

static struct backlog_window window_of(struct fake_window *w)
{
	static const _Atomic uint32_t asleep = 1, awake = 0;

	return (struct backlog_window){
		.send = fake_send, .waiting = fake_waiting, .ctx = w, .listened = w->all_awake ? &awake : &asleep
	};
}

/* The receiver's side: the next descriptor as an mq hands it out. */
static bool window_pop(struct fake_window *w, struct proto_ring_desc *d, unsigned *prio)
{
	unsigned best = 0;

	if (w->n == 0)
		return false;
	for (unsigned i = 1; i < w->n; i++)
		if (w->msgs[i].prio > w->msgs[best].prio)
			best = i;
	*d = w->msgs[best].d;
	if (prio)
		*prio = w->msgs[best].prio;
	memmove(&w->msgs[best], &w->msgs[best + 1], (w->n - best - 1) * sizeof(w->msgs[0]));
	w->n--;
	return true;
}

/* The window has room again: set its capacity, and tell the senders as
 * a receiver does before it looks at the backlog. */
static void window_open(struct test_ring *t, struct fake_window *w, unsigned cap)
{
	w->cap = cap;
	backlog_window_drained(&t->r);
}

/* ---- the receiver's side of a chunk ---- */

#define IDS_MAX 4096

struct seen {
	unsigned n;            /* messages taken, in order */
	uint32_t ids[IDS_MAX]; /* their ids */
	unsigned prio[IDS_MAX];
};

/* Every message of a chunk taken through r that is not done with:
 * checked, noted in s, and released (the chunk when its last record is
 * done). */
static void consume_ref_in(struct ring *r, const struct ring_ref *ref, struct seen *s)
{
	if (ref->kind == RING_KIND_RAW) {
		int64_t id = msg_id(ref->payload, ref->len);

		assert_true(id >= 0);
		assert_true(s->n < IDS_MAX);
		s->prio[s->n] = ref->prio;
		s->ids[s->n++] = (uint32_t)id;
		ring_release(r, ref);
		return;
	}
	{
		struct ring_recview rec[RING_BATCH_MAX];
		unsigned left = 0;

		assert_int_equal(ref->kind, RING_KIND_BATCH);
		assert_int_equal(ring_batch_records(r, ref, rec), 0);
		for (unsigned i = 0; i < ref->count; i++)
			left += !(ref->done & BIT(i));
		assert_true(left > 0);
		for (unsigned i = 0; i < ref->count; i++) {
			int64_t id;

			if (ref->done & BIT(i))
				continue;
			id = msg_id(rec[i].data, rec[i].len);
			assert_true(id >= 0);
			assert_true(s->n < IDS_MAX);
			s->prio[s->n] = ref->prio;
			s->ids[s->n++] = (uint32_t)id;
			ring_batch_handed(r, ref->offset, ref->gen, i);
			/* true for the last one only */
			assert_int_equal(ring_batch_done(r, ref->offset, ref->gen, i), --left == 0);
		}
		ring_release(r, ref);
	}
}

static void consume_ref(struct test_ring *t, const struct ring_ref *ref, struct seen *s)
{
	consume_ref_in(&t->r, ref, s);
}

/* Take from the backlog until it is empty. */
static void drain_backlog(struct test_ring *t, struct seen *s)
{
	struct ring_ref ref;
	int ret;

	while ((ret = take(t, &ref, 0)) == 0)
		consume_ref(t, &ref, s);
	assert_int_equal(ret, -EAGAIN);
}

/* Take what the window holds, as the mq hands it out. */
static void drain_window(struct test_ring *t, struct fake_window *w, struct seen *s)
{
	struct proto_ring_desc d;
	struct ring_ref ref;
	unsigned prio;

	while (window_pop(w, &d, &prio)) {
		assert_int_equal(ring_take(&t->r, &d, &ref), 0);
		assert_int_equal(ref.prio, prio);
		consume_ref(t, &ref, s);
	}
}

static void assert_ids(const struct seen *s, const uint32_t *want, unsigned n)
{
	assert_int_equal(s->n, n);
	for (unsigned i = 0; i < n; i++) {
		if (s->ids[i] != want[i])
			print_error("message %u: id %u, expected %u\n", i, s->ids[i], want[i]);
		assert_int_equal(s->ids[i], want[i]);
	}
}

/* Each of ids 0..n-1 exactly once, in any order. */
static void assert_each_once(const struct seen *s, unsigned n)
{
	unsigned char *count = calloc(n ? n : 1, 1);

	assert_non_null(count);
	assert_int_equal(s->n, n);
	for (unsigned i = 0; i < s->n; i++) {
		assert_true(s->ids[i] < n);
		assert_int_equal(count[s->ids[i]]++, 0);
	}
	free(count);
}

/* The records of the next chunk taken from the backlog: count of them,
 * with these ids. */
static void take_chunk_expect(struct test_ring *t, unsigned prio, const uint32_t *ids, unsigned count)
{
	struct ring_ref ref;
	struct seen s = { 0 };

	assert_int_equal(take(t, &ref, 0), 0);
	assert_int_equal(ref.prio, prio);
	assert_int_equal(ref.kind == RING_KIND_BATCH ? ref.count : 1, count);
	consume_ref(t, &ref, &s);
	assert_ids(&s, ids, count);
}

/* ---- coalescing ---- */

static void test_append_coalesces_into_newest_batch_up_to_batch_max(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	uint32_t ids[19];

	for (uint32_t i = 0; i < 19; i++) {
		append_ok(t, &w, i, 20, 0, 8);
		ids[i] = i;
	}
	assert_int_equal(chunks_of(&t->r), 3); /* 8 + 8 + 3 */
	assert_int_equal(backlog_of(&t->r), 19);
	assert_int_equal(ring_depth(&t->r), 19);
	assert_int_equal(fw.n, 0);
	take_chunk_expect(t, 0, ids, 8);
	take_chunk_expect(t, 0, ids + 8, 8);
	take_chunk_expect(t, 0, ids + 16, 3);
	assert_int_equal(backlog_of(&t->r), 0);
	assert_int_equal(ring_bytes_used(&t->r), 0);
	assert_int_equal(chunks_of(&t->r), 0);
}

/* A batch_max above what a chunk's bit masks can count stops at
 * RING_BATCH_MAX records. */
static void test_batch_never_exceeds_ring_batch_max(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 16 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	uint32_t ids[2 * RING_BATCH_MAX + 2];

	for (uint32_t i = 0; i < ARRAY_SIZE(ids); i++) {
		append_ok(t, &w, i, 8, 3, 1000);
		ids[i] = i;
	}
	assert_int_equal(chunks_of(&t->r), 3);
	take_chunk_expect(t, 3, ids, RING_BATCH_MAX);
	take_chunk_expect(t, 3, ids + RING_BATCH_MAX, RING_BATCH_MAX);
	take_chunk_expect(t, 3, ids + 2 * RING_BATCH_MAX, 2);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* A batch grows no larger than max_payload: records of 100 bytes take
 * 112 in a batch, so 9 fit 1024 bytes and the 10th starts a chunk. */
static void test_batch_never_exceeds_max_payload(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 1024, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	uint32_t ids[20];

	for (uint32_t i = 0; i < 20; i++) {
		append_ok(t, &w, i, 100, 0, 64);
		ids[i] = i;
	}
	assert_int_equal(chunks_of(&t->r), 3);
	take_chunk_expect(t, 0, ids, 9);
	take_chunk_expect(t, 0, ids + 9, 9);
	take_chunk_expect(t, 0, ids + 18, 2);
	/* and a record that can never fit a batch is refused at once */
	assert_int_equal(append_msg(t, &w, 99, 1024, 0, 64, 0), -EMSGSIZE);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

static void test_other_priority_starts_new_chunk(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);

	append_ok(t, &w, 0, 30, 1, 16);
	append_ok(t, &w, 1, 30, 2, 16);
	append_ok(t, &w, 2, 30, 2, 16); /* joins 1: the newest, same priority */
	append_ok(t, &w, 3, 30, 1, 16); /* the newest is 2's: a new chunk */
	assert_int_equal(chunks_of(&t->r), 3);
	assert_int_equal(backlog_of(&t->r), 4);
	take_chunk_expect(t, 2, (const uint32_t[]){ 1, 2 }, 2);
	take_chunk_expect(t, 1, (const uint32_t[]){ 0 }, 1);
	take_chunk_expect(t, 1, (const uint32_t[]){ 3 }, 1);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

static void test_raw_chunk_in_between_closes_batch(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	struct ring_ref ref;
	struct seen s = { 0 };

	append_ok(t, &w, 0, 40, 0, 16);
	append_ok(t, &w, 1, 40, 0, 16);
	assert_int_equal(submit_raw(t, &w, 2, 3000, 0), 0);
	append_ok(t, &w, 3, 40, 0, 16);
	assert_int_equal(chunks_of(&t->r), 3);
	assert_int_equal(backlog_of(&t->r), 4);
	assert_int_equal(fw.n, 0);

	take_chunk_expect(t, 0, (const uint32_t[]){ 0, 1 }, 2);
	assert_int_equal(take(t, &ref, 0), 0);
	assert_int_equal(ref.kind, RING_KIND_RAW);
	assert_int_equal(ref.len, 3000);
	consume_ref(t, &ref, &s);
	assert_ids(&s, (const uint32_t[]){ 2 }, 1);
	take_chunk_expect(t, 0, (const uint32_t[]){ 3 }, 1);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* ---- moves into the window ---- */

/* A(1) B(5) C(1) D(3) E(5) F(0) wait in the backlog, each its own chunk;
 * once the window has room, the next send moves them highest level
 * first, oldest first within a level: B E D A C F (G joins F). */
static void test_move_order_is_highest_level_first_fifo_within(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	static const unsigned prio[] = { 1, 5, 1, 3, 5, 0 };
	static const uint32_t want[] = { 1, 4, 3, 0, 2, 5, 6 };
	static const unsigned want_prio[] = { 5, 5, 3, 1, 1, 0, 0 };
	struct seen s = { 0 };

	for (uint32_t i = 0; i < ARRAY_SIZE(prio); i++)
		append_ok(t, &w, i, 24 + i, prio[i], 16);
	assert_int_equal(chunks_of(&t->r), 6);
	assert_int_equal(fw.sends, 0);
	assert_true(fw.refused > 0);

	window_open(t, &fw, 16);
	append_ok(t, &w, 6, 24, 0, 16);
	assert_int_equal(chunks_of(&t->r), 6); /* G joined F before the move */
	assert_int_equal(fw.sends, 6);
	assert_int_equal(backlog_of(&t->r), 0);
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(fw.log_prio[i], want_prio[i]);

	drain_window(t, &fw, &s);
	assert_ids(&s, want, ARRAY_SIZE(want));
	for (unsigned i = 0; i < s.n; i++)
		assert_int_equal(s.prio[i], want_prio[i]);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* A move stops when the window is full and goes on from the same chunk
 * later: nothing is skipped or sent twice, and a raw submit made while
 * the backlog is busy waits behind it. */
static void test_move_stops_at_full_window_and_resumes_in_order(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	static const uint32_t order[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 };
	struct seen s = { 0 };

	for (uint32_t i = 0; i < 10; i++)
		append_ok(t, &w, i, 16, 0, 1); /* batch_max 1: a chunk each */
	assert_int_equal(backlog_of(&t->r), 10);
	for (uint32_t round = 0; round < 4; round++) {
		/* room for 3, emptied by the receiver: the next send moves 3 */
		drain_window(t, &fw, &s);
		window_open(t, &fw, 3);
		assert_int_equal(submit_raw(t, &w, 10 + round, 100, 0), 0);
		assert_int_equal(fw.n, 3);
	}
	window_open(t, &fw, 16);
	drain_window(t, &fw, &s);
	drain_backlog(t, &s);
	/* one priority: the order is the send order */
	assert_ids(&s, order, ARRAY_SIZE(order));
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* Once a move found the window full, sends into the backlog do not try
 * the window again (a system call each) until a receiver says it has
 * room; then the next send moves what waits. */
static void test_full_window_is_not_tried_again_until_drained(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	struct seen s = { 0 };

	for (uint32_t i = 0; i < 5; i++)
		append_ok(t, &w, i, 16, 0, 1);
	assert_int_equal(fw.refused, 1);
	fw.cap = 16; /* room, but no receiver said so */
	append_ok(t, &w, 5, 16, 0, 1);
	assert_int_equal(fw.sends, 0);
	window_open(t, &fw, 16);
	append_ok(t, &w, 6, 16, 0, 1);
	assert_int_equal(fw.sends, 7);
	assert_int_equal(fw.refused, 1);
	drain_window(t, &fw, &s);
	assert_ids(&s, (const uint32_t[]){ 0, 1, 2, 3, 4, 5, 6 }, 7);
}

/* A submit goes straight to the window while the backlog is empty, and
 * behind the backlog (never overtaking it) while it is not. */
static void test_submit_bypasses_only_an_empty_backlog(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 1 };
	struct backlog_window w = window_of(&fw);
	struct seen s = { 0 };

	assert_int_equal(submit_raw(t, &w, 0, 2000, 4), 0);
	assert_int_equal(fw.n, 1);
	assert_int_equal(backlog_of(&t->r), 0);
	assert_int_equal(RING_WORD_STATE(atomic_load(word_at(&t->r, 0))), RING_PUBLISHED);

	assert_int_equal(submit_raw(t, &w, 1, 2000, 4), 0); /* window full: backlog */
	assert_int_equal(fw.n, 1);
	assert_int_equal(backlog_of(&t->r), 1);

	drain_window(t, &fw, &s);
	window_open(t, &fw, 4);
	assert_int_equal(submit_raw(t, &w, 2, 2000, 4), 0); /* behind 1 */
	assert_int_equal(fw.n, 2);
	assert_int_equal(backlog_of(&t->r), 0);
	drain_window(t, &fw, &s);
	assert_ids(&s, (const uint32_t[]){ 0, 1, 2 }, 3);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* No receiver asleep: senders leave every message in the backlog, the
 * window empty and untouched, coalesced (no system call, no wake-up); a
 * receiver that is awake takes them from there in order.  Once one is
 * asleep (the ring's sleepers count), the next send moves what waits into
 * the window, oldest first, and sends straight there while the backlog is
 * empty. */
static void test_senders_leave_messages_in_the_backlog_while_no_receiver_sleeps(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 4, .all_awake = true };
	struct backlog_window w = window_of(&fw);
	struct seen s = { 0 };
	struct ring_ref ref;

	assert_false(backlog_sleepers(&t->r, &w));
	assert_int_equal(submit_raw(t, &w, 0, 2000, 4), 0);
	for (uint32_t id = 1; id < 6; id++)
		append_ok(t, &w, id, 100, 4, 16);
	assert_int_equal(fw.sends, 0);
	assert_int_equal(backlog_of(&t->r), 6);
	assert_int_equal(chunks_of(&t->r), 2); /* the raw one, then one batch of five */
	/* an awake receiver takes them from the backlog, in order */
	assert_int_equal(take(t, &ref, 0), 0);
	consume_ref(t, &ref, &s);
	assert_int_equal(backlog_of(&t->r), 5);
	/* one falls asleep: the next send moves the rest first */
	backlog_sleeping(&t->r, 1);
	assert_true(backlog_sleepers(&t->r, &w));
	append_ok(t, &w, 6, 100, 4, 16);
	assert_int_equal(backlog_of(&t->r), 0);
	assert_int_equal(fw.sends, 1); /* the batch: 1..6 */
	assert_int_equal(submit_raw(t, &w, 7, 2000, 4), 0); /* straight to the window */
	assert_int_equal(fw.sends, 2);
	backlog_sleeping(&t->r, -1);
	drain_window(t, &fw, &s);
	assert_ids(&s, (const uint32_t[]){ 0, 1, 2, 3, 4, 5, 6, 7 }, 8);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

/* Empty an eventfd (read its count to 0). */
static void hush(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == sizeof(v))
		;
}

/* With a bell, a sender uses the window only to wake a receiver asleep
 * beside an empty window (its count 0): the next messages go to the
 * backlog, ringing the bell as it fills, and the receiver the window woke
 * takes them there.  A receiver that takes from the backlog while more
 * waits and another sleeps rings the bell again (the next one is woken:
 * receivers sleep with EPOLLEXCLUSIVE); without a sleeper it does not. */
static void test_with_a_bell_senders_wake_one_receiver_through_the_window(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct fake_window fw = { .cap = 4, .all_awake = true }; /* nobody listens for the signal */
	struct backlog_window w = window_of(&fw);
	struct seen s = { 0 };
	struct ring_ref ref;

	t->r.bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(t->r.bell >= 0);
	backlog_sleeping(&t->r, 2);
	assert_true(backlog_wakes_by_window(&t->r, &w));
	assert_int_equal(submit_raw(t, &w, 0, 2000, 4), 0);
	assert_int_equal(fw.sends, 1);
	window_counted(&t->r, 1); /* as window_put counts what it sends */
	assert_false(backlog_wakes_by_window(&t->r, &w));
	/* the window holds one: the rest go to the backlog, which rings */
	assert_false(readable(t->r.bell));
	assert_int_equal(submit_raw(t, &w, 1, 2000, 4), 0);
	append_ok(t, &w, 2, 100, 4, 16);
	append_ok(t, &w, 3, 100, 4, 16);
	assert_int_equal(fw.sends, 1);
	assert_int_equal(backlog_of(&t->r), 3);
	assert_true(readable(t->r.bell));
	/* the receiver the window woke: the window's message, then the
	 * backlog's first chunk; more waits and one still sleeps: it rings */
	backlog_sleeping(&t->r, -1);
	drain_window(t, &fw, &s);
	window_taken(&t->r, 1);
	hush(t->r.bell);
	assert_int_equal(take(t, &ref, 0), 0);
	consume_ref(t, &ref, &s);
	assert_true(readable(t->r.bell));
	/* the last chunk: the backlog is empty, the bell silent */
	assert_int_equal(take(t, &ref, 0), 0);
	consume_ref(t, &ref, &s);
	assert_false(readable(t->r.bell));
	assert_ids(&s, (const uint32_t[]){ 0, 1, 2, 3 }, 4);
	/* no one asleep: a take that leaves more does not ring */
	backlog_sleeping(&t->r, -1);
	assert_int_equal(submit_raw(t, &w, 4, 2000, 4), 0);
	assert_int_equal(submit_raw(t, &w, 5, 2000, 4), 0);
	assert_int_equal(fw.sends, 1);
	hush(t->r.bell);
	assert_int_equal(take(t, &ref, 0), 0);
	consume_ref(t, &ref, &s);
	assert_false(readable(t->r.bell));
	assert_int_equal(take(t, &ref, 0), 0);
	consume_ref(t, &ref, &s);
	assert_ids(&s, (const uint32_t[]){ 0, 1, 2, 3, 4, 5 }, 6);
	assert_int_equal(ring_bytes_used(&t->r), 0);
	close(t->r.bell);
	t->r.bell = -1;
}

/* Lanes (ring.h): rings joined to a queue's own.  What joins a lane's
 * backlog counts in the lane and in the queue's lanes_backlog, and the
 * queue's bell rings until every lane's backlog is empty; the queue-wide
 * figures (depth) are the queue's.  backlog_top tells a receiver which
 * lane's waiting messages come first: the highest priority, then the
 * oldest ticket, whatever lane they are in. */
static void test_lanes_count_in_their_queue_and_order_by_priority_then_ticket(void **state)
{
	struct test_ring *home = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct test_ring *a = ring_new(64 * KIB, 8 * KIB, 0), *b = ring_new(64 * KIB, 8 * KIB, 0);
	struct fake_window fw = { .cap = 0, .all_awake = true };
	struct backlog_window w = window_of(&fw);
	struct seen s = { 0 };
	struct ring_ref ref;
	uint32_t prio;
	uint64_t ta, tb;

	home->r.bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(home->r.bell >= 0);
	ring_join(&a->r, &home->r, 1);
	ring_join(&b->r, &home->r, 2);
	assert_int_equal(a->r.lane, 1);
	assert_ptr_equal(a->r.q, home->r.hdr);
	/* lane 1 first at priority 2, then lane 2 at 2, then lane 2 at 7 */
	assert_int_equal(submit_raw(a, &w, 1, 2000, 2), 0);
	assert_int_equal(submit_raw(b, &w, 2, 2000, 2), 0);
	assert_true(readable(home->r.bell));
	assert_int_equal(backlog_of(&a->r), 1);
	assert_int_equal(backlog_of(&b->r), 1);
	assert_int_equal(backlog_of(&home->r), 0);
	assert_int_equal(atomic_load(&home->r.hdr->lanes_backlog), 2);
	assert_true(backlog_queue_busy(&home->r) && backlog_queue_busy(&a->r));
	assert_int_equal(ring_depth(&home->r), 2);
	assert_true(backlog_top(&a->r, &prio, &ta) && backlog_top(&b->r, &prio, &tb));
	assert_int_equal(prio, 2);
	assert_true(ta < tb); /* lane 1's joined first */
	assert_int_equal(submit_raw(b, &w, 3, 2000, 7), 0);
	assert_true(backlog_top(&b->r, &prio, &tb));
	assert_int_equal(prio, 7);
	/* a descriptor names its lane */
	assert_int_equal(backlog_take(&b->r, &ref, 0, 0, backlog_window_seq(&b->r), NULL), 0);
	assert_int_equal(ref.lane, 2);
	consume_ref_in(&b->r, &ref, &s);
	/* lane 2's next (priority 2) is younger than lane 1's */
	assert_true(backlog_top(&b->r, &prio, &tb));
	assert_int_equal(prio, 2);
	assert_true(backlog_top(&a->r, &prio, &ta));
	assert_true(ta < tb);
	assert_int_equal(backlog_take(&a->r, &ref, 0, 0, backlog_window_seq(&a->r), NULL), 0);
	assert_int_equal(ref.lane, 1);
	consume_ref_in(&a->r, &ref, &s);
	assert_false(backlog_top(&a->r, &prio, &ta));
	/* lane 1 empty, lane 2 not: the bell still rings */
	assert_true(readable(home->r.bell));
	assert_int_equal(atomic_load(&home->r.hdr->lanes_backlog), 1);
	assert_int_equal(backlog_take(&b->r, &ref, 0, 0, backlog_window_seq(&b->r), NULL), 0);
	consume_ref_in(&b->r, &ref, &s);
	assert_false(readable(home->r.bell));
	assert_false(backlog_queue_busy(&home->r));
	assert_int_equal(atomic_load(&home->r.hdr->lanes_backlog), 0);
	assert_int_equal(ring_depth(&home->r), 3); /* (receivers count what they hand out) */
	assert_ids(&s, (const uint32_t[]){ 3, 1, 2 }, 3);
	close(home->r.bell);
	home->r.bell = -1;
	ring_free(a);
	ring_free(b);
}

/* A loan published while another client holds the locks: with
 * BACKLOG_KEEP_ON_TIMEOUT the wait ends at the deadline and the loan is
 * still the caller's, reserved (and unsealed), to publish again once the
 * locks are free; without it, the chunk is given back.  Another sender
 * holds both locks, a receiver the shared one alone: either will do. */
static void test_submit_keeps_a_loan_when_the_lock_wait_times_out(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	struct ring_ref ref, again;
	struct seen s = { 0 };

	assert_int_equal(ring_reserve(&t->r, 2000, 0, &ref), 0);
	make_msg(ref.payload, 7, 2000);
	atomic_store(&t->r.sp->lock, DEAD_HOLDER << 1); /* someone else's turn, for ever */
	atomic_store(&t->r.hdr->lock, DEAD_HOLDER << 1);
	assert_int_equal(backlog_submit(&t->r, &ref, 3, 1, &w, 50, BACKLOG_KEEP_ON_TIMEOUT), -ETIMEDOUT);
	assert_int_equal(atomic_load(word_at(&t->r, 0)), RING_WORD(RING_RESERVED, t->r.self, ref.gen));
	assert_int_equal(atomic_load(&chunk_at(&t->r, 0)->sealed), 0);
	assert_int_equal(backlog_of(&t->r), 0);
	assert_int_equal(ring_loan_ref(&t->r, ref.payload, 2000, &again), 0);

	atomic_store(&t->r.sp->lock, 0);
	atomic_store(&t->r.hdr->lock, 0);
	assert_int_equal(backlog_submit(&t->r, &again, 3, 1, &w, 50, BACKLOG_KEEP_ON_TIMEOUT), 0);
	assert_int_equal(backlog_of(&t->r), 1);
	drain_backlog(t, &s);
	assert_ids(&s, (const uint32_t[]){ 7 }, 1);

	/* without the flag the chunk goes back to the ring */
	assert_int_equal(ring_reserve(&t->r, 2000, 0, &ref), 0);
	atomic_store(&t->r.hdr->lock, RECEIVER_HOLDER << 1);
	assert_int_equal(backlog_submit(&t->r, &ref, 3, 1, &w, 50, 0), -ETIMEDOUT);
	assert_int_equal(atomic_load(&t->r.sp->lock), 0); /* the senders' lock given back */
	atomic_store(&t->r.hdr->lock, 0);
	assert_int_equal(ring_loan_ref(&t->r, ref.payload, 2000, &again), -EINVAL);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* ---- taking from the backlog ---- */

static void test_take_returns_oldest_of_highest_level_then_eagain(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	struct ring_ref ref;
	struct seen s = { 0 };

	assert_int_equal(take(t, &ref, 0), -EAGAIN);
	append_ok(t, &w, 0, 50, 1, 16);
	append_ok(t, &w, 1, 50, 5, 16);
	append_ok(t, &w, 2, 50, 1, 16);
	assert_int_equal(submit_raw(t, &w, 3, 1000, 5), 0);
	append_ok(t, &w, 4, 50, 3, 16);
	drain_backlog(t, &s);
	assert_ids(&s, (const uint32_t[]){ 1, 3, 4, 0, 2 }, 5);
	assert_int_equal(take(t, &ref, 0), -EAGAIN);
	assert_int_equal(take(t, &ref, 50), -EAGAIN);
	assert_int_equal(backlog_of(&t->r), 0);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* Priorities beyond RING_LEVELS share levels; none is lost, taken from
 * the backlog or moved into the window. */
static void test_more_priorities_than_levels_all_come_out(void **state)
{
	enum { N = 2 * RING_LEVELS + 3 };
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	uint32_t rnd = 12345;
	struct seen s = { 0 };

	for (uint32_t i = 0; i < N; i++)
		append_ok(t, &w, i, 8 + i, (i * 7) % N, 16); /* N distinct priorities */
	assert_int_equal(chunks_of(&t->r), N);
	assert_int_equal(backlog_of(&t->r), N);
	drain_backlog(t, &s);
	assert_each_once(&s, N);
	assert_int_equal(ring_bytes_used(&t->r), 0);

	/* the same through the window, five chunks a move, with priorities
	 * drawn at random; each move is made by a raw send behind them */
	memset(&s, 0, sizeof(s));
	window_open(t, &fw, 0);
	for (uint32_t i = 0; i < 3 * N; i++)
		append_ok(t, &w, i, 16, xorshift32(&rnd) % 100, 1 + i % 3);
	while (backlog_busy(&t->r)) {
		window_open(t, &fw, 5);
		assert_int_equal(submit_raw(t, &w, 3 * N + s.n, 64, 0), 0);
		drain_window(t, &fw, &s);
	}
	drain_window(t, &fw, &s);
	assert_true(s.n >= 3 * N);
	{
		/* each of the 3N once, and every raw submit once */
		unsigned char count[8 * N] = { 0 };

		for (unsigned i = 0; i < s.n; i++) {
			assert_true(s.ids[i] < 8 * N);
			assert_int_equal(count[s.ids[i]]++, 0);
		}
		for (uint32_t i = 0; i < 3 * N; i++)
			assert_int_equal(count[i], 1);
	}
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* ---- a full ring ---- */

/* Both objects, the control object first, into copy (t->len +
 * t->data_len bytes). */
static void snapshot(const struct test_ring *t, unsigned char *copy)
{
	memcpy(copy, t->mem, t->len);
	memcpy(copy + t->len, t->data, t->data_len);
}

static void assert_unchanged(const struct test_ring *t, const unsigned char *copy)
{
	const unsigned char *ctl = t->mem, *data = t->data;

	for (size_t i = 0; i < t->len; i++)
		if (ctl[i] != copy[i]) {
			print_error("byte %zu of the control object changed (%u -> %u)\n", i, copy[i], ctl[i]);
			fail();
		}
	for (size_t i = 0; i < t->data_len; i++)
		if (data[i] != copy[t->len + i]) {
			print_error("byte %zu of the data object changed (%u -> %u)\n", i, copy[t->len + i], data[i]);
			fail();
		}
}

/* The objects are as in copy, but for a PAD chunk a refused append may
 * lay at head up to the end of the data area (it is needed before any
 * chunk that does not fit there, so the ring lays it as soon as it fits):
 * then head and the chunk count moved past it, the pad's header and
 * state were written, and nothing else. */
static void assert_unchanged_but_pad(const struct test_ring *t, unsigned char *copy)
{
	unsigned char *was_data = copy + t->len;
	const struct ring_spage *was = (const struct ring_spage *)was_data;
	uint64_t old_head = atomic_load(&was->head), head = atomic_load(&t->r.sp->head);

	if (head != old_head) {
		uint64_t ds = t->r.data_size, pad = ds - old_head % ds;
		const struct ring_chunk *c = chunk_at(&t->r, old_head);
		const struct ring_cstate *cs = ring_cs(&t->r, c);

		assert_int_equal(head, old_head + pad);
		assert_int_equal(RING_WORD_STATE(atomic_load(&cs->word)), RING_PAD);
		assert_int_equal(c->size, pad);
		memcpy(was_data + offsetof(struct ring_spage, head), (const void *)&t->r.sp->head, sizeof(uint64_t));
		memcpy(copy + offsetof(struct ring_hdr, chunks), (const void *)&t->r.hdr->chunks, sizeof(uint64_t));
		memcpy(was_data + RING_SPAGE_SIZE + old_head % ds, c, sizeof(*c));
		memcpy(copy + ((const unsigned char *)cs - (const unsigned char *)t->mem), cs, sizeof(*cs));
	}
	assert_unchanged(t, copy);
}

/* A full ring refuses an append with timeout 0 (-EAGAIN) or with a
 * timeout (-ETIMEDOUT) and leaves not one byte of the mapping changed:
 * nothing half written, no counter moved.  Whatever was accepted comes
 * out, once. */
static void test_full_ring_append_is_eagain_and_writes_nothing(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	unsigned char *copy = malloc(t->len + t->data_len);
	uint32_t rnd = 777, accepted = 0, refused = 0;
	struct seen s = { 0 };
	uint64_t start;

	assert_non_null(copy);
	for (uint32_t i = 0; i < 2000 && refused < 100; i++) {
		uint32_t len = MSG_MIN + xorshift32(&rnd) % (i % 2 ? 64 : 3000);
		unsigned prio = xorshift32(&rnd) % 3;
		int ret;

		snapshot(t, copy);
		ret = append_msg(t, &w, accepted, len, prio, 16, 0);
		if (ret == 0) {
			accepted++;
			continue;
		}
		assert_int_equal(ret, -EAGAIN);
		assert_unchanged_but_pad(t, copy);
		refused++;
	}
	assert_true(refused >= 100);
	assert_true(ring_bytes_used(&t->r) > 60 * KIB);
	assert_int_equal(backlog_of(&t->r), accepted);

	/* 4000 bytes need more than the 4K left, as a batch or a chunk */
	snapshot(t, copy);
	start = now_ns(CLOCK_MONOTONIC);
	assert_int_equal(append_msg(t, &w, accepted, 4000, 0, 16, 50), -ETIMEDOUT);
	assert_true(elapsed_ms_since(start) >= 40);
	assert_unchanged_but_pad(t, copy);
	free(copy);

	drain_backlog(t, &s);
	assert_each_once(&s, accepted);
	assert_int_equal(ring_bytes_used(&t->r), 0);
	/* room again */
	append_ok(t, &w, 0, 3000, 0, 16);
}

/* ---- giving a batch back ---- */

/* A receiver hands out records 0-2 of five, is done with record 0, and
 * gives the batch back with 0-2 done (what a closing at-most-once
 * handle does): the next taker sees 3 and 4 only. */
static void test_given_back_batch_is_taken_again_without_done_records(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	struct ring_recview rec[RING_BATCH_MAX];
	struct ring_ref ref, again;
	struct seen s = { 0 };

	for (uint32_t i = 0; i < 5; i++)
		append_ok(t, &w, i, 10 + i, 2, 16);
	assert_int_equal(take(t, &ref, 0), 0);
	assert_int_equal(ref.count, 5);
	assert_int_equal(ref.done, 0);
	assert_int_equal(ref.handed, 0);
	assert_int_equal(backlog_of(&t->r), 0);
	for (unsigned i = 0; i < 3; i++)
		ring_batch_handed(&t->r, ref.offset, ref.gen, i);
	assert_false(ring_batch_done(&t->r, ref.offset, ref.gen, 0));

	assert_int_equal(backlog_give_back(&t->r, &ref, BIT(0) | BIT(1) | BIT(2)), 0);
	assert_int_equal(backlog_of(&t->r), 2);
	assert_int_equal(RING_WORD_STATE(atomic_load(word_at(&t->r, ref.pos))), RING_QUEUED);

	assert_int_equal(take(t, &again, 0), 0);
	assert_int_equal(again.pos, ref.pos);
	assert_int_equal(again.gen, ref.gen);
	assert_int_equal(again.count, 5);
	assert_int_equal(again.done, BIT(0) | BIT(1) | BIT(2));
	assert_int_equal(again.handed, BIT(0) | BIT(1) | BIT(2));
	assert_int_equal(ring_batch_records(&t->r, &again, rec), 0);
	consume_ref(t, &again, &s);
	assert_ids(&s, (const uint32_t[]){ 3, 4 }, 2);
	assert_int_equal(ring_bytes_used(&t->r), 0);
	assert_int_equal(take(t, &again, 0), -EAGAIN);
}

/* A batch given back was at the head of the line: the next take serves
 * it before any other chunk, of a higher priority too; a take of given
 * back batches only (BACKLOG_RETURNED) finds nothing else. */
static void test_given_back_batch_is_served_first(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	struct ring_ref ref;
	struct seen s = { 0 };

	append_ok(t, &w, 0, 10, 1, 16);
	append_ok(t, &w, 1, 10, 1, 16);
	append_ok(t, &w, 2, 10, 5, 16);
	append_ok(t, &w, 3, 10, 5, 16);
	assert_false(backlog_returned(&t->r));
	assert_int_equal(backlog_take(&t->r, &ref, 0, BACKLOG_RETURNED, 0, NULL), -EAGAIN);
	assert_int_equal(take(t, &ref, 0), 0);
	assert_int_equal(ref.prio, 5);
	assert_false(ring_batch_done(&t->r, ref.offset, ref.gen, 0));
	assert_int_equal(backlog_give_back(&t->r, &ref, BIT(0)), 0);
	assert_true(backlog_returned(&t->r));
	append_ok(t, &w, 4, 10, 9, 16);

	assert_int_equal(backlog_take(&t->r, &ref, 0, BACKLOG_RETURNED, 0, NULL), 0);
	assert_int_equal(ref.done, BIT(0));
	consume_ref(t, &ref, &s);
	assert_false(backlog_returned(&t->r));
	assert_int_equal(backlog_take(&t->r, &ref, 0, BACKLOG_RETURNED, 0, NULL), -EAGAIN);
	drain_backlog(t, &s);
	assert_ids(&s, (const uint32_t[]){ 3, 4, 0, 1 }, 4);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* A receiver that found the window empty and then the backlog busy is
 * told to look at the window again (-EINPROGRESS) when a sender moved
 * messages into it meanwhile: they are older than what stays behind. */
static void test_take_after_window_refilled_is_einprogress(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	struct ring_ref ref;
	struct seen s = { 0 };
	uint64_t seq;

	for (uint32_t i = 0; i < 3; i++)
		append_ok(t, &w, i, 10, 0, 1);
	seq = backlog_window_seq(&t->r); /* the receiver saw an empty window */
	window_open(t, &fw, 1);
	append_ok(t, &w, 3, 10, 0, 1); /* a sender moves 0 into it */
	assert_int_equal(fw.n, 1);
	assert_int_equal(backlog_take(&t->r, &ref, 0, 0, seq, NULL), -EINPROGRESS);
	drain_window(t, &fw, &s);
	drain_backlog(t, &s);
	assert_ids(&s, (const uint32_t[]){ 0, 1, 2, 3 }, 4);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* Found by the spin model (tests/model/backlog.pml): sender A sees the
 * backlog empty and sends A0 straight to the window after receiver R last
 * looked at it (window_seq does not move for a direct send), then appends
 * A1 to the backlog.  R, under the lock, must see A0 in the window and
 * look there again (-EINPROGRESS), so A0 leaves before A1. */
static void test_take_sees_a_direct_send_after_the_look(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 2 };
	struct backlog_window w = window_of(&fw);
	struct ring_ref ref0, ref;
	struct proto_ring_desc d;
	struct seen s = { 0 };
	uint64_t seq;

	assert_int_equal(submit_raw(t, &w, 100, 10, 0), 0); /* B0, B1 fill the window */
	assert_int_equal(submit_raw(t, &w, 101, 10, 0), 0);
	assert_int_equal(ring_reserve(&t->r, 10, 0, &ref0), 0); /* A0, written; A saw no backlog */
	make_msg(ref0.payload, 0, 10);
	assert_false(backlog_busy(&t->r));
	append_ok(t, &w, 102, 10, 0, 16); /* B2: window full, to the backlog */
	drain_window(t, &fw, &s);         /* R takes B0, B1 ... */
	seq = backlog_window_seq(&t->r);  /* ... and finds the window empty */
	ring_publishing(&t->r, &ref0, 0); /* A0 straight into the window */
	ring_describe(&ref0, 0, &d);
	assert_int_equal(w.send(w.ctx, &d, sizeof(d), 0), 0);
	ring_published(&t->r, &ref0);
	append_ok(t, &w, 1, 10, 0, 16); /* A1: the backlog is busy */
	assert_int_equal(fw.n, 1);
	assert_int_equal(backlog_take(&t->r, &ref, 0, 0, seq, &w), -EINPROGRESS);
	drain_window(t, &fw, &s);
	drain_backlog(t, &s);
	assert_ids(&s, (const uint32_t[]){ 100, 101, 0, 102, 1 }, 5);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* Given back with every record done, a batch is released, not queued;
 * a raw chunk cannot be given back. */
static void test_give_back_of_finished_batch_releases_it(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	struct ring_ref ref;

	append_ok(t, &w, 0, 10, 0, 16);
	append_ok(t, &w, 1, 10, 0, 16);
	assert_int_equal(take(t, &ref, 0), 0);
	assert_false(ring_batch_done(&t->r, ref.offset, ref.gen, 1));
	assert_int_equal(backlog_give_back(&t->r, &ref, BIT(0)), 0);
	assert_int_equal(backlog_of(&t->r), 0);
	assert_int_equal(ring_bytes_used(&t->r), 0);

	assert_int_equal(submit_raw(t, &w, 2, 500, 0), 0);
	assert_int_equal(take(t, &ref, 0), 0);
	assert_int_equal(ref.kind, RING_KIND_RAW);
	assert_int_equal(ref.deliveries, 1);
	/* a chunk of one message goes back whole, and comes back redelivered */
	assert_int_equal(backlog_give_back(&t->r, &ref, 0), 0);
	assert_int_equal(backlog_of(&t->r), 1);
	assert_int_equal(take(t, &ref, 0), 0);
	assert_int_equal(ref.kind, RING_KIND_RAW);
	assert_int_equal(ref.deliveries, 2);
	assert_int_equal(backlog_of(&t->r), 0);
	ring_release(&t->r, &ref);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* ring_batch_done says true exactly once: for the record that completes
 * the batch, whatever the order, never for one already done. */
static void test_batch_done_is_true_once_for_the_last_record(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	static const unsigned sizes[] = { 1, 2, 5, 63, RING_BATCH_MAX };
	uint32_t rnd = 99;

	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		unsigned n = sizes[k], order[RING_BATCH_MAX] = { 0 }, trues = 0;
		struct ring_ref ref;

		for (uint32_t i = 0; i < n; i++)
			append_ok(t, &w, i, 8, 0, RING_BATCH_MAX);
		assert_int_equal(take(t, &ref, 0), 0);
		assert_int_equal(ref.count, n);
		for (unsigned i = 0; i < n; i++)
			order[i] = i;
		for (unsigned i = n; i > 1; i--) {
			unsigned j = xorshift32(&rnd) % i, x = order[i - 1];

			order[i - 1] = order[j];
			order[j] = x;
		}
		/* a wrong generation is not ours: never true, nothing marked */
		assert_false(ring_batch_done(&t->r, ref.offset, ref.gen + 1, order[0]));
		for (unsigned i = 0; i < n; i++) {
			bool last = ring_batch_done(&t->r, ref.offset, ref.gen, order[i]);

			assert_int_equal(last, i == n - 1);
			trues += last;
			/* done twice is never the last */
			assert_false(ring_batch_done(&t->r, ref.offset, ref.gen, order[i / 2]));
		}
		assert_int_equal(trues, 1);
		ring_release(&t->r, &ref);
		assert_int_equal(ring_bytes_used(&t->r), 0);
	}
}

/* ---- crash states ---- */

static bool is_dead(uint32_t holder, void *arg)
{
	(void)arg;
	return holder == DEAD_HOLDER;
}

/* What the daemon's sweep sees: the window it asks (is it empty?) and
 * the one its resends go into (the same mq, in real use). */
struct daemon_view {
	struct fake_window *resent;
	struct fake_window *window;
};

/* The daemon's resends go into its window as a sender's sends do. */
static int fake_resend(const void *msg, size_t len, unsigned prio, void *arg)
{
	return fake_send(((struct daemon_view *)arg)->resent, msg, len, prio);
}

static bool fake_window_empty(void *arg)
{
	return ((struct daemon_view *)arg)->window->n == 0;
}

/* The daemon's periodic sweep beside the window `window`, its resends
 * going into `resent`. */
static int reclaim_beside(struct test_ring *t, struct fake_window *resent, struct fake_window *window)
{
	struct daemon_view v = { .resent = resent, .window = window };
	const struct ring_reclaim_ops ops = {
		.is_dead = is_dead, .resend = fake_resend, .window_empty = fake_window_empty, .ctx = &v
	};
	const char *why = NULL;
	int ret = ring_reclaim(&t->r, &ops, &why);

	if (ret < 0)
		print_error("ring_reclaim: %d (%s)\n", ret, why ? why : "?");
	return ret;
}

/* The same, the window being the one the resends go into. */
static int reclaim(struct test_ring *t, struct fake_window *resent)
{
	return reclaim_beside(t, resent, resent);
}

/* (a) A sender died growing the newest batch after its size and before
 * head: the record it was adding is not in len or count.  The daemon's
 * walk does not call it corruption, the next append moves head to the
 * chunk's end and lays its record after it, and both chunks come out
 * with exactly their records. */
static void test_batch_grown_by_size_not_head_is_repaired_by_next_append(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	struct fake_window resent = { .cap = 16 };
	struct ring_chunk *c;
	uint64_t head, size;
	unsigned char rec[8 + 40];
	struct seen s = { 0 };

	append_ok(t, &w, 0, 40, 0, 16); /* 64 + 8 + 40 bytes: the smallest chunk */
	c = chunk_at(&t->r, 0);
	head = atomic_load(&t->r.sp->head);
	size = c->size;
	assert_int_equal(size, RING_ALIGN);
	assert_int_equal(head, RING_ALIGN);
	/* the dead sender's steps: record written past len, size grown */
	memcpy(rec, &(struct ring_rec){ .len = 40 }, 8);
	make_msg(rec + 8, 1, 40);
	memcpy((unsigned char *)(c + 1) + c->len, rec, sizeof(rec));
	c->size = size + RING_ALIGN;
	atomic_store(&t->r.sp->lock, DEAD_HOLDER << 1);
	atomic_store(&t->r.hdr->lock, DEAD_HOLDER << 1);

	/* the daemon breaks the locks and sees nothing to reclaim or report */
	assert_true(reclaim(t, &resent) >= 0);
	assert_int_equal(atomic_load(&t->r.sp->lock), 0);
	assert_int_equal(atomic_load(&t->r.hdr->lock), 0);
	assert_int_equal(resent.sends, 0);
	assert_int_equal(atomic_load(&t->r.hdr->corrupt), 0);

	/* repaired (by the sweep or by the next sender): head covers the
	 * grown chunk, whose unfinished record is not part of it; the next
	 * record may go into it or into a new chunk */
	assert_int_equal(atomic_load(&t->r.sp->head), size + RING_ALIGN);
	assert_int_equal(c->count, 1);
	append_ok(t, &w, 2, 40, 0, 16);
	assert_true(atomic_load(&t->r.sp->head) >= size + RING_ALIGN);
	assert_true(reclaim(t, &resent) >= 0);
	assert_int_equal(atomic_load(&t->r.hdr->corrupt), 0);

	drain_backlog(t, &s);
	assert_ids(&s, (const uint32_t[]){ 0, 2 }, 2);
	assert_int_equal(ring_bytes_used(&t->r), 0);
	assert_int_equal(atomic_load(&t->r.hdr->corrupt), 0);
}

/* The same state met by a receiver before any sender comes: its take
 * neither misreads the half-added record nor calls the ring corrupt; the
 * one record of the batch comes out and the space returns. */
static void test_batch_grown_by_size_not_head_is_taken_by_receiver(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	struct ring_chunk *c;
	struct seen s = { 0 };
	struct ring_ref ref;
	int ret;

	append_ok(t, &w, 0, 40, 0, 16);
	c = chunk_at(&t->r, 0);
	c->size += RING_ALIGN;

	ret = take(t, &ref, 0);
	if (ret != 0)
		print_error("backlog_take after a sender died mid-growth: %d\n", ret);
	assert_int_equal(ret, 0);
	consume_ref(t, &ref, &s);
	assert_ids(&s, (const uint32_t[]){ 0 }, 1);
	assert_int_equal(atomic_load(&t->r.hdr->corrupt), 0);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* The same state met by a receive-only receiver before any sender or the
 * daemon comes: it cannot repair head (it may not write the senders'
 * page), and it must neither write there nor misread the half-added
 * record; once the daemon's sweep repaired it, the record comes out. */
static void test_batch_grown_by_size_not_head_is_taken_by_receive_only_receiver(void **state)
{
	struct test_ring *t = *state = ring_new_in(64 * KIB, 8 * KIB, 1, true);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	struct fake_window resent = { .cap = 16 };
	struct ring_chunk *c;
	struct seen s = { 0 };
	struct ring_ref ref;
	struct ring ro;
	int ret;

	attach_receive_only(t, &ro);
	append_ok(t, &w, 0, 40, 0, 16);
	c = chunk_at(&t->r, 0);
	c->size += RING_ALIGN;

	ret = backlog_take(&ro, &ref, 0, 0, backlog_window_seq(&ro), NULL);
	if (ret != 0 && ret != -EAGAIN)
		print_error("a receive-only backlog_take after a sender died mid-growth: %d\n", ret);
	assert_true(ret == 0 || ret == -EAGAIN);
	if (ret == -EAGAIN) {
		assert_true(reclaim(t, &resent) >= 0);
		assert_int_equal(resent.sends, 0);
		assert_int_equal(backlog_take(&ro, &ref, 0, 0, backlog_window_seq(&ro), NULL), 0);
	}
	consume_ref_in(&ro, &ref, &s);
	assert_ids(&s, (const uint32_t[]){ 0 }, 1);
	assert_int_equal(atomic_load(&t->r.hdr->corrupt), 0);
	ring_advance_tail(&t->r);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* The same state met by the daemon's purge: the batch is released like
 * any other in the backlog, and its space returns. */
static void test_batch_grown_by_size_not_head_is_purged(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);

	append_ok(t, &w, 0, 40, 0, 16);
	append_ok(t, &w, 1, 40, 1, 16);
	assert_int_equal(chunk_at(&t->r, RING_ALIGN)->prio, 1);
	chunk_at(&t->r, RING_ALIGN)->size += RING_ALIGN;
	assert_int_equal(ring_purge_backlog(&t->r), 2);
	assert_int_equal(ring_bytes_used(&t->r), 0);
	assert_int_equal(atomic_load(&t->r.hdr->corrupt), 0);
}

static int die_in_send(void *ctx, const void *msg, size_t len, unsigned prio)
{
	(void)ctx;
	(void)msg;
	(void)len;
	(void)prio;
	_exit(0);
}

/* (b) A sender moving the backlog dies inside its mq send, holding the
 * lock, its chunk PUBLISHING under its id: the daemon breaks the lock
 * and sends the descriptor again, flagged, at its priority; the message
 * comes out once, and the stale backlog counts heal. */
static void test_chunk_left_publishing_by_dead_mover_is_resent(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window resent = { .cap = 16 };
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	struct proto_ring_desc d;
	struct ring_ref ref;
	struct seen s = { 0 };
	unsigned prio;
	pid_t pid;
	int st;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static const _Atomic uint32_t asleep = 1;
		const struct backlog_window dying = { .send = die_in_send, .listened = &asleep };

		t->r.self = DEAD_HOLDER;
		append_msg(t, &dying, 0, 100, 6, 16, 0);
		_exit(1); /* the send was never tried */
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(RING_WORD(RING_PUBLISHING, DEAD_HOLDER, 1), atomic_load(word_at(&t->r, 0)));
	assert_int_equal(atomic_load(&t->r.sp->lock) >> 1, DEAD_HOLDER);
	assert_int_equal(atomic_load(&t->r.hdr->lock) >> 1, DEAD_HOLDER);

	/* the lock is the dead one's: a receiver gives up at its deadline */
	assert_int_equal(take(t, &ref, 0), -EAGAIN);

	assert_true(reclaim(t, &resent) >= 1);
	assert_int_equal(atomic_load(&t->r.sp->lock), 0);
	assert_int_equal(atomic_load(&t->r.hdr->lock), 0);
	assert_int_equal(resent.sends, 1);
	assert_true(window_pop(&resent, &d, &prio));
	assert_int_equal(prio, 6);
	assert_int_equal(d.hdr.flags & PROTO_MSGF_RESENT, PROTO_MSGF_RESENT);
	assert_int_equal(d.offset, 0);
	/* a second sweep has nothing more to send */
	assert_true(reclaim(t, &resent) >= 0);
	assert_int_equal(resent.sends, 1);

	/* the backlog does not hand it out a second time */
	assert_int_equal(take(t, &ref, 0), -EAGAIN);
	assert_int_equal(backlog_of(&t->r), 0);
	assert_int_equal(ring_take(&t->r, &d, &ref), 0);
	consume_ref(t, &ref, &s);
	assert_ids(&s, (const uint32_t[]){ 0 }, 1);
	assert_int_equal(ring_bytes_used(&t->r), 0);

	/* and the queue goes on */
	append_ok(t, &w, 1, 100, 0, 16);
	drain_backlog(t, &s);
	assert_ids(&s, (const uint32_t[]){ 0, 1 }, 2);
}

/* A child with a dead holder's id takes a batch of six from the backlog,
 * is handed records 0-3, is done with 0 and 1, and dies. */
static void dead_taker(struct test_ring *t)
{
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	pid_t pid;
	int st;

	for (uint32_t i = 0; i < 6; i++)
		append_ok(t, &w, i, 20, 3, 16);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ring_ref ref;

		t->r.self = DEAD_HOLDER;
		if (take(t, &ref, 0) != 0 || ref.count != 6)
			_exit(1);
		for (unsigned i = 0; i < 4; i++)
			ring_batch_handed(&t->r, ref.offset, ref.gen, i);
		ring_batch_done(&t->r, ref.offset, ref.gen, 0);
		ring_batch_done(&t->r, ref.offset, ref.gen, 1);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(RING_WORD_STATE(atomic_load(word_at(&t->r, 0))), RING_TAKEN);
}

/* The next taker of the resent batch: what it skips, and what it gets. */
static void take_resent(struct test_ring *t, struct fake_window *resent, uint64_t want_done, const uint32_t *ids,
                        unsigned n)
{
	struct proto_ring_desc d;
	struct ring_ref ref;
	struct seen s = { 0 };
	unsigned prio;

	assert_int_equal(resent->sends, 1);
	assert_true(window_pop(resent, &d, &prio));
	assert_int_equal(prio, 3);
	assert_int_equal(d.hdr.flags & PROTO_MSGF_RESENT, PROTO_MSGF_RESENT);
	assert_int_equal(ring_take(&t->r, &d, &ref), 0);
	assert_int_equal(ref.count, 6);
	assert_int_equal(ref.done, want_done);
	assert_int_equal(ref.handed, BIT(0) | BIT(1) | BIT(2) | BIT(3));
	consume_ref(t, &ref, &s);
	assert_ids(&s, ids, n);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* (c) at-least-once: everything not done (2-5, handed or not) again. */
static void test_batch_of_dead_taker_redelivers_not_done_at_least_once(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window resent = { .cap = 16 };
	ipcq_stats st = { 0 };

	dead_taker(t);
	assert_int_equal(reclaim(t, &resent), 1);
	ring_fill_stats(&t->r, &st);
	assert_int_equal(st.redelivered, 2); /* the messages it had been handed: 2 and 3 */
	assert_int_equal(st.dropped, 0);
	take_resent(t, &resent, BIT(0) | BIT(1), (const uint32_t[]){ 2, 3, 4, 5 }, 4);
}

/* (c) at-most-once: handed and not done (2, 3) are dropped, counted; the
 * ones never handed (4, 5) go to the next taker. */
static void test_batch_of_dead_taker_drops_handed_at_most_once(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct fake_window resent = { .cap = 16 };
	ipcq_stats st = { 0 };

	dead_taker(t);
	assert_int_equal(reclaim(t, &resent), 1);
	ring_fill_stats(&t->r, &st);
	assert_int_equal(st.dropped, 2);
	take_resent(t, &resent, BIT(0) | BIT(1) | BIT(2) | BIT(3), (const uint32_t[]){ 4, 5 }, 2);
	/* a later sweep drops nothing more */
	assert_true(reclaim(t, &resent) >= 0);
	memset(&st, 0, sizeof(st));
	ring_fill_stats(&t->r, &st);
	assert_int_equal(st.dropped, 2);
}

/* (c) at-most-once, every record handed: nothing is left to resend and
 * the chunk is released. */
static void test_fully_handed_batch_of_dead_taker_is_released_at_most_once(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct fake_window resent = { .cap = 16 };
	struct ring_cstate *cs = ring_cs(&t->r, chunk_at(&t->r, 0));
	ipcq_stats st = { 0 };

	dead_taker(t);
	/* as if the dead one had handed all */
	atomic_fetch_or(&ring_cs(&t->r, ring_chunk_at(&t->r, 0))->handed, (uint64_t)3 << 4);
	assert_int_equal(atomic_load(&cs->handed), all_records(6));
	assert_int_equal(reclaim(t, &resent), 1);
	assert_int_equal(resent.sends, 0);
	ring_fill_stats(&t->r, &st);
	assert_int_equal(st.dropped, 4);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* A resend into a full window is tried again by the next sweep, once. */
static void test_resend_of_dead_takers_batch_is_retried_when_window_was_full(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window resent = { .cap = 0 };
	ipcq_stats st = { 0 };

	dead_taker(t);
	assert_int_equal(reclaim(t, &resent), 1);
	assert_int_equal(resent.sends, 0);
	resent.cap = 16;
	assert_true(reclaim(t, &resent) >= 1);
	assert_true(reclaim(t, &resent) >= 0);
	ring_fill_stats(&t->r, &st);
	assert_int_equal(st.redelivered, 2); /* its 2 messages once, however many sweeps */
	take_resent(t, &resent, BIT(0) | BIT(1), (const uint32_t[]){ 2, 3, 4, 5 }, 4);
}

/* ---- a lease that ran out ---- */

#define OTHER_HOLDER 6161u /* a second live receiver */

static int lease_always_expired(uint64_t offset, uint64_t word, unsigned deliveries, bool aside, void *arg)
{
	(void)offset;
	(void)word;
	(void)deliveries;
	(void)aside;
	(void)arg;
	return RING_LEASE_EXPIRED;
}

/* The daemon's sweep of an at-least-once queue whose every lease ran
 * out (the daemon's bookkeeping, lease.c, says so); *taken_back: what
 * walk_end was told. */
static unsigned walk_taken_back;

static void note_taken_back(bool whole, unsigned taken_back, void *arg)
{
	(void)arg;
	assert_true(whole);
	walk_taken_back = taken_back;
}

static int sweep_expiring_leases(struct test_ring *t, struct fake_window *resent)
{
	struct daemon_view v = { .resent = resent, .window = resent };
	const struct ring_reclaim_ops ops = { .is_dead = is_dead,
		                              .resend = fake_resend,
		                              .window_empty = fake_window_empty,
		                              .lease_check = lease_always_expired,
		                              .walk_end = note_taken_back,
		                              .ctx = &v };
	const char *why = NULL;

	walk_taken_back = 0;
	return ring_reclaim(&t->r, &ops, &why);
}

/* A live receiver took a batch of six, was handed records 0-3, is done
 * with 0 and 1, and holds it past its lease: the records not done (2-5)
 * go again, flagged redelivered where it had been handed them (2, 3);
 * its late release leaves the batch to the next taker. */
static void test_batch_whose_lease_ran_out_gives_its_records_not_done_again(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 }, resent = { .cap = 16 };
	struct backlog_window w = window_of(&fw);
	struct ring_ref old, fresh;
	struct proto_ring_desc d;
	struct seen s = { 0 };
	ipcq_stats st = { 0 };
	unsigned prio;

	for (uint32_t i = 0; i < 6; i++)
		append_ok(t, &w, i, 20, 3, 16);
	assert_int_equal(take(t, &old, 0), 0);
	assert_int_equal(old.count, 6);
	for (unsigned i = 0; i < 4; i++)
		ring_batch_handed(&t->r, old.offset, old.gen, i);
	assert_false(ring_batch_done(&t->r, old.offset, old.gen, 0));
	assert_false(ring_batch_done(&t->r, old.offset, old.gen, 1));

	assert_int_equal(sweep_expiring_leases(t, &resent), 1);
	assert_int_equal(walk_taken_back, 1);
	ring_fill_stats(&t->r, &st);
	assert_int_equal(st.redelivered, 2); /* the messages it had been handed, not done: 2 and 3 */
	assert_int_equal(st.dropped, 0);
	assert_int_equal(resent.sends, 1);
	/* once: nothing is TAKEN any more */
	assert_true(sweep_expiring_leases(t, &resent) >= 0);
	assert_int_equal(walk_taken_back, 0);
	assert_int_equal(resent.sends, 1);

	assert_true(window_pop(&resent, &d, &prio));
	assert_int_equal(prio, 3);
	assert_int_equal(d.hdr.flags & PROTO_MSGF_RESENT, PROTO_MSGF_RESENT);
	t->r.self = OTHER_HOLDER;
	assert_int_equal(ring_take(&t->r, &d, &fresh), 0);
	assert_int_equal(fresh.done, BIT(0) | BIT(1));
	assert_int_equal(fresh.handed, BIT(0) | BIT(1) | BIT(2) | BIT(3));
	/* the old holder's late release does nothing */
	t->r.self = TEST_HOLDER;
	ring_release(&t->r, &old);
	assert_int_equal(atomic_load(word_at(&t->r, fresh.pos)), RING_WORD(RING_TAKEN, OTHER_HOLDER, fresh.gen));
	t->r.self = OTHER_HOLDER;
	consume_ref(t, &fresh, &s);
	assert_ids(&s, (const uint32_t[]){ 2, 3, 4, 5 }, 4);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* ---- hostile shared memory ---- */

static uint64_t hostile_u64(uint32_t *rnd, const struct ring *r)
{
	uint64_t head = atomic_load(&r->sp->head), tail = atomic_load(&r->sp->tail);

	switch (xorshift32(rnd) % 10) {
	case 0: return 0;
	case 1: return UINT64_MAX;
	case 2: return tail;
	case 3: return head;
	case 4: return head - (xorshift32(rnd) % 2 ? RING_ALIGN : RING_CHUNK_HDR);
	case 5: return tail + RING_ALIGN * (xorshift32(rnd) % 64); /* a boundary, or inside a payload */
	case 6: return tail + 1 + xorshift32(rnd) % (64 * KIB);    /* misaligned */
	case 7: return head + RING_ALIGN * (1 + xorshift32(rnd) % 16);
	case 8: return ((uint64_t)xorshift32(rnd) << 32) | xorshift32(rnd);
	default: return (uint64_t)1 << (xorshift32(rnd) % 64);
	}
}

static uint32_t hostile_u32(uint32_t *rnd)
{
	switch (xorshift32(rnd) % 5) {
	case 0: return 0;
	case 1: return UINT32_MAX;
	case 2: return 1 + xorshift32(rnd) % 4;
	default: return xorshift32(rnd);
	}
}

static void scribble_backlog_state(struct test_ring *t, uint32_t *rnd)
{
	struct ring_hdr *h = t->r.hdr;
	unsigned what = xorshift32(rnd);

	for (unsigned i = 0; i < ARRAY_SIZE(h->levels); i++) {
		if (xorshift32(rnd) % 2)
			h->levels[i].prio = hostile_u32(rnd);
		if (xorshift32(rnd) % 2)
			h->levels[i].chunks = hostile_u32(rnd);
		if (xorshift32(rnd) % 2)
			h->levels[i].cursor = hostile_u64(rnd, &t->r);
	}
	if (what & 1)
		atomic_store(&h->backlog, xorshift32(rnd) % 2 ? UINT64_MAX : hostile_u64(rnd, &t->r));
	if (what & 2)
		t->r.sp->last = hostile_u64(rnd, &t->r); /* a sender's scribble */
	if (what & 4)
		atomic_store(&h->window_full, hostile_u32(rnd));
	if (what & 8)
		atomic_store(&h->depth, (int64_t)hostile_u64(rnd, &t->r));
	if (what & 16)
		atomic_store(&h->returned, hostile_u32(rnd));
	if (what & 32)
		atomic_store(&h->window_seq, hostile_u64(rnd, &t->r));
	/* chunks' levels, in the state table any client can write */
	if (what & 64)
		for (unsigned i = 0; i < 1 + xorshift32(rnd) % 4; i++)
			t->r.states[xorshift32(rnd) % (t->r.data_size / RING_ALIGN)].level =
			        (uint8_t)(xorshift32(rnd) % 2 ? xorshift32(rnd) : xorshift32(rnd) % (RING_RETURNED + 1));
}

/* A receiver done with the first k records of a taken batch (noted in
 * s) that gives the rest back. */
static void consume_some_give_back(struct test_ring *t, const struct ring_ref *ref, struct seen *s, unsigned k)
{
	struct ring_recview rec[RING_BATCH_MAX];

	assert_int_equal(ring_batch_records(&t->r, ref, rec), 0);
	for (unsigned i = 0; i < ref->count && k; i++) {
		int64_t id;

		if (ref->done & BIT(i))
			continue;
		id = msg_id(rec[i].data, rec[i].len);
		assert_true(id >= 0);
		assert_true(s->n < IDS_MAX);
		s->ids[s->n++] = (uint32_t)id;
		ring_batch_handed(&t->r, ref->offset, ref->gen, i);
		assert_false(ring_batch_done(&t->r, ref->offset, ref->gen, i));
		k--;
	}
	assert_int_equal(backlog_give_back(&t->r, ref, 0), 0);
}

/* Whatever a client scribbled over the backlog's levels, counters and
 * newest-chunk position: appends and takes return (quickly) with 0,
 * -EAGAIN or -EBADMSG; every message a take hands out is one that was
 * sent, intact, and never handed out twice; and a purge still empties
 * the ring. */
static void test_hostile_backlog_state_neither_hangs_nor_misdelivers(void **state)
{
	enum { TRIALS = 300, PER_TRIAL = 12, OPS = 24 };
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	unsigned char *count = calloc((size_t)TRIALS * (PER_TRIAL + OPS), 1);
	uint32_t rnd = 0x5eed, next = 0;
	unsigned taken = 0, refused = 0, bad = 0, purged = 0, gave_back = 0;

	assert_non_null(count);
	for (unsigned trial = 0; trial < TRIALS; trial++) {
		uint32_t first = next;
		struct proto_ring_desc d;
		struct ring_ref ref;

		window_open(t, &fw, xorshift32(&rnd) % 3);
		for (unsigned i = 0; i < PER_TRIAL; i++) {
			if (xorshift32(&rnd) % 4 == 0) {
				assert_int_equal(submit_raw(t, &w, next++, MSG_MIN + xorshift32(&rnd) % 2000,
				                            xorshift32(&rnd) % 4),
				                 0);
			} else {
				int ret = append_msg(t, &w, next, MSG_MIN + xorshift32(&rnd) % 300, xorshift32(&rnd) % 4,
				                     1 + xorshift32(&rnd) % 8, 0);

				assert_true(ret == 0 || ret == -EAGAIN || ret == -EBADMSG);
				next += ret == 0;
			}
		}
		scribble_backlog_state(t, &rnd);
		for (unsigned op = 0; op < OPS; op++) {
			uint64_t start = now_ns(CLOCK_MONOTONIC);
			int ret;

			if (xorshift32(&rnd) % 2) {
				ret = append_msg(t, &w, next, MSG_MIN + xorshift32(&rnd) % 300, xorshift32(&rnd) % 8,
				                 xorshift32(&rnd) % 70, 0);
				assert_true(ret == 0 || ret == -EAGAIN || ret == -EBADMSG);
				next += ret == 0;
				refused += ret == -EAGAIN;
			} else {
				if (xorshift32(&rnd) % 4)
					ret = take(t, &ref, 0);
				else
					ret = backlog_take(&t->r, &ref, 0, BACKLOG_RETURNED, 0, NULL);
				assert_true(ret == 0 || ret == -EAGAIN || ret == -EBADMSG);
				if (ret == 0) {
					struct seen s = { 0 };
					unsigned left = ref.kind == RING_KIND_BATCH
					                        ? (unsigned)__builtin_popcountll(~ref.done & all_records(ref.count))
					                        : 0;

					if (left > 1 && xorshift32(&rnd) % 3 == 0) {
						consume_some_give_back(t, &ref, &s, 1 + xorshift32(&rnd) % (left - 1));
						gave_back++;
					} else {
						consume_ref(t, &ref, &s);
					}
					for (unsigned i = 0; i < s.n; i++) {
						assert_true(s.ids[i] >= first && s.ids[i] < next);
						assert_int_equal(count[s.ids[i]]++, 0);
					}
					taken += s.n;
				}
			}
			bad += ret == -EBADMSG;
			assert_true(elapsed_ms_since(start) < 2000);
			if (xorshift32(&rnd) % 4 == 0)
				scribble_backlog_state(t, &rnd);
			if (xorshift32(&rnd) % 4 == 0)
				window_open(t, &fw, fw.n + xorshift32(&rnd) % 3);
		}
		/* what is left: purged from the backlog, taken from the window */
		purged += (unsigned)ring_purge_backlog(&t->r);
		while (window_pop(&fw, &d, NULL)) {
			struct seen s = { 0 };

			assert_int_equal(ring_take(&t->r, &d, &ref), 0);
			consume_ref(t, &ref, &s);
			for (unsigned i = 0; i < s.n; i++) {
				assert_true(s.ids[i] >= first && s.ids[i] < next);
				assert_int_equal(count[s.ids[i]]++, 0);
			}
			taken += s.n;
		}
		if (ring_bytes_used(&t->r) != 0)
			print_error("trial %u: %llu bytes left after purge and drain\n", trial,
			            (unsigned long long)ring_bytes_used(&t->r));
		assert_int_equal(ring_bytes_used(&t->r), 0);
		assert_int_equal(chunks_of(&t->r), 0);
		assert_int_equal(backlog_of(&t->r), 0);
	}
	free(count);
	/* the trials did exercise the paths they claim to */
	print_message("hostile: %u sent, %u taken, %u purged, %u batches given back, %u appends refused, %u -EBADMSG\n",
	              next, taken, purged, gave_back, refused, bad);
	assert_true(taken > 0);
	assert_true(gave_back > 0);
	/* every message sent was taken once or purged: none lost track of */
	assert_int_equal(taken + purged, next);
	/* a wrap of the data area happened, several times */
	assert_true(atomic_load(&t->r.sp->head) > 4 * 64 * KIB);
}

/* ---- the daemon's sweep beside live clients ---- */

struct busy_client {
	struct test_ring *t;
	struct fake_window fw; /* its window, which the daemon's sweep asks */
	_Atomic bool stop;
	unsigned rounds;
};

/* A live client: appends that grow batches and move them into the
 * window, and receives that take them and release them. */
static void *busy_client_main(void *arg)
{
	struct busy_client *b = arg;
	struct backlog_window w = window_of(&b->fw);
	uint32_t id = 0;

	while (!atomic_load(&b->stop)) {
		struct seen s = { 0 };

		for (unsigned i = 0; i < 40; i++)
			if (append_msg(b->t, &w, id, MSG_MIN + id % 200, 0, 64, 0) == 0)
				id++;
		drain_window(b->t, &b->fw, &s);
		window_open(b->t, &b->fw, 2);
		if (b->rounds % 8 == 0)
			drain_backlog(b->t, &s);
		b->rounds++;
	}
	return NULL;
}

/* The daemon's sweep walks the ring without the lock while clients grow
 * batches, move them and release them: it must never take that for
 * corruption (which quarantines the queue).  It asks the client's window
 * whether it is empty; a chunk the client took off it and is about to
 * take may be resent (a slow receiver looks like a dead one), and such a
 * copy must be a duplicate that takes nothing. */
static void test_sweep_beside_growing_batches_finds_no_corruption(void **state)
{
	enum { DUPS_MAX = 1 << 16 };
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct busy_client b = { .t = t, .fw = { .cap = 2 } };
	struct fake_window resent = { .cap = WINDOW_MAX };
	struct proto_ring_desc *dups = calloc(DUPS_MAX, sizeof(*dups));
	uint64_t start = now_ns(CLOCK_MONOTONIC);
	unsigned sweeps = 0, ndups = 0;
	struct ring_ref ref;
	pthread_t th;
	int ret = 0;

	assert_non_null(dups);
	assert_int_equal(pthread_create(&th, NULL, busy_client_main, &b), 0);
	while (elapsed_ms_since(start) < 2000 && ret >= 0) {
		ret = reclaim_beside(t, &resent, &b.fw);
		sweeps++;
		/* checked once the client stopped: it may not have taken them yet */
		while (ndups < DUPS_MAX && window_pop(&resent, &dups[ndups], NULL))
			ndups++;
	}
	atomic_store(&b.stop, true);
	assert_int_equal(pthread_join(th, NULL), 0);
	for (unsigned i = 0; i < ndups; i++)
		assert_int_equal(ring_take(&t->r, &dups[i], &ref), -ESTALE);
	free(dups);
	print_message("sweep: %u sweeps beside %u client rounds, %u duplicates resent\n", sweeps, b.rounds, ndups);
	assert_true(ret >= 0); /* never -EBADMSG */
	assert_int_equal(atomic_load(&t->r.hdr->corrupt), 0);
}

/* ---- the seal, and a receive-only receiver ---- */

/* Everything a client that can write the control object could set to
 * make a reservation look QUEUED while its sender still writes it: its
 * word, its level, the level's cursor and count, the backlog's count.
 * The header is not sealed, so the backlog does not hand it out; once
 * its sender submits it, it comes out once, whole. */
static void test_backlog_take_does_not_hand_out_an_unsealed_chunk(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	struct ring_hdr *h = t->r.hdr;
	unsigned char whole[2000];
	struct ring_ref loan, ref;
	struct seen s = { 0 };
	int ret;

	assert_int_equal(ring_reserve(&t->r, sizeof(whole), 0, &loan), 0);
	make_msg(whole, 7, sizeof(whole));
	memcpy(loan.payload, whole, sizeof(whole) / 2); /* half written */
	ring_cs(&t->r, chunk_at(&t->r, loan.pos))->level = 0;
	h->levels[0].prio = 3;
	h->levels[0].chunks = 1;
	h->levels[0].cursor = loan.pos;
	atomic_store(&h->backlog, 1);
	atomic_store(word_at(&t->r, loan.pos), RING_WORD(RING_QUEUED, 0, loan.gen));

	ret = take(t, &ref, 0);
	if (ret == 0)
		print_error("the backlog handed out a chunk its sender had not sealed\n");
	assert_true(ret == -EAGAIN || ret == -EBADMSG);
	assert_int_not_equal(RING_WORD_STATE(atomic_load(word_at(&t->r, loan.pos))), RING_TAKEN);
	assert_int_equal(take(t, &ref, 0), -EAGAIN);

	/* the sender is done, and submits it into the backlog */
	memcpy(loan.payload, whole, sizeof(whole));
	assert_int_equal(backlog_submit(&t->r, &loan, 3, 1, &w, 0, 0), 0);
	drain_backlog(t, &s);
	assert_ids(&s, (const uint32_t[]){ 7 }, 1);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* A receive-only client's take from the backlog, as a receiver that
 * just found the window empty. */
static int take_as_receiver(struct ring *ro, struct ring_ref *out, unsigned flags)
{
	return backlog_take(ro, out, 0, flags, backlog_window_seq(ro), NULL);
}

/* A receive-only client (its data object mapped read-only) takes from
 * the backlog in order, batches and raw chunks, gives a batch back and
 * takes it again, without writing the data object; the tail stays where
 * it was until a writer moves it. */
static void test_receive_only_client_takes_from_the_backlog_without_writing_data(void **state)
{
	struct test_ring *t = *state = ring_new_in(64 * KIB, 8 * KIB, 1, true);
	struct fake_window fw = { .cap = 0 };
	struct backlog_window w = window_of(&fw);
	struct ring_recview rec[RING_BATCH_MAX];
	struct ring_ref ref;
	struct seen s = { 0 };
	ipcq_stats st = { 0 };
	uint64_t tail;
	struct ring ro;

	attach_receive_only(t, &ro);
	assert_write_faults(ro.data);
	assert_write_faults((void *)&ro.sp->lock);
	for (uint32_t i = 0; i < 5; i++)
		append_ok(t, &w, i, 20 + i, 2, 16);
	assert_int_equal(submit_raw(t, &w, 5, 3000, 2), 0);
	append_ok(t, &w, 6, 30, 5, 16);
	append_ok(t, &w, 7, 30, 5, 16);
	tail = atomic_load(&t->r.sp->tail);

	assert_int_equal(take_as_receiver(&ro, &ref, 0), 0); /* 6, 7 */
	consume_ref_in(&ro, &ref, &s);
	assert_int_equal(take_as_receiver(&ro, &ref, 0), 0); /* 0-4: hands out 0, 1, gives it back */
	assert_int_equal(ref.count, 5);
	assert_int_equal(ring_batch_records(&ro, &ref, rec), 0);
	for (unsigned i = 0; i < 2; i++) {
		int64_t id = msg_id(rec[i].data, rec[i].len);

		assert_true(id >= 0);
		s.ids[s.n++] = (uint32_t)id;
		ring_batch_handed(&ro, ref.offset, ref.gen, i);
		assert_false(ring_batch_done(&ro, ref.offset, ref.gen, i));
	}
	assert_int_equal(backlog_give_back(&ro, &ref, 0), 0);
	assert_true(backlog_returned(&ro));
	assert_int_equal(take_as_receiver(&ro, &ref, BACKLOG_RETURNED), 0);
	assert_int_equal(ref.done, BIT(0) | BIT(1));
	consume_ref_in(&ro, &ref, &s);
	assert_int_equal(take_as_receiver(&ro, &ref, 0), 0); /* 5, raw */
	assert_int_equal(ref.kind, RING_KIND_RAW);
	consume_ref_in(&ro, &ref, &s);
	assert_int_equal(take_as_receiver(&ro, &ref, 0), -EAGAIN);
	assert_ids(&s, (const uint32_t[]){ 6, 7, 0, 1, 2, 3, 4, 5 }, 8);
	assert_int_equal(backlog_of(&t->r), 0);

	/* all released; the receiver left the tail alone */
	assert_int_equal(atomic_load(&t->r.sp->tail), tail);
	assert_true(ring_bytes_used(&ro) > 0);
	ring_fill_stats(&ro, &st);
	assert_int_equal(atomic_load(&t->r.sp->tail), tail);
	ring_fill_stats(&t->r, &st); /* a writer moves it */
	assert_int_equal(st.ring_used, 0);
	assert_int_equal(ring_bytes_used(&ro), 0);
	assert_int_equal(chunks_of(&t->r), 0);
}

/* ---- purge ---- */

/* ring_purge_backlog releases every QUEUED chunk (raw, batch, given
 * back), counts their messages, leaves the window's chunk alone; once
 * that one is taken and released, the tail passes all and the ring is
 * empty.  The daemon's sweep leaves the backlog alone before. */
static void test_purge_releases_every_queued_chunk(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct fake_window resent = { .cap = 16 };
	struct fake_window fw = { .cap = 1 };
	struct backlog_window w = window_of(&fw);
	struct proto_ring_desc d;
	struct ring_ref ref;
	struct seen s = { 0 };
	uint64_t used;

	assert_int_equal(submit_raw(t, &w, 0, 1000, 0), 0); /* into the window */
	assert_int_equal(fw.n, 1);
	for (uint32_t i = 1; i <= 10; i++)
		append_ok(t, &w, i, 30, (const unsigned[]){ 1, 2, 0 }[(i - 1) / 4], 4); /* 1-4, 5-8, 9-10 */
	assert_int_equal(submit_raw(t, &w, 11, 4000, 1), 0);
	/* a batch taken, one record done, given back */
	assert_int_equal(take(t, &ref, 0), 0);
	assert_int_equal(ref.kind, RING_KIND_BATCH);
	assert_int_equal(ref.count, 4);
	assert_int_equal(ref.prio, 2);
	assert_false(ring_batch_done(&t->r, ref.offset, ref.gen, 0));
	assert_int_equal(backlog_give_back(&t->r, &ref, BIT(0)), 0);
	assert_int_equal(backlog_of(&t->r), 10);

	used = ring_bytes_used(&t->r);
	assert_int_equal(reclaim_beside(t, &resent, &fw), 0);
	assert_int_equal(reclaim_beside(t, &resent, &fw), 0);
	assert_int_equal(resent.sends, 0);
	assert_int_equal(ring_bytes_used(&t->r), used);

	assert_int_equal(ring_purge_backlog(&t->r), 10);
	assert_int_equal(backlog_of(&t->r), 0);
	assert_int_equal(take(t, &ref, 0), -EAGAIN);
	/* the tail waits behind the window's chunk, at the front */
	assert_int_equal(ring_bytes_used(&t->r), used);
	assert_true(window_pop(&fw, &d, NULL));
	assert_int_equal(ring_take(&t->r, &d, &ref), 0);
	consume_ref(t, &ref, &s);
	assert_ids(&s, (const uint32_t[]){ 0 }, 1);
	assert_int_equal(ring_bytes_used(&t->r), 0);
	assert_int_equal(chunks_of(&t->r), 0);
	/* a second purge finds nothing */
	assert_int_equal(ring_purge_backlog(&t->r), 0);

	/* and the backlog works afterwards, levels and all */
	window_open(t, &fw, 0);
	append_ok(t, &w, 20, 30, 1, 4);
	append_ok(t, &w, 21, 30, 2, 4);
	drain_backlog(t, &s);
	assert_ids(&s, (const uint32_t[]){ 0, 21, 20 }, 3);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

#define BACKLOG_TEST(f) cmocka_unit_test_teardown(f, teardown_ring)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BACKLOG_TEST(test_append_coalesces_into_newest_batch_up_to_batch_max),
		BACKLOG_TEST(test_batch_never_exceeds_ring_batch_max),
		BACKLOG_TEST(test_batch_never_exceeds_max_payload),
		BACKLOG_TEST(test_other_priority_starts_new_chunk),
		BACKLOG_TEST(test_raw_chunk_in_between_closes_batch),
		BACKLOG_TEST(test_move_order_is_highest_level_first_fifo_within),
		BACKLOG_TEST(test_move_stops_at_full_window_and_resumes_in_order),
		BACKLOG_TEST(test_full_window_is_not_tried_again_until_drained),
		BACKLOG_TEST(test_submit_bypasses_only_an_empty_backlog),
		BACKLOG_TEST(test_senders_leave_messages_in_the_backlog_while_no_receiver_sleeps),
		BACKLOG_TEST(test_with_a_bell_senders_wake_one_receiver_through_the_window),
		BACKLOG_TEST(test_lanes_count_in_their_queue_and_order_by_priority_then_ticket),
		BACKLOG_TEST(test_submit_keeps_a_loan_when_the_lock_wait_times_out),
		BACKLOG_TEST(test_take_returns_oldest_of_highest_level_then_eagain),
		BACKLOG_TEST(test_more_priorities_than_levels_all_come_out),
		BACKLOG_TEST(test_full_ring_append_is_eagain_and_writes_nothing),
		BACKLOG_TEST(test_given_back_batch_is_taken_again_without_done_records),
		BACKLOG_TEST(test_given_back_batch_is_served_first),
		BACKLOG_TEST(test_take_after_window_refilled_is_einprogress),
		BACKLOG_TEST(test_take_sees_a_direct_send_after_the_look),
		BACKLOG_TEST(test_give_back_of_finished_batch_releases_it),
		BACKLOG_TEST(test_batch_done_is_true_once_for_the_last_record),
		BACKLOG_TEST(test_batch_grown_by_size_not_head_is_repaired_by_next_append),
		BACKLOG_TEST(test_batch_grown_by_size_not_head_is_taken_by_receiver),
		BACKLOG_TEST(test_batch_grown_by_size_not_head_is_taken_by_receive_only_receiver),
		BACKLOG_TEST(test_batch_grown_by_size_not_head_is_purged),
		BACKLOG_TEST(test_chunk_left_publishing_by_dead_mover_is_resent),
		BACKLOG_TEST(test_batch_of_dead_taker_redelivers_not_done_at_least_once),
		BACKLOG_TEST(test_batch_of_dead_taker_drops_handed_at_most_once),
		BACKLOG_TEST(test_fully_handed_batch_of_dead_taker_is_released_at_most_once),
		BACKLOG_TEST(test_resend_of_dead_takers_batch_is_retried_when_window_was_full),
		BACKLOG_TEST(test_batch_whose_lease_ran_out_gives_its_records_not_done_again),
		BACKLOG_TEST(test_hostile_backlog_state_neither_hangs_nor_misdelivers),
		BACKLOG_TEST(test_sweep_beside_growing_batches_finds_no_corruption),
		BACKLOG_TEST(test_backlog_take_does_not_hand_out_an_unsealed_chunk),
		BACKLOG_TEST(test_receive_only_client_takes_from_the_backlog_without_writing_data),
		BACKLOG_TEST(test_purge_releases_every_queued_chunk),
	};

	alarm(120); /* a hang is a failure, not a stuck CI job */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
