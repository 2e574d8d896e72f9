/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.c - option parsing, connection setup and error reporting shared by
 * every ipcq command.
 *
 * The socket path is resolved here rather than left to ipcq_connect() so
 * that a failed connection can name the path it tried: "cannot connect"
 * is the most common first error and the path is what the user must check.
 * The rules are ipcq_connect()'s: a socket path; else the system daemon of
 * a namespace; the per-user daemon only when asked for (--user, IPCQ_USER).
 */
#include "config.h"

#include <errno.h>
#include <math.h> /* isfinite(), a macro: no libm */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "proto.h"
#include "util.h"

/* -q (-1), default (0), -v (1): one per process, like stderr. */
static int verbosity;

bool cli_quiet(void)
{
	return verbosity < 0;
}

static void vprint_error(const char *fmt, va_list ap, const char *detail)
{
	fputs("ipcq: ", stderr);
	vfprintf(stderr, fmt, ap);
	if (detail)
		fprintf(stderr, ": %s", detail);
	fputc('\n', stderr);
}

int cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint_error(fmt, ap, NULL);
	va_end(ap);
	return CLI_EXIT_ERROR;
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;

	if (verbosity < 0)
		return;
	fputs("ipcq: warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void cli_info(const char *fmt, ...)
{
	va_list ap;

	if (verbosity <= 0)
		return;
	va_start(ap, fmt);
	vprint_error(fmt, ap, NULL);
	va_end(ap);
}

static int exit_status_of(int err)
{
	switch (err) {
	case -ETIMEDOUT:
	case -EAGAIN:
		return CLI_EXIT_TIMEOUT;
	case -ENOENT:
	case -EIDRM:
		return CLI_EXIT_NOT_FOUND;
	case -EACCES:
	case -EPERM:
		return CLI_EXIT_DENIED;
	default:
		return CLI_EXIT_ERROR;
	}
}

int cli_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint_error(fmt, ap, ipcq_strerror(err));
	va_end(ap);
	return exit_status_of(err);
}

int cli_fail_request(const struct cli *cli, int err, const char *fmt, ...)
{
	const char *why = cli->client ? ipcq_last_error(cli->client) : "";
	va_list ap;

	va_start(ap, fmt);
	vprint_error(fmt, ap, why && *why ? why : ipcq_strerror(err));
	va_end(ap);
	return exit_status_of(err);
}

int cli_finish_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return cli_error("writing to standard output: %s", strerror(errno));
	return CLI_EXIT_OK;
}

int textbuf_print(const struct textbuf *tb)
{
	if (tb->failed)
		return cli_error("out of memory");
	if (tb->len)
		fwrite(tb->data, 1, tb->len, stdout);
	return cli_finish_stdout();
}

static void print_usage_line(FILE *f, const struct cli_command *cmd)
{
	if (cmd)
		fprintf(f, "Usage: ipcq %s %s\n", cmd->name, cmd->synopsis);
	else
		fputs("Usage: ipcq [--user] [--namespace NAME | --socket PATH] COMMAND [ARGS]\n", f);
}

int cli_usage_error(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint_error(fmt, ap, NULL);
	va_end(ap);
	print_usage_line(stderr, cli->cmd);
	fprintf(stderr, "Try 'ipcq %s%s--help' for more information.\n",
		cli->cmd ? cli->cmd->name : "", cli->cmd ? " " : "");
	return CLI_EXIT_USAGE;
}

void cli_print_command_help(const struct cli_command *cmd)
{
	print_usage_line(stdout, cmd);
	printf("\n%s\n", cmd->help);
	fputs("Global options (also accepted before COMMAND):\n"
	      "      --namespace NAME  use the daemon of namespace NAME\n"
	      "      --user            use your per-user daemon, not the system's\n"
	      "      --socket PATH     use the daemon listening on PATH\n"
	      "  -q, --quiet           print no diagnostics but errors\n"
	      "  -v, --verbose         say what is done\n"
	      "  -h, --help            show this help\n",
	      stdout);
}

/* The option getopt refused, as the user typed it. */
static const char *bad_option(char **argv)
{
	static char shortopt[3];

	if (optopt > 0 && optopt < CLI_OPT_NAMESPACE) {
		shortopt[0] = '-';
		shortopt[1] = (char)optopt;
		return shortopt;
	}
	return argv[optind - 1];
}

/* "-f/--file", "--json" or "-x": the option whose getopt value is opt. */
static void option_name(char *buf, size_t cap, int opt, const struct option *longopts)
{
	const char *lname = NULL;

	for (; longopts && longopts->name; longopts++)
		if (longopts->val == opt && !longopts->flag) {
			lname = longopts->name;
			break;
		}
	if (opt < CLI_OPT_NAMESPACE && lname)
		snprintf(buf, cap, "-%c/--%s", opt, lname);
	else if (lname)
		snprintf(buf, cap, "--%s", lname);
	else
		snprintf(buf, cap, "-%c", opt);
}

