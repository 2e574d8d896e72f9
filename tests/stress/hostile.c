/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hostile.c - a client that misbehaves on purpose, for t_hostile.sh.
 *
 *   hostile SOCKETPATH garbage   random datagrams on the control socket
 *   hostile SOCKETPATH huge      oversized datagrams (1 MiB, 64 KiB)
 *   hostile SOCKETPATH midway    half requests, silent hang-ups, unread
 *                                replies, a flood never read
 *   hostile SOCKETPATH many N    N connections held open until stdin
 *                                closes; prints "open K answered M" once K
 *                                are open, M of which answered a request
 *   hostile SOCKETPATH fds       requests carrying SCM_RIGHTS descriptors
 *   hostile SOCKETPATH forged QUEUE
 *                                forged descriptors written straight onto
 *                                the queue's mq, then received
 *   hostile SOCKETPATH window QUEUE [N]
 *                                print the window's count (the ring's hint
 *                                of mq messages in the window), after
 *                                setting it to N if given, as a sender
 *                                killed between its count and its send
 *                                leaves it
 *   hostile SOCKETPATH truncate QUEUE
 *                                open (create) QUEUE, then ftruncate every
 *                                shared-memory object of it that the
 *                                daemon passed writable; prints
 *                                "truncated K of N"
 *
 * Each mode prints what it did and what came back.  It exits 0 when the
 * daemon behaved: it answered what deserves an answer (in many: every
 * connection was accepted and served), never passed
 * descriptors it should not, and the library turned every forged
 * descriptor into an error instead of a crash.  Whether the daemon
 * survived is checked by the script.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <mqueue.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "fdpass.h" /* the handle's raw mq, which a hostile client would use */
#include "ipcq.h"
#include "proto.h"

#define REPLY_TIMEOUT_MS 2000

static const char *sock_path;
static uint64_t rng_state = 0x853c49e6748fea9bull;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void rnd_fill(void *p, size_t n)
{
	unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)rnd();
}

/* A raw connection to the control socket; -errno on failure. */
static int raw_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(sock_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, sock_path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* a daemon that stops accepting must not hang us in connect() */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &(struct timeval){ .tv_sec = 2 }, sizeof(struct timeval));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

static int must_connect(void)
{
	int fd = raw_connect();

	if (fd < 0) {
		fprintf(stderr, "hostile: connect %s: %s\n", sock_path, strerror(-fd));
		exit(1);
	}
	return fd;
}

static void valid_req(struct proto_req *req, enum proto_op op, const char *name)
{
	memset(req, 0, sizeof(*req));
	req->magic = PROTO_MAGIC;
	req->version = PROTO_VERSION;
	req->op = (uint16_t)op;
	req->seq = 1;
	if (name)
		snprintf(req->name, sizeof(req->name), "%s", name);
}

/* Wait for one reply; its length, 0 if the daemon hung up, -ETIMEDOUT,
 * or -errno.  Descriptors that come with it are counted and closed. */
static ssize_t read_reply(int fd, void *buf, size_t cap, unsigned *nfds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(8 * sizeof(int))];
	} ctrl;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctrl, .msg_controllen = sizeof(ctrl) };
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;
	int r;

	*nfds = 0;
	r = poll(&pfd, 1, REPLY_TIMEOUT_MS);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == ECONNRESET ? 0 : -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int pfd_;

			memcpy(&pfd_, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			close(pfd_);
			(*nfds)++;
		}
	}
	return n;
}

/* The status of a reply, or 1 if it is not a well-formed reply. */
static int reply_status(const void *buf, ssize_t n)
{
	struct proto_reply rep;

	if (n < (ssize_t)sizeof(rep))
		return 1;
	memcpy(&rep, buf, sizeof(rep));
	if (rep.magic != PROTO_MAGIC || rep.version != PROTO_VERSION || rep.status > 0)
		return 1;
	return rep.status;
}

static int set_nofile(rlim_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur >= want)
		return 0;
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	return rl.rlim_cur >= want ? 0 : -EMFILE;
}

/* ---- garbage ---- */

enum garbage_kind {
	GARBAGE_RANDOM,       /* random size, random bytes */
	GARBAGE_REQ_SIZED,    /* exactly sizeof(struct proto_req), random bytes */
	GARBAGE_GOOD_HEADER,  /* magic and version right, the rest random */
	GARBAGE_GOOD_NAME,    /* also a valid name: random op, flags, geometry */
	GARBAGE_KINDS_,
};

