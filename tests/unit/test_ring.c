/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ring.c - the shared-memory ring alone (common/ring.c), in one
 * process: a ring formatted in two anonymous shared mappings (its control
 * object and its data object), driven by the producer, consumer and
 * daemon operations directly.  A mutex-guarded array of descriptors
 * stands in for the POSIX mq.
 *
 * The ring stamps its holder id (TEST_HOLDER here; the daemon's id for the
 * process in real use) into the chunks and slots it hands out, so a dead
 * client is simulated with an is_dead callback that declares that holder
 * dead.  A receive-only client is a second view of the same ring whose
 * data object is mapped read-only (from a memfd): any write it made there
 * would kill the test with SIGSEGV.
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
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "ring.h"
#include "ring_impl.h"
#include "util.h"
#include "ring_fixture.h"

/* ---- fixtures (ring_fixture.h) ---- */

static uint64_t chunk_bytes(size_t len)
{
	return ALIGN_UP((uint64_t)RING_CHUNK_HDR + len, (uint64_t)RING_ALIGN);
}

/* The state word of the chunk at offset off, in the control object. */
static _Atomic uint64_t *word_at(const struct ring *r, uint64_t off)
{
	return &ring_cs(r, (const struct ring_chunk *)(r->data + off))->word;
}

static ipcq_stats stats_of(struct ring *r)
{
	ipcq_stats st;

	memset(&st, 0, sizeof(st));
	ring_fill_stats(r, &st);
	return st;
}

/* Deterministic payload bytes for message number seed. */
static void fill_payload(void *p, size_t len, uint64_t seed)
{
	unsigned char *b = p;
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (unsigned char)(x >> 24);
	}
}

static bool payload_matches(const void *p, size_t len, uint64_t seed)
{
	unsigned char *want = malloc(len ? len : 1);
	bool same;

	assert_non_null(want);
	fill_payload(want, len, seed);
	same = memcmp(p, want, len) == 0;
	free(want);
	return same;
}

/* Producer side of one message: reserve, write, publish with priority
 * seed % 32.  Returns the descriptor that would go on the mq. */
static struct proto_ring_desc produce(struct ring *r, size_t len, uint64_t seed)
{
	struct ring_ref ref;
	struct proto_ring_desc d;

	assert_int_equal(ring_reserve(r, len, 0, &ref), 0);
	assert_int_equal(ref.len, len);
	fill_payload(ref.payload, len, seed);
	ring_publishing(r, &ref, (unsigned)(seed % 32));
	ring_describe(&ref, 0, &d);
	ring_published(r, &ref);
	return d;
}

/* Consumer side: take, check the contents, release. */
static void consume(struct ring *r, const struct proto_ring_desc *d, uint64_t seed)
{
	struct ring_ref ref;

	assert_int_equal(ring_take(r, d, &ref), 0);
	assert_int_equal(ref.len, d->hdr.len);
	assert_true(payload_matches(ref.payload, ref.len, seed));
	ring_release(r, &ref);
}

static uint64_t elapsed_ms_since(uint64_t start_ns)
{
	return (now_ns(CLOCK_MONOTONIC) - start_ns) / 1000000u;
}

/* ---- geometry and attach ---- */

static void test_geometry_check_rejects_bad_sizes(void **state)
{
	const struct ring_geometry good = { .data_size = 64 * KIB, .max_payload = 64 * KIB - RING_CHUNK_HDR,
		                            .msg_size = 64 };
	struct ring_geometry g;
	const char *why = NULL;

	assert_int_equal(ring_geometry_check(&good, &why), 0);
	assert_null(why);

	g = good;
	g.data_size = 60 * KIB;
	g.max_payload = 1024;
	assert_int_equal(ring_geometry_check(&g, &why), -EINVAL);
	assert_non_null(why);

	g = good;
	g.data_size = 64 * KIB + 100;
	assert_int_equal(ring_geometry_check(&g, &why), -EINVAL);
	assert_non_null(why);

	g = good;
	g.max_payload = 0;
	assert_int_equal(ring_geometry_check(&g, &why), -EINVAL);

	g = good;
	g.max_payload = good.data_size - RING_CHUNK_HDR + 1;
	assert_int_equal(ring_geometry_check(&g, &why), -EINVAL);

	g = good;
	g.msg_size = 63;
	assert_int_equal(ring_geometry_check(&g, &why), -EINVAL);

	g = good;
	g.delivery = 2;
	assert_int_equal(ring_geometry_check(&g, &why), -EINVAL);
}

static void test_attach_accepts_formatted_ring(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct ring r2;

	assert_int_equal(ring_attach(&r2, t->mem, t->len, t->data, t->data_len, true), 0);
	assert_true(ring_geometry_equal(&r2, &t->geo));
	assert_int_equal(r2.data_size, 64 * KIB);
	assert_int_equal(r2.max_payload, 8 * KIB);
	assert_int_equal(r2.msg_size, 256);
	assert_int_equal(r2.delivery, 1);
	assert_true(r2.writable);
	assert_ptr_equal(r2.data, t->r.data);
	assert_ptr_equal(r2.slots, t->r.slots);
	assert_ptr_equal(r2.states, t->r.states);
	assert_ptr_equal(r2.sp, t->data);
	/* the data area follows the senders' page; the chunk states, one per
	 * RING_ALIGN bytes of it, end within the control object */
	assert_ptr_equal(r2.data, (unsigned char *)t->data + RING_SPAGE_SIZE);
	assert_true((unsigned char *)(r2.states + 64 * KIB / RING_ALIGN) <= (unsigned char *)t->mem + t->len);
	assert_int_equal(ring_attach(&r2, t->mem, t->len, t->data, t->data_len, false), 0);
	assert_false(r2.writable);
}

static void test_attach_rejects_foreign_or_other_version_ring(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct ring_hdr *h = t->mem;
	struct ring_spage *sp = t->data;
	struct ring r2;

	h->magic ^= 1;
	assert_int_equal(ring_attach(&r2, t->mem, t->len, t->data, t->data_len, true), -EPROTO);
	h->magic ^= 1;
	h->version = RING_VERSION + 1;
	assert_int_equal(ring_attach(&r2, t->mem, t->len, t->data, t->data_len, true), -EPROTO);
	h->version = RING_VERSION;
	/* the data object has a magic and version of its own */
	sp->magic ^= 1;
	assert_int_equal(ring_attach(&r2, t->mem, t->len, t->data, t->data_len, true), -EPROTO);
	sp->magic ^= 1;
	sp->version = RING_VERSION - 1;
	assert_int_equal(ring_attach(&r2, t->mem, t->len, t->data, t->data_len, false), -EPROTO);
	sp->version = RING_VERSION;
	/* the two objects swapped */
	assert_int_equal(ring_attach(&r2, t->data, t->len, t->mem, t->data_len, true), -EPROTO);
	assert_int_equal(ring_attach(&r2, t->mem, t->len, t->data, t->data_len, true), 0);
}

static void test_attach_rejects_mapping_of_other_length(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct ring r2;

	assert_int_equal(ring_attach(&r2, t->mem, t->len - 4096, t->data, t->data_len, true), -EINVAL);
	assert_int_equal(ring_attach(&r2, t->mem, t->len + 4096, t->data, t->data_len, true), -EINVAL);
	assert_int_equal(ring_attach(&r2, t->mem, 100, t->data, t->data_len, true), -EPROTO);
	/* the data object too */
	assert_int_equal(ring_attach(&r2, t->mem, t->len, t->data, t->data_len - 4096, true), -EINVAL);
	assert_int_equal(ring_attach(&r2, t->mem, t->len, t->data, t->data_len + 4096, true), -EINVAL);
	assert_int_equal(ring_attach(&r2, t->mem, t->len, t->data, 100, false), -EPROTO);
	assert_int_equal(ring_attach(&r2, t->mem, t->len, t->data, t->data_len, true), 0);
}

static void test_attach_rejects_corrupt_layout(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct ring_hdr *h = t->mem;
	struct ring_spage *sp = t->data;
	struct ring r2;

	h->states_offset += 4096;
	assert_int_equal(ring_attach(&r2, t->mem, t->len, t->data, t->data_len, true), -EINVAL);
	h->states_offset -= 4096;
	h->slots_offset += 4096;
	assert_int_equal(ring_attach(&r2, t->mem, t->len, t->data, t->data_len, true), -EINVAL);
	h->slots_offset -= 4096;
	/* the data object says another size than the control object */
	sp->data_size *= 2;
	assert_int_equal(ring_attach(&r2, t->mem, t->len, t->data, t->data_len, false), -EINVAL);
	sp->data_size /= 2;
	assert_int_equal(ring_attach(&r2, t->mem, t->len, t->data, t->data_len, true), 0);
	h->max_payload = h->data_size;
	assert_int_equal(ring_attach(&r2, t->mem, t->len, t->data, t->data_len, true), -EINVAL);
}

/* ---- the basic cycle ---- */

static void test_published_payload_is_taken_intact_and_space_returns(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct proto_ring_desc d;
	struct ring_ref ref;
	ipcq_stats st;

	assert_int_equal(ring_bytes_used(&t->r), 0);
	d = produce(&t->r, 1000, 1);
	assert_int_equal(d.hdr.kind, PROTO_MSG_RING);
	assert_int_equal(d.hdr.flags, 0);
	assert_int_equal(d.hdr.len, 1000);
	assert_int_equal(proto_msg_check(&d, sizeof(d)), PROTO_MSG_RING);
	assert_int_equal(ring_bytes_used(&t->r), chunk_bytes(1000));
	st = stats_of(&t->r);
	assert_int_equal(st.ring_chunks, 1);
	assert_int_equal(st.ring_used, chunk_bytes(1000));

	assert_int_equal(ring_take(&t->r, &d, &ref), 0);
	assert_int_equal(ref.len, 1000);
	assert_int_equal(ref.offset, d.offset);
	assert_int_equal(ref.gen, d.gen);
	assert_true(payload_matches(ref.payload, 1000, 1));
	assert_int_equal(ring_bytes_used(&t->r), chunk_bytes(1000)); /* held while taken */
	ring_release(&t->r, &ref);

	assert_int_equal(ring_bytes_used(&t->r), 0);
	st = stats_of(&t->r);
	assert_int_equal(st.ring_chunks, 0);
	assert_int_equal(st.ring_used, 0);
	assert_int_equal(st.ring_hwm, chunk_bytes(1000));
}

