/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctl.c - the control socket: accepting clients, reading their requests,
 * asking policy.c what their credentials allow, and answering with kernel
 * objects.
 *
 * Clients are untrusted.  Each request is one SOCK_SEQPACKET datagram
 * that must be exactly one struct proto_req; anything else gets -EPROTO.
 * Descriptors a client sends are discarded by the kernel (we pass no
 * control buffer).  A client that does not read its replies (the send
 * would block) or hangs up is dropped.
 *
 * Resources per user.  Connections and what a user may create are bounded
 * (policy.c says how); ctl.c counts the connections policy decides from,
 * and every log line a client can cause is rate-limited.  A connection
 * past a quota is told why: it is kept, uncounted, until its first
 * request, which is answered with the refusal (-EUSERS and the quota's
 * name) before it is dropped.  At most CTL_REFUSED_MAX of them wait at
 * once, each for CTL_REFUSED_LINGER_SEC at most; past that a refused
 * connection is closed at once, without a word.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "fdpass.h"
#include "log.h"
#include "notify.h"
#include "peer.h"
#include "policy.h"
#include "queue.h"
#include "rbuf.h"
#include "util.h"

#define CONN_GROUPS_MAX 64
#define CTL_REFUSED_MAX 32
#define CTL_REFUSED_LINGER_SEC 2

struct conn {
	struct daemon *d;
	struct conn *next, *prev;
	int fd;
	sd_event_source *src;
	struct ucred cred;
	gid_t groups[CONN_GROUPS_MAX];
	struct policy_subject who; /* cred and groups, as policy.c asks for them */
	uint32_t holder; /* its process's id (peer.h), once it opened a queue */
	struct rbuf *rbufs; /* its receiving handles' buffers (rbuf.c) */
	unsigned nrbufs;
	/* set: refused (why, for its first request), counted in n_refused
	 * instead of n_conns, dropped after one reply */
	char *refusal;
	uint64_t refused_ns;
};

/* A reply under construction, with the descriptors it will carry. */
struct reply {
	struct proto_reply rep;
	ipcq_stats stats[PROTO_LIST_MAX];
	int fds[PROTO_OPEN_FDS];
	unsigned nfds;
	/* the queue whose mq descriptor the reply passes: closing ours ends
	 * the daemon's mq_notify registration (notify.h) */
	struct queue *opened;
};

static void conn_free(struct conn *c)
{
	struct daemon *d = c->d;

	if (c->prev)
		c->prev->next = c->next;
	else
		d->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->refusal)
		d->n_refused--;
	else
		d->n_conns--;
	free(c->refusal);
	notify_conn_gone(d, c);
	/* its process may have died: what it took off the mq goes back */
	rbuf_release_all(d, &c->rbufs, &c->nrbufs);
	sd_event_source_disable_unref(c->src);
	close(c->fd);
	free(c);
}