int cli_getopt(struct cli *cli, int argc, char **argv, const char *optstring, const struct option *longopts)
{
	int opt = getopt_long(argc, argv, optstring, longopts, NULL);
	uint64_t bit;

	/* help ends parsing; errors are reported as they are */
	if (opt < 0 || opt >= CLI_OPT_LIMIT || opt == 'h' || opt == '?' || opt == ':')
		return opt;
	bit = 1ull << (opt % 64);
	if (cli->seen[opt / 64] & bit) {
		option_name(cli->repeated, sizeof(cli->repeated), opt, longopts);
		return CLI_OPT_REPEATED;
	}
	cli->seen[opt / 64] |= bit;
	return opt;
}

static int set_target(struct cli *cli, const char **slot, const char *value)
{
	/* The synopsis offers one or the other: both is a mistake, not a
	 * precedence rule to remember. */
	if ((slot == &cli->ns && cli->socket) || (slot == &cli->socket && cli->ns))
		return cli_usage_error(cli, "--namespace and --socket exclude each other");
	if (slot == &cli->socket && cli->user)
		return cli_usage_error(cli, "--user and --socket exclude each other");
	if (!*value)
		return cli_usage_error(cli, "%s needs a non-empty value", slot == &cli->ns ? "--namespace" : "--socket");
	*slot = value;
	return -1;
}

int cli_common_option(struct cli *cli, int opt, char **argv)
{
	switch (opt) {
	case CLI_OPT_NAMESPACE:
		return set_target(cli, &cli->ns, optarg);
	case CLI_OPT_SOCKET:
		return set_target(cli, &cli->socket, optarg);
	case CLI_OPT_USER:
		if (cli->socket)
			return cli_usage_error(cli, "--user and --socket exclude each other");
		cli->user = true;
		return -1;
	case 'q':
	case 'v':
		if ((opt == 'q' && verbosity > 0) || (opt == 'v' && verbosity < 0))
			return cli_usage_error(cli, "-q and -v exclude each other");
		verbosity = opt == 'q' ? -1 : 1;
		return -1;
	case CLI_OPT_REPEATED:
		return cli_usage_error(cli, "option %s given more than once", cli->repeated);
	case 'h':
		cli_print_command_help(cli->cmd);
		return cli_finish_stdout();
	case ':':
		return cli_usage_error(cli, "option '%s' needs an argument", bad_option(argv));
	default:
		return cli_usage_error(cli, "unknown option '%s'", bad_option(argv));
	}
}

int cli_parse_ttl(struct cli *cli, const char *s, uint64_t *ms)
{
	if (parse_duration_ms(s, ms) < 0 || *ms == 0 || *ms > IPCQ_TTL_MAX_MS)
		return cli_usage_error(cli, "bad ttl '%s' (a whole number with ms, s, m or h: 30s)", s);
	return 0;
}

int cli_parse_timeout(const char *s, int *ms)
{
	char *end;
	double msec;

	errno = 0;
	msec = strtod(s, &end) * 1000.0;
	if (end == s || *end || errno || !isfinite(msec) || msec < 0)
		return -EINVAL;
	if (msec > INT_MAX - 1)
		return -ERANGE;
	/* Round up: "-t 0.0001" must still wait, not just poll once. */
	*ms = (int)msec;
	if (*ms < msec)
		(*ms)++;
	return 0;
}

int cli_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int cli_parse_deadline(const char *s, uint64_t *deadline_ns)
{
	int ms, r = cli_parse_timeout(s, &ms);

	if (r < 0)
		return r;
	*deadline_ns = now_ns(CLOCK_MONOTONIC) + (uint64_t)ms * 1000000u;
	return 0;
}

int cli_wait_ms(int timeout_ms, uint64_t deadline_ns)
{
	uint64_t now, left;

	if (!deadline_ns)
		return timeout_ms;
	now = now_ns(CLOCK_MONOTONIC);
	if (now >= deadline_ns)
		return 0;
	/* rounded up: a wait of the last 0.4 ms must not become a poll */
	left = (deadline_ns - now + 999999) / 1000000;
	if (left > INT_MAX)
		left = INT_MAX;
	return timeout_ms >= 0 && (uint64_t)timeout_ms < left ? timeout_ms : (int)left;
}

bool cli_deadline_passed(uint64_t deadline_ns)
{
	return deadline_ns && now_ns(CLOCK_MONOTONIC) >= deadline_ns;
}

/* The rule is proto_queue_name_valid()'s; only the explanation is here. */
int cli_check_queue_name(const struct cli *cli, const char *name)
{
	const char *rule = "a queue name is 1 to 64 letters, digits, '_', '-' and '.', not starting with '.'";
	size_t len = strlen(name), i;

	_Static_assert(IPCQ_NAME_MAX == 64, "the rule above names the length");
	if (proto_queue_name_valid(name))
		return 0;
	if (len == 0)
		return cli_usage_error(cli, "empty queue name: %s", rule);
	if (len > IPCQ_NAME_MAX)
		return cli_usage_error(cli, "queue name '%.20s...' is %zu characters long: %s", name, len, rule);
	if (name[0] == '.')
		return cli_usage_error(cli, "invalid queue name '%s' (it starts with '.'): %s", name, rule);
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (!(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') && !(ch >= '0' && ch <= '9') &&
		    ch != '_' && ch != '-' && ch != '.')
			break;
	}
	if (i < len && name[i] >= ' ' && name[i] < 0x7f)
		return cli_usage_error(cli, "invalid queue name '%s' ('%c' is not allowed): %s", name, name[i], rule);
	if (i < len)
		return cli_usage_error(cli, "invalid queue name (byte 0x%02x is not allowed): %s",
		                       (unsigned char)name[i], rule);
	return cli_usage_error(cli, "invalid queue name '%s': %s", name, rule);
}

