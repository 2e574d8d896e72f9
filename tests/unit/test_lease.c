/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_lease.c - the daemon's record of how long each lease was held
 * (daemon/lease.c): when one runs out, what counts as the same lease,
 * what a walk forgets, and its bounds.  Walks are driven by hand with
 * made-up times.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lease.h"

#define RING_A "0123456789abcdef"
#define RING_B "fedcba9876543210"
#define TIMEOUT 1000u
#define T0 50000u
#define MAX 512u
#define WORD_A 0x0000000700001004ull /* TAKEN, holder 16, gen 7 */
#define WORD_B 0x0000000800001104ull /* TAKEN, holder 17, gen 8 */

/* One walk that meets a single lease; whether it ran out. */
static bool walk_meeting(struct lease_table *t, uint64_t now, uint64_t offset, uint64_t word, unsigned deliveries)
{
	bool expired;

	lease_walk_begin(t, RING_A, MAX, TIMEOUT, now);
	expired = lease_walk_met(t, offset, word, deliveries);
	lease_walk_end(t, true);
	return expired;
}

static void test_lease_runs_out_when_walks_span_the_timeout(void **state)
{
	struct lease_table t = { 0 };

	(void)state;
	assert_false(walk_meeting(&t, T0, 128, WORD_A, 1));
	assert_false(walk_meeting(&t, T0 + 500, 128, WORD_A, 1));
	assert_false(walk_meeting(&t, T0 + TIMEOUT - LEASE_CLOCK_SLACK_MS - 1, 128, WORD_A, 1));
	assert_int_equal(lease_count(&t), 1);
	assert_true(walk_meeting(&t, T0 + TIMEOUT - LEASE_CLOCK_SLACK_MS, 128, WORD_A, 1));
	/* taken back: forgotten, so met again it starts anew */
	assert_int_equal(lease_count(&t), 0);
	assert_false(walk_meeting(&t, T0 + 5000, 128, WORD_A, 1));
	assert_false(walk_meeting(&t, T0 + 5500, 128, WORD_A, 1));
	assert_true(walk_meeting(&t, T0 + 6000, 128, WORD_A, 1));
	lease_table_clear(&t);
}

/* One walk is not enough, whatever the timeout. */
static void test_a_lease_met_once_never_ran_out(void **state)
{
	struct lease_table t = { 0 };

	(void)state;
	lease_walk_begin(&t, RING_A, MAX, 1, T0);
	assert_false(lease_walk_met(&t, 0, WORD_A, 1));
	lease_walk_end(&t, true);
	lease_table_clear(&t);
}

static void test_timeout_0_never_runs_out(void **state)
{
	struct lease_table t = { 0 };

	(void)state;
	for (uint64_t now = T0; now < T0 + 100000; now += 10000) {
		lease_walk_begin(&t, RING_A, MAX, 0, now);
		assert_false(lease_walk_met(&t, 0, WORD_A, 1));
		lease_walk_end(&t, true);
	}
	lease_table_clear(&t);
}

/* Another word (a chunk reused, another holder) or another delivery (the
 * same process took it again after it was given back) at the offset is
 * a new lease. */
static void test_a_new_word_or_delivery_at_the_offset_is_a_new_lease(void **state)
{
	struct lease_table t = { 0 };

	(void)state;
	assert_false(walk_meeting(&t, T0, 256, WORD_A, 1));
	assert_false(walk_meeting(&t, T0 + 2000, 256, WORD_B, 1));
	assert_false(walk_meeting(&t, T0 + 2500, 256, WORD_B, 1));
	assert_false(walk_meeting(&t, T0 + 4000, 256, WORD_B, 2));
	assert_false(walk_meeting(&t, T0 + 4500, 256, WORD_B, 2));
	assert_true(walk_meeting(&t, T0 + 5000, 256, WORD_B, 2));
	lease_table_clear(&t);
}

/* A whole walk forgets what it did not meet (released meanwhile); a walk
 * cut short keeps it. */
static void test_whole_walk_forgets_what_it_missed_and_partial_keeps_it(void **state)
{
	struct lease_table t = { 0 };

	(void)state;
	lease_walk_begin(&t, RING_A, MAX, TIMEOUT, T0);
	assert_false(lease_walk_met(&t, 4096, WORD_B, 1)); /* met after a wrap */
	assert_false(lease_walk_met(&t, 0, WORD_A, 1));
	lease_walk_end(&t, true);
	assert_int_equal(lease_count(&t), 2);

	lease_walk_begin(&t, RING_A, MAX, TIMEOUT, T0 + 500);
	assert_false(lease_walk_met(&t, 0, WORD_A, 1));
	lease_walk_end(&t, false);
	assert_int_equal(lease_count(&t), 2);

	lease_walk_begin(&t, RING_A, MAX, TIMEOUT, T0 + 1000);
	assert_true(lease_walk_met(&t, 4096, WORD_B, 1)); /* kept since T0 */
	lease_walk_end(&t, true);
	assert_int_equal(lease_count(&t), 0); /* A missed, B taken back */

	assert_false(walk_meeting(&t, T0 + 1500, 0, WORD_A, 1));
	lease_table_clear(&t);
}

/* Never more leases than the ring holds chunks, however often a walk
 * met the same offsets; memory is given back when none is left. */
static void test_table_is_bounded_by_the_ring_and_emptied(void **state)
{
	struct lease_table t = { 0 };

	(void)state;
	lease_walk_begin(&t, RING_A, 4, TIMEOUT, T0);
	for (unsigned round = 0; round < 3; round++)
		for (uint64_t off = 0; off < 10 * 128; off += 128)
			assert_false(lease_walk_met(&t, off, WORD_A, 1));
	lease_walk_end(&t, true);
	assert_true(lease_count(&t) <= 4);
	assert_true(t.cap_seen <= 4 && t.cap_met <= 4);

	lease_walk_begin(&t, RING_A, 4, TIMEOUT, T0 + 100);
	lease_walk_end(&t, true);
	assert_int_equal(lease_count(&t), 0);
	assert_null(t.seen);
	assert_null(t.met);
}

/* A table of another ring's leases (the queue rebuilt with new objects)
 * is not carried over. */
static void test_another_rings_leases_are_dropped(void **state)
{
	struct lease_table t = { 0 };

	(void)state;
	assert_false(walk_meeting(&t, T0, 0, WORD_A, 1));
	lease_walk_begin(&t, RING_B, MAX, TIMEOUT, T0 + 5000);
	assert_false(lease_walk_met(&t, 0, WORD_A, 1));
	lease_walk_end(&t, true);
	lease_walk_begin(&t, RING_B, MAX, TIMEOUT, T0 + 6000);
	assert_true(lease_walk_met(&t, 0, WORD_A, 1));
	lease_walk_end(&t, true);
	lease_table_clear(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lease_runs_out_when_walks_span_the_timeout),
		cmocka_unit_test(test_a_lease_met_once_never_ran_out),
		cmocka_unit_test(test_timeout_0_never_runs_out),
		cmocka_unit_test(test_a_new_word_or_delivery_at_the_offset_is_a_new_lease),
		cmocka_unit_test(test_whole_walk_forgets_what_it_missed_and_partial_keeps_it),
		cmocka_unit_test(test_table_is_bounded_by_the_ring_and_emptied),
		cmocka_unit_test(test_another_rings_leases_are_dropped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