static int reply_error(struct reply *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int reply_error(struct reply *r, int status, const char *fmt, ...)
{
	va_list ap;

	r->rep.status = status;
	va_start(ap, fmt);
	vsnprintf(r->rep.errmsg, sizeof(r->rep.errmsg), fmt, ap);
	va_end(ap);
	return status;
}

/* ---- operations ---- */

static ipcq_geometry geometry_for(struct daemon *d, const char *name, const ipcq_geometry *asked)
{
	const struct queue_config *qc = config_find_queue(d->cfg, name);
	ipcq_geometry g = config_queue_geometry(d->cfg, qc);

	if (asked && !qc) {
		if (asked->max_msgs)
			g.max_msgs = asked->max_msgs;
		if (asked->msg_size)
			g.msg_size = asked->msg_size;
		if (asked->ring_size)
			g.ring_size = asked->ring_size;
		if (asked->max_payload)
			g.max_payload = asked->max_payload;
		if (asked->max_depth)
			g.max_depth = asked->max_depth;
		if (asked->prefetch)
			g.prefetch = asked->prefetch;
		if (asked->senders)
			g.senders = asked->senders;
		/* a smaller ring than the default max_payload: shrink the latter */
		if (!asked->max_payload && g.ring_size > RING_ALIGN && g.max_payload > g.ring_size - RING_ALIGN)
			g.max_payload = g.ring_size / 2;
	}
	return g;
}

/* A policy asked for at creation: within bounds, and a dead-letter queue
 * that exists, is not the queue itself, and the creator may send to (else
 * dead-lettering would let it write where it may not). */
static int check_opts(struct conn *c, const char *name, const ipcq_queue_opts *o, struct reply *r)
{
	struct queue *dlq;

	if (o->ttl_ms > CONFIG_TTL_MAX_MS)
		return reply_error(r, -EINVAL, "ttl of %llu ms: more than a year", (unsigned long long)o->ttl_ms);
	if (o->max_deliveries > CONFIG_MAX_DELIVERIES_MAX)
		return reply_error(r, -EINVAL, "max_deliveries %u: at most %u", o->max_deliveries,
		                   CONFIG_MAX_DELIVERIES_MAX);
	if (!o->dead_letter[0])
		return 0;
	if (strnlen(o->dead_letter, sizeof(o->dead_letter)) == sizeof(o->dead_letter) ||
	    !proto_queue_name_valid(o->dead_letter))
		return reply_error(r, -EINVAL, "dead-letter queue: not a valid queue name");
	if (strcmp(o->dead_letter, name) == 0)
		return reply_error(r, -EINVAL, "queue '%s' cannot be its own dead-letter queue", name);
	dlq = queue_find(c->d, o->dead_letter);
	if (!dlq)
		return reply_error(r, -ENOENT, "no queue named '%s' (the dead-letter queue must exist)", o->dead_letter);
	if (!policy_may_use(c->d, &c->who, dlq, IPCQ_SEND))
		return reply_error(r, -EACCES, "uid %u may not send to queue '%s', so it cannot be a dead-letter queue of its",
		                   (unsigned)c->cred.uid, o->dead_letter);
	return 0;
}

static int create_queue(struct conn *c, const char *name, const ipcq_geometry *asked, const ipcq_queue_opts *opts,
                        struct reply *r, struct queue **out)
{
	static struct log_ratelimit refusals;
	struct daemon *d = c->d;
	const struct queue_config *qc = config_find_queue(d->cfg, name);
	struct queue_record rec = {
		.geo = geometry_for(d, name, asked),
		.delivery = qc ? qc->delivery : d->cfg->default_delivery,
		.creator = qc ? d->uid : c->cred.uid,
		.opts = *opts,
	};
	int ret = 0;

	const char *why;

	snprintf(rec.name, sizeof(rec.name), "%s", name);
	if (proto_geometry_check(&rec.geo, &why) < 0)
		ret = reply_error(r, -EINVAL, "invalid geometry: %s", why);
	else if ((ret = check_opts(c, name, opts, r)) == 0)
		ret = policy_check_create(d, &c->who, qc != NULL, &rec.geo, asked && asked->max_depth, r->rep.errmsg,
		                          sizeof(r->rep.errmsg));
	if (ret == 0)
		ret = queue_new(d, &rec, r->rep.errmsg, sizeof(r->rep.errmsg), out);
	if (ret < 0) {
		r->rep.status = ret;
		log_about_limited(&refusals, LOG_LEVEL_WARNING, LOG_PEER(name, c->cred.uid, c->cred.pid),
		                  "queue %s: not created for uid %u: %s", name, (unsigned)c->cred.uid, r->rep.errmsg);
		return ret;
	}
	if (qc)
		(*out)->from_config = true;
	registry_save(d);
	return 0;
}

static int op_open(struct conn *c, const struct proto_req *req, struct reply *r)
{
	struct daemon *d = c->d;
	struct queue *q = queue_find(d, req->name);
	struct peer *p;
	int ret;

	if (!(req->flags & (IPCQ_SEND | IPCQ_RECV)))
		return reply_error(r, -EINVAL, "open needs send and/or receive");
	/* what it will hold in shared memory is marked with its holder id */
	if (peer_get(d, c->cred.pid, &p) < 0)
		return reply_error(r, -ESRCH,
		                   "the process that connected (pid %d as the daemon sees it) cannot be watched: "
		                   "it exited, or lives in a PID namespace the daemon cannot see; connect again",
		                   (int)c->cred.pid);
	c->holder = p->holder;
	if (!q) {
		if (!(req->flags & IPCQ_CREATE) || !policy_may_manage(d, &c->who, NULL))
			return reply_error(r, -ENOENT, "no queue named '%s'", req->name);
		if (create_queue(c, req->name, NULL, &req->opts, r, &q) < 0)
			return r->rep.status;
	}
	if (!policy_may_use(d, &c->who, q, req->flags))
		return reply_error(r, -EACCES, "uid %u may not %s queue '%s'", (unsigned)c->cred.uid,
		                   (req->flags & IPCQ_SEND) ? "send to" : "receive from", q->rec.name);
	r->opened = q;
	ret = queue_open_fds(d, q, (int)req->flags, r->fds);
	if (ret == -EIO)
		return reply_error(r, ret, "queue '%s' is quarantined: %s (purge or delete it)", q->rec.name,
		                   q->quarantine);
	if (ret < 0)
		return reply_error(r, ret, "cannot open queue '%s': %s", q->rec.name, strerror(-ret));
	queue_stats(c->d, q, &r->stats[0]);
	r->rep.count = 1;
	r->nfds = PROTO_OPEN_FDS;
	return 0;
}

static int op_create(struct conn *c, const struct proto_req *req, struct reply *r)
{
	struct queue *q = queue_find(c->d, req->name);

	if (q)
		return reply_error(r, -EEXIST, "queue '%s' exists already", req->name);
	if (!policy_may_manage(c->d, &c->who, NULL))
		return reply_error(r, -EACCES, "uid %u may not create queues (auto_create is off)",
		                   (unsigned)c->cred.uid);
	if (create_queue(c, req->name, &req->geo, &req->opts, r, &q) == 0) {
		queue_stats(c->d, q, &r->stats[0]);
		r->rep.count = 1;
	}
	return 0;
}

static int op_delete(struct conn *c, const struct proto_req *req, struct reply *r)
{
	struct queue *q = queue_find(c->d, req->name);

	if (!q)
		return reply_error(r, -ENOENT, "no queue named '%s'", req->name);
	if (!policy_may_manage(c->d, &c->who, q))
		return reply_error(r, -EACCES, "uid %u may not delete queue '%s'", (unsigned)c->cred.uid, q->rec.name);
	log_about_msg(LOG_LEVEL_INFO, LOG_PEER(q->rec.name, c->cred.uid, c->cred.pid), "queue %s: deleted by uid %u",
	              q->rec.name, (unsigned)c->cred.uid);
	queue_destroy(c->d, q, true);
	registry_save(c->d);
	return 0;
}

static int op_purge(struct conn *c, const struct proto_req *req, struct reply *r)
{
	struct queue *q = queue_find(c->d, req->name);
	int n;

	if (!q)
		return reply_error(r, -ENOENT, "no queue named '%s'", req->name);
	if (!policy_may_purge(c->d, &c->who, q))
		return reply_error(r, -EACCES, "uid %u may not purge queue '%s'", (unsigned)c->cred.uid, q->rec.name);
	n = queue_purge(c->d, q);
	if (n < 0)
		return reply_error(r, n, "purge failed: %s", strerror(-n));
	log_about_msg(LOG_LEVEL_INFO, LOG_PEER(q->rec.name, c->cred.uid, c->cred.pid),
	              "queue %s: purged %d messages (uid %u)", q->rec.name, n, (unsigned)c->cred.uid);
	queue_stats(c->d, q, &r->stats[0]);
	r->rep.count = 1;
	return 0;
}

static int op_stat(struct conn *c, const struct proto_req *req, struct reply *r)
{
	struct queue *q = queue_find(c->d, req->name);

	if (!q || !policy_may_see(c->d, &c->who, q))
		return reply_error(r, -ENOENT, "no queue named '%s'", req->name);
	queue_stats(c->d, q, &r->stats[0]);
	r->rep.count = 1;
	return 0;
}

static int op_list(struct conn *c, const struct proto_req *req, struct reply *r)
{
	uint32_t index = 0;

	if (req->arg < 0)
		return reply_error(r, -EINVAL, "negative list index");
	/* index and total count only the queues the caller may see */
	for (struct queue *q = c->d->queues; q; q = q->next) {
		if (!policy_may_see(c->d, &c->who, q))
			continue;
		if (index++ >= (uint32_t)req->arg && r->rep.count < PROTO_LIST_MAX)
			queue_stats(c->d, q, &r->stats[r->rep.count++]);
	}
	r->rep.total = index;
	return 0;
}

/* Register for a signal when the queue becomes non-empty (arg: the
 * signal, 0 to unregister): for processes that may receive from it. */
static int op_notify(struct conn *c, const struct proto_req *req, struct reply *r)
{
	struct daemon *d = c->d;
	struct queue *q = queue_find(d, req->name);
	struct peer *p;
	int ret;

	if (!q)
		return reply_error(r, -ENOENT, "no queue named '%s'", req->name);
	if (req->arg == 0) {
		notify_unregister(d, q, c);
		return 0;
	}
	if (!policy_may_use(d, &c->who, q, IPCQ_RECV))
		return reply_error(r, -EACCES,
		                   "uid %u may not receive from queue '%s', so it may not be signalled when "
		                   "messages wait there",
		                   (unsigned)c->cred.uid, q->rec.name);
	if (queue_quarantined(q))
		return reply_error(r, -EIO, "queue '%s' is quarantined: %s (purge or delete it)", q->rec.name,
		                   q->quarantine);
	if (peer_get(d, c->cred.pid, &p) < 0)
		return reply_error(r, -ESRCH,
		                   "the process that connected (pid %d as the daemon sees it) cannot be watched: "
		                   "it exited, or lives in a PID namespace the daemon cannot see",
		                   (int)c->cred.pid);
	ret = notify_register(d, q, c, p, c->cred.uid, policy_uid_privileged(d, c->cred.uid), req->arg,
	                      r->rep.errmsg, sizeof(r->rep.errmsg));
	if (ret < 0)
		r->rep.status = ret;
	return ret;
}

static unsigned rbufs_of_uid(const struct daemon *d, uid_t uid)
{
	unsigned n = 0;

	for (const struct conn *c = d->conns; c; c = c->next)
		if (c->cred.uid == uid)
			n += c->nrbufs;
	return n;
}

/* A receiving handle's buffers (rbuf.c), passed as fd: the connection
 * must have opened the queue for receiving before. */
static int op_recv_bufs(struct conn *c, const struct proto_req *req, int fd, struct reply *r)
{
	struct queue *q = queue_find(c->d, req->name);
	char err[PROTO_ERRMSG_MAX];
	int ret;

	if (!q)
		return reply_error(r, -ENOENT, "no queue named '%s'", req->name);
	if (!c->holder || !policy_may_use(c->d, &c->who, q, IPCQ_RECV))
		return reply_error(r, -EACCES, "uid %u may not receive from queue '%s'", (unsigned)c->cred.uid,
		                   q->rec.name);
	if (fd < 0)
		return reply_error(r, -EINVAL, "receive buffers come with a descriptor");
	if (!policy_uid_privileged(c->d, c->cred.uid) && rbufs_of_uid(c->d, c->cred.uid) >= RBUF_PER_USER_MAX)
		return reply_error(r, -EUSERS, "uid %u has %u receiving handles open already", (unsigned)c->cred.uid,
		                   RBUF_PER_USER_MAX);
	ret = rbuf_add(&c->rbufs, &c->nrbufs, q, fd, err, sizeof(err));
	if (ret < 0)
		return reply_error(r, ret, "%s", err);
	return 0;
}

bool ctl_uid_connected(const struct daemon *d, uid_t uid)
{
	for (const struct conn *c = d->conns; c; c = c->next)
		if (!c->refusal && c->cred.uid == uid)
			return true;
	return false;
}

void ctl_holder_died(struct daemon *d, uint32_t holder)
{
	for (struct conn *c = d->conns; c; c = c->next)
		if (c->holder == holder)
			rbuf_release_all(d, &c->rbufs, &c->nrbufs);
}

/* A message the daemon keeps aside for the caller (aside.c): it
 * acknowledges, gives back or rejects it (arg: enum aside_how). */
static int op_moved(struct conn *c, const struct proto_req *req, struct reply *r)
{
	struct queue *q = queue_find(c->d, req->name);
	struct peer *p;

	if (req->arg != ASIDE_ACK && req->arg != ASIDE_REQUEUE && req->arg != ASIDE_REJECT)
		return reply_error(r, -EINVAL, "unknown disposal %d", req->arg);
	/* a connection made again after a restart has opened nothing yet:
	 * its process keeps the holder id the last daemon gave it (peer.h) */
	if (!c->holder && peer_get(c->d, c->cred.pid, &p) == 0)
		c->holder = p->holder;
	if (!q || !c->holder || queue_quarantined(q) ||
	    aside_settle(c->d, q, c->holder, req->arg64[0], req->arg64[1], (enum aside_how)req->arg) < 0)
		return reply_error(r, -ENOENT, "queue '%s' keeps no such message aside for this process", req->name);
	return 0;
}

/* A lane of the queue (lane.c): arg 0, the caller's own to send through
 * (its data object writable); else lane arg, to receive from (read-only). */
static int op_lane(struct conn *c, const struct proto_req *req, struct reply *r)
{
	struct daemon *d = c->d;
	struct queue *q = queue_find(d, req->name);
	bool sender = req->arg == 0;
	struct peer *p;
	int id = req->arg, ret;

	if (!q || !policy_may_see(d, &c->who, q))
		return reply_error(r, -ENOENT, "no queue named '%s'", req->name);
	if (!policy_may_use(d, &c->who, q, sender ? IPCQ_SEND : IPCQ_RECV))
		return reply_error(r, -EACCES, "uid %u may not %s queue '%s'", (unsigned)c->cred.uid,
		                   sender ? "send to" : "receive from", q->rec.name);
	if (queue_quarantined(q) || !q->meta)
		return reply_error(r, -EIO, "queue '%s' is quarantined: %s (purge or delete it)", q->rec.name,
		                   q->quarantine);
	if (!queue_isolated(q))
		return reply_error(r, -ENOENT, "queue '%s' has no lanes: its senders share its ring", q->rec.name);
	if (id < 0 || id > (int)PROTO_LANES_MAX)
		return reply_error(r, -EINVAL, "no lane %d", id);
	if (sender) {
		if (peer_get(d, c->cred.pid, &p) < 0)
			return reply_error(r, -ESRCH, "the process that connected (pid %d as the daemon sees it) cannot be "
			                              "watched: it exited, or lives in a PID namespace the daemon cannot see",
			                   (int)c->cred.pid);
		c->holder = p->holder;
		id = lane_assign(d, q, lane_owner_of_uid(c->cred.uid), p->holder, r->rep.errmsg, sizeof(r->rep.errmsg));
		if (id < 0) {
			r->rep.status = id;
			return id;
		}
	}
	queue_guard_home(q);
	ret = lane_fds(d, q, (unsigned)id, sender, r->fds);
	if (ret < 0)
		return reply_error(r, ret, "queue '%s' has no lane %d", q->rec.name, id);
	r->rep.lane = (uint32_t)id;
	r->nfds = PROTO_LANE_FDS;
	return 0;
}

static int dispatch(struct conn *c, const struct proto_req *req, int fd, struct reply *r)
{
	if (req->op == PROTO_OP_RECV_BUFS)
		return op_recv_bufs(c, req, fd, r);
	switch (req->op) {
	case PROTO_OP_OPEN:
		return op_open(c, req, r);
	case PROTO_OP_CREATE:
		return op_create(c, req, r);
	case PROTO_OP_DELETE:
		return op_delete(c, req, r);
	case PROTO_OP_PURGE:
		return op_purge(c, req, r);
	case PROTO_OP_STAT:
		return op_stat(c, req, r);
	case PROTO_OP_LIST:
		return op_list(c, req, r);
	case PROTO_OP_NOTIFY:
		return op_notify(c, req, r);
	case PROTO_OP_MOVED:
		return op_moved(c, req, r);
	case PROTO_OP_LANE:
		return op_lane(c, req, r);
	}
	return reply_error(r, -EPROTO, "unknown operation %u", req->op);
}

static int send_reply(struct conn *c, struct reply *r)
{
	ssize_t n;

	r->rep.nfds = r->nfds;
	n = fdpass_send(c->fd, &r->rep, sizeof(r->rep) + (size_t)r->rep.count * sizeof(ipcq_stats), r->fds, r->nfds,
	                MSG_DONTWAIT);
	for (unsigned i = 0; i < r->nfds; i++)
		close(r->fds[i]);
	return n < 0 ? (int)n : 0;
}

static int on_conn_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct conn *c = userdata;
	struct proto_req req;
	_cleanup_free_ struct reply *r = NULL;
	unsigned char buf[sizeof(struct proto_req)];
	_cleanup_close_ int passed = -1;
	unsigned npassed = 0;
	ssize_t n;
	int ret;

	if (!(revents & EPOLLIN)) {
		conn_free(c); /* hung up */
		return 0;
	}
	/* a descriptor comes with one request only (receive buffers); an
	 * oversized datagram is -EPROTO, with its start in buf */
	n = fdpass_recv(fd, buf, sizeof(buf), &passed, 1, &npassed, MSG_DONTWAIT);
	if (n == -EAGAIN || n == -EINTR)
		return 0;
	if (n == -EPROTO)
		n = (ssize_t)sizeof(buf) + 1;
	if (n <= 0) {
		conn_free(c);
		return 0;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return 0; /* the request is lost; the client times out or retries */
	ret = proto_req_read(buf, (size_t)n, &req);
	if (c->refusal) {
		proto_reply_init(&r->rep, &req, -EUSERS);
		snprintf(r->rep.errmsg, sizeof(r->rep.errmsg), "%s", c->refusal);
	} else if (ret < 0) {
		proto_reply_init(&r->rep, &req, ret);
		snprintf(r->rep.errmsg, sizeof(r->rep.errmsg), "%s",
		         ret == -EINVAL ? "invalid queue name or flags" : "malformed request");
		log_debug("pid %d: bad request (%zd bytes): %s", (int)c->cred.pid, n, strerror(-ret));
	} else {
		proto_reply_init(&r->rep, &req, 0);
		dispatch(c, &req, passed, r);
	}
	r->rep.holder = c->holder;
	ret = send_reply(c, r);
	if (r->opened)
		notify_queue_mq_closed(c->d, r->opened);
	if (ret < 0 || c->refusal)
		conn_free(c); /* not reading its replies, or told why it is refused */
	return 0;
}

static unsigned conns_of_uid(const struct daemon *d, uid_t uid)
{
	unsigned n = 0;

	for (const struct conn *c = d->conns; c; c = c->next)
		n += c->cred.uid == uid && !c->refusal;
	return n;
}

/* Whether a new connection of uid fits max_clients and its quota; if
 * not, why (PROTO_ERRMSG_MAX). */
static bool conn_admissible(struct daemon *d, const struct ucred *cred, char *why, size_t whycap)
{
	static struct log_ratelimit refusals;
	/* no per-user bound for privileged users: spare them the count */
	unsigned held = policy_uid_privileged(d, cred->uid) ? 0 : conns_of_uid(d, cred->uid);

	if (policy_admit_conn(d, cred->uid, d->n_conns, held, why, whycap) == 0)
		return true;
	log_about_limited(&refusals, LOG_LEVEL_WARNING, LOG_PEER(NULL, cred->uid, cred->pid),
	                  "refusing a client of uid %u: %s", (unsigned)cred->uid, why);
	return false;
}

void ctl_sweep_refused(struct daemon *d)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);
	struct conn *next;

	for (struct conn *c = d->conns; c; c = next) {
		next = c->next;
		if (c->refusal && now - c->refused_ns >= CTL_REFUSED_LINGER_SEC * 1000000000ull)
			conn_free(c);
	}
}

