/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - ipcq-bridge: options, signals, status.
 *
 *   ipcq-bridge [--namespace NS | --socket PATH] --nats URL [--creds FILE]
 *               export QUEUE SUBJECT [--stream NAME]
 *   ipcq-bridge [--namespace NS | --socket PATH] --nats URL [--creds FILE]
 *               import SUBJECT QUEUE --stream NAME [--durable NAME] [--ack-wait S]
 *   ipcq-bridge --nats URL [--creds FILE] add-stream NAME SUBJECT
 *
 * It runs in the foreground until SIGTERM or SIGINT (exit 0).  The
 * handlers only set bridge_stopping: every wait in the loops is short
 * (half a second at most), so the flag is seen promptly.  Exit status: 0
 * after a stop, 1 on an error (said on stderr), 2 on a usage error.
 */
#include "config.h"

#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "bridge.h"

volatile sig_atomic_t bridge_stopping;

static void on_stop_signal(int sig)
{
	(void)sig;
	bridge_stopping = 1;
}

static pthread_mutex_t status_lock = PTHREAD_MUTEX_INITIALIZER;
static char status_last[512];

void bridge_status(const char *fmt, ...)
{
	char buf[sizeof(status_last)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&status_lock);
	if (strcmp(buf, status_last)) {
		snprintf(status_last, sizeof(status_last), "%s", buf);
		fprintf(stderr, "ipcq-bridge: %s\n", buf);
		sd_notifyf(0, "STATUS=%s", buf);
	}
	pthread_mutex_unlock(&status_lock);
}

void bridge_ready(void)
{
	sd_notify(0, "READY=1");
}

bool bridge_sleep(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	if (!bridge_stopping)
		nanosleep(&ts, NULL);
	return !bridge_stopping;
}

static void usage(FILE *f)
{
	fputs("Usage: ipcq-bridge [--namespace NS | --socket PATH] --nats URL [--creds FILE]\n"
	      "                   export QUEUE SUBJECT [--stream NAME]\n"
	      "       ipcq-bridge [--namespace NS | --socket PATH] --nats URL [--creds FILE]\n"
	      "                   import SUBJECT QUEUE --stream NAME [--durable NAME] [--ack-wait SECONDS]\n"
	      "       ipcq-bridge --nats URL [--creds FILE] add-stream NAME SUBJECT\n"
	      "\n"
	      "Carry messages between a local ipcbroker queue and NATS JetStream, at least\n"
	      "once: export releases a local message only after JetStream acknowledged it,\n"
	      "import acknowledges a JetStream message only after it was sent locally.\n"
	      "add-stream creates a file-backed work-queue stream for SUBJECT.\n"
	      "\n"
	      "Options:\n"
	      "  -n, --namespace NS   the ipcbrokerd of namespace NS\n"
	      "  -s, --socket PATH    the ipcbrokerd listening at PATH\n"
	      "                       (default: $IPCQ_SOCKET, else $IPCQ_NAMESPACE, else \"default\")\n"
	      "  -u, --nats URL       the NATS server, e.g. nats://host:4222 (several: comma-separated)\n"
	      "      --creds FILE     NATS user credentials (JWT and NKey seed)\n"
	      "      --stream NAME    the JetStream stream (export: checked to exist; import: required)\n"
	      "      --durable NAME   import: the durable consumer, shared by every importer that\n"
	      "                       names it (default: ipcq-QUEUE)\n"
	      "      --ack-wait S     import: a message not acknowledged within S seconds is\n"
	      "                       delivered again (set when the consumer is created; default 30)\n"
	      "  -v, --verbose        say how many messages moved at exit\n"
	      "  -h, --help           this help\n"
	      "      --version        the version\n",
	      f);
}

static int usage_error(const char *fmt, const char *arg)
{
	fputs("ipcq-bridge: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\nTry 'ipcq-bridge --help'.\n", stderr);
	return 2;
}

