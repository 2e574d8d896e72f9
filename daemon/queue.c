/* SPDX-License-Identifier: Apache-2.0 */
/*
 * queue.c - creating, adopting, opening and removing queues.
 *
 * A queue is four kernel objects: the POSIX mq (inline messages and ring
 * descriptors); the ring's control object (chunk states, receive slots,
 * the backlog's levels, counters), which every client of the queue maps
 * read-write; the ring's data object (chunk headers, payloads, head and
 * tail), which senders map read-write and receive-only clients read-only
 * (the daemon opens it O_RDONLY for them, ring.c); and the shm meta page
 * (proto.h), which only the daemon writes: deletion and quarantine are
 * announced there, where no client can forge them.
 *
 * Ownership.  Object names are global to the IPC namespace: any local user
 * may create one first, and a daemon that took such an object for its own
 * would hand its clients' messages to whoever made it.  So:
 *  - every name carries a random token, drawn when the queue is created
 *    and kept in the daemon's registry (mode 0600), so nobody can claim a
 *    name before the daemon uses it, and two daemons never share one;
 *  - creation is exclusive (O_EXCL, mode 0600): an existing object under
 *    a fresh name is somebody else's, logged with its owner, and the
 *    daemon draws another token;
 *  - adoption after a restart takes only objects owned by the daemon's
 *    uid with mode 0600 and a valid header; what belongs to someone else
 *    is refused loudly and left alone, and what is ours but fails a check
 *    is quarantined, so that purge and delete still work on it.
 * Creation makes the ring's objects and the meta page first and the mq
 * last, so the mq's existence means the queue is whole.  The ring's memory is reserved
 * when it is made (posix_fallocate): a full /dev/shm is a clear error at
 * create, never a SIGBUS in the daemon or a client later.
 *
 * Quarantine.  Every client of a queue can write its ring, so the daemon
 * treats the ring as hostile input (see ring.c).  When a check fails, the
 * queue is quarantined: logged once with what failed, counted, no longer
 * touched by the daemon, refused to new clients (-EIO); purge gives it new
 * objects and delete removes it, neither of which reads the old ring.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "aside.h"
#include "backlog.h"
#include "inject.h"
#include "log.h"
#include "notify.h"
#include "peer.h"
#include "queue.h"
#include "shmguard.h"
#include "util.h"

/* fresh tokens tried when an exclusive create finds its name taken */
#define CREATE_ATTEMPTS 3

struct queue *queue_find(struct daemon *d, const char *name)
{
	for (struct queue *q = d->queues; q; q = q->next)
		if (strcmp(q->rec.name, name) == 0)
			return q;
	return NULL;
}

/* A lane's geometry (lane.c), and the queue's own ring's when its
 * senders share it. */
static struct ring_geometry ring_geo_of(const struct queue_record *rec)
{
	return (struct ring_geometry){ .data_size = rec->geo.ring_size,
		                       .max_payload = rec->geo.max_payload,
		                       .msg_size = rec->geo.msg_size,
		                       .delivery = (uint32_t)rec->delivery };
}

/* The queue's own ring's: with lanes, the smallest (proto_home_ring_size). */
static struct ring_geometry home_geo_of(const struct queue_record *rec)
{
	struct ring_geometry g = ring_geo_of(rec);

	g.data_size = proto_home_ring_size(&rec->geo);
	g.max_payload = proto_home_max_payload(&rec->geo);
	return g;
}

int queue_object_name(const struct daemon *d, const struct queue_record *rec, const char *suffix,
                      char buf[PROTO_OBJ_NAME_MAX])
{
	return proto_object_name(buf, PROTO_OBJ_NAME_MAX, d->ns, rec->name, rec->token, suffix);
}

static int draw_token(char token[PROTO_TOKEN_LEN + 1])
{
	uint8_t raw[PROTO_TOKEN_LEN / 2];

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -errno;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(token + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

/* An exclusive create found the fresh name taken: log it with the owner
 * of the object (/dev/shm and, when mounted, /dev/mqueue show them as
 * files).  Passes ret through. */
static int log_squatter(int ret, const struct queue *q, const char *dir, const char *name)
{
	char path[PROTO_OBJ_NAME_MAX + 16], owner[64] = "owner unknown";
	struct stat st;

	if (ret != -EEXIST)
		return ret;
	snprintf(path, sizeof(path), "%s%s", dir, name);
	if (stat(path, &st) == 0)
		snprintf(owner, sizeof(owner), "uid %u, mode %04o", (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	log_warning("queue %s: %s exists already (%s) though its name is new: not ours, not used", q->rec.name, name,
	            owner);
	return ret;
}

/* An object to adopt must be what this daemon would have made. */
int queue_check_owned(const struct daemon *d, int fd, const char *what, const char *name, char *errbuf,
                      size_t errcap)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		int ret = -errno;

		snprintf(errbuf, errcap, "cannot stat its %s %s: %s", what, name, strerror(-ret));
		return ret;
	}
	/* ours from before run_as (privilege.c): taken over */
	if (st.st_uid != d->uid && d->migrating && st.st_uid == d->migrate_uid && (st.st_mode & 07777) == 0600 &&
	    fchown(fd, d->uid, (gid_t)-1) == 0) {
		st.st_uid = d->uid;
		log_info("%s %s: taken over from uid %u", what, name, (unsigned)d->migrate_uid);
	}
	if (st.st_uid != d->uid || (st.st_mode & 07777) != 0600) {
		snprintf(errbuf, errcap,
		         "its %s %s is owned by uid %u with mode %04o, not by this daemon's uid %u with mode 0600: "
		         "someone else made it; it is left alone and not used",
		         what, name, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), (unsigned)d->uid);
		return -EPERM;
	}
	return 0;
}

/* Every mapping of a queue's objects is guarded (shmguard.h): a client
 * that truncates one cannot end the daemon with a SIGBUS. */
static int map_fd(int fd, size_t len, void **out)
{
	void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (mem == MAP_FAILED)
		return -errno;
	if (shmguard_add(mem, len) < 0) {
		munmap(mem, len);
		return -ENOMEM;
	}
	*out = mem;
	return 0;
}

static void unmap_fd(void *mem, size_t len)
{
	shmguard_remove(mem);
	munmap(mem, len);
}

void queue_ring_unmap(struct ring *r)
{
	if (r->hdr)
		unmap_fd(r->hdr, r->map_len);
	if (r->sp)
		unmap_fd(r->sp, r->data_map_len);
	r->hdr = NULL;
	r->sp = NULL;
}

/* Map an object of ours of a queue being adopted: it must be owned by the
 * daemon's uid with mode 0600 (else -EPERM) and have size bytes (else
 * -EBADMSG).  -ENOENT when it does not exist. */
static int map_owned(const struct daemon *d, const char *name, const char *what, size_t size, void **out,
                     char *errbuf, size_t errcap)
{
	_cleanup_close_ int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
	struct stat st;
	int ret;

	if (fd < 0) {
		ret = -errno;
		snprintf(errbuf, errcap, "its %s %s cannot be opened: %s", what, name, strerror(-ret));
		return ret;
	}
	ret = queue_check_owned(d, fd, what, name, errbuf, errcap);
	if (ret < 0)
		return ret;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != size) {
		snprintf(errbuf, errcap, "its %s %s has %lld bytes, not the %zu it should", what, name,
		         (long long)st.st_size, size);
		return -EBADMSG;
	}
	ret = map_fd(fd, size, out);
	if (ret < 0)
		snprintf(errbuf, errcap, "cannot map its %s: %s", what, strerror(-ret));
	return ret;
}

