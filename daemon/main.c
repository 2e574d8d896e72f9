/*
 * main.c - ipcbrokerd's command line.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: ipcbrokerd [-c FILE] [--namespace NAME] [--socket PATH] [--check-config] [-v]\n"
	        "\n"
	        "The ipcbroker daemon: owns the named queues of one namespace and hands\n"
	        "them to permitted clients.  Runs in the foreground (systemd Type=notify).\n"
	        "\n"
	        "  -c, --config FILE    configuration file (default: %s/ipcbrokerd.conf\n"
	        "                       if it exists, else the embedded defaults)\n"
	        "  -n, --namespace NAME instance name: socket path and kernel object prefix\n"
	        "  -s, --socket PATH    control socket path (overrides the namespace's)\n"
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
		{ "socket", required_argument, NULL, 's' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct options opt = { 0 };
	struct daemon d;
	int ch, ret;

	while ((ch = getopt_long(argc, argv, "c:n:s:vh", longopts, NULL)) != -1) {
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
	if (!opt.config_path && access(SYSCONFDIR "/ipcbrokerd.conf", F_OK) == 0)
		opt.config_path = SYSCONFDIR "/ipcbrokerd.conf";
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
