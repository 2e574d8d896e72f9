/* SPDX-License-Identifier: Apache-2.0 */
/*
 * control.c - libipcq's control connection: finding and connecting to
 * the daemon, and administration.
 *
 * The control connection (one SOCK_SEQPACKET socket per ipcq_client) is
 * used only to open queues and for administration; every request is one
 * datagram answered by one datagram, serialized by the client's lock.
 * The data path never touches the daemon (send.c, recv.c).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "fdpass.h"

/* ---- errors ---- */

EXPORT const char *ipcq_strerror(int err)
{
	const char *s;

	if (err == INT_MIN)
		return "unknown error";
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return "success";
	case ETIMEDOUT:
		return "timed out";
	case EAGAIN:
		return "would have to wait (timeout 0)";
	case EMSGSIZE:
		return "message too large for the queue or the buffer";
	case EBADMSG:
		return "forged or corrupt message descriptor rejected";
	case ESTALE:
		return "stale message descriptor rejected (its message was already taken)";
	case EUSERS:
		return "too many threads receiving on this queue at once";
	case EPROTO:
		return "protocol mismatch with ipcbrokerd";
	case ENOENT:
		return "no such queue";
	case ECONNREFUSED:
		return "no ipcbrokerd listens at that socket (is it running?)";
	case EDESTADDRREQ:
		return "XDG_RUNTIME_DIR is not set: no per-user daemon to find";
	case EACCES:
		return "permission denied by the queue's access rules";
	case EIDRM:
		return "the queue was deleted";
	case EDQUOT:
		return "a per-user limit of ipcbrokerd (user_limits) refuses it";
	case EIO:
		return "the queue's shared memory failed a check: it is quarantined until purged or deleted";
	case ECHILD:
		return "this queue handle belongs to the process that opened it (after fork, connect and open again)";
	case ESRCH:
		return "ipcbrokerd cannot watch this process (it lives in a PID namespace the daemon cannot see)";
	}
	s = strerrordesc_np(err);
	return s ? s : "unknown error";
}

EXPORT const char *ipcq_last_error(ipcq_client *c)
{
	return c ? c->errmsg : "";
}

/* ---- control connection ---- */

EXPORT int ipcq_socket_path(const char *ns, char *buf, size_t cap)
{
	return proto_socket_path(buf, cap, ns, PROTO_BUS_SYSTEM);
}

EXPORT int ipcq_user_socket_path(const char *ns, char *buf, size_t cap)
{
	return proto_socket_path(buf, cap, ns, PROTO_BUS_USER);
}

/* A connected control socket: the descriptor, or a negative errno. */
static int dial(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* no socket file means no daemon there, not a missing queue */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return errno == ENOENT ? -ECONNREFUSED : -errno;
	return TAKE_FD(fd);
}

static int connect_path(ipcq_client **out, const char *path)
{
	int fd = dial(path);
	ipcq_client *c;

	if (fd < 0)
		return fd;
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	atomic_init(&c->refs, 1);
	c->fd = fd;
	snprintf(c->path, sizeof(c->path), "%s", path);
	*out = c;
	return 0;
}

/* Under c->lock: the connection broke (the daemon restarted, or closed
 * it): a new one to the same path.  What belonged to the old one is gone
 * (signal registrations, a receiving handle's buffers: ipcq.h). */
static int redial_locked(ipcq_client *c)
{
	int fd = dial(c->path);

	if (fd < 0)
		return fd;
	close(c->fd);
	c->fd = fd;
	return 0;
}

/* Whether an error of the control socket says the connection is gone. */
static bool connection_lost(int err)
{
	return err == -EPIPE || err == -ECONNRESET || err == -ENOTCONN;
}

/* Requests a daemon may get twice without harm: asked again when their
 * reply was lost with the connection (the daemon may have acted on them
 * before it went). */
static bool idempotent(uint16_t op)
{
	return op == PROTO_OP_OPEN || op == PROTO_OP_STAT || op == PROTO_OP_LIST || op == PROTO_OP_NOTIFY ||
	       op == PROTO_OP_MOVED;
}

EXPORT int ipcq_connect_namespace(ipcq_client **out, const char *ns, unsigned flags)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int r;

	if (!out || (flags & ~(unsigned)IPCQ_CONNECT_USER))
		return -EINVAL;
	r = proto_socket_path(path, sizeof(path), ns, flags & IPCQ_CONNECT_USER ? PROTO_BUS_USER : PROTO_BUS_SYSTEM);
	if (r < 0)
		return r;
	return connect_path(out, path);
}

EXPORT int ipcq_connect(ipcq_client **out, const char *socket_or_null)
{
	if (!out)
		return -EINVAL;
	if (!socket_or_null)
		socket_or_null = getenv("IPCQ_SOCKET");
	if (socket_or_null && *socket_or_null)
		return connect_path(out, socket_or_null);
	return ipcq_connect_namespace(out, getenv("IPCQ_NAMESPACE"),
	                              util_env_true("IPCQ_USER") ? IPCQ_CONNECT_USER : 0);
}

