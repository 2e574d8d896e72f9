/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_proto.c - the control protocol, the data message headers and the
 * naming rules that the daemon and the library share (common/proto.c).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

/* ---- requests ---- */

/* A valid OPEN request for "jobs", as the library would send it. */
static struct proto_req open_request(void)
{
	struct proto_req req;

	proto_req_init(&req, PROTO_OP_OPEN, 7, "jobs");
	req.flags = IPCQ_SEND | IPCQ_RECV | IPCQ_CREATE;
	return req;
}

static void test_request_round_trips_through_decode(void **state)
{
	struct proto_req req, out;

	proto_req_init(&req, PROTO_OP_NOTIFY, 42, "a.b-c_9");
	req.flags = IPCQ_RECV;
	req.arg = 10;
	req.geo = (ipcq_geometry){ .max_msgs = 5, .msg_size = 128, .ring_size = 1u << 20, .max_payload = 4096 };

	assert_int_equal(proto_req_decode(&req, sizeof(req), &out), 0);
	assert_int_equal(out.magic, PROTO_MAGIC);
	assert_int_equal(out.version, PROTO_VERSION);
	assert_int_equal(out.op, PROTO_OP_NOTIFY);
	assert_int_equal(out.seq, 42);
	assert_int_equal(out.flags, IPCQ_RECV);
	assert_int_equal(out.arg, 10);
	assert_string_equal(out.name, "a.b-c_9");
	assert_int_equal(out.geo.max_msgs, 5);
	assert_int_equal(out.geo.msg_size, 128);
	assert_int_equal(out.geo.ring_size, 1u << 20);
	assert_int_equal(out.geo.max_payload, 4096);
}

static void test_request_of_wrong_length_is_eproto(void **state)
{
	struct proto_req req = open_request(), out;
	unsigned char big[sizeof(req) + 1];

	memset(big, 0, sizeof(big));
	memcpy(big, &req, sizeof(req));
	assert_int_equal(proto_req_decode(&req, sizeof(req) - 1, &out), -EPROTO);
	assert_int_equal(proto_req_decode(big, sizeof(big), &out), -EPROTO);
	assert_int_equal(proto_req_decode(&req, 0, &out), -EPROTO);
}

static void test_request_with_bad_magic_is_eproto(void **state)
{
	struct proto_req req = open_request(), out;

	req.magic ^= 1;
	assert_int_equal(proto_req_decode(&req, sizeof(req), &out), -EPROTO);
}

static void test_request_with_other_version_is_eproto(void **state)
{
	struct proto_req req = open_request(), out;

	req.version = PROTO_VERSION + 1;
	assert_int_equal(proto_req_decode(&req, sizeof(req), &out), -EPROTO);
}

static void test_request_with_unknown_op_is_eproto(void **state)
{
	struct proto_req req = open_request(), out;

	req.op = 0;
	assert_int_equal(proto_req_decode(&req, sizeof(req), &out), -EPROTO);
	req.op = PROTO_OP_MAX_;
	assert_int_equal(proto_req_decode(&req, sizeof(req), &out), -EPROTO);
	req.op = 0xffff;
	assert_int_equal(proto_req_decode(&req, sizeof(req), &out), -EPROTO);
	/* every op below the bound is known */
	for (uint16_t op = 1; op < PROTO_OP_MAX_; op++) {
		req.op = op;
		assert_int_equal(proto_req_decode(&req, sizeof(req), &out), 0);
	}
}

static void test_request_name_without_terminator_is_eproto(void **state)
{
	struct proto_req req = open_request(), out;

	memset(req.name, 'a', sizeof(req.name));
	assert_int_equal(proto_req_decode(&req, sizeof(req), &out), -EPROTO);
}

static void test_request_with_invalid_name_is_einval(void **state)
{
	struct proto_req req = open_request(), out;

	snprintf(req.name, sizeof(req.name), "a/b");
	assert_int_equal(proto_req_decode(&req, sizeof(req), &out), -EINVAL);
	memset(req.name, 0, sizeof(req.name));
	assert_int_equal(proto_req_decode(&req, sizeof(req), &out), -EINVAL);
}

