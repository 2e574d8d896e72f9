/*
 * cmd_admin.c - the commands that only talk to the daemon: create, delete,
 * purge, list and stat.
 *
 * stat prints the same keys in both formats ("key: value" lines and one
 * JSON object), from one table, so a script can move between them.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
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
};

/* Parse the arguments of a command without options of its own: the
 * global options and exactly nargs positional arguments.  Returns -1 to
 * go on, or an exit status. */
static int parse_plain(struct cli *cli, int argc, char **argv, int nargs)
{
	static const struct option longopts[] = {
		CLI_GLOBAL_OPTIONS,
		{ 0 },
	};
	int opt, r;

	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		r = cli_common_option(cli, opt, argv);
		if (r >= 0)
			return r;
	}
	if (argc - optind < nargs)
		return cli_usage_error(cli, "no queue given");
	if (argc - optind > nargs)
		return cli_usage_error(cli, "too many arguments");
	return -1;
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
	if (optind != argc - 1)
		return cli_usage_error(cli, optind >= argc ? "no queue given" : "too many arguments");
	*name = argv[optind];
	return cli_connect(cli);
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
		CLI_GLOBAL_OPTIONS,
		{ 0 },
	};
	ipcq_geometry geo = { 0 };
	ipcq_queue_opts opts = { 0 };
	const char *name = NULL;
	unsigned long n;
	int opt, r;

	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		r = -1;
		if (opt >= OPT_MAX_MSGS && opt <= OPT_PREFETCH)
			r = parse_geometry_option(cli, opt, &geo);
		else if (opt == OPT_TTL && cli_parse_ttl(cli, optarg, &opts.ttl_ms) != 0)
			r = CLI_EXIT_USAGE;
		else if (opt == OPT_MAX_DELIVERIES && cli_parse_uint(optarg, UINT32_MAX, &n) == 0)
			opts.max_deliveries = (uint32_t)n;
		else if (opt == OPT_MAX_DELIVERIES)
			r = cli_usage_error(cli, "bad count '%s'", optarg);
		else if (opt == OPT_DEAD_LETTER && strlen(optarg) > IPCQ_NAME_MAX)
			r = cli_usage_error(cli, "dead-letter queue name '%s' is too long", optarg);
		else if (opt == OPT_DEAD_LETTER)
			snprintf(opts.dead_letter, sizeof(opts.dead_letter), "%s", optarg);
		else if (opt != OPT_TTL)
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

	r = parse_plain(cli, argc, argv, 1);
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

/* All the queues' stats in *out (to be freed); returns the count or a
 * negative errno.  Queues may come and go between two calls: ask again
 * until the array was large enough. */
static int list_queues(ipcq_client *c, ipcq_stats **out)
{
	_cleanup_free_ ipcq_stats *all = NULL;
	size_t cap = 16;
	int n;

	for (;;) {
		ipcq_stats *more = reallocarray(all, cap, sizeof(*all));

		if (!more)
			return -ENOMEM;
		all = more;
		n = ipcq_list(c, all, cap);
		if (n < 0 || (size_t)n <= cap)
			break;
		cap = (size_t)n + 16;
	}
	*out = TAKE_PTR(all);
	return n;
}

int cmd_list(struct cli *cli, int argc, char **argv)
{
	_cleanup_free_ ipcq_stats *all = NULL;
	int i, n, r;

	r = parse_plain(cli, argc, argv, 0);
	if (r >= 0)
		return r;
	r = cli_connect(cli);
	if (r)
		return r;
	n = list_queues(cli->client, &all);
	if (n < 0)
		return cli_fail_request(cli, n, "cannot list the queues");
	for (i = 0; i < n; i++) {
		all[i].name[sizeof(all[i].name) - 1] = '\0';
		printf("%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\n", all[i].name, all[i].depth, all[i].ring_used,
		       all[i].backlog);
	}
	return cli_finish_stdout();
}

struct stat_field {
	const char *key;
	uint64_t value;
};

static const char *delivery_name(uint32_t delivery)
{
	return delivery == 1 ? "at-least-once" : delivery == 0 ? "at-most-once" : "unknown";
}

/* Queue names are plain ASCII by the daemon's rules; escape anyway, as
 * the JSON must stay valid whatever the daemon answers. */
static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void print_stats(const ipcq_stats *st, bool json)
{
	const struct stat_field fields[] = {
		{ "id", st->id },
		{ "max_msgs", st->geo.max_msgs },
		{ "msg_size", st->geo.msg_size },
		{ "ring_size", st->geo.ring_size },
		{ "max_payload", st->geo.max_payload },
		{ "max_depth", st->geo.max_depth },
		{ "prefetch", st->geo.prefetch },
		{ "depth", st->depth },
		{ "backlog", st->backlog },
		{ "window", st->window },
		{ "ring_used", st->ring_used },
		{ "ring_hwm", st->ring_hwm },
		{ "ring_chunks", st->ring_chunks },
		{ "sent", st->sent },
		{ "received", st->received },
		{ "sent_ring", st->sent_ring },
		{ "redelivered", st->redelivered },
		{ "dropped", st->dropped },
		{ "reclaimed", st->reclaimed },
		{ "rejected", st->rejected },
		{ "acked", st->acked },
		{ "nacked", st->nacked },
		{ "moved", st->moved },
		{ "expired", st->expired },
		{ "dead_lettered", st->dead_lettered },
		{ "ttl_ms", st->ttl_ms },
		{ "max_deliveries", st->max_deliveries },
		{ "receivers", st->receivers },
		{ "listeners", st->listeners },
		{ "quarantined", st->quarantined },
	};
	size_t i;

	if (!json) {
		printf("name: %s\n", st->name);
		for (i = 0; i < ARRAY_SIZE(fields); i++)
			printf("%s: %" PRIu64 "\n", fields[i].key, fields[i].value);
		printf("delivery: %s\n", delivery_name(st->delivery));
		printf("dead_letter: %s\n", st->dead_letter);
		return;
	}
	fputs("{\"name\": ", stdout);
	print_json_string(st->name);
	for (i = 0; i < ARRAY_SIZE(fields); i++)
		printf(", \"%s\": %" PRIu64, fields[i].key, fields[i].value);
	printf(", \"delivery\": \"%s\", \"dead_letter\": ", delivery_name(st->delivery));
	print_json_string(st->dead_letter);
	puts("}");
}

int cmd_stat(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		CLI_GLOBAL_OPTIONS,
		{ 0 },
	};
	bool json = false;
	const char *name = NULL;
	ipcq_stats st;
	int opt, r;

	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (opt == OPT_JSON) {
			json = true;
			continue;
		}
		r = cli_common_option(cli, opt, argv);
		if (r >= 0)
			return r;
	}
	r = connect_for_queue(cli, argc, argv, &name);
	if (r)
		return r;
	r = ipcq_stat(cli->client, name, &st);
	if (r < 0)
		return cli_fail_request(cli, r, "cannot stat queue '%s'", name);
	st.name[sizeof(st.name) - 1] = '\0';
	print_stats(&st, json);
	return cli_finish_stdout();
}
