/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_client_errors.c - libipcq's error paths without a real daemon
 * (libclient/client.c): bad arguments, sockets that are not daemons, and
 * a fake daemon on a temporary SOCK_SEQPACKET socket that answers with
 * garbage, errors or hang-ups.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipcq.h"
#include "proto.h"

/* ---- the fake daemon ---- */

enum reply_mode {
	REPLY_STATUS,          /* a well-formed reply with status (no records) */
	REPLY_BAD_MAGIC,       /* well-formed but for the magic */
	REPLY_BAD_SEQ,         /* answers another request */
	REPLY_TRUNCATED,       /* the first 16 bytes of a reply */
	REPLY_OVERSIZED,       /* more bytes than the reply the client expects */
	REPLY_NFDS_MISMATCH,   /* claims two descriptors, passes none */
	REPLY_OPEN_BOGUS_FDS,  /* success with a record and two /dev/null fds */
	REPLY_ERROR_WITH_FDS,  /* status with two /dev/null fds attached */
	REPLY_HANG_UP,         /* reads the request, hangs up without a reply, and goes */
	REPLY_HANG_UP_AT_ONCE, /* hangs up as soon as it accepts, and goes */
	REPLY_RESTART,         /* reads the request, hangs up; then, as a daemon that
	                        * restarted, accepts again and answers as REPLY_STATUS */
};

#define MAX_REQS 8

struct fake_daemon {
	char dir[256];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd;
	_Atomic int cfd;
	pthread_t th;
	bool running;
	/* the script */
	enum reply_mode mode;
	int status;
	const char *errmsg;
	/* what it received (read after stop) */
	unsigned nreq;
	struct proto_req req[MAX_REQS];
};

static int send_with_fds(int fd, const void *buf, size_t len, int nfds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} ctrl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fds[2] = { -1, -1 };
	ssize_t n;

	if (nfds > 0) {
		struct cmsghdr *cm;

		memset(&ctrl, 0, sizeof(ctrl));
		for (int i = 0; i < nfds; i++)
			fds[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
		mh.msg_control = &ctrl;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, (size_t)nfds * sizeof(int));
	}
	n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	return n < 0 ? -errno : 0;
}

static void fake_reply(struct fake_daemon *f, int fd, const struct proto_req *req)
{
	struct {
		struct proto_reply rep;
		ipcq_stats st[4];
	} r;
	size_t len = sizeof(r.rep);
	int nfds = 0;

	memset(&r, 0, sizeof(r));
	proto_reply_init(&r.rep, req, f->status);
	if (f->errmsg)
		snprintf(r.rep.errmsg, sizeof(r.rep.errmsg), "%s", f->errmsg);
	switch (f->mode) {
	case REPLY_STATUS:
		break;
	case REPLY_BAD_MAGIC:
		r.rep.magic = ~PROTO_MAGIC;
		break;
	case REPLY_BAD_SEQ:
		r.rep.seq = req->seq + 1;
		break;
	case REPLY_TRUNCATED:
		len = 16;
		break;
	case REPLY_OVERSIZED:
		/* what fits the client's buffer reads as a reply with one record */
		r.rep.count = 1;
		len = sizeof(r);
		break;
	case REPLY_NFDS_MISMATCH:
		r.rep.nfds = 2;
		break;
	case REPLY_OPEN_BOGUS_FDS:
		r.rep.count = 1;
		r.rep.nfds = 2;
		snprintf(r.st[0].name, sizeof(r.st[0].name), "%s", req->name);
		r.st[0].geo = (ipcq_geometry){ .max_msgs = 10, .msg_size = 256, .ring_size = 65536, .max_payload = 4096 };
		len += sizeof(ipcq_stats);
		nfds = 2;
		break;
	case REPLY_ERROR_WITH_FDS:
		r.rep.nfds = 2;
		nfds = 2;
		break;
	case REPLY_HANG_UP:
	case REPLY_HANG_UP_AT_ONCE:
	case REPLY_RESTART:
		return;
	}
	send_with_fds(fd, &r, len, nfds);
}