static int conn_new(struct daemon *d, int fd)
{
	_cleanup_free_ struct conn *c = calloc(1, sizeof(*c));
	socklen_t len = sizeof(c->cred);
	char why[PROTO_ERRMSG_MAX];
	int ret;

	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->d = d;
	c->fd = fd;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
		close(fd);
		return -EUSERS;
	}
	if (!conn_admissible(d, &c->cred, why, sizeof(why))) {
		/* told why when there is room to wait for its request */
		if (d->n_refused >= CTL_REFUSED_MAX || !(c->refusal = strdup(why))) {
			close(fd);
			return -EUSERS;
		}
		c->refused_ns = now_ns(CLOCK_MONOTONIC);
	}
	len = sizeof(c->groups);
	c->who = (struct policy_subject){ .uid = c->cred.uid, .gid = c->cred.gid, .groups = c->groups };
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, c->groups, &len) == 0)
		c->who.ngroups = len / sizeof(gid_t);
	ret = sd_event_add_io(d->event, &c->src, fd, EPOLLIN, on_conn_io, c);
	if (ret < 0) {
		free(c->refusal);
		close(fd);
		return ret;
	}
	if (c->refusal)
		d->n_refused++;
	else
		d->n_conns++;
	c->next = d->conns;
	if (d->conns)
		d->conns->prev = c;
	d->conns = TAKE_PTR(c);
	return 0;
}