static void test_request_with_unknown_flag_is_rejected(void **state)
{
	struct proto_req req = open_request(), out;

	req.flags = IPCQ_SEND | (1u << 3);
	assert_int_equal(proto_req_decode(&req, sizeof(req), &out), -EINVAL);
	req.flags = 1u << 31;
	assert_int_equal(proto_req_decode(&req, sizeof(req), &out), -EINVAL);
}

static void test_list_request_accepts_empty_name(void **state)
{
	struct proto_req req, out;

	proto_req_init(&req, PROTO_OP_LIST, 3, NULL);
	req.arg = 32;
	assert_int_equal(proto_req_decode(&req, sizeof(req), &out), 0);
	assert_int_equal(out.op, PROTO_OP_LIST);
	assert_int_equal(out.arg, 32);
	assert_string_equal(out.name, "");
}

/* ---- replies ---- */

/* A reply buffer with room for PROTO_LIST_MAX + 1 stats records. */
struct reply_buf {
	struct proto_reply rep;
	ipcq_stats st[PROTO_LIST_MAX + 1];
};

static size_t reply_len(uint32_t count)
{
	return sizeof(struct proto_reply) + count * sizeof(ipcq_stats);
}

static void test_reply_matching_request_is_accepted(void **state)
{
	struct proto_req req = open_request();
	struct reply_buf b;
	const struct proto_reply *out = NULL;

	memset(&b, 0, sizeof(b));
	proto_reply_init(&b.rep, &req, -ENOENT);
	snprintf(b.rep.errmsg, sizeof(b.rep.errmsg), "no queue jobs");
	assert_int_equal(proto_reply_decode(&b, reply_len(0), &req, &out), 0);
	assert_ptr_equal(out, &b.rep);
	assert_int_equal(out->status, -ENOENT);
	assert_int_equal(out->seq, 7);
	assert_int_equal(out->op, PROTO_OP_OPEN);

	b.rep.status = 0;
	b.rep.count = 1;
	snprintf(b.st[0].name, sizeof(b.st[0].name), "jobs");
	assert_int_equal(proto_reply_decode(&b, reply_len(1), &req, &out), 0);
}

static void test_reply_with_other_seq_or_op_is_eproto(void **state)
{
	struct proto_req req = open_request();
	struct reply_buf b;
	const struct proto_reply *out = NULL;

	memset(&b, 0, sizeof(b));
	proto_reply_init(&b.rep, &req, 0);
	b.rep.seq = req.seq + 1;
	assert_int_equal(proto_reply_decode(&b, reply_len(0), &req, &out), -EPROTO);
	b.rep.seq = req.seq;
	b.rep.op = PROTO_OP_STAT;
	assert_int_equal(proto_reply_decode(&b, reply_len(0), &req, &out), -EPROTO);
	assert_null(out);
}

static void test_reply_with_bad_magic_or_version_is_eproto(void **state)
{
	struct proto_req req = open_request();
	struct reply_buf b;
	const struct proto_reply *out = NULL;

	memset(&b, 0, sizeof(b));
	proto_reply_init(&b.rep, &req, 0);
	b.rep.magic = 0;
	assert_int_equal(proto_reply_decode(&b, reply_len(0), &req, &out), -EPROTO);
	b.rep.magic = PROTO_MAGIC;
	b.rep.version = PROTO_VERSION + 1;
	assert_int_equal(proto_reply_decode(&b, reply_len(0), &req, &out), -EPROTO);
}

static void test_reply_with_too_many_entries_is_eproto(void **state)
{
	struct proto_req req;
	struct reply_buf b;
	const struct proto_reply *out = NULL;

	proto_req_init(&req, PROTO_OP_LIST, 9, NULL);
	memset(&b, 0, sizeof(b));
	proto_reply_init(&b.rep, &req, 0);
	b.rep.count = PROTO_LIST_MAX;
	assert_int_equal(proto_reply_decode(&b, reply_len(PROTO_LIST_MAX), &req, &out), 0);
	b.rep.count = PROTO_LIST_MAX + 1;
	assert_int_equal(proto_reply_decode(&b, reply_len(PROTO_LIST_MAX + 1), &req, &out), -EPROTO);
}

