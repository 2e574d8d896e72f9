/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - reading ipcbrokerd.conf with libconfuse.
 *
 * A load runs in two passes.  libconfuse parses the text, and callbacks
 * attached to each option check every value as it is read, while the
 * scanner still knows its line: sizes ("64M" or 65536), durations
 * ("30s"), ranges, names, words, and access rules, whose user and group
 * names are resolved to ids right there so that an unknown name is
 * reported on its own line.  Then the tree is copied into a plain struct
 * config that the rest of the daemon uses without libconfuse, and the
 * checks that need the whole file run: a queue's geometry is only known
 * once the defaults section has been read, wherever it stands in the
 * file.  libconfuse keeps no line per value, so those checks report the
 * line where the section ends.
 *
 * libconfuse 3.3 miscounts lines after comments, so the text is read
 * here and its comments blanked out before libconfuse sees it.
 *
 * Nothing is changed until the whole file passed: config_load() hands out
 * a new struct config or nothing.
 */
#include "config.h"

#include <assert.h>
#include <confuse.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "conf.h"
#include "conftext.h"
#include "proto.h"
#include "util.h"

const char config_embedded[] =
	"namespace = \"default\"\n"
	"auto_create = true\n"
	"show_all_queues = false\n"
	"log_level = \"info\"\n"
	"max_clients = 4096\n"
	"user_limits {\n"
	"\tmax_clients = 256\n"
	"\tmax_queues = 64\n"
	"\tmax_ring_size = \"1G\"\n"
	"\tmax_ring_total = \"4G\"\n"
	"\tmax_mq_total = \"512K\"\n"
	"\tmax_depth = 0\n"
	"}\n"
	"defaults {\n"
	"\tmax_msgs = 10\n"
	"\tmsg_size = 512\n"
	"\tring_size = \"64M\"\n"
	"\tmax_payload = \"16M\"\n"
	"\tmax_depth = 0\n"
	"\tprefetch = 16\n"
	"\tsenders = \"isolated\"\n"
	"\tdelivery = \"at-most-once\"\n"
	"\tack_timeout = \"5m\"\n"
	"\tttl = 0\n"
	"\tmax_deliveries = 0\n"
	"}\n";

/* getpwnam_r()/getgrnam_r() want a buffer of a size the system only hints
 * at; it grows up to this before a lookup gives up. */
#define LOOKUP_BUF_MAX (16u << 20)
/* A config is a few kilobytes; refuse to read a runaway file whole. */
#define CONFIG_FILE_MAX (16u << 20)
#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)NULL)->sun_path)

/* libconfuse keeps an integer in a long, which has 32 bits on some
 * systems, and sizes go up to 64G: the file's numbers are kept in a double
 * (CFGT_FLOAT) instead, exact for every integer up to 2^53, parsed by the
 * callbacks below and read back through config_number(). */
#define NUMBER_MAX (1ll << 53)

static const char *const delivery_words[] = {
	[DELIVERY_AT_MOST_ONCE] = "at-most-once",
	[DELIVERY_AT_LEAST_ONCE] = "at-least-once",
};

/* ipcq_geometry.senders: IPCQ_SENDERS_* (0, "the default", is no word) */
static const char *const senders_words[] = {
	[0] = "",
	[IPCQ_SENDERS_SHARED] = "shared",
	[IPCQ_SENDERS_ISOLATED] = "isolated",
};

static const char *const log_level_words[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

struct int_range {
	const char *key;
	int64_t min;
	int64_t max;
	int64_t multiple_of;
};

static const struct int_range int_ranges[] = {
	{ "max_msgs", 1, PROTO_MAX_MSGS_MAX, 1 },
	{ "msg_size", PROTO_MSG_SIZE_MIN, PROTO_MSG_SIZE_MAX, 1 },
	{ "ring_size", PROTO_RING_SIZE_MIN, PROTO_RING_SIZE_MAX, PROTO_RING_PAGE },
	{ "max_payload", 1, PROTO_MAX_PAYLOAD_MAX, 1 },
	{ "max_depth", 0, PROTO_MAX_DEPTH_MAX, 1 },
	{ "prefetch", 1, PROTO_PREFETCH_MAX, 1 },
	{ "max_deliveries", 0, CONFIG_MAX_DELIVERIES_MAX, 1 },
	{ "max_clients", 1, CONFIG_MAX_CLIENTS_MAX, 1 },
	{ "max_queues", 1, CONFIG_MAX_CLIENTS_MAX, 1 },
	{ "max_ring_size", PROTO_RING_SIZE_MIN, PROTO_RING_SIZE_MAX, PROTO_RING_PAGE },
	{ "max_ring_total", PROTO_RING_SIZE_MIN, 1ull << 50, 1 },
	{ "max_mq_total", 1, 1ull << 50, 1 },
};

/* Where messages go, and the file name they carry. */
struct report {
	FILE *out;
	const char *source;
	const char *text; /* what is parsed, comments blanked (for title lines) */
};

/* libconfuse's error and validation callbacks take no user pointer, so
 * config_parse() points this at its report for the length of a parse.
 * libconfuse's scanner is global state anyway: loads cannot run at once. */
static struct report parse_report;

static void cfg_freep(cfg_t **p)
{
	if (*p)
		cfg_free(*p);
}
#define _cleanup_cfg_ __attribute__((cleanup(cfg_freep)))

__attribute__((format(printf, 3, 0))) static void vreport(const struct report *rep, int line,
                                                         const char *fmt, va_list ap)
{
	if (!rep->out)
		return;
	if (line > 0)
		fprintf(rep->out, "%s:%d: ", rep->source, line);
	else
		fprintf(rep->out, "%s: ", rep->source);
	vfprintf(rep->out, fmt, ap);
	fputc('\n', rep->out);
}

__attribute__((format(printf, 3, 4))) static void report(const struct report *rep, int line,
                                                        const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(rep, line, fmt, ap);
	va_end(ap);
}

/* libconfuse's error function: its messages and ours from the callbacks. */
static void report_cfg_error(cfg_t *cfg, const char *fmt, va_list ap)
{
	vreport(&parse_report, cfg ? cfg->line : 0, fmt, ap);
}

static int word_index(const char *const *words, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(words[i], s) == 0)
			return (int)i;
	return -EINVAL;
}