static void *fake_daemon_main(void *arg)
{
	struct fake_daemon *f = arg;
	unsigned char buf[sizeof(struct proto_req) + 64];
	int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return NULL;
	atomic_store(&f->cfd, fd);
	if (f->mode == REPLY_HANG_UP_AT_ONCE) {
		shutdown(f->lfd, SHUT_RDWR); /* gone: no new connection either */
		shutdown(fd, SHUT_RDWR);
		return NULL;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct proto_req req;

		if (n <= 0)
			break;
		memset(&req, 0, sizeof(req));
		memcpy(&req, buf, (size_t)n < sizeof(req) ? (size_t)n : sizeof(req));
		if (f->nreq < MAX_REQS)
			f->req[f->nreq] = req;
		f->nreq++;
		if (f->mode == REPLY_HANG_UP) {
			shutdown(f->lfd, SHUT_RDWR); /* gone: no new connection either */
			shutdown(fd, SHUT_RDWR);
			break;
		}
		if (f->mode == REPLY_RESTART) {
			/* the request is lost with the connection; the next one
			 * is answered */
			shutdown(fd, SHUT_RDWR);
			f->mode = REPLY_STATUS;
			fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				break;
			close(atomic_exchange(&f->cfd, fd));
			continue;
		}
		fake_reply(f, fd, &req);
	}
	return NULL;
}

static int setup_daemon(void **state)
{
	struct fake_daemon *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (!f)
		return -1;
	f->lfd = -1;
	atomic_store(&f->cfd, -1);
	snprintf(f->dir, sizeof(f->dir), "%s/test_client_errors.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(f->dir))
		return -1;
	if ((size_t)snprintf(f->path, sizeof(f->path), "%s/ctl.sock", f->dir) >= sizeof(f->path))
		return -1;
	strcpy(sa.sun_path, f->path);
	f->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(f->lfd, 4) < 0)
		return -1;
	*state = f;
	return 0;
}

static void daemon_start(struct fake_daemon *f, enum reply_mode mode, int status, const char *errmsg)
{
	f->mode = mode;
	f->status = status;
	f->errmsg = errmsg;
	assert_int_equal(pthread_create(&f->th, NULL, fake_daemon_main, f), 0);
	f->running = true;
}

/* Wait for the daemon thread; wake it first if it is still blocked. */
static void daemon_stop(struct fake_daemon *f)
{
	int fd;

	if (!f->running)
		return;
	shutdown(f->lfd, SHUT_RDWR);
	fd = atomic_load(&f->cfd);
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	pthread_join(f->th, NULL);
	f->running = false;
}

