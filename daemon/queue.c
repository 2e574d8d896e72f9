/*
 * queue.c - creating, adopting, opening and removing queues.
 *
 * A queue is two kernel objects: the POSIX mq (inline messages and ring
 * descriptors) and the shm ring (bulk payloads, receive slots, counters).
 * Creation makes the ring first and the mq last, so the mq's existence
 * means the queue is whole; adoption after a restart finds the mq and
 * validates the ring's header and geometry before using it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "log.h"
#include "queue.h"
#include "util.h"

struct queue *queue_find(struct daemon *d, const char *name)
{
	for (struct queue *q = d->queues; q; q = q->next)
		if (strcmp(q->name, name) == 0)
			return q;
	return NULL;
}

static struct ring_geometry ring_geo_of(const ipcq_geometry *geo, enum delivery_mode delivery)
{
	return (struct ring_geometry){ .data_size = geo->ring_size,
		                       .max_payload = geo->max_payload,
		                       .msg_size = geo->msg_size,
		                       .delivery = (uint32_t)delivery };
}

static int map_fd(int fd, size_t len, void **out)
{
	void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (mem == MAP_FAILED)
		return -errno;
	*out = mem;
	return 0;
}

/* Map an existing ring and check it is ours and has the expected shape. */
static int ring_adopt(const char *shm_name, const struct ring_geometry *rg, struct ring *r, char *errbuf,
                      size_t errcap)
{
	_cleanup_close_ int fd = shm_open(shm_name, O_RDWR | O_CLOEXEC, 0);
	struct stat st;
	void *mem = NULL;
	int ret;

	if (fd < 0) {
		ret = -errno;
		snprintf(errbuf, errcap, "its ring %s cannot be opened: %s", shm_name, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)RING_HDR_SIZE) {
		snprintf(errbuf, errcap, "its ring %s is truncated", shm_name);
		return -EINVAL;
	}
	ret = map_fd(fd, (size_t)st.st_size, &mem);
	if (ret < 0) {
		snprintf(errbuf, errcap, "cannot map its ring: %s", strerror(-ret));
		return ret;
	}
	ret = ring_attach(r, mem, (size_t)st.st_size);
	if (ret == -EPROTO)
		snprintf(errbuf, errcap, "its ring %s is not an ipcbroker ring of version %u", shm_name, RING_VERSION);
	else if (ret < 0)
		snprintf(errbuf, errcap, "its ring %s has an invalid layout", shm_name);
	else if (!ring_geometry_equal(r, rg)) {
		snprintf(errbuf, errcap,
		         "the existing ring has ring_size %llu, max_payload %llu, msg_size %u but the config "
		         "asks for %llu, %llu, %u: restore the config, or delete the queue (ipcq delete) to "
		         "recreate it",
		         (unsigned long long)r->data_size, (unsigned long long)r->max_payload, r->msg_size,
		         (unsigned long long)rg->data_size, (unsigned long long)rg->max_payload, rg->msg_size);
		ret = -EEXIST;
	}
	if (ret < 0) {
		munmap(mem, (size_t)st.st_size);
		r->hdr = NULL;
	}
	return ret;
}

static int ring_make(const char *shm_name, const struct ring_geometry *rg, struct ring *r, char *errbuf,
                     size_t errcap)
{
	size_t len = ring_map_size(rg);
	_cleanup_close_ int fd = -1;
	void *mem = NULL;
	int ret;

	shm_unlink(shm_name); /* a ring without its mq is a leftover */
	fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		snprintf(errbuf, errcap, "cannot create the ring %s: %s", shm_name, strerror(-ret));
		return ret;
	}
	if (ftruncate(fd, (off_t)len) < 0) {
		ret = -errno;
		snprintf(errbuf, errcap, "cannot size the ring to %zu bytes: %s", len, strerror(-ret));
		shm_unlink(shm_name);
		return ret;
	}
	ret = map_fd(fd, len, &mem);
	if (ret == 0) {
		ret = ring_format(r, mem, len, rg);
		if (ret < 0)
			munmap(mem, len);
	}
	if (ret < 0) {
		snprintf(errbuf, errcap, "cannot set up the ring: %s", strerror(-ret));
		shm_unlink(shm_name);
	}
	return ret;
}