static const char *skip_prefix(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

/* ---- values, checked as they are read ---- */

static int parse_size_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	uint64_t v;
	int r = parse_size(value, &v);

	if (r == -ERANGE || (r == 0 && v > NUMBER_MAX)) {
		cfg_error(cfg, "%s = \"%s\": too large", opt->name, value);
		return -1;
	}
	if (r) {
		cfg_error(cfg, "%s = \"%s\": not a size (a number, optionally with K, M or G)",
		          opt->name, value);
		return -1;
	}
	*(double *)result = (double)v;
	return 0;
}

/* A duration: 0, or min_ms to max_ms (range says so in words), in ms. */
static int parse_duration_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result, uint64_t min_ms,
                             uint64_t max_ms, const char *range)
{
	uint64_t ms = 0;
	int r = parse_duration_ms(value, &ms);

	if (r == -EINVAL) {
		cfg_error(cfg, "%s = \"%s\": not a duration (0, or a whole number with ms, s, m or h: \"30s\")",
		          opt->name, value);
		return -1;
	}
	if (r == -ERANGE || (ms != 0 && (ms < min_ms || ms > max_ms))) {
		cfg_error(cfg, "%s = \"%s\": out of range (0 for none, or %s)", opt->name, value, range);
		return -1;
	}
	*(double *)result = (double)ms;
	return 0;
}

static int parse_ack_timeout_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	return parse_duration_cb(cfg, opt, value, result, CONFIG_ACK_TIMEOUT_MIN_MS, CONFIG_ACK_TIMEOUT_MAX_MS,
	                         "1s to 24h");
}

static int parse_ttl_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	return parse_duration_cb(cfg, opt, value, result, 1, CONFIG_TTL_MAX_MS, "1ms to 8760h");
}

static int parse_give_back_after_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	return parse_duration_cb(cfg, opt, value, result, CONFIG_GIVE_BACK_AFTER_MIN_MS,
	                         CONFIG_GIVE_BACK_AFTER_MAX_MS, "1s to 24h");
}

/* metrics_interval: a duration, never 0 */
static int parse_metrics_interval_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	uint64_t ms = 0;
	int r = parse_duration_ms(value, &ms);

	if (r == -EINVAL) {
		cfg_error(cfg, "%s = \"%s\": not a duration (a whole number with ms, s, m or h: \"15s\")", opt->name,
		          value);
		return -1;
	}
	if (r == -ERANGE || ms < CONFIG_METRICS_INTERVAL_MIN_MS || ms > CONFIG_METRICS_INTERVAL_MAX_MS) {
		cfg_error(cfg, "%s = \"%s\": out of range (1s to 1h)", opt->name, value);
		return -1;
	}
	*(double *)result = (double)ms;
	return 0;
}

/* A count: an integer as libconfuse would read one (strtol, base 0). */
static int parse_count_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(value, &end, 0);
	if (end == value || *end) {
		cfg_error(cfg, "invalid integer value for option '%s'", opt->name);
		return -1;
	}
	if (errno == ERANGE || v > NUMBER_MAX || v < -NUMBER_MAX) {
		cfg_error(cfg, "integer value for option '%s' is out of range", opt->name);
		return -1;
	}
	*(double *)result = (double)v;
	return 0;
}

static const struct int_range *int_range_of(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(int_ranges); i++)
		if (strcmp(int_ranges[i].key, key) == 0)
			return &int_ranges[i];
	return NULL;
}

static int validate_int_range(cfg_t *cfg, cfg_opt_t *opt)
{
	const struct int_range *range = int_range_of(opt->name);
	int64_t v = (int64_t)cfg_opt_getnfloat(opt, 0); /* an integer within +-NUMBER_MAX */

	assert(range);
	if (v < range->min || v > range->max) {
		cfg_error(cfg, "%s = %" PRId64 ": out of range (%" PRId64 " to %" PRId64 ")", opt->name, v,
		          range->min, range->max);
		return -1;
	}
	if (v % range->multiple_of) {
		cfg_error(cfg, "%s = %" PRId64 ": not a multiple of %" PRId64, opt->name, v, range->multiple_of);
		return -1;
	}
	return 0;
}

