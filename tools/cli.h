/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - what every ipcq subcommand shares (in the manner of mosquitto's
 * client_shared.c): the global options, which every command also accepts
 * after its name so that a flag means the same thing everywhere; the
 * connection to the daemon; parsing of timeouts and numbers; and the one
 * mapping from errors to messages and exit statuses.
 */
#ifndef IPCQ_CLI_H
#define IPCQ_CLI_H

#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "ipcq.h"
#include "textbuf.h"

/* Exit statuses: part of the CLI contract (see ipcq(1)). */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_ERROR = 1,
	CLI_EXIT_USAGE = 2,
	CLI_EXIT_TIMEOUT = 3,
	CLI_EXIT_NOT_FOUND = 4,
	CLI_EXIT_DENIED = 5,
};

/* getopt values of long-only options: above every short option character. */
enum {
	CLI_OPT_NAMESPACE = 0x100,
	CLI_OPT_SOCKET,
	CLI_OPT_USER,
	CLI_OPT_REPEATED, /* cli_getopt(): an option given twice */
	CLI_OPT_FIRST_COMMAND_ /* first value free for a command's own options */
};
/* cli_getopt() tracks option values below this. */
#define CLI_OPT_LIMIT 0x200

/* The global options, to be placed in every command's option table, and
 * their short letters, to be placed in every option string. */
#define CLI_GLOBAL_OPTIONS                                               \
	{ "namespace", required_argument, NULL, CLI_OPT_NAMESPACE },   \
	{ "socket", required_argument, NULL, CLI_OPT_SOCKET },         \
	{ "user", no_argument, NULL, CLI_OPT_USER },                   \
	{ "quiet", no_argument, NULL, 'q' },                           \
	{ "verbose", no_argument, NULL, 'v' },                         \
	{ "help", no_argument, NULL, 'h' }
#define CLI_GLOBAL_SHORT "hqv"

struct cli;

struct cli_command {
	const char *name;
	const char *synopsis; /* what follows "ipcq NAME" in a usage line */
	const char *summary;  /* one line for 'ipcq --help' */
	const char *help;     /* description and options for 'ipcq NAME --help' */
	int (*run)(struct cli *cli, int argc, char **argv);
};

struct cli {
	const struct cli_command *cmd; /* NULL until the command is known */
	const char *ns;                /* --namespace */
	const char *socket;            /* --socket */
	bool user;                     /* --user: the per-user daemon */
	char socket_path[PATH_MAX];    /* where cli_connect() went */
	ipcq_client *client;
	uint64_t seen[CLI_OPT_LIMIT / 64]; /* options given so far (cli_getopt) */
	char repeated[48];                 /* the option given twice, as "-f/--file" */
};

/* The commands (cmd_send.c, cmd_recv.c (recv, peek), cmd_admin.c, cmd_bench.c,
 * cmd_watch.c, cmd_top.c). */
int cmd_send(struct cli *cli, int argc, char **argv);
int cmd_recv(struct cli *cli, int argc, char **argv);
int cmd_peek(struct cli *cli, int argc, char **argv);
int cmd_create(struct cli *cli, int argc, char **argv);
int cmd_delete(struct cli *cli, int argc, char **argv);
int cmd_purge(struct cli *cli, int argc, char **argv);
int cmd_list(struct cli *cli, int argc, char **argv);
int cmd_stat(struct cli *cli, int argc, char **argv);
int cmd_bench(struct cli *cli, int argc, char **argv);
int cmd_watch(struct cli *cli, int argc, char **argv);
int cmd_top(struct cli *cli, int argc, char **argv);

/* getopt_long() that also refuses an option given a second time: it
 * returns CLI_OPT_REPEATED for it, which
 * cli_common_option() turns into a usage error. */
int cli_getopt(struct cli *cli, int argc, char **argv, const char *optstring, const struct option *longopts);

/* Handle an option every command shares (a global option, --help, or a
 * getopt error; the option string must start with ':').  Returns -1 to go
 * on parsing, or the exit status to end the command with. */
int cli_common_option(struct cli *cli, int opt, char **argv);
/* -q: no diagnostics but errors (-v: cli_info() says more). */
bool cli_quiet(void);
/* A line on standard error with -v ("ipcq: MESSAGE"). */
void cli_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "ipcq: MESSAGE" and the usage line of the command; returns 2. */
int cli_usage_error(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_print_command_help(const struct cli_command *cmd);

/* Seconds, possibly fractional ("0.5"), into milliseconds rounded up. */
int cli_parse_timeout(const char *s, int *ms);
/* A --ttl: a whole number with ms, s, m or h, above 0 and at most
 * IPCQ_TTL_MAX_MS; 0, or the usage error's exit status. */
int cli_parse_ttl(struct cli *cli, const char *s, uint64_t *ms);
/* A decimal integer in [0, max]. */
int cli_parse_uint(const char *s, unsigned long max, unsigned long *out);
/* An overall deadline (-W SECONDS) into a CLOCK_MONOTONIC time in ns. */
int cli_parse_deadline(const char *s, uint64_t *deadline_ns);
/* How long a wait may last: timeout_ms (-1: forever) cut to what is left
 * until deadline_ns (0: no deadline); 0 once it has passed. */
int cli_wait_ms(int timeout_ms, uint64_t deadline_ns);
bool cli_deadline_passed(uint64_t deadline_ns);

/* A usage error (2) explaining the naming rule unless name is a valid
 * queue name; 0 if it is. */
int cli_check_queue_name(const struct cli *cli, const char *name);

/* Connect to the daemon chosen by the options or the environment.
 * Returns an exit status (0 on success) after printing any error. */
int cli_connect(struct cli *cli);
/* Every queue's stats in *out (to be freed): the count, or a negative
 * errno. */
int cli_list_queues(struct cli *cli, ipcq_stats **out);
/* Connect if needed and open queue name (checked first); returns an exit
 * status. */
int cli_open_queue(struct cli *cli, const char *name, int flags, ipcq_queue **out);
void cli_disconnect(struct cli *cli);

/* Report a failed library call (negative errno) and return the exit status
 * it maps to.  cli_fail_request() is for requests the daemon answered: it
 * prints the daemon's explanation when there is one. */
int cli_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_fail_request(const struct cli *cli, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Report a local failure (a file, a pipe, the input); returns 1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Flush stdout and report a failed write; returns an exit status. */
int cli_finish_stdout(void);
/* Write tb to standard output through stdio; an exit status. */
int textbuf_print(const struct textbuf *tb);

static inline void cli_queue_closep(ipcq_queue **q)
{
	if (*q)
		ipcq_close(*q);
}
#define _cleanup_queue_ __attribute__((cleanup(cli_queue_closep)))

/* Die of signo as if it had never been blocked, so that a calling shell
 * sees the interruption (and stops a script) rather than a status;
 * returns only if the signal does not kill. */
void cli_die_of_signal(int signo);

#endif