/* Map our ring of a queue being adopted (its control and data objects)
 * and check its headers. */
static int ring_adopt(const struct daemon *d, const char *ctl_name, const char *data_name,
                      const struct ring_geometry *rg, struct ring *r, char *errbuf, size_t errcap)
{
	size_t len = ring_map_size(rg), data_len = ring_data_map_size(rg);
	void *mem = NULL, *data = NULL;
	int ret = map_owned(d, ctl_name, "ring", len, &mem, errbuf, errcap);

	if (ret < 0)
		return ret;
	ret = map_owned(d, data_name, "ring data", data_len, &data, errbuf, errcap);
	if (ret < 0) {
		unmap_fd(mem, len);
		return ret;
	}
	ret = ring_attach(r, mem, len, data, data_len, true);
	if (ret < 0 || !ring_geometry_equal(r, rg) || r->delivery != rg->delivery) {
		snprintf(errbuf, errcap, "its ring %s has a header that is not the one this daemon made", ctl_name);
		unmap_fd(mem, len);
		unmap_fd(data, data_len);
		r->hdr = NULL;
		r->sp = NULL;
		return -EBADMSG;
	}
	return 0;
}

int queue_ring_adopt(const struct daemon *d, const struct queue *q, const char *ctl_name, const char *data_name,
                     struct ring *r, char *errbuf, size_t errcap)
{
	struct ring_geometry rg = ring_geo_of(&q->rec);

	return ring_adopt(d, ctl_name, data_name, &rg, r, errbuf, errcap);
}

/* Make an object of len bytes, all of it reserved, and map it; -EEXIST
 * when the name is taken (and nothing is said in errbuf). */
static int shm_make(const char *name, const char *what, size_t len, void **out, char *errbuf, size_t errcap)
{
	_cleanup_close_ int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int ret;

	if (fd < 0) {
		ret = -errno;
		if (ret != -EEXIST)
			snprintf(errbuf, errcap, "cannot create the %s %s: %s", what, name, strerror(-ret));
		return ret;
	}
	/* exactly 0600 whatever the umask: adoption will insist on it */
	if (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)len) < 0) {
		ret = -errno;
		snprintf(errbuf, errcap, "cannot size the %s to %zu bytes: %s", what, len, strerror(-ret));
		goto fail;
	}
	/* all of it now: a sparse object would SIGBUS whoever first touches
	 * a page that /dev/shm has no room for */
	ret = -posix_fallocate(fd, 0, (off_t)len);
	if (ret == -ENOSPC || ret == -ENOMEM) {
		struct statvfs vfs;

		if (fstatvfs(fd, &vfs) == 0)
			snprintf(errbuf, errcap,
			         "no room for a %s of %zu bytes: /dev/shm has %llu bytes free (a smaller "
			         "ring_size, or a larger /dev/shm)",
			         what, len, (unsigned long long)vfs.f_bavail * vfs.f_frsize);
		else
			snprintf(errbuf, errcap, "no room in /dev/shm for a %s of %zu bytes", what, len);
		ret = -ENOSPC;
		goto fail;
	}
	if (ret < 0) {
		snprintf(errbuf, errcap, "cannot reserve %zu bytes for the %s: %s", len, what, strerror(-ret));
		goto fail;
	}
	ret = map_fd(fd, len, out);
	if (ret == 0)
		return 0;
	snprintf(errbuf, errcap, "cannot map the %s: %s", what, strerror(-ret));
fail:
	shm_unlink(name);
	return ret;
}

/* Make and format a new ring: its control object, read-write for every
 * client, and its data object, read-only for receive-only clients. */
static int ring_make(const struct queue *q, const char *ctl_name, const char *data_name,
                     const struct ring_geometry *rg, struct ring *r, char *errbuf, size_t errcap)
{
	size_t len = ring_map_size(rg), data_len = ring_data_map_size(rg);
	void *mem = NULL, *data = NULL;
	int ret = log_squatter(shm_make(ctl_name, "ring", len, &mem, errbuf, errcap), q, "/dev/shm", ctl_name);

	if (ret < 0)
		return ret;
	ret = log_squatter(shm_make(data_name, "ring data", data_len, &data, errbuf, errcap), q, "/dev/shm",
	                   data_name);
	if (ret == 0) {
		ret = ring_format(r, mem, len, data, data_len, rg);
		if (ret < 0) {
			snprintf(errbuf, errcap, "cannot set up the ring: %s", strerror(-ret));
			unmap_fd(data, data_len);
			shm_unlink(data_name);
		}
	}
	if (ret < 0) {
		unmap_fd(mem, len);
		shm_unlink(ctl_name);
	}
	return ret;
}

int queue_ring_make(const struct queue *q, const char *ctl_name, const char *data_name, struct ring *r,
                    char *errbuf, size_t errcap)
{
	struct ring_geometry rg = ring_geo_of(&q->rec);

	return ring_make(q, ctl_name, data_name, &rg, r, errbuf, errcap);
}

int queue_lane_names(const struct daemon *d, const struct queue_record *rec, unsigned id,
                     char ctl[PROTO_OBJ_NAME_MAX], char data[PROTO_OBJ_NAME_MAX])
{
	char suffix[24];
	int ret;

	snprintf(suffix, sizeof(suffix), ".l%u", id);
	ret = queue_object_name(d, rec, suffix, ctl);
	snprintf(suffix, sizeof(suffix), ".l%u.data", id);
	return ret < 0 ? ret : queue_object_name(d, rec, suffix, data);
}

static void meta_unmap(struct proto_meta **m)
{
	if (*m)
		unmap_fd(*m, PROTO_META_SIZE);
	*m = NULL;
}

static void meta_fill(struct proto_meta *m, const struct queue_record *rec)
{
	m->version = PROTO_META_VERSION;
	m->delivery = (uint32_t)rec->delivery;
	m->geo = proto_meta_geo(&rec->geo);
	m->isolated = rec->geo.senders == IPCQ_SENDERS_ISOLATED;
	atomic_store(&m->deleted, 0);
	atomic_store(&m->quarantined, 0);
	atomic_thread_fence(memory_order_release);
	m->magic = PROTO_META_MAGIC;
}

/* Make the meta page; -EEXIST when the name is taken. */
static int meta_make(const char *name, const struct queue_record *rec, struct proto_meta **out, char *errbuf,
                     size_t errcap)
{
	_cleanup_close_ int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	void *mem = NULL;
	int ret;

	if (fd < 0) {
		ret = -errno;
		if (ret != -EEXIST)
			snprintf(errbuf, errcap, "cannot create the meta page %s: %s", name, strerror(-ret));
		return ret;
	}
	ret = fchmod(fd, 0600) < 0 || ftruncate(fd, PROTO_META_SIZE) < 0 ? -errno
	                                                                 : -posix_fallocate(fd, 0, PROTO_META_SIZE);
	if (ret == 0)
		ret = map_fd(fd, PROTO_META_SIZE, &mem);
	if (ret < 0) {
		snprintf(errbuf, errcap, "cannot set up the meta page %s: %s", name, strerror(-ret));
		shm_unlink(name);
		return ret;
	}
	meta_fill(mem, rec);
	*out = mem;
	return 0;
}