static int validate_namespace(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *ns = cfg_opt_getnstr(opt, 0);

	if (proto_namespace_valid(ns))
		return 0;
	cfg_error(cfg, "namespace = \"%s\": not a valid name (letters, digits, '_' and '-', at most %d)",
	          ns ? ns : "", IPCQ_NAMESPACE_MAX);
	return -1;
}

static int validate_socket(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *path = cfg_opt_getnstr(opt, 0);

	if (path && path[0] == '/' && strlen(path) < SUN_PATH_MAX)
		return 0;
	cfg_error(cfg, "socket = \"%s\": not an absolute path shorter than %zu bytes",
	          path ? path : "", SUN_PATH_MAX);
	return -1;
}

static int validate_metrics_file(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *path = cfg_opt_getnstr(opt, 0);
	size_t len = path ? strlen(path) : 0;

	if (len && path[0] == '/' && path[len - 1] != '/' && len < PATH_MAX - sizeof(".tmp"))
		return 0;
	cfg_error(cfg, "metrics_file = \"%s\": not an absolute path of a file", path ? path : "");
	return -1;
}

static int validate_log_level(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = cfg_opt_getnstr(opt, 0);

	if (word_index(log_level_words, ARRAY_SIZE(log_level_words), s) >= 0)
		return 0;
	cfg_error(cfg, "log_level = \"%s\": not one of error, warning, info, debug", s ? s : "");
	return -1;
}

static int validate_dead_letter(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = cfg_opt_getnstr(opt, 0);

	if (s && proto_queue_name_valid(s))
		return 0;
	cfg_error(cfg, "dead_letter = \"%s\": not a valid queue name", s ? s : "");
	return -1;
}

static int validate_senders(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = cfg_opt_getnstr(opt, 0);

	if (word_index(senders_words, ARRAY_SIZE(senders_words), s) > 0)
		return 0;
	cfg_error(cfg, "senders = \"%s\": not one of isolated, shared", s ? s : "");
	return -1;
}

static int validate_delivery(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = cfg_opt_getnstr(opt, 0);

	if (word_index(delivery_words, ARRAY_SIZE(delivery_words), s) >= 0)
		return 0;
	cfg_error(cfg, "delivery = \"%s\": not one of at-most-once, at-least-once", s ? s : "");
	return -1;
}

/*
 * Line of the index-th kw ("queue", "user") section header in text.
 * libconfuse keeps no line for a section's title, and checks of a whole
 * section run when it closes; this lets them point at the header instead.
 * Comments are blanked already, so outside quoted strings the word can
 * only be the section keyword.
 */
static int section_title_line(const char *text, const char *kw, unsigned index, int fallback)
{
	size_t kwlen = strlen(kw);
	int line = 1;
	char quote = 0;

	for (const char *p = text; p && *p; p++) {
		if (*p == '\n') {
			line++;
		} else if (quote) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == quote)
				quote = 0;
		} else if (*p == '"' || *p == '\'') {
			quote = *p;
		} else if (strncmp(p, kw, kwlen) == 0 && (p == text || (!isalnum((unsigned char)p[-1]) && p[-1] != '_')) &&
		           !isalnum((unsigned char)p[kwlen]) && p[kwlen] != '_') {
			if (index-- == 0)
				return line;
			p += kwlen - 1;
		}
	}
	return fallback;
}

/* Runs when a queue section closes (the scanner is on its last line). */
static int validate_queue_section(cfg_t *cfg, cfg_opt_t *opt)
{
	unsigned index = cfg_opt_size(opt) - 1;
	cfg_t *sec = cfg_opt_getnsec(opt, index);
	const char *name = cfg_title(sec);

	if (proto_queue_name_valid(name))
		return 0;
	report(&parse_report, section_title_line(parse_report.text, "queue", index, cfg->line),
	       "queue \"%s\": not a valid queue name (letters, digits, '_', '-' and '.' "
	       "but not first, at most %d)",
	       name ? name : "", IPCQ_NAME_MAX);
	return -1;
}

/* ---- access rules ---- */

static int lookup_id(enum acl_kind kind, const char *name, uint32_t *id)
{
	_cleanup_free_ char *buf = NULL;
	size_t size = 1024;

	for (;;) {
		struct passwd pw, *pwp = NULL;
		struct group gr, *grp = NULL;
		char *p = realloc(buf, size);
		int r;

		if (!p)
			return -ENOMEM;
		buf = p;
		if (kind == ACL_UID)
			r = getpwnam_r(name, &pw, buf, size, &pwp);
		else
			r = getgrnam_r(name, &gr, buf, size, &grp);
		if (r == ERANGE && size < LOOKUP_BUF_MAX) {
			size *= 2;
			continue;
		}
		if (r)
			return -r;
		if (!pwp && !grp)
			return -ENOENT;
		*id = pwp ? (uint32_t)pwp->pw_uid : (uint32_t)grp->gr_gid;
		return 0;
	}
}

/* A decimal id; (uid_t)-1 is no id, so the largest is UINT32_MAX - 1. */
static int parse_id(const char *s, uint32_t *id)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v >= UINT32_MAX)
			return -ERANGE;
	}
	*id = (uint32_t)v;
	return 0;
}

