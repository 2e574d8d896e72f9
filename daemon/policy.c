/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy.c - who may do what.
 *
 * Privileged: root and the daemon's own user.  They may do everything
 * below, on every queue, bound by no ACL, auto_create or user_limits, and
 * hold up to PRIVILEGED_RESERVE connections past max_clients, so nobody
 * can lock them out.
 *
 * Everyone else:
 * - use (open to send, receive): a queue the config declares lets in whom
 *   its allow_send / allow_recv match ("user:", "group:", "uid:", "gid:",
 *   "*"; an absent key lets in everyone, an empty list no one); an
 *   auto-created queue is open to everyone;
 * - see (stat, list): a queue it may use or created, or every queue when
 *   show_all_queues is on;
 * - create: only while auto_create is on; a queue the config declares is
 *   made as declared, else within bounds: no mq geometry past the
 *   kernel's limits (which CAP_SYS_RESOURCE would let the daemon exceed),
 *   and within its quotas (user_limits, or its own user section): queues,
 *   ring bytes (one ring, and all of them), the kernel mq bytes its queues
 *   take of the daemon's RLIMIT_MSGQUEUE, and the depth of each queue
 *   (a queue it asks no bound for gets the quota's: the daemon is not on
 *   the data path, so messages waiting are bounded through max_depth,
 *   which the library's senders keep to, and hard by the ring bytes);
 * - delete: only auto-created queues, only while auto_create is on;
 *   purge: those, and every queue it may receive from;
 * - connect: at most its quota max_clients of connections at once, and
 *   none past max_clients, so no user can lock the others out.
 * A refusal by a quota names it, its value, the uid and the section it
 * comes from: "quota max_queues (64) for uid 1000 reached (user_limits)".
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "daemon.h"
#include "policy.h"
#include "queue.h"

/* connections past max_clients that privileged users may hold */
#define PRIVILEGED_RESERVE 64

bool policy_uid_privileged(const struct daemon *d, uid_t uid)
{
	return uid == 0 || uid == d->uid;
}

static bool policy_privileged(const struct daemon *d, const struct policy_subject *s)
{
	return policy_uid_privileged(d, s->uid);
}

static bool policy_acl_rule_match(const struct acl_rule *rule, const struct policy_subject *s)
{
	switch (rule->kind) {
	case ACL_ANY:
		return true;
	case ACL_UID:
		return rule->id == s->uid;
	case ACL_GID:
		if (rule->id == s->gid)
			return true;
		for (size_t i = 0; i < s->ngroups; i++)
			if (s->groups[i] == rule->id)
				return true;
		return false;
	}
	return false;
}

bool policy_acl_match(const struct acl *acl, const struct policy_subject *s)
{
	for (size_t i = 0; i < acl->n; i++)
		if (policy_acl_rule_match(&acl->rules[i], s))
			return true;
	return false;
}

static bool policy_acl_allows(const struct daemon *d, const struct policy_subject *s, const struct acl *acl)
{
	if (policy_privileged(d, s) || !acl->set)
		return true;
	return policy_acl_match(acl, s);
}

bool policy_may_use(const struct daemon *d, const struct policy_subject *s, const struct queue *q,
                    uint32_t flags)
{
	const struct queue_config *qc = config_find_queue(d->cfg, q->rec.name);

	if (!qc)
		return true; /* auto-created queues are open to everyone */
	if ((flags & IPCQ_SEND) && !policy_acl_allows(d, s, &qc->allow_send))
		return false;
	if ((flags & IPCQ_RECV) && !policy_acl_allows(d, s, &qc->allow_recv))
		return false;
	return true;
}

bool policy_may_see(const struct daemon *d, const struct policy_subject *s, const struct queue *q)
{
	return d->cfg->show_all_queues || policy_privileged(d, s) || q->rec.creator == s->uid ||
	       policy_may_use(d, s, q, IPCQ_SEND) || policy_may_use(d, s, q, IPCQ_RECV);
}

bool policy_may_manage(const struct daemon *d, const struct policy_subject *s, const struct queue *q)
{
	if (policy_privileged(d, s))
		return true;
	return d->cfg->auto_create && (!q || !q->from_config);
}

bool policy_may_purge(const struct daemon *d, const struct policy_subject *s, const struct queue *q)
{
	return policy_may_manage(d, s, q) || policy_may_use(d, s, q, IPCQ_RECV);
}

/* A refusal for a quota: "quota KEY (LIMIT) for uid U reached (SECTION): ...". */
static int quota_exceeded(const struct policy_subject *s, const char *key, uint64_t limit, const char *from,
                          char *why, size_t whycap, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static int quota_exceeded(const struct policy_subject *s, const char *key, uint64_t limit, const char *from,
                          char *why, size_t whycap, const char *fmt, ...)
{
	int n = snprintf(why, whycap, "quota %s (%" PRIu64 ") for uid %u reached (%s): ", key, limit,
	                 (unsigned)s->uid, from);
	va_list ap;

	if (n > 0 && (size_t)n < whycap) {
		va_start(ap, fmt);
		vsnprintf(why + n, whycap - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EDQUOT;
}

int policy_check_create(const struct daemon *d, const struct policy_subject *s, bool declared,
                        ipcq_geometry *g, bool depth_asked, char *why, size_t whycap)
{
	const char *from;
	const struct user_limits *ul = config_user_limits(d->cfg, s->uid, &from);
	uint64_t total = g->ring_size, mq_total = limits_queue_bytes(g);
	unsigned queues = 1;

	if (declared || policy_privileged(d, s))
		return 0;
	if (d->limits.msg_max > 0 && g->max_msgs > (unsigned long)d->limits.msg_max) {
		snprintf(why, whycap, "max_msgs %u exceeds the kernel limit fs.mqueue.msg_max=%ld", g->max_msgs,
		         d->limits.msg_max);
		return -EINVAL;
	}
	if (d->limits.msgsize_max > 0 && g->msg_size > (unsigned long)d->limits.msgsize_max) {
		snprintf(why, whycap, "msg_size %u exceeds the kernel limit fs.mqueue.msgsize_max=%ld", g->msg_size,
		         d->limits.msgsize_max);
		return -EINVAL;
	}
	if (g->ring_size > ul->max_ring_size)
		return quota_exceeded(s, "max_ring_size", ul->max_ring_size, from, why, whycap,
		                      "a ring of %" PRIu64 " bytes is larger", g->ring_size);
	/* the depth it did not ask for is the default's: bounded, not refused */
	if (ul->max_depth && depth_asked && g->max_depth > ul->max_depth)
		return quota_exceeded(s, "max_depth", ul->max_depth, from, why, whycap,
		                      "a queue of max_depth %" PRIu64 " is deeper", g->max_depth);
	if (ul->max_depth && (g->max_depth == 0 || g->max_depth > ul->max_depth))
		g->max_depth = ul->max_depth;
	for (const struct queue *q = d->queues; q; q = q->next) {
		if (q->rec.creator != s->uid || q->from_config)
			continue;
		queues++;
		total += q->rec.geo.ring_size;
		mq_total += limits_queue_bytes(&q->rec.geo);
	}
	if (queues > ul->max_queues)
		return quota_exceeded(s, "max_queues", ul->max_queues, from, why, whycap,
		                      "it created %u queues; delete one first", queues - 1);
	if (total > ul->max_ring_total)
		return quota_exceeded(s, "max_ring_total", ul->max_ring_total, from, why, whycap,
		                      "its queues' rings would take %" PRIu64 " bytes", total);
	if (mq_total > ul->max_mq_total)
		return quota_exceeded(s, "max_mq_total", ul->max_mq_total, from, why, whycap,
		                      "its queues' kernel message queues would take %" PRIu64
		                      " bytes (max_msgs x msg_size and overhead, as RLIMIT_MSGQUEUE counts)",
		                      mq_total);
	return 0;
}

int policy_admit_conn(const struct daemon *d, uid_t uid, unsigned n_conns, unsigned held, char *why,
                      size_t whycap)
{
	bool privileged = policy_uid_privileged(d, uid);

	if (n_conns >= d->cfg->max_clients + (privileged ? PRIVILEGED_RESERVE : 0)) {
		snprintf(why, whycap, "max_clients (%u%s) reached", d->cfg->max_clients,
		         privileged ? " and the reserve" : "");
		return -EUSERS;
	}
	if (privileged)
		return 0;
	{
		const char *from;
		const struct user_limits *ul = config_user_limits(d->cfg, uid, &from);

		if (held < ul->max_clients)
			return 0;
		snprintf(why, whycap, "quota max_clients (%u) for uid %u reached (%s): it holds %u connections",
		         ul->max_clients, (unsigned)uid, from, held);
	}
	return -EUSERS;
}
