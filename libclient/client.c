/*
 * client.c - libipcq: the client side of ipcbroker.
 *
 * The control connection (one SOCK_SEQPACKET socket per ipcq_client) is
 * used only to open queues and for administration; every request is one
 * datagram answered by one datagram, serialized by the client's lock.
 *
 * The data path never touches the daemon.  Each open queue holds its own
 * mq descriptor (a private open file description, so timeouts and flags
 * are ours alone) and a mapping of the queue's ring.  A message that fits
 * the mq slot goes inline; a larger one is written into the ring and a
 * descriptor goes on the mq (see proto.h and ring.c).
 *
 * Receiving goes through a receive slot in the ring's shared memory:
 * mq_receive writes straight into it, so if this process dies between
 * taking a message off the mq and finishing with it, the daemon sees the
 * message and can redeliver it.  Each receiving handle claims a home slot
 * at open; a second thread receiving on the same handle at the same time
 * borrows a free slot for the duration of the call.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "ipcq.h"
#include "proto.h"
#include "ring.h"
#include "util.h"

#define EXPORT __attribute__((visibility("default")))
#define STACK_MSG_MAX 8192u

struct ipcq_client {
	int fd;
	pthread_mutex_t lock;
	uint32_t seq;
	_Atomic uint32_t holder; /* what the daemon knows this process by (ring.h) */
	char errmsg[PROTO_ERRMSG_MAX];
};

struct ipcq_queue {
	ipcq_client *client;
	int flags;
	mqd_t mq;
	struct ring ring;
	const struct proto_meta *meta; /* the daemon's page, mapped read-only */
	ipcq_geometry geo;
	uint32_t id;
	pid_t pid; /* the process that opened it: the one its holder id names */
	size_t inline_max;
	int home_slot; /* -1 when not receiving */
	atomic_flag home_busy;
	/* a message too large for the buffer ipcq_recv was given: the next
	 * receive on the handle returns it */
	pthread_mutex_t pending_lock;
	_Atomic bool has_pending;
	ipcq_msg pending;
	char name[IPCQ_NAME_MAX + 1];
};

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

static int connect_path(ipcq_client **out, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	ipcq_client *c;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* no socket file means no daemon there, not a missing queue */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return errno == ENOENT ? -ECONNREFUSED : -errno;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->fd = TAKE_FD(fd);
	*out = c;
	return 0;
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

EXPORT void ipcq_disconnect(ipcq_client *c)
{
	if (!c)
		return;
	close(c->fd);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Receive one reply datagram with up to PROTO_OPEN_FDS descriptors. */
static ssize_t recv_reply(int sock, void *buf, size_t cap, int fds[PROTO_OPEN_FDS], uint32_t *nfds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(PROTO_OPEN_FDS * sizeof(int))];
	} ctrl;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctrl, .msg_controllen = sizeof(ctrl) };
	ssize_t n;

	*nfds = 0;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*nfds < PROTO_OPEN_FDS)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	if (n == 0)
		return -ECONNRESET;
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		close_fds(fds, *nfds);
		*nfds = 0;
		return -EPROTO;
	}
	return n;
}

/* One request, one reply.  The reply is copied to rep (cap bytes); fds
 * (if not NULL) receives the passed descriptors, which the caller owns. */
static int ctl_call(ipcq_client *c, struct proto_req *req, struct proto_reply *rep, size_t cap,
                    int fds[PROTO_OPEN_FDS])
{
	int got[PROTO_OPEN_FDS] = { -1, -1, -1 };
	uint32_t nfds = 0;
	const struct proto_reply *dec;
	ssize_t n;
	int r;

	pthread_mutex_lock(&c->lock);
	req->seq = ++c->seq;
	c->errmsg[0] = '\0';
	do
		n = send(c->fd, req, sizeof(*req), MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		r = -errno;
		goto out;
	}
	n = recv_reply(c->fd, rep, cap, got, &nfds);
	if (n < 0) {
		r = (int)n;
		goto out;
	}
	r = proto_reply_decode(rep, (size_t)n, req, &dec);
	if (r == 0 && dec->nfds != nfds)
		r = -EPROTO;
	if (r < 0) {
		close_fds(got, nfds);
		goto out;
	}
	snprintf(c->errmsg, sizeof(c->errmsg), "%s", rep->errmsg);
	if (rep->holder)
		atomic_store_explicit(&c->holder, rep->holder, memory_order_relaxed);
	r = rep->status;
	if (fds && r == 0) {
		memcpy(fds, got, sizeof(got));
	} else {
		close_fds(got, nfds);
	}
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* A reply with room for one stats record. */
struct reply_one {
	struct proto_reply rep;
	ipcq_stats st;
};

/* A request about one queue, optionally with a geometry (create); the
 * reply's stats go to st_out when it is not NULL. */
static int ctl_simple(ipcq_client *c, enum proto_op op, const char *name, const ipcq_geometry *geo,
                      ipcq_stats *st_out)
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
	r = ctl_call(c, &req, &ro.rep, sizeof(ro), NULL);
	if (r == 0 && st_out) {
		if (ro.rep.count != 1)
			return -EPROTO;
		*st_out = ro.st;
	}
	return r;
}

