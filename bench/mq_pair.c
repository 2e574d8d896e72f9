/*
 * mq_pair.c - the baseline under ipcq_send/ipcq_recv: a raw POSIX message
 * queue between one producer process and one consumer process, one
 * mq_send and one mq_receive per message, with the geometry of a default
 * ipcq queue's mq (10 messages of 512 bytes).
 *
 * The queue is unlinked as soon as both ends hold it (the producer opens
 * it before the fork, the consumer inherits the descriptor), so no name
 * is left behind whatever ends the run, a signal included.  The clock
 * runs from the producer's first send, after the consumer is up, to the
 * consumer's last receive; both read CLOCK_MONOTONIC, one clock for all
 * processes, and the consumer's time comes back in a shared mapping.
 *
 * usage: mq_pair [SIZE [COUNT]]        (default: 64 bytes, 1000000)
 * prints: mq_pair size=SIZE count=COUNT seconds=S msgs_per_s=R
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <mqueue.h>
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

#define MQ_PAIR_MAX_MSGS 10
#define MQ_PAIR_MSG_SIZE 512

struct shared {
	uint64_t end_ns;   /* the consumer's last receive */
	uint64_t received;
	uint64_t bad;      /* messages of another size */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int parse_arg(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return *s >= '0' && *s <= '9' && !*end && !errno && *out <= max ? 0 : -1;
}

static int consume(mqd_t mq, unsigned long size, unsigned long count, struct shared *sh, int ready_fd)
{
	char buf[MQ_PAIR_MSG_SIZE];

	if (write(ready_fd, "", 1) != 1)
		return 1;
	close(ready_fd);
	for (unsigned long i = 0; i < count; i++) {
		ssize_t n = mq_receive(mq, buf, sizeof(buf), NULL);

		if (n < 0 && errno == EINTR) {
			i--;
			continue;
		}
		if (n < 0) {
			perror("mq_pair: mq_receive");
			return 1;
		}
		sh->bad += (unsigned long)n != size;
		sh->received++;
	}
	sh->end_ns = now_ns();
	return 0;
}

static int produce(mqd_t mq, unsigned long size, unsigned long count)
{
	char buf[MQ_PAIR_MSG_SIZE];

	memset(buf, 0x5a, sizeof(buf));
	for (unsigned long i = 0; i < count; i++) {
		memcpy(buf, &i, size < sizeof(i) ? size : sizeof(i));
		if (mq_send(mq, buf, size, 0) < 0) {
			if (errno == EINTR) {
				i--;
				continue;
			}
			perror("mq_pair: mq_send");
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct mq_attr attr = { .mq_maxmsg = MQ_PAIR_MAX_MSGS, .mq_msgsize = MQ_PAIR_MSG_SIZE };
	unsigned long size = 64, count = 1000000;
	struct shared *sh;
	char name[64], ch;
	int ready[2], status, bad = 0;
	uint64_t start;
	pid_t parent = getpid(), pid;
	mqd_t mq;

	if (argc > 3 || (argc > 1 && parse_arg(argv[1], MQ_PAIR_MSG_SIZE, &size) < 0) ||
	    (argc > 2 && (parse_arg(argv[2], ULONG_MAX, &count) < 0 || count == 0))) {
		fprintf(stderr, "usage: mq_pair [SIZE [COUNT]]   (SIZE at most %d, COUNT at least 1)\n",
			MQ_PAIR_MSG_SIZE);
		return 2;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED || pipe(ready) < 0) {
		perror("mq_pair");
		return 1;
	}
	snprintf(name, sizeof(name), "/ipcq-bench-mq_pair.%ld", (long)getpid());
	mq = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
	if (mq == (mqd_t)-1) {
		fprintf(stderr, "mq_pair: mq_open %s: %s\n", name, strerror(errno));
		return 1;
	}
	mq_unlink(name);

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("mq_pair: fork");
		return 1;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		close(ready[0]);
		_exit(consume(mq, size, count, sh, ready[1]));
	}
	close(ready[1]);
	if (read(ready[0], &ch, 1) != 1) {
		fprintf(stderr, "mq_pair: the consumer did not start\n");
		waitpid(pid, NULL, 0);
		return 1;
	}
	start = now_ns();
	if (produce(mq, size, count)) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		return 1;
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "mq_pair: the consumer failed\n");
		return 1;
	}
	mq_close(mq);
	if (sh->received != count || sh->bad) {
		fprintf(stderr, "mq_pair: received %" PRIu64 " messages (%" PRIu64 " of another size), sent %lu\n",
			sh->received, sh->bad, count);
		bad = 1;
	}
	printf("mq_pair size=%lu count=%lu seconds=%.6f msgs_per_s=%.0f\n", size, count,
	       (double)(sh->end_ns - start) / 1e9, (double)count / ((double)(sh->end_ns - start) / 1e9));
	return bad;
}