static void make_garbage(enum garbage_kind kind, unsigned char *buf, size_t *len)
{
	struct proto_req req;

	switch (kind) {
	case GARBAGE_RANDOM:
		*len = (size_t)(rnd() % 4097);
		rnd_fill(buf, *len);
		return;
	case GARBAGE_REQ_SIZED:
		*len = sizeof(req);
		rnd_fill(buf, *len);
		return;
	case GARBAGE_GOOD_HEADER:
		rnd_fill(&req, sizeof(req));
		req.magic = PROTO_MAGIC;
		req.version = PROTO_VERSION;
		break;
	case GARBAGE_GOOD_NAME:
		rnd_fill(&req, sizeof(req));
		req.magic = PROTO_MAGIC;
		req.version = PROTO_VERSION;
		req.op = (uint16_t)(rnd() % (PROTO_OP_MAX_ + 2));
		/* never a real queue's name, so nothing real is deleted */
		snprintf(req.name, sizeof(req.name), "hx%" PRIx64, rnd());
		break;
	default:
		break;
	}
	memcpy(buf, &req, sizeof(req));
	*len = sizeof(req);
}

static int mode_garbage(void)
{
	unsigned char *buf = malloc(4096 + 1), *reply = malloc(PROTO_REPLY_MAX);
	unsigned long sent = 0, replies = 0, refused = 0, accepted = 0, hangups = 0, unanswered = 0, bogus = 0,
	              fdsback = 0;
	int fd = must_connect();

	if (!buf || !reply)
		return 1;
	for (int i = 0; i < 1000; i++) {
		enum garbage_kind kind = (enum garbage_kind)(i % GARBAGE_KINDS_);
		unsigned nfds;
		ssize_t n;
		size_t len;
		int st;

		make_garbage(kind, buf, &len);
		if (i % 100 == 50)
			len = 0; /* an empty datagram, which reads as end of file */
		if (send(fd, buf, len, MSG_NOSIGNAL) < 0) {
			/* the daemon hung up on us (an empty datagram reads as EOF) */
			close(fd);
			fd = must_connect();
			hangups++;
			continue;
		}
		sent++;
		n = read_reply(fd, reply, PROTO_REPLY_MAX, &nfds);
		fdsback += nfds;
		if (n == 0) {
			close(fd);
			fd = must_connect();
			hangups++;
			continue;
		}
		if (n < 0) {
			unanswered++;
			fprintf(stderr, "hostile: garbage #%d (%zu bytes): no reply: %s\n", i, len, strerror((int)-n));
			close(fd);
			fd = must_connect();
			continue;
		}
		replies++;
		st = reply_status(reply, n);
		if (st > 0) {
			bogus++;
		} else if (st < 0) {
			refused++;
		} else {
			accepted++;
			/* only a request with our magic and a known op may succeed */
			if (kind == GARBAGE_RANDOM || kind == GARBAGE_REQ_SIZED)
				bogus++;
		}
	}
	close(fd);
	printf("garbage: sent %lu, replies %lu (refused %lu, accepted %lu), hang-ups %lu, unanswered %lu, "
	       "malformed replies %lu, descriptors received %lu\n",
	       sent, replies, refused, accepted, hangups, unanswered, bogus, fdsback);
	free(buf);
	free(reply);
	/* an empty datagram may end the connection; anything else is answered */
	if (unanswered || bogus || fdsback)
		return 1;
	return 0;
}

/* ---- huge ---- */

static int send_big(int fd, size_t len, const char *what)
{
	unsigned char *buf = malloc(len), reply[PROTO_REPLY_MAX];
	unsigned nfds;
	ssize_t n;
	int st;

	if (!buf)
		return 1;
	rnd_fill(buf, len);
	memcpy(buf, &(uint32_t){ PROTO_MAGIC }, sizeof(uint32_t));
	if (send(fd, buf, len, MSG_NOSIGNAL) < 0) {
		int e = errno;

		free(buf);
		if (e == EMSGSIZE || e == ENOBUFS) {
			printf("huge: %s datagram refused by the kernel (%s)\n", what, strerror(e));
			return 0;
		}
		fprintf(stderr, "hostile: huge: send %s: %s\n", what, strerror(e));
		return 1;
	}
	free(buf);
	n = read_reply(fd, reply, sizeof(reply), &nfds);
	st = n > 0 ? reply_status(reply, n) : 1;
	printf("huge: %s datagram sent, reply: %s\n", what,
	       n > 0 ? (st < 0 ? strerror(-st) : "not an error") : n == 0 ? "hang-up" : strerror((int)-n));
	/* the daemon must refuse it, or at least hang up; never accept it */
	return n >= 0 && (n == 0 || st < 0) ? 0 : 1;
}

