/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rights.c - rights hold in shared memory, for t_rights.sh: a client
 * without send rights can never make a message appear.
 *
 *   rights maps SOCKET QUEUE
 *       a receive-only handle maps the ring's payload memory read-only (not
 *       writable in /proc/self/maps, a write there ends a child with
 *       SIGSEGV, mprotect cannot make it writable, and the object cannot be
 *       opened for writing by name unless this process owns it), while its
 *       control memory stays writable; a send handle and a send-and-receive
 *       handle map payload memory writable; the meta page is read-only to
 *       every handle
 *   rights forge SOCKET QUEUE
 *       a receive-only client writes a well-formed inline message into its
 *       own receive slot and kills itself: once the daemon freed the slot, a
 *       receiver gets nothing within RECV_QUIET_MS, nothing counts as
 *       redelivered, and a genuine message sent afterwards still arrives.
 *       (Receive slots hold no message, so the daemon has nothing to drop
 *       or reject: what it counts there is reported, not checked.)
 *   rights mq SOCKET QUEUE
 *       a receive-only handle's mq descriptor refuses a send (EBADF)
 *   rights midreceive SOCKET QUEUE
 *       a receiver takes a ring message's descriptor off the mq into its
 *       receive buffer and is killed before it takes the chunk: the message
 *       comes back within MIDRECV_BACK_MS, intact, never flagged redelivered
 *       (the daemon reads the dead receiver's buffers)
 *   rights badbufs SOCKET QUEUE
 *       receive buffers handed to the daemon that are no descriptor, a pipe,
 *       an unsealed memfd or a memfd of the wrong size are refused with
 *       -EINVAL, and the daemon goes on answering
 *   rights rbufs SOCKET PREFIX
 *       one connection opens receiving handles, over queues PREFIX1..3,
 *       until refused: exactly
 *       RBUF_CONN_BOUND succeed, the next gets -EUSERS naming the bound, and
 *       another connection still opens one
 *   rights ring-only SOCKET QUEUE
 *       QUEUE is at-least-once: a message small enough to go inline goes
 *       through the ring all the same (sent_ring counts it) and arrives
 *       intact
 *
 * Each prints what it checked and exits 0 when the contract holds, 1 when
 * it does not (with a line on stderr per broken rule), 3 when it could not
 * check (no daemon, no queue, an unexpected layout): then the test is
 * broken, not the daemon.  Every wait is bounded.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <mqueue.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h" /* the handle's ring, slot and mq, which a hostile client would use */
#include "ipcq.h"
#include "fdpass.h"
#include "proto.h"
#include "ring.h"
#include "timing.h"

#define EXIT_BROKEN 1
#define EXIT_CANNOT 3
#define FORGED "forged"
#define GENUINE "genuine"
#define SMALL "0123456789"
/* how long the daemon may take to find the dead receiver and free its slot */
#define SLOT_FREED_MS 5000
#define POLL_MS 50
/* a receiver waits this long for what the daemon might make of the slot:
 * past a sweep of the daemon (one a second) */
#define RECV_QUIET_MS 1500
#define CALL_TIMEOUT_MS 2000

static const char *mode = "rights";
static int broken;

static void violated(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violated(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "rights %s: ", mode);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	broken = 1;
}

static int cannot(const char *what, int err)
{
	fprintf(stderr, "rights %s: cannot %s: %s\n", mode, what, ipcq_strerror(err));
	return EXIT_CANNOT;
}

static int open_queue(const char *sock, const char *queue, int flags, ipcq_client **c, ipcq_queue **q)
{
	int r = ipcq_connect(c, sock);

	if (r < 0)
		return r;
	r = ipcq_open(*c, queue, flags, q);
	if (r < 0)
		ipcq_disconnect(*c);
	return r;
}

static void close_queue(ipcq_client *c, ipcq_queue *q)
{
	ipcq_close(q);
	ipcq_disconnect(c);
}

static int stat_queue(const char *sock, const char *queue, ipcq_stats *st)
{
	ipcq_client *c;
	int r = ipcq_connect(&c, sock);

	if (r < 0)
		return r;
	r = ipcq_stat(c, queue, st);
	ipcq_disconnect(c);
	return r;
}

/* ---- the mappings ---- */

struct mapping {
	uintptr_t lo, hi;
	char perms[5];
	char path[256];
};

/* The mapping of this process that holds addr; false if none does. */
static bool mapping_of(const void *addr, struct mapping *m)
{
	uintptr_t a = (uintptr_t)addr;
	char line[512];
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "re");

	while (f && !found && fgets(line, sizeof(line), f)) {
		int path_at = 0;

		*m = (struct mapping){ 0 };
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s %*s %*s %*s %n", &m->lo, &m->hi, m->perms,
		           &path_at) < 3 || a < m->lo || a >= m->hi)
			continue;
		if (path_at > 0)
			snprintf(m->path, sizeof(m->path), "%.*s", (int)strcspn(line + path_at, "\n"),
			         line + path_at);
		found = true;
	}
	if (f)
		fclose(f);
	return found;
}

