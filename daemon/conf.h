/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conf.h - the daemon's configuration, parsed with libconfuse.
 *
 * The config is read once at start and again on SIGHUP.  A parse yields a
 * whole new struct config or an error; the running config is replaced
 * only by a config that parsed and checked without error, so a bad edit
 * never takes down a running daemon.
 *
 * (Named conf.h, not config.h, so that "config.h" always means the header
 * autoconf generates.)
 */
#ifndef IPCQ_CONF_H
#define IPCQ_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "ipcq.h"

enum delivery_mode {
	DELIVERY_AT_MOST_ONCE = 0,
	DELIVERY_AT_LEAST_ONCE = 1,
};

/* One access rule: "user:NAME", "group:NAME", "uid:N", "gid:N" or "*",
 * resolved to a numeric id when the config is loaded (policy.c matches
 * peers against them). */
enum acl_kind {
	ACL_ANY,
	ACL_UID,
	ACL_GID,
};

struct acl_rule {
	enum acl_kind kind;
	uint32_t id;
};

struct acl {
	bool set;     /* false: the key was absent (use the default policy) */
	size_t n;
	struct acl_rule *rules;
};

/* What a queue does with what it cannot deliver (ipcq_queue_opts). */
struct queue_policy {
	uint64_t ttl_ms;         /* 0: none */
	uint32_t max_deliveries; /* 0: unbounded */
	char dead_letter[IPCQ_NAME_MAX + 1]; /* "": drop */
};
enum {
	POLICY_TTL = 1u << 0,
	POLICY_MAX_DELIVERIES = 1u << 1,
	POLICY_DEAD_LETTER = 1u << 2,
};

struct queue_config {
	char name[IPCQ_NAME_MAX + 1];
	ipcq_geometry geo;          /* fields left 0 take the defaults... */
	bool max_depth_set;         /* ...but max_depth when set, 0 included */
	enum delivery_mode delivery;
	bool ack_timeout_set;       /* false: the defaults' ack_timeout */
	uint32_t ack_timeout_ms;
	struct queue_policy policy;
	unsigned policy_set; /* POLICY_*: the keys the section sets */
	struct acl allow_send;
	struct acl allow_recv;
};

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* What one user other than root and the daemon's own may ask of the
 * daemon (section user_limits, or a user section of its own). */
struct user_limits {
	uint32_t max_clients;    /* control connections at once */
	uint32_t max_queues;     /* queues created and not deleted */
	uint64_t max_ring_size;  /* ring of one queue it creates */
	uint64_t max_ring_total; /* rings of all the queues it created */
	uint64_t max_mq_total;   /* kernel mq bytes (as RLIMIT_MSGQUEUE counts them) of
	                            all the queues it created */
	uint64_t max_depth;      /* messages waiting in one queue it creates; 0: no bound */
};

/* A user section: the limits of one uid, keys it leaves out taken from
 * user_limits. */
struct user_override {
	uid_t uid;
	char label[80]; /* 'user "alice"', as messages name the section */
	struct user_limits limits;
};

struct config {
	char *source;               /* file it came from, or "(embedded defaults)" */
	char namespace_[IPCQ_NAMESPACE_MAX + 1];
	char *socket;               /* NULL: derived from the namespace */
	bool auto_create;
	bool show_all_queues;       /* list/stat show every queue to every user */
	enum log_level log_level;
	uint32_t max_clients;       /* simultaneous control connections */
	struct user_limits user;
	size_t n_users;
	struct user_override *users;
	char *run_as;               /* user to drop to when started as root, or NULL */
	char *metrics_file;         /* Prometheus textfile to keep written, or NULL */
	uint32_t metrics_interval_ms;
	uint32_t give_back_after_ms; /* a drained queue idle this long gives its ring's pages back */
	ipcq_geometry defaults;     /* every field set */
	enum delivery_mode default_delivery;
	/* how long a receiver of an at-least-once queue may hold a message
	 * before it is delivered again (0: as long as it lives); ignored by
	 * at-most-once queues */
	uint32_t default_ack_timeout_ms;
	struct queue_policy default_policy;
	size_t n_queues;
	struct queue_config *queues;
};