/* Map our meta page of a queue being adopted and check it; a queue made
 * before meta pages gets one now. */
static int meta_adopt(const struct daemon *d, const char *name, const struct queue_record *rec,
                      struct proto_meta **out, char *errbuf, size_t errcap)
{
	void *mem = NULL;
	struct proto_meta *m;
	int ret = map_owned(d, name, "meta page", PROTO_META_SIZE, &mem, errbuf, errcap);

	if (ret == -ENOENT) {
		errbuf[0] = '\0';
		return meta_make(name, rec, out, errbuf, errcap);
	}
	if (ret < 0)
		return ret;
	m = mem;
	if (m->magic != PROTO_META_MAGIC || m->version != PROTO_META_VERSION ||
	    !proto_meta_geo_is(&m->geo, &rec->geo) || m->delivery != (uint32_t)rec->delivery ||
	    m->isolated != (rec->geo.senders == IPCQ_SENDERS_ISOLATED)) {
		snprintf(errbuf, errcap, "its meta page %s does not say what this daemon wrote", name);
		unmap_fd(mem, PROTO_META_SIZE);
		return -EBADMSG;
	}
	*out = m;
	return 0;
}

static int mq_make(struct daemon *d, const char *mq_name, const ipcq_geometry *geo, char *errbuf, size_t errcap)
{
	struct mq_attr attr = { .mq_maxmsg = geo->max_msgs, .mq_msgsize = geo->msg_size };
	mqd_t mq = mq_open(mq_name, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK | O_CLOEXEC, 0600, &attr);

	if (mq == (mqd_t)-1) {
		int e = errno;

		if (e != EEXIST)
			limits_explain(&d->limits, e, geo, errbuf, errcap);
		return -e;
	}
	/* exactly 0600 whatever the umask: adoption will insist on it */
	if (fchmod(mq, 0600) < 0) {
		int e = errno;

		snprintf(errbuf, errcap, "cannot set the mode of %s: %s", mq_name, strerror(e));
		mq_close(mq);
		mq_unlink(mq_name);
		return -e;
	}
	return mq;
}

/* The queue's bell (backlog.c): an eventfd readable while its backlog is
 * not empty, passed to every client, so that ipcq_fd() polls readable
 * when messages wait beyond an empty window.  Not a named object: after a
 * restart the daemon makes a new one and rings it if a backlog waits;
 * clients of before keep theirs (the sweep's nudge covers the gap). */
static void bell_make(struct queue *q)
{
	q->bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->bell < 0)
		log_warning("queue %s: no bell (eventfd: %s): it cannot be opened", q->rec.name, strerror(errno));
	q->ring.bell = q->bell;
	if (q->ring.hdr && backlog_queue_busy(&q->ring))
		eventfd_level(q->bell, true);
	for (unsigned id = 1; id <= PROTO_LANES_MAX; id++)
		if (q->lanes[id])
			q->lanes[id]->ring.bell = q->bell;
}

/* A duration for the log: "5m", "30s", "1500ms", "0 (none)". */
static const char *duration_text(uint32_t ms, char *buf, size_t cap)
{
	if (ms == 0)
		snprintf(buf, cap, "0 (none)");
	else if (ms % 3600000u == 0)
		snprintf(buf, cap, "%uh", ms / 3600000u);
	else if (ms % 60000u == 0)
		snprintf(buf, cap, "%um", ms / 60000u);
	else if (ms % 1000u == 0)
		snprintf(buf, cap, "%us", ms / 1000u);
	else
		snprintf(buf, cap, "%ums", ms);
	return buf;
}

void queue_apply_config(struct daemon *d, struct queue *q)
{
	uint32_t ms = config_queue_ack_timeout(d->cfg, config_find_queue(d->cfg, q->rec.name));
	char was[32], now[32];

	/* a reload that changes it says so (at-most-once queues ignore it) */
	if (q->id && q->ack_timeout_ms != ms && q->rec.delivery == DELIVERY_AT_LEAST_ONCE)
		log_info("queue %s: ack_timeout %s (was %s)", q->rec.name, duration_text(ms, now, sizeof(now)),
		         duration_text(q->ack_timeout_ms, was, sizeof(was)));
	q->ack_timeout_ms = ms;
	q->policy = config_queue_policy(d->cfg, config_find_queue(d->cfg, q->rec.name), &q->rec.opts, q->rec.name);
	if (q->meta) {
		/* (an adopted page may say a dead daemon's listeners wait) */
		atomic_store_explicit(&q->meta->listened, notify_listeners(q) > 0, memory_order_relaxed);
		atomic_store_explicit(&q->meta->ttl_ms, q->policy.ttl_ms, memory_order_relaxed);
		atomic_store_explicit(&q->meta->max_deliveries,
		                      q->rec.delivery == DELIVERY_AT_LEAST_ONCE ? q->policy.max_deliveries : 0,
		                      memory_order_relaxed);
	}
}

void queue_let_go(struct queue *q)
{
	if (queue_quarantined(q))
		return;
	if (q->ring.hdr)
		ring_let_go(&q->ring);
	for (unsigned id = 1; id <= PROTO_LANES_MAX; id++)
		if (queue_ring_of(q, id))
			ring_let_go(&q->lanes[id]->ring);
	if (q->meta)
		madvise(q->meta, PROTO_META_SIZE, MADV_DONTNEED);
}

static struct queue *queue_link(struct daemon *d, struct queue *q)
{
	queue_apply_config(d, q);
	bell_make(q);
	queue_let_go(q); /* what making or adopting it touched */
	q->id = ++d->next_queue_id;
	q->next = d->queues;
	d->queues = q;
	d->n_queues++;
	return q;
}

/* Both objects under the record's token; -EEXIST when a name is taken. */
static int make_objects(struct daemon *d, struct queue *q, char *errbuf, size_t errcap)
{
	char mq_name[PROTO_OBJ_NAME_MAX], shm_name[PROTO_OBJ_NAME_MAX], data_name[PROTO_OBJ_NAME_MAX],
	        meta_name[PROTO_OBJ_NAME_MAX];
	struct ring_geometry rg = home_geo_of(&q->rec);
	int ret;

	if (queue_object_name(d, &q->rec, NULL, mq_name) < 0 || queue_object_name(d, &q->rec, ".ring", shm_name) < 0 ||
	    queue_object_name(d, &q->rec, ".data", data_name) < 0 || queue_object_name(d, &q->rec, ".meta", meta_name) < 0) {
		snprintf(errbuf, errcap, "invalid queue name");
		return -EINVAL;
	}
	ret = ring_make(q, shm_name, data_name, &rg, &q->ring, errbuf, errcap);
	if (ret < 0)
		return ret;
	ret = log_squatter(meta_make(meta_name, &q->rec, &q->meta, errbuf, errcap), q, "/dev/shm", meta_name);
	if (ret < 0) {
		queue_ring_unmap(&q->ring);
		shm_unlink(shm_name);
		shm_unlink(data_name);
		return ret;
	}
	ret = log_squatter(mq_make(d, mq_name, &q->rec.geo, errbuf, errcap), q, "/dev/mqueue", mq_name);
	if (ret < 0) {
		queue_ring_unmap(&q->ring);
		meta_unmap(&q->meta);
		shm_unlink(shm_name);
		shm_unlink(data_name);
		shm_unlink(meta_name);
		return ret;
	}
	q->mq = ret;
	return 0;
}

