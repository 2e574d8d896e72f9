/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon.c - start-up, the event loop's sources, reload, client death,
 * and shutdown.
 *
 * Start-up order matters for a restart without loss: queues named in the
 * config are created or adopted first, then every other queue the
 * registry lists is adopted with its messages, and only then does the
 * socket listen and READY=1 go to systemd.  Clients that kept their
 * descriptors across the restart never noticed it: the data path does not
 * go through the daemon.
 */
#include "config.h"

#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "peer.h"
#include "privilege.h"
#include "queue.h"
#include "shmguard.h"
#include "util.h"

#define SWEEP_INTERVAL_USEC (1000u * 1000u)

/* ---- client processes ---- */

void daemon_sweep(struct daemon *d, uint32_t dead_holder)
{
	/* first what a dead receiver took off the mq: from its buffers */
	if (dead_holder)
		ctl_holder_died(d, dead_holder);
	for (struct queue *q = d->queues; q; q = q->next)
		queue_reclaim(d, q, dead_holder);
}

/* ---- status ---- */

void daemon_status(struct daemon *d)
{
	unsigned peers = peer_count(d);

	sd_notifyf(0, "STATUS=namespace %s: %u queues (%u quarantined since start), %u connections, %u client processes",
	           d->ns, d->n_queues, d->quarantined, d->n_conns, peers);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct daemon *d = userdata;

	/* catches holdings of ids no live process has (forged ones, those of
	 * processes gone while no daemon ran) and redeliveries that found
	 * their mq full */
	daemon_sweep(d, 0);
	notify_sweep(d);
	ctl_sweep_refused(d);
	daemon_status(d);
	/* a queue no message moved through since the last sweep keeps none
	 * of its pages resident in the daemon until the next one */
	for (struct queue *q = d->queues; q; q = q->next)
		if (q->idle_sweeps > 0)
			queue_let_go(q);
	sd_event_source_set_time(s, usec + SWEEP_INTERVAL_USEC);
	return 0;
}

/* ---- queues from the config ---- */

static void create_config_queues(struct daemon *d)
{
	for (size_t i = 0; i < d->cfg->n_queues; i++) {
		const struct queue_config *qc = &d->cfg->queues[i];
		ipcq_geometry g = config_queue_geometry(d->cfg, qc);
		struct queue *q = queue_find(d, qc->name);
		char err[PROTO_ERRMSG_MAX];

		struct queue_record rec = { .geo = g, .delivery = qc->delivery, .creator = d->uid };

		if (q) {
			q->from_config = true;
			if (memcmp(&q->rec.geo, &g, sizeof(g)) != 0 || q->rec.delivery != qc->delivery)
				log_warning("queue %s: a new geometry or delivery mode takes effect only when the "
				            "queue is recreated (ipcq delete)",
				            qc->name);
			continue;
		}
		snprintf(rec.name, sizeof(rec.name), "%s", qc->name);
		if (queue_new(d, &rec, err, sizeof(err), &q) < 0) {
			log_error("queue %s: %s", qc->name, err);
			continue;
		}
		q->from_config = true;
	}
}

/* ---- signals ---- */

static int on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct daemon *d = userdata;
	struct config *cfg = NULL;
	int ret;

	sd_notify(0, "RELOADING=1");
	ret = config_load(&cfg, d->config_path, stderr);
	if (ret < 0) {
		log_error("reload: %s has errors; keeping the running configuration",
		          d->config_path ? d->config_path : "the embedded config");
		sd_notify(0, "READY=1\nSTATUS=reload failed: config has errors (see the log)");
		return 0;
	}
	if (strcmp(cfg->namespace_, d->cfg->namespace_) != 0)
		log_warning("reload: a new namespace takes effect only after a restart");
	if (!d->opt.run_as && strcmp(cfg->run_as ? cfg->run_as : "", d->cfg->run_as ? d->cfg->run_as : "") != 0)
		log_warning("reload: a new run_as takes effect only after a restart");
	config_free(d->cfg);
	d->cfg = cfg;
	log_set_level(d->opt.verbose ? LOG_LEVEL_DEBUG : cfg->log_level);
	create_config_queues(d);
	for (struct queue *q = d->queues; q; q = q->next)
		queue_apply_config(d, q);
	registry_save(d);
	metrics_apply_config(d);
	log_info("reloaded %s: %u queues", d->config_path ? d->config_path : "embedded config", d->n_queues);
	sd_notify(0, "READY=1");
	daemon_status(d);
	return 0;
}