static int mode_huge(void)
{
	int fd = must_connect(), bad = 0;
	int big = 4 << 20;

	/* let a 1 MiB datagram through if the kernel allows it */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	bad |= send_big(fd, 1u << 20, "1 MiB");
	close(fd);
	fd = must_connect();
	bad |= send_big(fd, 64u << 10, "64 KiB");
	bad |= send_big(fd, sizeof(struct proto_req) + 1, "request + 1 byte");
	close(fd);
	return bad;
}

/* ---- midway ---- */

static int mode_midway(void)
{
	struct proto_req req;
	unsigned long flood = 0;
	int fd, i;

	for (i = 0; i < 100; i++) {
		/* half a request, then gone */
		fd = must_connect();
		valid_req(&req, PROTO_OP_STAT, "q");
		send(fd, &req, sizeof(req) / 2, MSG_NOSIGNAL);
		close(fd);
		/* connect and leave without a word */
		close(must_connect());
		/* a request whose reply (with two descriptors) nobody reads */
		fd = must_connect();
		valid_req(&req, PROTO_OP_OPEN, "q");
		req.flags = IPCQ_SEND | IPCQ_RECV | IPCQ_CREATE;
		send(fd, &req, sizeof(req), MSG_NOSIGNAL);
		close(fd);
		/* the same, shut down for writing first */
		fd = must_connect();
		send(fd, &req, sizeof(req), MSG_NOSIGNAL);
		shutdown(fd, SHUT_WR);
		close(fd);
	}
	/* requests as fast as possible, replies never read: the daemon must
	 * drop us rather than block on us */
	fd = must_connect();
	valid_req(&req, PROTO_OP_LIST, NULL);
	for (i = 0; i < 100000; i++) {
		if (send(fd, &req, sizeof(req), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			if (errno == EAGAIN) {
				usleep(1000);
				continue;
			}
			break; /* EPIPE, ECONNRESET: dropped */
		}
		flood++;
	}
	close(fd);
	printf("midway: 100 half requests, 100 silent connections, 200 unread replies; flood of %lu unread "
	       "requests ended by %s\n",
	       flood, i < 100000 ? "the daemon hanging up" : "us");
	return 0;
}

/* ---- many ---- */

/* Ask every connection for a LIST at once and count the answers that come
 * within REPLY_TIMEOUT_MS in all. */
static unsigned long ping_all(const int *fds, unsigned long n)
{
	struct pollfd *pfds = calloc(n, sizeof(*pfds));
	char reply[PROTO_REPLY_MAX];
	unsigned long answered = 0, waiting = 0;
	struct proto_req req;

	if (!pfds)
		return 0;
	valid_req(&req, PROTO_OP_LIST, NULL);
	for (unsigned long i = 0; i < n; i++) {
		pfds[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		if (send(fds[i], &req, sizeof(req), MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)sizeof(req))
			waiting++;
		else
			pfds[i].fd = -1;
	}
	while (waiting > 0 && poll(pfds, n, REPLY_TIMEOUT_MS) > 0) {
		for (unsigned long i = 0; i < n; i++) {
			ssize_t got;

			if (pfds[i].fd < 0 || !pfds[i].revents)
				continue;
			got = recv(pfds[i].fd, reply, sizeof(reply), MSG_DONTWAIT);
			if (got > 0 && reply_status(reply, got) == 0)
				answered++;
			pfds[i].fd = -1;
			waiting--;
		}
	}
	free(pfds);
	return answered;
}

static int mode_many(const char *count_s)
{
	unsigned long n = strtoul(count_s, NULL, 10), opened = 0, answered;
	int *fds;
	char c;
	int r;

	if (n == 0 || n > 100000) {
		fprintf(stderr, "hostile: many: bad count '%s'\n", count_s);
		return 2;
	}
	r = set_nofile(n + 64);
	if (r < 0) {
		fprintf(stderr, "hostile: many: cannot raise RLIMIT_NOFILE to %lu: %s\n", n + 64, strerror(-r));
		return 1;
	}
	fds = calloc(n, sizeof(*fds));
	if (!fds)
		return 1;
	for (; opened < n; opened++) {
		fds[opened] = raw_connect();
		if (fds[opened] < 0) {
			fprintf(stderr, "hostile: many: connection %lu: %s\n", opened + 1, strerror(-fds[opened]));
			break;
		}
	}
	/* each one is served: it answers a request */
	answered = ping_all(fds, opened);
	printf("open %lu answered %lu\n", opened, answered);
	fflush(stdout);
	if (answered != n)
		fprintf(stderr, "hostile: many: %lu of %lu connections answered\n", answered, n);
	while (read(STDIN_FILENO, &c, 1) > 0)
		;
	for (unsigned long i = 0; i < opened; i++)
		close(fds[i]);
	free(fds);
	return answered == n ? 0 : 1;
}

/* ---- fds ---- */

static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Send req with nfds descriptors attached; returns the reply status, or 1. */
static int send_with_fds(int sock, const void *req, size_t len, const int *fds, unsigned nfds, unsigned *nback)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(253 * sizeof(int))];
	} ctrl;
	struct iovec iov = { .iov_base = (void *)req, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctrl,
		             .msg_controllen = CMSG_SPACE(nfds * sizeof(int)) };
	struct cmsghdr *cm;
	char reply[PROTO_REPLY_MAX];
	ssize_t n;

	memset(&ctrl, 0, sizeof(ctrl));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0) {
		fprintf(stderr, "hostile: fds: sendmsg: %s\n", strerror(errno));
		return 1;
	}
	n = read_reply(sock, reply, sizeof(reply), nback);
	return n > 0 ? reply_status(reply, n) : 1;
}

