/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_config.c - the daemon's config: what parses, what each value
 * becomes, and that every mistake is reported as FILE:LINE.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "daemon.h"
#include "policy.h"
#include "proto.h"

/* Outcome of loading a config text from a temporary file. */
struct loaded {
	int r;
	struct config *cfg;
	char path[4096];
	char *err; /* everything config_load() wrote to its error stream */
	size_t err_len;
};

static void write_temp_config(char *path, size_t cap, const char *text)
{
	const char *dir = getenv("TMPDIR");
	ssize_t len = (ssize_t)strlen(text);
	int fd;

	snprintf(path, cap, "%s/test_config.XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, (size_t)len), len);
	close(fd);
}

static void load_path(struct loaded *l, const char *path)
{
	FILE *err = open_memstream(&l->err, &l->err_len);

	assert_non_null(err);
	l->cfg = NULL;
	l->r = config_load(&l->cfg, path, err);
	fclose(err);
}

static void load_text(struct loaded *l, const char *text)
{
	write_temp_config(l->path, sizeof(l->path), text);
	load_path(l, l->path);
	unlink(l->path);
}

static void loaded_clear(struct loaded *l)
{
	config_free(l->cfg);
	free(l->err);
}

static void assert_loaded_ok(const struct loaded *l)
{
	if (l->r != 0)
		print_error("config_load: %d, output:\n%s", l->r, l->err);
	assert_int_equal(l->r, 0);
	assert_non_null(l->cfg);
	assert_string_equal(l->err, "");
}

/* The load failed with -EINVAL, and one message "PATH:LINE: ..." names
 * what is wrong (needle). */
static void assert_error_at(const struct loaded *l, int line, const char *needle)
{
	char where[sizeof(l->path) + 16];
	const char *msg, *end;
	bool found = false;

	snprintf(where, sizeof(where), "%s:%d: ", l->path, line);
	for (msg = l->err; (msg = strstr(msg, where)); msg = end) {
		end = strchrnul(msg, '\n');
		if (memmem(msg, (size_t)(end - msg), needle, strlen(needle)))
			found = true;
	}
	if (l->r != -EINVAL || !found)
		print_error("wanted \"%s...%s\", config_load: %d, output:\n%s", where, needle, l->r,
		            l->err);
	assert_int_equal(l->r, -EINVAL);
	assert_null(l->cfg);
	assert_true(found);
}

/* policy_acl_match for a peer of uid, gid and supplementary groups */
static bool acl_match(const struct acl *acl, uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups)
{
	const struct policy_subject who = { .uid = uid, .gid = gid, .groups = groups, .ngroups = ngroups };

	return policy_acl_match(acl, &who);
}

static void assert_geometry_equal(ipcq_geometry a, ipcq_geometry b)
{
	assert_int_equal(a.max_msgs, b.max_msgs);
	assert_int_equal(a.msg_size, b.msg_size);
	assert_int_equal(a.ring_size, b.ring_size);
	assert_int_equal(a.max_payload, b.max_payload);
	assert_int_equal(a.max_depth, b.max_depth);
	assert_int_equal(a.prefetch, b.prefetch);
}

/* What the embedded config and the shipped sample both promise. */
static void assert_documented_defaults(const struct config *cfg)
{
	assert_string_equal(cfg->namespace_, "default");
	assert_null(cfg->socket);
	assert_true(cfg->auto_create);
	assert_false(cfg->show_all_queues);
	assert_int_equal(cfg->log_level, LOG_LEVEL_INFO);
	assert_int_equal(cfg->max_clients, 4096);
	assert_int_equal(cfg->user.max_clients, 256);
	assert_int_equal(cfg->user.max_queues, 64);
	assert_int_equal(cfg->user.max_ring_size, 1ull << 30);
	assert_int_equal(cfg->user.max_ring_total, 4ull << 30);
	assert_int_equal(cfg->user.max_mq_total, 512u << 10);
	assert_int_equal(cfg->user.max_depth, 0);
	assert_int_equal(cfg->n_users, 0);
	assert_null(cfg->run_as);
	assert_null(cfg->metrics_file);
	assert_int_equal(cfg->metrics_interval_ms, 15000);
	assert_int_equal(cfg->give_back_after_ms, 60000);
	assert_geometry_equal(cfg->defaults, (ipcq_geometry){ .max_msgs = 10,
	                                                      .msg_size = 512,
	                                                      .ring_size = 64u << 20,
	                                                      .max_payload = 16u << 20,
	                                                      .max_depth = 0,
	                                                      .prefetch = 16 });
	assert_int_equal(cfg->default_delivery, DELIVERY_AT_MOST_ONCE);
	assert_int_equal(cfg->default_ack_timeout_ms, 5 * 60 * 1000);
	assert_int_equal(cfg->n_queues, 0);
}

/* ---- what loads ---- */

static void test_embedded_defaults_have_documented_values(void **state)
{
	struct loaded l = { 0 };

	load_path(&l, NULL);
	assert_loaded_ok(&l);
	assert_string_equal(l.cfg->source, CONFIG_EMBEDDED_SOURCE);
	assert_documented_defaults(l.cfg);
	loaded_clear(&l);
}

static void test_empty_file_takes_documented_defaults(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "# nothing but a comment\n");
	assert_loaded_ok(&l);
	assert_string_equal(l.cfg->source, l.path);
	assert_documented_defaults(l.cfg);
	loaded_clear(&l);
}

static void test_sample_config_parses_to_documented_defaults(void **state)
{
	const char *srcdir = getenv("IPCQ_SRCDIR");
	struct loaded l = { 0 };

	if (!srcdir)
		skip();
	snprintf(l.path, sizeof(l.path), "%s/etc/ipcbrokerd.conf", srcdir);
	load_path(&l, l.path);
	assert_loaded_ok(&l);
	assert_documented_defaults(l.cfg);
	loaded_clear(&l);
}

