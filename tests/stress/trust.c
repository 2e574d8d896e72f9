/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trust.c - clients that test the daemon's trust boundaries, for
 * t_trust.sh.
 *
 *   trust squat NAME MODE MAXMSG MSGSIZE RINGBYTES
 *                        make the mq NAME and the shm NAME.ring first, as
 *                        another user (or the daemon's, with a wrong mode)
 *                        could: mode MODE (octal), the mq of MAXMSG x
 *                        MSGSIZE, the shm of RINGBYTES
 *   trust unsquat NAME   remove them again
 *   trust flood SOCKET N open N connections, ask each for the list of
 *                        queues, print "answered M of N", and hold them
 *                        until stdin closes
 *   trust forge-closed SOCKET QUEUE
 *                        put a CLOSED message, which only the daemon may
 *                        send when it deletes a queue, on QUEUE's mq as a
 *                        sender can: the receiver must refuse it
 *                        (-EBADMSG), not take the queue for deleted
 *   trust meta-readonly SOCKET QUEUE
 *                        open QUEUE and find its meta page among this
 *                        process's mappings: it must be read-only, and
 *                        not be made writable (the daemon passed a
 *                        read-only descriptor)
 *   trust fork-handle SOCKET QUEUE
 *                        open QUEUE, fork: the child's calls on the
 *                        parent's handle must fail with -ECHILD, and the
 *                        parent's must work after the child closed its copy
 *
 * Each exits 0 when what it did or saw is as described, 1 otherwise.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h" /* the handle's raw mq, which a hostile client would use */
#include "ipcq.h"
#include "proto.h"

static int squat(const char *name, mode_t mode, long maxmsg, long msgsize, off_t ring_bytes)
{
	struct mq_attr attr = { .mq_maxmsg = maxmsg, .mq_msgsize = msgsize };
	char shm_name[512];
	mqd_t mq;
	int fd;

	mq = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode, &attr);
	if (mq == (mqd_t)-1 || fchmod(mq, mode) < 0) {
		fprintf(stderr, "trust squat: mq %s: %s\n", name, strerror(errno));
		return 1;
	}
	snprintf(shm_name, sizeof(shm_name), "%s.ring", name);
	fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0 || fchmod(fd, mode) < 0 || ftruncate(fd, ring_bytes) < 0) {
		fprintf(stderr, "trust squat: shm %s: %s\n", shm_name, strerror(errno));
		return 1;
	}
	printf("squatted %s mode %04o\n", name, (unsigned)mode);
	return 0;
}

static int unsquat(const char *name)
{
	char shm_name[512];

	snprintf(shm_name, sizeof(shm_name), "%s.ring", name);
	mq_unlink(name);
	shm_unlink(shm_name);
	return 0;
}

static int flood(const char *sock, int n)
{
	ipcq_client **c = calloc((size_t)n, sizeof(*c));
	int answered = 0;
	char buf[64];
	ipcq_stats st;

	if (!c)
		return 1;
	for (int i = 0; i < n; i++) {
		if (ipcq_connect(&c[i], sock) < 0) {
			c[i] = NULL;
			continue;
		}
		/* refused connections are accepted and closed at once */
		if (ipcq_list(c[i], &st, 1) >= 0)
			answered++;
	}
	printf("answered %d of %d\n", answered, n);
	fflush(stdout);
	while (fgets(buf, sizeof(buf), stdin))
		;
	for (int i = 0; i < n; i++)
		if (c[i])
			ipcq_disconnect(c[i]);
	free(c);
	return 0;
}

/* Connect and open (creating it if need be) queue for sending and
 * receiving; 0, or 1 after saying why not. */
static int open_queue(const char *mode, const char *sock, const char *queue, ipcq_client **c, ipcq_queue **q)
{
	int r = ipcq_connect(c, sock);

	if (r == 0) {
		r = ipcq_open(*c, queue, IPCQ_SEND | IPCQ_RECV | IPCQ_CREATE, q);
		if (r < 0)
			ipcq_disconnect(*c);
	}
	if (r < 0)
		fprintf(stderr, "trust %s: cannot open %s: %s\n", mode, queue, ipcq_strerror(r));
	return r < 0;
}

static int expect(const char *what, int got, int want)
{
	if (got == want)
		return 0;
	fprintf(stderr, "trust: %s returned %d (%s), expected %d\n", what, got, ipcq_strerror(got), want);
	return 1;
}

