/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon.h - the state of one ipcbrokerd instance and its event loop.
 *
 * One sd-event loop (epoll underneath) carries everything: the listening
 * socket and every client connection, SIGTERM/SIGINT/SIGHUP as signalfd
 * sources, a housekeeping timer, the watchdog, and a pidfd per client
 * process, which becomes readable when that process dies.
 */
#ifndef IPCQ_DAEMON_H
#define IPCQ_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "conf.h"
#include "mqlimits.h"
#include "proto.h"

struct queue;
struct conn;
struct peer;

#define PEER_BUCKETS 256

struct options {
	const char *config_path; /* -c, or NULL */
	const char *namespace_;  /* --namespace, or NULL */
	const char *socket;      /* --socket, or NULL */
	bool user;               /* --user: the caller's per-user daemon */
	const char *run_as;      /* --run-as, or NULL */
	bool check_config;
	int verbose;
};

struct daemon {
	struct options opt;
	struct config *cfg;
	const char *config_path; /* what was loaded (NULL: embedded) */
	char ns[IPCQ_NAMESPACE_MAX + 1];
	char socket_path[108];
	char lock_path[128];
	char state_path[128];
	char holders_path[128];
	int lock_fd;
	int listen_fd;
	int spare_fd;      /* given up to refuse a client when out of descriptors */
	uint64_t last_fd_warning_ns;
	bool listen_owned; /* we created the socket file (not socket activation) */
	bool dir_created;  /* we made the socket's directory in this start */
	uid_t uid;         /* the daemon's own (after run_as) */
	/* run_as: while queues are adopted, objects of migrate_uid (the uid
	 * the daemon started as) are taken over (privilege.c) */
	bool migrating;
	uid_t migrate_uid;
	struct mq_limits limits;

	sd_event *event;
	sd_event_source *listen_src;
	sd_event_source *timer_src;
	sd_event_source *metrics_src;
	char *metrics_path; /* the metrics_file being written (metrics.c), or NULL */

	struct queue *queues;
	uint32_t n_queues;
	uint32_t quarantined; /* queues quarantined since start */
	uint32_t next_queue_id;
	struct conn *conns;
	uint32_t n_conns;
	uint32_t n_refused; /* connections refused, waiting to be told why (ctl.c) */
	struct peer *peers; /* client processes (peer.h) */
	unsigned n_peers;
	struct peer *peer_buckets[PEER_BUCKETS];
	uint32_t next_holder;
};

int daemon_init(struct daemon *d, const struct options *opt);
int daemon_run(struct daemon *d);
void daemon_deinit(struct daemon *d);

/* ctl.c: the control socket */
int ctl_listen(struct daemon *d);
void ctl_close_all(struct daemon *d);
/* Drop the refused connections that did not ask anything in time. */
void ctl_sweep_refused(struct daemon *d);

/* daemon.c: reclaim what dead_holder (0: only ids no live process has)
 * held in every queue */
void daemon_sweep(struct daemon *d, uint32_t dead_holder);
/* ctl.c: a client process died: resend what it took off the mqs (rbuf.c) */
void ctl_holder_died(struct daemon *d, uint32_t holder);
/* Whether a client of uid is connected (lane.c: a lane stays its user's
 * while it is). */
bool ctl_uid_connected(const struct daemon *d, uid_t uid);
void daemon_status(struct daemon *d);

#endif