enum { OPT_CREDS = 256, OPT_STREAM, OPT_DURABLE, OPT_ACK_WAIT, OPT_VERSION };

/* Default durable name: ipcq-QUEUE, '.' (not allowed there) made '_'. */
static char default_durable[IPCQ_NAME_MAX + 8];

static int parse_args(int argc, char **argv, struct bridge_opts *o)
{
	static const struct option longopts[] = {
		{ "namespace", required_argument, NULL, 'n' }, { "socket", required_argument, NULL, 's' },
		{ "nats", required_argument, NULL, 'u' },      { "creds", required_argument, NULL, OPT_CREDS },
		{ "stream", required_argument, NULL, OPT_STREAM }, { "durable", required_argument, NULL, OPT_DURABLE },
		{ "ack-wait", required_argument, NULL, OPT_ACK_WAIT }, { "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },            { "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "n:s:u:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': o->ns = optarg; break;
		case 's': o->socket = optarg; break;
		case 'u': o->url = optarg; break;
		case OPT_CREDS: o->creds = optarg; break;
		case OPT_STREAM: o->stream = optarg; break;
		case OPT_DURABLE: o->durable = optarg; break;
		case OPT_ACK_WAIT: {
			unsigned long v = strtoul(optarg, &end, 10);

			if (*optarg < '0' || *optarg > '9' || *end || v < 1 || v > 86400)
				return usage_error("--ack-wait takes whole seconds from 1 to 86400, not '%s'", optarg);
			o->ack_wait_s = (unsigned)v;
			break;
		}
		case 'v': o->verbose = true; break;
		case 'h': usage(stdout); exit(0);
		case OPT_VERSION: printf("ipcq-bridge %s\n", PACKAGE_VERSION); exit(0);
		default: return usage_error("%s", "bad option");
		}
	}
	if (o->ns && o->socket)
		return usage_error("%s", "--namespace and --socket exclude each other");
	if (!o->url)
		return usage_error("%s", "--nats URL is required");
	if (optind >= argc)
		return usage_error("%s", "a command is required: export, import or add-stream");
	cmd = argv[optind++];
	if (argc - optind != 2)
		return usage_error("%s takes two arguments", cmd);
	if (!strcmp(cmd, "export")) {
		o->mode = BRIDGE_EXPORT;
		o->queue = argv[optind];
		o->subject = argv[optind + 1];
	} else if (!strcmp(cmd, "import")) {
		o->mode = BRIDGE_IMPORT;
		o->subject = argv[optind];
		o->queue = argv[optind + 1];
		if (!o->stream)
			return usage_error("%s", "import needs --stream NAME");
		if (!o->durable) {
			snprintf(default_durable, sizeof(default_durable), "ipcq-%s", o->queue);
			for (char *p = default_durable; *p; p++)
				if (*p == '.')
					*p = '_';
			o->durable = default_durable;
		}
	} else if (!strcmp(cmd, "add-stream")) {
		o->mode = BRIDGE_ADD_STREAM;
		o->stream = argv[optind];
		o->subject = argv[optind + 1];
	} else {
		return usage_error("unknown command '%s' (export, import or add-stream)", cmd);
	}
	if (o->durable && strpbrk(o->durable, ".*> "))
		return usage_error("a durable name may not hold '.', '*', '>' or spaces: '%s'", o->durable);
	return 0;
}

int main(int argc, char **argv)
{
	struct bridge_opts opts = { 0 };
	struct sigaction sa = { .sa_handler = on_stop_signal };
	int r;

	r = parse_args(argc, argv, &opts);
	if (r)
		return r;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	switch (opts.mode) {
	case BRIDGE_EXPORT: r = bridge_export(&opts); break;
	case BRIDGE_IMPORT: r = bridge_import(&opts); break;
	case BRIDGE_ADD_STREAM: r = bridge_add_stream(&opts); break;
	}
	if (opts.mode != BRIDGE_ADD_STREAM)
		sd_notify(0, "STOPPING=1");
	nats_Close();
	return r;
}