/* How a child that stores one byte at addr (the byte already there, so a
 * store that is allowed changes nothing) ends: its wait status. */
static int store_in_child(volatile unsigned char *addr)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		struct rlimit nocore = { 0, 0 };
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		unsigned char v;

		setrlimit(RLIMIT_CORE, &nocore);
		sigaction(SIGSEGV, &dfl, NULL); /* not a sanitizer's handler */
		v = *addr;
		*addr = v;
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return status;
}

/* A read-only shared mapping that no one can make writable: not by
 * mprotect (the descriptor it was made from was read-only), not by opening
 * the object again by name (unless this process owns it, as the daemon's
 * user would). */
static void check_read_only(const char *what, const void *addr)
{
	struct mapping m;
	struct stat st;
	int fd;

	if (!mapping_of(addr, &m)) {
		violated("%s: no mapping holds it", what);
		return;
	}
	if (m.perms[1] == 'w' || m.perms[3] != 's')
		violated("%s is mapped %s, not r--s (%s)", what, m.perms, m.path);
	if (mprotect((void *)m.lo, m.hi - m.lo, PROT_READ | PROT_WRITE) == 0) {
		violated("%s could be made writable with mprotect: its descriptor was writable", what);
		/* as it was: the mapping may hold more than what (the whole ring) */
		mprotect((void *)m.lo, m.hi - m.lo, PROT_READ | (m.perms[1] == 'w' ? PROT_WRITE : 0));
	}
	if (m.path[0] == '/' && stat(m.path, &st) == 0) {
		if (st.st_uid == geteuid()) {
			printf("  (%s: not reopened by name: this process owns %s)\n", what, m.path);
		} else if ((fd = open(m.path, O_RDWR | O_CLOEXEC)) >= 0) {
			violated("%s: %s opens for writing by name", what, m.path);
			close(fd);
		}
	}
}

/* The payload memory a handle writes, or reads: a sender's own (its
 * lane, when the queue's senders are isolated), or the queue's ring's. */