static void test_full_file_with_queues_and_acls_parses(void **state)
{
	struct loaded l = { 0 };
	const struct queue_config *q;

	load_text(&l, "namespace = \"test-ns_1\"\n"
	              "socket = \"/tmp/ipcq-test.sock\"\n"
	              "auto_create = false\n"
	              "log_level = \"debug\"\n"
	              "max_clients = 16\n"
	              "defaults { max_msgs = 8  msg_size = 256  ring_size = \"1M\"  max_payload = \"512K\" }\n"
	              "queue \"jobs\" {\n"
	              "  max_msgs = 10  msg_size = 1024  ring_size = \"256M\"  max_payload = \"16M\"\n"
	              "  delivery = \"at-least-once\"\n"
	              "  allow_send = { \"user:root\", \"group:root\", \"uid:1234\" }\n"
	              "  allow_recv = { \"gid:4321\", \"*\" }\n"
	              "}\n"
	              "queue \"logs.app\" { delivery = \"at-most-once\" }\n");
	assert_loaded_ok(&l);
	assert_string_equal(l.cfg->namespace_, "test-ns_1");
	assert_string_equal(l.cfg->socket, "/tmp/ipcq-test.sock");
	assert_false(l.cfg->auto_create);
	assert_int_equal(l.cfg->log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(l.cfg->max_clients, 16);
	assert_geometry_equal(l.cfg->defaults, (ipcq_geometry){ .max_msgs = 8,
	                                                        .msg_size = 256,
	                                                        .ring_size = 1u << 20,
	                                                        .max_payload = 512u << 10,
	                                                        .prefetch = 16 });
	assert_int_equal(l.cfg->n_queues, 2);

	q = &l.cfg->queues[0];
	assert_string_equal(q->name, "jobs");
	assert_geometry_equal(q->geo, (ipcq_geometry){ .max_msgs = 10,
	                                               .msg_size = 1024,
	                                               .ring_size = 256u << 20,
	                                               .max_payload = 16u << 20 });
	assert_int_equal(q->delivery, DELIVERY_AT_LEAST_ONCE);
	assert_true(q->allow_send.set);
	assert_int_equal(q->allow_send.n, 3);
	assert_int_equal(q->allow_send.rules[0].kind, ACL_UID);
	assert_int_equal(q->allow_send.rules[0].id, 0);
	assert_int_equal(q->allow_send.rules[1].kind, ACL_GID);
	assert_int_equal(q->allow_send.rules[1].id, 0);
	assert_int_equal(q->allow_send.rules[2].kind, ACL_UID);
	assert_int_equal(q->allow_send.rules[2].id, 1234);
	assert_true(q->allow_recv.set);
	assert_int_equal(q->allow_recv.n, 2);
	assert_int_equal(q->allow_recv.rules[0].kind, ACL_GID);
	assert_int_equal(q->allow_recv.rules[0].id, 4321);
	assert_int_equal(q->allow_recv.rules[1].kind, ACL_ANY);

	q = &l.cfg->queues[1];
	assert_string_equal(q->name, "logs.app");
	assert_geometry_equal(q->geo, (ipcq_geometry){ 0 });
	assert_int_equal(q->delivery, DELIVERY_AT_MOST_ONCE);
	assert_false(q->allow_send.set);
	assert_false(q->allow_recv.set);
	loaded_clear(&l);
}

static void test_sizes_accept_suffixes_and_plain_integers(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "defaults { msg_size = \"4K\"  ring_size = \"64M\"  max_payload = 65536 }\n"
	              "queue \"a\" { msg_size = 1024  ring_size = 128K  max_payload = \"1k\" }\n"
	              "queue \"b\" { ring_size = \"1G\"  max_payload = \"16MiB\" }\n");
	assert_loaded_ok(&l);
	assert_int_equal(l.cfg->defaults.msg_size, 4096);
	assert_int_equal(l.cfg->defaults.ring_size, 64u << 20);
	assert_int_equal(l.cfg->defaults.max_payload, 65536);
	assert_int_equal(l.cfg->queues[0].geo.msg_size, 1024);
	assert_int_equal(l.cfg->queues[0].geo.ring_size, 128u << 10);
	assert_int_equal(l.cfg->queues[0].geo.max_payload, 1024);
	assert_int_equal(l.cfg->queues[1].geo.ring_size, 1u << 30);
	assert_int_equal(l.cfg->queues[1].geo.max_payload, 16u << 20);
	loaded_clear(&l);
}

static void test_queue_delivery_inherits_defaults_declared_later(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "queue \"q\" { }\n"
	              "defaults { delivery = \"at-least-once\" }\n");
	assert_loaded_ok(&l);
	assert_int_equal(l.cfg->queues[0].delivery, DELIVERY_AT_LEAST_ONCE);
	assert_int_equal(l.cfg->default_delivery, DELIVERY_AT_LEAST_ONCE);
	loaded_clear(&l);
}

static void test_empty_acl_is_set_and_absent_acl_is_not(void **state)
{
	struct loaded l = { 0 };
	const struct queue_config *q;

	load_text(&l, "queue \"closed\" { allow_send = { } }\n");
	assert_loaded_ok(&l);
	q = config_find_queue(l.cfg, "closed");
	assert_non_null(q);
	assert_true(q->allow_send.set);
	assert_int_equal(q->allow_send.n, 0);
	assert_false(acl_match(&q->allow_send, 0, 0, NULL, 0));
	assert_false(q->allow_recv.set);
	loaded_clear(&l);
}

static void test_max_payload_may_fill_ring_less_reserve(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "queue \"edge\" { ring_size = \"64K\"  max_payload = 65472 }\n");
	assert_loaded_ok(&l);
	assert_int_equal(l.cfg->queues[0].geo.max_payload, 64 * 1024 - PROTO_RING_RESERVE);
	loaded_clear(&l);
}