EXPORT int ipcq_create(ipcq_client *c, const char *name, const ipcq_geometry *geo)
{
	return ctl_simple(c, PROTO_OP_CREATE, name, geo, NULL);
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
		r = ctl_call(c, &req, rep, PROTO_REPLY_MAX, NULL);
		if (r < 0)
			return r;
		total = rep->total;
		for (uint32_t i = 0; i < rep->count && index + i < cap; i++)
			out[index + i] = rep->stats[i];
		index += rep->count;
	} while (rep->count > 0 && index < total && index < cap);
	return total > INT32_MAX ? -EOVERFLOW : (int)total;
}

/* ---- queues ---- */

static int map_ring(ipcq_queue *q, int fd)
{
	struct stat st;
	void *mem;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size < (off_t)RING_HDR_SIZE)
		return -EPROTO;
	mem = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		return -errno;
	r = ring_attach(&q->ring, mem, (size_t)st.st_size);
	if (r == 0 && (q->ring.msg_size != q->geo.msg_size || q->ring.data_size != q->geo.ring_size ||
	               q->ring.max_payload != q->geo.max_payload))
		r = -EPROTO;
	if (r < 0)
		munmap(mem, (size_t)st.st_size);
	return r;
}

/* The daemon's page, for reading only: its descriptor is read-only, so
 * what it says (deleted, quarantined) no client can have written. */
static int map_meta(ipcq_queue *q, int fd)
{
	struct stat st;
	void *mem;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size != PROTO_META_SIZE)
		return -EPROTO;
	mem = mmap(NULL, PROTO_META_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		return -errno;
	q->meta = mem;
	if (q->meta->magic != PROTO_META_MAGIC || q->meta->version != PROTO_META_VERSION ||
	    memcmp(&q->meta->geo, &q->geo, sizeof(q->geo)) != 0)
		return -EPROTO;
	return 0;
}

/* The home slot belongs to the process that opened the queue; a child
 * forked with the handle must not free it. */
static bool home_slot_mine(const ipcq_queue *q)
{
	return q->home_slot >= 0 && q->pid == self_pid();
}

/* A handle is its opener's: what it holds is marked with the holder id
 * the daemon gave that process, which would name the parent in a child. */
static int check_owner(const ipcq_queue *q)
{
	if (!q)
		return -EINVAL;
	return q->pid == self_pid() ? 0 : -ECHILD;
}

static void queue_free(ipcq_queue *q)
{
	if (!q)
		return;
	if (q->has_pending)
		ipcq_release(q, &q->pending);
	if (home_slot_mine(q))
		ring_slot_free(&q->ring, q->home_slot);
	if (q->ring.hdr)
		munmap(q->ring.hdr, q->ring.map_len);
	if (q->meta)
		munmap((void *)q->meta, PROTO_META_SIZE);
	if (q->mq >= 0)
		mq_close(q->mq);
	pthread_mutex_destroy(&q->pending_lock);
	free(q);
}

static void queue_freep(ipcq_queue **q)
{
	queue_free(*q);
}