static void check_payload(const char *what, ipcq_queue *q, bool writable)
{
	unsigned char *data = writable ? q->sring->data : q->ring.data;
	char label[128];
	struct mapping m;
	int status;

	/* with lanes, a sender writes its own: the queue's ring it only reads */
	if (writable && q->sring != &q->ring) {
		snprintf(label, sizeof(label), "%s: the queue's ring beside its lane", what);
		check_read_only(label, q->ring.data);
	}
	if (!mapping_of(data, &m)) {
		violated("%s: no mapping holds the payload memory", what);
		return;
	}
	if (writable && m.perms[1] != 'w')
		violated("%s: payload memory is mapped %s (%s), not rw-s", what, m.perms, m.path);
	status = store_in_child(data);
	if (status < 0) {
		violated("%s: cannot fork a child to store into payload memory: %s", what, strerror(errno));
	} else if (writable) {
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			violated("%s: a store into payload memory ended the child (status %#x)", what, status);
	} else if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV) {
		if (WIFEXITED(status))
			violated("%s: a store into payload memory succeeded (exit %d)", what, WEXITSTATUS(status));
		else
			violated("%s: a store into payload memory ended the child by signal %d, not SIGSEGV", what,
			         WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	}
	snprintf(label, sizeof(label), "%s: payload memory", what);
	if (!writable)
		check_read_only(label, data);
	snprintf(label, sizeof(label), "%s: the meta page", what);
	check_read_only(label, q->meta);
	if (!mapping_of(q->ring.hdr, &m))
		violated("%s: no mapping holds the ring's control memory", what);
	else if (m.perms[1] != 'w')
		violated("%s: the ring's control memory is mapped %s: receivers need it writable", what, m.perms);
}

static int maps(const char *sock, const char *queue)
{
	static const struct {
		const char *what;
		int flags;
	} handles[] = {
		{ "a receive-only handle", IPCQ_RECV },
		{ "a send-only handle", IPCQ_SEND },
		{ "a send-and-receive handle", IPCQ_SEND | IPCQ_RECV },
	};
	size_t i;

	/* one handle at a time, so no other mapping of the queue is there */
	for (i = 0; i < sizeof(handles) / sizeof(handles[0]); i++) {
		ipcq_client *c;
		ipcq_queue *q;
		int r = open_queue(sock, queue, handles[i].flags, &c, &q);

		if (r < 0)
			return cannot("open the queue", r);
		check_payload(handles[i].what, q, handles[i].flags & IPCQ_SEND);
		close_queue(c, q);
	}
	if (!broken)
		printf("receive-only handles map payload memory read-only (a store is SIGSEGV, mprotect "
		       "refused), senders read-write; control memory writable, the meta page read-only\n");
	return broken;
}

/* ---- a forged message in a dead receiver's slot ---- */

/* The child: a receive-only client forges a message in its own receive
 * slot, where mq_receive could have left one (the slot is the receiver's
 * to write: every byte after its owner word), and dies. */
static void forge_and_die(const char *sock, const char *queue)
{
	struct proto_msg_hdr mh = { .kind = PROTO_MSG_INLINE, .len = sizeof(FORGED) - 1 };
	size_t at = (sizeof(((struct ring_slot *)NULL)->owner) + 7u) & ~(size_t)7u;
	unsigned char *slot;
	ipcq_client *c;
	ipcq_queue *q;
	int r = open_queue(sock, queue, IPCQ_RECV, &c, &q);

	if (r < 0) {
		cannot("open the queue receive-only", r);
		_exit(EXIT_CANNOT);
	}
	if (q->home_slot < 0 || q->ring.slot_size < at + sizeof(mh) + sizeof(FORGED) - 1) {
		fprintf(stderr, "rights forge: the handle has no receive slot to forge in\n");
		_exit(EXIT_CANNOT);
	}
	slot = (unsigned char *)ring_slot_at(&q->ring, (unsigned)q->home_slot);
	memcpy(slot + at, &mh, sizeof(mh));
	memcpy(slot + at + sizeof(mh), FORGED, sizeof(FORGED) - 1);
	atomic_thread_fence(memory_order_seq_cst);
	kill(getpid(), SIGKILL);
	_exit(EXIT_CANNOT);
}