static int teardown_daemon(void **state)
{
	struct fake_daemon *f = *state;
	int fd;

	if (!f)
		return 0;
	daemon_stop(f);
	fd = atomic_load(&f->cfd);
	if (fd >= 0)
		close(fd);
	if (f->lfd >= 0)
		close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static ipcq_client *connect_to(struct fake_daemon *f)
{
	ipcq_client *c = NULL;

	assert_int_equal(ipcq_connect(&c, f->path), 0);
	assert_non_null(c);
	return c;
}

static unsigned open_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* ---- connecting ---- */

static void test_connect_to_missing_socket_is_econnrefused_not_enoent(void **state)
{
	struct fake_daemon *f = *state;
	char path[PATH_MAX];
	ipcq_client *c = NULL;

	/* -ENOENT would read as "no such queue" */
	snprintf(path, sizeof(path), "%s/nobody-here.sock", f->dir);
	assert_int_equal(ipcq_connect(&c, path), -ECONNREFUSED);
	assert_null(c);
}

/* Make f's socket the per-user daemon of namespace "default" in a runtime
 * dir of its own: $XDG_RUNTIME_DIR/ipcbroker/default.sock links to it. */
static void fake_user_runtime_dir(struct fake_daemon *f, char *link, size_t cap)
{
	char sub[sizeof(f->dir) + 16];

	snprintf(sub, sizeof(sub), "%s/ipcbroker", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(link, cap, "%s/default.sock", sub);
	assert_int_equal(symlink(f->path, link), 0);
	setenv("XDG_RUNTIME_DIR", f->dir, 1);
}

static void remove_user_runtime_dir(struct fake_daemon *f, const char *link)
{
	char sub[sizeof(f->dir) + 16];

	unlink(link);
	snprintf(sub, sizeof(sub), "%s/ipcbroker", f->dir);
	rmdir(sub);
	unsetenv("XDG_RUNTIME_DIR");
	unsetenv("IPCQ_USER");
	unsetenv("IPCQ_SOCKET");
	unsetenv("IPCQ_NAMESPACE");
}

static void test_connect_user_finds_the_runtime_dir_socket(void **state)
{
	struct fake_daemon *f = *state;
	char link[PATH_MAX];
	ipcq_client *c = NULL;

	fake_user_runtime_dir(f, link, sizeof(link));
	assert_int_equal(ipcq_connect_namespace(&c, NULL, IPCQ_CONNECT_USER), 0);
	ipcq_disconnect(c);
	/* the environment's way to ask for the same */
	unsetenv("IPCQ_SOCKET");
	setenv("IPCQ_USER", "1", 1);
	c = NULL;
	assert_int_equal(ipcq_connect(&c, NULL), 0);
	ipcq_disconnect(c);
	/* IPCQ_SOCKET beats IPCQ_USER */
	setenv("IPCQ_SOCKET", "/nonexistent/x.sock", 1);
	c = NULL;
	assert_int_equal(ipcq_connect(&c, NULL), -ECONNREFUSED);
	assert_null(c);
	remove_user_runtime_dir(f, link);
}

static void test_connect_user_without_runtime_dir_is_edestaddrreq(void **state)
{
	ipcq_client *c = NULL;

	unsetenv("XDG_RUNTIME_DIR");
	unsetenv("IPCQ_SOCKET");
	assert_int_equal(ipcq_connect_namespace(&c, "default", IPCQ_CONNECT_USER), -EDESTADDRREQ);
	setenv("IPCQ_USER", "yes", 1);
	assert_int_equal(ipcq_connect(&c, NULL), -EDESTADDRREQ);
	assert_null(c);
	unsetenv("IPCQ_USER");
	assert_string_not_equal(ipcq_strerror(-EDESTADDRREQ), ipcq_strerror(-ENOENT));
}

static void test_connect_namespace_checks_its_arguments(void **state)
{
	ipcq_client *c = NULL;

	assert_int_equal(ipcq_connect_namespace(NULL, NULL, 0), -EINVAL);
	assert_int_equal(ipcq_connect_namespace(&c, NULL, 1u << 7), -EINVAL);
	assert_int_equal(ipcq_connect_namespace(&c, "a/b", 0), -EINVAL);
	assert_null(c);
}

static void test_connect_to_regular_file_is_econnrefused(void **state)
{
	struct fake_daemon *f = *state;
	char path[PATH_MAX];
	ipcq_client *c = NULL;
	int fd;

	snprintf(path, sizeof(path), "%s/plain-file", f->dir);
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ipcq_connect(&c, path), -ECONNREFUSED);
	assert_null(c);
	unlink(path);
}

static void test_connect_to_too_long_path_is_enametoolong(void **state)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	ipcq_client *c = NULL;

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0'; /* one byte too many for sun_path and its NUL */
	assert_int_equal(ipcq_connect(&c, path), -ENAMETOOLONG);
	assert_null(c);
}

static void test_connect_without_out_pointer_is_einval(void **state)
{
	struct fake_daemon *f = *state;

	assert_int_equal(ipcq_connect(NULL, f->path), -EINVAL);
}

static void test_connect_to_listening_socket_succeeds(void **state)
{
	struct fake_daemon *f = *state;
	ipcq_client *c;

	daemon_start(f, REPLY_STATUS, 0, NULL);
	c = connect_to(f);
	assert_string_equal(ipcq_last_error(c), "");
	ipcq_disconnect(c);
	daemon_stop(f);
	assert_int_equal(f->nreq, 0);
}

/* ---- replies that are not replies ---- */

/* A request answered the fake daemon's way gives want. */
static void assert_delete_gives(struct fake_daemon *f, enum reply_mode mode, int want)
{
	ipcq_client *c;
	unsigned fds_before = open_fd_count();
	int r;

	daemon_start(f, mode, 0, NULL);
	c = connect_to(f);
	r = ipcq_delete(c, "jobs");
	if (r != want)
		print_error("ipcq_delete: %d (%s), wanted %d\n", r, ipcq_strerror(r), want);
	assert_int_equal(r, want);
	ipcq_disconnect(c);
	daemon_stop(f);
	assert_int_equal(f->nreq, 1);
	assert_int_equal(f->req[0].op, PROTO_OP_DELETE);
	assert_string_equal(f->req[0].name, "jobs");
	assert_int_equal(open_fd_count(), fds_before + 1); /* the daemon's end */
}

static void test_reply_with_wrong_magic_is_eproto(void **state)
{
	assert_delete_gives(*state, REPLY_BAD_MAGIC, -EPROTO);
}

