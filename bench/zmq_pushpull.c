/*
 * zmq_pushpull.c - the peer ipcq's batches are measured against: ZeroMQ
 * PUSH/PULL over ipc://, one producer process, one consumer process, with
 * ZeroMQ's defaults (high-water marks of 1000 messages), as a user would
 * write it.  ZeroMQ batches small messages into each write under load,
 * which is why it beats one syscall per message.
 *
 * The socket lives in a private directory made with mkdtemp; the consumer
 * binds it, the producer connects.  The directory and the socket are
 * removed at the end, and on SIGINT, SIGTERM or SIGHUP (the consumer dies
 * with the producer).  The clock runs from the producer's first send,
 * after the consumer has bound, to the consumer's last receive
 * (CLOCK_MONOTONIC, one clock for both processes).  The producer keeps
 * its socket open until the consumer is done, so that no message is lost
 * to a teardown; a consumer that waits STALL_SECONDS for a message
 * reports what it got and fails rather than hang.
 *
 * usage: zmq_pushpull [SIZE [COUNT]]    (default: 64 bytes, 1000000)
 * prints: zmq_pushpull size=SIZE count=COUNT seconds=S msgs_per_s=R
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define SIZE_MAX_ARG (64ul << 20)
#define STALL_SECONDS 10

struct shared {
	uint64_t end_ns;   /* the consumer's last receive */
	uint64_t received;
	uint64_t bad;      /* messages of another size */
};

/* Where the socket is, for the signal handler too; a Unix socket's path
 * holds at most 107 bytes. */
static char dir_path[100];
static char sock_path[sizeof(dir_path) + 2];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void remove_socket_dir(void)
{
	unlink(sock_path);
	rmdir(dir_path);
}

/* Only async-signal-safe calls: unlink, rmdir, signal, raise. */
static void on_signal(int signo)
{
	remove_socket_dir();
	signal(signo, SIG_DFL);
	raise(signo);
}

static int parse_arg(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return *s >= '0' && *s <= '9' && !*end && !errno && *out <= max ? 0 : -1;
}

static int zmq_fail(const char *what)
{
	fprintf(stderr, "zmq_pushpull: %s: %s\n", what, zmq_strerror(zmq_errno()));
	return 1;
}

static int consume(const char *endpoint, unsigned long size, unsigned long count, struct shared *sh, int ready_fd)
{
	char *buf = malloc(size + 1);
	void *ctx = zmq_ctx_new();
	void *s = ctx ? zmq_socket(ctx, ZMQ_PULL) : NULL;
	int stall_ms = STALL_SECONDS * 1000;
	int r = 1;

	if (!buf || !s)
		goto out;
	if (zmq_setsockopt(s, ZMQ_RCVTIMEO, &stall_ms, sizeof(stall_ms)) < 0) {
		zmq_fail("zmq_setsockopt");
		goto out;
	}
	if (zmq_bind(s, endpoint) < 0) {
		zmq_fail("zmq_bind");
		goto out;
	}
	if (write(ready_fd, "", 1) != 1)
		goto out;
	close(ready_fd);
	for (unsigned long i = 0; i < count; i++) {
		int n = zmq_recv(s, buf, size + 1, 0);

		if (n < 0 && zmq_errno() == EINTR) {
			i--;
			continue;
		}
		if (n < 0 && zmq_errno() == EAGAIN) {
			fprintf(stderr, "zmq_pushpull: no message for %d s: received %" PRIu64 " of %lu\n", STALL_SECONDS,
				sh->received, count);
			goto out;
		}
		if (n < 0) {
			zmq_fail("zmq_recv");
			goto out;
		}
		sh->bad += (unsigned long)n != size;
		sh->received++;
	}
	sh->end_ns = now_ns();
	r = 0;
out:
	if (s)
		zmq_close(s);
	if (ctx)
		zmq_ctx_term(ctx);
	free(buf);
	return r;
}