static int acl_rule_parse(const char *s, struct acl_rule *rule)
{
	const char *arg;

	if (strcmp(s, "*") == 0) {
		*rule = (struct acl_rule){ .kind = ACL_ANY };
		return 0;
	}
	if ((arg = skip_prefix(s, "user:"))) {
		rule->kind = ACL_UID;
		return lookup_id(ACL_UID, arg, &rule->id);
	}
	if ((arg = skip_prefix(s, "group:"))) {
		rule->kind = ACL_GID;
		return lookup_id(ACL_GID, arg, &rule->id);
	}
	if ((arg = skip_prefix(s, "uid:"))) {
		rule->kind = ACL_UID;
		return parse_id(arg, &rule->id);
	}
	if ((arg = skip_prefix(s, "gid:"))) {
		rule->kind = ACL_GID;
		return parse_id(arg, &rule->id);
	}
	return -EINVAL;
}

/* Each list entry becomes a resolved struct acl_rule, freed by libconfuse
 * with the tree. */
static int acl_rule_parse_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	_cleanup_free_ struct acl_rule *rule = calloc(1, sizeof(*rule));
	int r;

	if (!rule) {
		cfg_error(cfg, "%s: %s", opt->name, strerror(ENOMEM));
		return -1;
	}
	r = acl_rule_parse(value, rule);
	if (r == -ENOENT)
		cfg_error(cfg, "%s: \"%s\": no such %s", opt->name, value,
		          rule->kind == ACL_UID ? "user" : "group");
	else if (r == -EINVAL)
		cfg_error(cfg, "%s: \"%s\": not user:NAME, group:NAME, uid:N, gid:N or *", opt->name,
		          value);
	else if (r)
		cfg_error(cfg, "%s: \"%s\": %s", opt->name, value, strerror(-r));
	if (r)
		return -1;
	*(struct acl_rule **)result = TAKE_PTR(rule);
	return 0;
}

static int validate_run_as(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *name = cfg_opt_getnstr(opt, 0);
	uint32_t uid;
	int r = name && *name ? lookup_id(ACL_UID, name, &uid) : -EINVAL;

	if (r == 0)
		return 0;
	cfg_error(cfg, "run_as = \"%s\": %s", name ? name : "", r == -ENOENT ? "no such user" : strerror(-r));
	return -1;
}

/* The title of a user section: a user name, "user:NAME" or "uid:N". */
static int user_title_parse(const char *title, uint32_t *uid)
{
	struct acl_rule rule;
	int r = acl_rule_parse(title, &rule);

	if (r == -EINVAL && !strchr(title, ':'))
		return lookup_id(ACL_UID, title, uid);
	if (r)
		return r;
	if (rule.kind != ACL_UID)
		return -EINVAL;
	*uid = rule.id;
	return 0;
}

/* ---- the text ---- */

static int read_file(const char *path, char **out)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0, cap = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;

		if (cap - len < 2) {
			char *p;

			if (cap >= CONFIG_FILE_MAX)
				return -EFBIG;
			cap = cap ? cap * 2 : 4096;
			p = realloc(buf, cap);
			if (!p)
				return -ENOMEM;
			buf = p;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	/* libconfuse reads up to the first NUL and would ignore the rest */
	if (strlen(buf) != len)
		return -EILSEQ;
	*out = TAKE_PTR(buf);
	return 0;
}

/* The text to parse: the file, or the embedded config; *open_line: the
 * line of a '{' never closed, or 0. */
static int config_text(const char *path, char **out, int *open_line)
{
	_cleanup_free_ char *text = NULL;

	if (path) {
		int r = read_file(path, &text);

		if (r)
			return r;
	} else {
		text = strdup(config_embedded);
		if (!text)
			return -ENOMEM;
	}
	*open_line = conf_blank(text, false);
	*out = TAKE_PTR(text);
	return 0;
}

/* ---- parsing ---- */

/* libconfuse's CFG_* initializers cannot attach a validating callback, and
 * cfg_set_validate_func() would come too late for "defaults": cfg_init()
 * instantiates that section at once from the options as they are then.
 * So the callbacks are set here, with everything else about each key. */
#define OPT_COUNT(key, defval, fl)                                              \
	{                                                                       \
		.name = (key), .type = CFGT_FLOAT, .flags = (fl), .def.fpnumber = (defval), \
		.parsecb = parse_count_cb, .validcb = validate_int_range,       \
	}
#define OPT_SIZE(key, defval, fl)                                               \
	{                                                                       \
		.name = (key), .type = CFGT_FLOAT, .flags = (fl), .def.fpnumber = (defval), \
		.parsecb = parse_size_cb, .validcb = validate_int_range,        \
	}
#define OPT_WORD(key, defval, fl, validate)                                      \
	{                                                                        \
		.name = (key), .type = CFGT_STR, .flags = (fl), .def.string = (defval), \
		.validcb = (validate),                                           \
	}
#define OPT_DURATION(key, defval, fl, parse)                                    \
	{                                                                       \
		.name = (key), .type = CFGT_FLOAT, .flags = (fl), .def.fpnumber = (defval), \
		.parsecb = (parse),                                             \
	}
#define OPT_ACL(key)                                                                  \
	{                                                                             \
		.name = (key), .type = CFGT_PTR, .flags = CFGF_LIST | CFGF_NODEFAULT, \
		.parsecb = acl_rule_parse_cb, .freecb = free,                         \
	}

