/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_util.c - size parsing, the cached pid across fork, and deadlines
 * (common/util.c, util.h).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

static void assert_size_parses(const char *s, uint64_t want)
{
	uint64_t v = 0xdeadbeef;
	int r = parse_size(s, &v);

	if (r != 0 || v != want)
		print_error("parse_size(\"%s\"): %d, %llu; wanted %llu\n", s, r, (unsigned long long)v,
		            (unsigned long long)want);
	assert_int_equal(r, 0);
	assert_int_equal(v, want);
}

static void assert_size_fails(const char *s, int want)
{
	uint64_t v = 0xdeadbeef;
	int r = parse_size(s, &v);

	if (r != want)
		print_error("parse_size(\"%s\"): %d; wanted %d\n", s, r, want);
	assert_int_equal(r, want);
	assert_int_equal(v, 0xdeadbeef); /* untouched on failure */
}

static void test_parse_size_reads_plain_integers(void **state)
{
	assert_size_parses("0", 0);
	assert_size_parses("123", 123);
	assert_size_parses("18446744073709551609", UINT64_MAX - 6);
}

static void test_parse_size_applies_binary_suffixes(void **state)
{
	assert_size_parses("4K", 4096);
	assert_size_parses("4k", 4096);
	assert_size_parses("64M", 64ull << 20);
	assert_size_parses("1G", 1ull << 30);
	assert_size_parses("16MiB", 16ull << 20);
	assert_size_parses("2KB", 2048);
	assert_size_parses("17179869183G", ((1ull << 34) - 1) << 30);
}

static void test_parse_size_rejects_malformed_strings(void **state)
{
	assert_size_fails("", -EINVAL);
	assert_size_fails("K", -EINVAL);
	assert_size_fails("12X", -EINVAL);
	assert_size_fails("-1", -EINVAL);
	assert_size_fails("1.5M", -EINVAL);
	assert_size_fails(" 1", -EINVAL);
	assert_size_fails("1K ", -EINVAL);
	assert_size_fails("1KK", -EINVAL);
	assert_size_fails(NULL, -EINVAL);
}

static void test_parse_size_reports_overflow_as_erange(void **state)
{
	assert_size_fails("99999999999999999999", -ERANGE);
	assert_size_fails("18446744073709551616", -ERANGE);
	assert_size_fails("18446744073709551615G", -ERANGE);
	assert_size_fails("17179869184G", -ERANGE); /* 2^64 exactly */
}

/* The header promises -ERANGE only on overflow: the largest values a
 * uint64_t holds must parse. */
static void test_parse_size_accepts_largest_value(void **state)
{
	assert_size_parses("18446744073709551615", UINT64_MAX);
	assert_size_parses("18446744073709551610", UINT64_MAX - 5);
}

static void test_self_pid_is_getpid(void **state)
{
	assert_int_equal(self_pid(), getpid());
	assert_int_equal(self_pid(), getpid()); /* cached */
}

static void test_self_pid_is_refreshed_in_forked_child(void **state)
{
	pid_t child;
	int status = 0;

	assert_int_equal(self_pid(), getpid()); /* cache the parent's pid */
	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(self_pid() == getpid() ? 0 : 1);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(self_pid(), getpid());
}

static void test_deadline_after_is_timeout_from_now(void **state)
{
	const int timeout_ms = 250;
	uint64_t before = now_ns(CLOCK_MONOTONIC);
	struct timespec dl = deadline_after(CLOCK_MONOTONIC, timeout_ms);
	uint64_t after = now_ns(CLOCK_MONOTONIC);
	uint64_t at = (uint64_t)dl.tv_sec * 1000000000ull + (uint64_t)dl.tv_nsec;

	assert_in_range(dl.tv_nsec, 0, 999999999);
	assert_true(at >= before + (uint64_t)timeout_ms * 1000000ull);
	assert_true(at <= after + (uint64_t)timeout_ms * 1000000ull);
}

static void test_deadline_after_zero_is_now(void **state)
{
	uint64_t before = now_ns(CLOCK_REALTIME);
	struct timespec dl = deadline_after(CLOCK_REALTIME, 0);
	uint64_t after = now_ns(CLOCK_REALTIME);
	uint64_t at = (uint64_t)dl.tv_sec * 1000000000ull + (uint64_t)dl.tv_nsec;

	assert_true(at >= before);
	assert_true(at <= after);
}

static void test_env_true_takes_yes_values_and_refuses_no_values(void **state)
{
	static const char *const yes[] = { "1", "yes", "true", "on", "TRUE" };
	static const char *const no[] = { "", "0", "no", "No", "false", "FALSE" };

	unsetenv("IPCQ_TEST_FLAG");
	assert_false(util_env_true("IPCQ_TEST_FLAG"));
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		setenv("IPCQ_TEST_FLAG", yes[i], 1);
		assert_true(util_env_true("IPCQ_TEST_FLAG"));
	}
	for (size_t i = 0; i < ARRAY_SIZE(no); i++) {
		setenv("IPCQ_TEST_FLAG", no[i], 1);
		assert_false(util_env_true("IPCQ_TEST_FLAG"));
	}
	unsetenv("IPCQ_TEST_FLAG");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size_reads_plain_integers),
		cmocka_unit_test(test_parse_size_applies_binary_suffixes),
		cmocka_unit_test(test_parse_size_rejects_malformed_strings),
		cmocka_unit_test(test_parse_size_reports_overflow_as_erange),
		cmocka_unit_test(test_parse_size_accepts_largest_value),
		cmocka_unit_test(test_self_pid_is_getpid),
		cmocka_unit_test(test_self_pid_is_refreshed_in_forked_child),
		cmocka_unit_test(test_deadline_after_is_timeout_from_now),
		cmocka_unit_test(test_deadline_after_zero_is_now),
		cmocka_unit_test(test_env_true_takes_yes_values_and_refuses_no_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
