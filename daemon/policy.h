/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy.h - who may do what: the daemon's access rules and per-user
 * limits in one place (the rules themselves are policy.c's top comment).
 *
 * Policy decides; it holds no state and does no I/O.  The control socket
 * (ctl.c) asks it about a subject, the credentials the kernel gave for a
 * peer, and keeps its connections to itself.  A refusal that the client
 * is told about comes back as a negative errno with the reason written
 * into a buffer the caller passes.
 */
#ifndef IPCQ_POLICY_H
#define IPCQ_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"

struct daemon;
struct queue;

/* Whom a question is about: a peer's uid, primary gid and supplementary
 * groups as SO_PEERCRED and SO_PEERGROUPS gave them.  groups belongs to
 * the caller. */
struct policy_subject {
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t ngroups;
};

/* Root and the daemon's own user: bound by no ACL and no user_limits. */
bool policy_uid_privileged(const struct daemon *d, uid_t uid);

/* Whether s matches one of the rules (the ACL's set flag aside). */
bool policy_acl_match(const struct acl *acl, const struct policy_subject *s);

/* Whether s may use q as flags ask (IPCQ_SEND and/or IPCQ_RECV). */
bool policy_may_use(const struct daemon *d, const struct policy_subject *s, const struct queue *q,
                    uint32_t flags);
/* Whether s may learn that q exists (stat, list). */
bool policy_may_see(const struct daemon *d, const struct policy_subject *s, const struct queue *q);
/* Whether s may create (q NULL: a queue that does not exist yet) or
 * delete q. */
bool policy_may_manage(const struct daemon *d, const struct policy_subject *s, const struct queue *q);
/* Whether s may drop every message q holds. */
bool policy_may_purge(const struct daemon *d, const struct policy_subject *s, const struct queue *q);

/* Whether s may create a queue of geometry g (declared: the config names
 * it).  0, or a negative errno (-EINVAL past a kernel mq limit, -EDQUOT
 * past a quota) with the reason in why.  A depth s did not ask for
 * (depth_asked false: the defaults') beyond its quota max_depth, or
 * unbounded, is lowered to it in g; one it asked for is refused. */
int policy_check_create(const struct daemon *d, const struct policy_subject *s, bool declared,
                        ipcq_geometry *g, bool depth_asked, char *why, size_t whycap);

/* Whether a new connection of uid may join the n_conns the daemon holds,
 * held of them uid's own (the caller may leave held 0 for a privileged
 * uid: no per-user bound applies to it).  0, or -EUSERS with the reason
 * in why. */
int policy_admit_conn(const struct daemon *d, uid_t uid, unsigned n_conns, unsigned held, char *why,
                      size_t whycap);

#endif /* IPCQ_POLICY_H */
