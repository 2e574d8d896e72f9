/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ipcq.c - the ipcq command: global options, the command table and help.
 *
 * Global options are parsed up to the command name ("+" in the option
 * string), then the command parses the rest with the same global options
 * in its own table, so "ipcq --socket S send q" and "ipcq send --socket S q"
 * mean the same.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "util.h"

static const struct cli_command commands[] = {
	{
		.name = "send",
		.synopsis = "[OPTIONS] QUEUE [MESSAGE...]",
		.summary = "send messages (arguments, lines of stdin, or a file)",
		.help = "Send each MESSAGE as one message; without MESSAGE, send each line of\n"
			"standard input as one message (newline removed, empty lines included).\n"
			"Lines already read go out together as one batch (up to 64); a line is\n"
			"never held back waiting for more input.\n"
			"The queue is created with the daemon's defaults if the daemon allows it.\n"
			"\n"
			"Options:\n"
			"  -0, --null             read NUL-separated records from standard input\n"
			"  -s, --single           send all of standard input as one message\n"
			"  -f, --file FILE        send FILE as one message\n"
			"  -p, --priority PRIO    message priority, 0 (default) to 31 (first out)\n"
			"  -t, --timeout SECONDS  give up (exit 3) if the queue stays full (its ring,\n"
			"                         or max_depth messages waiting) that long\n"
			"                         (fractions allowed; default: wait forever)\n"
			"  -W, --deadline SECONDS give up (exit 3) once SECONDS have passed in all,\n"
			"                         waiting for room or for input\n"
			"  -T, --ttl DURATION     the messages expire if not received within this\n"
			"                         long (ms, s, m or h: 30s; the queue's ttl if shorter)\n",
		.run = cmd_send,
	},
	{
		.name = "recv",
		.synopsis = "[OPTIONS] QUEUE",
		.summary = "receive messages and print them",
		.help = "Receive one message and print it followed by a newline.\n"
			"\n"
			"Options:\n"
			"  -c, --count N          receive N messages; 0: until interrupted or timed out\n"
			"                         (taken up to 64 at a time, as many as are waiting)\n"
			"  -e, --drain            receive until the queue is empty, then exit 0\n"
			"                         (with -c N: at most N)\n"
			"  -t, --timeout SECONDS  wait at most SECONDS for each message (exit 3;\n"
			"                         with --drain: how long an empty queue is waited on)\n"
			"  -W, --deadline SECONDS stop once SECONDS have passed in all (exit 3)\n"
			"  -0, --null             end each message with NUL instead of newline\n"
			"  -N, --no-separator     write the payloads only\n"
			"  -F, --format FORMAT    write each message as FORMAT: %m payload, %x payload\n"
			"                         in hex, %l length, %p priority, %r 1 if redelivered\n"
			"                         else 0, %d deliveries, %q queue, %n newline, %t tab,\n"
			"                         %0 NUL, %% a %\n"
			"      --json             write each message as a JSON line: priority,\n"
			"                         redelivered, deliveries, length, encoding and data\n"
			"                         (\"utf-8\" text, else \"base64\")\n"
			"  -o, --output FILE      write to FILE instead of standard output\n"
			"                         (payloads only, unless -0, -F or --json is given)\n",
		.run = cmd_recv,
	},
	{
		.name = "peek",
		.synopsis = "[OPTIONS] QUEUE",
		.summary = "print messages waiting in a queue without receiving them",
		.help = "Print up to 10 of the messages waiting in a queue, in about the order\n"
			"receivers would get them, without receiving them: they stay in the queue.\n"
			"A small message of an at-most-once queue sent while a receiver slept\n"
			"travels inline in the kernel's window, which cannot be read without\n"
			"receiving it: such messages are not shown (-v says how many wait).\n"
			"\n"
			"Options:\n"
			"  -c, --count N          print up to N messages; 0: all it can show\n"
			"  -0, --null             end each message with NUL instead of newline\n"
			"  -N, --no-separator     write the payloads only\n"
			"  -F, --format FORMAT    as recv's (%d, deliveries, is 0: nothing is delivered)\n"
			"      --json             as recv's\n",
		.run = cmd_peek,
	},
	{
		.name = "create",
		.synopsis = "[OPTIONS] QUEUE",
		.summary = "create a queue",
		.help = "Create a queue; sizes take K, M or G; omitted values are the daemon's defaults.\n"
			"\n"
			"Options:\n"
			"      --max-msgs N       the window: messages in the kernel message queue\n"
			"      --msg-size B       bytes per kernel message (the inline limit)\n"
			"      --ring-size B      bytes of the shared-memory ring: the queue's depth\n"
			"      --max-payload B    largest message accepted\n"
			"      --max-depth N      most messages waiting (0: the daemon's default,\n"
			"                         normally no bound but the ring)\n"
			"      --prefetch N       most messages one receiver takes ahead, 1 to 64\n"
			"      --senders isolated each sending user writes a ring of its own,\n"
			"                         which other users cannot read or write\n"
			"      --senders shared   senders share the queue's ring\n"
			"      --ttl DURATION     messages not received within this long expire\n"
			"                         (ms, s, m or h: 30s)\n"
			"      --max-deliveries N at-least-once: a message delivered N times and\n"
			"                         never acknowledged is not delivered again\n"
			"      --dead-letter Q    where expired and undeliverable messages go (an\n"
			"                         existing queue you may send to); without one they\n"
			"                         are dropped and counted\n",
		.run = cmd_create,
	},
	{
		.name = "delete",
		.synopsis = "QUEUE",
		.summary = "delete a queue and its messages",
		.help = "Delete a queue and every message in it.\n",
		.run = cmd_delete,
	},
	{
		.name = "purge",
		.synopsis = "QUEUE",
		.summary = "drop every message waiting in a queue",
		.help = "Drop every message waiting in a queue; the queue stays.\n",
		.run = cmd_purge,
	},
	{
		.name = "list",
		.synopsis = "[--json]",
		.summary = "list the queues: name, depth, ring bytes in use, backlog",
		.help = "Print one line per queue, tab-separated: name, depth (messages waiting),\n"
			"ring bytes in use, and backlog (of the depth, messages beyond the window).\n"
			"\n"
			"Options:\n"
			"      --json             print a JSON array of the queues, each the object\n"
			"                         'ipcq stat --json' prints\n",
		.run = cmd_list,
	},
	{
		.name = "stat",
		.synopsis = "[--json] QUEUE | --prometheus [QUEUE]",
		.summary = "show a queue's geometry, ring use and counters",
		.help = "Print a queue's geometry, depth (window and backlog), ring use, counters\n"
			"and delivery mode as \"key: value\" lines.\n"
			"\n"
			"Options:\n"
			"      --json             print one JSON object instead\n"
			"      --prometheus       print Prometheus metrics (text exposition format),\n"
			"                         labelled queue=\"QUEUE\"; without QUEUE, of every queue\n",
		.run = cmd_stat,
	},
	{
		.name = "top",
		.synopsis = "[OPTIONS]",
		.summary = "live view of every queue: depth, backlog, rates, ring use",
		.help = "Show every queue, refreshed every second: depth, backlog, messages in and\n"
			"out per second (from the counters' change), ring use, receivers, listeners\n"
			"and delivery mode.  On a terminal: a full-screen view; 'q' quits, space\n"
			"refreshes now.  Otherwise (or with -b): one snapshot per interval as plain\n"
			"lines, with exact byte counts.\n"
			"\n"
			"Options:\n"
			"  -d, --delay SECONDS    between refreshes (default 1; fractions allowed)\n"
			"  -n, --iterations N     exit after N snapshots\n"
			"  -b, --batch            plain lines even on a terminal; no keys\n",
		.run = cmd_top,
	},
	{
		.name = "watch",
		.synopsis = "[OPTIONS] QUEUE",
		.summary = "print a line each time a queue becomes non-empty",
		.help = "Register for the daemon's signal (SIGRTMIN) that QUEUE went from empty to\n"
			"non-empty, and print a line per signal, tab-separated: the time (ISO 8601,\n"
			"to the millisecond), the queue, and its depth then.  Takes no message;\n"
			"needs the right to receive from QUEUE.  Runs until interrupted.\n"
			"\n"
			"Options:\n"
			"  -c, --count N          exit after N notifications\n"
			"  -t, --timeout SECONDS  exit 3 after SECONDS without a notification\n"
			"                         (fractions allowed; default: wait forever)\n",
		.run = cmd_watch,
	},
	{
		.name = "bench",
		.synopsis = "[OPTIONS] [QUEUE [BACK]]",
		.summary = "measure throughput and latency between processes",
		.help = "Send COUNT messages from producer processes to consumer processes through\n"
			"QUEUE, which must exist and be empty, or through a temporary queue\n"
			"bench.PID made with the geometry below and deleted afterwards.  Prints\n"
			"msgs/s, MB/s (10^6 bytes) and latency percentiles; messages of 8 bytes\n"
			"or more carry their send time.  Fails (exit 1) unless as many messages\n"
			"were received as sent, each whole, and (with one consumer) each producer's\n"
			"in the order it sent them.\n"
			"With --round-trip, a pinger process sends each message through QUEUE to an\n"
			"echo process, which sends it back through BACK (temporary: bench.PID and\n"
			"bench.PID.back); the pinger waits for each answer before the next, and\n"
			"prints round trips/s and the percentiles of the round trip.\n"
			"\n"
			"Options:\n"
			"  -c, --count N          messages in all, shared among producers (100000)\n"
			"      --size B           bytes per message (64; K, M or G)\n"
			"      --producers P      producer processes (1)\n"
			"      --consumers C      consumer processes (1)\n"
			"      --batch K          K messages per ipcq_send_batch/ipcq_recv_batch call\n"
			"                         (1: ipcq_send/ipcq_recv, one per call)\n"
			"      --zero-copy        ipcq_loan/ipcq_publish and ipcq_recv_view/ipcq_release\n"
			"      --round-trip       one message in flight, there and back (16 B or more)\n"
			"      --json             print one JSON object\n"
			"  The temporary queue's geometry (default: the daemon's):\n"
			"      --ring-size B      bytes of its shared-memory ring\n"
			"      --prefetch N       messages one receiver takes ahead\n"
			"      --max-msgs N       its kernel message queue's window\n"
			"      --senders isolated|shared  a lane per sending user, or one ring\n",
		.run = cmd_bench,
	},
};