static void test_max_depth_and_prefetch_parse_in_defaults_and_queues(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "defaults { max_depth = 500000  prefetch = 8 }\n"
	              "queue \"deep\" { max_depth = 1099511627776  prefetch = 64 }\n"
	              "queue \"one\" { prefetch = 1 }\n"
	              "queue \"plain\" { }\n");
	assert_loaded_ok(&l);
	assert_int_equal(l.cfg->defaults.max_depth, 500000);
	assert_int_equal(l.cfg->defaults.prefetch, 8);
	assert_int_equal(l.cfg->queues[0].geo.max_depth, 1ull << 40);
	assert_int_equal(l.cfg->queues[0].geo.prefetch, 64);
	assert_int_equal(l.cfg->queues[1].geo.prefetch, 1);
	/* left out: 0 in the queue's record, the defaults' value in its geometry */
	assert_int_equal(l.cfg->queues[2].geo.max_depth, 0);
	assert_int_equal(l.cfg->queues[2].geo.prefetch, 0);
	assert_int_equal(config_queue_geometry(l.cfg, &l.cfg->queues[2]).max_depth, 500000);
	assert_int_equal(config_queue_geometry(l.cfg, &l.cfg->queues[2]).prefetch, 8);
	assert_int_equal(config_queue_geometry(l.cfg, &l.cfg->queues[1]).max_depth, 500000);
	assert_int_equal(config_queue_geometry(l.cfg, &l.cfg->queues[1]).prefetch, 1);
	assert_int_equal(config_queue_geometry(l.cfg, NULL).max_depth, 500000);
	loaded_clear(&l);
}

static void test_queue_max_depth_0_lifts_a_default_bound(void **state)
{
	struct loaded l = { 0 };
	ipcq_geometry geo;

	load_text(&l, "defaults { max_depth = 1000 }\n"
	              "queue \"unbounded\" { max_depth = 0 }\n"
	              "queue \"bounded\" { }\n");
	assert_loaded_ok(&l);
	geo = config_queue_geometry(l.cfg, config_find_queue(l.cfg, "unbounded"));
	assert_int_equal(geo.max_depth, 0);
	geo = config_queue_geometry(l.cfg, config_find_queue(l.cfg, "bounded"));
	assert_int_equal(geo.max_depth, 1000);
	loaded_clear(&l);
}

static void test_ack_timeout_takes_units_in_defaults_and_queues(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "defaults { ack_timeout = \"30s\" }\n"
	              "queue \"ms\" { ack_timeout = \"1500ms\" }\n"
	              "queue \"min\" { delivery = \"at-least-once\"  ack_timeout = \"2m\" }\n"
	              "queue \"hour\" { ack_timeout = \"24h\" }\n"
	              "queue \"none\" { ack_timeout = 0 }\n"
	              "queue \"zero\" { ack_timeout = \"0\" }\n"
	              "queue \"plain\" { }\n");
	assert_loaded_ok(&l);
	assert_int_equal(l.cfg->default_ack_timeout_ms, 30000);
	assert_int_equal(config_queue_ack_timeout(l.cfg, config_find_queue(l.cfg, "ms")), 1500);
	assert_int_equal(config_queue_ack_timeout(l.cfg, config_find_queue(l.cfg, "min")), 120000);
	assert_int_equal(config_queue_ack_timeout(l.cfg, config_find_queue(l.cfg, "hour")), 24 * 3600 * 1000);
	/* 0 set in a queue is a value of its own: no timeout */
	assert_int_equal(config_queue_ack_timeout(l.cfg, config_find_queue(l.cfg, "none")), 0);
	assert_int_equal(config_queue_ack_timeout(l.cfg, config_find_queue(l.cfg, "zero")), 0);
	/* left out: the defaults' */
	assert_false(config_find_queue(l.cfg, "plain")->ack_timeout_set);
	assert_int_equal(config_queue_ack_timeout(l.cfg, config_find_queue(l.cfg, "plain")), 30000);
	assert_int_equal(config_queue_ack_timeout(l.cfg, NULL), 30000);
	loaded_clear(&l);

	/* the defaults section may come after the queues, and set 0 */
	load_text(&l, "queue \"q\" { }\n"
	              "defaults { ack_timeout = 0 }\n");
	assert_loaded_ok(&l);
	assert_int_equal(config_queue_ack_timeout(l.cfg, config_find_queue(l.cfg, "q")), 0);
	loaded_clear(&l);
}

/* ---- what is refused, and where ---- */

static void test_unknown_key_is_error_with_line_number(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "namespace = \"x\"\n"
	              "bogus_key = 1\n");
	assert_error_at(&l, 2, "bogus_key");
	loaded_clear(&l);
}

static void test_unknown_key_in_queue_is_error_with_line_number(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "queue \"q\" {\n"
	              "  max_msgs = 10\n"
	              "  max_mgs = 10\n"
	              "}\n");
	assert_error_at(&l, 3, "max_mgs");
	loaded_clear(&l);
}

static void test_comments_do_not_shift_line_numbers(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "# a comment\n"
	              "// another\n"
	              "/* a block\n"
	              "   over two lines */\n"
	              "namespace = \"x\" # trailing\n"
	              "bogus_key = 1\n");
	assert_error_at(&l, 6, "bogus_key");
	loaded_clear(&l);
}

static void test_comments_inside_lists_and_hashes_inside_strings(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "socket = \"/tmp/a#b//c.sock\"\n"
	              "queue \"q\" {\n"
	              "  allow_send = { \"uid:1\",   # the first\n"
	              "                 \"uid:2\" }  // the second\n"
	              "}\n");
	assert_loaded_ok(&l);
	assert_string_equal(l.cfg->socket, "/tmp/a#b//c.sock");
	assert_int_equal(l.cfg->queues[0].allow_send.n, 2);
	assert_int_equal(l.cfg->queues[0].allow_send.rules[1].id, 2);
	loaded_clear(&l);
}

static void test_bad_size_is_error_with_line_number(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "defaults {\n"
	              "  msg_size = 512\n"
	              "  ring_size = \"64Q\"\n"
	              "}\n");
	assert_error_at(&l, 3, "ring_size = \"64Q\": not a size");
	loaded_clear(&l);
}

static void test_ring_size_not_page_multiple_is_error(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "\nqueue \"q\" { ring_size = 65537 }\n");
	assert_error_at(&l, 2, "ring_size = 65537: not a multiple of 4096");
	loaded_clear(&l);
}