/* Send count messages, then wait for the consumer (pid) before closing. */
static int produce(const char *endpoint, unsigned long size, unsigned long count, uint64_t *start, pid_t pid,
		   int *status)
{
	char *buf = malloc(size ? size : 1);
	void *ctx = zmq_ctx_new();
	void *s = ctx ? zmq_socket(ctx, ZMQ_PUSH) : NULL;
	int r = 1;

	if (!buf || !s)
		goto out;
	memset(buf, 0x5a, size);
	if (zmq_connect(s, endpoint) < 0) {
		zmq_fail("zmq_connect");
		goto out;
	}
	*start = now_ns();
	for (unsigned long i = 0; i < count; i++) {
		memcpy(buf, &i, size < sizeof(i) ? size : sizeof(i));
		if (zmq_send(s, buf, size, 0) < 0) {
			if (zmq_errno() == EINTR) {
				i--;
				continue;
			}
			zmq_fail("zmq_send");
			goto out;
		}
	}
	if (waitpid(pid, status, 0) == pid)
		r = 0;
out:
	if (s)
		zmq_close(s);
	if (ctx)
		zmq_ctx_term(ctx);
	free(buf);
	return r;
}

static int run(unsigned long size, unsigned long count, struct shared *sh)
{
	char endpoint[sizeof(sock_path) + 6], ch;
	uint64_t start = 0;
	int ready[2], status;
	pid_t parent = getpid(), pid;

	snprintf(endpoint, sizeof(endpoint), "ipc://%s", sock_path);
	if (pipe(ready) < 0) {
		perror("zmq_pushpull: pipe");
		return 1;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("zmq_pushpull: fork");
		return 1;
	}
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		close(ready[0]);
		_exit(consume(endpoint, size, count, sh, ready[1]));
	}
	close(ready[1]);
	if (read(ready[0], &ch, 1) != 1) {
		fprintf(stderr, "zmq_pushpull: the consumer did not start\n");
		waitpid(pid, NULL, 0);
		return 1;
	}
	if (produce(endpoint, size, count, &start, pid, &status)) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		return 1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "zmq_pushpull: the consumer failed\n");
		return 1;
	}
	if (sh->received != count || sh->bad) {
		fprintf(stderr, "zmq_pushpull: received %" PRIu64 " messages (%" PRIu64 " of another size), sent %lu\n",
			sh->received, sh->bad, count);
		return 1;
	}
	printf("zmq_pushpull size=%lu count=%lu seconds=%.6f msgs_per_s=%.0f\n", size, count,
	       (double)(sh->end_ns - start) / 1e9, (double)count / ((double)(sh->end_ns - start) / 1e9));
	return 0;
}

int main(int argc, char **argv)
{
	const char *tmp = getenv("TMPDIR");
	unsigned long size = 64, count = 1000000;
	struct sigaction sa = { .sa_handler = on_signal };
	struct shared *sh;
	int r;

	if (argc > 3 || (argc > 1 && parse_arg(argv[1], SIZE_MAX_ARG, &size) < 0) ||
	    (argc > 2 && (parse_arg(argv[2], ULONG_MAX, &count) < 0 || count == 0))) {
		fprintf(stderr, "usage: zmq_pushpull [SIZE [COUNT]]   (SIZE at most %lu, COUNT at least 1)\n",
			SIZE_MAX_ARG);
		return 2;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("zmq_pushpull: mmap");
		return 1;
	}
	if (snprintf(dir_path, sizeof(dir_path), "%s/ipcq-bench-zmq.XXXXXX", tmp && *tmp ? tmp : "/tmp") >=
	    (int)sizeof(dir_path)) {
		fprintf(stderr, "zmq_pushpull: TMPDIR is too long for a socket path: %s\n", tmp);
		return 1;
	}
	/* Handlers first, so no signal finds the directory made and not known. */
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaddset(&sa.sa_mask, SIGHUP);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (!mkdtemp(dir_path)) {
		fprintf(stderr, "zmq_pushpull: mkdtemp %s: %s\n", dir_path, strerror(errno));
		dir_path[0] = '\0';
		return 1;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/s", dir_path);
	r = run(size, count, sh);
	remove_socket_dir();
	return r;
}