static int cmd_help(struct cli *cli, int argc, char **argv);

static const struct cli_command help_command = {
	.name = "help",
	.synopsis = "[COMMAND]",
	.summary = "show this help, or a command's ('ipcq COMMAND --help')",
	.help = "Show the commands and the global options, or with COMMAND, the options of\n"
		"COMMAND, as 'ipcq COMMAND --help' does.\n",
	.run = cmd_help,
};

static void print_main_help(void)
{
	size_t i;

	fputs("Usage: ipcq [--user] [--namespace NAME | --socket PATH] COMMAND [ARGS]\n"
	      "\n"
	      "Send and receive messages through ipcbrokerd, and manage its queues.\n"
	      "\n"
	      "Commands:\n",
	      stdout);
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		printf("  %-8s %s\n", commands[i].name, commands[i].summary);
	printf("  %-8s %s\n", help_command.name, help_command.summary);
	fputs("\n"
	      "Global options (also accepted after COMMAND):\n"
	      "      --namespace NAME  use the daemon of namespace NAME ($IPCQ_NAMESPACE;\n"
	      "                        default: the system daemon of namespace default)\n"
	      "      --user            use your per-user daemon (ipcbrokerd --user) under\n"
	      "                        $XDG_RUNTIME_DIR instead of the system's ($IPCQ_USER=1)\n"
	      "      --socket PATH     use the daemon listening on PATH ($IPCQ_SOCKET)\n"
	      "  -q, --quiet           print no diagnostics but errors\n"
	      "  -v, --verbose         say what is done\n"
	      "  -h, --help            show this help; 'ipcq COMMAND --help' for a command\n"
	      "  -V, --version         show the version\n"
	      "\n"
	      "Exit status: 0 success, 1 error, 2 usage error, 3 timed out,\n"
	      "4 queue not found, 5 permission denied.\n",
	      stdout);
}