static void test_values_out_of_range_are_errors_with_line_number(void **state)
{
	static const struct {
		const char *text;
		const char *needle;
	} cases[] = {
		{ "max_clients = 0\n", "max_clients = 0: out of range" },
		{ "max_clients = 1000001\n", "max_clients = 1000001: out of range" },
		{ "defaults { max_msgs = 0 }\n", "max_msgs = 0: out of range" },
		{ "queue \"q\" { max_msgs = 65537 }\n", "max_msgs = 65537: out of range" },
		{ "queue \"q\" { max_msgs = -1 }\n", "max_msgs = -1: out of range" },
		{ "defaults { msg_size = 63 }\n", "msg_size = 63: out of range" },
		{ "queue \"q\" { msg_size = \"2M\" }\n", "msg_size = 2097152: out of range" },
		{ "defaults { ring_size = \"32K\" }\n", "ring_size = 32768: out of range" },
		{ "queue \"q\" { ring_size = \"128G\" }\n", "ring_size = 137438953472: out of range" },
		{ "queue \"q\" { max_payload = 0 }\n", "max_payload = 0: out of range" },
		{ "queue \"q\" { max_payload = \"4G\" }\n", "max_payload = 4294967296: out of range" },
		{ "defaults { max_depth = -1 }\n", "max_depth = -1: out of range (0 to 1099511627776)" },
		{ "queue \"q\" { max_depth = 1099511627777 }\n", "max_depth = 1099511627777: out of range" },
		{ "defaults { prefetch = 0 }\n", "prefetch = 0: out of range (1 to 64)" },
		{ "queue \"q\" { prefetch = 0 }\n", "prefetch = 0: out of range (1 to 64)" },
		{ "queue \"q\" { prefetch = 65 }\n", "prefetch = 65: out of range (1 to 64)" },
		{ "defaults { prefetch = -3 }\n", "prefetch = -3: out of range" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct loaded l = { 0 };
		char text[256];

		/* the value on line 2 */
		snprintf(text, sizeof(text), "# case %zu\n%s", i, cases[i].text);
		load_text(&l, text);
		assert_error_at(&l, 2, cases[i].needle);
		loaded_clear(&l);
	}
}

static void test_dead_letter_policy_from_defaults_queues_and_creation(void **state)
{
	ipcq_queue_opts created = { .ttl_ms = 5000, .max_deliveries = 9, .dead_letter = "made.dead" };
	struct loaded l = { 0 };
	struct queue_policy p;

	load_text(&l, "defaults { ttl = \"30s\"  max_deliveries = 5  dead_letter = \"dead\" }\n"
	              "queue \"dead\" { }\n"
	              "queue \"own\" { ttl = \"250ms\"  max_deliveries = 65534  dead_letter = \"other\" }\n"
	              "queue \"none\" { ttl = 0  max_deliveries = 0 }\n");
	assert_loaded_ok(&l);
	p = config_queue_policy(l.cfg, config_find_queue(l.cfg, "own"), NULL, "own");
	assert_int_equal(p.ttl_ms, 250);
	assert_int_equal(p.max_deliveries, 65534);
	assert_string_equal(p.dead_letter, "other");
	/* 0 set in a queue is a value of its own */
	p = config_queue_policy(l.cfg, config_find_queue(l.cfg, "none"), NULL, "none");
	assert_int_equal(p.ttl_ms, 0);
	assert_int_equal(p.max_deliveries, 0);
	assert_string_equal(p.dead_letter, "dead");
	/* the defaults' dead_letter is no dead-letter queue of its own */
	p = config_queue_policy(l.cfg, config_find_queue(l.cfg, "dead"), NULL, "dead");
	assert_int_equal(p.ttl_ms, 30000);
	assert_string_equal(p.dead_letter, "");
	/* a queue the config does not name: what it was created with, else
	 * the defaults' */
	p = config_queue_policy(l.cfg, NULL, &created, "made");
	assert_int_equal(p.ttl_ms, 5000);
	assert_int_equal(p.max_deliveries, 9);
	assert_string_equal(p.dead_letter, "made.dead");
	p = config_queue_policy(l.cfg, NULL, &(ipcq_queue_opts){ 0 }, "made");
	assert_int_equal(p.ttl_ms, 30000);
	assert_int_equal(p.max_deliveries, 5);
	assert_string_equal(p.dead_letter, "dead");
	/* the config's queue section wins over the creation */
	p = config_queue_policy(l.cfg, config_find_queue(l.cfg, "own"), &created, "own");
	assert_int_equal(p.ttl_ms, 250);
	assert_string_equal(p.dead_letter, "other");
	loaded_clear(&l);

	/* none by default */
	load_text(&l, "queue \"q\" { }\n");
	assert_loaded_ok(&l);
	p = config_queue_policy(l.cfg, config_find_queue(l.cfg, "q"), NULL, "q");
	assert_int_equal(p.ttl_ms, 0);
	assert_int_equal(p.max_deliveries, 0);
	assert_string_equal(p.dead_letter, "");
	loaded_clear(&l);
}

static void test_bad_dead_letter_policies_are_errors(void **state)
{
	static const struct {
		const char *text;
		int line;
		const char *needle;
	} cases[] = {
		{ "# a\ndefaults { ttl = \"30\" }\n", 2, "ttl = \"30\": not a duration" },
		{ "# a\nqueue \"q\" { ttl = \"8761h\" }\n", 2, "ttl = \"8761h\": out of range (0 for none, or 1ms to 8760h)" },
		{ "# a\nqueue \"q\" { max_deliveries = 65535 }\n", 2, "max_deliveries = 65535: out of range (0 to 65534)" },
		{ "# a\nqueue \"q\" { dead_letter = \"bad name\" }\n", 2, "dead_letter = \"bad name\": not a valid queue name" },
		{ "# a\nqueue \"q\" {\n dead_letter = \"q\"\n}\n", 2, "queue \"q\": dead_letter names the queue itself" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct loaded l = { 0 };

		load_text(&l, cases[i].text);
		assert_error_at(&l, cases[i].line, cases[i].needle);
		loaded_clear(&l);
	}
}

static void test_bad_ack_timeouts_are_errors_with_line_number(void **state)
{
	static const struct {
		const char *text;
		const char *needle;
	} cases[] = {
		{ "defaults { ack_timeout = \"30\" }\n", "ack_timeout = \"30\": not a duration" },
		{ "queue \"q\" { ack_timeout = 30 }\n", "ack_timeout = \"30\": not a duration" },
		{ "queue \"q\" { ack_timeout = \"5x\" }\n", "ack_timeout = \"5x\": not a duration" },
		{ "queue \"q\" { ack_timeout = \"1.5s\" }\n", "ack_timeout = \"1.5s\": not a duration" },
		{ "queue \"q\" { ack_timeout = \"-1s\" }\n", "ack_timeout = \"-1s\": not a duration" },
		{ "queue \"q\" { ack_timeout = \"s\" }\n", "ack_timeout = \"s\": not a duration" },
		{ "queue \"q\" { ack_timeout = \"\" }\n", "ack_timeout = \"\": not a duration" },
		{ "queue \"q\" { ack_timeout = \"30 s\" }\n", "ack_timeout = \"30 s\": not a duration" },
		{ "defaults { ack_timeout = \"999ms\" }\n", "ack_timeout = \"999ms\": out of range (0 for none, or 1s to 24h)" },
		{ "queue \"q\" { ack_timeout = \"25h\" }\n", "ack_timeout = \"25h\": out of range" },
		{ "queue \"q\" { ack_timeout = \"86400001ms\" }\n", "ack_timeout = \"86400001ms\": out of range" },
		{ "queue \"q\" { ack_timeout = \"99999999999999999999h\" }\n",
		  "ack_timeout = \"99999999999999999999h\": out of range" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct loaded l = { 0 };
		char text[256];

		/* the value on line 2 */
		snprintf(text, sizeof(text), "# case %zu\n%s", i, cases[i].text);
		load_text(&l, text);
		assert_error_at(&l, 2, cases[i].needle);
		loaded_clear(&l);
	}
}

static void test_bad_depth_and_prefetch_report_their_own_line(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "queue \"q\" {\n"
	              "  max_msgs = 10\n"
	              "  prefetch = 100\n"
	              "}\n");
	assert_error_at(&l, 3, "prefetch = 100: out of range (1 to 64)");
	loaded_clear(&l);

	load_text(&l, "defaults {\n"
	              "  ring_size = \"128M\"\n"
	              "\n"
	              "  max_depth = \"1M\"\n"
	              "}\n");
	assert_error_at(&l, 4, "max_depth");
	loaded_clear(&l);
}

static void test_unknown_words_are_errors(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "log_level = \"verbose\"\n");
	assert_error_at(&l, 1, "log_level = \"verbose\": not one of");
	loaded_clear(&l);

	load_text(&l, "queue \"q\" {\n  delivery = \"exactly-once\"\n}\n");
	assert_error_at(&l, 2, "delivery = \"exactly-once\": not one of");
	loaded_clear(&l);
}

static void test_invalid_namespace_is_error(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "namespace = \"a.b\"\n");
	assert_error_at(&l, 1, "namespace = \"a.b\": not a valid name");
	loaded_clear(&l);
}

