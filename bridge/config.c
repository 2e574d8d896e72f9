/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - ipcq-bridge --config FILE: the command line in a file, for
 * the unit ipcq-bridge@NAME (one file per bridge), read with libconfuse
 * like ipcbrokerd.conf:
 *
 *   nats = "nats://hub:4222"      # --nats (several: comma-separated)
 *   creds = "/etc/.../hub.creds"  # --creds
 *   tls_ca = "/etc/.../ca.pem"    # --tls-ca
 *   namespace = "default"         # --namespace, or socket = "/run/..." (--socket)
 *   verbose = false               # -v
 *   export { queue = "jobs"  subject = "jobs.work"  stream = "JOBS" }
 *   # or
 *   import { subject = "jobs.work"  queue = "jobs"  stream = "JOBS"
 *            durable = "hostb"  ack_wait = 30 }
 *
 * One direction a file: a bridge is one process with one direction.  The
 * file fills in what the command line left unset, so a flag beside
 * --config wins (--namespace and --socket count as one setting: either
 * replaces both of the file).  Each value is checked as it is read, while
 * libconfuse still knows its line; a section is checked at its closing
 * brace, whose line a missing key is reported at.  What needs the whole
 * file (a direction at all, namespace beside socket) has no line.
 *
 * libconfuse 3.3 miscounts lines after comments, so, as for the daemon's
 * config, the text is read here and its comments blanked before libconfuse
 * sees it; a ';' after a value is blanked too, so that a section fits on
 * one line either way.
 */
#include "config.h"

#include <confuse.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "bridge.h"
#include "conftext.h"

/* A bridge's file is a few lines; refuse to read a runaway one whole. */
#define BRIDGE_CONFIG_MAX (1u << 20)
#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)NULL)->sun_path)

struct bridge_config {
	cfg_t *tree; /* the strings bridge_opts points at */
};

/* libconfuse's callbacks take no user pointer: the file being parsed, and
 * whether anything was reported (by libconfuse, a check, or the checks of
 * the whole file after the parse). */
static const char *parse_path;
static bool parse_failed;

__attribute__((format(printf, 2, 0))) static void vreport(int line, const char *fmt, va_list ap)
{
	if (line > 0)
		fprintf(stderr, "ipcq-bridge: %s:%d: ", parse_path, line);
	else
		fprintf(stderr, "ipcq-bridge: %s: ", parse_path);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	parse_failed = true;
}

__attribute__((format(printf, 2, 3))) static void report(int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(line, fmt, ap);
	va_end(ap);
}

static void report_cfg_error(cfg_t *cfg, const char *fmt, va_list ap)
{
	vreport(cfg ? cfg->line : 0, fmt, ap);
}

/* ---- values, checked as they are read ---- */

static int validate_nonempty(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = cfg_opt_getnstr(opt, 0);

	if (s && *s && !strpbrk(s, " \t\n"))
		return 0;
	cfg_error(cfg, "%s = \"%s\": empty or holds a space", opt->name, s ? s : "");
	return -1;
}

static int validate_socket(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *path = cfg_opt_getnstr(opt, 0);

	if (path && path[0] == '/' && strlen(path) < SUN_PATH_MAX)
		return 0;
	cfg_error(cfg, "socket = \"%s\": not an absolute path shorter than %zu bytes", path ? path : "",
	          SUN_PATH_MAX);
	return -1;
}

static int validate_queue(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = cfg_opt_getnstr(opt, 0);

	if (s && *s && strlen(s) <= IPCQ_NAME_MAX && !strpbrk(s, " \t\n/"))
		return 0;
	cfg_error(cfg, "queue = \"%s\": not a queue name (1 to %d characters, no space nor '/')", s ? s : "",
	          IPCQ_NAME_MAX);
	return -1;
}

