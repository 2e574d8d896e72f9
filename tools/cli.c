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
#include "util.h"

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

	fputs("ipcq: warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
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
	return CLI_EXIT_OK;
}

int cli_open_queue(struct cli *cli, const char *name, int flags, ipcq_queue **out)
{
	int r = cli_connect(cli);

	if (r)
		return r;
	r = ipcq_open(cli->client, name, flags, out);
	if (r < 0)
		return cli_fail_request(cli, r, "cannot open queue '%s'", name);
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
