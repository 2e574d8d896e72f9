/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - ipcbrokerd's command line.
 */
#include "config.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

/* The config read without -c: the system one, or for a per-user daemon
 * the user's own ($XDG_CONFIG_HOME, else ~/.config).  Returns the length,
 * or 0 when there is no place to look. */
static int default_config_path(char *buf, size_t cap, bool user)
{
	const char *base = getenv("XDG_CONFIG_HOME");
	const char *sub = "/ipcbroker";
	int n;

	if (!user)
		return snprintf(buf, cap, "%s", SYSCONFDIR "/ipcbrokerd.conf");
	if (!base || base[0] != '/') {
		base = getenv("HOME");
		sub = "/.config/ipcbroker";
		if (!base || base[0] != '/')
			return 0;
	}
	n = snprintf(buf, cap, "%s%s/ipcbrokerd.conf", base, sub);
	return n > 0 && (size_t)n < cap ? n : 0;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: ipcbrokerd [-c FILE] [--user] [--namespace NAME] [--socket PATH] [--run-as USER]\n"
	        "                  [--check-config] [-v]\n"
	        "\n"
	        "The ipcbroker daemon: owns the named queues of one namespace and hands\n"
	        "them to permitted clients.  Runs in the foreground (systemd Type=notify).\n"
	        "\n"
	        "  -c, --config FILE    configuration file (default: %s/ipcbrokerd.conf,\n"
	        "                       with --user $XDG_CONFIG_HOME/ipcbroker/ipcbrokerd.conf,\n"
	        "                       if it exists, else the embedded defaults)\n"
	        "  -u, --user           be the caller's per-user daemon: socket under\n"
	        "                       $XDG_RUNTIME_DIR/ipcbroker/ instead of " PROTO_SYSTEM_RUNDIR "/\n"
	        "  -n, --namespace NAME instance name: socket path and kernel object prefix\n"
	        "  -s, --socket PATH    control socket path (overrides the namespace's)\n"
	        "      --run-as USER    started as root, become USER once the socket listens\n"
	        "                       (overrides run_as of the config)\n"
	        "      --check-config   check the configuration, print errors, and exit\n"
	        "  -v, --verbose        log debug messages\n"
	        "      --version        print the version and exit\n"
	        "  -h, --help           print this help and exit\n",
	        SYSCONFDIR);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "namespace", required_argument, NULL, 'n' },
		{ "user", no_argument, NULL, 'u' },
		{ "socket", required_argument, NULL, 's' },
		{ "run-as", required_argument, NULL, 'R' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct options opt = { 0 };
	char user_config[PATH_MAX];
	struct daemon d;
	int ch, ret;

	while ((ch = getopt_long(argc, argv, "c:n:s:uvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			opt.config_path = optarg;
			break;
		case 'n':
			opt.namespace_ = optarg;
			break;
		case 's':
			opt.socket = optarg;
			break;
		case 'R':
			opt.run_as = optarg;
			break;
		case 'u':
			opt.user = true;
			break;
		case 'C':
			opt.check_config = true;
			break;
		case 'v':
			opt.verbose++;
			break;
		case 'V':
			printf("ipcbrokerd %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ipcbrokerd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (!opt.config_path) {
		ret = default_config_path(user_config, sizeof(user_config), opt.user);
		if (ret > 0 && access(user_config, F_OK) == 0)
			opt.config_path = user_config;
	}
	if (opt.check_config) {
		struct config *cfg = NULL;

		ret = config_load(&cfg, opt.config_path, stderr);
		if (ret < 0)
			return 1;
		printf("%s: OK (%zu queues)\n", cfg->source, cfg->n_queues);
		config_free(cfg);
		return 0;
	}

	ret = daemon_init(&d, &opt);
	if (ret == 0)
		ret = daemon_run(&d);
	daemon_deinit(&d);
	return ret < 0 ? 1 : 0;
}