static int config_parse(cfg_t **out, const char *text, const struct report *rep)
{
	cfg_opt_t defaults_opts[] = {
		OPT_COUNT("max_msgs", 10, CFGF_NONE),
		OPT_SIZE("msg_size", 512, CFGF_NONE),
		OPT_SIZE("ring_size", 64ull << 20, CFGF_NONE),
		OPT_SIZE("max_payload", 16ull << 20, CFGF_NONE),
		OPT_COUNT("max_depth", 0, CFGF_NONE),
		OPT_COUNT("prefetch", PROTO_PREFETCH_DEFAULT, CFGF_NONE),
		OPT_WORD("senders", "isolated", CFGF_NONE, validate_senders),
		OPT_WORD("delivery", "at-most-once", CFGF_NONE, validate_delivery),
		OPT_DURATION("ack_timeout", CONFIG_ACK_TIMEOUT_DEFAULT_MS, CFGF_NONE, parse_ack_timeout_cb),
		OPT_DURATION("ttl", 0, CFGF_NONE, parse_ttl_cb),
		OPT_COUNT("max_deliveries", 0, CFGF_NONE),
		OPT_WORD("dead_letter", NULL, CFGF_NODEFAULT, validate_dead_letter),
		CFG_END(),
	};
	/* absent keys take the defaults section's values */
	cfg_opt_t queue_opts[] = {
		OPT_COUNT("max_msgs", 0, CFGF_NODEFAULT),
		OPT_SIZE("msg_size", 0, CFGF_NODEFAULT),
		OPT_SIZE("ring_size", 0, CFGF_NODEFAULT),
		OPT_SIZE("max_payload", 0, CFGF_NODEFAULT),
		OPT_COUNT("max_depth", 0, CFGF_NODEFAULT),
		OPT_COUNT("prefetch", 0, CFGF_NODEFAULT),
		OPT_WORD("senders", NULL, CFGF_NODEFAULT, validate_senders),
		OPT_WORD("delivery", NULL, CFGF_NODEFAULT, validate_delivery),
		OPT_DURATION("ack_timeout", 0, CFGF_NODEFAULT, parse_ack_timeout_cb),
		OPT_DURATION("ttl", 0, CFGF_NODEFAULT, parse_ttl_cb),
		OPT_COUNT("max_deliveries", 0, CFGF_NODEFAULT),
		OPT_WORD("dead_letter", NULL, CFGF_NODEFAULT, validate_dead_letter),
		OPT_ACL("allow_send"),
		OPT_ACL("allow_recv"),
		CFG_END(),
	};
	cfg_opt_t user_limits_opts[] = {
		OPT_COUNT("max_clients", 256, CFGF_NONE),
		OPT_COUNT("max_queues", 64, CFGF_NONE),
		OPT_SIZE("max_ring_size", 1ull << 30, CFGF_NONE),
		OPT_SIZE("max_ring_total", 4ull << 30, CFGF_NONE),
		OPT_SIZE("max_mq_total", 512ull << 10, CFGF_NONE),
		OPT_COUNT("max_depth", 0, CFGF_NONE),
		CFG_END(),
	};
	/* absent keys take user_limits' values */
	cfg_opt_t user_opts[] = {
		OPT_COUNT("max_clients", 0, CFGF_NODEFAULT),
		OPT_COUNT("max_queues", 0, CFGF_NODEFAULT),
		OPT_SIZE("max_ring_size", 0, CFGF_NODEFAULT),
		OPT_SIZE("max_ring_total", 0, CFGF_NODEFAULT),
		OPT_SIZE("max_mq_total", 0, CFGF_NODEFAULT),
		OPT_COUNT("max_depth", 0, CFGF_NODEFAULT),
		CFG_END(),
	};
	cfg_opt_t root_opts[] = {
		OPT_WORD("namespace", "default", CFGF_NONE, validate_namespace),
		OPT_WORD("socket", NULL, CFGF_NODEFAULT, validate_socket),
		CFG_BOOL("auto_create", cfg_true, CFGF_NONE),
		CFG_BOOL("show_all_queues", cfg_false, CFGF_NONE),
		OPT_WORD("log_level", "info", CFGF_NONE, validate_log_level),
		OPT_COUNT("max_clients", 4096, CFGF_NONE),
		OPT_WORD("run_as", NULL, CFGF_NODEFAULT, validate_run_as),
		OPT_WORD("metrics_file", NULL, CFGF_NODEFAULT, validate_metrics_file),
		OPT_DURATION("metrics_interval", CONFIG_METRICS_INTERVAL_DEFAULT_MS, CFGF_NONE, parse_metrics_interval_cb),
		OPT_DURATION("give_back_after", CONFIG_GIVE_BACK_AFTER_DEFAULT_MS, CFGF_NONE, parse_give_back_after_cb),
		CFG_SEC("user_limits", user_limits_opts, CFGF_NONE),
		CFG_SEC("user", user_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
		CFG_SEC("defaults", defaults_opts, CFGF_NONE),
		{
			.name = "queue",
			.type = CFGT_SEC,
			.flags = CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES,
			.subopts = queue_opts,
			.validcb = validate_queue_section,
		},
		CFG_END(),
	};
	_cleanup_cfg_ cfg_t *tree = cfg_init(root_opts, CFGF_NONE);
	int r;

	if (!tree)
		return -ENOMEM;
	cfg_set_error_function(tree, report_cfg_error);

	parse_report = *rep;
	r = cfg_parse_buf(tree, text);
	parse_report = (struct report){ 0 };
	if (r != CFG_SUCCESS)
		return -EINVAL;
	*out = TAKE_PTR(tree);
	return 0;
}

/* ---- the parsed tree into a struct config ---- */

/* max_depth 0 is a value of its own (no bound but the ring's), so a
 * queue that sets it explicitly keeps it: max_depth_set tells. */
static ipcq_geometry geometry_with_defaults(const struct queue_config *q, const ipcq_geometry *def)
{
	ipcq_geometry geo = q ? q->geo : (ipcq_geometry){ 0 };

	if (!geo.max_msgs)
		geo.max_msgs = def->max_msgs;
	if (!geo.msg_size)
		geo.msg_size = def->msg_size;
	if (!geo.ring_size)
		geo.ring_size = def->ring_size;
	if (!geo.max_payload)
		geo.max_payload = def->max_payload;
	if (!q || !q->max_depth_set)
		geo.max_depth = def->max_depth;
	if (!geo.prefetch)
		geo.prefetch = def->prefetch;
	if (!geo.senders)
		geo.senders = def->senders;
	return geo;
}

/* A number of the file (see NUMBER_MAX), checked as it was read. */
static uint64_t config_number(cfg_t *sec, const char *key)
{
	return (uint64_t)cfg_getfloat(sec, key);
}

/* A key's value, or 0 when the section does not set it. */
static uint64_t section_int(cfg_t *sec, const char *key)
{
	return cfg_size(sec, key) ? config_number(sec, key) : 0;
}

/* What a section says of the dead-letter policy; *set which of it. */
static struct queue_policy section_policy(cfg_t *sec, unsigned *set)
{
	struct queue_policy p = { .ttl_ms = (uint64_t)section_int(sec, "ttl"),
		                  .max_deliveries = (uint32_t)section_int(sec, "max_deliveries") };
	const char *dl = cfg_size(sec, "dead_letter") ? cfg_getstr(sec, "dead_letter") : NULL;

	*set = (cfg_size(sec, "ttl") ? POLICY_TTL : 0) | (cfg_size(sec, "max_deliveries") ? POLICY_MAX_DELIVERIES : 0) |
	       (dl ? POLICY_DEAD_LETTER : 0);
	if (dl)
		snprintf(p.dead_letter, sizeof(p.dead_letter), "%s", dl); /* valid: it fits */
	return p;
}

/* The values were range-checked as they were read, so they fit. */
static ipcq_geometry section_geometry(cfg_t *sec)
{
	return (ipcq_geometry){
		.max_msgs = (uint32_t)section_int(sec, "max_msgs"),
		.msg_size = (uint32_t)section_int(sec, "msg_size"),
		.ring_size = (uint64_t)section_int(sec, "ring_size"),
		.max_payload = (uint64_t)section_int(sec, "max_payload"),
		.max_depth = (uint64_t)section_int(sec, "max_depth"),
		.prefetch = (uint32_t)section_int(sec, "prefetch"),
		.senders = cfg_size(sec, "senders") ? (uint32_t)MAX(word_index(senders_words, ARRAY_SIZE(senders_words),
		                                                               cfg_getstr(sec, "senders")),
		                                                    0)
		                                    : 0,
	};
}

static int section_delivery(cfg_t *sec, enum delivery_mode fallback)
{
	if (!cfg_size(sec, "delivery"))
		return (int)fallback;
	return word_index(delivery_words, ARRAY_SIZE(delivery_words), cfg_getstr(sec, "delivery"));
}

static int check_payload_fits(const struct report *rep, int line, const char *what,
                              const ipcq_geometry *geo)
{
	if (geo->max_payload <= geo->ring_size - PROTO_RING_RESERVE)
		return 0;
	report(rep, line, "%s: max_payload (%llu) must be at most ring_size - %u (%llu)", what,
	       (unsigned long long)geo->max_payload, PROTO_RING_RESERVE,
	       (unsigned long long)(geo->ring_size - PROTO_RING_RESERVE));
	return -EINVAL;
}

static int acl_read(struct acl *acl, cfg_t *sec, const char *key)
{
	cfg_opt_t *opt = cfg_getopt(sec, key);
	unsigned n = cfg_opt_size(opt);

	/* an empty list is set and lets nobody in; an absent key is unset */
	acl->set = opt->flags & CFGF_MODIFIED;
	if (!n)
		return 0;
	acl->rules = calloc(n, sizeof(*acl->rules));
	if (!acl->rules)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++)
		acl->rules[i] = *(const struct acl_rule *)cfg_opt_getnptr(opt, i);
	acl->n = n;
	return 0;
}