static void test_relative_socket_path_is_error(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "socket = \"run/x.sock\"\n");
	assert_error_at(&l, 1, "socket = \"run/x.sock\": not an absolute path");
	loaded_clear(&l);
}

static void test_invalid_queue_name_is_error(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "queue \"bad/name\" { max_msgs = 10 }\n");
	assert_error_at(&l, 1, "queue \"bad/name\": not a valid queue name");
	loaded_clear(&l);

	load_text(&l, "queue \".hidden\" { }\n");
	assert_error_at(&l, 1, "queue \".hidden\": not a valid queue name");
	loaded_clear(&l);
}

static void test_duplicate_queue_is_error(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "queue \"jobs\" { max_msgs = 10 }\n"
	              "queue \"other\" { }\n"
	              "queue \"jobs\" { max_msgs = 5 }\n");
	assert_error_at(&l, 3, "duplicate");
	loaded_clear(&l);
}

static void test_unknown_user_is_error_with_line_number(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "queue \"q\" {\n"
	              "  allow_recv = { \"user:root\" }\n"
	              "  allow_send = { \"uid:0\",\n"
	              "                 \"user:nosuchuser_ipcq\" }\n"
	              "}\n");
	assert_error_at(&l, 4, "allow_send: \"user:nosuchuser_ipcq\": no such user");
	loaded_clear(&l);
}

static void test_unknown_group_is_error_with_line_number(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "queue \"q\" {\n  allow_recv = { \"group:nosuchgroup_ipcq\" }\n}\n");
	assert_error_at(&l, 2, "allow_recv: \"group:nosuchgroup_ipcq\": no such group");
	loaded_clear(&l);
}

static void test_malformed_acl_entry_is_error(void **state)
{
	static const char *const entries[] = { "root", "uid:", "uid:12x", "gid:-1", "users:root" };

	for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
		struct loaded l = { 0 };
		char text[128], needle[64];

		snprintf(text, sizeof(text), "queue \"q\" { allow_send = { \"%s\" } }\n", entries[i]);
		snprintf(needle, sizeof(needle), "\"%s\": not user:NAME", entries[i]);
		load_text(&l, text);
		assert_error_at(&l, 1, needle);
		loaded_clear(&l);
	}
}

static void test_max_payload_larger_than_ring_is_error(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "queue \"big\" {\n"
	              "  ring_size = \"64K\"\n"
	              "  max_payload = \"64K\"\n"
	              "}\n");
	assert_error_at(&l, 1, "queue \"big\": max_payload (65536) must be at most ring_size - 64");
	loaded_clear(&l);
}

static void test_payload_check_uses_defaults_and_reports_every_queue(void **state)
{
	struct loaded l = { 0 };

	/* 16M max_payload from the defaults does not fit either ring */
	load_text(&l, "queue \"a\" { ring_size = \"1M\" }\n"
	              "queue \"b\" { ring_size = \"8M\" }\n"
	              "queue \"c\" { ring_size = \"32M\" }\n");
	assert_error_at(&l, 1, "queue \"a\": max_payload (16777216)");
	assert_error_at(&l, 2, "queue \"b\": max_payload (16777216)");
	assert_null(strstr(l.err, "queue \"c\""));
	loaded_clear(&l);

	load_text(&l, "defaults {\n  ring_size = \"64K\"\n}\n");
	assert_error_at(&l, 3, "defaults: max_payload (16777216)");
	loaded_clear(&l);
}