static int validate_durable(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = cfg_opt_getnstr(opt, 0);

	if (s && *s && !strpbrk(s, ".*> \t"))
		return 0;
	cfg_error(cfg, "durable = \"%s\": a durable name may not be empty nor hold '.', '*', '>' or spaces",
	          s ? s : "");
	return -1;
}

static int validate_ack_wait(cfg_t *cfg, cfg_opt_t *opt)
{
	long v = cfg_opt_getnint(opt, 0);

	if (v >= 1 && v <= BRIDGE_ACK_WAIT_MAX)
		return 0;
	cfg_error(cfg, "ack_wait = %ld: out of range (whole seconds from 1 to %d)", v, BRIDGE_ACK_WAIT_MAX);
	return -1;
}

/* The keys a direction's section must hold, reported at its closing brace;
 * and a second direction, or a second section of one. */
static int validate_direction(cfg_t *cfg, cfg_opt_t *opt, const char *const *required, size_t n)
{
	const char *other = strcmp(opt->name, "export") ? "export" : "import";
	cfg_t *sec = cfg_opt_getnsec(opt, cfg_opt_size(opt) - 1);

	if (cfg_opt_size(opt) > 1) {
		cfg_error(cfg, "a second %s { } section: one a file", opt->name);
		return -1;
	}
	if (cfg_size(cfg, other)) {
		cfg_error(cfg, "%s { } beside %s { }: one direction a file (a bridge a direction)", opt->name, other);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!cfg_size(sec, required[i])) {
			cfg_error(cfg, "%s { } lacks %s = \"...\"", opt->name, required[i]);
			return -1;
		}
	}
	return 0;
}

static int validate_export(cfg_t *cfg, cfg_opt_t *opt)
{
	static const char *const required[] = { "queue", "subject" };

	return validate_direction(cfg, opt, required, sizeof(required) / sizeof(required[0]));
}

static int validate_import(cfg_t *cfg, cfg_opt_t *opt)
{
	static const char *const required[] = { "subject", "queue", "stream" };

	return validate_direction(cfg, opt, required, sizeof(required) / sizeof(required[0]));
}

/* ---- the text ---- */

static int read_text(const char *path, char **out)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t len;

	if (!f)
		return -errno;
	buf = malloc(BRIDGE_CONFIG_MAX + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	len = fread(buf, 1, BRIDGE_CONFIG_MAX + 1, f);
	if (ferror(f) || len > BRIDGE_CONFIG_MAX) {
		int err = ferror(f) ? -EIO : -EFBIG;

		fclose(f);
		free(buf);
		return err;
	}
	fclose(f);
	buf[len] = '\0';
	/* libconfuse reads up to the first NUL and would ignore the rest */
	if (strlen(buf) != len) {
		free(buf);
		return -EILSEQ;
	}
	*out = buf;
	return 0;
}

/* ---- parsing ---- */

#define OPT_STR(key, validate)                                                            \
	{                                                                                 \
		.name = (key), .type = CFGT_STR, .flags = CFGF_NODEFAULT, .validcb = (validate), \
	}