static int queue_read(struct queue_config *q, cfg_t *sec, enum delivery_mode default_delivery)
{
	int r;

	snprintf(q->name, sizeof(q->name), "%s", cfg_title(sec));
	q->geo = section_geometry(sec);
	q->max_depth_set = cfg_size(sec, "max_depth") > 0;
	r = section_delivery(sec, default_delivery);
	if (r < 0)
		return r;
	q->delivery = (enum delivery_mode)r;
	q->ack_timeout_set = cfg_size(sec, "ack_timeout") > 0;
	q->ack_timeout_ms = (uint32_t)section_int(sec, "ack_timeout");
	q->policy = section_policy(sec, &q->policy_set);
	r = acl_read(&q->allow_send, sec, "allow_send");
	if (r)
		return r;
	return acl_read(&q->allow_recv, sec, "allow_recv");
}

static int config_read_queues(struct config *cfg, cfg_t *tree, const struct report *rep)
{
	unsigned n = cfg_size(tree, "queue");
	int r, failed = 0;

	if (!n)
		return 0;
	cfg->queues = calloc(n, sizeof(*cfg->queues));
	if (!cfg->queues)
		return -ENOMEM;
	cfg->n_queues = n;

	for (unsigned i = 0; i < n; i++) {
		cfg_t *sec = cfg_getnsec(tree, "queue", i);
		struct queue_config *q = &cfg->queues[i];
		ipcq_geometry geo;
		char what[sizeof("queue \"\"") + IPCQ_NAME_MAX];

		r = queue_read(q, sec, cfg->default_delivery);
		if (r)
			return r;
		geo = geometry_with_defaults(q, &cfg->defaults);
		snprintf(what, sizeof(what), "queue \"%s\"", q->name);
		if ((q->policy_set & POLICY_DEAD_LETTER) && strcmp(q->policy.dead_letter, q->name) == 0) {
			report(rep, section_title_line(rep->text, "queue", i, sec->line), "%s: dead_letter names the queue itself",
			       what);
			failed = -EINVAL;
		}
		/* report every queue that does not fit, not just the first */
		if (check_payload_fits(rep, section_title_line(rep->text, "queue", i, sec->line), what, &geo))
			failed = -EINVAL;
	}
	return failed;
}