static int mode_fds(void)
{
	int sock = must_connect(), devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int many[253], before, after, bad = 0;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct proto_req req;
	unsigned nback, back = 0;
	int st;

	if (devnull < 0 || getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		perror("hostile: fds");
		return 1;
	}
	for (int i = 0; i < 253; i++)
		many[i] = devnull;
	before = count_fds(cred.pid);
	for (int i = 0; i < 100; i++) {
		/* a valid request with 10 descriptors */
		valid_req(&req, PROTO_OP_STAT, "q");
		st = send_with_fds(sock, &req, sizeof(req), many, 10, &nback);
		back += nback;
		if (st > 0) {
			fprintf(stderr, "hostile: fds: no proper reply to a STAT with 10 descriptors\n");
			bad = 1;
		}
		/* a valid LIST with the most descriptors one message may carry */
		valid_req(&req, PROTO_OP_LIST, NULL);
		st = send_with_fds(sock, &req, sizeof(req), many, 253, &nback);
		back += nback;
		if (st != 0) {
			fprintf(stderr, "hostile: fds: LIST with 253 descriptors: %s\n", st > 0 ? "no reply" : strerror(-st));
			bad = 1;
		}
		/* a malformed one with descriptors */
		st = send_with_fds(sock, &req, 10, many, 10, &nback);
		back += nback;
		if (st >= 0) {
			fprintf(stderr, "hostile: fds: a 10-byte request with descriptors was not refused\n");
			bad = 1;
		}
	}
	after = count_fds(cred.pid);
	if (back) {
		fprintf(stderr, "hostile: fds: the daemon passed back %u descriptors\n", back);
		bad = 1;
	}
	if (before >= 0 && after >= 0) {
		printf("fds: 27300 descriptors sent with 300 requests; daemon had %d open before, %d after\n", before,
		       after);
		if (after > before + 8) {
			fprintf(stderr, "hostile: fds: the daemon keeps %d more descriptors than before\n", after - before);
			bad = 1;
		}
	} else {
		printf("fds: 27300 descriptors sent with 300 requests (cannot count the daemon's)\n");
	}
	close(sock);
	close(devnull);
	return bad;
}

/* ---- forged descriptors ---- */

struct forged_counts {
	unsigned long forged, badmsg, stale, real, intact, other;
};

static ipcq_queue *fq;
static ipcq_geometry fgeo;
static mqd_t fmq;