static int config_parse(cfg_t **out, const char *path, const char *text, bool nats_flag)
{
	cfg_opt_t export_opts[] = {
		OPT_STR("queue", validate_queue),
		OPT_STR("subject", validate_nonempty),
		OPT_STR("stream", validate_nonempty),
		CFG_END(),
	};
	cfg_opt_t import_opts[] = {
		OPT_STR("subject", validate_nonempty),
		OPT_STR("queue", validate_queue),
		OPT_STR("stream", validate_nonempty),
		OPT_STR("durable", validate_durable),
		{ .name = "ack_wait", .type = CFGT_INT, .flags = CFGF_NODEFAULT, .validcb = validate_ack_wait },
		CFG_END(),
	};
	cfg_opt_t root_opts[] = {
		OPT_STR("nats", validate_nonempty),
		OPT_STR("creds", validate_nonempty),
		OPT_STR("tls_ca", validate_nonempty),
		OPT_STR("namespace", validate_nonempty),
		OPT_STR("socket", validate_socket),
		CFG_BOOL("verbose", cfg_false, CFGF_NONE),
		{ .name = "export", .type = CFGT_SEC, .flags = CFGF_MULTI, .subopts = export_opts,
		  .validcb = validate_export },
		{ .name = "import", .type = CFGT_SEC, .flags = CFGF_MULTI, .subopts = import_opts,
		  .validcb = validate_import },
		CFG_END(),
	};
	cfg_t *tree = cfg_init(root_opts, CFGF_NONE);
	int r;

	if (!tree) {
		fprintf(stderr, "ipcq-bridge: %s: %s\n", path, strerror(ENOMEM));
		return -ENOMEM;
	}
	cfg_set_error_function(tree, report_cfg_error);
	parse_path = path;
	parse_failed = false;
	r = cfg_parse_buf(tree, text);
	if (r == CFG_SUCCESS && !parse_failed) {
		if (!cfg_size(tree, "export") && !cfg_size(tree, "import"))
			report(0, "no export { } or import { } section: which way do messages go?");
		else if (!cfg_size(tree, "nats") && !nats_flag)
			report(0, "no nats = \"URL\" (nor --nats URL)");
		if (cfg_size(tree, "namespace") && cfg_size(tree, "socket"))
			report(0, "namespace and socket exclude each other");
	}
	parse_path = NULL;
	if (r != CFG_SUCCESS || parse_failed) {
		cfg_free(tree);
		return -EINVAL;
	}
	*out = tree;
	return 0;
}

/* The file's string for key, unless the command line set *dst. */
static void fill(const char **dst, cfg_t *sec, const char *key)
{
	if (!*dst && cfg_size(sec, key))
		*dst = cfg_getstr(sec, key);
}

int bridge_config_load(struct bridge_config **out, const char *path, struct bridge_opts *o)
{
	struct bridge_config *c;
	cfg_t *tree = NULL, *dir;
	char *text = NULL;
	int r;

	r = read_text(path, &text);
	if (r) {
		fprintf(stderr, "ipcq-bridge: cannot read config '%s': %s\n", path,
		        r == -EILSEQ ? "it holds a NUL byte" : strerror(-r));
		return 2;
	}
	r = conf_blank(text, true);
	if (r) {
		parse_path = path;
		report(r, "this '{' is never closed");
		parse_path = NULL;
		free(text);
		return 2;
	}
	r = config_parse(&tree, path, text, o->url != NULL);
	free(text);
	if (r)
		return 2;
	c = calloc(1, sizeof(*c));
	if (!c) {
		cfg_free(tree);
		fprintf(stderr, "ipcq-bridge: %s: %s\n", path, strerror(ENOMEM));
		return 2;
	}
	c->tree = tree;
	fill(&o->url, tree, "nats");
	fill(&o->creds, tree, "creds");
	fill(&o->tls_ca, tree, "tls_ca");
	if (!o->ns && !o->socket) {
		fill(&o->ns, tree, "namespace");
		fill(&o->socket, tree, "socket");
	}
	if (cfg_getbool(tree, "verbose"))
		o->verbose = true;
	if (cfg_size(tree, "export")) {
		o->mode = BRIDGE_EXPORT;
		dir = cfg_getsec(tree, "export");
	} else {
		o->mode = BRIDGE_IMPORT;
		dir = cfg_getsec(tree, "import");
		fill(&o->durable, dir, "durable");
		if (!o->ack_wait_s && cfg_size(dir, "ack_wait"))
			o->ack_wait_s = (unsigned)cfg_getint(dir, "ack_wait");
	}
	fill(&o->queue, dir, "queue");
	fill(&o->subject, dir, "subject");
	fill(&o->stream, dir, "stream");
	*out = c;
	return 0;
}

void bridge_config_free(struct bridge_config *c)
{
	if (!c)
		return;
	cfg_free(c->tree);
	free(c);
}