int queue_new(struct daemon *d, const struct queue_record *rec, char *errbuf, size_t errcap, struct queue **out)
{
	_cleanup_free_ struct queue *q = NULL;
	const char *why;
	int ret = -EEXIST;

	errbuf[0] = '\0';
	if (proto_geometry_check(&rec->geo, &why) < 0) {
		snprintf(errbuf, errcap, "invalid geometry: %s", why);
		return -EINVAL;
	}
	if (!proto_queue_name_valid(rec->name)) {
		snprintf(errbuf, errcap, "invalid queue name");
		return -EINVAL;
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->rec = *rec;
	for (int attempt = 0; ret == -EEXIST && attempt < CREATE_ATTEMPTS; attempt++) {
		ret = draw_token(q->rec.token);
		if (ret == 0)
			ret = make_objects(d, q, errbuf, errcap);
	}
	if (ret == -EEXIST)
		snprintf(errbuf, errcap, "its kernel object names were taken %d times in a row", CREATE_ATTEMPTS);
	if (ret < 0)
		return ret;
	log_info("queue %s: created (max_msgs %u, msg_size %u, ring %" PRIu64 ", max_payload %" PRIu64
	         ", max_depth %" PRIu64 ", prefetch %u, uid %u)",
	         rec->name, rec->geo.max_msgs, rec->geo.msg_size, rec->geo.ring_size, rec->geo.max_payload,
	         rec->geo.max_depth, rec->geo.prefetch, (unsigned)rec->creator);
	*out = queue_link(d, TAKE_PTR(q));
	return 0;
}

int queue_adopt(struct daemon *d, const struct queue_record *rec, char *errbuf, size_t errcap, struct queue **out)
{
	char mq_name[PROTO_OBJ_NAME_MAX], shm_name[PROTO_OBJ_NAME_MAX], data_name[PROTO_OBJ_NAME_MAX],
	        meta_name[PROTO_OBJ_NAME_MAX];
	struct ring_geometry rg = home_geo_of(rec);
	_cleanup_free_ struct queue *q = NULL;
	struct mq_attr attr;
	const char *why;
	int ret;

	errbuf[0] = '\0';
	if (proto_geometry_check(&rec->geo, &why) < 0 || queue_object_name(d, rec, NULL, mq_name) < 0 ||
	    queue_object_name(d, rec, ".ring", shm_name) < 0 || queue_object_name(d, rec, ".data", data_name) < 0 ||
	    queue_object_name(d, rec, ".meta", meta_name) < 0) {
		snprintf(errbuf, errcap, "its registry record is invalid");
		return -EINVAL;
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->rec = *rec;
	q->mq = mq_open(mq_name, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (q->mq == (mqd_t)-1) {
		ret = -errno;
		snprintf(errbuf, errcap, "its message queue %s cannot be opened: %s", mq_name, strerror(-ret));
		return ret;
	}
	ret = queue_check_owned(d, q->mq, "message queue", mq_name, errbuf, errcap);
	if (ret == 0 && mq_getattr(q->mq, &attr) == 0 &&
	    ((uint64_t)attr.mq_msgsize != rec->geo.msg_size || (uint64_t)attr.mq_maxmsg != rec->geo.max_msgs)) {
		snprintf(errbuf, errcap, "its message queue has max_msgs %ld, msg_size %ld, not the %u, %u recorded",
		         attr.mq_maxmsg, attr.mq_msgsize, rec->geo.max_msgs, rec->geo.msg_size);
		ret = -EBADMSG;
	}
	if (ret == 0)
		ret = meta_adopt(d, meta_name, rec, &q->meta, errbuf, errcap);
	if (ret == 0)
		ret = ring_adopt(d, shm_name, data_name, &rg, &q->ring, errbuf, errcap);
	if (ret == -EPERM || ret == -ENOENT || (ret < 0 && ret != -EBADMSG)) {
		meta_unmap(&q->meta);
		mq_close(q->mq);
		return ret;
	}
	if (ret == 0)
		lanes_adopt(d, q);
	queue_link(d, q);
	if (ret == -EBADMSG) {
		queue_quarantine(d, q, errbuf);
	} else {
		aside_adopt(d, q);
		/* waiting: in the window and in the backlog (the ring's count, a
		 * hint, but never below what the window holds) */
		long window = mq_getattr(q->mq, &attr) == 0 ? attr.mq_curmsgs : 0;

		log_info("queue %s: adopted (%" PRIu64 " messages waiting, %" PRIu64 " ring bytes in use)", rec->name,
		         MAX(ring_depth(&q->ring), (uint64_t)window), ring_bytes_used(&q->ring));
	}
	*out = TAKE_PTR(q);
	return 0;
}

void queue_quarantine(struct daemon *d, struct queue *q, const char *why)
{
	if (queue_quarantined(q))
		return;
	snprintf(q->quarantine, sizeof(q->quarantine), "%s", why && *why ? why : "a check failed");
	if (q->meta)
		atomic_store_explicit(&q->meta->quarantined, 1, memory_order_release);
	d->quarantined++;
	log_queue(LOG_LEVEL_ERROR, q->rec.name,
	          "queue %s: quarantined: %s; its clients get errors until it is purged (new objects) or deleted",
	          q->rec.name, q->quarantine);
}

/* Take every message off the daemon's mq, releasing the ring chunks (in
 * the rings of their lanes) of those that are descriptors with release;
 * returns the messages taken.
 * Bounded: senders may go on sending while it runs, and the event loop
 * must not spin on them. */
static int mq_drain(struct queue *q, bool release)
{
	struct ring *home = q->ring.hdr ? &q->ring : NULL;
	unsigned char *buf = malloc(q->rec.geo.msg_size);
	unsigned max = 2 * q->rec.geo.max_msgs;
	unsigned n = 0, msgs = 0;
	ssize_t len;

	if (!buf)
		return -ENOMEM;
	while (n < max && (len = mq_receive(q->mq, (char *)buf, q->rec.geo.msg_size, NULL)) >= 0) {
		int kind = proto_msg_check(buf, (size_t)len);

		n++;
		if (kind == PROTO_MSG_INLINE)
			msgs++;
		if (release && kind == PROTO_MSG_RING) {
			struct proto_ring_desc desc;
			struct ring *ring;
			int got = 0;

			memcpy(&desc, buf, sizeof(desc));
			ring = queue_ring_of(q, desc.hdr.lane);
			if (ring)
				got = ring_take_for_purge(ring, &desc);
			if (got > 0)
				msgs += (unsigned)got;
		}
	}
	free(buf);
	if (home)
		window_taken(home, n);
	return (int)msgs;
}

/* The queue is being deleted: its messages go, and every receiver blocked
 * on it (one per claimed receive slot, at most the mq's depth) gets a
 * CLOSED message instead of waiting forever; later calls see the flag. */
static int wake_receivers(struct queue *q)
{
	struct proto_msg_hdr closed = { .kind = PROTO_MSG_CLOSED };
	unsigned waiting = q->rec.geo.max_msgs;
	int n;

	/* before the CLOSED messages: a receiver believes one only then */
	if (q->meta)
		atomic_store_explicit(&q->meta->deleted, 1, memory_order_release);
	if (q->ring.hdr)
		waiting = MIN(ring_receivers(&q->ring), waiting);
	/* the ring's chunks go with the ring: only the mq is emptied */
	n = mq_drain(q, false);
	for (unsigned i = 0; i < waiting; i++)
		if (mq_send(q->mq, (const char *)&closed, sizeof(closed), 0) < 0)
			break;
	return n;
}

static void unlink_objects(struct daemon *d, const struct queue_record *rec)
{
	char name[PROTO_OBJ_NAME_MAX];

	if (queue_object_name(d, rec, NULL, name) >= 0)
		mq_unlink(name);
	if (queue_object_name(d, rec, ".ring", name) >= 0)
		shm_unlink(name);
	if (queue_object_name(d, rec, ".data", name) >= 0)
		shm_unlink(name);
	if (queue_object_name(d, rec, ".meta", name) >= 0)
		shm_unlink(name);
}

static void queue_free(struct daemon *d, struct queue *q)
{
	lanes_free(d, q, false);
	lease_table_clear(&q->leases);
	free(q->aside.v);
	if (q->bell >= 0)
		close(q->bell);
	queue_ring_unmap(&q->ring);
	meta_unmap(&q->meta);
	if (q->mq != (mqd_t)-1)
		mq_close(q->mq);
	free(q);
}

void queue_destroy(struct daemon *d, struct queue *q, bool unlink)
{
	notify_queue_gone(d, q, unlink);
	for (struct queue **pp = &d->queues; *pp; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			d->n_queues--;
			break;
		}
	}
	if (unlink) {
		wake_receivers(q);
		lanes_free(d, q, true);
		unlink_objects(d, &q->rec);
	}
	aside_clear(d, q, unlink);
	queue_free(d, q);
}

/* A new descriptor of one of the queue's shm objects. */
static int open_shm(struct daemon *d, const struct queue *q, const char *suffix, int mode)
{
	char name[PROTO_OBJ_NAME_MAX];
	int fd, ret = queue_object_name(d, &q->rec, suffix, name);

	if (ret < 0)
		return ret;
	fd = shm_open(name, mode | O_CLOEXEC, 0);
	return fd < 0 ? -errno : fd;
}

void queue_guard_home(struct queue *q)
{
	static struct log_ratelimit restored;
	struct ring_hdr *h = q->ring.hdr;
	bool spoilt;

	if (!queue_isolated(q) || !h || queue_quarantined(q))
		return;
	spoilt = ring_header_restore(&q->ring);
	/* it holds no chunk: no count of its own backlog is true but 0 */
	if (atomic_load_explicit(&h->corrupt, memory_order_relaxed) ||
	    atomic_load_explicit(&h->backlog, memory_order_relaxed) ||
	    atomic_load_explicit(&h->returned, memory_order_relaxed)) {
		atomic_store_explicit(&h->corrupt, 0, memory_order_relaxed);
		atomic_store_explicit(&h->backlog, 0, memory_order_relaxed);
		atomic_store_explicit(&h->returned, 0, memory_order_relaxed);
		memset((void *)h->levels, 0, sizeof(h->levels));
		spoilt = true;
	}
	if (spoilt)
		log_limited(&restored, LOG_LEVEL_WARNING,
		            "queue %s: a client wrote over the queue's shared header: put right (its senders are "
		            "isolated: their messages are in their lanes)",
		            q->rec.name);
}

int queue_open_fds(struct daemon *d, struct queue *q, int flags, int fds[PROTO_OPEN_FDS])
{
	char name[PROTO_OBJ_NAME_MAX];
	int mode = O_RDWR;
	int ret;
	mqd_t mq;

	if (queue_quarantined(q) || !q->meta)
		return -EIO;
	queue_guard_home(q);
	/* least privilege: a sender's descriptor cannot receive, and back */
	if ((flags & (IPCQ_SEND | IPCQ_RECV)) == IPCQ_SEND)
		mode = O_WRONLY;
	else if ((flags & (IPCQ_SEND | IPCQ_RECV)) == IPCQ_RECV)
		mode = O_RDONLY;
	ret = queue_object_name(d, &q->rec, NULL, name);
	if (ret < 0)
		return ret;
	/* a new open file description per client: its flags are its own */
	mq = mq_open(name, mode | O_CLOEXEC);
	if (mq == (mqd_t)-1)
		return -errno;
	fds[0] = mq;
	fds[1] = open_shm(d, q, ".ring", O_RDWR);
	/* the daemon's page: clients can map it for reading only */
	fds[2] = open_shm(d, q, ".meta", O_RDONLY);
	fds[3] = q->bell >= 0 ? fcntl(q->bell, F_DUPFD_CLOEXEC, 3) : -EIO;
	if (fds[3] < 0 && q->bell >= 0)
		fds[3] = -errno;
	/* payloads and where they are: writable by senders alone */
	fds[4] = open_shm(d, q, ".data", (flags & IPCQ_SEND) && !queue_isolated(q) ? O_RDWR : O_RDONLY);
	for (int i = 1; i < PROTO_OPEN_FDS; i++) {
		if (fds[i] < 0) {
			ret = fds[i];
			for (int j = 0; j < PROTO_OPEN_FDS; j++)
				if (fds[j] >= 0)
					close(fds[j]);
			return ret;
		}
	}
	return 0;
}

/* A quarantined queue gets new objects: its old ring is not read again.
 * Clients that still hold the old ones get -EIDRM and open it anew. */
static int queue_rebuild(struct daemon *d, struct queue *q)
{
	struct queue *fresh = NULL;
	struct queue_record old = q->rec;
	char err[PROTO_ERRMSG_MAX];
	int n = 0, ret;

	/* the new objects first: the queue is never without them */
	ret = queue_new(d, &q->rec, err, sizeof(err), &fresh);
	if (ret < 0) {
		log_error("queue %s: cannot rebuild: %s", q->rec.name, err);
		return ret;
	}
	/* fresh took the list head; q keeps its place, with fresh's insides */
	d->queues = fresh->next;
	d->n_queues--;
	n = wake_receivers(q);
	lanes_free(d, q, true);
	unlink_objects(d, &old);
	queue_ring_unmap(&q->ring);
	meta_unmap(&q->meta);
	mq_close(q->mq);
	if (q->bell >= 0)
		close(q->bell);
	q->rec = fresh->rec;
	q->mq = fresh->mq;
	q->bell = fresh->bell;
	q->ring = fresh->ring;
	q->meta = fresh->meta;
	q->quarantine[0] = '\0';
	free(fresh);
	log_info("queue %s: rebuilt with new kernel objects (%d messages of the quarantined queue dropped)",
	         q->rec.name, n);
	registry_save(d);
	notify_queue_reset(d, q); /* its listeners stay, on the new mq */
	return n;
}

int queue_purge(struct daemon *d, struct queue *q)
{
	uint64_t n;
	int got;

	if (queue_quarantined(q))
		return queue_rebuild(d, q);
	got = mq_drain(q, true);
	if (got < 0)
		return got;
	n = (uint64_t)got + ring_purge_backlog(&q->ring);
	for (unsigned id = 1; id <= PROTO_LANES_MAX; id++)
		if (queue_ring_of(q, id))
			n += ring_purge_backlog(&q->lanes[id]->ring);
	atomic_store_explicit(&q->ring.hdr->lanes_backlog, 0, memory_order_relaxed);
	atomic_store_explicit(&q->ring.hdr->lanes_returned, 0, memory_order_relaxed);
	atomic_fetch_sub_explicit(&q->ring.hdr->depth, (int64_t)n, memory_order_relaxed);
	if (atomic_load_explicit(&q->ring.hdr->depth, memory_order_relaxed) < 0)
		atomic_store_explicit(&q->ring.hdr->depth, 0, memory_order_relaxed);
	/* (what the daemon keeps aside is not in depth) */
	n += aside_purge(d, q);
	notify_queue_reset(d, q); /* emptied by no receiver */
	return n > INT32_MAX ? INT32_MAX : (int)n;
}

/* A SIGBUS in the queue's shared memory (shmguard.h) quarantines it. */
static void check_guards(struct daemon *d, struct queue *q)
{
	if (queue_quarantined(q))
		return;
	if ((q->ring.hdr && (shmguard_faulted(q->ring.hdr) || shmguard_faulted(q->ring.sp))) ||
	    (q->meta && shmguard_faulted(q->meta)))
		queue_quarantine(d, q,
		                 "its shared memory was cut short under the daemon (an object truncated, "
		                 "or /dev/shm full)");
	for (unsigned id = 1; id <= PROTO_LANES_MAX && !queue_quarantined(q); id++) {
		struct ring *r = queue_ring_of(q, id);

		if (r && (shmguard_faulted(r->hdr) || shmguard_faulted(r->sp)))
			lane_retire(d, q, q->lanes[id],
			            "its shared memory was cut short under the daemon (an object truncated, or "
			            "/dev/shm full)");
	}
}

/* Bytes of memory an object holds now (pages, not its size), closing
 * its descriptor fd; 0 for none. */
static uint64_t held_bytes(int fd)
{
	struct stat st;
	uint64_t bytes;

	if (fd < 0)
		return 0;
	bytes = fstat(fd, &st) == 0 ? (uint64_t)st.st_blocks * 512u : 0;
	close(fd);
	return bytes;
}

/* Bytes of shared memory a queue's objects hold now, its lanes' too. */
static uint64_t queue_memory(struct daemon *d, const struct queue *q)
{
	static const char *const suffixes[] = { ".ring", ".data", ".meta" };
	uint64_t bytes = q->aside.bytes;

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
		bytes += held_bytes(open_shm(d, q, suffixes[i], O_RDONLY));
	for (unsigned id = 1; id <= PROTO_LANES_MAX; id++) {
		char ctl[PROTO_OBJ_NAME_MAX], data[PROTO_OBJ_NAME_MAX];

		if (!q->lanes[id] || q->lanes[id]->retired || queue_lane_names(d, &q->rec, id, ctl, data) < 0)
			continue;
		bytes += held_bytes(shm_open(ctl, O_RDONLY | O_CLOEXEC, 0));
		bytes += held_bytes(shm_open(data, O_RDONLY | O_CLOEXEC, 0));
	}
	return bytes;
}

void queue_stats(struct daemon *d, struct queue *q, ipcq_stats *st)
{
	struct mq_attr attr;

	memset(st, 0, sizeof(*st));
	snprintf(st->name, sizeof(st->name), "%s", q->rec.name);
	st->geo = q->rec.geo;
	st->id = q->id;
	st->delivery = (uint32_t)q->rec.delivery;
	st->quarantined = queue_quarantined(q);
	st->listeners = notify_listeners(q);
	st->ttl_ms = q->policy.ttl_ms;
	st->max_deliveries = q->rec.delivery == DELIVERY_AT_LEAST_ONCE ? q->policy.max_deliveries : 0;
	memcpy(st->dead_letter, q->policy.dead_letter, sizeof(st->dead_letter));
	check_guards(d, q);
	if (q->ring.hdr && !queue_quarantined(q)) {
		ring_fill_stats(&q->ring, st);
		for (unsigned id = 1; id <= PROTO_LANES_MAX; id++)
			if (queue_ring_of(q, id))
				ring_add_usage(&q->lanes[id]->ring, st);
	}
	st->memory = queue_memory(d, q);
	if (mq_getattr(q->mq, &attr) == 0) {
		st->window = (uint32_t)attr.mq_curmsgs;
		/* what the window holds is waiting, whatever a client did to
		 * the ring's counters */
		st->depth = MAX(st->depth, (uint64_t)st->window);
	}
}

struct reclaim_ctx {
	struct daemon *d;
	struct queue *q;
	/* the ring walked: the queue's own (lane 0) or a lane's, and its leases */
	struct ring *ring;
	struct lease_table *leases;
	unsigned lane;
	uint32_t dead;
	unsigned leases_taken_back;
	bool pressed; /* the ring is half full, or senders wait for room */
};

static bool holder_is_dead(uint32_t holder, void *ctx)
{
	const struct reclaim_ctx *rc = ctx;

	/* 0 marks a redelivery left half done */
	if (holder == 0 || holder == rc->dead)
		return true;
	return !peer_holder_alive(rc->d, holder);
}

static int resend(const void *msg, size_t len, unsigned prio, void *ctx)
{
	const struct reclaim_ctx *rc = ctx;

	/* never block the event loop: a full mq is retried on the next sweep */
	return window_put(&rc->q->ring, rc->q->mq, msg, len, prio);
}

static bool window_empty(void *ctx)
{
	const struct reclaim_ctx *rc = ctx;
	struct mq_attr attr;

	return mq_getattr(rc->q->mq, &attr) == 0 && attr.mq_curmsgs == 0;
}

/* Leases, in the periodic sweep's walk of an at-least-once queue with an
 * ack_timeout: the daemon's own record of when it first met each one
 * (lease.c), bounded by the chunks the ring can hold. */
static void sweep_walk_begin(void *ctx)
{
	struct reclaim_ctx *rc = ctx;
	struct queue *q = rc->q;

	rc->pressed = ring_bytes_used(rc->ring) >= rc->ring->data_size / 2 ||
	              atomic_load_explicit(&rc->ring->hdr->waiters, memory_order_relaxed) != 0;
	lease_walk_begin(rc->leases, q->rec.token, rc->ring->data_size / RING_ALIGN, q->ack_timeout_ms,
	                 now_ns(CLOCK_MONOTONIC) / 1000000u);
}

/* A lease its holder keeps this long, in a ring at least half full (or
 * with senders waiting for room), is moved aside if its holder allows it
 * (ring.c). */
#define ASIDE_AFTER_MS 1000u

static int sweep_lease_check(uint64_t offset, uint64_t word, unsigned deliveries, bool aside, void *ctx)
{
	struct reclaim_ctx *rc = ctx;
	uint64_t held;

	if (lease_walk_met_held(rc->leases, offset, word, deliveries, &held))
		return RING_LEASE_EXPIRED;
	if (aside && rc->pressed && held + LEASE_CLOCK_SLACK_MS >= ASIDE_AFTER_MS &&
	    !aside_full(&rc->q->aside, rc->q->rec.geo.ring_size))
		return RING_LEASE_MOVE;
	return RING_LEASE_KEEP;
}

static int sweep_move_aside(uint32_t holder, uint64_t offset, uint64_t gen, const struct ring_recview *msg,
                            unsigned prio, unsigned deliveries, uint64_t expires, void *ctx)
{
	struct reclaim_ctx *rc = ctx;

	return aside_keep(rc->d, rc->q, holder, proto_lane_offset(rc->lane, offset), gen, msg, prio, deliveries,
	                  expires);
}

static void sweep_unmove(uint32_t holder, uint64_t offset, uint64_t gen, void *ctx)
{
	struct reclaim_ctx *rc = ctx;

	aside_forget(rc->d, rc->q, holder, proto_lane_offset(rc->lane, offset), gen);
}

static void sweep_walk_end(bool whole, unsigned taken_back, void *ctx)
{
	struct reclaim_ctx *rc = ctx;

	lease_walk_end(rc->leases, whole);
	rc->leases_taken_back += taken_back;
}

int queue_dead_letter(struct daemon *d, struct queue *q, const struct ring_recview *msgs, unsigned n, unsigned prio)
{
	static struct log_ratelimit missing;
	const char *name = q->policy.dead_letter;
	struct queue *dlq;

	if (!name[0])
		return 0;
	dlq = queue_find(d, name);
	if (!dlq || dlq == q) {
		log_limited(&missing, LOG_LEVEL_WARNING, "queue %s: dead-letter queue %s does not exist: %u messages dropped",
		            q->rec.name, name, n);
		return 0;
	}
	return inject_write(dlq, queue_daemon_ring(d, dlq), msgs, n, prio, 0, 0);
}

/* What receivers gave up for good, in the periodic sweep. */
static int sweep_dead_letter(const struct ring_recview *msgs, unsigned n, unsigned prio, void *ctx)
{
	struct reclaim_ctx *rc = ctx;

	return queue_dead_letter(rc->d, rc->q, msgs, n, prio);
}

/* The rings of q to walk: its own, then its lanes' (NULL: none). */
static struct ring *ring_at(struct queue *q, unsigned id)
{
	return id == 0 ? &q->ring : queue_ring_of(q, id);
}

/* The chunk counts a sweep at rest saw of ring id of q (made). */
static struct ring_rest *rest_of(struct queue *q, unsigned id)
{
	return id ? &q->lanes[id]->rest : &q->rest;
}

/* The periodic sweep's look at the window beside the backlog.
 *  - An empty window beside a backlog two sweeps running means the sender
 *    that would have moved it died (backlog.c): a nudge wakes a receiver,
 *    which takes from the backlog.  The daemon never moves messages.
 *  - depth, the chunk counts and the lanes' backlog count are bookkeeping
 *    clients keep; a client killed between a step and its count leaves
 *    them off.  When the queue is at rest (nothing in the window, the
 *    backlogs or the rings' waiting chunks) and two sweeps running saw
 *    the same figures, depth is put to 0 and each chunk count to what the
 *    walk counted, each by a compare-and-swap from the figure seen, so a
 *    client's move in between wins. */
static void sweep_window(struct queue *q)
{
	struct proto_msg_hdr nudge = { .kind = PROTO_MSG_NUDGE };
	struct ring_hdr *h = q->ring.hdr;
	struct ring_census census[PROTO_LANES_MAX + 1];
	uint64_t backlog = 0, lanes_sum = 0, lanes_backlog, chunks[PROTO_LANES_MAX + 1];
	bool at_rest, same = true, fixed = true;
	struct mq_attr attr;
	int64_t depth, window;

	if (mq_getattr(q->mq, &attr) < 0)
		return;
	for (unsigned id = 0; id <= PROTO_LANES_MAX; id++) {
		struct ring *r = ring_at(q, id);

		uint64_t n = r ? MIN(atomic_load_explicit(&r->hdr->backlog, memory_order_relaxed), UINT32_MAX) : 0;

		backlog += n;
		lanes_sum += id ? n : 0;
	}
	/* (a receiver awake takes from the backlog itself: only one asleep
	 * in the kernel needs the nudge) */
	if (attr.mq_curmsgs == 0 && backlog > 0 && backlog_sleepers(&q->ring, NULL)) {
		if (++q->stuck_sweeps >= 2 && window_put(&q->ring, q->mq, &nudge, sizeof(nudge), 0) == 0) {
			q->stuck_sweeps = 0;
			notify_queue_nudged(q); /* a window message no receiver counts */
		}
	} else {
		q->stuck_sweeps = 0;
	}
	depth = atomic_load_explicit(&h->depth, memory_order_relaxed);
	lanes_backlog = atomic_load_explicit(&h->lanes_backlog, memory_order_relaxed);
	/* the lanes' backlog count below what their own counts say, two
	 * sweeps running (a client wrote over it, or died between the two
	 * counts): receivers would not look there; put right, and the bell
	 * rung for those asleep */
	if (lanes_backlog < lanes_sum && q->low_lanes_backlog == lanes_backlog && q->low_lanes_sum == lanes_sum) {
		if (atomic_compare_exchange_strong_explicit(&h->lanes_backlog, &lanes_backlog, lanes_sum,
		                                            memory_order_seq_cst, memory_order_relaxed))
			eventfd_level(q->bell, true);
		lanes_backlog = atomic_load_explicit(&h->lanes_backlog, memory_order_relaxed);
	}
	q->low_lanes_backlog = lanes_backlog < lanes_sum ? lanes_backlog : UINT64_MAX;
	q->low_lanes_sum = lanes_sum;
	/* the window's count, left high by a sender killed between its count
	 * and its send (backlog.h, window_counted), is put right here too */
	window = atomic_load_explicit(&h->window_msgs, memory_order_relaxed);
	at_rest = attr.mq_curmsgs == 0 && backlog == 0;
	for (unsigned id = 0; id <= PROTO_LANES_MAX && at_rest; id++) {
		struct ring *r = ring_at(q, id);
		struct ring_rest *rest;

		if (!r)
			continue;
		chunks[id] = atomic_load_explicit(&r->hdr->chunks, memory_order_relaxed);
		at_rest = ring_census(r, &census[id]) == 0 && census[id].waiting == 0;
		rest = rest_of(q, id);
		fixed &= chunks[id] == census[id].chunks;
		same &= rest->valid && rest->chunks == chunks[id] && rest->census == census[id].chunks;
	}
	for (unsigned id = 0; id <= PROTO_LANES_MAX; id++)
		if (id == 0 || q->lanes[id])
			rest_of(q, id)->valid = false;
	if (!at_rest || (depth == 0 && fixed && window == 0 && lanes_backlog == 0))
		return;
	if (same && q->rest_depth == depth && q->rest_window == window && q->rest_lanes_backlog == lanes_backlog) {
		if (depth != 0)
			atomic_compare_exchange_strong_explicit(&h->depth, &depth, 0, memory_order_relaxed,
			                                        memory_order_relaxed);
		if (window != 0)
			atomic_compare_exchange_strong_explicit(&h->window_msgs, &window, 0, memory_order_relaxed,
			                                        memory_order_relaxed);
		if (lanes_backlog != 0)
			atomic_compare_exchange_strong_explicit(&h->lanes_backlog, &lanes_backlog, 0,
			                                        memory_order_seq_cst, memory_order_relaxed);
		for (unsigned id = 0; id <= PROTO_LANES_MAX; id++) {
			struct ring *r = ring_at(q, id);

			if (r && chunks[id] != census[id].chunks)
				atomic_compare_exchange_strong_explicit(&r->hdr->chunks, &chunks[id], census[id].chunks,
				                                        memory_order_relaxed, memory_order_relaxed);
		}
	}
	for (unsigned id = 0; id <= PROTO_LANES_MAX; id++)
		if (ring_at(q, id))
			*rest_of(q, id) =
			        (struct ring_rest){ .valid = true, .chunks = chunks[id], .census = census[id].chunks };
	q->rest_depth = depth;
	q->rest_window = window;
	q->rest_lanes_backlog = lanes_backlog;
}

/* A queue in use again after its pages were given back has its ring
 * reserved again, as at its creation (a page touched first when /dev/shm
 * is full is a SIGBUS to whoever touches it: the daemon survives it, see
 * shmguard.h, a client does not).  Until this sweep comes, within a
 * second of the first message, the pages its senders touch are taken as
 * they come. */
static int reserve_fd(const struct queue *q, int fd, bool warn)
{
	struct stat st;
	int ret;

	if (fd < 0)
		return -errno;
	ret = fstat(fd, &st) < 0 ? -errno : -posix_fallocate(fd, 0, st.st_size);
	close(fd);
	if (ret < 0 && warn)
		log_warning("queue %s: in use again, but its ring cannot be reserved again (%s): a sender "
		            "that touches a page /dev/shm has no room for gets a SIGBUS",
		            q->rec.name, strerror(-ret));
	return ret;
}

int queue_reserve_lane(struct daemon *d, struct queue *q, unsigned id, bool warn)
{
	char ctl[PROTO_OBJ_NAME_MAX], data[PROTO_OBJ_NAME_MAX];
	int ret = queue_lane_names(d, &q->rec, id, ctl, data);

	if (ret < 0)
		return ret;
	ret = reserve_fd(q, shm_open(ctl, O_RDWR | O_CLOEXEC, 0), warn);
	if (ret == 0)
		ret = reserve_fd(q, shm_open(data, O_RDWR | O_CLOEXEC, 0), warn);
	return ret;
}

static void reserve_again(struct daemon *d, struct queue *q)
{
	reserve_fd(q, open_shm(d, q, ".ring", O_RDWR), true);
	reserve_fd(q, open_shm(d, q, ".data", O_RDWR), true);
	for (unsigned id = 1; id <= PROTO_LANES_MAX; id++)
		if (queue_ring_of(q, id))
			queue_reserve_lane(d, q, id, true);
}

/* A queue drained and idle for give_back_after (the config's, a minute
 * by default; 0: never) gives its ring's pages back to the system
 * (ring_give_back): an idle queue holds a few pages, not the size of its
 * ring.  They come back, zero, with the next use, reserved again by the
 * daemon (tens of milliseconds of its time for a 64 MiB ring): so not
 * after every pause of a queue used in bursts. */
static void sweep_give_back(struct daemon *d, struct queue *q)
{
	const struct ring_hdr *h = q->ring.hdr;
	uint64_t traffic = atomic_load_explicit(&h->sent, memory_order_relaxed) +
	                   atomic_load_explicit(&h->received, memory_order_relaxed);
	uint64_t now_ms = now_ns(CLOCK_MONOTONIC) / 1000000u;
	uint32_t after = d->cfg->give_back_after_ms;

	if (traffic != q->idle_traffic) {
		q->idle_traffic = traffic;
		q->idle_sweeps = 0;
		if (q->given_back)
			reserve_again(d, q);
		q->given_back = false;
		return;
	}
	/* idle since the first sweep that saw nothing move */
	if (q->idle_sweeps == 0)
		q->idle_since_ms = now_ms;
	if (q->idle_sweeps < UINT32_MAX)
		q->idle_sweeps++;
	if (q->given_back || after == 0 || now_ms - q->idle_since_ms < after)
		return;
	if (ring_give_back(&q->ring) == 1) {
		q->given_back = true;
		for (unsigned id = 1; id <= PROTO_LANES_MAX; id++)
			if (queue_ring_of(q, id))
				ring_give_back(&q->lanes[id]->ring);
		log_debug("queue %s: drained and idle, its ring's pages given back", q->rec.name);
	}
}

int queue_resend_desc(struct daemon *d, struct queue *q, const struct proto_ring_desc *desc)
{
	struct reclaim_ctx rc = { .d = d, .q = q };
	struct ring_reclaim_ops ops = { .is_dead = holder_is_dead, .resend = resend, .ctx = &rc };
	struct ring *r = queue_ring_of(q, desc->hdr.lane);

	if (queue_quarantined(q) || !q->ring.hdr || !r)
		return 0;
	return ring_resend_desc(r, desc, &ops);
}

/* ring_reclaim of one ring of q: its own (lane 0), or a lane's. */
static int reclaim_ring(struct daemon *d, struct queue *q, uint32_t dead, unsigned lane, struct ring *ring,
                        struct lease_table *lease_tab, unsigned *leases_taken_back, const char **why)
{
	struct reclaim_ctx rc = { .d = d, .q = q, .ring = ring, .leases = lease_tab, .lane = lane, .dead = dead };
	/* leases run out, or move aside, as the periodic sweep sees them
	 * (meaningless in an at-most-once queue: what a receiver took is its) */
	bool leases = dead == 0 && q->rec.delivery == DELIVERY_AT_LEAST_ONCE;
	/* orphans are told by two walks some time apart: the periodic sweep's */
	struct ring_reclaim_ops ops = { .is_dead = holder_is_dead,
		                        .resend = resend,
		                        .window_empty = dead == 0 ? window_empty : NULL,
		                        .walk_begin = leases ? sweep_walk_begin : NULL,
		                        .lease_check = leases ? sweep_lease_check : NULL,
		                        .move_aside = leases ? sweep_move_aside : NULL,
		                        .unmove = sweep_unmove,
		                        .walk_end = leases ? sweep_walk_end : NULL,
		                        .dead_letter = dead == 0 ? sweep_dead_letter : NULL,
		                        .max_deliveries = q->policy.max_deliveries,
		                        .ctx = &rc };
	int n;

	if (dead == 0 && !leases)
		lease_table_clear(lease_tab); /* ack_timeout gone with a reload */
	n = ring_reclaim(ring, &ops, why);
	*leases_taken_back += rc.leases_taken_back;
	return n;
}

int queue_reclaim(struct daemon *d, struct queue *q, uint32_t dead)
{
	const char *why = NULL;
	unsigned taken_back = 0;
	int n;

	check_guards(d, q);
	if (queue_quarantined(q))
		return 0;
	queue_guard_home(q);
	n = reclaim_ring(d, q, dead, 0, &q->ring, &q->leases, &taken_back, &why);
	/* a lane that fails its checks leaves the queue alone (lane.c) */
	for (unsigned id = 1; id <= PROTO_LANES_MAX && n >= 0; id++) {
		struct ring *r = queue_ring_of(q, id);
		const char *lane_why = NULL;
		int got;

		if (!r)
			continue;
		got = reclaim_ring(d, q, dead, id, r, &q->lanes[id]->leases, &taken_back, &lane_why);
		if (got == -EBADMSG) {
			check_guards(d, q);
			lane_retire(d, q, q->lanes[id], lane_why);
		} else if (got > 0) {
			n += got;
		}
	}
	if (n >= 0 && dead == 0) {
		sweep_window(q);
		sweep_give_back(d, q);
	}
	if (n >= 0 && q->aside.n)
		aside_sweep(d, q);
	if (taken_back)
		log_info("queue %s: %u leases older than ack_timeout taken back", q->rec.name, taken_back);
	if (n > (int)taken_back)
		log_info("queue %s: reclaimed %d chunks and slots from dead clients", q->rec.name, n - (int)taken_back);
	else if (n == -EBADMSG) {
		check_guards(d, q); /* zeros from a SIGBUS in the walk: say so */
		queue_quarantine(d, q, why);
	}
	return n;
}