static void test_reply_length_not_matching_count_is_eproto(void **state)
{
	struct proto_req req;
	struct reply_buf b;
	const struct proto_reply *out = NULL;

	proto_req_init(&req, PROTO_OP_LIST, 9, NULL);
	memset(&b, 0, sizeof(b));
	proto_reply_init(&b.rep, &req, 0);
	b.rep.count = 2;
	assert_int_equal(proto_reply_decode(&b, reply_len(1), &req, &out), -EPROTO);
	assert_int_equal(proto_reply_decode(&b, reply_len(3), &req, &out), -EPROTO);
	assert_int_equal(proto_reply_decode(&b, reply_len(2) - 1, &req, &out), -EPROTO);
	assert_int_equal(proto_reply_decode(&b, sizeof(struct proto_reply) - 1, &req, &out), -EPROTO);
	assert_int_equal(proto_reply_decode(&b, reply_len(2), &req, &out), 0);
}

static void test_reply_with_positive_status_is_eproto(void **state)
{
	struct proto_req req = open_request();
	struct reply_buf b;
	const struct proto_reply *out = NULL;

	memset(&b, 0, sizeof(b));
	proto_reply_init(&b.rep, &req, 1);
	assert_int_equal(proto_reply_decode(&b, reply_len(0), &req, &out), -EPROTO);
}

static void test_reply_with_unterminated_strings_is_eproto(void **state)
{
	struct proto_req req = open_request();
	struct reply_buf b;
	const struct proto_reply *out = NULL;

	memset(&b, 0, sizeof(b));
	proto_reply_init(&b.rep, &req, -EACCES);
	memset(b.rep.errmsg, 'x', sizeof(b.rep.errmsg));
	assert_int_equal(proto_reply_decode(&b, reply_len(0), &req, &out), -EPROTO);

	memset(&b, 0, sizeof(b));
	proto_reply_init(&b.rep, &req, 0);
	b.rep.count = 1;
	memset(b.st[0].name, 'q', sizeof(b.st[0].name));
	assert_int_equal(proto_reply_decode(&b, reply_len(1), &req, &out), -EPROTO);
}

/* ---- names ---- */

static void test_queue_names_accept_letters_digits_dot_dash_underscore(void **state)
{
	char longest[IPCQ_NAME_MAX + 1];

	memset(longest, 'x', IPCQ_NAME_MAX);
	longest[IPCQ_NAME_MAX] = '\0';
	assert_true(proto_queue_name_valid("jobs"));
	assert_true(proto_queue_name_valid("a.b"));
	assert_true(proto_queue_name_valid("A-9_x"));
	assert_true(proto_queue_name_valid(longest));
}

static void test_queue_names_reject_empty_leading_dot_slash_space_long_utf8(void **state)
{
	char too_long[IPCQ_NAME_MAX + 2];

	memset(too_long, 'x', IPCQ_NAME_MAX + 1);
	too_long[IPCQ_NAME_MAX + 1] = '\0';
	assert_false(proto_queue_name_valid(NULL));
	assert_false(proto_queue_name_valid(""));
	assert_false(proto_queue_name_valid(".hidden"));
	assert_false(proto_queue_name_valid("a/b"));
	assert_false(proto_queue_name_valid("a b"));
	assert_false(proto_queue_name_valid(too_long));
	assert_false(proto_queue_name_valid("\xc3\xa9")); /* "é" in UTF-8 */
}

static void test_namespace_names_allow_no_dot_and_32_chars_at_most(void **state)
{
	char longest[IPCQ_NAMESPACE_MAX + 1], too_long[IPCQ_NAMESPACE_MAX + 2];

	memset(longest, 'n', IPCQ_NAMESPACE_MAX);
	longest[IPCQ_NAMESPACE_MAX] = '\0';
	memset(too_long, 'n', IPCQ_NAMESPACE_MAX + 1);
	too_long[IPCQ_NAMESPACE_MAX + 1] = '\0';
	assert_true(proto_namespace_valid("default"));
	assert_true(proto_namespace_valid("test-1_A"));
	assert_true(proto_namespace_valid(longest));
	assert_false(proto_namespace_valid(too_long));
	assert_false(proto_namespace_valid("a.b"));
	assert_false(proto_namespace_valid(""));
	assert_false(proto_namespace_valid(NULL));
	assert_false(proto_namespace_valid("a/b"));
}