static int on_stop(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct daemon *d = userdata;

	log_info("stopping on signal %u", si->ssi_signo);
	sd_notify(0, "STOPPING=1");
	return sd_event_exit(d->event, 0);
}

/* ---- set-up ---- */

static int resolve_paths(struct daemon *d)
{
	char dir[sizeof(d->socket_path)];
	int n;

	if (d->opt.socket)
		n = snprintf(d->socket_path, sizeof(d->socket_path), "%s", d->opt.socket);
	else if (d->cfg->socket)
		n = snprintf(d->socket_path, sizeof(d->socket_path), "%s", d->cfg->socket);
	else
		n = proto_socket_path(d->socket_path, sizeof(d->socket_path), d->ns,
		                      d->opt.user ? PROTO_BUS_USER : PROTO_BUS_SYSTEM);
	if (n == -EDESTADDRREQ) {
		log_error("--user: XDG_RUNTIME_DIR is not set, so there is no per-user runtime "
		          "directory for the socket (log in through a session that sets it, or use --socket PATH)");
		return -EINVAL;
	}
	if (n < 0 || (size_t)n >= sizeof(d->socket_path)) {
		log_error("cannot determine the socket path of namespace '%s'", d->ns);
		return -EINVAL;
	}
	snprintf(dir, sizeof(dir), "%s", d->socket_path);
	snprintf(d->lock_path, sizeof(d->lock_path), "%s.lock", d->socket_path);
	n = snprintf(d->state_path, sizeof(d->state_path), "%s/%s.queues", dirname(dir), d->ns);
	if ((size_t)n < sizeof(d->state_path))
		n = snprintf(d->holders_path, sizeof(d->holders_path), "%s/%s.holders", dir, d->ns);
	if ((size_t)n >= sizeof(d->holders_path)) {
		log_error("socket path too long: %s", d->socket_path);
		return -ENAMETOOLONG;
	}
	/* the runtime directory may not exist yet (first start); a per-user
	 * one is the user's alone */
	snprintf(dir, sizeof(dir), "%s", d->socket_path);
	n = 0;
	if (mkdir(dirname(dir), d->opt.user ? 0700 : 0755) == 0) {
		d->dir_created = true;
		/* whatever the umask (UMask=0077 in the unit): clients must
		 * reach the socket */
		chmod(dir, d->opt.user ? 0700 : 0755);
	} else if (errno != EEXIST) {
		n = -errno;
	}
	if (n == 0 && access(dir, W_OK) < 0)
		n = -errno;
	if (n < 0) {
		log_error("cannot use %s: %s%s", dir, strerror(-n),
		          n == -EACCES && !d->opt.user && !d->opt.socket && !d->cfg->socket
		                  ? " (the system daemon runs as root; for a per-user daemon use --user)"
		                  : "");
		return n;
	}
	return 0;
}