/* A forgery straight onto the mq, counted in the window's count as a
 * client's send is (backlog.h): receivers that look without waiting
 * trust the count; an uncounted one they see once the window wakes them. */
static int put_raw(const void *msg, size_t len, struct forged_counts *fc)
{
	window_counted(&fq->ring, 1);
	if (mq_send(fmq, msg, len, 0) < 0) {
		window_counted(&fq->ring, -1);
		fprintf(stderr, "hostile: forged: mq_send: %s\n", strerror(errno));
		return -errno;
	}
	fc->forged++;
	return 0;
}

static void put_desc(uint8_t kind, uint32_t len, uint64_t offset, uint64_t gen, struct forged_counts *fc)
{
	struct proto_ring_desc d = { .hdr = { .kind = kind, .len = len }, .offset = offset, .gen = gen };

	put_raw(&d, sizeof(d), fc);
}

/* Receive everything waiting; real messages carry a marker and their
 * length in their first bytes. */
static int drain_forged(struct forged_counts *fc, unsigned char *buf, size_t cap)
{
	for (;;) {
		ssize_t n = ipcq_recv(fq, buf, cap, NULL, 0);

		if (n == -EAGAIN)
			return 0;
		if (n == -EBADMSG)
			fc->badmsg++;
		else if (n == -ESTALE)
			fc->stale++;
		else if (n >= 0) {
			uint64_t len;

			fc->real++;
			memcpy(&len, buf, sizeof(len));
			if (n >= 16 && len == (uint64_t)n && memcmp(buf + 8, "GENUINE!", 8) == 0)
				fc->intact++;
		} else {
			fc->other++;
			fprintf(stderr, "hostile: forged: ipcq_recv: %s\n", ipcq_strerror((int)n));
		}
	}
}

static int send_genuine(size_t len, unsigned char *buf)
{
	uint64_t l = len;

	memset(buf, 0x33, len);
	memcpy(buf, &l, sizeof(l));
	memcpy(buf + 8, "GENUINE!", 8);
	return ipcq_send(fq, buf, len, 0, 5000);
}

/* Send one genuine ring message and read its descriptor off the mq,
 * counted as a receiver asleep beside an empty window (its count 0), so
 * that the sender puts it there (backlog.h, backlog_wakes_by_window);
 * taken off the window's count again, as a receiver does. */
static int capture_desc(struct proto_ring_desc *d, unsigned char *buf)
{
	struct timespec dl = deadline_after(CLOCK_REALTIME, 5000);
	unsigned char raw[8192];
	ssize_t n;
	int r;

	backlog_sleeping(&fq->ring, 1);
	r = send_genuine(100000, buf);
	backlog_sleeping(&fq->ring, -1);
	if (r < 0)
		return r;
	n = mq_timedreceive(fmq, (char *)raw, fgeo.msg_size, NULL, &dl);
	if (n < 0)
		return -errno;
	window_taken(&fq->ring, 1);
	if (n != (ssize_t)sizeof(*d))
		return -EPROTO;
	memcpy(d, raw, sizeof(*d));
	return 0;
}