static int mq_make(struct daemon *d, const char *mq_name, const ipcq_geometry *geo, char *errbuf, size_t errcap)
{
	struct mq_attr attr = { .mq_maxmsg = geo->max_msgs, .mq_msgsize = geo->msg_size };
	mqd_t mq = mq_open(mq_name, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK | O_CLOEXEC, 0600, &attr);

	if (mq == (mqd_t)-1) {
		int e = errno;

		limits_explain(&d->limits, e, geo, errbuf, errcap);
		return -e;
	}
	return mq;
}

int queue_create(struct daemon *d, const char *name, const ipcq_geometry *geo, enum delivery_mode delivery,
                 bool adopt_only, char *errbuf, size_t errcap, struct queue **out)
{
	char mq_name[128], shm_name[128];
	struct ring_geometry rg = ring_geo_of(geo, delivery);
	_cleanup_free_ struct queue *q = NULL;
	struct mq_attr attr;
	const char *why;
	int ret;

	errbuf[0] = '\0';
	if (ring_geometry_check(&rg, &why) < 0 || geo->max_msgs == 0) {
		snprintf(errbuf, errcap, "invalid geometry: %s", why ? why : "max_msgs must be at least 1");
		return -EINVAL;
	}
	if (proto_object_name(mq_name, sizeof(mq_name), d->ns, name, NULL) < 0 ||
	    proto_object_name(shm_name, sizeof(shm_name), d->ns, name, ".ring") < 0) {
		snprintf(errbuf, errcap, "invalid queue name");
		return -EINVAL;
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	snprintf(q->name, sizeof(q->name), "%s", name);
	q->geo = *geo;
	q->delivery = delivery;

	q->mq = mq_open(mq_name, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (q->mq != (mqd_t)-1) {
		/* it exists: adopt it with its messages */
		if (mq_getattr(q->mq, &attr) == 0 &&
		    ((uint64_t)attr.mq_msgsize != geo->msg_size || (uint64_t)attr.mq_maxmsg != geo->max_msgs)) {
			snprintf(errbuf, errcap,
			         "the existing message queue has max_msgs %ld, msg_size %ld but the config asks for "
			         "%u, %u: restore the config, or delete the queue (ipcq delete) to recreate it",
			         attr.mq_maxmsg, attr.mq_msgsize, geo->max_msgs, geo->msg_size);
			mq_close(q->mq);
			return -EEXIST;
		}
		ret = ring_adopt(shm_name, &rg, &q->ring, errbuf, errcap);
		if (ret < 0) {
			mq_close(q->mq);
			return ret;
		}
		log_info("queue %s: adopted (%ld messages waiting, %llu ring bytes in use)", name,
		         mq_getattr(q->mq, &attr) == 0 ? attr.mq_curmsgs : -1L,
		         (unsigned long long)ring_bytes_used(&q->ring));
	} else if (errno != ENOENT) {
		snprintf(errbuf, errcap, "cannot open the message queue %s: %s", mq_name, strerror(errno));
		return -errno;
	} else if (adopt_only) {
		snprintf(errbuf, errcap, "its message queue %s no longer exists", mq_name);
		return -ENOENT;
	} else {
		ret = ring_make(shm_name, &rg, &q->ring, errbuf, errcap);
		if (ret < 0)
			return ret;
		ret = mq_make(d, mq_name, geo, errbuf, errcap);
		if (ret < 0) {
			munmap(q->ring.hdr, q->ring.map_len);
			shm_unlink(shm_name);
			return ret;
		}
		q->mq = ret;
		log_info("queue %s: created (max_msgs %u, msg_size %u, ring %llu, max_payload %llu)", name,
		         geo->max_msgs, geo->msg_size, (unsigned long long)geo->ring_size,
		         (unsigned long long)geo->max_payload);
	}
	q->id = ++d->next_queue_id;
	q->next = d->queues;
	d->queues = q;
	d->n_queues++;
	if (out)
		*out = q;
	q = NULL;
	return 0;
}

/* The queue is being deleted: its messages go, and every receiver blocked
 * on it (one per claimed receive slot, at most the mq's depth) gets a
 * CLOSED message instead of waiting forever; later calls see the flag. */
static void wake_receivers(struct queue *q)
{
	struct proto_msg_hdr closed = { .kind = PROTO_MSG_CLOSED };
	unsigned waiting;

	atomic_store_explicit(&q->ring.hdr->deleted, 1, memory_order_release);
	queue_purge(q);
	waiting = ring_receivers(&q->ring);
	for (unsigned i = 0; i < waiting && i < q->geo.max_msgs; i++)
		if (mq_send(q->mq, (const char *)&closed, sizeof(closed), 0) < 0)
			break;
}

void queue_destroy(struct daemon *d, struct queue *q, bool unlink_objects)
{
	for (struct queue **pp = &d->queues; *pp; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			d->n_queues--;
			break;
		}
	}
	if (unlink_objects) {
		char name[128];

		wake_receivers(q);
		if (proto_object_name(name, sizeof(name), d->ns, q->name, NULL) >= 0)
			mq_unlink(name);
		if (proto_object_name(name, sizeof(name), d->ns, q->name, ".ring") >= 0)
			shm_unlink(name);
	}
	if (q->ring.hdr)
		munmap(q->ring.hdr, q->ring.map_len);
	mq_close(q->mq);
	free(q);
}

int queue_open_fds(struct daemon *d, struct queue *q, int flags, int *mq_fd, int *ring_fd)
{
	char name[128];
	int mode = O_RDWR;
	int ret;
	mqd_t mq;

	/* least privilege: a sender's descriptor cannot receive, and back */
	if ((flags & (IPCQ_SEND | IPCQ_RECV)) == IPCQ_SEND)
		mode = O_WRONLY;
	else if ((flags & (IPCQ_SEND | IPCQ_RECV)) == IPCQ_RECV)
		mode = O_RDONLY;
	ret = proto_object_name(name, sizeof(name), d->ns, q->name, NULL);
	if (ret < 0)
		return ret;
	/* a new open file description per client: its flags are its own */
	mq = mq_open(name, mode | O_CLOEXEC);
	if (mq == (mqd_t)-1)
		return -errno;
	ret = proto_object_name(name, sizeof(name), d->ns, q->name, ".ring");
	if (ret >= 0) {
		ret = shm_open(name, O_RDWR | O_CLOEXEC, 0);
		if (ret < 0)
			ret = -errno;
	}
	if (ret < 0) {
		mq_close(mq);
		return ret;
	}
	*mq_fd = mq;
	*ring_fd = ret;
	return 0;
}

int queue_purge(struct queue *q)
{
	unsigned char *buf = malloc(q->geo.msg_size);
	int n = 0;
	ssize_t len;

	if (!buf)
		return -ENOMEM;
	while ((len = mq_receive(q->mq, (char *)buf, q->geo.msg_size, NULL)) >= 0) {
		if (proto_msg_check(buf, (size_t)len) == PROTO_MSG_RING) {
			struct proto_ring_desc desc;

			memcpy(&desc, buf, sizeof(desc));
			ring_take_for_purge(&q->ring, &desc);
		}
		n++;
	}
	free(buf);
	return n;
}

void queue_stats(struct queue *q, ipcq_stats *st)
{
	struct mq_attr attr;

	memset(st, 0, sizeof(*st));
	snprintf(st->name, sizeof(st->name), "%s", q->name);
	st->geo = q->geo;
	st->id = q->id;
	if (mq_getattr(q->mq, &attr) == 0)
		st->depth = (uint32_t)attr.mq_curmsgs;
	ring_fill_stats(&q->ring, st);
}

struct reclaim_ctx {
	struct queue *q;
	pid_t dead;
};

static bool pid_is_dead(pid_t pid, void *ctx)
{
	const struct reclaim_ctx *rc = ctx;

	/* pid 0 marks a redelivery left half done */
	if (pid == 0 || pid == rc->dead)
		return true;
	return kill(pid, 0) < 0 && errno == ESRCH;
}

static int resend(const void *msg, size_t len, unsigned prio, void *ctx)
{
	const struct reclaim_ctx *rc = ctx;

	/* never block the event loop: a full mq is retried on the next sweep */
	if (mq_send(rc->q->mq, msg, len, prio) < 0)
		return -errno;
	return 0;
}

int queue_reclaim(struct queue *q, pid_t dead)
{
	struct reclaim_ctx rc = { .q = q, .dead = dead };
	struct ring_reclaim_ops ops = { .is_dead = pid_is_dead, .resend = resend, .ctx = &rc };
	int n = ring_reclaim(&q->ring, &ops, 50);

	if (n > 0)
		log_info("queue %s: reclaimed %d chunks and slots from dead clients", q->name, n);
	else if (n == -ETIMEDOUT)
		log_warning("queue %s: ring lock busy, reclaim postponed", q->name);
	return n;
}