EXPORT int ipcq_open(ipcq_client *c, const char *name, int flags, ipcq_queue **out)
{
	__attribute__((cleanup(queue_freep))) ipcq_queue *q = NULL;
	int fds[PROTO_OPEN_FDS] = { -1, -1, -1 };
	struct proto_req req;
	struct reply_one ro;
	struct mq_attr attr;
	int r;

	if (!c || !name || !out || !proto_queue_name_valid(name))
		return -EINVAL;
	if (!(flags & (IPCQ_SEND | IPCQ_RECV)) || (flags & ~(IPCQ_SEND | IPCQ_RECV | IPCQ_CREATE)))
		return -EINVAL;
	proto_req_init(&req, PROTO_OP_OPEN, 0, name);
	req.flags = (uint32_t)flags;
	r = ctl_call(c, &req, &ro.rep, sizeof(ro), fds);
	if (r < 0)
		return r;
	q = calloc(1, sizeof(*q));
	if (!q) {
		close_fds(fds, PROTO_OPEN_FDS);
		return -ENOMEM;
	}
	q->mq = fds[0];
	q->home_slot = -1;
	pthread_mutex_init(&q->pending_lock, NULL);
	q->client = c;
	q->flags = flags;
	if (ro.rep.count != 1 || fds[0] < 0 || fds[1] < 0 || fds[2] < 0) {
		close_fds(&fds[1], PROTO_OPEN_FDS - 1);
		return -EPROTO;
	}
	q->geo = ro.st.geo;
	q->id = ro.st.id;
	q->pid = self_pid();
	snprintf(q->name, sizeof(q->name), "%s", name);
	r = map_meta(q, fds[2]);
	close(fds[2]);
	if (r == 0 && atomic_load_explicit(&q->meta->quarantined, memory_order_relaxed))
		r = -EIO;
	/* the daemon's page is sound, so a ring that is not was wrecked by a
	 * client: the daemon quarantines it at its next look */
	if (r == 0 && map_ring(q, fds[1]) < 0)
		r = -EIO;
	close(fds[1]);
	if (r < 0)
		return r;
	q->ring.self = atomic_load_explicit(&c->holder, memory_order_relaxed);
	if (q->ring.self == 0 || q->ring.self > PROTO_HOLDER_MAX)
		return -EPROTO;
	if (mq_getattr(q->mq, &attr) < 0)
		return -errno;
	if ((uint64_t)attr.mq_msgsize != q->geo.msg_size)
		return -EPROTO;
	q->inline_max = proto_inline_max(q->geo.msg_size);
	if (flags & IPCQ_RECV) {
		r = ring_slot_claim(&q->ring);
		if (r < 0)
			return r;
		q->home_slot = r;
	}
	*out = TAKE_PTR(q);
	return 0;
}

EXPORT int ipcq_close(ipcq_queue *q)
{
	if (!q)
		return -EINVAL;
	queue_free(q);
	return 0;
}

EXPORT int ipcq_geometry_of(ipcq_queue *q, ipcq_geometry *out)
{
	if (!q || !out)
		return -EINVAL;
	*out = q->geo;
	return 0;
}

EXPORT int ipcq_fd(ipcq_queue *q)
{
	return q ? q->mq : -EINVAL;
}

EXPORT int ipcq_notify(ipcq_queue *q, int signo)
{
	struct proto_req req;
	struct reply_one ro;

	if (!q || signo < 0 || signo >= 65)
		return -EINVAL;
	proto_req_init(&req, PROTO_OP_NOTIFY, 0, q->name);
	req.arg = signo;
	return ctl_call(q->client, &req, &ro.rep, sizeof(ro), NULL);
}

/* ---- the mq with our timeout convention ---- */

static int timeout_error(int timeout_ms)
{
	return timeout_ms == 0 ? -EAGAIN : -ETIMEDOUT;
}

static int mq_put(mqd_t mq, const void *msg, size_t n, unsigned prio, int timeout_ms)
{
	int r;

	if (timeout_ms < 0) {
		r = mq_send(mq, msg, n, prio);
	} else {
		struct timespec dl = deadline_after(CLOCK_REALTIME, timeout_ms);

		r = mq_timedsend(mq, msg, n, prio, &dl);
	}
	if (r == 0)
		return 0;
	return errno == ETIMEDOUT ? timeout_error(timeout_ms) : -errno;
}