static int forge(const char *sock, const char *queue)
{
	char buf[4096];
	ipcq_stats before, after;
	ipcq_client *c, *sc;
	ipcq_queue *q, *sq;
	uint64_t deadline;
	ssize_t n;
	int status, r;
	pid_t pid;

	r = stat_queue(sock, queue, &before);
	if (r < 0)
		return cannot("stat the queue", r);
	if (before.depth != 0 || before.receivers != 0) {
		fprintf(stderr, "rights forge: the queue is in use (depth %" PRIu64 ", %u receivers)\n",
		        before.depth, before.receivers);
		return EXIT_CANNOT;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return cannot("fork", -errno);
	if (pid == 0)
		forge_and_die(sock, queue);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return cannot("wait for the forger", -errno);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) {
		fprintf(stderr, "rights forge: the receive slot is not writable: this test needs updating\n");
		return EXIT_CANNOT;
	}
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		return EXIT_CANNOT; /* it said why */

	/* the daemon finds the dead receiver and frees its slot */
	deadline = now_ms() + SLOT_FREED_MS;
	do {
		r = stat_queue(sock, queue, &after);
		if (r < 0)
			return cannot("stat the queue", r);
		if (after.receivers == 0)
			break;
		usleep(POLL_MS * 1000);
	} while (now_ms() < deadline);
	if (after.receivers != 0)
		violated("the dead receiver's slot is still in use after %d ms", SLOT_FREED_MS);

	r = open_queue(sock, queue, IPCQ_RECV, &c, &q);
	if (r < 0)
		return cannot("open a receiver", r);
	n = ipcq_recv(q, buf, sizeof(buf) - 1, NULL, RECV_QUIET_MS);
	if (n >= 0) {
		buf[n] = '\0';
		violated("a receiver got a message the dead receive-only client wrote into its slot: '%s'%s",
		         buf, strcmp(buf, FORGED) == 0 ? " (the forgery itself)" : "");
	} else if (n != -ETIMEDOUT) {
		violated("the receiver's wait ended with %s, not a timeout", ipcq_strerror((int)n));
	}
	r = stat_queue(sock, queue, &after);
	if (r < 0)
		return cannot("stat the queue", r);
	if (after.redelivered != before.redelivered)
		violated("redelivered went from %" PRIu64 " to %" PRIu64 ": the forgery was delivered",
		         before.redelivered, after.redelivered);

	/* the receiver works: a genuine message gets through */
	r = open_queue(sock, queue, IPCQ_SEND, &sc, &sq);
	if (r < 0)
		return cannot("open a sender", r);
	r = ipcq_send(sq, GENUINE, sizeof(GENUINE) - 1, 0, CALL_TIMEOUT_MS);
	close_queue(sc, sq);
	if (r < 0)
		return cannot("send a genuine message", r);
	n = ipcq_recv(q, buf, sizeof(buf) - 1, NULL, CALL_TIMEOUT_MS);
	if (n < 0)
		return cannot("receive the genuine message", (int)n);
	buf[n] = '\0';
	if (strcmp(buf, GENUINE) != 0)
		violated("the message after the forgery is '%s', not '%s'", buf, GENUINE);
	close_queue(c, q);
	if (!broken)
		printf("a message forged in a dead receive-only client's slot is not delivered, nor counted "
		       "redelivered (dropped %" PRIu64 ", rejected %" PRIu64 "); a genuine one after it is\n",
		       after.dropped - before.dropped, after.rejected - before.rejected);
	return broken;
}

/* ---- the mq ---- */

static int mq(const char *sock, const char *queue)
{
	struct proto_msg_hdr mh = { .kind = PROTO_MSG_INLINE, .len = sizeof(FORGED) - 1 };
	char msg[sizeof(mh) + sizeof(FORGED)];
	struct timespec until;
	ipcq_client *c;
	ipcq_queue *q;
	int r = open_queue(sock, queue, IPCQ_RECV, &c, &q);

	if (r < 0)
		return cannot("open the queue receive-only", r);
	memcpy(msg, &mh, sizeof(mh));
	memcpy(msg + sizeof(mh), FORGED, sizeof(FORGED) - 1);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += 100 * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	if (mq_timedsend(q->mq, msg, sizeof(mh) + sizeof(FORGED) - 1, 0, &until) == 0)
		violated("a receive-only handle's mq descriptor took a message");
	else if (errno != EBADF)
		violated("a send on a receive-only handle's mq failed with %s, not EBADF", strerror(errno));
	close_queue(c, q);
	if (!broken)
		printf("a receive-only handle's mq descriptor refuses a send (EBADF)\n");
	return broken;
}