static void test_reply_with_wrong_seq_is_eproto(void **state)
{
	assert_delete_gives(*state, REPLY_BAD_SEQ, -EPROTO);
}

static void test_truncated_reply_is_eproto(void **state)
{
	assert_delete_gives(*state, REPLY_TRUNCATED, -EPROTO);
}

static void test_oversized_reply_is_eproto(void **state)
{
	assert_delete_gives(*state, REPLY_OVERSIZED, -EPROTO);
}

static void test_reply_claiming_unpassed_descriptors_is_eproto(void **state)
{
	assert_delete_gives(*state, REPLY_NFDS_MISMATCH, -EPROTO);
}

static void test_well_formed_reply_gives_its_status(void **state)
{
	assert_delete_gives(*state, REPLY_STATUS, 0);
}

static void test_stat_reply_without_record_is_eproto(void **state)
{
	struct fake_daemon *f = *state;
	ipcq_stats st;
	ipcq_client *c;

	daemon_start(f, REPLY_STATUS, 0, NULL);
	c = connect_to(f);
	assert_int_equal(ipcq_stat(c, "jobs", &st), -EPROTO);
	ipcq_disconnect(c);
}

/* ---- errors the daemon explains ---- */

static void test_open_refused_by_daemon_gives_status_and_errmsg(void **state)
{
	struct fake_daemon *f = *state;
	const char *why = "queue jobs: uid 1000 may not receive";
	ipcq_queue *q = NULL;
	ipcq_client *c;

	daemon_start(f, REPLY_STATUS, -EACCES, why);
	c = connect_to(f);
	assert_int_equal(ipcq_open(c, "jobs", IPCQ_RECV, &q), -EACCES);
	assert_null(q);
	assert_string_equal(ipcq_last_error(c), why);
	/* the next call starts with a clean slate */
	f->errmsg = NULL;
	assert_int_equal(ipcq_delete(c, "jobs"), -EACCES);
	assert_string_equal(ipcq_last_error(c), "");
	ipcq_disconnect(c);
	daemon_stop(f);
	assert_int_equal(f->nreq, 2);
	assert_int_equal(f->req[0].op, PROTO_OP_OPEN);
	assert_int_equal(f->req[0].flags, IPCQ_RECV);
	assert_string_equal(f->req[0].name, "jobs");
}

static void test_descriptors_passed_with_an_error_are_closed(void **state)
{
	struct fake_daemon *f = *state;
	unsigned fds_before = open_fd_count();
	ipcq_queue *q = NULL;
	ipcq_client *c;

	daemon_start(f, REPLY_ERROR_WITH_FDS, -EACCES, "no");
	c = connect_to(f);
	assert_int_equal(ipcq_open(c, "jobs", IPCQ_SEND, &q), -EACCES);
	assert_null(q);
	ipcq_disconnect(c);
	daemon_stop(f);
	assert_int_equal(open_fd_count(), fds_before + 1); /* the daemon's end */
}

static void test_open_with_descriptors_that_are_no_queue_is_eproto(void **state)
{
	struct fake_daemon *f = *state;
	unsigned fds_before = open_fd_count();
	ipcq_queue *q = NULL;
	ipcq_client *c;

	daemon_start(f, REPLY_OPEN_BOGUS_FDS, 0, NULL);
	c = connect_to(f);
	assert_int_equal(ipcq_open(c, "jobs", IPCQ_SEND | IPCQ_RECV, &q), -EPROTO);
	assert_null(q);
	ipcq_disconnect(c);
	daemon_stop(f);
	assert_int_equal(open_fd_count(), fds_before + 1); /* the daemon's end */
}

/* ---- a daemon that goes away ---- */

static void assert_connection_lost(int r)
{
	if (r != -ECONNRESET && r != -EPIPE)
		print_error("got %d (%s), wanted -ECONNRESET or -EPIPE\n", r, ipcq_strerror(r));
	assert_true(r == -ECONNRESET || r == -EPIPE);
}

static void test_daemon_hanging_up_after_request_is_connection_error(void **state)
{
	struct fake_daemon *f = *state;
	ipcq_queue *q = NULL;
	ipcq_client *c;

	daemon_start(f, REPLY_HANG_UP, 0, NULL);
	c = connect_to(f);
	assert_connection_lost(ipcq_open(c, "jobs", IPCQ_SEND, &q));
	assert_null(q);
	/* and it stays an error, not a hang */
	assert_connection_lost(ipcq_delete(c, "jobs"));
	ipcq_disconnect(c);
}