/* The config used when no file exists (also shipped as etc/ipcbrokerd.conf). */
extern const char config_embedded[];
/* The name config_load() gives the embedded config in messages and source. */
#define CONFIG_EMBEDDED_SOURCE "(embedded defaults)"

/* Geometry bounds are proto.h's (PROTO_*), shared with every other way a
 * queue is made; these bound the rest. */
#define CONFIG_MAX_CLIENTS_MAX 1000000
/* ack_timeout: 0 (none), or this long at least (the daemon looks at
 * leases once a second) and at most */
#define CONFIG_ACK_TIMEOUT_MIN_MS 1000u
#define CONFIG_ACK_TIMEOUT_MAX_MS (24u * 3600u * 1000u)
#define CONFIG_ACK_TIMEOUT_DEFAULT_MS (5u * 60u * 1000u)
/* ttl: 0 (none), or 1 ms to a year; max_deliveries: 0 (unbounded) or
 * fewer than a chunk's delivery count can tell */
#define CONFIG_TTL_MAX_MS IPCQ_TTL_MAX_MS
#define CONFIG_MAX_DELIVERIES_MAX 65534u
/* metrics_interval: from a second to an hour */
#define CONFIG_METRICS_INTERVAL_MIN_MS 1000u
#define CONFIG_METRICS_INTERVAL_MAX_MS (3600u * 1000u)
#define CONFIG_METRICS_INTERVAL_DEFAULT_MS (15u * 1000u)
/* give_back_after: from a second to a day */
#define CONFIG_GIVE_BACK_AFTER_MIN_MS 1000u
#define CONFIG_GIVE_BACK_AFTER_MAX_MS (24u * 3600u * 1000u)
#define CONFIG_GIVE_BACK_AFTER_DEFAULT_MS (60u * 1000u)

/* Parse path (or the embedded text when path is NULL).  On error, returns a
 * negative errno and writes one message per problem, "FILE:LINE: what",
 * to err (may be NULL).  Unknown keys, bad sizes, bad names, unknown users
 * and groups, geometry outside sane bounds are all errors: -EINVAL; a file
 * that cannot be read: the errno of the failure (-ENOENT, -EACCES...).
 * Not thread-safe: libconfuse's scanner is global state. */
int config_load(struct config **out, const char *path, FILE *err);
void config_free(struct config *cfg);
static inline void config_freep(struct config **p)
{
	if (*p)
		config_free(*p);
}
#define _cleanup_config_ __attribute__((cleanup(config_freep)))

/* The config of queue name, or NULL if the config does not name it. */
const struct queue_config *config_find_queue(const struct config *cfg, const char *name);

/* The limits uid is bound by: its user section's, else user_limits;
 * *from names which ("user_limits" or "user \"alice\""), when from is not
 * NULL.  (Whether uid is bound at all is policy.c's question.) */
const struct user_limits *config_user_limits(const struct config *cfg, uid_t uid, const char **from);

/* Geometry of q with the defaults filled in (q may be NULL). */
ipcq_geometry config_queue_geometry(const struct config *cfg, const struct queue_config *q);
/* ack_timeout of q in milliseconds, the defaults' when it sets none (q
 * may be NULL); 0: leases never time out. */
uint32_t config_queue_ack_timeout(const struct config *cfg, const struct queue_config *q);
/* The policy of queue name: its config section's keys (q, may be NULL),
 * else what it was created with (created, may be NULL), else the
 * defaults'.  A dead_letter naming the queue itself is none. */
struct queue_policy config_queue_policy(const struct config *cfg, const struct queue_config *q,
                                        const ipcq_queue_opts *created, const char *name);

#endif /* IPCQ_CONF_H */