/* ---- at-least-once: everything through the ring ---- */

static int ring_only(const char *sock, const char *queue)
{
	char buf[4096];
	ipcq_stats before, after;
	ipcq_client *c;
	ipcq_queue *q;
	ssize_t n;
	int r = open_queue(sock, queue, IPCQ_SEND | IPCQ_RECV, &c, &q);

	if (r < 0)
		return cannot("open the queue", r);
	r = ipcq_stat(c, queue, &before);
	if (r < 0)
		return cannot("stat the queue", r);
	if (before.delivery != 1) {
		fprintf(stderr, "rights ring-only: %s is not at-least-once (delivery %u)\n", queue,
		        before.delivery);
		return EXIT_CANNOT;
	}
	if (q->inline_max < sizeof(SMALL) - 1) {
		fprintf(stderr, "rights ring-only: %zu bytes could never go inline here\n", sizeof(SMALL) - 1);
		return EXIT_CANNOT;
	}
	r = ipcq_send(q, SMALL, sizeof(SMALL) - 1, 0, CALL_TIMEOUT_MS);
	if (r < 0)
		return cannot("send", r);
	r = ipcq_stat(c, queue, &after);
	if (r < 0)
		return cannot("stat the queue", r);
	if (after.sent != before.sent + 1) {
		fprintf(stderr, "rights ring-only: sent went from %" PRIu64 " to %" PRIu64 " for one send\n",
		        before.sent, after.sent);
		return EXIT_CANNOT;
	}
	if (after.sent_ring != before.sent_ring + 1)
		violated("a %zu-byte message in an at-least-once queue did not go through the ring "
		         "(sent_ring %" PRIu64 " -> %" PRIu64 ")",
		         sizeof(SMALL) - 1, before.sent_ring, after.sent_ring);
	n = ipcq_recv(q, buf, sizeof(buf), NULL, CALL_TIMEOUT_MS);
	if (n < 0)
		violated("the message did not come back: %s", ipcq_strerror((int)n));
	else if ((size_t)n != sizeof(SMALL) - 1 || memcmp(buf, SMALL, (size_t)n) != 0)
		violated("the message came back as %zd bytes '%.*s'", n, (int)n, buf);
	close_queue(c, q);
	if (!broken)
		printf("in an at-least-once queue a %zu-byte message goes through the ring and arrives intact\n",
		       sizeof(SMALL) - 1);
	return broken;
}

/* ---- a receiver killed between mq_receive and its take ---- */

#define MIDRECV_LEN 20000
#define MIDRECV_BACK_MS 800 /* well within two sweeps (the orphan rule) */

/* A receiver asleep, counted as ipcq_recv counts itself (so that the
 * sender puts the message into the window, backlog.h), takes a ring
 * descriptor off the mq into its receive buffer, as ipcq_recv does, and
 * is killed before it takes the chunk (the daemon takes its sleeping
 * count off again). */
static void receive_and_die(const char *sock, const char *queue, int ready)
{
	ipcq_client *c;
	ipcq_queue *q;
	unsigned prio;

	if (open_queue(sock, queue, IPCQ_RECV, &c, &q) < 0)
		_exit(EXIT_CANNOT);
	atomic_fetch_add(&ring_slot_at(&q->ring, (unsigned)q->home_slot)->sleeping, 1);
	backlog_sleeping(&q->ring, 1);
	if (write(ready, "", 1) != 1)
		_exit(EXIT_CANNOT);
	if (mq_receive(q->mq, (char *)q->buf[0], q->geo.msg_size, &prio) < 0) {
		perror("rights midreceive: mq_receive");
		_exit(EXIT_CANNOT);
	}
	raise(SIGKILL);
	_exit(EXIT_CANNOT);
}