static void test_object_name_joins_prefix_namespace_queue_token_suffix(void **state)
{
	char buf[128];

	assert_int_equal(proto_object_name(buf, sizeof(buf), "ns", "q", "0123456789abcdef", ".ring"), 32);
	assert_string_equal(buf, "/ipcq.ns.q.0123456789abcdef.ring");
	assert_int_equal(proto_object_name(buf, sizeof(buf), "ns", "a.b", "fedcba9876543210", NULL), 29);
	assert_string_equal(buf, "/ipcq.ns.a.b.fedcba9876543210");
	/* a registry from before tokens */
	assert_int_equal(proto_object_name(buf, sizeof(buf), "ns", "q", "", ".ring"), 15);
	assert_string_equal(buf, "/ipcq.ns.q.ring");
}

static void test_object_name_too_long_for_buffer_is_enametoolong(void **state)
{
	char buf[16]; /* exactly "/ipcq.ns.q.ring" and its NUL */

	assert_int_equal(proto_object_name(buf, sizeof(buf) - 1, "ns", "q", "", ".ring"), -ENAMETOOLONG);
	assert_int_equal(proto_object_name(buf, 8, "ns", "q", "", ".ring"), -ENAMETOOLONG);
	assert_int_equal(proto_object_name(buf, sizeof(buf), "ns", "q", "", ".ring"), 15);
	assert_string_equal(buf, "/ipcq.ns.q.ring");
}

static void test_object_name_with_invalid_parts_is_einval(void **state)
{
	char buf[128];

	assert_int_equal(proto_object_name(buf, sizeof(buf), "a.b", "q", "", ""), -EINVAL);
	assert_int_equal(proto_object_name(buf, sizeof(buf), "ns", "../x", "", ""), -EINVAL);
	assert_int_equal(proto_object_name(buf, sizeof(buf), "ns", "q", "0123", ""), -EINVAL);
	assert_int_equal(proto_object_name(buf, sizeof(buf), "ns", "q", "0123456789ABCDEF", ""), -EINVAL);
	assert_int_equal(proto_object_name(buf, sizeof(buf), "ns", "q", "../../etc/passwd", ""), -EINVAL);
	assert_int_equal(proto_object_name(buf, sizeof(buf), "ns", "q", NULL, ""), -EINVAL);
}

static void test_longest_object_name_fits_its_buffer(void **state)
{
	char ns[IPCQ_NAMESPACE_MAX + 1], q[IPCQ_NAME_MAX + 1], buf[PROTO_OBJ_NAME_MAX];

	memset(ns, 'n', IPCQ_NAMESPACE_MAX);
	ns[IPCQ_NAMESPACE_MAX] = '\0';
	memset(q, 'q', IPCQ_NAME_MAX);
	q[IPCQ_NAME_MAX] = '\0';
	assert_true(proto_object_name(buf, sizeof(buf), ns, q, "0123456789abcdef", ".ring") > 0);
}

static void test_system_socket_path_is_under_run_for_every_user(void **state)
{
	char buf[256];

	/* the same path whoever asks, with or without a runtime dir */
	unsetenv("XDG_RUNTIME_DIR");
	assert_int_equal(proto_socket_path(buf, sizeof(buf), "jobs-ns", PROTO_BUS_SYSTEM),
	                 (int)strlen("/run/ipcbroker/jobs-ns.sock"));
	assert_string_equal(buf, "/run/ipcbroker/jobs-ns.sock");
	setenv("XDG_RUNTIME_DIR", "/tmp/xdg-test", 1);
	assert_int_equal(proto_socket_path(buf, sizeof(buf), NULL, PROTO_BUS_SYSTEM),
	                 (int)strlen("/run/ipcbroker/default.sock"));
	assert_string_equal(buf, "/run/ipcbroker/default.sock");
}

