/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_admin.c - the commands that only talk to the daemon: create, delete,
 * purge, list and stat.
 *
 * stat and list --json print a queue from one table of its fields
 * (stats_print.c): the same keys in "key: value" lines and in JSON, and
 * the same quantities as Prometheus metrics, so a script can move between
 * them.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "textbuf.h"
#include "stats_print.h"
#include "util.h"

enum {
	OPT_MAX_MSGS = CLI_OPT_FIRST_COMMAND_,
	OPT_MSG_SIZE,
	OPT_RING_SIZE,
	OPT_MAX_PAYLOAD,
	OPT_MAX_DEPTH,
	OPT_PREFETCH,
	OPT_JSON,
	OPT_TTL,
	OPT_MAX_DELIVERIES,
	OPT_DEAD_LETTER,
	OPT_PROMETHEUS,
	OPT_SENDERS,
};

/* Parse the arguments of a command without options of its own: the
 * global options and a queue.  Returns -1 to go on, or an exit status. */
static int parse_plain(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_GLOBAL_OPTIONS,
		{ 0 },
	};
	int opt, r;

	while ((opt = cli_getopt(cli, argc, argv, ":" CLI_GLOBAL_SHORT, longopts)) != -1) {
		r = cli_common_option(cli, opt, argv);
		if (r >= 0)
			return r;
	}
	if (optind != argc - 1)
		return cli_usage_error(cli, optind >= argc ? "no queue given" : "too many arguments");
	r = cli_check_queue_name(cli, argv[optind]);
	return r ? r : -1;
}

/* Bounds are the daemon's to check, in one place for every way a queue
 * is made; here only what does not fit the field, and a prefetch of 0,
 * which the geometry would take for "the default". */
static int parse_geometry_option(struct cli *cli, int opt, ipcq_geometry *geo)
{
	bool count = opt == OPT_MAX_MSGS || opt == OPT_MAX_DEPTH || opt == OPT_PREFETCH;
	uint64_t v;

	if (parse_size(optarg, &v) < 0)
		return cli_usage_error(cli, "bad %s '%s' (a number, or with K, M or G)", count ? "count" : "size",
		                       optarg);
	switch (opt) {
	case OPT_MAX_MSGS:
	case OPT_MSG_SIZE:
	case OPT_PREFETCH:
		if (v > UINT32_MAX)
			return cli_usage_error(cli, "'%s' is too large", optarg);
		if (opt == OPT_PREFETCH && v == 0)
			return cli_usage_error(cli, "--prefetch must be at least 1");
		if (opt == OPT_MAX_MSGS)
			geo->max_msgs = (uint32_t)v;
		else if (opt == OPT_MSG_SIZE)
			geo->msg_size = (uint32_t)v;
		else
			geo->prefetch = (uint32_t)v;
		break;
	case OPT_RING_SIZE:
		geo->ring_size = v;
		break;
	case OPT_MAX_DEPTH:
		geo->max_depth = v;
		break;
	default:
		geo->max_payload = v;
	}
	return -1;
}

/* The one argument left after the options is the queue; connect for it.
 * Returns 0 or the exit status. */
static int connect_for_queue(struct cli *cli, int argc, char **argv, const char **name)
{
	int r;

	if (optind != argc - 1)
		return cli_usage_error(cli, optind >= argc ? "no queue given" : "too many arguments");
	*name = argv[optind];
	r = cli_check_queue_name(cli, *name);
	return r ? r : cli_connect(cli);
}

int cmd_create(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "max-msgs", required_argument, NULL, OPT_MAX_MSGS },
		{ "msg-size", required_argument, NULL, OPT_MSG_SIZE },
		{ "ring-size", required_argument, NULL, OPT_RING_SIZE },
		{ "max-payload", required_argument, NULL, OPT_MAX_PAYLOAD },
		{ "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
		{ "prefetch", required_argument, NULL, OPT_PREFETCH },
		{ "ttl", required_argument, NULL, OPT_TTL },
		{ "max-deliveries", required_argument, NULL, OPT_MAX_DELIVERIES },
		{ "dead-letter", required_argument, NULL, OPT_DEAD_LETTER },
		{ "senders", required_argument, NULL, OPT_SENDERS },
		CLI_GLOBAL_OPTIONS,
		{ 0 },
	};
	ipcq_geometry geo = { 0 };
	ipcq_queue_opts opts = { 0 };
	const char *name = NULL;
	unsigned long n;
	int opt, r;

	while ((opt = cli_getopt(cli, argc, argv, ":" CLI_GLOBAL_SHORT, longopts)) != -1) {
		r = -1;
		if (opt >= OPT_MAX_MSGS && opt <= OPT_PREFETCH)
			r = parse_geometry_option(cli, opt, &geo);
		else if (opt == OPT_TTL && cli_parse_ttl(cli, optarg, &opts.ttl_ms) != 0)
			r = CLI_EXIT_USAGE;
		else if (opt == OPT_MAX_DELIVERIES && cli_parse_uint(optarg, UINT32_MAX, &n) == 0)
			opts.max_deliveries = (uint32_t)n;
		else if (opt == OPT_MAX_DELIVERIES)
			r = cli_usage_error(cli, "bad count '%s'", optarg);
		else if (opt == OPT_DEAD_LETTER && cli_check_queue_name(cli, optarg) != 0)
			r = CLI_EXIT_USAGE;
		else if (opt == OPT_DEAD_LETTER)
			snprintf(opts.dead_letter, sizeof(opts.dead_letter), "%s", optarg);
		else if (opt == OPT_SENDERS && stats_senders_value(optarg, &geo.senders) < 0)
			r = cli_usage_error(cli, "--senders '%s': not one of isolated, shared", optarg);
		else if (opt != OPT_TTL && opt != OPT_SENDERS)
			r = cli_common_option(cli, opt, argv);
		if (r >= 0)
			return r;
	}
	r = connect_for_queue(cli, argc, argv, &name);
	if (r)
		return r;
	r = ipcq_create_ex(cli->client, name, &geo, &opts);
	if (r < 0)
		return cli_fail_request(cli, r, "cannot create queue '%s'", name);
	return CLI_EXIT_OK;
}