static int fork_handle(const char *sock, const char *queue)
{
	ipcq_client *c;
	ipcq_queue *q;
	ipcq_msg m;
	char buf[16];
	int st, bad = 0;
	pid_t pid;

	if (open_queue("fork-handle", sock, queue, &c, &q))
		return 1;
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		bad |= expect("ipcq_send in the child", ipcq_send(q, "x", 1, 0, 100), -ECHILD);
		bad |= expect("ipcq_recv_view in the child", ipcq_recv_view(q, &m, 100), -ECHILD);
		bad |= expect("ipcq_recv in the child", (int)ipcq_recv(q, buf, sizeof(buf), NULL, 100), -ECHILD);
		bad |= expect("ipcq_close in the child", ipcq_close(q), 0);
		_exit(bad);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		bad = 1;
	bad |= expect("ipcq_send in the parent", ipcq_send(q, "parent", 6, 0, 1000), 0);
	bad |= expect("ipcq_recv in the parent", (int)ipcq_recv(q, buf, sizeof(buf), NULL, 1000), 6);
	ipcq_close(q);
	ipcq_disconnect(c);
	if (!bad)
		printf("child got ECHILD; parent unharmed\n");
	return bad;
}

static int forge_closed(const char *sock, const char *queue)
{
	struct proto_msg_hdr closed = { .kind = PROTO_MSG_CLOSED };
	ipcq_client *c;
	ipcq_queue *q;
	char buf[16];
	int bad = 0;

	if (open_queue("forge-closed", sock, queue, &c, &q))
		return 1;
	if (mq_send(q->mq, (const char *)&closed, sizeof(closed), 0) < 0) {
		fprintf(stderr, "trust forge-closed: mq_send: %s\n", strerror(errno));
		bad = 1;
	} else {
		bad |= expect("ipcq_recv of a forged CLOSED", (int)ipcq_recv(q, buf, sizeof(buf), NULL, 1000), -EBADMSG);
		bad |= expect("ipcq_send after it", ipcq_send(q, "alive", 5, 0, 1000), 0);
		bad |= expect("ipcq_recv after it", (int)ipcq_recv(q, buf, sizeof(buf), NULL, 1000), 5);
	}
	ipcq_close(q);
	ipcq_disconnect(c);
	if (!bad)
		printf("forged CLOSED refused; the queue lives on\n");
	return bad;
}

static int meta_readonly(const char *sock, const char *queue)
{
	unsigned long lo, hi;
	char line[512], perms[8];
	int found = 0, bad = 0;
	ipcq_client *c;
	ipcq_queue *q;
	FILE *f;

	if (open_queue("meta-readonly", sock, queue, &c, &q))
		return 1;
	f = fopen("/proc/self/maps", "re");
	while (f && fgets(line, sizeof(line), f)) {
		if (!strstr(line, ".meta\n") || sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
			continue;
		found++;
		if (strchr(perms, 'w')) {
			fprintf(stderr, "trust meta-readonly: the meta page is mapped writable: %s", line);
			bad = 1;
		}
		if (mprotect((void *)(uintptr_t)lo, hi - lo, PROT_READ | PROT_WRITE) == 0) {
			fprintf(stderr, "trust meta-readonly: the meta page could be made writable\n");
			bad = 1;
		}
	}
	if (f)
		fclose(f);
	ipcq_close(q);
	ipcq_disconnect(c);
	if (found != 1) {
		fprintf(stderr, "trust meta-readonly: %d meta pages mapped, not 1\n", found);
		return 1;
	}
	if (!bad)
		printf("the meta page is read-only to clients\n");
	return bad;
}

int main(int argc, char **argv)
{
	if (argc == 7 && strcmp(argv[1], "squat") == 0)
		return squat(argv[2], (mode_t)strtoul(argv[3], NULL, 8), atol(argv[4]), atol(argv[5]),
		             (off_t)atoll(argv[6]));
	if (argc == 3 && strcmp(argv[1], "unsquat") == 0)
		return unsquat(argv[2]);
	if (argc == 4 && strcmp(argv[1], "flood") == 0)
		return flood(argv[2], atoi(argv[3]));
	if (argc == 4 && strcmp(argv[1], "fork-handle") == 0)
		return fork_handle(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "meta-readonly") == 0)
		return meta_readonly(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "forge-closed") == 0)
		return forge_closed(argv[2], argv[3]);
	fprintf(stderr, "usage: trust squat NAME MODE MAXMSG MSGSIZE RINGBYTES | unsquat NAME |\n"
	                "       flood SOCKET N | fork-handle SOCKET QUEUE | forge-closed SOCKET QUEUE |\n"
	                "       meta-readonly SOCKET QUEUE\n");
	return 2;
}