static int setup_event_loop(struct daemon *d)
{
	sigset_t mask;
	uint64_t now;
	int ret;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	ret = shmguard_install();
	if (ret < 0) {
		log_error("cannot install the SIGBUS handler: %s", strerror(-ret));
		return ret;
	}

	ret = sd_event_default(&d->event);
	if (ret >= 0)
		ret = sd_event_add_signal(d->event, NULL, SIGTERM, on_stop, d);
	if (ret >= 0)
		ret = sd_event_add_signal(d->event, NULL, SIGINT, on_stop, d);
	if (ret >= 0)
		ret = sd_event_add_signal(d->event, NULL, SIGHUP, on_reload, d);
	if (ret >= 0)
		ret = notify_init(d);
	if (ret >= 0)
		ret = sd_event_now(d->event, CLOCK_MONOTONIC, &now);
	if (ret >= 0)
		ret = sd_event_add_time(d->event, &d->timer_src, CLOCK_MONOTONIC, now + SWEEP_INTERVAL_USEC, 0,
		                        on_timer, d);
	if (ret >= 0)
		ret = sd_event_source_set_enabled(d->timer_src, SD_EVENT_ON);
	/* WATCHDOG=1 at half of WATCHDOG_USEC when systemd asks for it */
	if (ret >= 0)
		ret = sd_event_set_watchdog(d->event, true);
	if (ret < 0)
		log_error("cannot set up the event loop: %s", strerror(-ret));
	return ret;
}

int daemon_init(struct daemon *d, const struct options *opt)
{
	int ret;

	memset(d, 0, sizeof(*d));
	d->opt = *opt;
	d->lock_fd = d->listen_fd = d->spare_fd = -1;
	d->next_holder = 1;
	d->uid = geteuid();

	d->config_path = opt->config_path;
	ret = config_load(&d->cfg, d->config_path, stderr);
	if (ret < 0) {
		log_error("%s has errors", d->config_path ? d->config_path : "the embedded config");
		return ret;
	}
	log_set_level(opt->verbose ? LOG_LEVEL_DEBUG : d->cfg->log_level);
	snprintf(d->ns, sizeof(d->ns), "%s", opt->namespace_ ? opt->namespace_ : d->cfg->namespace_);
	if (!proto_namespace_valid(d->ns)) {
		log_error("invalid namespace '%s': use letters, digits, '_' and '-' (at most %d)", d->ns,
		          IPCQ_NAMESPACE_MAX);
		return -EINVAL;
	}
	ret = resolve_paths(d);
	if (ret < 0)
		return ret;
	limits_init(&d->limits);
	log_info("mq limits: msg_max %ld, msgsize_max %ld, queues_max %ld, RLIMIT_MSGQUEUE %llu bytes",
	         d->limits.msg_max, d->limits.msgsize_max, d->limits.queues_max,
	         (unsigned long long)d->limits.msgqueue.rlim_cur);
	ret = setup_event_loop(d);
	if (ret < 0)
		return ret;
	/* the lock first: a second instance must not touch the queues */
	ret = ctl_listen(d);
	if (ret < 0)
		return ret;
	/* root is not needed past the socket: the queues are made as the
	 * run_as user, who owns them */
	ret = privilege_drop(d);
	if (ret < 0)
		return ret;
	/* the processes that hold things first, then what the registry lists,
	 * then the config: a config queue that exists keeps its objects and
	 * messages */
	peers_load(d);
	registry_adopt(d);
	create_config_queues(d);
	registry_save(d);
	privilege_settle(d);
	/* not fatal: the queues are served without it */
	metrics_apply_config(d);
	return 0;
}

int daemon_run(struct daemon *d)
{
	int ret;

	log_info("ready: namespace %s, %u queues, socket %s", d->ns, d->n_queues, d->socket_path);
	sd_notify(0, "READY=1");
	daemon_status(d);
	ret = sd_event_loop(d->event);
	if (ret < 0)
		log_error("event loop failed: %s", strerror(-ret));
	return ret;
}

void daemon_deinit(struct daemon *d)
{
	metrics_deinit(d);
	ctl_close_all(d);
	while (d->peers)
		peer_free(d, d->peers);
	/* queues and their messages stay in the kernel for the next start */
	while (d->queues)
		queue_destroy(d, d->queues, false);
	d->timer_src = sd_event_source_disable_unref(d->timer_src);
	d->event = sd_event_unref(d->event);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	if (d->cfg)
		config_free(d->cfg);
	d->cfg = NULL;
}