static int run_on_queue(struct cli *cli, int argc, char **argv, int (*op)(ipcq_client *, const char *),
			const char *verb)
{
	const char *name = NULL;
	int r;

	r = parse_plain(cli, argc, argv);
	if (r >= 0)
		return r;
	name = argv[optind];
	r = cli_connect(cli);
	if (r)
		return r;
	r = op(cli->client, name);
	if (r < 0)
		return cli_fail_request(cli, r, "cannot %s queue '%s'", verb, name);
	return CLI_EXIT_OK;
}

int cmd_delete(struct cli *cli, int argc, char **argv)
{
	return run_on_queue(cli, argc, argv, ipcq_delete, "delete");
}

int cmd_purge(struct cli *cli, int argc, char **argv)
{
	return run_on_queue(cli, argc, argv, ipcq_purge, "purge");
}

/* The output of list and stat: text (the default), JSON or Prometheus. */
enum stats_format {
	STATS_TEXT,
	STATS_JSON,
	STATS_PROMETHEUS,
};

/* Every queue the caller may see, into *all: their count, or minus an
 * exit status (reported). */
static int list_all(struct cli *cli, ipcq_stats **all)
{
	int n, r = cli_connect(cli);

	if (r)
		return -r;
	n = cli_list_queues(cli, all);
	if (n < 0)
		return -cli_fail_request(cli, n, "cannot list the queues");
	return n;
}

int cmd_list(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		CLI_GLOBAL_OPTIONS,
		{ 0 },
	};
	__attribute__((cleanup(textbuf_deinit))) struct textbuf tb = { 0 };
	_cleanup_free_ ipcq_stats *all = NULL;
	bool json = false;
	int i, n, opt, r;

	while ((opt = cli_getopt(cli, argc, argv, ":" CLI_GLOBAL_SHORT, longopts)) != -1) {
		if (opt == OPT_JSON) {
			json = true;
			continue;
		}
		r = cli_common_option(cli, opt, argv);
		if (r >= 0)
			return r;
	}
	if (optind < argc)
		return cli_usage_error(cli, "too many arguments");
	n = list_all(cli, &all);
	if (n < 0)
		return -n;
	if (json)
		textbuf_addc(&tb, '[');
	for (i = 0; i < n; i++) {
		if (json) {
			textbuf_adds(&tb, i ? ",\n " : "");
			stats_add_json(&tb, &all[i]);
		} else {
			textbuf_addf(&tb, "%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\n", all[i].name, all[i].depth,
			             all[i].ring_used, all[i].backlog);
		}
	}
	if (json)
		textbuf_adds(&tb, "]\n");
	return textbuf_print(&tb);
}

/* stat --prometheus without a queue: every queue. */
static int print_all_prometheus(struct cli *cli, struct textbuf *tb)
{
	_cleanup_free_ ipcq_stats *all = NULL;
	int n = list_all(cli, &all);

	if (n < 0)
		return -n;
	stats_add_prometheus(tb, all, (size_t)n);
	return textbuf_print(tb);
}

int cmd_stat(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "prometheus", no_argument, NULL, OPT_PROMETHEUS },
		CLI_GLOBAL_OPTIONS,
		{ 0 },
	};
	__attribute__((cleanup(textbuf_deinit))) struct textbuf tb = { 0 };
	enum stats_format format = STATS_TEXT;
	const char *name = NULL;
	ipcq_stats st;
	int opt, r;

	while ((opt = cli_getopt(cli, argc, argv, ":" CLI_GLOBAL_SHORT, longopts)) != -1) {
		if (opt == OPT_JSON || opt == OPT_PROMETHEUS) {
			if (format != STATS_TEXT)
				return cli_usage_error(cli, "--json and --prometheus exclude each other");
			format = opt == OPT_JSON ? STATS_JSON : STATS_PROMETHEUS;
			continue;
		}
		r = cli_common_option(cli, opt, argv);
		if (r >= 0)
			return r;
	}
	if (format == STATS_PROMETHEUS && optind == argc)
		return print_all_prometheus(cli, &tb);
	r = connect_for_queue(cli, argc, argv, &name);
	if (r)
		return r;
	r = ipcq_stat(cli->client, name, &st);
	if (r < 0)
		return cli_fail_request(cli, r, "cannot stat queue '%s'", name);
	st.name[sizeof(st.name) - 1] = '\0';
	st.dead_letter[sizeof(st.dead_letter) - 1] = '\0';
	if (format == STATS_PROMETHEUS) {
		stats_add_prometheus(&tb, &st, 1);
	} else if (format == STATS_JSON) {
		stats_add_json(&tb, &st);
		textbuf_addc(&tb, '\n');
	} else {
		stats_add_text(&tb, &st);
	}
	return textbuf_print(&tb);
}