static int midreceive(const char *sock, const char *queue)
{
	static char msg[MIDRECV_LEN];
	ipcq_client *c;
	ipcq_queue *q;
	ipcq_msg m;
	uint64_t t0;
	int status, r, ready[2];
	char byte;
	pid_t pid;

	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (char)('a' + i % 26);
	r = open_queue(sock, queue, IPCQ_SEND | IPCQ_RECV, &c, &q);
	if (r < 0)
		return cannot("open the queue", r);
	if (pipe(ready) < 0)
		return cannot("pipe", -errno);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return cannot("fork", -errno);
	if (pid == 0)
		receive_and_die(sock, queue, ready[1]);
	close(ready[1]);
	if (read(ready[0], &byte, 1) != 1)
		return cannot("wait for the receiver to sleep", -EPIPE);
	close(ready[0]);
	r = ipcq_send(q, msg, sizeof(msg), 0, CALL_TIMEOUT_MS);
	if (r < 0)
		return cannot("send", r);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return cannot("wait for the receiver", -errno);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		return EXIT_CANNOT;
	t0 = now_ms();
	r = ipcq_recv_view(q, &m, MIDRECV_BACK_MS);
	if (r < 0) {
		violated("the message a receiver took off the mq and died with did not come back within %d ms: %s",
		         MIDRECV_BACK_MS, ipcq_strerror(r));
	} else {
		if (m.len != sizeof(msg) || memcmp(m.data, msg, sizeof(msg)) != 0)
			violated("the message came back damaged (%zu bytes)", m.len);
		if (m.deliveries != 1 || (m.flags & IPCQ_MSG_REDELIVERED))
			violated("the message came back with deliveries %u, flags %#x: its receiver never had it",
			         m.deliveries, m.flags);
		ipcq_release(q, &m);
	}
	close_queue(c, q);
	if (!broken)
		printf("a ring message a receiver took off the mq and died with came back in %" PRIu64
		       " ms, intact, not flagged redelivered\n",
		       now_ms() - t0);
	return broken;
}

/* ---- receive buffers a client hands the daemon: hostile ones ---- */

/* Send RECV_BUFS for queue on c's connection with fd (or none), as a
 * hostile client would; the daemon's status, or a negative errno when no
 * reply came. */
static int raw_recv_bufs(ipcq_client *c, const char *queue, int fd)
{
	struct proto_req req;
	struct proto_reply rep;
	int got[4];
	unsigned n = 0;
	ssize_t len;

	proto_req_init(&req, PROTO_OP_RECV_BUFS, 0x7fff0000u, queue);
	len = fdpass_send(c->fd, &req, sizeof(req), &fd, fd >= 0, MSG_NOSIGNAL);
	if (len < 0)
		return (int)len;
	len = fdpass_recv(c->fd, &rep, sizeof(rep), got, 4, &n, 0);
	fdpass_close(got, n);
	if (len < (ssize_t)offsetof(struct proto_reply, errmsg))
		return len < 0 ? (int)len : -EPROTO;
	return rep.status;
}

/* Buffers that are not a sealed memfd of the right size are refused with
 * -EINVAL, and the daemon goes on serving; a proper one is taken. */