/* Out of descriptors: the pending connection would keep the listening
 * socket readable and the loop spinning.  Give up the spare descriptor
 * for a moment to accept it and hang up on it at once. */
static void refuse_for_lack_of_fds(struct daemon *d, int listen_fd)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);
	int cfd;

	if (d->spare_fd >= 0)
		close(d->spare_fd);
	cfd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (cfd >= 0)
		close(cfd);
	d->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (now - d->last_fd_warning_ns > 10ull * 1000000000ull) {
		d->last_fd_warning_ns = now;
		log_warning("refusing clients: out of file descriptors (%u connections; raise LimitNOFILE=)",
		            d->n_conns);
	}
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct daemon *d = userdata;

	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				refuse_for_lack_of_fds(d, fd);
			else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warning("accept: %s", strerror(errno));
			return 0;
		}
		conn_new(d, cfd);
	}
}

void ctl_close_all(struct daemon *d)
{
	while (d->conns)
		conn_free(d->conns);
	d->listen_src = sd_event_source_disable_unref(d->listen_src);
	if (d->listen_fd >= 0)
		close(d->listen_fd);
	d->listen_fd = -1;
	if (d->spare_fd >= 0)
		close(d->spare_fd);
	d->spare_fd = -1;
	if (d->listen_owned)
		unlink(d->socket_path);
}