/* Options beat the environment; a socket path beats a namespace. */
static int resolve_socket(struct cli *cli)
{
	const char *env_socket = getenv("IPCQ_SOCKET");
	const char *ns = cli->ns;
	int r;

	if (!cli->socket && !ns && !cli->user && env_socket && *env_socket)
		cli->socket = env_socket;
	if (cli->socket) {
		if (strlen(cli->socket) >= sizeof(cli->socket_path))
			return cli_usage_error(cli, "socket path too long: %s", cli->socket);
		strcpy(cli->socket_path, cli->socket);
		return CLI_EXIT_OK;
	}
	if (!ns) {
		ns = getenv("IPCQ_NAMESPACE");
		if (ns && !*ns)
			ns = NULL;
	}
	if (!cli->user && util_env_true("IPCQ_USER"))
		cli->user = true;
	if (cli->user)
		r = ipcq_user_socket_path(ns, cli->socket_path, sizeof(cli->socket_path));
	else
		r = ipcq_socket_path(ns, cli->socket_path, sizeof(cli->socket_path));
	if (r == -EDESTADDRREQ)
		return cli_error("XDG_RUNTIME_DIR is not set, so there is no per-user daemon to find "
		                 "(set it, leave out --user/IPCQ_USER for the system daemon, or use --socket PATH)");
	if (r < 0)
		return cli_fail(r, "cannot use namespace '%s'", ns ? ns : "default");
	return CLI_EXIT_OK;
}

/* Why no daemon answered at cli->socket_path, in the user's terms. */
static int no_daemon_error(const struct cli *cli)
{
	const char *hint = cli->socket ? "is ipcbrokerd running there?"
	                   : cli->user ? "start one with 'ipcbrokerd --user'"
	                               : "start it with 'systemctl start ipcbrokerd', or use --user for a per-user daemon";
	struct stat st;

	if (stat(cli->socket_path, &st) < 0 && errno == ENOENT)
		return cli_error("no ipcbrokerd socket at %s (%s)", cli->socket_path, hint);
	return cli_error("no ipcbrokerd listens on %s (%s)", cli->socket_path, hint);
}

int cli_connect(struct cli *cli)
{
	int r;

	if (cli->client)
		return CLI_EXIT_OK;
	r = resolve_socket(cli);
	if (r)
		return r;
	r = ipcq_connect(&cli->client, cli->socket_path);
	if (r == -ECONNREFUSED)
		return no_daemon_error(cli);
	if (r < 0) {
		cli_error("cannot connect to %s: %s", cli->socket_path, strerror(-r));
		return r == -EACCES || r == -EPERM ? CLI_EXIT_DENIED : CLI_EXIT_ERROR;
	}
	cli_info("connected to ipcbrokerd at %s", cli->socket_path);
	return CLI_EXIT_OK;
}

/* Queues may come and go between two calls: ask again until the array
 * was large enough. */
int cli_list_queues(struct cli *cli, ipcq_stats **out)
{
	_cleanup_free_ ipcq_stats *all = NULL;
	size_t cap = 16;
	int n;

	for (;;) {
		ipcq_stats *more = reallocarray(all, cap, sizeof(*all));

		if (!more)
			return -ENOMEM;
		all = more;
		n = ipcq_list(cli->client, all, cap);
		if (n < 0 || (size_t)n <= cap)
			break;
		cap = (size_t)n + 16;
	}
	for (int i = 0; i < n; i++) {
		all[i].name[sizeof(all[i].name) - 1] = '\0';
		all[i].dead_letter[sizeof(all[i].dead_letter) - 1] = '\0';
	}
	*out = TAKE_PTR(all);
	return n;
}

int cli_open_queue(struct cli *cli, const char *name, int flags, ipcq_queue **out)
{
	int r = cli_check_queue_name(cli, name);

	if (r)
		return r;
	r = cli_connect(cli);
	if (r)
		return r;
	r = ipcq_open(cli->client, name, flags, out);
	if (r < 0)
		return cli_fail_request(cli, r, "cannot open queue '%s'", name);
	cli_info("opened queue '%s'", name);
	return CLI_EXIT_OK;
}

void cli_disconnect(struct cli *cli)
{
	if (cli->client)
		ipcq_disconnect(cli->client);
	cli->client = NULL;
}

void cli_die_of_signal(int signo)
{
	sigset_t mask;

	signal(signo, SIG_DFL);
	sigemptyset(&mask);
	sigaddset(&mask, signo);
	raise(signo);
	sigprocmask(SIG_UNBLOCK, &mask, NULL);
}