static ssize_t mq_get(mqd_t mq, void *buf, size_t cap, unsigned *prio, int timeout_ms)
{
	ssize_t n;

	if (timeout_ms < 0) {
		n = mq_receive(mq, buf, cap, prio);
	} else {
		struct timespec dl = deadline_after(CLOCK_REALTIME, timeout_ms);

		n = mq_timedreceive(mq, buf, cap, prio, &dl);
	}
	if (n >= 0)
		return n;
	return errno == ETIMEDOUT ? timeout_error(timeout_ms) : -errno;
}

/* Milliseconds left of a timeout that started at start_ns. */
static int time_left(int timeout_ms, uint64_t start_ns)
{
	uint64_t spent;

	if (timeout_ms <= 0)
		return timeout_ms;
	spent = (now_ns(CLOCK_MONOTONIC) - start_ns) / 1000000u;
	return spent >= (uint64_t)timeout_ms ? 0 : timeout_ms - (int)spent;
}

/* ---- sending ---- */

static void count(_Atomic uint64_t *ctr)
{
	atomic_fetch_add_explicit(ctr, 1, memory_order_relaxed);
}

static int send_inline(ipcq_queue *q, const void *buf, size_t len, unsigned prio, int timeout_ms)
{
	unsigned char stackbuf[STACK_MSG_MAX];
	_cleanup_free_ unsigned char *heapbuf = NULL;
	unsigned char *msg = stackbuf;
	struct proto_msg_hdr h = { .kind = PROTO_MSG_INLINE, .len = (uint32_t)len };
	int r;

	if (PROTO_MSG_HDR_SIZE + len > sizeof(stackbuf)) {
		msg = heapbuf = malloc(PROTO_MSG_HDR_SIZE + len);
		if (!msg)
			return -ENOMEM;
	}
	memcpy(msg, &h, sizeof(h));
	if (len)
		memcpy(msg + sizeof(h), buf, len);
	r = mq_put(q->mq, msg, sizeof(h) + len, prio, timeout_ms);
	if (r == 0)
		count(&q->ring.hdr->sent);
	return r;
}

/* Send the descriptor of a reserved chunk whose payload is written. */
static int publish_ref(ipcq_queue *q, const struct ring_ref *ref, unsigned prio, int timeout_ms)
{
	struct proto_ring_desc d;
	int r;

	ring_publishing(&q->ring, ref, prio);
	ring_describe(ref, 0, &d);
	r = mq_put(q->mq, &d, sizeof(d), prio, timeout_ms);
	if (r < 0) {
		/* the descriptor is not on the mq: nobody can have the chunk */
		ring_cancel(&q->ring, ref);
		return r;
	}
	ring_published(&q->ring, ref);
	count(&q->ring.hdr->sent);
	count(&q->ring.hdr->sent_ring);
	return 0;
}

static bool deleted(const ipcq_queue *q)
{
	return atomic_load_explicit(&q->meta->deleted, memory_order_acquire) != 0;
}

/* -EIDRM for a deleted queue, -EIO for a quarantined one, else 0 */
static int queue_state(const ipcq_queue *q)
{
	if (deleted(q))
		return -EIDRM;
	if (atomic_load_explicit(&q->meta->quarantined, memory_order_relaxed))
		return -EIO;
	return 0;
}

static int check_send(ipcq_queue *q, unsigned prio)
{
	int r = check_owner(q);

	if (r < 0)
		return r;
	if (!(q->flags & IPCQ_SEND))
		return -EBADF;
	r = queue_state(q);
	if (r < 0)
		return r;
	if (prio >= (unsigned)MQ_PRIO_MAX)
		return -EINVAL;
	return 0;
}

EXPORT int ipcq_send(ipcq_queue *q, const void *buf, size_t len, unsigned prio, int timeout_ms)
{
	struct ring_ref ref;
	uint64_t start;
	int r;

	r = check_send(q, prio);
	if (r < 0)
		return r;
	if (!buf && len)
		return -EINVAL;
	if (len <= q->inline_max)
		return send_inline(q, buf, len, prio, timeout_ms);
	if (len > q->geo.max_payload)
		return -EMSGSIZE;
	start = now_ns(CLOCK_MONOTONIC);
	r = ring_reserve(&q->ring, len, timeout_ms, &ref);
	if (r < 0)
		return r;
	memcpy(ref.payload, buf, len);
	return publish_ref(q, &ref, prio, time_left(timeout_ms, start));
}