static int mode_forged(const char *name)
{
	size_t cap = 200000;
	unsigned char *buf = malloc(cap);
	struct forged_counts fc = { 0 };
	struct proto_ring_desc real;
	unsigned long genuine = 0;
	ipcq_client *c;
	ipcq_stats st;
	uint64_t ds;
	int r;

	if (!buf)
		return 1;
	r = ipcq_connect(&c, sock_path);
	if (r == 0)
		r = ipcq_open(c, name, IPCQ_SEND | IPCQ_RECV | IPCQ_CREATE, &fq);
	if (r < 0) {
		fprintf(stderr, "hostile: forged: open %s: %s\n", name, ipcq_strerror(r));
		return 1;
	}
	ipcq_geometry_of(fq, &fgeo);
	fmq = fq->mq; /* the raw mq, to forge on (ipcq_fd may be an epoll set) */
	ds = fgeo.ring_size;

	/* random bytes of descriptor size, kind 'R' */
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 8; i++) {
			struct proto_ring_desc d;

			rnd_fill(&d, sizeof(d));
			d.hdr.kind = PROTO_MSG_RING;
			put_raw(&d, sizeof(d), &fc);
		}
		if (round % 5 == 0 && send_genuine(500 + (size_t)round * 1000, buf) == 0)
			genuine++;
		drain_forged(&fc, buf, cap);
	}
	/* random bytes of random sizes, any kind */
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 8; i++) {
			unsigned char raw[512];
			size_t len = (size_t)(rnd() % (fgeo.msg_size + 1));

			rnd_fill(raw, len);
			if (len >= 1 && raw[0] == PROTO_MSG_INLINE)
				raw[0] = 0; /* a consistent inline message is a real one */
			put_raw(raw, len, &fc);
		}
		drain_forged(&fc, buf, cap);
	}
	/* out of bounds, misaligned, too long, overrunning the end */
	put_desc(PROTO_MSG_RING, 100, ds, 1, &fc);
	put_desc(PROTO_MSG_RING, 100, ds - 64, 1, &fc);
	put_desc(PROTO_MSG_RING, 100, UINT64_MAX - 63, 1, &fc);
	put_desc(PROTO_MSG_RING, 100, 13, 1, &fc);
	put_desc(PROTO_MSG_RING, UINT32_MAX, 0, 1, &fc);
	put_desc(PROTO_MSG_RING, (uint32_t)fgeo.max_payload + 1, 0, 1, &fc);
	put_desc(PROTO_MSG_RING, 1000, ds - 128, 1, &fc);
	put_desc(PROTO_MSG_RING, 100, 0, 0, &fc);
	drain_forged(&fc, buf, cap);

	/* a real descriptor, replayed: once it is taken, every copy is stale */
	r = capture_desc(&real, buf);
	if (r < 0) {
		fprintf(stderr, "hostile: forged: cannot capture a descriptor: %s\n", strerror(-r));
		return 1;
	}
	put_raw(&real, sizeof(real), &fc);
	fc.forged--; /* the first copy is the genuine message */
	genuine++;
	put_raw(&real, sizeof(real), &fc);
	put_raw(&real, sizeof(real), &fc);
	drain_forged(&fc, buf, cap);
	put_raw(&real, sizeof(real), &fc); /* after release */
	{
		struct proto_ring_desc d = real;

		d.gen = real.gen + 1000; /* a generation never issued */
		put_raw(&d, sizeof(d), &fc);
		d = real;
		d.hdr.len = real.hdr.len - 1; /* right chunk, wrong length */
		put_raw(&d, sizeof(d), &fc);
		d = real;
		d.gen = real.gen - 1; /* an older generation at this offset */
		put_raw(&d, sizeof(d), &fc);
	}
	drain_forged(&fc, buf, cap);

	/* a descriptor aimed at a loan that is not yet published */
	{
		struct proto_ring_desc next;
		void *loan;

		if (capture_desc(&next, buf) == 0) {
			put_raw(&next, sizeof(next), &fc);
			fc.forged--;
			genuine++;
			drain_forged(&fc, buf, cap);
			r = ipcq_loan(fq, 100000, &loan, 5000);
			if (r == 0) {
				struct proto_ring_desc d = next;

				d.offset = next.offset + ((64 + 100000 + 63) / 64) * 64;
				d.gen = next.gen + 1;
				put_raw(&d, sizeof(d), &fc);
				drain_forged(&fc, buf, cap);
				ipcq_unloan(fq, loan);
			}
		}
	}

	/* the queue still works */
	if (send_genuine(150000, buf) == 0)
		genuine++;
	if (send_genuine(100, buf) == 0)
		genuine++;
	drain_forged(&fc, buf, cap);

	r = ipcq_stat(c, name, &st);
	printf("forged: %lu forged messages: %lu -EBADMSG, %lu -ESTALE, %lu other errors; %lu of %lu genuine "
	       "messages received (%lu intact), %lu received in all; rejected %" PRIu64 ", ring_used %" PRIu64 "\n",
	       fc.forged, fc.badmsg, fc.stale, fc.other, fc.real, genuine, fc.intact, fc.real,
	       r == 0 ? st.rejected : 0, r == 0 ? st.ring_used : 0);
	ipcq_close(fq);
	ipcq_disconnect(c);
	free(buf);
	if (r < 0 || fc.other || fc.real != genuine || fc.intact != genuine || fc.badmsg + fc.stale != fc.forged)
		return 1;
	if (st.rejected == 0 || st.ring_used != 0 || st.depth != 0) {
		fprintf(stderr, "hostile: forged: rejected %" PRIu64 " (expected > 0), ring_used %" PRIu64
		                ", depth %" PRIu64 " (expected 0)\n",
		        st.rejected, st.ring_used, st.depth);
		return 1;
	}
	return 0;
}

