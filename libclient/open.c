/* SPDX-License-Identifier: Apache-2.0 */
/*
 * open.c - opening a queue: the daemon checks the caller's rights and
 * passes the queue's kernel objects (its mq, its ring's two objects, its
 * meta page); the handle maps them.
 *
 * Each open queue holds its own mq descriptor (a private open file
 * description, so timeouts and flags are ours alone), a mapping of the
 * ring's control object (read-write), of its data object (read-write for
 * a handle that may send, else read-only: the daemon passed a read-only
 * descriptor, so no mprotect can change that), and the daemon's meta
 * page, read-only.  A receiving handle claims a home receive slot in the
 * ring (see recv.c).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "fdpass.h"


/* Map a ring's two objects into r: the data object writable or not (its
 * descriptor decides what the kernel allows), checked against the
 * geometry the daemon gave. */
static int map_ring_into(const ipcq_queue *q, struct ring *r, int fd, int data_fd, bool writable, uint32_t delivery,
                         uint64_t data_size, uint64_t max_payload)
{
	struct stat st, dst;
	void *mem, *data;
	int ret;

	if (fstat(fd, &st) < 0 || fstat(data_fd, &dst) < 0)
		return -errno;
	if (st.st_size < (off_t)RING_HDR_SIZE || dst.st_size < (off_t)RING_SPAGE_SIZE)
		return -EPROTO;
	mem = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		return -errno;
	data = mmap(NULL, (size_t)dst.st_size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, data_fd, 0);
	if (data == MAP_FAILED) {
		ret = -errno;
		munmap(mem, (size_t)st.st_size);
		return ret;
	}
	ret = ring_attach(r, mem, (size_t)st.st_size, data, (size_t)dst.st_size, writable);
	/* what the daemon said, not what a client may have written over */
	if (ret == 0 && (r->msg_size != q->geo.msg_size || r->data_size != data_size || r->max_payload != max_payload ||
	                 r->delivery != delivery))
		ret = -EPROTO;
	if (ret < 0) {
		munmap(mem, (size_t)st.st_size);
		munmap(data, (size_t)dst.st_size);
		r->hdr = NULL;
		r->sp = NULL;
	}
	return ret;
}

static int map_ring(ipcq_queue *q, int fd, int data_fd, uint32_t delivery)
{
	/* with lanes, senders write their own lane, not the queue's ring */
	bool writable = (q->flags & IPCQ_SEND) && !q->meta->isolated;

	return map_ring_into(q, &q->ring, fd, data_fd, writable, delivery, proto_home_ring_size(&q->geo),
	                     proto_home_max_payload(&q->geo));
}

static void unmap_ring(struct ring *r)
{
	if (r->hdr)
		munmap(r->hdr, r->map_len);
	if (r->sp)
		munmap(r->sp, r->data_map_len);
	r->hdr = NULL;
	r->sp = NULL;
}

/* A lane's objects from the daemon (id 0: this process's own, to send
 * through), mapped and joined to the queue's ring: the lane, or NULL
 * with *err set. */
static struct ring *map_lane(ipcq_queue *q, unsigned id, int *err)
{
	int fds[PROTO_OPEN_FDS] = { -1, -1, -1, -1, -1 };
	struct ring *r = calloc(1, sizeof(*r));
	struct proto_req req;
	struct proto_reply rep;

	if (!r) {
		*err = -ENOMEM;
		return NULL;
	}
	proto_req_init(&req, PROTO_OP_LANE, 0, q->name);
	req.arg = (int32_t)id;
	*err = client_call(q->client, &req, &rep, sizeof(rep), fds);
	if (*err == 0 && (rep.nfds != PROTO_LANE_FDS || fds[0] < 0 || fds[1] < 0 || rep.lane == 0 ||
	                  rep.lane > PROTO_LANES_MAX || (id && rep.lane != id)))
		*err = -EPROTO;
	if (*err == 0)
		*err = map_ring_into(q, r, fds[0], fds[1], id == 0, q->ring.delivery, q->geo.ring_size, q->geo.max_payload);
	fdpass_close(fds, PROTO_OPEN_FDS);
	if (*err < 0) {
		free(r);
		return NULL;
	}
	ring_join(r, &q->ring, rep.lane);
	return r;
}

struct ring *lane_ring(ipcq_queue *q, unsigned id)
{
	struct ring *r;
	int err;