static int take_activated_socket(struct daemon *d)
{
	int n = sd_listen_fds(1);

	if (n <= 0)
		return 0;
	if (n > 1 || sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_SEQPACKET, 1, NULL, 0) <= 0) {
		log_error("socket activation passed %d descriptors; expected one listening SOCK_SEQPACKET unix socket", n);
		return -EINVAL;
	}
	d->listen_fd = SD_LISTEN_FDS_START;
	fcntl(d->listen_fd, F_SETFL, fcntl(d->listen_fd, F_GETFL) | O_NONBLOCK);
	log_info("listening on socket passed by systemd");
	return 1;
}

/* Take the instance lock "<socket>.lock": a second daemon of the same
 * namespace is refused, and a stale socket file can be removed safely. */
static int lock_instance(struct daemon *d)
{
	d->lock_fd = open(d->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lock_fd < 0) {
		log_error("cannot open %s: %s", d->lock_path, strerror(errno));
		return -errno;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		if (e == EWOULDBLOCK)
			log_error("another ipcbrokerd is already serving namespace '%s' on %s", d->ns, d->socket_path);
		else
			log_error("cannot lock %s: %s", d->lock_path, strerror(e));
		return -EADDRINUSE;
	}
	return 0;
}

int ctl_listen(struct daemon *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int ret;

	ret = lock_instance(d);
	if (ret < 0)
		return ret;
	d->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ret = take_activated_socket(d);
	if (ret < 0)
		return ret;
	if (ret == 0) {
		if (strlen(d->socket_path) >= sizeof(sa.sun_path)) {
			log_error("socket path too long: %s", d->socket_path);
			return -ENAMETOOLONG;
		}
		strcpy(sa.sun_path, d->socket_path);
		d->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (d->listen_fd < 0)
			return -errno;
		unlink(d->socket_path); /* stale: we hold the instance lock */
		/* anyone may connect; what they may do is decided per queue */
		old = umask(0111);
		ret = bind(d->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
		umask(old);
		if (ret < 0 || listen(d->listen_fd, 128) < 0) {
			ret = -errno;
			log_error("cannot listen on %s: %s", d->socket_path, strerror(-ret));
			return ret;
		}
		d->listen_owned = true;
		log_info("listening on %s", d->socket_path);
	}
	return sd_event_add_io(d->event, &d->listen_src, d->listen_fd, EPOLLIN, on_accept, d);
}