/* The daemon restarts after it read a delete: the reply is lost, and a
 * delete is not asked twice (the daemon may have done it); the next call
 * connects again and is answered. */
static void test_daemon_restarting_after_a_request_is_connected_to_again(void **state)
{
	struct fake_daemon *f = *state;
	ipcq_client *c;

	daemon_start(f, REPLY_RESTART, 0, NULL);
	c = connect_to(f);
	assert_connection_lost(ipcq_delete(c, "jobs"));
	assert_int_equal(ipcq_delete(c, "jobs"), 0);
	ipcq_disconnect(c);
	daemon_stop(f);
	assert_int_equal(f->nreq, 2);
}

static void test_daemon_hanging_up_at_once_is_connection_error(void **state)
{
	struct fake_daemon *f = *state;
	ipcq_client *c;

	daemon_start(f, REPLY_HANG_UP_AT_ONCE, 0, NULL);
	c = connect_to(f);
	assert_connection_lost(ipcq_delete(c, "jobs"));
	ipcq_disconnect(c);
}

/* ---- arguments checked before anything is sent ---- */

static void test_open_with_invalid_name_or_flags_sends_nothing(void **state)
{
	struct fake_daemon *f = *state;
	ipcq_queue *q = NULL;
	ipcq_client *c;

	daemon_start(f, REPLY_STATUS, 0, NULL);
	c = connect_to(f);
	assert_int_equal(ipcq_open(c, "", IPCQ_SEND, &q), -EINVAL);
	assert_int_equal(ipcq_open(c, "a/b", IPCQ_SEND, &q), -EINVAL);
	assert_int_equal(ipcq_open(c, NULL, IPCQ_SEND, &q), -EINVAL);
	assert_int_equal(ipcq_open(c, "jobs", 0, &q), -EINVAL);
	assert_int_equal(ipcq_open(c, "jobs", IPCQ_CREATE, &q), -EINVAL);
	assert_int_equal(ipcq_open(c, "jobs", IPCQ_SEND | (1 << 7), &q), -EINVAL);
	assert_int_equal(ipcq_open(c, "jobs", IPCQ_SEND, NULL), -EINVAL);
	assert_int_equal(ipcq_open(NULL, "jobs", IPCQ_SEND, &q), -EINVAL);
	assert_null(q);
	assert_int_equal(ipcq_create(c, ".x", NULL), -EINVAL);
	assert_int_equal(ipcq_delete(c, "a b"), -EINVAL);
	assert_int_equal(ipcq_purge(c, ""), -EINVAL);
	/* a valid request after them is the first the daemon sees */
	assert_int_equal(ipcq_delete(c, "jobs"), 0);
	ipcq_disconnect(c);
	daemon_stop(f);
	assert_int_equal(f->nreq, 1);
	assert_int_equal(f->req[0].op, PROTO_OP_DELETE);
	assert_string_equal(f->req[0].name, "jobs");
}

static void test_calls_without_queue_or_client_are_einval(void **state)
{
	char buf[16];
	ipcq_msg m;
	ipcq_stats st;
	ipcq_geometry geo;
	void *loan = NULL;

	memset(&m, 0, sizeof(m));
	assert_int_equal(ipcq_send(NULL, "x", 1, 0, 0), -EINVAL);
	assert_int_equal(ipcq_send(NULL, "x", 1, 0, -1), -EINVAL);
	assert_int_equal(ipcq_recv(NULL, buf, sizeof(buf), NULL, 0), -EINVAL);
	assert_int_equal(ipcq_recv(NULL, buf, sizeof(buf), NULL, -1), -EINVAL);
	assert_int_equal(ipcq_recv_view(NULL, &m, 0), -EINVAL);
	assert_int_equal(ipcq_release(NULL, &m), -EINVAL);
	assert_int_equal(ipcq_loan(NULL, 10, &loan, 0), -EINVAL);
	assert_int_equal(ipcq_publish(NULL, buf, 1, 0), -EINVAL);
	assert_int_equal(ipcq_unloan(NULL, buf), -EINVAL);
	assert_int_equal(ipcq_close(NULL), -EINVAL);
	assert_int_equal(ipcq_fd(NULL), -EINVAL);
	assert_int_equal(ipcq_notify(NULL, 10), -EINVAL);
	assert_int_equal(ipcq_geometry_of(NULL, &geo), -EINVAL);
	assert_int_equal(ipcq_create(NULL, "jobs", NULL), -EINVAL);
	assert_int_equal(ipcq_delete(NULL, "jobs"), -EINVAL);
	assert_int_equal(ipcq_purge(NULL, "jobs"), -EINVAL);
	assert_int_equal(ipcq_stat(NULL, "jobs", &st), -EINVAL);
	assert_int_equal(ipcq_list(NULL, &st, 1), -EINVAL);
	assert_string_equal(ipcq_last_error(NULL), "");
	ipcq_disconnect(NULL);
}