EXPORT int ipcq_loan(ipcq_queue *q, size_t len, void **buf, int timeout_ms)
{
	struct ring_ref ref;
	int r;

	r = check_send(q, 0);
	if (r < 0)
		return r;
	if (!buf)
		return -EINVAL;
	r = ring_reserve(&q->ring, len, timeout_ms, &ref);
	if (r < 0)
		return r;
	*buf = ref.payload;
	return 0;
}

EXPORT int ipcq_publish(ipcq_queue *q, void *buf, size_t len, unsigned prio)
{
	struct ring_ref ref;
	int r;

	r = check_send(q, prio);
	if (r < 0)
		return r;
	r = ring_loan_ref(&q->ring, buf, len, &ref);
	if (r < 0)
		return r;
	return publish_ref(q, &ref, prio, -1);
}

EXPORT int ipcq_unloan(ipcq_queue *q, void *buf)
{
	struct ring_ref ref;
	int r = check_owner(q);

	if (r < 0)
		return r;
	r = ring_loan_ref(&q->ring, buf, 0, &ref);
	if (r < 0)
		return r;
	ring_cancel(&q->ring, &ref);
	return 0;
}

/* ---- receiving ---- */

/* A slot index, with HOME_SLOT set when it is the handle's home slot
 * (given back by clearing home_busy) rather than one borrowed from the
 * ring's free slots (given back by freeing it). */
#define HOME_SLOT 0x10000

static int slot_acquire(ipcq_queue *q)
{
	if (home_slot_mine(q) && !atomic_flag_test_and_set_explicit(&q->home_busy, memory_order_acquire))
		return q->home_slot | HOME_SLOT;
	return ring_slot_claim(&q->ring);
}

static struct ring_slot *slot_of(ipcq_queue *q, int handle)
{
	return ring_slot_at(&q->ring, (unsigned)(handle & ~HOME_SLOT));
}

static void slot_put(ipcq_queue *q, int handle)
{
	if (handle & HOME_SLOT) {
		slot_of(q, handle)->buf[0] = 0;
		atomic_flag_clear_explicit(&q->home_busy, memory_order_release);
	} else {
		ring_slot_free(&q->ring, handle);
	}
}

#define SKIPPED_DUPLICATE 1

/* Take the next message off the mq into a slot and resolve it.  On
 * success the message is described by m; an inline message keeps its slot
 * until ipcq_release, a ring message gives it back at once (its chunk is
 * held instead).  Returns SKIPPED_DUPLICATE when the message was a
 * duplicate descriptor left by a crash recovery. */
static int recv_one(ipcq_queue *q, ipcq_msg *m, int timeout_ms)
{
	union {
		struct proto_msg_hdr hdr;
		struct proto_ring_desc desc;
	} msg;
	struct ring_slot *s;
	struct proto_msg_hdr h;
	struct ring_ref ref;
	unsigned prio = 0;
	ssize_t n;
	int idx, kind, r;

	idx = slot_acquire(q);
	if (idx < 0)
		return idx;
	s = slot_of(q, idx);
	s->buf[0] = 0;
	/* straight into shared memory, priority included: if we die now, the
	 * daemon finds the whole message in the slot */
	n = mq_get(q->mq, s->buf, q->geo.msg_size, &s->prio, timeout_ms);
	if (n < 0) {
		slot_put(q, idx);
		return (int)n;
	}
	prio = s->prio;
	/* One copy of what decides, checked and then used: the slot is
	 * shared memory, which another client may rewrite meanwhile. */
	memcpy(&msg, s->buf, MIN((size_t)n, sizeof(msg)));
	kind = proto_msg_check(&msg, (size_t)n);
	h = msg.hdr;
	if (kind == PROTO_MSG_INLINE) {
		*m = (ipcq_msg){ .data = s->buf + sizeof(h),
			         .len = h.len,
			         .prio = prio,
			         .flags = (h.flags & PROTO_MSGF_REDELIVERED) ? IPCQ_MSG_REDELIVERED : 0,
			         .token = (uint64_t)idx,
			         .token2 = 0 };
		return 0;
	}
	if (kind == PROTO_MSG_RING) {
		r = ring_take(&q->ring, &msg.desc, &ref);
	} else if (kind == PROTO_MSG_CLOSED) {
		/* the daemon sets the flag before it sends CLOSED: without it,
		 * the message is a sender's forgery, not a deletion */
		r = deleted(q) ? -EIDRM : -EBADMSG;
	} else {
		r = kind;
	}
	slot_put(q, idx);
	if (r == -EIDRM)
		return r;
	if (r < 0) {
		/* a duplicate left by a crash recovery is expected; anything
		 * else is reported, and both are counted */
		count(&q->ring.hdr->rejected);
		if (r == -ESTALE && (h.flags & PROTO_MSGF_REDELIVERED))
			return SKIPPED_DUPLICATE;
		return r;
	}
	*m = (ipcq_msg){ .data = ref.payload,
		         .len = ref.len,
		         .prio = prio,
		         .flags = (h.flags & PROTO_MSGF_REDELIVERED) ? IPCQ_MSG_REDELIVERED : 0,
		         .token = ref.offset,
		         .token2 = ref.gen };
	return 0;
}