	if (id == 0)
		return &q->ring;
	if (id > PROTO_LANES_MAX || !(lanes_made(q) & (1ull << (id - 1))))
		return NULL;
	r = atomic_load_explicit(&q->lane[id], memory_order_acquire);
	if (r)
		return r;
	pthread_mutex_lock(&q->lane_lock);
	r = atomic_load_explicit(&q->lane[id], memory_order_relaxed);
	if (!r) {
		r = map_lane(q, id, &err);
		if (r) {
			atomic_store_explicit(&q->lane[id], r, memory_order_release);
			atomic_fetch_or_explicit(&q->lanes_mapped, 1ull << (id - 1), memory_order_release);
		}
	}
	pthread_mutex_unlock(&q->lane_lock);
	return r;
}

/* A sender of a queue with lanes: its own, to send through. */
static int own_lane(ipcq_queue *q)
{
	int err;
	struct ring *r = map_lane(q, 0, &err);

	/* (a lane the daemon passed that does not map as it said: -EIO) */
	if (!r)
		return err == -EPROTO || err == -EINVAL ? -EIO : err;
	atomic_store_explicit(&q->lane[r->lane], r, memory_order_release);
	atomic_fetch_or_explicit(&q->lanes_mapped, 1ull << (r->lane - 1), memory_order_release);
	q->sring = r;
	return 0;
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
	    !proto_meta_geo_is(&q->meta->geo, &q->geo))
		return -EPROTO;
	return 0;
}

static void queue_free(ipcq_queue *q)
{
	if (!q)
		return;
	if (q->ring.hdr && q->pid == self_pid())
		recv_close(q);
	if (home_slot_mine(q))
		ring_slot_free(&q->ring, q->home_slot);
	for (unsigned i = 1; i <= PROTO_LANES_MAX; i++) {
		struct ring *l = atomic_load_explicit(&q->lane[i], memory_order_relaxed);

		if (l) {
			unmap_ring(l);
			free(l);
		}
	}
	unmap_ring(&q->ring);
	if (q->meta)
		munmap((void *)q->meta, PROTO_META_SIZE);
	if (q->mq >= 0)
		mq_close(q->mq);
	if (q->ring.bell >= 0)
		close(q->ring.bell);
	if (q->pollfd >= 0)
		close(q->pollfd);
	if (q->sleep_ep >= 0)
		close(q->sleep_ep);
	if (q->held_bell >= 0)
		close(q->held_bell);
	pthread_mutex_destroy(&q->recv_lock);
	pthread_mutex_destroy(&q->lane_lock);
	if (q->bufs)
		munmap(q->bufs, q->bufs_len);
	if (q->client)
		client_unref(q->client);
	free(q);
}

/* A receiving handle's buffers: a memfd shared with the daemon alone,
 * sealed so that its size never changes under the daemon's mapping, and
 * handed to the daemon, which reads the ring descriptors a dead receiver
 * held in them (daemon/rbuf.c).  No other client can see or write it. */