static void test_missing_file_is_enoent_naming_the_file(void **state)
{
	struct loaded l = { 0 };

	snprintf(l.path, sizeof(l.path), "/nonexistent/ipcq/test.conf");
	load_path(&l, l.path);
	assert_int_equal(l.r, -ENOENT);
	assert_null(l.cfg);
	assert_non_null(strstr(l.err, "/nonexistent/ipcq/test.conf: "));
	loaded_clear(&l);
}

static void test_errors_without_stream_still_fail(void **state)
{
	struct config *cfg = NULL;
	char path[4096];
	int r;

	write_temp_config(path, sizeof(path), "bogus_key = 1\n");
	r = config_load(&cfg, path, NULL);
	unlink(path);
	assert_int_equal(r, -EINVAL);
	assert_null(cfg);
}

/* ---- queries ---- */

static void test_user_sections_override_user_limits(void **state)
{
	struct loaded l = { 0 };
	const struct user_limits *u;
	const char *from;

	load_text(&l, "user_limits {\n"
	              "  max_queues = 8\n"
	              "  max_mq_total = \"100K\"\n"
	              "  max_depth = 1000\n"
	              "}\n"
	              "user \"root\" {\n"
	              "}\n");
	assert_error_at(&l, 6, "user \"root\": root is bound by no limits");
	loaded_clear(&l);

	load_text(&l, "user \"nobody\" {\n"
	              "  max_queues = 2\n"
	              "  max_ring_total = \"8M\"\n"
	              "}\n"
	              "user_limits {\n"
	              "  max_queues = 8\n"
	              "  max_mq_total = \"100K\"\n"
	              "  max_depth = 1000\n"
	              "}\n"
	              "user \"uid:4242\" {\n"
	              "  max_depth = 0\n"
	              "  max_clients = 3\n"
	              "}\n");
	assert_loaded_ok(&l);
	assert_int_equal(l.cfg->n_users, 2);
	/* keys a user section leaves out are user_limits', wherever it stands */
	u = config_user_limits(l.cfg, 65534, &from);
	assert_string_equal(from, "user \"nobody\"");
	assert_int_equal(u->max_queues, 2);
	assert_int_equal(u->max_ring_total, 8u << 20);
	assert_int_equal(u->max_mq_total, 100u << 10);
	assert_int_equal(u->max_depth, 1000);
	assert_int_equal(u->max_clients, 256);
	u = config_user_limits(l.cfg, 4242, &from);
	assert_string_equal(from, "user \"uid:4242\"");
	assert_int_equal(u->max_depth, 0);
	assert_int_equal(u->max_clients, 3);
	assert_int_equal(u->max_queues, 8);
	u = config_user_limits(l.cfg, 1000, &from);
	assert_string_equal(from, "user_limits");
	assert_int_equal(u->max_queues, 8);
	loaded_clear(&l);
}

static void test_bad_user_sections_are_errors_with_line_number(void **state)
{
	static const struct {
		const char *text;
		int line;
		const char *needle;
	} cases[] = {
		{ "\nuser \"nosuchuser_ipcq\" {\n}\n", 2, "user \"nosuchuser_ipcq\": no such user" },
		{ "user \"group:root\" {\n}\n", 1, "user \"group:root\": not a user name, user:NAME or uid:N" },
		{ "user \"uid:12x\" {\n}\n", 1, "not a user name, user:NAME or uid:N" },
		{ "user \"*\" {\n}\n", 1, "not a user name, user:NAME or uid:N" },
		{ "user \"uid:0\" {\n}\n", 1, "root is bound by no limits" },
		{ "user \"uid:65534\" {\n}\n# x\nuser \"nobody\" {\n}\n", 4,
		  "user \"nobody\": uid 65534 has a user section already (user \"uid:65534\")" },
		{ "user \"nobody\" {\n  max_queues = 0\n}\n", 2, "max_queues = 0: out of range" },
		{ "user \"nobody\" {\n  max_depth = -1\n}\n", 2, "max_depth = -1: out of range" },
		{ "user \"nobody\" {\n  ring_size = \"1M\"\n}\n", 2, "ring_size" },
		{ "user_limits {\n  max_mq_total = 0\n}\n", 2, "max_mq_total = 0: out of range" },
		{ "user_limits {\n  max_mq_total = \"lots\"\n}\n", 2, "max_mq_total = \"lots\": not a size" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct loaded l = { 0 };

		load_text(&l, cases[i].text);
		assert_error_at(&l, cases[i].line, cases[i].needle);
		loaded_clear(&l);
	}
}

static void test_run_as_and_metrics_keys(void **state)
{
	static const struct {
		const char *text;
		const char *needle;
	} bad[] = {
		{ "run_as = \"nosuchuser_ipcq\"\n", "run_as = \"nosuchuser_ipcq\": no such user" },
		{ "run_as = \"\"\n", "run_as = \"\"" },
		{ "metrics_file = \"metrics.prom\"\n", "metrics_file = \"metrics.prom\": not an absolute path" },
		{ "metrics_file = \"/var/lib/\"\n", "not an absolute path of a file" },
		{ "metrics_interval = 0\n", "metrics_interval = \"0\": out of range (1s to 1h)" },
		{ "metrics_interval = \"500ms\"\n", "out of range (1s to 1h)" },
		{ "metrics_interval = \"2h\"\n", "metrics_interval = \"2h\": out of range (1s to 1h)" },
		{ "metrics_interval = \"often\"\n", "metrics_interval = \"often\": not a duration" },
		{ "give_back_after = \"500ms\"\n", "give_back_after = \"500ms\": out of range (0 for none, or 1s to 24h)" },
		{ "give_back_after = \"25h\"\n", "out of range (0 for none, or 1s to 24h)" },
		{ "give_back_after = \"soon\"\n", "give_back_after = \"soon\": not a duration" },
		{ "queue \"jobs\" {\n  max_msgs = 5\n", "this '{' is never closed" },
	};
	struct loaded l = { 0 };

	load_text(&l, "run_as = \"nobody\"\n"
	              "metrics_file = \"/var/lib/prometheus/node-exporter/ipcbroker.prom\"\n"
	              "metrics_interval = \"1m\"\n");
	assert_loaded_ok(&l);
	assert_string_equal(l.cfg->run_as, "nobody");
	assert_string_equal(l.cfg->metrics_file, "/var/lib/prometheus/node-exporter/ipcbroker.prom");
	assert_int_equal(l.cfg->metrics_interval_ms, 60000);
	loaded_clear(&l);
	load_text(&l, "give_back_after = \"3s\"\n");
	assert_loaded_ok(&l);
	assert_int_equal(l.cfg->give_back_after_ms, 3000);
	loaded_clear(&l);
	load_text(&l, "give_back_after = 0\n");
	assert_loaded_ok(&l);
	assert_int_equal(l.cfg->give_back_after_ms, 0);
	loaded_clear(&l);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[256];

		snprintf(text, sizeof(text), "# case %zu\n%s", i, bad[i].text);
		load_text(&l, text);
		assert_error_at(&l, 2, bad[i].needle);
		loaded_clear(&l);
	}
}

