/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - ipcq-bridge: options, signals, status.
 *
 *   ipcq-bridge [--namespace NS | --socket PATH] --nats URL [--creds FILE]
 *               export QUEUE SUBJECT [--stream NAME]
 *   ipcq-bridge [--namespace NS | --socket PATH] --nats URL [--creds FILE]
 *               import SUBJECT QUEUE --stream NAME [--durable NAME] [--ack-wait S]
 *   ipcq-bridge --nats URL [--creds FILE] add-stream NAME SUBJECT
 *   ipcq-bridge --config FILE [--check-config] [flags that override it]
 *
 * (and --tls-ca FILE beside any --nats).  It runs in the foreground until
 * SIGTERM or SIGINT (exit 0).  The handlers only set bridge_stopping:
 * every wait in the loops is short (half a second at most), so the flag
 * is seen promptly.  Exit status: 0 after a stop, 1 on an error (said on
 * stderr), 2 on a usage error or a bad config file.
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
	      "       ipcq-bridge --config FILE [--check-config] [OPTIONS] [add-stream NAME SUBJECT]\n"
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
	      "      --tls-ca FILE    trust the CA certificates in FILE (PEM) for tls:// servers\n"
	      "  -c, --config FILE    read the options and the direction from FILE (see\n"
	      "                       ipcq-bridge(1)); options given beside it win\n"
	      "      --check-config   with --config: check it and exit (0, or 2 with the errors)\n"
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

enum { OPT_CREDS = 256, OPT_TLS_CA, OPT_CHECK_CONFIG, OPT_STREAM, OPT_DURABLE, OPT_ACK_WAIT, OPT_VERSION };

/* Default durable name: ipcq-QUEUE, '.' (not allowed there) made '_'. */
static char default_durable[IPCQ_NAME_MAX + 8];

/* The options, then the command: export QUEUE SUBJECT, import SUBJECT
 * QUEUE, add-stream NAME SUBJECT; with --config the direction is the
 * file's, so only add-stream may follow (and takes the file's NATS
 * settings).  The file fills in what the options left unset. */
static int parse_args(int argc, char **argv, struct bridge_opts *o, struct bridge_config **config,
                      bool *check_only)
{
	static const struct option longopts[] = {
		{ "namespace", required_argument, NULL, 'n' }, { "socket", required_argument, NULL, 's' },
		{ "nats", required_argument, NULL, 'u' },      { "creds", required_argument, NULL, OPT_CREDS },
		{ "tls-ca", required_argument, NULL, OPT_TLS_CA }, { "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
		{ "stream", required_argument, NULL, OPT_STREAM }, { "durable", required_argument, NULL, OPT_DURABLE },
		{ "ack-wait", required_argument, NULL, OPT_ACK_WAIT }, { "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },            { "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL;
	const char *cmd = NULL, *arg1 = NULL, *arg2 = NULL;
	char *end;
	int c, r;

	while ((c = getopt_long(argc, argv, "n:s:u:c:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': o->ns = optarg; break;
		case 's': o->socket = optarg; break;
		case 'u': o->url = optarg; break;
		case 'c': config_path = optarg; break;
		case OPT_CREDS: o->creds = optarg; break;
		case OPT_TLS_CA: o->tls_ca = optarg; break;
		case OPT_CHECK_CONFIG: *check_only = true; break;
		case OPT_STREAM: o->stream = optarg; break;
		case OPT_DURABLE: o->durable = optarg; break;
		case OPT_ACK_WAIT: {
			unsigned long v = strtoul(optarg, &end, 10);

			if (*optarg < '0' || *optarg > '9' || *end || v < 1 || v > BRIDGE_ACK_WAIT_MAX)
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
	if (*check_only && !config_path)
		return usage_error("%s", "--check-config needs --config FILE");
	if (optind < argc) {
		cmd = argv[optind++];
		if (argc - optind != 2)
			return usage_error("%s takes two arguments", cmd);
		arg1 = argv[optind];
		arg2 = argv[optind + 1];
		if (strcmp(cmd, "export") && strcmp(cmd, "import") && strcmp(cmd, "add-stream"))
			return usage_error("unknown command '%s' (export, import or add-stream)", cmd);
		if (config_path && strcmp(cmd, "add-stream"))
			return usage_error("with --config the direction is the file's: no '%s' command", cmd);
	} else if (!config_path) {
		return usage_error("%s", "a command is required: export, import or add-stream");
	}
	if (config_path) {
		r = bridge_config_load(config, config_path, o);
		if (r)
			return r;
	}
	if (!o->url)
		return usage_error("%s", "--nats URL is required");
	if (cmd && !strcmp(cmd, "export")) {
		o->mode = BRIDGE_EXPORT;
		o->queue = arg1;
		o->subject = arg2;
	} else if (cmd && !strcmp(cmd, "import")) {
		o->mode = BRIDGE_IMPORT;
		o->subject = arg1;
		o->queue = arg2;
	} else if (cmd) {
		o->mode = BRIDGE_ADD_STREAM;
		o->stream = arg1;
		o->subject = arg2;
	}
	if (o->mode == BRIDGE_IMPORT) {
		if (!o->stream)
			return usage_error("%s", "import needs --stream NAME");
		if (!o->durable) {
			snprintf(default_durable, sizeof(default_durable), "ipcq-%s", o->queue);
			for (char *p = default_durable; *p; p++)
				if (*p == '.')
					*p = '_';
			o->durable = default_durable;
		}
	}
	if (o->durable && strpbrk(o->durable, ".*> "))
		return usage_error("a durable name may not hold '.', '*', '>' or spaces: '%s'", o->durable);
	return 0;
}

int main(int argc, char **argv)
{
	struct bridge_opts opts = { 0 };
	struct bridge_config *config = NULL;
	struct sigaction sa = { .sa_handler = on_stop_signal };
	bool check_only = false;
	int r;

	r = parse_args(argc, argv, &opts, &config, &check_only);
	if (r || check_only) {
		bridge_config_free(config);
		return r;
	}
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
	bridge_config_free(config);
	return r;
}
