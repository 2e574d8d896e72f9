/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_config.c - ipcbrokerd.conf as the daemon reads it
 * (daemon/config.c): the fuzzer's bytes are the file.
 *
 * config_load reads a file by its name, so the bytes go into a memfd,
 * named through /proc/self/fd: the whole of the daemon's reading runs,
 * the file's checks (size, NUL bytes) included, with its error messages
 * formatted (into /dev/null).  What the daemon then asks of a config that
 * loaded is asked too: every queue's geometry, policy and ack timeout, who
 * its access rules let in, and what a user may create under it
 * (daemon/policy.c).  Besides memory errors, this checks that every
 * geometry a loaded config gives is one the daemon can create.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf.h"
#include "daemon.h"
#include "fuzz.h"
#include "policy.h"
#include "proto.h"
#include "queue.h"
#include "util.h"

static void must(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_config: %s\n", what);
		abort();
	}
}

/* Who asks: root, a user in a few groups, and a stranger. */
static const gid_t groups[] = { 0, 100, 65534 };
static const struct policy_subject subjects[] = {
	{ .uid = 0, .gid = 0 },
	{ .uid = 1000, .gid = 1000, .groups = groups, .ngroups = ARRAY_SIZE(groups) },
	{ .uid = 4242, .gid = 4242 },
};

static void ask_policy(struct config *cfg)
{
	struct daemon *d = calloc(1, sizeof(*d));
	struct queue *q = calloc(1, sizeof(*q));
	char why[PROTO_ERRMSG_MAX];

	if (!d || !q)
		abort();
	d->cfg = cfg;
	d->uid = 999;
	for (size_t s = 0; s < ARRAY_SIZE(subjects); s++) {
		const struct policy_subject *who = &subjects[s];
		ipcq_geometry g = config_queue_geometry(cfg, NULL);

		/* an auto-created queue of the defaults' geometry */
		policy_check_create(d, who, false, &g, false, why, sizeof(why));
		policy_admit_conn(d, who->uid, 10, 3, why, sizeof(why));
		policy_may_manage(d, who, NULL);
		for (size_t i = 0; i < cfg->n_queues; i++) {
			snprintf(q->rec.name, sizeof(q->rec.name), "%s", cfg->queues[i].name);
			q->from_config = true;
			policy_may_use(d, who, q, IPCQ_SEND | IPCQ_RECV);
			policy_may_see(d, who, q);
			policy_may_purge(d, who, q);
		}
	}
	free(q);
	free(d);
}

static void ask_queues(struct config *cfg)
{
	ipcq_geometry g = config_queue_geometry(cfg, NULL);
	const char *why = NULL;

	must(proto_geometry_check(&g, &why) == 0, "the defaults' geometry cannot make a queue");
	for (size_t i = 0; i < cfg->n_queues; i++) {
		const struct queue_config *qc = &cfg->queues[i];
		struct queue_policy p;

		must(proto_queue_name_valid(qc->name), "a queue section with an invalid name loaded");
		must(config_find_queue(cfg, qc->name) == qc, "two queue sections of one name loaded");
		g = config_queue_geometry(cfg, qc);
		if (proto_geometry_check(&g, &why) < 0) {
			fprintf(stderr, "fuzz_config: queue \"%s\": %s\n", qc->name, why);
			must(false, "a queue's geometry cannot make it");
		}
		p = config_queue_policy(cfg, qc, NULL, qc->name);
		must(!p.dead_letter[0] || proto_queue_name_valid(p.dead_letter), "an invalid dead_letter loaded");
		config_queue_ack_timeout(cfg, qc);
		for (size_t s = 0; s < ARRAY_SIZE(subjects); s++) {
			policy_acl_match(&qc->allow_send, &subjects[s]);
			policy_acl_match(&qc->allow_recv, &subjects[s]);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	static FILE *err;
	struct config *cfg = NULL;

	if (fd < 0) {
		fd = memfd_create("fuzz-config", MFD_CLOEXEC);
		err = fopen("/dev/null", "w");
		if (fd < 0 || !err)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	if (config_load(&cfg, path, err) < 0) {
		must(cfg == NULL, "config_load failed and gave a config");
		return 0;
	}
	ask_queues(cfg);
	ask_policy(cfg);
	config_free(cfg);
	return 0;
}