static void test_user_socket_path_is_under_the_runtime_dir(void **state)
{
	char buf[256];

	setenv("XDG_RUNTIME_DIR", "/tmp/xdg-test", 1);
	assert_int_equal(proto_socket_path(buf, sizeof(buf), NULL, PROTO_BUS_USER),
	                 (int)strlen("/tmp/xdg-test/ipcbroker/default.sock"));
	assert_string_equal(buf, "/tmp/xdg-test/ipcbroker/default.sock");
}

static void test_user_socket_path_without_runtime_dir_is_edestaddrreq(void **state)
{
	char buf[256];

	unsetenv("XDG_RUNTIME_DIR");
	assert_int_equal(proto_socket_path(buf, sizeof(buf), NULL, PROTO_BUS_USER), -EDESTADDRREQ);
	setenv("XDG_RUNTIME_DIR", "relative/dir", 1);
	assert_int_equal(proto_socket_path(buf, sizeof(buf), NULL, PROTO_BUS_USER), -EDESTADDRREQ);
}

static void test_socket_path_rejects_bad_namespace_and_small_buffer(void **state)
{
	char buf[256];

	setenv("XDG_RUNTIME_DIR", "/tmp/xdg-test", 1);
	assert_int_equal(proto_socket_path(buf, sizeof(buf), "a.b", PROTO_BUS_SYSTEM), -EINVAL);
	assert_int_equal(proto_socket_path(buf, sizeof(buf), "a/b", PROTO_BUS_USER), -EINVAL);
	assert_int_equal(proto_socket_path(buf, 10, "default", PROTO_BUS_SYSTEM), -ENAMETOOLONG);
	assert_int_equal(proto_socket_path(buf, 20, "default", PROTO_BUS_USER), -ENAMETOOLONG);
}

/* ---- data messages ---- */

static void test_inline_message_with_matching_len_is_inline(void **state)
{
	unsigned char msg[PROTO_MSG_HDR_SIZE + 5];
	struct proto_msg_hdr h = { .kind = PROTO_MSG_INLINE, .len = 5 };

	memcpy(msg, &h, sizeof(h));
	memcpy(msg + sizeof(h), "hello", 5);
	assert_int_equal(proto_msg_check(msg, sizeof(msg)), PROTO_MSG_INLINE);
	h.len = 0;
	memcpy(msg, &h, sizeof(h));
	assert_int_equal(proto_msg_check(msg, sizeof(h)), PROTO_MSG_INLINE);
}

static void test_inline_message_with_mismatched_len_is_ebadmsg(void **state)
{
	unsigned char msg[PROTO_MSG_HDR_SIZE + 5];
	struct proto_msg_hdr h = { .kind = PROTO_MSG_INLINE, .len = 6 };

	memset(msg, 0, sizeof(msg));
	memcpy(msg, &h, sizeof(h));
	assert_int_equal(proto_msg_check(msg, sizeof(msg)), -EBADMSG);
	h.len = 4;
	memcpy(msg, &h, sizeof(h));
	assert_int_equal(proto_msg_check(msg, sizeof(msg)), -EBADMSG);
}

static void test_ring_descriptor_of_exact_size_is_ring(void **state)
{
	struct proto_ring_desc d = { .hdr = { .kind = PROTO_MSG_RING, .len = 100000 }, .offset = 64, .gen = 3 };

	assert_int_equal(proto_msg_check(&d, sizeof(d)), PROTO_MSG_RING);
}

static void test_ring_descriptor_of_wrong_size_is_ebadmsg(void **state)
{
	unsigned char msg[sizeof(struct proto_ring_desc) + 1];
	struct proto_ring_desc d = { .hdr = { .kind = PROTO_MSG_RING, .len = 100 }, .offset = 64, .gen = 3 };

	memset(msg, 0, sizeof(msg));
	memcpy(msg, &d, sizeof(d));
	assert_int_equal(proto_msg_check(msg, sizeof(d) - 1), -EBADMSG);
	assert_int_equal(proto_msg_check(msg, sizeof(d) + 1), -EBADMSG);
}