void client_ref(ipcq_client *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void client_unref(ipcq_client *c)
{
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Handles still open keep the struct (not the connection): what they do
 * without the daemon goes on, what needs it fails with -ENOTCONN. */
EXPORT void ipcq_disconnect(ipcq_client *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	pthread_mutex_unlock(&c->lock);
	client_unref(c);
}

int client_call(ipcq_client *c, struct proto_req *req, struct proto_reply *rep, size_t cap,
                    int fds[PROTO_OPEN_FDS])
{
	return client_call_fd(c, req, -1, rep, cap, fds);
}

int client_call_fd(ipcq_client *c, struct proto_req *req, int send_fd, struct proto_reply *rep, size_t cap,
                   int fds[PROTO_OPEN_FDS])
{
	int got[PROTO_OPEN_FDS] = { -1, -1, -1, -1, -1 };
	uint32_t nfds = 0;
	const struct proto_reply *dec;
	ssize_t n;
	int r;

	pthread_mutex_lock(&c->lock);
	if (c->fd < 0) {
		r = -ENOTCONN;
		goto out;
	}
	c->errmsg[0] = '\0';
	for (int attempt = 0;; attempt++) {
		req->seq = ++c->seq;
		n = fdpass_send(c->fd, req, sizeof(*req), &send_fd, send_fd >= 0, MSG_NOSIGNAL);
		/* not sent: any request may go again on a new connection */
		if (n < 0 && attempt == 0 && connection_lost((int)n) && redial_locked(c) == 0)
			continue;
		if (n >= 0)
			n = fdpass_recv(c->fd, rep, cap, got, PROTO_OPEN_FDS, &nfds, 0);
		if (n >= 0)
			break;
		r = (int)n;
		/* sent, its reply lost: again only if the daemon may have it twice */
		if (attempt == 0 && connection_lost(r) && redial_locked(c) == 0 && idempotent(req->op))
			continue;
		goto out;
	}
	r = proto_reply_decode(rep, (size_t)n, req, &dec);
	if (r == 0 && dec->nfds != nfds)
		r = -EPROTO;
	if (r < 0) {
		fdpass_close(got, nfds);
		goto out;
	}
	snprintf(c->errmsg, sizeof(c->errmsg), "%s", rep->errmsg);
	if (rep->holder)
		atomic_store_explicit(&c->holder, rep->holder, memory_order_relaxed);
	r = rep->status;
	if (fds && r == 0) {
		memcpy(fds, got, sizeof(got));
	} else {
		fdpass_close(got, nfds);
	}
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* A request about one queue, optionally with a geometry (create); the
 * reply's stats go to st_out when it is not NULL. */
static int ctl_call(ipcq_client *c, enum proto_op op, const char *name, const ipcq_geometry *geo,
                    const ipcq_queue_opts *opts, ipcq_stats *st_out)
{
	struct proto_req req;
	struct reply_one ro;
	int r;

	/* checked before the copy into the request, which would truncate */
	if (!c || !name || !proto_queue_name_valid(name))
		return -EINVAL;
	proto_req_init(&req, op, 0, name);
	if (geo)
		req.geo = *geo;
	if (opts)
		req.opts = *opts;
	r = client_call(c, &req, &ro.rep, sizeof(ro), NULL);
	if (r == 0 && st_out) {
		if (ro.rep.count != 1)
			return -EPROTO;
		*st_out = ro.st;
	}
	return r;
}

int client_moved(ipcq_queue *q, unsigned lane, uint64_t offset, uint64_t gen, int how)
{
	struct proto_req req;
	struct reply_one ro;

	proto_req_init(&req, PROTO_OP_MOVED, 0, q->name);
	req.arg = how;
	req.arg64[0] = proto_lane_offset(lane, offset);
	req.arg64[1] = gen;
	return client_call(q->client, &req, &ro.rep, sizeof(ro), NULL);
}

static int ctl_simple(ipcq_client *c, enum proto_op op, const char *name, const ipcq_geometry *geo,
                      ipcq_stats *st_out)
{
	return ctl_call(c, op, name, geo, NULL, st_out);
}

EXPORT int ipcq_create(ipcq_client *c, const char *name, const ipcq_geometry *geo)
{
	return ctl_simple(c, PROTO_OP_CREATE, name, geo, NULL);
}

EXPORT int ipcq_create_ex(ipcq_client *c, const char *name, const ipcq_geometry *geo, const ipcq_queue_opts *opts)
{
	if (opts && (strnlen(opts->dead_letter, sizeof(opts->dead_letter)) == sizeof(opts->dead_letter) ||
	             (opts->dead_letter[0] && !proto_queue_name_valid(opts->dead_letter))))
		return -EINVAL;
	return ctl_call(c, PROTO_OP_CREATE, name, geo, opts, NULL);
}

EXPORT int ipcq_delete(ipcq_client *c, const char *name)
{
	return ctl_simple(c, PROTO_OP_DELETE, name, NULL, NULL);
}

EXPORT int ipcq_purge(ipcq_client *c, const char *name)
{
	return ctl_simple(c, PROTO_OP_PURGE, name, NULL, NULL);
}

EXPORT int ipcq_stat(ipcq_client *c, const char *name, ipcq_stats *out)
{
	if (!out)
		return -EINVAL;
	return ctl_simple(c, PROTO_OP_STAT, name, NULL, out);
}

EXPORT int ipcq_list(ipcq_client *c, ipcq_stats *out, size_t cap)
{
	_cleanup_free_ struct proto_reply *rep = malloc(PROTO_REPLY_MAX);
	struct proto_req req;
	uint32_t index = 0, total = 0;
	int r;

	if (!c || (!out && cap))
		return -EINVAL;
	if (!rep)
		return -ENOMEM;
	do {
		proto_req_init(&req, PROTO_OP_LIST, 0, NULL);
		req.arg = (int32_t)index;
		r = client_call(c, &req, rep, PROTO_REPLY_MAX, NULL);
		if (r < 0)
			return r;
		total = rep->total;
		for (uint32_t i = 0; i < rep->count && index + i < cap; i++)
			out[index + i] = rep->stats[i];
		index += rep->count;
	} while (rep->count > 0 && index < total && index < cap);
	return total > INT32_MAX ? -EOVERFLOW : (int)total;
}