static void test_zero_length_payload_round_trips(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct proto_ring_desc d = produce(&t->r, 0, 5);

	assert_int_equal(ring_bytes_used(&t->r), RING_ALIGN); /* the smallest chunk */
	assert_int_equal(chunk_bytes(0), RING_ALIGN);
	consume(&t->r, &d, 5);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

static void test_cancelled_reservation_gives_space_back(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct ring_ref ref;
	struct proto_ring_desc d;

	assert_int_equal(ring_reserve(&t->r, 500, 0, &ref), 0);
	ring_describe(&ref, 0, &d);
	ring_cancel(&t->r, &ref);
	assert_int_equal(ring_bytes_used(&t->r), 0);
	assert_int_equal(stats_of(&t->r).ring_chunks, 0);
	assert_int_equal(ring_take(&t->r, &d, &ref), -ESTALE);
}

/* Chunks of 5000 bytes do not divide a 64K area: padding and wrapping
 * happen at ever different offsets. */
static void test_chunks_wrap_around_data_area_intact(void **state)
{
	enum { ROUNDS = 500, IN_FLIGHT = 4, LEN = 5000 };
	struct test_ring *t = *state = ring_new(64 * KIB, 16 * KIB, 0);
	struct proto_ring_desc fifo[IN_FLIGHT];
	unsigned at_zero = 0;

	for (unsigned i = 0; i < ROUNDS + IN_FLIGHT; i++) {
		if (i >= IN_FLIGHT) {
			unsigned old = i - IN_FLIGHT;

			consume(&t->r, &fifo[old % IN_FLIGHT], old);
		}
		if (i < ROUNDS) {
			fifo[i % IN_FLIGHT] = produce(&t->r, LEN, i);
			assert_true(fifo[i % IN_FLIGHT].offset + chunk_bytes(LEN) <= 64 * KIB);
			at_zero += fifo[i % IN_FLIGHT].offset == 0;
		}
		assert_true(ring_bytes_used(&t->r) <= 64 * KIB);
	}
	assert_int_equal(ring_bytes_used(&t->r), 0);
	assert_int_equal(stats_of(&t->r).ring_chunks, 0);
	assert_true(stats_of(&t->r).ring_hwm <= 64 * KIB);
	assert_true(stats_of(&t->r).ring_hwm >= IN_FLIGHT * chunk_bytes(LEN));
	/* positions are monotonic: head went round the area many times */
	assert_true(atomic_load(&t->r.sp->head) > 20 * 64 * KIB);
	assert_true(at_zero > 20);
	assert_int_equal(atomic_load(&t->r.hdr->corrupt), 0);
}

static void test_out_of_order_release_frees_space_when_oldest_is_released(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct proto_ring_desc da = produce(&t->r, 1000, 1);
	struct proto_ring_desc db = produce(&t->r, 2000, 2);
	struct proto_ring_desc dc = produce(&t->r, 3000, 3);
	struct ring_ref a, b, c;
	uint64_t used = chunk_bytes(1000) + chunk_bytes(2000) + chunk_bytes(3000);

	assert_int_equal(ring_take(&t->r, &da, &a), 0);
	assert_int_equal(ring_take(&t->r, &db, &b), 0);
	assert_int_equal(ring_take(&t->r, &dc, &c), 0);
	assert_int_equal(ring_bytes_used(&t->r), used);

	ring_release(&t->r, &c);
	assert_int_equal(ring_bytes_used(&t->r), used);
	ring_release(&t->r, &b);
	assert_int_equal(ring_bytes_used(&t->r), used);
	assert_int_equal(stats_of(&t->r).ring_chunks, 3);
	assert_true(payload_matches(a.payload, 1000, 1)); /* A untouched meanwhile */

	ring_release(&t->r, &a);
	assert_int_equal(ring_bytes_used(&t->r), 0);
	assert_int_equal(stats_of(&t->r).ring_chunks, 0);
}

/* A process that dies holding the producers' lock, with the tail moved
 * part of the way, leaves a ring that the next release carries on with:
 * releases move the tail without the lock. */
static void test_release_recovers_from_holder_killed_mid_walk(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct proto_ring_desc da = produce(&t->r, 1000, 1);
	struct proto_ring_desc db = produce(&t->r, 2000, 2);
	struct proto_ring_desc dc = produce(&t->r, 3000, 3);
	struct ring_ref a, b, c;
	pid_t pid;
	int st;

	assert_int_equal(ring_take(&t->r, &da, &a), 0);
	assert_int_equal(ring_take(&t->r, &db, &b), 0);
	assert_int_equal(ring_take(&t->r, &dc, &c), 0);
	ring_release(&t->r, &b);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* as if a sender was killed inside release: A marked, both locks
		 * held, tail moved past A only */
		struct ring_chunk *ca = (struct ring_chunk *)(t->r.data + a.offset);

		atomic_store(word_at(&t->r, a.offset), RING_WORD(RING_RELEASED, 0, a.gen));
		atomic_store(&t->r.sp->lock, DEAD_HOLDER << 1);
		atomic_store(&t->r.hdr->lock, DEAD_HOLDER << 1);
		atomic_store(&t->r.sp->tail, a.pos + ca->size);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(ring_bytes_used(&t->r), chunk_bytes(2000) + chunk_bytes(3000));

	ring_release(&t->r, &c); /* walks over B and C, lock or no lock */
	assert_int_equal(ring_bytes_used(&t->r), 0);
	/* producers wait for the lock no longer than they asked to */
	assert_int_equal(ring_reserve(&t->r, 500, 0, &a), -EAGAIN);
	assert_int_equal(ring_reserve(&t->r, 500, 50, &a), -ETIMEDOUT);
}

/* ---- a full ring ---- */

#define FULL_LEN (4096 - RING_CHUNK_HDR) /* chunks of exactly 4K: 16 fill 64K */

/* Fill a 64K ring with published 4K chunks; returns how many fitted. */
static unsigned fill_ring(struct ring *r, struct proto_ring_desc *d, unsigned cap)
{
	unsigned n = 0;
	struct ring_ref ref;
	int ret;

	for (;;) {
		ret = ring_reserve(r, FULL_LEN, 0, &ref);
		if (ret == -EAGAIN)
			break;
		assert_int_equal(ret, 0);
		assert_true(n < cap);
		fill_payload(ref.payload, FULL_LEN, n);
		ring_publishing(r, &ref, 0);
		ring_describe(&ref, 0, &d[n]);
		ring_published(r, &ref);
		n++;
	}
	return n;
}

static void test_full_ring_reserve_without_timeout_is_eagain(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct proto_ring_desc d[32];
	struct ring_ref ref;
	unsigned n = fill_ring(&t->r, d, 32);

	assert_int_equal(n, 16);
	assert_int_equal(ring_bytes_used(&t->r), 64 * KIB);
	assert_int_equal(ring_reserve(&t->r, 0, 0, &ref), -EAGAIN);
	consume(&t->r, &d[0], 0);
	assert_int_equal(ring_reserve(&t->r, FULL_LEN, 0, &ref), 0);
	assert_int_equal(ref.offset, 0);
	assert_int_equal(ring_reserve(&t->r, FULL_LEN, 0, &ref), -EAGAIN);
}

static void test_full_ring_times_out(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct proto_ring_desc d[32];
	struct ring_ref ref;
	uint64_t start, ms;

	assert_int_equal(fill_ring(&t->r, d, 32), 16);
	start = now_ns(CLOCK_MONOTONIC);
	assert_int_equal(ring_reserve(&t->r, FULL_LEN, 100, &ref), -ETIMEDOUT);
	ms = elapsed_ms_since(start);
	assert_true(ms >= 90);
	assert_true(ms < 2000);
	assert_int_equal(atomic_load(&t->r.hdr->waiters), 0);
}

struct waiting_producer {
	struct ring *r;
	int timeout_ms;
	int ret;
	struct ring_ref ref;
	_Atomic bool done;
};

static void *waiting_producer_main(void *arg)
{
	struct waiting_producer *w = arg;

	w->ret = ring_reserve(w->r, FULL_LEN, w->timeout_ms, &w->ref);
	atomic_store(&w->done, true);
	return NULL;
}

/* Join th, failing (rather than hanging) if it does not end within ms. */
static void join_within(pthread_t th, int ms)
{
	struct timespec dl = deadline_after(CLOCK_REALTIME, ms);
	int e = pthread_timedjoin_np(th, NULL, &dl);

	if (e)
		print_error("thread did not finish within %d ms\n", ms);
	assert_int_equal(e, 0);
}

static void test_waiting_producer_is_woken_by_release(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct proto_ring_desc d[32];
	struct waiting_producer w = { .r = &t->r, .timeout_ms = -1, .ret = 1 };
	pthread_t th;

	assert_int_equal(fill_ring(&t->r, d, 32), 16);
	assert_int_equal(pthread_create(&th, NULL, waiting_producer_main, &w), 0);
	usleep(50 * 1000);
	assert_false(atomic_load(&w.done)); /* still waiting for space */
	/* releasing a chunk that is not the oldest frees nothing */
	consume(&t->r, &d[5], 5);
	usleep(20 * 1000);
	assert_false(atomic_load(&w.done));

	consume(&t->r, &d[0], 0);
	join_within(th, 5000);
	assert_int_equal(w.ret, 0);
	assert_int_equal(w.ref.offset, 0);
	assert_int_equal(atomic_load(&t->r.hdr->waiters), 0);
}

static void test_producer_with_timeout_is_woken_before_deadline(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct proto_ring_desc d[32];
	struct waiting_producer w = { .r = &t->r, .timeout_ms = 10000, .ret = 1 };
	uint64_t start;
	pthread_t th;

	assert_int_equal(fill_ring(&t->r, d, 32), 16);
	start = now_ns(CLOCK_MONOTONIC);
	assert_int_equal(pthread_create(&th, NULL, waiting_producer_main, &w), 0);
	usleep(30 * 1000);
	consume(&t->r, &d[0], 0);
	join_within(th, 5000);
	assert_int_equal(w.ret, 0);
	assert_true(elapsed_ms_since(start) < 5000);
}

/* ---- the largest payload ---- */

static void test_max_payload_fits_empty_ring(void **state)
{
	const uint64_t max = 64 * KIB - RING_CHUNK_HDR;
	struct test_ring *t = *state = ring_new(64 * KIB, max, 0);
	struct proto_ring_desc d;

	d = produce(&t->r, max, 1);
	assert_int_equal(d.offset, 0);
	assert_int_equal(ring_bytes_used(&t->r), 64 * KIB);
	consume(&t->r, &d, 1);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

static void test_max_payload_fits_empty_ring_with_head_mid_area(void **state)
{
	const uint64_t max = 64 * KIB - RING_CHUNK_HDR;
	struct test_ring *t = *state = ring_new(64 * KIB, max, 0);
	struct proto_ring_desc d;

	/* move head (and tail) into the middle of the area */
	for (unsigned i = 0; i < 3; i++) {
		d = produce(&t->r, 10000, i);
		consume(&t->r, &d, i);
	}
	assert_int_equal(ring_bytes_used(&t->r), 0);
	assert_true(atomic_load(&t->r.sp->head) % (64 * KIB) != 0);

	d = produce(&t->r, max, 7);
	assert_int_equal(d.offset, 0); /* restarted at 0, no padding needed */
	assert_int_equal(ring_bytes_used(&t->r), 64 * KIB);
	consume(&t->r, &d, 7);
	assert_int_equal(ring_bytes_used(&t->r), 0);
	assert_int_equal(stats_of(&t->r).ring_chunks, 0);

	/* and again, now that head sits at the end of the first wrap */
	d = produce(&t->r, 100, 8);
	consume(&t->r, &d, 8);
	d = produce(&t->r, max, 9);
	consume(&t->r, &d, 9);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

static void test_payload_above_max_is_emsgsize_at_once(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct proto_ring_desc d[32];
	struct ring_ref ref;
	uint64_t start;

	assert_int_equal(ring_reserve(&t->r, 8 * KIB + 1, 0, &ref), -EMSGSIZE);
	assert_int_equal(fill_ring(&t->r, d, 32), 16);
	/* even on a full ring and willing to wait: it can never fit */
	start = now_ns(CLOCK_MONOTONIC);
	assert_int_equal(ring_reserve(&t->r, 8 * KIB + 1, 3000, &ref), -EMSGSIZE);
	assert_true(elapsed_ms_since(start) < 500);
	assert_int_equal(ring_reserve(&t->r, SIZE_MAX, -1, &ref), -EMSGSIZE);
}

/* ---- forged and stale descriptors ---- */

struct forge_fixture {
	struct test_ring *t;
	struct proto_ring_desc real; /* a published chunk of 1000 bytes at 0 */
};

static int setup_forge(void **state)
{
	struct forge_fixture *f = calloc(1, sizeof(*f));

	f->t = ring_new(64 * KIB, 16 * KIB, 0);
	f->real = produce(&f->t->r, 1000, 42);
	*state = f;
	return 0;
}

static int teardown_forge(void **state)
{
	struct forge_fixture *f = *state;

	ring_free(f->t);
	free(f);
	return 0;
}

static void assert_take_fails(struct ring *r, const struct proto_ring_desc *d, int want)
{
	struct ring_ref ref;
	int ret = ring_take(r, d, &ref);

	if (ret != want)
		print_error("ring_take(kind %#x, len %u, offset %llu, gen %llu): %d; wanted %d\n", d->hdr.kind,
		            d->hdr.len, (unsigned long long)d->offset, (unsigned long long)d->gen, ret, want);
	assert_int_equal(ret, want);
}

/* After every forgery the genuine descriptor still takes its chunk. */
static void assert_real_still_takes(struct forge_fixture *f)
{
	consume(&f->t->r, &f->real, 42);
}

static void test_take_rejects_misaligned_offset(void **state)
{
	struct forge_fixture *f = *state;
	struct proto_ring_desc d = f->real;

	d.offset = 32;
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	d.offset = RING_CHUNK_HDR; /* where the payload starts */
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	d.offset = 1;
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	assert_real_still_takes(f);
}

static void test_take_rejects_offset_beyond_area(void **state)
{
	struct forge_fixture *f = *state;
	struct proto_ring_desc d = f->real;

	d.offset = 64 * KIB;
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	d.offset = UINT64_MAX & ~(uint64_t)(RING_ALIGN - 1);
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	d.offset = 1ull << 63;
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	assert_real_still_takes(f);
}

static void test_take_rejects_len_above_max_payload(void **state)
{
	struct forge_fixture *f = *state;
	struct proto_ring_desc d = f->real;

	d.hdr.len = 16 * KIB + 1;
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	d.hdr.len = UINT32_MAX;
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	assert_real_still_takes(f);
}

static void test_take_rejects_chunk_running_past_area_end(void **state)
{
	struct forge_fixture *f = *state;
	struct proto_ring_desc d = f->real;

	d.offset = 64 * KIB - RING_ALIGN;
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	/* one payload byte more than the last alignment unit holds */
	d.hdr.len = RING_ALIGN - RING_CHUNK_HDR + 1;
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	assert_real_still_takes(f);
}

static void test_take_rejects_generation_never_issued(void **state)
{
	struct forge_fixture *f = *state;
	struct proto_ring_desc d = f->real;

	d.gen = 0;
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	d.gen = atomic_load(&f->t->r.sp->next_gen);
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	/* same low 32 bits as the real chunk's word: still never issued */
	d.gen = f->real.gen + (1ull << 32);
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	d.gen = UINT64_MAX;
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	assert_real_still_takes(f);
}

static void test_take_rejects_wrong_kind(void **state)
{
	struct forge_fixture *f = *state;
	struct proto_ring_desc d = f->real;

	d.hdr.kind = PROTO_MSG_INLINE;
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	d.hdr.kind = 0;
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	assert_real_still_takes(f);
}

static void test_take_rejects_right_offset_with_wrong_len(void **state)
{
	struct forge_fixture *f = *state;
	struct proto_ring_desc d = f->real;

	d.hdr.len = 999;
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	d.hdr.len = 1001;
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	d.hdr.len = 0;
	assert_take_fails(&f->t->r, &d, -EBADMSG);
	assert_real_still_takes(f);
}

static void test_take_rejects_offset_inside_a_payload(void **state)
{
	struct forge_fixture *f = *state;
	struct proto_ring_desc d = f->real;

	d.offset = f->real.offset + RING_ALIGN; /* inside the 1000-byte payload */
	assert_int_not_equal(ring_take(&f->t->r, &d, &(struct ring_ref){ 0 }), 0);
	d.offset = f->real.offset + chunk_bytes(1000); /* past head: never written */
	assert_take_fails(&f->t->r, &d, -ESTALE);
	assert_real_still_takes(f);
}

/* A sender's payload holding a whole chunk header at an aligned offset
 * inside it (its magic, a generation that was issued, sealed, with the
 * descriptor's length) is no chunk: a chunk's state is in the control
 * object's table, and the entry there is free. */
static void test_take_rejects_header_forged_inside_a_payload(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct ring_chunk fake = { .size = RING_ALIGN, .len = 10, .magic = RING_CHUNK_MAGIC, .kind = RING_KIND_RAW };
	struct ring_ref ref;
	struct proto_ring_desc d;

	assert_int_equal(ring_reserve(&t->r, 4000, 0, &ref), 0);
	fake.gen = ref.gen;
	fake.pos = ref.pos + RING_ALIGN;
	atomic_store(&fake.sealed, ref.gen);
	memset(ref.payload, 0, 4000);
	memcpy((unsigned char *)ref.payload + RING_ALIGN - RING_CHUNK_HDR, &fake, sizeof(fake));
	ring_publishing(&t->r, &ref, 0);
	ring_published(&t->r, &ref);
	d = (struct proto_ring_desc){ .hdr = { .kind = PROTO_MSG_RING, .len = 10 }, .offset = ref.offset + RING_ALIGN,
		                      .gen = ref.gen };
	assert_take_fails(&t->r, &d, -ESTALE);
	ring_describe(&ref, 0, &d);
	assert_int_equal(ring_take(&t->r, &d, &ref), 0);
	ring_release(&t->r, &ref);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

static void test_taking_twice_is_estale(void **state)
{
	struct forge_fixture *f = *state;
	struct ring_ref ref;

	assert_int_equal(ring_take(&f->t->r, &f->real, &ref), 0);
	assert_take_fails(&f->t->r, &f->real, -ESTALE);
	ring_release(&f->t->r, &ref);
	assert_take_fails(&f->t->r, &f->real, -ESTALE);
	assert_int_equal(ring_bytes_used(&f->t->r), 0);
}

static void test_take_of_unpublished_reservation_is_estale(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct ring_ref ref, got;
	struct proto_ring_desc d;

	assert_int_equal(ring_reserve(&t->r, 100, 0, &ref), 0);
	ring_describe(&ref, 0, &d);
	assert_take_fails(&t->r, &d, -ESTALE);
	ring_publishing(&t->r, &ref, 0);
	assert_int_equal(ring_take(&t->r, &d, &got), 0); /* PUBLISHING is takeable */
	ring_published(&t->r, &ref);                     /* too late: harmless */
	assert_take_fails(&t->r, &d, -ESTALE);
	ring_release(&t->r, &got);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* A reservation's word set by hand (any client can write the state
 * table) to a takeable state, or to QUEUED, while its sender is still
 * writing: its header is not sealed, so no take hands it out. */
static void test_take_refuses_unsealed_chunk_whose_word_was_set_by_hand(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct ring_ref ref, got;
	struct proto_ring_desc d;
	uint64_t words[4];

	assert_int_equal(ring_reserve(&t->r, 1000, 0, &ref), 0);
	fill_payload(ref.payload, 500, 6); /* half written */
	ring_describe(&ref, 0, &d);
	words[0] = RING_WORD(RING_PUBLISHED, 0, ref.gen);
	words[1] = RING_WORD(RING_PUBLISHING, TEST_HOLDER, ref.gen);
	words[2] = RING_WORD(RING_PUBLISHING, 0, ref.gen);
	words[3] = RING_WORD(RING_QUEUED, 0, ref.gen);
	for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
		int ret;

		atomic_store(word_at(&t->r, ref.offset), words[i]);
		ret = ring_take(&t->r, &d, &got);
		if (ret != -EBADMSG && ret != -ESTALE)
			print_error("word %#llx on an unsealed chunk: ring_take %d\n", (unsigned long long)words[i], ret);
		assert_true(ret == -EBADMSG || ret == -ESTALE);
		assert_int_equal(atomic_load(word_at(&t->r, ref.offset)), words[i]); /* not TAKEN */
	}
	/* the sender finishes, seals and publishes: now it is taken, whole */
	atomic_store(word_at(&t->r, ref.offset), RING_WORD(RING_RESERVED, TEST_HOLDER, ref.gen));
	fill_payload(ref.payload, 1000, 6);
	ring_publishing(&t->r, &ref, 0);
	ring_published(&t->r, &ref);
	consume(&t->r, &d, 6);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* The seal of a new chunk starts at 0, whatever bytes an earlier chunk's
 * payload left where the new header's seal lies: here a sender's payload
 * held, by chance or by a sender's design, the very generation the chunk
 * laid over it later gets.  Set by hand to PUBLISHED while its sender
 * writes, that chunk must not be taken. */
static void test_seal_left_in_old_payload_does_not_seal_a_new_chunk(void **state)
{
	const uint64_t ds = 64 * KIB;
	struct test_ring *t = *state = ring_new(ds, ds - RING_CHUNK_HDR, 0);
	const size_t at = RING_ALIGN + offsetof(struct ring_chunk, sealed) - RING_CHUNK_HDR;
	uint64_t next = atomic_load(&t->r.sp->next_gen);
	struct ring_ref p, x, ref, got;
	struct proto_ring_desc d;
	uint64_t future = next + 3; /* p, x, s come first */
	int ret;

	/* p at 0: its payload covers where a header at RING_ALIGN will lie */
	assert_int_equal(ring_reserve(&t->r, 1000, 0, &p), 0);
	assert_int_equal(p.offset, 0);
	memset(p.payload, 0, 1000);
	memcpy((unsigned char *)p.payload + at, &future, sizeof(future));
	ring_publishing(&t->r, &p, 0);
	ring_describe(&p, 0, &d);
	ring_published(&t->r, &p);
	assert_int_equal(ring_take(&t->r, &d, &got), 0);
	ring_release(&t->r, &got);
	/* x fills the rest of the area; s, the smallest chunk, takes 0 */
	assert_int_equal(ring_reserve(&t->r, ds - chunk_bytes(1000) - RING_CHUNK_HDR, 0, &x), 0);
	ring_cancel(&t->r, &x);
	d = produce(&t->r, 0, 1);
	assert_int_equal(d.offset, 0);
	consume(&t->r, &d, 1);

	assert_int_equal(ring_reserve(&t->r, 100, 0, &ref), 0);
	assert_int_equal(ref.offset, RING_ALIGN);
	assert_int_equal(ref.gen, future);
	ring_describe(&ref, 0, &d);
	atomic_store(word_at(&t->r, ref.offset), RING_WORD(RING_PUBLISHED, 0, ref.gen));
	ret = ring_take(&t->r, &d, &got);
	if (ret == 0)
		print_error("a reservation at %llu was taken before its sender sealed it (seal %llu left from an "
		            "earlier payload)\n",
		            (unsigned long long)ref.offset,
		            (unsigned long long)atomic_load(&((struct ring_chunk *)(t->r.data + ref.offset))->sealed));
	assert_true(ret == -EBADMSG || ret == -ESTALE);
}

/* ring_published() comes after the descriptor is on the mq, so a consumer
 * may have taken and released the chunk already, and the tail passed it,
 * and a new chunk's payload may cover where its header was.  Whatever
 * that payload and A's old entry in the state table hold, the late call
 * must write into neither. */
static void test_late_published_leaves_reused_space_alone(void **state)
{
	const uint64_t max = 64 * KIB - RING_CHUNK_HDR;
	struct test_ring *t = *state = ring_new(64 * KIB, max, 0);
	const size_t table = 64 * KIB / RING_ALIGN * sizeof(struct ring_cstate);
	struct proto_ring_desc d;
	struct ring_ref a, taken, b;
	unsigned char *copy = malloc(max), *states = malloc(table);
	uint64_t word;
	size_t at;

	assert_non_null(copy);
	assert_non_null(states);
	d = produce(&t->r, FULL_LEN, 0); /* move head to offset 4096 */
	consume(&t->r, &d, 0);

	/* producer A: publishing, descriptor sent... */
	assert_int_equal(ring_reserve(&t->r, 100, 0, &a), 0);
	assert_int_equal(a.offset, 4096);
	fill_payload(a.payload, 100, 1);
	ring_publishing(&t->r, &a, 0);
	ring_describe(&a, 0, &d);
	/* ...a consumer takes and releases it at once: the ring is empty */
	assert_int_equal(ring_take(&t->r, &d, &taken), 0);
	ring_release(&t->r, &taken);
	assert_int_equal(ring_bytes_used(&t->r), 0);

	/* producer B's payload now covers A's old header, and happens to hold
	 * the very word A's chunk had; and A's old entry in the state table,
	 * in the middle of B now, holds it too (a client may write there) */
	assert_int_equal(ring_reserve(&t->r, max, 0, &b), 0);
	assert_int_equal(b.offset, 0);
	fill_payload(b.payload, max, 2);
	at = a.offset - b.offset - RING_CHUNK_HDR;
	word = RING_WORD(RING_PUBLISHING, TEST_HOLDER, a.gen);
	memcpy((unsigned char *)b.payload + at, &word, sizeof(word));
	atomic_store(word_at(&t->r, a.offset), word);
	memcpy(copy, b.payload, max);
	memcpy(states, t->r.states, table);

	ring_published(&t->r, &a); /* producer A's mq_send returns */

	assert_memory_equal(b.payload, copy, max);
	assert_memory_equal(t->r.states, states, table);
	free(states);
	free(copy);
}

/* A descriptor whose chunk was released and whose space now holds a newer
 * chunk of the same offset and length is stale, and does not take the
 * newer chunk. */
static void test_descriptor_of_reused_chunk_is_estale(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct proto_ring_desc first, d;
	unsigned i;

	first = produce(&t->r, FULL_LEN, 0);
	assert_int_equal(first.offset, 0);
	consume(&t->r, &first, 0);
	for (i = 1; i < 16; i++) {
		d = produce(&t->r, FULL_LEN, i);
		consume(&t->r, &d, i);
	}
	d = produce(&t->r, FULL_LEN, 16);
	assert_int_equal(d.offset, first.offset);
	assert_int_equal(d.hdr.len, first.hdr.len);
	assert_true(d.gen != first.gen);

	assert_take_fails(&t->r, &first, -ESTALE);
	consume(&t->r, &d, 16);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* Random descriptors: ring_take never crashes and succeeds exactly for
 * the descriptor of a chunk that is published. */
#define FUZZ_LIVE 8
#define FUZZ_RETIRED 64

struct fuzz_model {
	struct proto_ring_desc live[FUZZ_LIVE];
	uint64_t seed[FUZZ_LIVE];
	struct proto_ring_desc retired[FUZZ_RETIRED];
	unsigned nretired;
	uint64_t next_seed;
};

static void fuzz_publish(struct ring *r, struct fuzz_model *m, unsigned i)
{
	size_t len = 1 + (size_t)rand() % 2000;

	m->seed[i] = m->next_seed++;
	m->live[i] = produce(r, len, m->seed[i]);
}

static int fuzz_live_index(const struct fuzz_model *m, const struct proto_ring_desc *d)
{
	if (d->hdr.kind != PROTO_MSG_RING)
		return -1;
	for (int i = 0; i < FUZZ_LIVE; i++)
		if (m->live[i].offset == d->offset && m->live[i].gen == d->gen && m->live[i].hdr.len == d->hdr.len)
			return i;
	return -1;
}

static void fuzz_descriptor(struct fuzz_model *m, uint64_t next_gen, unsigned round, struct proto_ring_desc *d)
{
	unsigned char *b = (unsigned char *)d;

	switch (round % 5) {
	case 0: /* bytes */
		for (size_t i = 0; i < sizeof(*d); i++)
			b[i] = (unsigned char)rand();
		break;
	case 1: /* plausible fields */
		memset(d, 0, sizeof(*d));
		d->hdr.kind = rand() % 8 ? PROTO_MSG_RING : (uint8_t)rand();
		d->hdr.flags = (uint8_t)rand();
		d->hdr.len = (uint32_t)rand() % 2100;
		d->offset = (uint64_t)(rand() % (64 * KIB / RING_ALIGN + 4)) * RING_ALIGN + (rand() % 16 ? 0 : 8);
		d->gen = (uint64_t)rand() % (next_gen + 3);
		break;
	case 2: /* a live descriptor with one field changed */
		*d = m->live[rand() % FUZZ_LIVE];
		switch (rand() % 4) {
		case 0:
			d->offset += (uint64_t)(rand() % 9 - 4) * RING_ALIGN;
			break;
		case 1:
			d->gen += (uint64_t)(rand() % 7 - 3);
			break;
		case 2:
			d->hdr.len += (uint32_t)(rand() % 129 - 64);
			break;
		default:
			d->hdr.kind = (uint8_t)rand();
			break;
		}
		break;
	case 3: /* a retired one */
		if (m->nretired) {
			*d = m->retired[(unsigned)rand() % MIN(m->nretired, FUZZ_RETIRED)];
			break;
		}
		/* fall through */
	default: /* a live one, as is */
		*d = m->live[rand() % FUZZ_LIVE];
		d->hdr.flags = (uint8_t)rand(); /* flags do not matter */
		break;
	}
}

static void test_random_descriptors_never_take_wrong_chunk(void **state)
{
	struct test_ring *t = *state = ring_new(256 * KIB, 8 * KIB, 0);
	struct fuzz_model m;
	unsigned taken = 0, rejected = 0;

	srand(20240611);
	memset(&m, 0, sizeof(m));
	for (unsigned i = 0; i < FUZZ_LIVE; i++)
		fuzz_publish(&t->r, &m, i);

	for (unsigned round = 0; round < 100000; round++) {
		struct proto_ring_desc d;
		struct ring_ref ref;
		int live, ret;

		fuzz_descriptor(&m, atomic_load(&t->r.sp->next_gen), round, &d);
		live = fuzz_live_index(&m, &d);
		ret = ring_take(&t->r, &d, &ref);
		if (ret != 0) {
			if (ret != -EBADMSG && ret != -ESTALE)
				print_error("ring_take: unexpected %d\n", ret);
			assert_true(ret == -EBADMSG || ret == -ESTALE);
			if (live >= 0)
				print_error("round %u: the live chunk at %llu gen %llu refused: %d\n", round,
				            (unsigned long long)d.offset, (unsigned long long)d.gen, ret);
			assert_true(live < 0);
			rejected++;
			continue;
		}
		if (live < 0)
			print_error("round %u: took a chunk for a forged descriptor (offset %llu gen %llu len %u)\n",
			            round, (unsigned long long)d.offset, (unsigned long long)d.gen, d.hdr.len);
		assert_true(live >= 0);
		assert_int_equal(ref.len, d.hdr.len);
		assert_true(payload_matches(ref.payload, ref.len, m.seed[live]));
		ring_release(&t->r, &ref);
		m.retired[m.nretired++ % FUZZ_RETIRED] = m.live[live];
		fuzz_publish(&t->r, &m, (unsigned)live);
		taken++;
	}
	assert_true(taken > 1000);
	assert_true(rejected > 50000);
	for (unsigned i = 0; i < FUZZ_LIVE; i++)
		consume(&t->r, &m.live[i], m.seed[i]);
	assert_int_equal(ring_bytes_used(&t->r), 0);
	assert_int_equal(atomic_load(&t->r.hdr->corrupt), 0);
}

/* ---- loans ---- */

static void test_loan_ref_finds_reservation_from_payload_pointer(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct ring_ref a, b, ref;

	assert_int_equal(ring_reserve(&t->r, 300, 0, &a), 0);
	assert_int_equal(ring_reserve(&t->r, 700, 0, &b), 0);
	assert_int_equal(ring_loan_ref(&t->r, b.payload, 700, &ref), 0);
	assert_int_equal(ref.offset, b.offset);
	assert_int_equal(ref.gen, b.gen);
	assert_int_equal(ref.len, 700);
	assert_ptr_equal(ref.payload, b.payload);
	assert_int_equal(ring_loan_ref(&t->r, a.payload, 300, &ref), 0);
	assert_int_equal(ref.offset, a.offset);
	assert_int_equal(ref.gen, a.gen);
}

static void test_loan_ref_rejects_pointer_not_at_a_reservation(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct ring_ref a, ref;
	struct proto_ring_desc d;
	char outside[64];

	assert_int_equal(ring_reserve(&t->r, 1000, 0, &a), 0);
	assert_int_equal(ring_loan_ref(&t->r, (char *)a.payload + 1, 10, &ref), -EINVAL);
	assert_int_equal(ring_loan_ref(&t->r, (char *)a.payload + RING_CHUNK_HDR, 10, &ref), -EINVAL);
	assert_int_equal(ring_loan_ref(&t->r, (char *)a.payload + RING_ALIGN, 10, &ref), -EINVAL);
	assert_int_equal(ring_loan_ref(&t->r, (char *)a.payload - RING_ALIGN, 10, &ref), -EINVAL);
	assert_int_equal(ring_loan_ref(&t->r, outside, 10, &ref), -EINVAL);
	assert_int_equal(ring_loan_ref(&t->r, t->r.data + 64 * KIB, 10, &ref), -EINVAL);
	assert_int_equal(ring_loan_ref(&t->r, NULL, 10, &ref), -EINVAL);
	/* a published chunk is no longer a loan */
	d = produce(&t->r, 100, 3);
	assert_int_equal(ring_loan_ref(&t->r, t->r.data + d.offset + RING_CHUNK_HDR, 10, &ref), -EINVAL);
}

static void test_loan_ref_rejects_len_above_reservation(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct ring_ref a, b, ref;

	assert_int_equal(ring_reserve(&t->r, 128, 0, &a), 0);
	assert_int_equal(ring_loan_ref(&t->r, a.payload, 129, &ref), -EMSGSIZE);
	assert_int_equal(ring_loan_ref(&t->r, a.payload, 128, &ref), 0);
	/* not a multiple of the alignment: the chunk has room for more, but
	 * only 100 bytes were loaned */
	assert_int_equal(ring_reserve(&t->r, 100, 0, &b), 0);
	assert_int_equal(ring_loan_ref(&t->r, b.payload, 101, &ref), -EMSGSIZE);
	assert_int_equal(ring_loan_ref(&t->r, b.payload, 100, &ref), 0);
}

static void test_loan_published_shorter_is_taken_with_shorter_len(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct ring_ref loan, ref, got;
	struct proto_ring_desc d;

	assert_int_equal(ring_reserve(&t->r, 5000, 0, &loan), 0);
	fill_payload(loan.payload, 1234, 77);
	assert_int_equal(ring_loan_ref(&t->r, loan.payload, 1234, &ref), 0);
	ring_publishing(&t->r, &ref, 0);
	ring_describe(&ref, 0, &d);
	ring_published(&t->r, &ref);
	assert_int_equal(d.hdr.len, 1234);

	assert_int_equal(ring_take(&t->r, &d, &got), 0);
	assert_int_equal(got.len, 1234);
	assert_true(payload_matches(got.payload, 1234, 77));
	ring_release(&t->r, &got);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* ---- receive slots ---- */

static void test_slot_claims_are_distinct_until_exhausted(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	bool used[RING_SLOTS] = { false };
	int idx;

	for (unsigned i = 0; i < RING_SLOTS; i++) {
		idx = ring_slot_claim(&t->r);
		assert_in_range(idx, 0, RING_SLOTS - 1);
		assert_false(used[idx]);
		used[idx] = true;
		assert_int_equal(atomic_load(&ring_slot_at(&t->r, (unsigned)idx)->owner), TEST_HOLDER);
	}
	assert_int_equal(ring_slot_claim(&t->r), -EUSERS);
	t->r.self = 12345;
	assert_int_equal(ring_slot_claim(&t->r), -EUSERS);

	ring_slot_free(&t->r, 77);
	assert_int_equal(atomic_load(&ring_slot_at(&t->r, 77)->owner), 0);
	t->r.self = 999;
	assert_int_equal(ring_slot_claim(&t->r), 77);
	assert_int_equal(atomic_load(&ring_slot_at(&t->r, 77)->owner), 999);
	assert_int_equal(ring_slot_claim(&t->r), -EUSERS);
}

/* The control object holds the header, the slots (an owner each, a
 * message no more) and then one chunk state per RING_ALIGN bytes of the
 * data area, every one of them inside the mapping. */
static void test_slots_and_chunk_states_fit_the_control_object(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	unsigned char *first = (unsigned char *)ring_slot_at(&t->r, 0);
	unsigned char *second = (unsigned char *)ring_slot_at(&t->r, 1);
	unsigned char *end = (unsigned char *)t->mem + t->len;
	const unsigned nstates = 64 * KIB / RING_ALIGN;

	assert_int_equal(t->r.slot_size, sizeof(struct ring_slot));
	assert_int_equal(second - first, sizeof(struct ring_slot));
	assert_true(first >= (unsigned char *)t->mem + RING_HDR_SIZE);
	assert_true((unsigned char *)ring_slot_at(&t->r, RING_SLOTS - 1) + sizeof(struct ring_slot) <=
	            (unsigned char *)t->r.states);
	assert_true((unsigned char *)(t->r.states + nstates) <= end);
	/* the first and the last alignment unit of the data area have the
	 * first and the last state */
	assert_ptr_equal(ring_cs(&t->r, (const struct ring_chunk *)t->r.data), &t->r.states[0]);
	assert_ptr_equal(ring_cs(&t->r, (const struct ring_chunk *)(t->r.data + 64 * KIB - RING_ALIGN)),
	                 &t->r.states[nstates - 1]);
}

/* ---- reclaim ---- */

struct reclaim_ctx {
	bool dead;        /* whether TEST_HOLDER counts as dead (DEAD_HOLDER always does) */
	int resend_ret;   /* what resend returns */
	unsigned resends; /* calls to resend */
	unsigned window;  /* descriptors on the mq: an accepted resend adds one */
	unsigned char last[512];
	size_t last_len;
	unsigned last_prio;
};

static bool is_dead_if_self(uint32_t holder, void *arg)
{
	struct reclaim_ctx *c = arg;

	return (c->dead && holder == TEST_HOLDER) || holder == DEAD_HOLDER;
}

static int record_resend(const void *msg, size_t len, unsigned prio, void *arg)
{
	struct reclaim_ctx *c = arg;

	c->resends++;
	assert_true(len <= sizeof(c->last));
	memcpy(c->last, msg, len);
	c->last_len = len;
	c->last_prio = prio;
	c->window += c->resend_ret == 0;
	return c->resend_ret;
}

static bool window_is_empty(void *arg)
{
	return ((struct reclaim_ctx *)arg)->window == 0;
}

/* The daemon's periodic sweep: it asks whether the window is empty. */
static struct ring_reclaim_ops sweep_ops(struct reclaim_ctx *c)
{
	return (struct ring_reclaim_ops){
		.is_dead = is_dead_if_self, .resend = record_resend, .window_empty = window_is_empty, .ctx = c
	};
}

static int reclaim(struct ring *r, struct reclaim_ctx *c)
{
	const struct ring_reclaim_ops ops = sweep_ops(c);
	const char *why = NULL;

	return ring_reclaim(r, &ops, &why);
}

/* The last resend was the descriptor of d, flagged RESENT. */
static struct proto_ring_desc assert_resent_descriptor_of(const struct reclaim_ctx *c,
                                                          const struct proto_ring_desc *d)
{
	struct proto_ring_desc got;

	assert_int_equal(c->last_len, sizeof(struct proto_ring_desc));
	memcpy(&got, c->last, sizeof(got));
	assert_int_equal(proto_msg_check(&got, sizeof(got)), PROTO_MSG_RING);
	assert_int_equal(got.hdr.flags & PROTO_MSGF_RESENT, PROTO_MSGF_RESENT);
	assert_int_equal(got.offset, d->offset);
	assert_int_equal(got.gen, d->gen);
	assert_int_equal(got.hdr.len, d->hdr.len);
	return got;
}

/* A receiver takes the resent descriptor off the window. */
static struct proto_ring_desc take_resent_off_window(struct reclaim_ctx *c, const struct proto_ring_desc *d)
{
	assert_true(c->window > 0);
	c->window--;
	return assert_resent_descriptor_of(c, d);
}

static void test_reclaim_leaves_live_clients_alone(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct reclaim_ctx c = { .dead = false, .window = 1 };
	struct ring_ref reserved, taken;
	struct proto_ring_desc d = produce(&t->r, 100, 1);
	struct proto_ring_desc waiting = produce(&t->r, 300, 2); /* its descriptor is on the window */
	uint64_t used;
	int idx;

	assert_int_equal(ring_take(&t->r, &d, &taken), 0);
	assert_int_equal(ring_reserve(&t->r, 200, 0, &reserved), 0);
	idx = ring_slot_claim(&t->r);
	assert_true(idx >= 0);
	used = ring_bytes_used(&t->r);

	for (unsigned sweep = 0; sweep < 3; sweep++)
		assert_int_equal(reclaim(&t->r, &c), 0);
	assert_int_equal(c.resends, 0);
	assert_int_equal(ring_bytes_used(&t->r), used);
	assert_int_equal(atomic_load(&ring_slot_at(&t->r, (unsigned)idx)->owner), TEST_HOLDER);
	assert_true(payload_matches(taken.payload, 100, 1));
	consume(&t->r, &waiting, 2);
}

/* ---- hostile shared memory ---- */

/* waiters is shared memory: 0xffffffff made a release post a semaphore
 * 2^31 times.  A release now moves space_seq once and wakes at most
 * RING_WAKE_MAX, and garbage in the futex words aborts nobody. */
static void test_forged_waiters_make_a_bounded_wake_up(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct proto_ring_desc d = produce(&t->r, 1000, 1);
	uint64_t start = now_ns(CLOCK_MONOTONIC);
	struct ring_ref ref;
	uint32_t seq;

	atomic_store(&t->r.hdr->waiters, UINT32_MAX);
	atomic_store(&t->r.hdr->space_seq, UINT32_MAX);
	seq = atomic_load(&t->r.hdr->space_seq);
	consume(&t->r, &d, 1);
	assert_int_equal(atomic_load(&t->r.hdr->space_seq), seq + 1);
	assert_true(elapsed_ms_since(start) < 1000);
	/* a producer still gets room, and a full ring still times out */
	assert_int_equal(ring_reserve(&t->r, 1000, 0, &ref), 0);
	ring_cancel(&t->r, &ref);
}

/* Forged head and tail (in the senders' page): the daemon reports
 * corruption instead of walking (or looping), and producers get
 * -EBADMSG. */
static void test_forged_positions_are_reported_not_walked(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct reclaim_ctx c = { .dead = true };
	struct ring_ref ref;
	const char *why = NULL;
	const struct ring_reclaim_ops ops = sweep_ops(&c);
	static const uint64_t forged[][2] = {
		{ 1ull << 62, 0 },                                /* head - tail far beyond the ring */
		{ 0, 4096 },                                      /* tail beyond head */
		{ 4096 + 8, 0 },                                  /* not on a chunk boundary */
		{ 4096 + RING_CHUNK_HDR, 0 },                     /* nor is a header's length */
		{ 64 * KIB + RING_ALIGN, 0 },                     /* one unit more than the ring */
		{ UINT64_MAX - (RING_ALIGN - 1), RING_ALIGN },    /* near the top of the range */
	};

	produce(&t->r, 1000, 1);
	for (size_t i = 0; i < ARRAY_SIZE(forged); i++) {
		uint64_t start = now_ns(CLOCK_MONOTONIC);

		atomic_store(&t->r.sp->head, forged[i][0]);
		atomic_store(&t->r.sp->tail, forged[i][1]);
		assert_int_equal(ring_reclaim(&t->r, &ops, &why), -EBADMSG);
		assert_non_null(why);
		assert_int_equal(ring_reserve(&t->r, 100, 0, &ref), -EBADMSG);
		assert_true(elapsed_ms_since(start) < 1000);
	}
}

/* A header whose fixed fields a client overwrote (zeroed, say) is
 * corruption for the daemon. */
static void test_overwritten_header_is_reported(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct reclaim_ctx c = { .dead = false };
	const char *why = NULL;
	const struct ring_reclaim_ops ops = sweep_ops(&c);

	assert_true(ring_reclaim(&t->r, &ops, &why) >= 0);
	t->r.hdr->data_size *= 2;
	assert_int_equal(ring_reclaim(&t->r, &ops, &why), -EBADMSG);
	assert_non_null(why);
	t->r.hdr->data_size /= 2;
	assert_true(ring_reclaim(&t->r, &ops, &why) >= 0);
	t->r.hdr->states_offset += RING_HDR_SIZE;
	assert_int_equal(ring_reclaim(&t->r, &ops, &why), -EBADMSG);
	t->r.hdr->states_offset -= RING_HDR_SIZE;
	assert_true(ring_reclaim(&t->r, &ops, &why) >= 0);
	memset(t->r.hdr, 0, offsetof(struct ring_hdr, lock));
	assert_int_equal(ring_reclaim(&t->r, &ops, &why), -EBADMSG);
}

/* A chunk header with an impossible size between tail and head is
 * corruption for the daemon, and stops a release's walk at once. */
static void test_forged_chunk_size_is_reported_not_walked(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct reclaim_ctx c = { .dead = false };
	struct proto_ring_desc d1 = produce(&t->r, 1000, 1);
	struct proto_ring_desc d2 = produce(&t->r, 1000, 2);
	/* RING_CHUNK_HDR: a header alone is no chunk, chunks are RING_ALIGN */
	static const uint64_t sizes[] = { 0, 1, 63, RING_CHUNK_HDR, 65, RING_ALIGN - 1, RING_ALIGN + 1,
		                          1ull << 40, UINT64_MAX };
	struct ring_chunk *c1 = (struct ring_chunk *)(t->r.data + d1.offset);
	const char *why = NULL;
	const struct ring_reclaim_ops ops = sweep_ops(&c);

	struct ring_ref ref;
	uint64_t real = c1->size;

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		c1->size = sizes[i];
		assert_int_equal(ring_reclaim(&t->r, &ops, &why), -EBADMSG);
		/* nor does a consumer take a chunk whose header lies */
		if (sizes[i] < chunk_bytes(1000))
			assert_int_equal(ring_take(&t->r, &d1, &ref), -EBADMSG);
	}
	/* a consumer releasing the first chunk does not walk past the lie */
	c1->size = real;
	assert_int_equal(ring_take(&t->r, &d1, &ref), 0);
	c1->size = 0;
	ring_release(&t->r, &ref);
	assert_int_equal(atomic_load(&t->r.sp->tail), 0);
	assert_int_equal(atomic_load(&t->r.hdr->corrupt), 1);
	consume(&t->r, &d2, 2);
}

/* Chunk words scribbled in the state table (any client can write it):
 * a take never hands out anything but what a sender wrote and sealed. */
static void test_scribbled_chunk_words_take_nothing_unsealed(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct proto_ring_desc d = produce(&t->r, 1000, 1);
	struct ring_ref loan, ref;
	struct proto_ring_desc dl;
	uint32_t rnd = 4242;
	unsigned took = 0;

	assert_int_equal(ring_reserve(&t->r, 500, 0, &loan), 0); /* written, not sealed */
	ring_describe(&loan, 0, &dl);
	for (unsigned i = 0; i < 2000; i++) {
		uint64_t off = (uint64_t)(rand_r(&rnd) % (64 * KIB / RING_ALIGN)) * RING_ALIGN;
		uint64_t gen = rand_r(&rnd) % 2 ? loan.gen : d.gen;
		uint64_t w = rand_r(&rnd) % 4 ? RING_WORD(rand_r(&rnd) % 9, rand_r(&rnd) % 3 ? 0 : TEST_HOLDER, gen)
		                              : ((uint64_t)rand_r(&rnd) << 32 | (uint64_t)rand_r(&rnd));
		const struct proto_ring_desc *which = rand_r(&rnd) % 2 ? &dl : &d;
		int ret;

		atomic_store(word_at(&t->r, off), w);
		ret = ring_take(&t->r, which, &ref);
		assert_true(ret == 0 || ret == -EBADMSG || ret == -ESTALE);
		if (ret == 0) {
			/* only the sealed chunk, intact */
			assert_ptr_equal(which, &d);
			assert_true(payload_matches(ref.payload, 1000, 1));
			atomic_store(word_at(&t->r, d.offset), RING_WORD(RING_PUBLISHED, 0, d.gen));
			took++;
		}
		atomic_store(word_at(&t->r, off), 0);
		atomic_store(word_at(&t->r, d.offset), RING_WORD(RING_PUBLISHED, 0, d.gen));
		atomic_store(word_at(&t->r, loan.offset), RING_WORD(RING_RESERVED, TEST_HOLDER, loan.gen));
	}
	assert_true(took > 0);
	/* the loan, once sealed and published, is taken whole */
	fill_payload(loan.payload, 500, 3);
	ring_publishing(&t->r, &loan, 0);
	ring_published(&t->r, &loan);
	consume(&t->r, &dl, 3);
	consume(&t->r, &d, 1);
}

/* The daemon breaks either lock when its holder is dead (the senders'
 * lock of a dead sender, the shared lock of a dead sender or receiver),
 * and a producer waiting for them then gets them. */
static void test_reclaim_breaks_lock_of_dead_holder(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct reclaim_ctx c = { .dead = false };
	struct ring_ref ref;

	for (unsigned which = 1; which <= 3; which++) {
		if (which & 1)
			atomic_store(&t->r.sp->lock, (DEAD_HOLDER << 1) | 1);
		if (which & 2)
			atomic_store(&t->r.hdr->lock, (DEAD_HOLDER << 1) | 1);
		assert_int_equal(ring_reserve(&t->r, 500, 0, &ref), -EAGAIN);
		assert_true(reclaim(&t->r, &c) >= 0);
		assert_int_equal(atomic_load(&t->r.sp->lock), 0);
		assert_int_equal(atomic_load(&t->r.hdr->lock), 0);
		assert_int_equal(ring_reserve(&t->r, 500, 0, &ref), 0);
		ring_cancel(&t->r, &ref);
		assert_int_equal(ring_bytes_used(&t->r), 0);
	}
}

/* A live holder's locks are left alone. */
static void test_reclaim_leaves_lock_of_live_holder(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct reclaim_ctx c = { .dead = false };

	atomic_store(&t->r.sp->lock, 31337u << 1);
	atomic_store(&t->r.hdr->lock, 31337u << 1);
	assert_true(reclaim(&t->r, &c) >= 0);
	assert_int_equal(atomic_load(&t->r.sp->lock), 31337u << 1);
	assert_int_equal(atomic_load(&t->r.hdr->lock), 31337u << 1);
}

/* A producer asleep on a lock that is free: the unlock's wake-up went to
 * a waiter killed before it took the lock (here: the word is cleared
 * without a wake-up).  The daemon's next walk wakes it, long before its
 * own deadline. */
static void test_reclaim_wakes_waiter_whose_wake_up_was_lost(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct reclaim_ctx c = { .dead = false };

	for (unsigned which = 0; which < 2; which++) {
		_Atomic uint32_t *word = which ? &t->r.hdr->lock : &t->r.sp->lock;
		struct waiting_producer w = { .r = &t->r, .timeout_ms = 20000, .ret = 1 };
		uint64_t start;
		pthread_t th;

		atomic_store(word, 31337u << 1); /* a live holder */
		assert_int_equal(pthread_create(&th, NULL, waiting_producer_main, &w), 0);
		while (atomic_load(word) != ((31337u << 1) | 1)) /* it waits, and says so */
			usleep(1000);
		usleep(20 * 1000); /* asleep in the kernel */
		atomic_store(word, 0); /* the unlock whose wake-up is lost */
		usleep(100 * 1000);
		assert_false(atomic_load(&w.done)); /* nobody woke it */
		start = now_ns(CLOCK_MONOTONIC);
		assert_true(reclaim(&t->r, &c) >= 0);
		join_within(th, 2000);
		assert_true(elapsed_ms_since(start) < 2000);
		assert_int_equal(w.ret, 0);
		ring_cancel(&t->r, &w.ref);
	}
}

static void test_reclaim_frees_reservation_of_dead_producer(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct reclaim_ctx c = { .dead = true };
	struct ring_ref ref;
	ipcq_stats st;

	assert_int_equal(ring_reserve(&t->r, 1000, 0, &ref), 0);
	assert_int_equal(reclaim(&t->r, &c), 1);
	assert_int_equal(c.resends, 0);
	st = stats_of(&t->r);
	assert_int_equal(st.reclaimed, 1);
	assert_int_equal(st.ring_used, 0);
	assert_int_equal(st.ring_chunks, 0);
	/* nothing left to do on the next sweep */
	assert_int_equal(reclaim(&t->r, &c), 0);
}

static void test_reclaim_drops_taken_chunk_at_most_once(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct reclaim_ctx c = { .dead = true };
	struct proto_ring_desc d = produce(&t->r, 1000, 1);
	struct ring_ref ref;
	ipcq_stats st;

	assert_int_equal(ring_take(&t->r, &d, &ref), 0);
	assert_int_equal(reclaim(&t->r, &c), 1);
	assert_int_equal(c.resends, 0);
	st = stats_of(&t->r);
	assert_int_equal(st.dropped, 1);
	assert_int_equal(st.redelivered, 0);
	assert_int_equal(st.ring_used, 0);
	assert_take_fails(&t->r, &d, -ESTALE);
}

static void test_reclaim_redelivers_taken_chunk_at_least_once(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct reclaim_ctx c = { .dead = true };
	struct proto_ring_desc d = produce(&t->r, 1000, 7), again;
	struct ring_ref ref;
	ipcq_stats st;

	assert_int_equal(ring_take(&t->r, &d, &ref), 0);
	assert_int_equal(reclaim(&t->r, &c), 1);
	assert_int_equal(c.resends, 1);
	assert_int_equal(c.last_prio, 7); /* redelivered at its own priority */
	assert_resent_descriptor_of(&c, &d);
	st = stats_of(&t->r);
	assert_int_equal(st.redelivered, 1);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.ring_used, chunk_bytes(1000));

	/* published again, its descriptor on the window: sweeps leave it
	 * alone, a consumer takes it */
	assert_int_equal(reclaim(&t->r, &c), 0);
	assert_int_equal(reclaim(&t->r, &c), 0);
	assert_int_equal(c.resends, 1);
	again = take_resent_off_window(&c, &d);
	consume(&t->r, &again, 7);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

static void test_reclaim_resends_chunk_of_producer_dead_while_publishing(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct reclaim_ctx c = { .dead = true };
	struct proto_ring_desc d, again;
	struct ring_ref ref;

	assert_int_equal(ring_reserve(&t->r, 3000, 0, &ref), 0);
	fill_payload(ref.payload, 3000, 9);
	ring_publishing(&t->r, &ref, 0);
	ring_describe(&ref, 0, &d);
	/* dies here: the descriptor may or may not be on the mq */

	assert_int_equal(reclaim(&t->r, &c), 1);
	assert_int_equal(c.resends, 1);
	again = take_resent_off_window(&c, &d);
	assert_int_equal(stats_of(&t->r).reclaimed, 1);
	consume(&t->r, &again, 9);
	/* the copy that did make it to the mq is now a stale duplicate */
	assert_take_fails(&t->r, &d, -ESTALE);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* ---- leases that run out ---- */

#define OTHER_HOLDER 6161u /* a second live receiver */

/* The daemon's lease bookkeeping (daemon/lease.c) stands aside: the sweep
 * asks it about each live holder's TAKEN chunk, and it answers expired. */
struct lease_ctx {
	struct reclaim_ctx rc; /* first: the sweep's other callbacks take it */
	bool expired;          /* the answer to every lease asked about */
	bool move;             /* ...or move it aside, if its holder allows */
	unsigned asked;
	bool aside;            /* what the last ask said of the holder's leave */
	unsigned moves;        /* ops->move_aside calls, and the last one's figures */
	uint32_t moved_holder;
	uint64_t moved_from[2];
	unsigned moved_prio, moved_deliveries;
	unsigned char moved_bytes[32 * 1024];
	size_t moved_len;
	bool comes_back;       /* the holder stops the move while the daemon keeps the message */
	struct ring *holder;   /* its view, for that */
	unsigned unmoves;
	uint64_t offset, word; /* the last lease asked about */
	unsigned deliveries;
	unsigned begins, ends;
	bool whole;            /* what the last walk_end said */
	unsigned taken_back;
};

static void lease_walk_begin_rec(void *arg)
{
	((struct lease_ctx *)arg)->begins++;
}

static int lease_answer(uint64_t offset, uint64_t word, unsigned deliveries, bool aside, void *arg)
{
	struct lease_ctx *l = arg;

	l->asked++;
	l->offset = offset;
	l->word = word;
	l->deliveries = deliveries;
	l->aside = aside;
	if (l->expired)
		return RING_LEASE_EXPIRED;
	return l->move && aside ? RING_LEASE_MOVE : RING_LEASE_KEEP;
}

static int move_rec(uint32_t holder, uint64_t offset, uint64_t gen, const struct ring_recview *msg, unsigned prio,
                    unsigned deliveries, uint64_t expires, void *arg)
{
	struct lease_ctx *l = arg;

	(void)expires;
	l->moves++;
	l->moved_holder = holder;
	l->moved_from[0] = offset;
	l->moved_from[1] = gen;
	l->moved_prio = prio;
	l->moved_deliveries = deliveries;
	assert_true(msg->len <= sizeof(l->moved_bytes));
	memcpy(l->moved_bytes, msg->data, msg->len);
	l->moved_len = msg->len;
	if (l->comes_back)
		assert_false(ring_stop_aside(l->holder, offset, gen)); /* MOVING: not moved */
	return 0;
}

static void unmove_rec(uint32_t holder, uint64_t offset, uint64_t gen, void *arg)
{
	struct lease_ctx *l = arg;

	assert_int_equal(holder, l->moved_holder);
	assert_int_equal(offset, l->moved_from[0]);
	assert_int_equal(gen, l->moved_from[1]);
	l->unmoves++;
}

static void lease_walk_end_rec(bool whole, unsigned taken_back, void *arg)
{
	struct lease_ctx *l = arg;

	l->ends++;
	l->whole = whole;
	l->taken_back = taken_back;
}

/* The periodic sweep of a queue whose leases time out. */
static int sweep_leases(struct ring *r, struct lease_ctx *l)
{
	struct ring_reclaim_ops ops = sweep_ops(&l->rc);
	const char *why = NULL;

	ops.walk_begin = lease_walk_begin_rec;
	ops.lease_check = lease_answer;
	ops.move_aside = move_rec;
	ops.unmove = unmove_rec;
	ops.walk_end = lease_walk_end_rec;
	ops.ctx = l;
	return ring_reclaim(r, &ops, &why);
}

/* Another live receiver of the same ring (same mappings, its own id). */
static struct ring other_receiver(const struct test_ring *t, uint32_t self)
{
	struct ring o = t->r;

	o.self = self;
	return o;
}

/* A live holder's lease that has not run out: asked about (offset, word
 * and deliveries of its chunk, and of no other chunk), left alone. */
static void test_lease_not_run_out_leaves_a_live_holders_chunk_alone(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct lease_ctx l = { .rc = { .dead = false, .window = 1 } };
	struct proto_ring_desc d = produce(&t->r, 1000, 3);
	struct proto_ring_desc waiting = produce(&t->r, 300, 4); /* on the window */
	struct ring_ref taken, reserved;
	uint64_t used, w;

	assert_int_equal(ring_take(&t->r, &d, &taken), 0);
	assert_int_equal(ring_reserve(&t->r, 200, 0, &reserved), 0);
	used = ring_bytes_used(&t->r);
	w = atomic_load(word_at(&t->r, d.offset));
	assert_int_equal(w, RING_WORD(RING_TAKEN, TEST_HOLDER, d.gen));

	for (unsigned sweep = 1; sweep <= 3; sweep++) {
		assert_int_equal(sweep_leases(&t->r, &l), 0);
		assert_int_equal(l.asked, sweep); /* the TAKEN chunk, once a walk */
		assert_int_equal(l.begins, sweep);
		assert_int_equal(l.ends, sweep);
		assert_true(l.whole);
		assert_int_equal(l.taken_back, 0);
	}
	assert_int_equal(l.offset, d.offset);
	assert_int_equal(l.word, w);
	assert_int_equal(l.deliveries, 1);
	assert_int_equal(l.rc.resends, 0);
	assert_int_equal(atomic_load(word_at(&t->r, d.offset)), w);
	assert_int_equal(ring_bytes_used(&t->r), used);
	assert_int_equal(stats_of(&t->r).redelivered, 0);
	assert_true(payload_matches(taken.payload, 1000, 3));
	ring_release(&t->r, &taken);
	consume(&t->r, &waiting, 4);
	ring_cancel(&t->r, &reserved);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* While little is in use, chunks keep to the start of a large data area
 * (still in the caches), wrapping early: room for RING_HOT_CHUNKS of
 * their size, within RING_HOT_MIN and RING_HOT; a backlog that grows past
 * half of that uses the whole area. */
static void test_light_use_keeps_to_the_start_of_a_large_ring(void **state)
{
	struct test_ring *t = *state = ring_new(4 * RING_HOT, 2 * 1024 * KIB, 0);
	struct proto_ring_desc d[64];
	uint64_t highest = 0;
	unsigned n = 0;

	for (unsigned i = 0; i < 100; i++) {
		struct proto_ring_desc one = produce(&t->r, 1024 * KIB, i);

		assert_true(one.offset + 1024 * KIB <= RING_HOT);
		highest = MAX(highest, one.offset);
		consume(&t->r, &one, i);
	}
	assert_true(highest + 1024 * KIB > RING_HOT / 2); /* 1 MiB chunks go round all of it */
	/* smaller chunks go round less: 64 KiB ones, the least */
	highest = 0;
	for (unsigned i = 0; i < 100; i++) {
		struct proto_ring_desc one = produce(&t->r, 64 * KIB, i);

		highest = MAX(highest, one.offset + 64 * KIB);
		consume(&t->r, &one, i);
	}
	assert_true(highest <= RING_HOT_CHUNKS * (64 * KIB + RING_ALIGN) && highest > RING_HOT_MIN / 2);
	/* a backlog: nothing released, the area fills past RING_HOT */
	while (n < 64) {
		struct ring_ref ref;

		if (ring_reserve(&t->r, 1024 * KIB, 0, &ref) < 0)
			break;
		fill_payload(ref.payload, 1024 * KIB, n);
		ring_publishing(&t->r, &ref, 0);
		ring_describe(&ref, 0, &d[n]);
		ring_published(&t->r, &ref);
		n++;
	}
	assert_true((uint64_t)n * 1024 * KIB > 3 * RING_HOT);
	for (unsigned i = 0; i < n; i++)
		consume(&t->r, &d[i], i);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}


/* What a client wrote over a header's fixed fields the daemon writes
 * again from its own copy (the queue's own ring of a queue with lanes):
 * a view attaches to it afterwards, and the header says it is intact. */
static void test_header_restore_writes_the_fixed_fields_again(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct ring view;

	assert_false(ring_header_restore(&t->r)); /* nothing to do */
	memset(t->r.hdr, 0xa5, offsetof(struct ring_hdr, lock));
	assert_int_equal(ring_attach(&view, t->mem, t->len, t->data, t->data_len, false), -EPROTO);
	assert_true(ring_header_restore(&t->r));
	assert_false(ring_header_restore(&t->r));
	assert_int_equal(ring_attach(&view, t->mem, t->len, t->data, t->data_len, false), 0);
	assert_int_equal(view.data_size, 64 * KIB);
	assert_int_equal(view.max_payload, 8 * KIB);
	assert_int_equal(view.delivery, 1);
}
/* Peeking copies what waits, by priority then age, taking nothing: a
 * chunk a receiver took is left out, and so is one whose header a client
 * spoilt; the first message that does not fit is -EMSGSIZE. */
static void test_peek_copies_what_waits_in_order(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct proto_ring_desc d0 = produce(&t->r, 100, 0), d1 = produce(&t->r, 200, 5);
	struct proto_ring_desc d2 = produce(&t->r, 300, 2), d3 = produce(&t->r, 400, 3);
	static unsigned char buf[4096], want[400];
	struct ring_peeked out[8];
	struct ring_ref held;
	struct ring_chunk *c;
	uint32_t len;

	assert_int_equal(ring_take(&t->r, &d3, &held), 0);
	assert_int_equal(ring_peek(&t->r, out, 8, buf, sizeof(buf)), 3);
	assert_int_equal(out[0].len, 200);
	assert_int_equal(out[0].prio, 5);
	assert_int_equal(out[1].len, 300);
	assert_int_equal(out[1].prio, 2);
	assert_int_equal(out[2].len, 100);
	assert_int_equal(out[2].prio, 0);
	fill_payload(want, 200, 5);
	assert_memory_equal(buf + out[0].at, want, 200);
	fill_payload(want, 100, 0);
	assert_memory_equal(buf + out[2].at, want, 100);
	assert_int_equal(ring_peek(&t->r, out, 1, buf, sizeof(buf)), 1);
	assert_int_equal(ring_peek(&t->r, out, 8, buf, 150), -EMSGSIZE);
	/* a header a sender spoilt: left out */
	c = ring_chunk_at(&t->r, d2.offset);
	len = c->len;
	c->len = 60000;
	assert_int_equal(ring_peek(&t->r, out, 8, buf, sizeof(buf)), 2);
	c->len = len;
	ring_release(&t->r, &held);
	consume(&t->r, &d1, 5);
	consume(&t->r, &d2, 2);
	consume(&t->r, &d0, 0);
	assert_int_equal(ring_peek(&t->r, out, 8, buf, sizeof(buf)), 0);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* A chunk a receiver holds does not keep the ring from wrapping early:
 * the tail passes the pad as soon as it is released. */
static void test_a_chunk_a_receiver_holds_does_not_stop_the_early_wrap(void **state)
{
	struct test_ring *t = *state = ring_new(4 * RING_HOT, 1024 * KIB, 0);
	struct proto_ring_desc d, next;
	struct ring_ref held;

	/* the 16th chunk of 64 KiB ends at the extent */
	for (unsigned i = 0; i < RING_HOT_CHUNKS - 1; i++) {
		struct proto_ring_desc one = produce(&t->r, 64 * KIB, i);

		consume(&t->r, &one, i);
	}
	d = produce(&t->r, 64 * KIB, 100);
	assert_int_equal(ring_take(&t->r, &d, &held), 0);
	next = produce(&t->r, 64 * KIB, 101);
	assert_int_equal(next.offset, 0);
	ring_release(&t->r, &held);
	consume(&t->r, &next, 101);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* Chunks wrap to the start of the area early only while none waits to be
 * taken: a pad laid behind a chunk still waiting would keep the rest of
 * the lap from senders until it was received, so a queue whose receivers
 * stopped just then would hold a fraction of its ring.  Here one waits
 * just below the extent of 64 KiB chunks, and the senders still fill the
 * whole area. */
static void test_a_chunk_waiting_leaves_senders_the_whole_ring(void **state)
{
	struct test_ring *t = *state = ring_new(4 * RING_HOT, 1024 * KIB, 0);
	uint64_t ds = 4 * RING_HOT, bytes = 0;
	struct proto_ring_desc *d = calloc(ds / (64 * KIB), sizeof(*d));
	unsigned n = 0;

	assert_non_null(d);
	/* the receivers kept up, to within two chunks of the extent */
	for (unsigned i = 0; i < RING_HOT_CHUNKS - 2; i++) {
		struct proto_ring_desc one = produce(&t->r, 64 * KIB, i);

		consume(&t->r, &one, i);
	}
	/* then they stopped: what comes waits */
	while (n < ds / (64 * KIB)) {
		struct ring_ref ref;

		if (ring_reserve(&t->r, 64 * KIB, 0, &ref) < 0)
			break;
		fill_payload(ref.payload, 64 * KIB, n);
		ring_publishing(&t->r, &ref, 0);
		ring_describe(&ref, 0, &d[n]);
		ring_published(&t->r, &ref);
		bytes += 64 * KIB;
		n++;
	}
	assert_true(bytes > ds - ds / 64);
	for (unsigned i = 0; i < n; i++)
		consume(&t->r, &d[i], i);
	assert_int_equal(ring_bytes_used(&t->r), 0);
	free(d);
}

/* Moving aside: a chunk its holder keeps long, and allows to move, has
 * its message handed to the daemon's keeping (its bytes, prio and
 * deliveries) and is released, so the space behind it comes back while
 * the holder still holds the message; the holder learns it from the
 * aside byte (ring_stop_aside), once.  A chunk its holder did not allow
 * to move, or took back (ring_stop_aside first), stays. */
static void test_a_chunk_held_long_moves_aside_and_the_space_behind_comes_back(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct lease_ctx l = { .rc = { .window = 1 }, .move = true };
	struct proto_ring_desc d = produce(&t->r, 1000, 7), later = produce(&t->r, 500, 8);
	struct ring_ref held;

	assert_int_equal(ring_take(&t->r, &d, &held), 0);
	/* not allowed yet: asked, left alone */
	assert_int_equal(sweep_leases(&t->r, &l), 0);
	assert_int_equal(l.asked, 1);
	assert_false(l.aside);
	assert_int_equal(l.moves, 0);
	/* allowed, then taken back before the sweep: stays */
	ring_allow_aside(&t->r, d.offset, d.gen);
	assert_int_equal(atomic_load(&t->r.states[d.offset / RING_ALIGN].aside), RING_ASIDE_OK);
	assert_false(ring_stop_aside(&t->r, d.offset, d.gen));
	assert_int_equal(sweep_leases(&t->r, &l), 0);
	assert_int_equal(l.moves, 0);
	/* allowed: moved */
	consume(&t->r, &later, 8);
	assert_true(ring_bytes_used(&t->r) > 0);
	ring_allow_aside(&t->r, d.offset, d.gen);
	assert_int_equal(sweep_leases(&t->r, &l), 1);
	assert_true(l.aside);
	assert_int_equal(l.moves, 1);
	assert_int_equal(l.unmoves, 0);
	assert_int_equal(l.moved_holder, TEST_HOLDER);
	assert_int_equal(l.moved_from[0], d.offset);
	assert_int_equal(l.moved_from[1], d.gen);
	assert_int_equal(l.moved_prio, 7);
	assert_int_equal(l.moved_deliveries, 1);
	assert_int_equal(l.moved_len, 1000);
	assert_true(payload_matches(l.moved_bytes, 1000, 7));
	assert_int_equal(stats_of(&t->r).moved, 1);
	/* the chunk and the one behind it are free: the ring is empty */
	assert_int_equal(ring_bytes_used(&t->r), 0);
	assert_false(ring_holds(&t->r, d.offset, d.gen));
	/* the holder, acting on the chunk, learns it moved (once) */
	assert_true(ring_stop_aside(&t->r, d.offset, d.gen));
	assert_false(ring_stop_aside(&t->r, d.offset, d.gen));
	assert_int_equal(l.rc.resends, 0);
	assert_int_equal(stats_of(&t->r).redelivered, 0);
}

/* The holder comes back for its chunk while the daemon keeps its message
 * (the aside byte MOVING): the move is undone (unmove), the chunk stays
 * the holder's, and its release frees it.  A batch with more than one
 * message left does not move.  A dead holder's chunk, or one whose lease
 * ran out, is redelivered, not moved. */
static void test_moving_aside_yields_to_its_holder_and_to_death(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct lease_ctx l = { .rc = { .window = 1 }, .move = true, .comes_back = true };
	struct proto_ring_desc d = produce(&t->r, 1000, 9);
	struct ring_ref held;

	l.holder = &t->r;
	assert_int_equal(ring_take(&t->r, &d, &held), 0);
	ring_allow_aside(&t->r, d.offset, d.gen);
	assert_int_equal(sweep_leases(&t->r, &l), 0);
	assert_int_equal(l.moves, 1);
	assert_int_equal(l.unmoves, 1);
	assert_true(ring_holds(&t->r, d.offset, d.gen));
	assert_false(ring_stop_aside(&t->r, d.offset, d.gen));
	assert_int_equal(stats_of(&t->r).moved, 0);

	/* its lease ran out: taken back, not moved */
	l.comes_back = false;
	ring_allow_aside(&t->r, d.offset, d.gen);
	l.expired = true;
	assert_int_equal(sweep_leases(&t->r, &l), 1);
	assert_int_equal(l.moves, 1);
	assert_int_equal(l.rc.resends, 1);
	assert_false(ring_holds(&t->r, d.offset, d.gen));
	assert_false(ring_stop_aside(&t->r, d.offset, d.gen));
	{
		/* the next taker's chunk is its own: not allowed to move */
		struct proto_ring_desc again;
		struct ring other = other_receiver(t, OTHER_HOLDER);
		struct ring_ref fresh;

		memcpy(&again, l.rc.last, sizeof(again));
		assert_int_equal(ring_take(&other, &again, &fresh), 0);
		assert_int_equal(atomic_load(&t->r.states[d.offset / RING_ALIGN].aside), RING_ASIDE_NO);
		assert_true(payload_matches(fresh.payload, 1000, 9));
		ring_release(&other, &fresh);
	}
	ring_release(&t->r, &held); /* late: does nothing */
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* A lease that ran out: taken back once, sent again flagged redelivered
 * at its priority, counted; its next taker gets deliveries 2; the old
 * holder's late release leaves the chunk to the new taker, whose bytes
 * stay intact until it releases them. */
static void test_lease_run_out_is_redelivered_once_and_the_late_release_does_nothing(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct lease_ctx l = { .expired = true };
	struct proto_ring_desc d = produce(&t->r, 1000, 5), again;
	struct ring other = other_receiver(t, OTHER_HOLDER);
	struct ring_ref old, fresh;

	assert_int_equal(ring_take(&t->r, &d, &old), 0);
	assert_int_equal(old.deliveries, 1);
	assert_int_equal(sweep_leases(&t->r, &l), 1);
	assert_int_equal(l.asked, 1);
	assert_int_equal(l.taken_back, 1);
	assert_int_equal(l.rc.resends, 1);
	assert_int_equal(l.rc.last_prio, 5);
	again = assert_resent_descriptor_of(&l.rc, &d);
	assert_int_equal(again.hdr.flags & PROTO_MSGF_REDELIVERED, PROTO_MSGF_REDELIVERED);
	assert_int_equal(stats_of(&t->r).redelivered, 1);
	assert_int_equal(RING_WORD_STATE(atomic_load(word_at(&t->r, d.offset))), RING_PUBLISHED);

	/* once: its descriptor waits on the window, nothing is TAKEN */
	for (unsigned sweep = 0; sweep < 3; sweep++)
		assert_int_equal(sweep_leases(&t->r, &l), 0);
	assert_int_equal(l.rc.resends, 1);
	assert_int_equal(l.asked, 1);
	assert_int_equal(l.taken_back, 0);
	assert_int_equal(stats_of(&t->r).redelivered, 1);

	again = take_resent_off_window(&l.rc, &d);
	assert_int_equal(ring_take(&other, &again, &fresh), 0);
	assert_int_equal(fresh.deliveries, 2);
	/* the old holder wakes up and releases: nothing happens */
	ring_release(&t->r, &old);
	assert_int_equal(atomic_load(word_at(&t->r, d.offset)), RING_WORD(RING_TAKEN, OTHER_HOLDER, d.gen));
	/* the space is not given back under the new taker */
	ring_advance_tail(&t->r);
	assert_int_equal(ring_bytes_used(&t->r), chunk_bytes(1000));
	assert_true(payload_matches(fresh.payload, 1000, 5));
	ring_release(&other, &fresh);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* A lease runs out while the window is full: the chunk is claimed and
 * counted once, and the next sweep sends it, still flagged redelivered. */
static void test_lease_run_out_beside_a_full_window_is_sent_by_the_next_sweep(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct lease_ctx l = { .expired = true, .rc = { .resend_ret = -EAGAIN } };
	struct proto_ring_desc d = produce(&t->r, 2000, 6), again;
	struct ring other = other_receiver(t, OTHER_HOLDER);
	struct ring_ref old, fresh;

	assert_int_equal(ring_take(&t->r, &d, &old), 0);
	assert_int_equal(sweep_leases(&t->r, &l), 1);
	assert_int_equal(l.taken_back, 1);
	assert_int_equal(l.rc.resends, 1); /* refused */
	assert_int_equal(atomic_load(word_at(&t->r, d.offset)), RING_WORD(RING_PUBLISHING, 0, d.gen));
	/* the late release finds it no longer its own */
	ring_release(&t->r, &old);
	assert_int_equal(atomic_load(word_at(&t->r, d.offset)), RING_WORD(RING_PUBLISHING, 0, d.gen));

	l.rc.resend_ret = 0;
	assert_true(sweep_leases(&t->r, &l) >= 1);
	assert_int_equal(l.taken_back, 0);
	assert_int_equal(l.rc.resends, 2);
	again = take_resent_off_window(&l.rc, &d);
	assert_int_equal(again.hdr.flags & PROTO_MSGF_REDELIVERED, PROTO_MSGF_REDELIVERED);
	assert_int_equal(stats_of(&t->r).redelivered, 1);
	assert_int_equal(stats_of(&t->r).reclaimed, 0);
	assert_int_equal(ring_take(&other, &again, &fresh), 0);
	assert_int_equal(fresh.deliveries, 2);
	assert_true(payload_matches(fresh.payload, 2000, 6));
	ring_release(&other, &fresh);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* In an at-most-once ring what a receiver took is its own: its lease is
 * never asked about, however the daemon would answer. */
static void test_leases_never_run_out_at_most_once(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct lease_ctx l = { .expired = true };
	struct proto_ring_desc d = produce(&t->r, 1000, 1);
	struct ring_ref ref;
	uint64_t w;

	assert_int_equal(ring_take(&t->r, &d, &ref), 0);
	w = atomic_load(word_at(&t->r, d.offset));
	for (unsigned sweep = 0; sweep < 3; sweep++)
		assert_int_equal(sweep_leases(&t->r, &l), 0);
	assert_int_equal(l.asked, 0);
	assert_int_equal(l.begins, 0);
	assert_int_equal(l.rc.resends, 0);
	assert_int_equal(atomic_load(word_at(&t->r, d.offset)), w);
	assert_int_equal(stats_of(&t->r).dropped, 0);
	assert_true(payload_matches(ref.payload, 1000, 1));
	ring_release(&t->r, &ref);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* A dead holder's chunk is reclaimed as before, its lease not asked
 * about, and not counted as a lease taken back. */
static void test_dead_holders_chunk_is_reclaimed_without_asking_its_lease(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct lease_ctx l = { .expired = false };
	struct proto_ring_desc d = produce(&t->r, 1000, 2), again;
	struct ring dead = other_receiver(t, DEAD_HOLDER);
	struct ring_ref ref;

	assert_int_equal(ring_take(&dead, &d, &ref), 0);
	assert_int_equal(sweep_leases(&t->r, &l), 1);
	assert_int_equal(l.asked, 0);
	assert_int_equal(l.taken_back, 0);
	assert_int_equal(stats_of(&t->r).redelivered, 1);
	again = take_resent_off_window(&l.rc, &d);
	consume(&t->r, &again, 2);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* ---- orphans: descriptors a dead receiver took off the window ---- */

/* A receiver took the descriptor off the mq into its own memory, and
 * died: the chunk stays PUBLISHED, the window is empty.  The first sweep
 * frees the receiver's slot and marks the chunk; the second sends its
 * descriptor again, once, flagged RESENT (not REDELIVERED: no receiver
 * had the message); later sweeps see it on the window and leave it. */
static void test_reclaim_resends_orphan_of_dead_receiver_and_frees_slot(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct reclaim_ctx c = { .dead = true };
	struct proto_ring_desc d = produce(&t->r, 2000, 4), again;
	int idx = ring_slot_claim(&t->r);
	ipcq_stats st;

	assert_true(idx >= 0);
	/* the consumer received the descriptor off the window, then died */

	assert_int_equal(reclaim(&t->r, &c), 1); /* the slot */
	assert_int_equal(c.resends, 0);
	assert_int_equal(atomic_load(&ring_slot_at(&t->r, (unsigned)idx)->owner), 0);
	assert_int_equal(reclaim(&t->r, &c), 1); /* the orphan */
	assert_int_equal(c.resends, 1);
	assert_int_equal(c.last_prio, 4);
	assert_resent_descriptor_of(&c, &d);
	{
		struct proto_ring_desc got;

		memcpy(&got, c.last, sizeof(got));
		assert_int_equal(got.hdr.flags & PROTO_MSGF_REDELIVERED, 0);
	}
	for (unsigned sweep = 0; sweep < 3; sweep++)
		assert_int_equal(reclaim(&t->r, &c), 0);
	assert_int_equal(c.resends, 1);
	st = stats_of(&t->r);
	assert_int_equal(st.redelivered, 0);
	assert_int_equal(st.reclaimed, 1);
	again = take_resent_off_window(&c, &d);
	consume(&t->r, &again, 4);
	assert_int_equal(ring_bytes_used(&t->r), 0);
	/* and nothing more, however many sweeps */
	for (unsigned sweep = 0; sweep < 3; sweep++)
		assert_int_equal(reclaim(&t->r, &c), 0);
	assert_int_equal(c.resends, 1);
}

/* A sweep that began with the window not empty clears the mark: the
 * chunk needs two empty-window walks in a row. */
static void test_walk_beside_a_full_window_clears_the_orphan_mark(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct reclaim_ctx c = { .dead = false };
	struct proto_ring_desc d = produce(&t->r, 700, 2), again;

	assert_int_equal(reclaim(&t->r, &c), 0); /* empty: marked */
	c.window = 1;                            /* someone else's message waits */
	assert_int_equal(reclaim(&t->r, &c), 0); /* not empty: cleared */
	c.window = 0;
	assert_int_equal(reclaim(&t->r, &c), 0); /* marked again, not resent */
	assert_int_equal(c.resends, 0);
	assert_int_equal(reclaim(&t->r, &c), 1); /* the second in a row */
	assert_int_equal(c.resends, 1);
	again = take_resent_off_window(&c, &d);
	consume(&t->r, &again, 2);
	assert_int_equal(stats_of(&t->r).reclaimed, 1);
}

/* A receiver only slow between its mq_receive and its take takes the
 * chunk between the two walks: nothing is resent.  And if a resend does
 * race it, the receiver or the resent copy gets the message, never both. */
static void test_orphan_taken_between_walks_is_not_resent(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct reclaim_ctx c = { .dead = false };
	struct proto_ring_desc d = produce(&t->r, 700, 2), again;
	struct ring_ref ref;

	assert_int_equal(reclaim(&t->r, &c), 0); /* marked */
	assert_int_equal(ring_take(&t->r, &d, &ref), 0);
	assert_int_equal(reclaim(&t->r, &c), 0);
	assert_int_equal(reclaim(&t->r, &c), 0);
	assert_int_equal(c.resends, 0);
	ring_release(&t->r, &ref);

	/* slower still: the resend came first; one of the two copies takes */
	d = produce(&t->r, 700, 3);
	assert_int_equal(reclaim(&t->r, &c), 0);
	assert_int_equal(reclaim(&t->r, &c), 1);
	again = take_resent_off_window(&c, &d);
	consume(&t->r, &d, 3);
	assert_take_fails(&t->r, &again, -ESTALE);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* The mark is for a chunk, not for its place: a chunk released after one
 * walk marked it, and a new chunk laid at the same offset, PUBLISHED with
 * its descriptor in a live receiver's hands, has been seen by one walk
 * only, and is not resent by the next. */
static void test_orphan_mark_does_not_pass_to_the_next_chunk_at_its_offset(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct reclaim_ctx c = { .dead = false };
	struct proto_ring_desc a = produce(&t->r, 100, 1), x, b;

	assert_int_equal(a.offset, 0);
	assert_int_equal(reclaim(&t->r, &c), 0); /* a marked */
	consume(&t->r, &a, 1);
	/* the rest of the area, so that the next chunk starts at 0 again */
	x = produce(&t->r, 8 * KIB - RING_CHUNK_HDR, 2);
	consume(&t->r, &x, 2);
	while (atomic_load(&t->r.sp->head) % (64 * KIB)) {
		uint64_t left = 64 * KIB - atomic_load(&t->r.sp->head) % (64 * KIB);

		x = produce(&t->r, MIN(left, 8 * KIB) - RING_CHUNK_HDR, 2);
		consume(&t->r, &x, 2);
	}
	b = produce(&t->r, 100, 3);
	assert_int_equal(b.offset, 0);
	assert_true(b.gen != a.gen);

	assert_int_equal(reclaim(&t->r, &c), 0); /* b's first walk */
	assert_int_equal(c.resends, 0);
	consume(&t->r, &b, 3);
}

/* The daemon's reclaim when a pidfd says a client died does not ask the
 * window (window_empty NULL): PUBLISHED chunks are the periodic sweep's
 * business, and are never marked or resent by it. */
static void test_reclaim_without_window_question_leaves_published_chunks(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct reclaim_ctx c = { .dead = true };
	const struct ring_reclaim_ops ops = { .is_dead = is_dead_if_self, .resend = record_resend, .ctx = &c };
	struct proto_ring_desc d = produce(&t->r, 700, 2);
	const char *why = NULL;

	for (unsigned sweep = 0; sweep < 3; sweep++)
		assert_int_equal(ring_reclaim(&t->r, &ops, &why), 0);
	assert_int_equal(c.resends, 0);
	/* nor did they mark it: one periodic sweep only marks */
	assert_int_equal(reclaim(&t->r, &c), 0);
	assert_int_equal(c.resends, 0);
	consume(&t->r, &d, 2);
}

/* The mark is in the control object, which every client can write: a
 * forged one can at most make a resend come early, and the message is
 * still taken once, by the first of the two copies. */
static void test_forged_orphan_mark_delivers_once(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct reclaim_ctx c = { .dead = false };
	struct proto_ring_desc d = produce(&t->r, 900, 5), again;
	struct ring_cstate *cs = ring_cs(&t->r, (const struct ring_chunk *)(t->r.data + d.offset));
	struct ring_ref ref;

	cs->orphan = 0xff;
	assert_true(reclaim(&t->r, &c) >= 0);
	assert_true(reclaim(&t->r, &c) >= 0);
	assert_int_equal(c.resends, 1);
	again = take_resent_off_window(&c, &d);
	assert_int_equal(ring_take(&t->r, &again, &ref), 0);
	assert_true(payload_matches(ref.payload, 900, 5));
	assert_take_fails(&t->r, &d, -ESTALE);
	ring_release(&t->r, &ref);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

static void test_reclaim_frees_empty_slot_of_dead_consumer(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct reclaim_ctx c = { .dead = true };
	int idx = ring_slot_claim(&t->r);
	ipcq_stats st;

	assert_true(idx >= 0);
	assert_int_equal(reclaim(&t->r, &c), 1);
	assert_int_equal(c.resends, 0);
	assert_int_equal(atomic_load(&ring_slot_at(&t->r, (unsigned)idx)->owner), 0);
	st = stats_of(&t->r);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.redelivered, 0);
}

/* Slots hold no message: an inline message a client left in a dead
 * receiver's slot is nothing the daemon sends, in either delivery mode;
 * the slot is freed at once. */
static void test_reclaim_sends_nothing_from_a_dead_receivers_slot(void **state)
{
	for (uint32_t delivery = 0; delivery <= 1; delivery++) {
		struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, delivery);
		struct reclaim_ctx c = { .dead = true };
		struct proto_msg_hdr h = { .kind = PROTO_MSG_INLINE, .len = 5 };
		int idx = ring_slot_claim(&t->r);
		struct ring_slot *s;
		ipcq_stats st;

		assert_true(idx >= 0);
		s = ring_slot_at(&t->r, (unsigned)idx);
		memcpy(s->pad_, &h, sizeof(h));
		memcpy((unsigned char *)s->pad_ + sizeof(h), "hello", 5);

		assert_int_equal(reclaim(&t->r, &c), 1);
		assert_int_equal(c.resends, 0);
		assert_int_equal(atomic_load(&s->owner), 0);
		st = stats_of(&t->r);
		assert_int_equal(st.dropped, 0);
		assert_int_equal(st.redelivered, 0);
		assert_int_equal(st.reclaimed, 0);
		assert_int_equal(reclaim(&t->r, &c), 0);
		assert_int_equal(c.resends, 0);
		ring_free(t);
		*state = NULL;
	}
}

/* A receiver died with the descriptor it took off the window in its
 * receive buffer (which the daemon maps): ring_resend_desc sends it again
 * at once, flagged RESENT, without waiting for the orphan rule. */
static void test_descriptor_of_dead_receiver_is_resent_at_once(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct reclaim_ctx c = { .dead = true };
	struct proto_ring_desc d = produce(&t->r, 2000, 3), again, got;
	struct ring_reclaim_ops ops = sweep_ops(&c);

	assert_int_equal(ring_resend_desc(&t->r, &d, &ops), 1);
	assert_int_equal(c.resends, 1);
	assert_int_equal(c.last_prio, 3);
	assert_resent_descriptor_of(&c, &d);
	memcpy(&got, c.last, sizeof(got));
	assert_int_equal(got.hdr.flags & PROTO_MSGF_REDELIVERED, 0);
	assert_int_equal(stats_of(&t->r).reclaimed, 1);
	/* the sweeps after it see the descriptor on the window: nothing more */
	for (unsigned sweep = 0; sweep < 3; sweep++)
		assert_int_equal(reclaim(&t->r, &c), 0);
	assert_int_equal(c.resends, 1);
	again = take_resent_off_window(&c, &d);
	consume(&t->r, &again, 3);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* What a receiver may have written in its buffer before it died is
 * checked: a descriptor of a chunk already taken, of one not sealed yet,
 * of no chunk, or of another generation is never sent; nor an inline
 * message. */
static void test_forged_descriptor_of_dead_receiver_is_not_resent(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct reclaim_ctx c = { .dead = false };
	struct ring_reclaim_ops ops = sweep_ops(&c);
	struct proto_ring_desc taken = produce(&t->r, 500, 0);
	struct ring_ref ref, unsealed;
	struct proto_ring_desc forged[5];

	assert_int_equal(ring_take(&t->r, &taken, &ref), 0);
	assert_int_equal(ring_reserve(&t->r, 700, 0, &unsealed), 0);
	forged[0] = taken;
	ring_describe(&unsealed, 0, &forged[1]);
	forged[2] = taken;
	forged[2].offset = 64 * KIB - RING_ALIGN;
	forged[3] = taken;
	forged[3].gen += 7;
	forged[4] = taken;
	forged[4].hdr.kind = PROTO_MSG_INLINE;
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(ring_resend_desc(&t->r, &forged[i], &ops), 0);
	assert_int_equal(c.resends, 0);
	ring_release(&t->r, &ref);
	ring_cancel(&t->r, &unsealed);
}

static void test_failed_resend_of_taken_chunk_is_retried_next_sweep(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct reclaim_ctx c = { .dead = true, .resend_ret = -EAGAIN };
	struct proto_ring_desc d = produce(&t->r, 1000, 1), again;
	struct ring_ref ref;

	assert_int_equal(ring_take(&t->r, &d, &ref), 0);
	/* claimed from the dead holder and counted, once, though the
	 * window refused it */
	assert_int_equal(reclaim(&t->r, &c), 1);
	assert_int_equal(c.resends, 1);
	assert_int_equal(ring_bytes_used(&t->r), chunk_bytes(1000)); /* kept */
	assert_int_equal(stats_of(&t->r).redelivered, 1);

	c.resend_ret = 0;
	c.dead = false; /* the dead pid is no longer needed: the daemon owns it */
	assert_int_equal(reclaim(&t->r, &c), 1);
	assert_int_equal(c.resends, 2);
	assert_int_equal(stats_of(&t->r).redelivered, 1);
	assert_int_equal(stats_of(&t->r).reclaimed, 0);
	again = take_resent_off_window(&c, &d);
	assert_int_equal(again.hdr.flags & PROTO_MSGF_REDELIVERED, PROTO_MSGF_REDELIVERED);
	consume(&t->r, &again, 1);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

/* An orphan's resend into a full window is tried again by the next
 * sweep, once; the dead receiver's slot does not wait for it. */
static void test_failed_resend_of_orphan_is_retried_next_sweep(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 1);
	struct reclaim_ctx c = { .dead = true, .resend_ret = -EAGAIN };
	struct proto_ring_desc d = produce(&t->r, 1000, 1), again;
	int idx = ring_slot_claim(&t->r);

	assert_true(idx >= 0);
	assert_int_equal(reclaim(&t->r, &c), 1); /* the slot; the orphan marked */
	assert_int_equal(atomic_load(&ring_slot_at(&t->r, (unsigned)idx)->owner), 0);
	assert_int_equal(reclaim(&t->r, &c), 0); /* the resend fails */
	assert_int_equal(c.resends, 1);
	assert_int_equal(stats_of(&t->r).reclaimed, 0);

	c.resend_ret = 0;
	assert_int_equal(reclaim(&t->r, &c), 1);
	assert_int_equal(c.resends, 2);
	assert_int_equal(reclaim(&t->r, &c), 0);
	assert_int_equal(c.resends, 2);
	assert_int_equal(stats_of(&t->r).reclaimed, 1);
	again = take_resent_off_window(&c, &d);
	consume(&t->r, &again, 1);
	assert_int_equal(ring_bytes_used(&t->r), 0);
}

static void test_reclaim_lets_released_chunks_behind_dead_one_go(void **state)
{
	struct test_ring *t = *state = ring_new(64 * KIB, 8 * KIB, 0);
	struct reclaim_ctx c = { .dead = true };
	struct ring_ref held;
	struct proto_ring_desc d;

	assert_int_equal(ring_reserve(&t->r, 500, 0, &held), 0); /* dies holding it */
	d = produce(&t->r, 500, 2);
	consume(&t->r, &d, 2);
	assert_int_equal(ring_bytes_used(&t->r), 2 * chunk_bytes(500));
	assert_int_equal(reclaim(&t->r, &c), 1);
	assert_int_equal(ring_bytes_used(&t->r), 0);
	assert_int_equal(stats_of(&t->r).ring_chunks, 0);
}

/* ---- a receive-only client ---- */

/* A receive-only client (its data object mapped read-only) takes, reads
 * and releases chunks, out of order too; it leaves the tail where it is
 * (release only marks and wakes), and the space returns when a writer
 * moves the tail: here ring_fill_stats by the writable ring. */
static void test_receive_only_client_takes_and_releases_without_writing_data(void **state)
{
	struct test_ring *t = *state = ring_new_in(64 * KIB, 8 * KIB, 0, true);
	struct proto_ring_desc d[3];
	struct ring_ref ref[3];
	struct ring ro;
	uint64_t used, tail;
	ipcq_stats st;

	attach_receive_only(t, &ro);
	assert_write_faults(ro.data);
	assert_write_faults((void *)&ro.sp->tail);
	for (unsigned i = 0; i < 3; i++)
		d[i] = produce(&t->r, 1000 + 500 * i, i);
	used = ring_bytes_used(&t->r);
	tail = atomic_load(&t->r.sp->tail);

	for (unsigned i = 0; i < 3; i++) {
		unsigned k = (i + 1) % 3; /* 1, 2, 0 */

		assert_int_equal(ring_take(&ro, &d[k], &ref[k]), 0);
		assert_int_equal(ref[k].len, 1000 + 500 * k);
		assert_true(payload_matches(ref[k].payload, ref[k].len, k));
		/* what it read is the writer's bytes, through its own mapping */
		assert_ptr_equal(ref[k].payload, ro.data + d[k].offset + RING_CHUNK_HDR);
		assert_take_fails(&ro, &d[k], -ESTALE);
	}
	for (unsigned i = 0; i < 3; i++) {
		unsigned k = (i + 2) % 3; /* 2, 0, 1 */

		ring_release(&ro, &ref[k]);
		assert_int_equal(RING_WORD_STATE(atomic_load(word_at(&t->r, d[k].offset))), RING_RELEASED);
	}
	/* every chunk released, and still the tail stands: the receive-only
	 * client's figures do not move it either */
	assert_int_equal(atomic_load(&t->r.sp->tail), tail);
	st = stats_of(&ro);
	assert_int_equal(st.ring_used, used);
	assert_int_equal(atomic_load(&t->r.sp->tail), tail);
	ring_repair_newest(&ro); /* a no-op for it */
	ring_advance_tail(&ro);
	assert_int_equal(ring_bytes_used(&ro), used);

	st = stats_of(&t->r); /* a writer's figures move it */
	assert_int_equal(st.ring_used, 0);
	assert_int_equal(st.ring_chunks, 0);
	assert_int_equal(ring_bytes_used(&ro), 0);
	for (unsigned k = 0; k < 3; k++)
		assert_take_fails(&ro, &d[k], -ESTALE);
}

/* On a full ring a sender waits for room; a receive-only client's
 * release wakes it, and the sender moves the tail itself. */
static void test_receive_only_release_wakes_a_waiting_sender(void **state)
{
	struct test_ring *t = *state = ring_new_in(64 * KIB, 8 * KIB, 0, true);
	struct proto_ring_desc d[32];
	struct waiting_producer w = { .r = &t->r, .timeout_ms = 10000, .ret = 1 };
	struct ring_ref ref;
	struct ring ro;
	pthread_t th;

	attach_receive_only(t, &ro);
	assert_int_equal(fill_ring(&t->r, d, 32), 16);
	assert_int_equal(pthread_create(&th, NULL, waiting_producer_main, &w), 0);
	usleep(30 * 1000);
	assert_false(atomic_load(&w.done));
	assert_int_equal(ring_take(&ro, &d[0], &ref), 0);
	assert_true(payload_matches(ref.payload, FULL_LEN, 0));
	ring_release(&ro, &ref);
	join_within(th, 5000);
	assert_int_equal(w.ret, 0);
	assert_int_equal(w.ref.offset, 0);
	assert_int_equal(atomic_load(&t->r.sp->tail), 4096);
}

/* Releases behind the oldest chunk free nothing a sender could use, and
 * wake nobody (they move space_seq all the same); the oldest one's
 * release wakes the sender, which moves the tail over every chunk
 * released by then. */
static void test_receive_only_releases_wake_a_waiting_sender_at_the_oldest(void **state)
{
	struct test_ring *t = *state = ring_new_in(64 * KIB, 8 * KIB, 0, true);
	struct proto_ring_desc d[32];
	struct waiting_producer w = { .r = &t->r, .timeout_ms = -1, .ret = 1 };
	struct ring_ref ref;
	struct ring ro;
	uint32_t seq;
	pthread_t th;

	attach_receive_only(t, &ro);
	assert_int_equal(fill_ring(&t->r, d, 32), 16);
	assert_int_equal(pthread_create(&th, NULL, waiting_producer_main, &w), 0);
	usleep(30 * 1000);
	assert_false(atomic_load(&w.done));
	seq = atomic_load(&t->r.hdr->space_seq);
	for (unsigned i = 0; i < 2; i++) {
		unsigned k = i ? 1 : 3;

		assert_int_equal(ring_take(&ro, &d[k], &ref), 0);
		ring_release(&ro, &ref);
	}
	usleep(30 * 1000);
	assert_false(atomic_load(&w.done));
	assert_int_equal(atomic_load(&t->r.hdr->space_seq), seq + 2);
	assert_int_equal(ring_take(&ro, &d[0], &ref), 0);
	ring_release(&ro, &ref);
	join_within(th, 5000);
	assert_int_equal(w.ret, 0);
	/* over chunks 0 and 1; chunk 2 is still published */
	assert_int_equal(atomic_load(&t->r.sp->tail), 2 * 4096);
	assert_int_equal(atomic_load(&t->r.hdr->waiters), 0);
}

/* ---- the two locks ---- */

/* A writer takes the senders' lock, then the shared one; a receive-only
 * client the shared one alone.  Either holder makes the others' waits
 * end at their deadlines, and a writer that could not have the shared
 * lock gives the senders' lock back. */
static void test_writer_and_receive_only_client_exclude_each_other(void **state)
{
	struct test_ring *t = *state = ring_new_in(64 * KIB, 8 * KIB, 0, true);
	struct timespec dl;
	struct ring_ref ref;
	struct ring ro;
	uint64_t start;

	attach_receive_only(t, &ro);
	assert_int_equal(ring_lock_until(&t->r, NULL), 0);
	assert_int_equal(atomic_load(&t->r.sp->lock) >> 1, TEST_HOLDER);
	assert_int_equal(atomic_load(&t->r.hdr->lock) >> 1, TEST_HOLDER);
	assert_int_equal(ring_trylock(&ro), -EBUSY);
	start = now_ns(CLOCK_MONOTONIC);
	dl = deadline_after(CLOCK_MONOTONIC, 50);
	assert_int_equal(ring_lock_until(&ro, &dl), -ETIMEDOUT);
	assert_true(elapsed_ms_since(start) >= 40);
	assert_true(elapsed_ms_since(start) < 2000);
	ring_unlock(&t->r);
	assert_int_equal(atomic_load(&t->r.sp->lock), 0);
	assert_int_equal(atomic_load(&t->r.hdr->lock), 0);

	/* the receive-only client holds the shared lock, and only it */
	dl = deadline_after(CLOCK_MONOTONIC, 1000);
	assert_int_equal(ring_lock_until(&ro, &dl), 0);
	assert_int_equal(atomic_load(&t->r.hdr->lock) >> 1, RECEIVER_HOLDER);
	assert_int_equal(atomic_load(&t->r.sp->lock), 0);
	dl = deadline_after(CLOCK_MONOTONIC, 50);
	assert_int_equal(ring_lock_until(&t->r, &dl), -ETIMEDOUT);
	assert_int_equal(atomic_load(&t->r.sp->lock), 0); /* given back */
	assert_int_equal(ring_trylock(&t->r), -EBUSY);
	assert_int_equal(atomic_load(&t->r.sp->lock), 0);
	assert_int_equal(ring_reserve(&t->r, 100, 0, &ref), -EAGAIN);
	ring_unlock(&ro);
	assert_int_equal(atomic_load(&t->r.hdr->lock), 0);
	assert_int_equal(ring_reserve(&t->r, 100, 0, &ref), 0);
	ring_cancel(&t->r, &ref);
}

/* A sender killed holding both locks, and a receive-only client killed
 * holding the shared one: the daemon breaks what the dead held, and the
 * others go on. */
static void test_reclaim_breaks_locks_of_killed_holders(void **state)
{
	struct test_ring *t = *state = ring_new_in(64 * KIB, 8 * KIB, 0, true);
	struct reclaim_ctx c = { .dead = false };
	struct timespec dl;
	struct ring_ref ref;
	struct ring ro;
	pid_t pid;
	int st;

	attach_receive_only(t, &ro);
	for (unsigned receiver = 0; receiver <= 1; receiver++) {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct ring *mine = receiver ? &ro : &t->r;

			mine->self = DEAD_HOLDER;
			_exit(ring_lock_until(mine, NULL) == 0 ? 0 : 1);
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		assert_int_equal(atomic_load(&t->r.hdr->lock) >> 1, DEAD_HOLDER);
		assert_int_equal(atomic_load(&t->r.sp->lock) >> 1, receiver ? 0 : DEAD_HOLDER);

		assert_int_equal(ring_reserve(&t->r, 100, 0, &ref), -EAGAIN);
		dl = deadline_after(CLOCK_MONOTONIC, 20);
		assert_int_equal(ring_lock_until(&ro, &dl), -ETIMEDOUT);
		assert_true(reclaim(&t->r, &c) >= 0);
		assert_int_equal(atomic_load(&t->r.sp->lock), 0);
		assert_int_equal(atomic_load(&t->r.hdr->lock), 0);
		assert_int_equal(ring_reserve(&t->r, 100, 0, &ref), 0);
		ring_cancel(&t->r, &ref);
		dl = deadline_after(CLOCK_MONOTONIC, 1000);
		assert_int_equal(ring_lock_until(&ro, &dl), 0);
		ring_unlock(&ro);
	}
}

/* ---- many threads ---- */

#define MT_PRODUCERS 4
#define MT_CONSUMERS 4
#define MT_PER_PRODUCER 20000
#define MT_MAX_LEN 8000
#define MT_QUEUE_CAP 64
#define MT_HOLD_MAX 3

/* The mq's stand-in: a bounded FIFO of descriptors. */
struct desc_queue {
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full;
	struct proto_ring_desc d[MT_QUEUE_CAP];
	unsigned head, n;
	bool closed;
};

static void desc_queue_push(struct desc_queue *q, const struct proto_ring_desc *d)
{
	pthread_mutex_lock(&q->lock);
	while (q->n == MT_QUEUE_CAP)
		pthread_cond_wait(&q->not_full, &q->lock);
	q->d[(q->head + q->n) % MT_QUEUE_CAP] = *d;
	q->n++;
	pthread_cond_signal(&q->not_empty);
	pthread_mutex_unlock(&q->lock);
}

/* Pop one descriptor; with wait, block until one comes or the queue is
 * closed and empty (false). */
static bool desc_queue_pop(struct desc_queue *q, struct proto_ring_desc *d, bool wait)
{
	bool got = false;

	pthread_mutex_lock(&q->lock);
	while (wait && q->n == 0 && !q->closed)
		pthread_cond_wait(&q->not_empty, &q->lock);
	if (q->n > 0) {
		*d = q->d[q->head];
		q->head = (q->head + 1) % MT_QUEUE_CAP;
		q->n--;
		got = true;
		pthread_cond_signal(&q->not_full);
	}
	pthread_mutex_unlock(&q->lock);
	return got;
}

static void desc_queue_close(struct desc_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->not_empty);
	pthread_mutex_unlock(&q->lock);
}

/* What every threaded message starts with. */
struct mt_header {
	uint32_t producer;
	uint32_t seq;
	uint64_t checksum; /* of the bytes after the header */
};

struct mt_shared {
	struct ring *r;
	struct desc_queue q;
	_Atomic uint32_t seen[MT_PRODUCERS][MT_PER_PRODUCER];
	_Atomic unsigned errors;
};

struct mt_thread {
	struct mt_shared *sh;
	unsigned id;
	pthread_t th;
};

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static uint32_t xorshift32(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static void *mt_producer_main(void *arg)
{
	struct mt_thread *me = arg;
	struct mt_shared *sh = me->sh;
	uint32_t rnd = 0x9e3779b9u * (me->id + 1);

	for (uint32_t seq = 0; seq < MT_PER_PRODUCER; seq++) {
		size_t len = sizeof(struct mt_header) + xorshift32(&rnd) % (MT_MAX_LEN - sizeof(struct mt_header) + 1);
		struct mt_header h = { .producer = me->id, .seq = seq };
		struct proto_ring_desc d;
		struct ring_ref ref;
		unsigned char *p;

		if (ring_reserve(sh->r, len, -1, &ref) != 0) {
			atomic_fetch_add(&sh->errors, 1);
			break;
		}
		p = ref.payload;
		fill_payload(p + sizeof(h), len - sizeof(h), ((uint64_t)me->id << 32) | seq);
		h.checksum = fnv1a(p + sizeof(h), len - sizeof(h));
		memcpy(p, &h, sizeof(h));
		ring_publishing(sh->r, &ref, 0);
		ring_describe(&ref, 0, &d);
		desc_queue_push(&sh->q, &d);
		ring_published(sh->r, &ref);
	}
	return NULL;
}

static void mt_check(struct mt_shared *sh, const struct ring_ref *ref)
{
	struct mt_header h;
	const unsigned char *p = ref->payload;

	if (ref->len < sizeof(h)) {
		atomic_fetch_add(&sh->errors, 1);
		return;
	}
	memcpy(&h, p, sizeof(h));
	if (h.producer >= MT_PRODUCERS || h.seq >= MT_PER_PRODUCER ||
	    h.checksum != fnv1a(p + sizeof(h), ref->len - sizeof(h))) {
		atomic_fetch_add(&sh->errors, 1);
		return;
	}
	atomic_fetch_add(&sh->seen[h.producer][h.seq], 1);
}

/* Release the held views in a random order. */
static void mt_release_all(struct mt_shared *sh, struct ring_ref *held, unsigned *n, uint32_t *rnd)
{
	while (*n > 0) {
		unsigned i = xorshift32(rnd) % *n;

		ring_release(sh->r, &held[i]);
		held[i] = held[--*n];
	}
}

static void *mt_consumer_main(void *arg)
{
	struct mt_thread *me = arg;
	struct mt_shared *sh = me->sh;
	struct ring_ref held[MT_HOLD_MAX];
	unsigned nheld = 0, batch;
	uint32_t rnd = 0x85ebca6bu * (me->id + 1);
	struct proto_ring_desc d;

	batch = 1 + xorshift32(&rnd) % MT_HOLD_MAX;
	for (;;) {
		if (!desc_queue_pop(&sh->q, &d, false)) {
			/* nothing waiting: never sit on views while blocked */
			mt_release_all(sh, held, &nheld, &rnd);
			if (!desc_queue_pop(&sh->q, &d, true))
				break;
		}
		if (ring_take(sh->r, &d, &held[nheld]) != 0) {
			atomic_fetch_add(&sh->errors, 1);
			continue;
		}
		mt_check(sh, &held[nheld]);
		if (++nheld >= batch) {
			mt_release_all(sh, held, &nheld, &rnd);
			batch = 1 + xorshift32(&rnd) % MT_HOLD_MAX;
		}
	}
	mt_release_all(sh, held, &nheld, &rnd);
	return NULL;
}

static void test_many_producers_and_consumers_deliver_each_message_once(void **state)
{
	struct test_ring *t = *state = ring_new(256 * KIB, MT_MAX_LEN, 0);
	struct mt_shared *sh = calloc(1, sizeof(*sh));
	struct mt_thread prod[MT_PRODUCERS], cons[MT_CONSUMERS];
	unsigned missing = 0, duplicate = 0;
	ipcq_stats st;

	assert_non_null(sh);
	sh->r = &t->r;
	pthread_mutex_init(&sh->q.lock, NULL);
	pthread_cond_init(&sh->q.not_empty, NULL);
	pthread_cond_init(&sh->q.not_full, NULL);
	for (unsigned i = 0; i < MT_CONSUMERS; i++) {
		cons[i] = (struct mt_thread){ .sh = sh, .id = i };
		assert_int_equal(pthread_create(&cons[i].th, NULL, mt_consumer_main, &cons[i]), 0);
	}
	for (unsigned i = 0; i < MT_PRODUCERS; i++) {
		prod[i] = (struct mt_thread){ .sh = sh, .id = i };
		assert_int_equal(pthread_create(&prod[i].th, NULL, mt_producer_main, &prod[i]), 0);
	}
	for (unsigned i = 0; i < MT_PRODUCERS; i++)
		join_within(prod[i].th, 30000);
	desc_queue_close(&sh->q);
	for (unsigned i = 0; i < MT_CONSUMERS; i++)
		join_within(cons[i].th, 10000);

	for (unsigned p = 0; p < MT_PRODUCERS; p++)
		for (unsigned s = 0; s < MT_PER_PRODUCER; s++) {
			uint32_t n = atomic_load(&sh->seen[p][s]);

			missing += n == 0;
			duplicate += n > 1;
		}
	if (missing || duplicate || sh->errors)
		print_error("missing %u, duplicate %u, errors %u\n", missing, duplicate, (unsigned)sh->errors);
	assert_int_equal(atomic_load(&sh->errors), 0);
	assert_int_equal(missing, 0);
	assert_int_equal(duplicate, 0);
	assert_int_equal(ring_bytes_used(&t->r), 0);
	st = stats_of(&t->r);
	assert_int_equal(st.ring_chunks, 0);
	assert_true(st.ring_hwm <= 256 * KIB);
	assert_int_equal(atomic_load(&t->r.hdr->waiters), 0);
	assert_int_equal(atomic_load(&t->r.hdr->corrupt), 0);

	pthread_cond_destroy(&sh->q.not_full);
	pthread_cond_destroy(&sh->q.not_empty);
	pthread_mutex_destroy(&sh->q.lock);
	free(sh);
}

#define RING_TEST(f) cmocka_unit_test_teardown(f, teardown_ring)
#define FORGE_TEST(f) cmocka_unit_test_setup_teardown(f, setup_forge, teardown_forge)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_geometry_check_rejects_bad_sizes),
		RING_TEST(test_attach_accepts_formatted_ring),
		RING_TEST(test_attach_rejects_foreign_or_other_version_ring),
		RING_TEST(test_attach_rejects_mapping_of_other_length),
		RING_TEST(test_attach_rejects_corrupt_layout),
		RING_TEST(test_published_payload_is_taken_intact_and_space_returns),
		RING_TEST(test_zero_length_payload_round_trips),
		RING_TEST(test_cancelled_reservation_gives_space_back),
		RING_TEST(test_chunks_wrap_around_data_area_intact),
		RING_TEST(test_out_of_order_release_frees_space_when_oldest_is_released),
		RING_TEST(test_release_recovers_from_holder_killed_mid_walk),
		RING_TEST(test_full_ring_reserve_without_timeout_is_eagain),
		RING_TEST(test_full_ring_times_out),
		RING_TEST(test_waiting_producer_is_woken_by_release),
		RING_TEST(test_producer_with_timeout_is_woken_before_deadline),
		RING_TEST(test_max_payload_fits_empty_ring),
		RING_TEST(test_max_payload_fits_empty_ring_with_head_mid_area),
		RING_TEST(test_payload_above_max_is_emsgsize_at_once),
		FORGE_TEST(test_take_rejects_misaligned_offset),
		FORGE_TEST(test_take_rejects_offset_beyond_area),
		FORGE_TEST(test_take_rejects_len_above_max_payload),
		FORGE_TEST(test_take_rejects_chunk_running_past_area_end),
		FORGE_TEST(test_take_rejects_generation_never_issued),
		FORGE_TEST(test_take_rejects_wrong_kind),
		FORGE_TEST(test_take_rejects_right_offset_with_wrong_len),
		FORGE_TEST(test_take_rejects_offset_inside_a_payload),
		RING_TEST(test_take_rejects_header_forged_inside_a_payload),
		FORGE_TEST(test_taking_twice_is_estale),
		RING_TEST(test_take_of_unpublished_reservation_is_estale),
		RING_TEST(test_take_refuses_unsealed_chunk_whose_word_was_set_by_hand),
		RING_TEST(test_seal_left_in_old_payload_does_not_seal_a_new_chunk),
		RING_TEST(test_late_published_leaves_reused_space_alone),
		RING_TEST(test_descriptor_of_reused_chunk_is_estale),
		RING_TEST(test_random_descriptors_never_take_wrong_chunk),
		RING_TEST(test_loan_ref_finds_reservation_from_payload_pointer),
		RING_TEST(test_loan_ref_rejects_pointer_not_at_a_reservation),
		RING_TEST(test_loan_ref_rejects_len_above_reservation),
		RING_TEST(test_loan_published_shorter_is_taken_with_shorter_len),
		RING_TEST(test_slot_claims_are_distinct_until_exhausted),
		RING_TEST(test_slots_and_chunk_states_fit_the_control_object),
		RING_TEST(test_reclaim_leaves_live_clients_alone),
		RING_TEST(test_forged_waiters_make_a_bounded_wake_up),
		RING_TEST(test_forged_positions_are_reported_not_walked),
		RING_TEST(test_forged_chunk_size_is_reported_not_walked),
		RING_TEST(test_scribbled_chunk_words_take_nothing_unsealed),
		RING_TEST(test_overwritten_header_is_reported),
		RING_TEST(test_reclaim_breaks_lock_of_dead_holder),
		RING_TEST(test_reclaim_leaves_lock_of_live_holder),
		RING_TEST(test_reclaim_wakes_waiter_whose_wake_up_was_lost),
		RING_TEST(test_reclaim_frees_reservation_of_dead_producer),
		RING_TEST(test_reclaim_drops_taken_chunk_at_most_once),
		RING_TEST(test_reclaim_redelivers_taken_chunk_at_least_once),
		RING_TEST(test_reclaim_resends_chunk_of_producer_dead_while_publishing),
		RING_TEST(test_lease_not_run_out_leaves_a_live_holders_chunk_alone),
		RING_TEST(test_lease_run_out_is_redelivered_once_and_the_late_release_does_nothing),
		RING_TEST(test_a_chunk_held_long_moves_aside_and_the_space_behind_comes_back),
		RING_TEST(test_light_use_keeps_to_the_start_of_a_large_ring),
		RING_TEST(test_a_chunk_waiting_leaves_senders_the_whole_ring),
		RING_TEST(test_a_chunk_a_receiver_holds_does_not_stop_the_early_wrap),
		RING_TEST(test_peek_copies_what_waits_in_order),
		RING_TEST(test_header_restore_writes_the_fixed_fields_again),
		RING_TEST(test_moving_aside_yields_to_its_holder_and_to_death),
		RING_TEST(test_lease_run_out_beside_a_full_window_is_sent_by_the_next_sweep),
		RING_TEST(test_leases_never_run_out_at_most_once),
		RING_TEST(test_dead_holders_chunk_is_reclaimed_without_asking_its_lease),
		RING_TEST(test_reclaim_resends_orphan_of_dead_receiver_and_frees_slot),
		RING_TEST(test_walk_beside_a_full_window_clears_the_orphan_mark),
		RING_TEST(test_orphan_taken_between_walks_is_not_resent),
		RING_TEST(test_orphan_mark_does_not_pass_to_the_next_chunk_at_its_offset),
		RING_TEST(test_reclaim_without_window_question_leaves_published_chunks),
		RING_TEST(test_forged_orphan_mark_delivers_once),
		RING_TEST(test_reclaim_frees_empty_slot_of_dead_consumer),
		RING_TEST(test_reclaim_sends_nothing_from_a_dead_receivers_slot),
		RING_TEST(test_failed_resend_of_taken_chunk_is_retried_next_sweep),
		RING_TEST(test_failed_resend_of_orphan_is_retried_next_sweep),
		RING_TEST(test_descriptor_of_dead_receiver_is_resent_at_once),
		RING_TEST(test_forged_descriptor_of_dead_receiver_is_not_resent),
		RING_TEST(test_reclaim_lets_released_chunks_behind_dead_one_go),
		RING_TEST(test_receive_only_client_takes_and_releases_without_writing_data),
		RING_TEST(test_receive_only_release_wakes_a_waiting_sender),
	RING_TEST(test_receive_only_releases_wake_a_waiting_sender_at_the_oldest),
		RING_TEST(test_writer_and_receive_only_client_exclude_each_other),
		RING_TEST(test_reclaim_breaks_locks_of_killed_holders),
		RING_TEST(test_many_producers_and_consumers_deliver_each_message_once),
	};

	alarm(120); /* a hang is a failure, not a stuck CI job */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