/* policy_check_create for uid 65534 under cfg, with no queues yet */
static int check_create(struct config *cfg, ipcq_geometry *g, bool depth_asked, char *why, size_t whycap)
{
	struct daemon d = { .cfg = cfg, .uid = 4321 };
	const struct policy_subject who = { .uid = 65534, .gid = 65534 };

	return policy_check_create(&d, &who, false, g, depth_asked, why, whycap);
}

static void test_quota_refusals_name_the_quota(void **state)
{
	struct loaded l = { 0 };
	struct daemon d = { 0 };
	ipcq_geometry g;
	char why[PROTO_ERRMSG_MAX];

	load_text(&l, "defaults {\n"
	              "  ring_size = \"1M\"\n"
	              "  max_payload = \"64K\"\n"
	              "}\n"
	              "user_limits {\n"
	              "  max_clients = 2\n"
	              "  max_ring_size = \"1M\"\n"
	              "  max_mq_total = \"8K\"\n"
	              "  max_depth = 500\n"
	              "}\n"
	              "user \"nobody\" {\n"
	              "  max_depth = 50\n"
	              "}\n");
	assert_loaded_ok(&l);

	g = config_queue_geometry(l.cfg, NULL);
	g.ring_size = 2u << 20;
	assert_int_equal(check_create(l.cfg, &g, false, why, sizeof(why)), -EDQUOT);
	assert_non_null(strstr(why, "quota max_ring_size (1048576) for uid 65534 reached (user \"nobody\")"));

	g = config_queue_geometry(l.cfg, NULL);
	g.msg_size = 1024;
	assert_int_equal(check_create(l.cfg, &g, false, why, sizeof(why)), -EDQUOT);
	assert_non_null(strstr(why, "quota max_mq_total (8192) for uid 65534"));

	/* a depth it asked for past the quota is refused... */
	g = config_queue_geometry(l.cfg, NULL);
	g.max_depth = 51;
	assert_int_equal(check_create(l.cfg, &g, true, why, sizeof(why)), -EDQUOT);
	assert_non_null(strstr(why, "quota max_depth (50) for uid 65534"));
	/* ...one it did not ask for (the defaults', or none) is bounded */
	g = config_queue_geometry(l.cfg, NULL);
	assert_int_equal(g.max_depth, 0);
	assert_int_equal(check_create(l.cfg, &g, false, why, sizeof(why)), 0);
	assert_int_equal(g.max_depth, 50);
	g.max_depth = 20;
	assert_int_equal(check_create(l.cfg, &g, true, why, sizeof(why)), 0);
	assert_int_equal(g.max_depth, 20);

	d.cfg = l.cfg;
	d.uid = 4321;
	assert_int_equal(policy_admit_conn(&d, 65534, 10, 1, why, sizeof(why)), 0);
	assert_int_equal(policy_admit_conn(&d, 65534, 10, 2, why, sizeof(why)), -EUSERS);
	assert_non_null(strstr(why, "quota max_clients (2) for uid 65534 reached (user \"nobody\")"));
	assert_int_equal(policy_admit_conn(&d, 1000, 10, 2, why, sizeof(why)), -EUSERS);
	assert_non_null(strstr(why, "quota max_clients (2) for uid 1000 reached (user_limits)"));
	/* root and the daemon's own user are bound by none */
	assert_int_equal(policy_admit_conn(&d, 0, 10, 2, why, sizeof(why)), 0);
	assert_int_equal(policy_admit_conn(&d, 4321, 10, 2, why, sizeof(why)), 0);
	loaded_clear(&l);
}

static void test_find_queue_by_name(void **state)
{
	struct loaded l = { 0 };

	load_text(&l, "queue \"a\" { }\nqueue \"b\" { max_msgs = 3 }\n");
	assert_loaded_ok(&l);
	assert_ptr_equal(config_find_queue(l.cfg, "b"), &l.cfg->queues[1]);
	assert_ptr_equal(config_find_queue(l.cfg, "a"), &l.cfg->queues[0]);
	assert_null(config_find_queue(l.cfg, "c"));
	loaded_clear(&l);
}

static void test_queue_geometry_fills_zero_fields_from_defaults(void **state)
{
	struct loaded l = { 0 };
	ipcq_geometry geo;

	load_text(&l, "defaults { max_msgs = 7  msg_size = 300  ring_size = \"2M\"  max_payload = \"1M\" }\n"
	              "queue \"q\" { msg_size = 1024  max_payload = \"4K\" }\n");
	assert_loaded_ok(&l);
	geo = config_queue_geometry(l.cfg, config_find_queue(l.cfg, "q"));
	assert_geometry_equal(geo, (ipcq_geometry){ .max_msgs = 7,
	                                            .msg_size = 1024,
	                                            .ring_size = 2u << 20,
	                                            .max_payload = 4096,
	                                            .prefetch = 16 });
	/* the queue's own record keeps the zeros: they mean "default" */
	assert_int_equal(l.cfg->queues[0].geo.max_msgs, 0);
	assert_geometry_equal(config_queue_geometry(l.cfg, NULL), l.cfg->defaults);
	loaded_clear(&l);
}