/* ---- error texts ---- */

static void assert_has_text(int err)
{
	const char *s = ipcq_strerror(err);

	assert_non_null(s);
	if (!*s)
		print_error("ipcq_strerror(%d) is empty\n", err);
	assert_true(*s != '\0');
}

static void test_strerror_has_text_for_every_value(void **state)
{
	const int errs[] = { -ETIMEDOUT, -EBADMSG, -ESTALE, -EMSGSIZE, -EAGAIN, -EUSERS, -EPROTO,
		             -ENOENT,    -EACCES,  -EIO,    0,         12345,   -12345,  EIO,
		             ETIMEDOUT,  INT_MAX };

	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		assert_has_text(errs[i]);
}

static void test_strerror_ignores_sign(void **state)
{
	assert_string_equal(ipcq_strerror(-ETIMEDOUT), ipcq_strerror(ETIMEDOUT));
	assert_string_equal(ipcq_strerror(-EBADMSG), ipcq_strerror(EBADMSG));
	assert_string_equal(ipcq_strerror(-EIO), ipcq_strerror(EIO));
	assert_string_not_equal(ipcq_strerror(-EBADMSG), ipcq_strerror(-ESTALE));
}

static void test_strerror_of_int_min_is_text(void **state)
{
	assert_has_text(INT_MIN);
}

#define DAEMON_TEST(f) cmocka_unit_test_setup_teardown(f, setup_daemon, teardown_daemon)

int main(void)
{
	const struct CMUnitTest tests[] = {
		DAEMON_TEST(test_connect_to_missing_socket_is_econnrefused_not_enoent),
		DAEMON_TEST(test_connect_user_finds_the_runtime_dir_socket),
		cmocka_unit_test(test_connect_user_without_runtime_dir_is_edestaddrreq),
		cmocka_unit_test(test_connect_namespace_checks_its_arguments),
		DAEMON_TEST(test_connect_to_regular_file_is_econnrefused),
		cmocka_unit_test(test_connect_to_too_long_path_is_enametoolong),
		DAEMON_TEST(test_connect_without_out_pointer_is_einval),
		DAEMON_TEST(test_connect_to_listening_socket_succeeds),
		DAEMON_TEST(test_reply_with_wrong_magic_is_eproto),
		DAEMON_TEST(test_reply_with_wrong_seq_is_eproto),
		DAEMON_TEST(test_truncated_reply_is_eproto),
		DAEMON_TEST(test_oversized_reply_is_eproto),
		DAEMON_TEST(test_reply_claiming_unpassed_descriptors_is_eproto),
		DAEMON_TEST(test_well_formed_reply_gives_its_status),
		DAEMON_TEST(test_stat_reply_without_record_is_eproto),
		DAEMON_TEST(test_open_refused_by_daemon_gives_status_and_errmsg),
		DAEMON_TEST(test_descriptors_passed_with_an_error_are_closed),
		DAEMON_TEST(test_open_with_descriptors_that_are_no_queue_is_eproto),
		DAEMON_TEST(test_daemon_hanging_up_after_request_is_connection_error),
		DAEMON_TEST(test_daemon_restarting_after_a_request_is_connected_to_again),
		DAEMON_TEST(test_daemon_hanging_up_at_once_is_connection_error),
		DAEMON_TEST(test_open_with_invalid_name_or_flags_sends_nothing),
		cmocka_unit_test(test_calls_without_queue_or_client_are_einval),
		cmocka_unit_test(test_strerror_has_text_for_every_value),
		cmocka_unit_test(test_strerror_ignores_sign),
		cmocka_unit_test(test_strerror_of_int_min_is_text),
	};

	alarm(60); /* a client blocked on a silent daemon is a failure, not a hang */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