static int badbufs(const char *sock, const char *queue)
{
	size_t good = (size_t)PROTO_RECV_BUFS * 512; /* the queues' msg_size: the default */
	ipcq_client *c;
	ipcq_queue *q;
	ipcq_stats st;
	int fds[2], mfd, sealed, r;

	r = open_queue(sock, queue, IPCQ_RECV, &c, &q);
	if (r < 0)
		return cannot("open a receiver", r);
	if (pipe(fds) < 0)
		return cannot("pipe", -errno);
	mfd = memfd_create("unsealed", MFD_CLOEXEC);
	sealed = memfd_create("sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0 || sealed < 0 || ftruncate(mfd, (off_t)good) < 0 || ftruncate(sealed, (off_t)good / 2) < 0 ||
	    fcntl(sealed, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		return cannot("make memfds", -errno);
	struct {
		const char *what;
		int fd;
	} bad[] = { { "no descriptor", -1 },
		    { "a pipe", fds[0] },
		    { "a memfd that is not sealed", mfd },
		    { "a sealed memfd of half the size", sealed } };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = raw_recv_bufs(c, queue, bad[i].fd);
		if (r != -EINVAL)
			violated("receive buffers from %s: %s, not -EINVAL", bad[i].what,
			         r == 0 ? "taken" : ipcq_strerror(r));
	}
	r = ipcq_stat(c, queue, &st);
	if (r < 0)
		violated("the daemon does not answer after them: %s", ipcq_strerror(r));
	close(fds[0]);
	close(fds[1]);
	close(mfd);
	close(sealed);
	close_queue(c, q);
	if (!broken)
		printf("receive buffers that are no descriptor, a pipe, an unsealed memfd or a memfd of the wrong "
		       "size are refused with -EINVAL; the daemon goes on\n");
	return broken;
}

/* ---- receiving handles one connection may hold ---- */

#define RBUF_CONN_BOUND 256 /* daemon/rbuf.h RBUF_PER_CONN_MAX */

/* A connection's receiving handles are bounded (each is a mapping in the
 * daemon): the one past the bound is refused with -EUSERS, naming it, and
 * another connection still opens one. */
static int rbufs(const char *sock, const char *queue)
{
	static ipcq_queue *qs[RBUF_CONN_BOUND + 1];
	ipcq_client *c, *c2;
	ipcq_queue *q2;
	int r, n = 0;

	r = ipcq_connect(&c, sock);
	if (r < 0)
		return cannot("connect", r);
	/* over three queues QUEUE1..3: a queue has 128 receive slots */
	for (; n <= RBUF_CONN_BOUND; n++) {
		char name[IPCQ_NAME_MAX + 1];

		snprintf(name, sizeof(name), "%s%d", queue, n % 3 + 1);
		r = ipcq_open(c, name, IPCQ_RECV, &qs[n]);
		if (r < 0)
			break;
	}
	if (n != RBUF_CONN_BOUND || r != -EUSERS)
		violated("receiving handle %d on one connection: %s (the bound is %d, then -EUSERS)", n + 1,
		         r < 0 ? ipcq_strerror(r) : "opened", RBUF_CONN_BOUND);
	else if (!strstr(ipcq_last_error(c), "receiving handles"))
		violated("the refusal does not say why: '%s'", ipcq_last_error(c));
	{
		char name[IPCQ_NAME_MAX + 1];

		snprintf(name, sizeof(name), "%s1", queue);
		r = open_queue(sock, name, IPCQ_RECV, &c2, &q2);
	}
	if (r < 0)
		violated("another connection cannot open a receiving handle: %s", ipcq_strerror(r));
	else
		close_queue(c2, q2);
	while (n-- > 0)
		ipcq_close(qs[n]);
	ipcq_disconnect(c);
	if (!broken)
		printf("a connection holds %d receiving handles, the next is refused with -EUSERS naming the bound; "
		       "another connection still opens one\n",
		       RBUF_CONN_BOUND);
	return broken;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(const char *sock, const char *queue);
	} modes[] = {
		{ "maps", maps },
		{ "forge", forge },
		{ "mq", mq },
		{ "ring-only", ring_only },
		{ "midreceive", midreceive },
		{ "rbufs", rbufs },
		{ "badbufs", badbufs },
	};
	size_t i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; argc == 4 && i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(argv[1], modes[i].name) == 0) {
			mode = modes[i].name;
			return modes[i].run(argv[2], argv[3]);
		}
	}
	fprintf(stderr, "usage: rights maps|forge|mq|ring-only|midreceive|rbufs|badbufs SOCKET QUEUE\n");
	return 2;
}