/* A message an earlier ipcq_recv could not fit in its buffer. */
static bool take_pending(ipcq_queue *q, ipcq_msg *m)
{
	bool got = false;

	if (!atomic_load_explicit(&q->has_pending, memory_order_acquire))
		return false;
	pthread_mutex_lock(&q->pending_lock);
	if (atomic_load_explicit(&q->has_pending, memory_order_relaxed)) {
		*m = q->pending;
		atomic_store_explicit(&q->has_pending, false, memory_order_relaxed);
		got = true;
		count(&q->ring.hdr->received);
	}
	pthread_mutex_unlock(&q->pending_lock);
	return got;
}

EXPORT int ipcq_recv_view(ipcq_queue *q, ipcq_msg *m, int timeout_ms)
{
	uint64_t start = now_ns(CLOCK_MONOTONIC);
	int r = check_owner(q);

	if (r < 0 || !m)
		return r < 0 ? r : -EINVAL;
	if (!(q->flags & IPCQ_RECV))
		return -EBADF;
	if (take_pending(q, m))
		return 0;
	r = queue_state(q);
	if (r < 0)
		return r;
	for (;;) {
		int left = time_left(timeout_ms, start);

		r = recv_one(q, m, left);
		if (r != SKIPPED_DUPLICATE)
			break;
		/* a duplicate left by a crash recovery: go on to the next message */
	}
	if (r == 0)
		count(&q->ring.hdr->received);
	/* the deadline may have run out on a retry after a duplicate */
	return r == -EAGAIN ? timeout_error(timeout_ms) : r;
}

EXPORT int ipcq_release(ipcq_queue *q, ipcq_msg *m)
{
	int r = check_owner(q);

	if (r < 0)
		return r;
	if (!m || !m->data)
		return -EINVAL;
	if (m->token2 == 0) {
		if ((m->token & ~(uint64_t)HOME_SLOT) >= RING_SLOTS)
			return -EINVAL;
		slot_put(q, (int)m->token);
	} else {
		struct ring_ref ref = { .offset = m->token, .gen = m->token2, .len = (uint32_t)m->len };

		if (ref.offset >= q->ring.data_size)
			return -EINVAL;
		ring_release(&q->ring, &ref);
	}
	m->data = NULL;
	return 0;
}

EXPORT ssize_t ipcq_recv(ipcq_queue *q, void *buf, size_t cap, unsigned *prio, int timeout_ms)
{
	ipcq_msg m;
	int r;

	if (!buf && cap)
		return -EINVAL;
	r = ipcq_recv_view(q, &m, timeout_ms);
	if (r < 0)
		return r;
	if (m.len > cap) {
		/* keep it for the next receive on this handle: a receiving
		 * descriptor cannot put it back on the mq, and it must not be lost */
		atomic_fetch_sub_explicit(&q->ring.hdr->received, 1, memory_order_relaxed);
		pthread_mutex_lock(&q->pending_lock);
		q->pending = m;
		atomic_store_explicit(&q->has_pending, true, memory_order_release);
		pthread_mutex_unlock(&q->pending_lock);
		return -EMSGSIZE;
	}
	if (m.len)
		memcpy(buf, m.data, m.len);
	if (prio)
		*prio = m.prio;
	ipcq_release(q, &m);
	return (ssize_t)m.len;
}