static void test_closed_is_a_bare_header(void **state)
{
	unsigned char msg[sizeof(struct proto_msg_hdr) + 1] = { 0 };
	struct proto_msg_hdr h = { .kind = PROTO_MSG_CLOSED, .len = 0 };

	memcpy(msg, &h, sizeof(h));
	assert_int_equal(proto_msg_check(msg, sizeof(h)), PROTO_MSG_CLOSED);
	assert_int_equal(proto_msg_check(msg, sizeof(msg)), -EBADMSG); /* a payload */
	h.len = 1;
	memcpy(msg, &h, sizeof(h));
	assert_int_equal(proto_msg_check(msg, sizeof(h)), -EBADMSG);
}

static void test_message_of_unknown_kind_is_ebadmsg(void **state)
{
	struct proto_ring_desc d = { .hdr = { .kind = 'Z', .len = 16 }, .offset = 64, .gen = 3 };

	assert_int_equal(proto_msg_check(&d, sizeof(d)), -EBADMSG);
	d.hdr.kind = 0;
	assert_int_equal(proto_msg_check(&d, sizeof(d)), -EBADMSG);
}

static void test_message_shorter_than_header_is_ebadmsg(void **state)
{
	struct proto_msg_hdr h = { .kind = PROTO_MSG_INLINE, .len = 0 };

	assert_int_equal(proto_msg_check(&h, sizeof(h) - 1), -EBADMSG);
	assert_int_equal(proto_msg_check(&h, 0), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_round_trips_through_decode),
		cmocka_unit_test(test_request_of_wrong_length_is_eproto),
		cmocka_unit_test(test_request_with_bad_magic_is_eproto),
		cmocka_unit_test(test_request_with_other_version_is_eproto),
		cmocka_unit_test(test_request_with_unknown_op_is_eproto),
		cmocka_unit_test(test_request_name_without_terminator_is_eproto),
		cmocka_unit_test(test_request_with_invalid_name_is_einval),
		cmocka_unit_test(test_request_with_unknown_flag_is_rejected),
		cmocka_unit_test(test_list_request_accepts_empty_name),
		cmocka_unit_test(test_reply_matching_request_is_accepted),
		cmocka_unit_test(test_reply_with_other_seq_or_op_is_eproto),
		cmocka_unit_test(test_reply_with_bad_magic_or_version_is_eproto),
		cmocka_unit_test(test_reply_with_too_many_entries_is_eproto),
		cmocka_unit_test(test_reply_length_not_matching_count_is_eproto),
		cmocka_unit_test(test_reply_with_positive_status_is_eproto),
		cmocka_unit_test(test_reply_with_unterminated_strings_is_eproto),
		cmocka_unit_test(test_queue_names_accept_letters_digits_dot_dash_underscore),
		cmocka_unit_test(test_queue_names_reject_empty_leading_dot_slash_space_long_utf8),
		cmocka_unit_test(test_namespace_names_allow_no_dot_and_32_chars_at_most),
		cmocka_unit_test(test_object_name_joins_prefix_namespace_queue_token_suffix),
		cmocka_unit_test(test_longest_object_name_fits_its_buffer),
		cmocka_unit_test(test_object_name_too_long_for_buffer_is_enametoolong),
		cmocka_unit_test(test_object_name_with_invalid_parts_is_einval),
		cmocka_unit_test(test_system_socket_path_is_under_run_for_every_user),
		cmocka_unit_test(test_user_socket_path_is_under_the_runtime_dir),
		cmocka_unit_test(test_user_socket_path_without_runtime_dir_is_edestaddrreq),
		cmocka_unit_test(test_socket_path_rejects_bad_namespace_and_small_buffer),
		cmocka_unit_test(test_inline_message_with_matching_len_is_inline),
		cmocka_unit_test(test_inline_message_with_mismatched_len_is_ebadmsg),
		cmocka_unit_test(test_ring_descriptor_of_exact_size_is_ring),
		cmocka_unit_test(test_ring_descriptor_of_wrong_size_is_ebadmsg),
		cmocka_unit_test(test_closed_is_a_bare_header),
		cmocka_unit_test(test_message_of_unknown_kind_is_ebadmsg),
		cmocka_unit_test(test_message_shorter_than_header_is_ebadmsg),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