/* The keys of a user_limits or user section; those it leaves out are
 * fallback's. */
static struct user_limits section_user_limits(cfg_t *sec, const struct user_limits *fallback)
{
	struct user_limits l = *fallback;

	if (cfg_size(sec, "max_clients"))
		l.max_clients = (uint32_t)config_number(sec, "max_clients");
	if (cfg_size(sec, "max_queues"))
		l.max_queues = (uint32_t)config_number(sec, "max_queues");
	if (cfg_size(sec, "max_ring_size"))
		l.max_ring_size = (uint64_t)config_number(sec, "max_ring_size");
	if (cfg_size(sec, "max_ring_total"))
		l.max_ring_total = (uint64_t)config_number(sec, "max_ring_total");
	if (cfg_size(sec, "max_mq_total"))
		l.max_mq_total = (uint64_t)config_number(sec, "max_mq_total");
	if (cfg_size(sec, "max_depth"))
		l.max_depth = (uint64_t)config_number(sec, "max_depth");
	return l;
}

static const struct user_override *config_find_user(const struct config *cfg, uid_t uid)
{
	for (size_t i = 0; i < cfg->n_users; i++)
		if (cfg->users[i].uid == uid)
			return &cfg->users[i];
	return NULL;
}

/* Every user section, each naming one user other than root, once. */
static int config_read_users(struct config *cfg, cfg_t *tree, const struct report *rep)
{
	unsigned n = cfg_size(tree, "user");
	int failed = 0;

	if (!n)
		return 0;
	cfg->users = calloc(n, sizeof(*cfg->users));
	if (!cfg->users)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		cfg_t *sec = cfg_getnsec(tree, "user", i);
		struct user_override *u = &cfg->users[cfg->n_users];
		int line = section_title_line(rep->text, "user", i, sec->line);
		const char *title = cfg_title(sec);
		uint32_t uid;
		int r = user_title_parse(title, &uid);

		if (r == -EINVAL) {
			report(rep, line, "user \"%s\": not a user name, user:NAME or uid:N", title);
		} else if (r == -ENOENT) {
			report(rep, line, "user \"%s\": no such user", title);
		} else if (r) {
			report(rep, line, "user \"%s\": %s", title, strerror(-r));
		} else if (uid == 0) {
			report(rep, line, "user \"%s\": root is bound by no limits", title);
			r = -EINVAL;
		} else if (config_find_user(cfg, uid)) {
			report(rep, line, "user \"%s\": uid %u has a user section already (%s)", title, (unsigned)uid,
			       config_find_user(cfg, uid)->label);
			r = -EINVAL;
		}
		if (r) {
			failed = r == -ENOMEM ? r : -EINVAL;
			continue;
		}
		u->uid = (uid_t)uid;
		snprintf(u->label, sizeof(u->label), "user \"%.60s\"", title);
		u->limits = section_user_limits(sec, &cfg->user);
		cfg->n_users++;
	}
	return failed;
}

static int strdup_option(char **out, cfg_t *tree, const char *key)
{
	const char *s = cfg_size(tree, key) ? cfg_getstr(tree, key) : NULL;

	if (s && !(*out = strdup(s)))
		return -ENOMEM;
	return 0;
}