/* The descriptors the daemon passes with an OPEN are the client's to
 * misuse: the library closes them once mapped, a hostile client keeps
 * them, and one writable can be cut to nothing while the daemon maps the
 * same object.  The queue is made, and a message sent, through the
 * library first, so that the ring is in use. */
static int mode_truncate(const char *name)
{
	char reply[PROTO_REPLY_MAX];
	unsigned done = 0, objects = 0, n = 0;
	int fds[8], sock;
	struct proto_req req;
	ipcq_client *c;
	ipcq_queue *q;
	ssize_t len;
	int r;

	r = ipcq_connect(&c, sock_path);
	if (r == 0)
		r = ipcq_open(c, name, IPCQ_SEND | IPCQ_RECV | IPCQ_CREATE, &q);
	if (r == 0)
		r = ipcq_send(q, "before", 6, 0, 1000);
	if (r < 0) {
		fprintf(stderr, "hostile: truncate: %s: %s\n", name, ipcq_strerror(r));
		return 1;
	}
	sock = must_connect();
	valid_req(&req, PROTO_OP_OPEN, name);
	req.flags = IPCQ_SEND | IPCQ_RECV;
	if (send(sock, &req, sizeof(req), MSG_NOSIGNAL) != (ssize_t)sizeof(req)) {
		perror("hostile: truncate: send");
		return 1;
	}
	len = fdpass_recv(sock, reply, sizeof(reply), fds, 8, &n, 0);
	if (len < (ssize_t)sizeof(struct proto_reply) || reply_status(reply, len) != 0) {
		fprintf(stderr, "hostile: truncate: no OPEN reply with descriptors\n");
		return 1;
	}
	for (unsigned i = 0; i < n; i++) {
		struct stat st;

		if (fds[i] < 0 || fstat(fds[i], &st) < 0 || !S_ISREG(st.st_mode))
			continue; /* the mq and the bell */
		objects++;
		if (ftruncate(fds[i], 0) == 0)
			done++;
	}
	printf("truncated %u of %u\n", done, objects);
	fflush(stdout);
	/* its own mappings of the queue would fault now: gone without a look */
	_exit(0);
}

static int mode_window(const char *name, const char *set)
{
	ipcq_client *c;
	ipcq_queue *q;
	int r = ipcq_connect(&c, sock_path);

	if (r == 0)
		r = ipcq_open(c, name, IPCQ_SEND, &q);
	if (r < 0) {
		fprintf(stderr, "hostile: window: %s: %s\n", name, ipcq_strerror(r));
		return 1;
	}
	if (set)
		atomic_store(&q->ring.hdr->window_msgs, strtoll(set, NULL, 10));
	printf("%" PRId64 "\n", (int64_t)atomic_load(&q->ring.hdr->window_msgs));
	ipcq_close(q);
	ipcq_disconnect(c);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: hostile SOCKETPATH garbage|huge|midway|fds\n"
	                "       hostile SOCKETPATH many N\n"
	                "       hostile SOCKETPATH forged QUEUE\n"
	                "       hostile SOCKETPATH truncate QUEUE\n"
	                "       hostile SOCKETPATH window QUEUE [N]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *mode;

	if (argc < 3)
		return usage();
	sock_path = argv[1];
	mode = argv[2];
	rng_state ^= (uint64_t)getpid() << 20;
	if (argc == 3 && strcmp(mode, "garbage") == 0)
		return mode_garbage();
	if (argc == 3 && strcmp(mode, "huge") == 0)
		return mode_huge();
	if (argc == 3 && strcmp(mode, "midway") == 0)
		return mode_midway();
	if (argc == 4 && strcmp(mode, "many") == 0)
		return mode_many(argv[3]);
	if (argc == 3 && strcmp(mode, "fds") == 0)
		return mode_fds();
	if (argc == 4 && strcmp(mode, "forged") == 0)
		return mode_forged(argv[3]);
	if ((argc == 4 || argc == 5) && strcmp(mode, "window") == 0)
		return mode_window(argv[3], argc == 5 ? argv[4] : NULL);
	if (argc == 4 && strcmp(mode, "truncate") == 0)
		return mode_truncate(argv[3]);
	return usage();
}