static const struct cli_command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	if (strcmp(help_command.name, name) == 0)
		return &help_command;
	return NULL;
}

static int cmd_help(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_GLOBAL_OPTIONS,
		{ 0 },
	};
	const struct cli_command *cmd;
	int opt, r;

	while ((opt = cli_getopt(cli, argc, argv, ":" CLI_GLOBAL_SHORT, longopts)) != -1) {
		r = cli_common_option(cli, opt, argv);
		if (r >= 0)
			return r;
	}
	if (optind == argc) {
		print_main_help();
		return cli_finish_stdout();
	}
	if (argc - optind > 1)
		return cli_usage_error(cli, "too many arguments");
	cmd = find_command(argv[optind]);
	if (!cmd)
		return cli_usage_error(cli, "unknown command '%s'", argv[optind]);
	cli_print_command_help(cmd);
	return cli_finish_stdout();
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_GLOBAL_OPTIONS,
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct cli cli = { 0 };
	int opt, r;

	opterr = 0;
	while ((opt = cli_getopt(&cli, argc, argv, "+:V" CLI_GLOBAL_SHORT, longopts)) != -1) {
		switch (opt) {
		case 'h':
			print_main_help();
			return cli_finish_stdout();
		case 'V':
			puts("ipcq " IPCQ_VERSION_STRING);
			return cli_finish_stdout();
		default:
			r = cli_common_option(&cli, opt, argv);
			if (r >= 0)
				return r;
		}
	}
	if (optind >= argc)
		return cli_usage_error(&cli, "no command given");
	cli.cmd = find_command(argv[optind]);
	if (!cli.cmd)
		return cli_usage_error(&cli, "unknown command '%s'", argv[optind]);

	/* The command parses its own argv, whose argv[0] is the command name;
	 * optind = 0 makes glibc's getopt start afresh. */
	argc -= optind;
	argv += optind;
	optind = 0;
	r = cli.cmd->run(&cli, argc, argv);
	cli_disconnect(&cli);
	return r;
}