/* ---- policy_acl_match ---- */

static struct acl_rule uid_1000[] = { { ACL_UID, 1000 } };
static struct acl_rule gid_50[] = { { ACL_GID, 50 } };
static struct acl_rule anyone[] = { { ACL_ANY, 0 } };
static struct acl_rule several[] = { { ACL_UID, 1 }, { ACL_GID, 2 }, { ACL_UID, 3 } };

#define ACL_OF(array) ((struct acl){ .set = true, .n = sizeof(array) / sizeof((array)[0]), .rules = (array) })

static void test_acl_matches_uid(void **state)
{
	struct acl acl = ACL_OF(uid_1000);

	assert_true(acl_match(&acl, 1000, 5, NULL, 0));
	assert_false(acl_match(&acl, 1001, 1000, NULL, 0));
}

static void test_acl_matches_primary_gid(void **state)
{
	struct acl acl = ACL_OF(gid_50);

	assert_true(acl_match(&acl, 1000, 50, NULL, 0));
	assert_false(acl_match(&acl, 50, 51, NULL, 0));
}

static void test_acl_matches_supplementary_group(void **state)
{
	struct acl acl = ACL_OF(gid_50);
	const gid_t groups[] = { 10, 20, 50 };
	const gid_t others[] = { 10, 20, 51 };

	assert_true(acl_match(&acl, 1000, 1000, groups, 3));
	assert_false(acl_match(&acl, 1000, 1000, others, 3));
	/* only the first ngroups entries count */
	assert_false(acl_match(&acl, 1000, 1000, groups, 2));
}

static void test_acl_star_matches_anyone(void **state)
{
	struct acl acl = ACL_OF(anyone);

	assert_true(acl_match(&acl, 0, 0, NULL, 0));
	assert_true(acl_match(&acl, 65534, 65534, NULL, 0));
}

static void test_acl_without_matching_rule_denies(void **state)
{
	struct acl acl = ACL_OF(several);
	struct acl empty = { .set = true };
	const gid_t groups[] = { 3, 1 };

	assert_true(acl_match(&acl, 3, 9, NULL, 0));
	assert_true(acl_match(&acl, 9, 9, (const gid_t[]){ 2 }, 1));
	/* uids are not groups, and groups are not uids */
	assert_false(acl_match(&acl, 2, 1, groups, 2));
	assert_false(acl_match(&empty, 0, 0, NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_embedded_defaults_have_documented_values),
		cmocka_unit_test(test_empty_file_takes_documented_defaults),
		cmocka_unit_test(test_sample_config_parses_to_documented_defaults),
		cmocka_unit_test(test_full_file_with_queues_and_acls_parses),
		cmocka_unit_test(test_sizes_accept_suffixes_and_plain_integers),
		cmocka_unit_test(test_queue_delivery_inherits_defaults_declared_later),
		cmocka_unit_test(test_empty_acl_is_set_and_absent_acl_is_not),
		cmocka_unit_test(test_max_payload_may_fill_ring_less_reserve),
		cmocka_unit_test(test_max_depth_and_prefetch_parse_in_defaults_and_queues),
		cmocka_unit_test(test_queue_max_depth_0_lifts_a_default_bound),
		cmocka_unit_test(test_ack_timeout_takes_units_in_defaults_and_queues),
		cmocka_unit_test(test_unknown_key_is_error_with_line_number),
		cmocka_unit_test(test_unknown_key_in_queue_is_error_with_line_number),
		cmocka_unit_test(test_comments_do_not_shift_line_numbers),
		cmocka_unit_test(test_comments_inside_lists_and_hashes_inside_strings),
		cmocka_unit_test(test_bad_size_is_error_with_line_number),
		cmocka_unit_test(test_ring_size_not_page_multiple_is_error),
		cmocka_unit_test(test_values_out_of_range_are_errors_with_line_number),
		cmocka_unit_test(test_bad_ack_timeouts_are_errors_with_line_number),
		cmocka_unit_test(test_dead_letter_policy_from_defaults_queues_and_creation),
		cmocka_unit_test(test_bad_dead_letter_policies_are_errors),
		cmocka_unit_test(test_bad_depth_and_prefetch_report_their_own_line),
		cmocka_unit_test(test_unknown_words_are_errors),
		cmocka_unit_test(test_invalid_namespace_is_error),
		cmocka_unit_test(test_relative_socket_path_is_error),
		cmocka_unit_test(test_invalid_queue_name_is_error),
		cmocka_unit_test(test_duplicate_queue_is_error),
		cmocka_unit_test(test_unknown_user_is_error_with_line_number),
		cmocka_unit_test(test_unknown_group_is_error_with_line_number),
		cmocka_unit_test(test_malformed_acl_entry_is_error),
		cmocka_unit_test(test_max_payload_larger_than_ring_is_error),
		cmocka_unit_test(test_payload_check_uses_defaults_and_reports_every_queue),
		cmocka_unit_test(test_missing_file_is_enoent_naming_the_file),
		cmocka_unit_test(test_errors_without_stream_still_fail),
		cmocka_unit_test(test_user_sections_override_user_limits),
		cmocka_unit_test(test_bad_user_sections_are_errors_with_line_number),
		cmocka_unit_test(test_run_as_and_metrics_keys),
		cmocka_unit_test(test_quota_refusals_name_the_quota),
		cmocka_unit_test(test_find_queue_by_name),
		cmocka_unit_test(test_queue_geometry_fills_zero_fields_from_defaults),
		cmocka_unit_test(test_acl_matches_uid),
		cmocka_unit_test(test_acl_matches_primary_gid),
		cmocka_unit_test(test_acl_matches_supplementary_group),
		cmocka_unit_test(test_acl_star_matches_anyone),
		cmocka_unit_test(test_acl_without_matching_rule_denies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