static int config_read(struct config *cfg, cfg_t *tree, const struct report *rep)
{
	cfg_t *defaults = cfg_getsec(tree, "defaults");
	const char *socket_path = cfg_getstr(tree, "socket");
	int r, q;

	snprintf(cfg->namespace_, sizeof(cfg->namespace_), "%s", cfg_getstr(tree, "namespace"));
	if (socket_path) {
		cfg->socket = strdup(socket_path);
		if (!cfg->socket)
			return -ENOMEM;
	}
	cfg->auto_create = cfg_getbool(tree, "auto_create");
	cfg->show_all_queues = cfg_getbool(tree, "show_all_queues");
	cfg->log_level = (enum log_level)word_index(log_level_words, ARRAY_SIZE(log_level_words),
	                                            cfg_getstr(tree, "log_level"));
	cfg->max_clients = (uint32_t)config_number(tree, "max_clients");
	cfg->user = section_user_limits(cfg_getsec(tree, "user_limits"), &(struct user_limits){ 0 });
	r = config_read_users(cfg, tree, rep);
	if (r)
		return r;
	r = strdup_option(&cfg->run_as, tree, "run_as");
	if (r == 0)
		r = strdup_option(&cfg->metrics_file, tree, "metrics_file");
	if (r)
		return r;
	cfg->metrics_interval_ms = (uint32_t)config_number(tree, "metrics_interval");
	cfg->give_back_after_ms = (uint32_t)config_number(tree, "give_back_after");

	cfg->defaults = section_geometry(defaults);
	r = section_delivery(defaults, DELIVERY_AT_MOST_ONCE);
	if (r < 0)
		return r;
	cfg->default_delivery = (enum delivery_mode)r;
	cfg->default_ack_timeout_ms = (uint32_t)config_number(defaults, "ack_timeout");
	{
		unsigned set;

		cfg->default_policy = section_policy(defaults, &set);
	}

	/* on a bad defaults section go on: the queues' problems are worth
	 * reporting in the same run */
	r = check_payload_fits(rep, defaults->line, "defaults", &cfg->defaults);
	q = config_read_queues(cfg, tree, rep);
	return q ? q : r;
}

static int config_new(struct config **out, const char *source)
{
	_cleanup_config_ struct config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return -ENOMEM;
	cfg->source = strdup(source);
	if (!cfg->source)
		return -ENOMEM;
	*out = TAKE_PTR(cfg);
	return 0;
}

int config_load(struct config **out, const char *path, FILE *err)
{
	struct report rep = { .out = err, .source = path ? path : CONFIG_EMBEDDED_SOURCE };
	_cleanup_free_ char *text = NULL;
	_cleanup_cfg_ cfg_t *tree = NULL;
	_cleanup_config_ struct config *cfg = NULL;
	int r, open_line = 0;

	r = config_text(path, &text, &open_line);
	if (r) {
		report(&rep, 0, "%s", strerror(-r));
		return r;
	}
	/* (libconfuse 3.3 takes the end of the text for its '}') */
	if (open_line) {
		report(&rep, open_line, "this '{' is never closed");
		return -EINVAL;
	}
	rep.text = text;
	r = config_parse(&tree, text, &rep);
	if (r)
		return r;
	r = config_new(&cfg, rep.source);
	if (r)
		return r;
	r = config_read(cfg, tree, &rep);
	if (r)
		return r;
	*out = TAKE_PTR(cfg);
	return 0;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_queues; i++) {
		free(cfg->queues[i].allow_send.rules);
		free(cfg->queues[i].allow_recv.rules);
	}
	free(cfg->queues);
	free(cfg->users);
	free(cfg->run_as);
	free(cfg->metrics_file);
	free(cfg->socket);
	free(cfg->source);
	free(cfg);
}

/* ---- queries ---- */

const struct queue_config *config_find_queue(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_queues; i++)
		if (strcmp(cfg->queues[i].name, name) == 0)
			return &cfg->queues[i];
	return NULL;
}

const struct user_limits *config_user_limits(const struct config *cfg, uid_t uid, const char **from)
{
	const struct user_override *u = config_find_user(cfg, uid);

	if (from)
		*from = u ? u->label : "user_limits";
	return u ? &u->limits : &cfg->user;
}

ipcq_geometry config_queue_geometry(const struct config *cfg, const struct queue_config *q)
{
	return geometry_with_defaults(q, &cfg->defaults);
}

uint32_t config_queue_ack_timeout(const struct config *cfg, const struct queue_config *q)
{
	return q && q->ack_timeout_set ? q->ack_timeout_ms : cfg->default_ack_timeout_ms;
}

struct queue_policy config_queue_policy(const struct config *cfg, const struct queue_config *q,
                                        const ipcq_queue_opts *created, const char *name)
{
	struct queue_policy p = cfg->default_policy;
	unsigned set = q ? q->policy_set : 0;

	if (set & POLICY_TTL)
		p.ttl_ms = q->policy.ttl_ms;
	else if (created && created->ttl_ms)
		p.ttl_ms = created->ttl_ms;
	if (set & POLICY_MAX_DELIVERIES)
		p.max_deliveries = q->policy.max_deliveries;
	else if (created && created->max_deliveries)
		p.max_deliveries = created->max_deliveries;
	if (set & POLICY_DEAD_LETTER)
		memcpy(p.dead_letter, q->policy.dead_letter, sizeof(p.dead_letter));
	else if (created && created->dead_letter[0])
		memcpy(p.dead_letter, created->dead_letter, sizeof(p.dead_letter));
	/* a queue is no dead-letter queue of its own (the defaults' may name it) */
	if (strcmp(p.dead_letter, name) == 0)
		p.dead_letter[0] = '\0';
	return p;
}