static int recv_bufs_setup(ipcq_queue *q)
{
	_cleanup_close_ int fd = memfd_create("ipcq-receive", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	size_t len = (size_t)RECV_BUFS * q->geo.msg_size;
	struct proto_req req;
	struct proto_reply rep;
	void *mem;
	int r;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return -errno;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		return -errno;
	q->bufs = mem;
	q->bufs_len = len;
	for (unsigned i = 0; i < RECV_BUFS; i++)
		q->buf[i] = q->bufs + (size_t)i * q->geo.msg_size;
	proto_req_init(&req, PROTO_OP_RECV_BUFS, 0, q->name);
	r = client_call_fd(q->client, &req, fd, &rep, sizeof(rep), NULL);
	return r;
}

static void queue_freep(ipcq_queue **q)
{
	queue_free(*q);
}

EXPORT int ipcq_open(ipcq_client *c, const char *name, int flags, ipcq_queue **out)
{
	__attribute__((cleanup(queue_freep))) ipcq_queue *q = NULL;
	int fds[PROTO_OPEN_FDS] = { -1, -1, -1, -1, -1 };
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
	r = client_call(c, &req, &ro.rep, sizeof(ro), fds);
	if (r < 0)
		return r;
	q = calloc(1, sizeof(*q));
	if (!q) {
		fdpass_close(fds, PROTO_OPEN_FDS);
		return -ENOMEM;
	}
	q->mq = fds[0];
	q->ring.bell = -1;
	q->pollfd = q->held_bell = -1;
	q->sleep_ep = -1;
	q->home_slot = -1;
	pthread_mutex_init(&q->recv_lock, NULL);
	pthread_mutex_init(&q->lane_lock, NULL);
	q->sring = &q->ring;
	q->client = c;
	client_ref(c);
	q->flags = flags;
	if (ro.rep.count != 1 || fds[0] < 0 || fds[1] < 0 || fds[2] < 0 || fds[3] < 0 || fds[4] < 0) {
		fdpass_close(&fds[1], PROTO_OPEN_FDS - 1);
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
	 * client: the daemon quarantines it at its next look.  No room in this
	 * process's address space (ENOMEM: a 32-bit process holding many
	 * rings) says nothing of the ring. */
	if (r == 0) {
		r = map_ring(q, fds[1], fds[4], ro.st.delivery);
		if (r < 0 && r != -ENOMEM)
			r = -EIO;
	}
	close(fds[1]);
	close(fds[4]);
	q->ring.bell = fds[3]; /* after map_ring, which sets it to none */
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
	if ((flags & IPCQ_SEND) && q->meta->isolated) {
		r = own_lane(q);
		if (r < 0)
			return r;
	}
	if (flags & IPCQ_SEND)
		q->window = (struct backlog_window){ .send = window_send, .ctx = q, .listened = &q->meta->listened };
	if (flags & IPCQ_RECV) {
		r = recv_bufs_setup(q);
		if (r < 0)
			return r;
		r = ring_slot_claim(&q->ring);
		if (r < 0)
			return r;
		q->home_slot = r;
	}
	*out = TAKE_PTR(q);
	return 0;
}

/* Handles registered for signals (ipcq_notify), so that ipcq_close ends
 * their registration: the daemon knows the connection, not the handle. */
struct notified_handle {
	const ipcq_queue *q;
	struct notified_handle *next;
};
static pthread_mutex_t notified_lock = PTHREAD_MUTEX_INITIALIZER;
static struct notified_handle *notified;

/* Under notified_lock: take q off the list; whether it was there. */
static bool notified_take(const ipcq_queue *q)
{
	for (struct notified_handle **pp = &notified; *pp; pp = &(*pp)->next) {
		if ((*pp)->q == q) {
			struct notified_handle *n = *pp;

			*pp = n->next;
			free(n);
			return true;
		}
	}
	return false;
}

/* A closing handle's registration ends (not a child's copy: the
 * registration is its parent's). */
static void notify_end(ipcq_queue *q)
{
	struct proto_req req;
	struct reply_one ro;
	bool registered;

	pthread_mutex_lock(&notified_lock);
	registered = notified_take(q);
	pthread_mutex_unlock(&notified_lock);
	if (!registered || q->pid != self_pid())
		return;
	proto_req_init(&req, PROTO_OP_NOTIFY, 0, q->name);
	client_call(q->client, &req, &ro.rep, sizeof(ro), NULL);
}

EXPORT int ipcq_close(ipcq_queue *q)
{
	if (!q)
		return -EINVAL;
	notify_end(q);
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

/* A receiving handle's fd is an epoll set of what may say a message
 * waits: the window (the mq), the queue's bell (its backlog is not empty,
 * backlog.c), and the handle's own (messages of a batch it holds, or
 * kept back).  Made at the first call, so handles never polled pay
 * nothing for it. */
static int make_pollfd(ipcq_queue *q)
{
	int fds[3] = { q->mq, q->ring.bell, -1 };
	int ep, r = 0;

	q->held_bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->held_bell < 0)
		return -errno;
	fds[2] = q->held_bell;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -errno;
	for (unsigned i = 0; i < 3 && r == 0; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[i] };

		if (fds[i] >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0)
			r = -errno;
	}
	if (r < 0) {
		close(ep);
		return r;
	}
	q->pollfd = ep;
	held_bell_update(q);
	return 0;
}

EXPORT int ipcq_fd(ipcq_queue *q)
{
	int r = 0;

	if (!q)
		return -EINVAL;
	if (!(q->flags & IPCQ_RECV))
		return q->mq;
	pthread_mutex_lock(&q->recv_lock);
	if (q->pollfd < 0)
		r = make_pollfd(q);
	pthread_mutex_unlock(&q->recv_lock);
	return r < 0 ? r : q->pollfd;
}

EXPORT int ipcq_notify(ipcq_queue *q, int signo)
{
	struct notified_handle *node = NULL;
	struct proto_req req;
	struct reply_one ro;
	int r = check_owner(q);

	if (r < 0)
		return r;
	/* which signals may carry notifications is the daemon's to say */
	if (signo < 0 || signo > SIGRTMAX)
		return -EINVAL;
	if (signo > 0 && !(node = malloc(sizeof(*node))))
		return -ENOMEM;
	proto_req_init(&req, PROTO_OP_NOTIFY, 0, q->name);
	req.arg = signo;
	r = client_call(q->client, &req, &ro.rep, sizeof(ro), NULL);
	pthread_mutex_lock(&notified_lock);
	if (r == 0)
		notified_take(q);
	if (r == 0 && node) {
		node->q = q;
		node->next = notified;
		notified = TAKE_PTR(node);
	}
	pthread_mutex_unlock(&notified_lock);
	free(node);
	return r;
}

