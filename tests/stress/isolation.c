/* SPDX-License-Identifier: Apache-2.0 */
/*
 * isolation.c - senders of one queue kept apart, for t_isolation.sh.
 *
 *   isolation secret SOCKET QUEUE TOKEN N
 *       sends N messages through the ring (4000 to 20000 bytes each), each
 *       "<TOKEN> <seq> <len> <checksum>" and then bytes that follow from
 *       seq, and exits, leaving them waiting
 *   isolation spy SOCKET QUEUE TOKEN PREFIX
 *       a send-only client: sends one message (so that it has whatever
 *       a sender gets), then looks for TOKEN in every byte it can read: every
 *       shared mapping of its process, and every object under /dev/shm
 *       named PREFIX... it can open by name.  Exit 0 when it finds nothing, 1 when it finds
 *       TOKEN (printing where), 3 when it could not look
 *   isolation wreck SOCKET QUEUE ROUNDS
 *       a hostile send-only client: ROUNDS times, writes random bytes, then
 *       0xff, then zeros over every byte of every shared mapping of its
 *       process it can write, and puts forged ring descriptors (lanes 0 to
 *       8, every offset a chunk can have in the first 64 KiB, generations
 *       1 to 4) and garbage into the window as far as it takes them.
 *       Exit 0 (it did what it could), 3 when it could not open the queue
 *   isolation hold SOCKET QUEUE TOKEN
 *       a send-only client that sends one message, then closes its
 *       connection to the daemon but keeps its mappings, says "ready" on
 *       stdout and waits for a line on stdin; then looks for TOKEN in its
 *       shared mappings (as spy does): exit 0 when it finds nothing, 1
 *       when it does.  A lane it had must not go to another user while it
 *       lives
 *   isolation check SOCKET QUEUE TOKEN N
 *       receives until the queue is empty for 5 s (or 30 s pass) and
 *       checks that the N messages of secret arrived, each once, intact;
 *       errors from forged descriptors (-EBADMSG) are counted, not fatal.
 *       Exit 0 when all N came intact, 1 when not (saying what)
 * Every wait is bounded.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <mqueue.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

#define EXIT_CANNOT 3
#define MSG_MIN 4000u
#define MSG_MAX 20000u

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
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

static int cannot(const char *what, int err)
{
	fprintf(stderr, "isolation: cannot %s: %s\n", what, ipcq_strerror(err));
	return EXIT_CANNOT;
}

/* The bytes of message seq: a header, then bytes that follow from seq. */
static size_t make_message(char *buf, const char *token, unsigned seq)
{
	size_t len = MSG_MIN + (seq * 7919u) % (MSG_MAX - MSG_MIN);
	uint32_t sum = 0;
	int head;

	for (size_t i = 64; i < len; i++) {
		buf[i] = (char)('a' + (seq + i * 31u) % 26u);
		sum = sum * 31u + (unsigned char)buf[i];
	}
	head = snprintf(buf, 64, "%s %u %zu %08" PRIx32 " ", token, seq, len, sum);
	memset(buf + head, ' ', 64 - (size_t)head);
	return len;
}

static int secret(const char *sock, const char *queue, const char *token, unsigned n)
{
	static char buf[MSG_MAX];
	ipcq_client *c;
	ipcq_queue *q;
	int r = open_queue(sock, queue, IPCQ_SEND, &c, &q);

	if (r < 0)
		return cannot("open the queue for sending", r);
	for (unsigned i = 0; i < n; i++) {
		size_t len = make_message(buf, token, i);

		r = ipcq_send(q, buf, len, 0, 5000);
		if (r < 0)
			return cannot("send", r);
	}
	printf("secret: %u messages sent\n", n);
	ipcq_close(q);
	ipcq_disconnect(c);
	return 0;
}

/* Every shared mapping of this process, with a callback per mapping. */
static unsigned each_shared_mapping(bool (*fn)(unsigned char *lo, size_t len, bool writable, const char *path, void *ctx),
                                    void *ctx)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	unsigned n = 0;

	while (f && fgets(line, sizeof(line), f)) {
		uintptr_t lo, hi;
		char perms[5], path[256] = "";
		int at = 0;

		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s %*s %*s %*s %n", &lo, &hi, perms, &at) < 3)
			continue;
		if (perms[3] != 's' || perms[0] != 'r')
			continue;
		if (at > 0)
			snprintf(path, sizeof(path), "%.*s", (int)strcspn(line + at, "\n"), line + at);
		n++;
		if (!fn((unsigned char *)lo, hi - lo, perms[1] == 'w', path, ctx))
			break;
	}
	if (f)
		fclose(f);
	return n;
}

struct look {
	const char *token;
	size_t tlen;
	unsigned found;
};

static bool look_in(unsigned char *lo, size_t len, bool writable, const char *path, void *ctx)
{
	struct look *l = ctx;

	(void)writable;
	if (memmem(lo, len, l->token, l->tlen)) {
		printf("spy: found the token in a shared mapping of this process: %s\n", path);
		l->found++;
	}
	return true;
}

/* Every object under /dev/shm whose name has prefix, opened by name for
 * reading, and searched. */
static void look_by_name(struct look *l, const char *prefix)
{
	DIR *dir = opendir("/dev/shm");
	struct dirent *de;
	unsigned opened = 0, refused = 0;

	while (dir && (de = readdir(dir))) {
		char name[300];
		int fd;
		off_t size;
		void *mem;

		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		snprintf(name, sizeof(name), "/%s", de->d_name);
		fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
		if (fd < 0) {
			refused++;
			continue;
		}
		opened++;
		size = lseek(fd, 0, SEEK_END);
		mem = size > 0 ? mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
		if (mem != MAP_FAILED) {
			if (memmem(mem, (size_t)size, l->token, l->tlen)) {
				printf("spy: found the token in %s, opened by name\n", name);
				l->found++;
			}
			munmap(mem, (size_t)size);
		}
		close(fd);
	}
	if (dir)
		closedir(dir);
	printf("spy: objects by name: %u opened, %u refused\n", opened, refused);
}

static int spy(const char *sock, const char *queue, const char *token, const char *prefix)
{
	struct look l = { .token = token, .tlen = strlen(token) };
	ipcq_client *c;
	ipcq_queue *q;
	unsigned maps;
	int r = open_queue(sock, queue, IPCQ_SEND, &c, &q);

	if (r < 0)
		return cannot("open the queue for sending", r);
	r = ipcq_send(q, "spy", 3, 0, 1000);
	if (r < 0)
		return cannot("send", r);
	maps = each_shared_mapping(look_in, &l);
	look_by_name(&l, prefix);
	printf("spy: %u shared mappings searched: the token found %u times\n", maps, l.found);
	ipcq_close(q);
	ipcq_disconnect(c);
	return l.found ? 1 : 0;
}

static int hold(const char *sock, const char *queue, const char *token)
{
	struct look l = { .token = token, .tlen = strlen(token) };
	char line[16];
	ipcq_client *c;
	ipcq_queue *q;
	int r = open_queue(sock, queue, IPCQ_SEND, &c, &q);

	if (r < 0)
		return cannot("open the queue for sending", r);
	r = ipcq_send(q, "hold", 4, 0, 1000);
	if (r < 0)
		return cannot("send", r);
	/* the daemon sees no connection of this user; the mappings stay */
	close(c->fd);
	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		line[0] = '\0';
	each_shared_mapping(look_in, &l);
	printf("hold: the token found %u times\n", l.found);
	fflush(stdout);
	_exit(l.found ? 1 : 0);
}

struct wreck {
	unsigned round;
	uint64_t bytes;
	unsigned mappings;
};

static bool wreck_one(unsigned char *lo, size_t len, bool writable, const char *path, void *ctx)
{
	struct wreck *w = ctx;

	(void)path;
	if (!writable)
		return true;
	w->mappings++;
	if (w->round % 3 == 0) {
		for (size_t i = 0; i < len; i += 256) {
			size_t k = len - i < 256 ? len - i : 256;

			if (getrandom(lo + i, k, 0) < 0)
				memset(lo + i, 0x5a, k);
		}
	} else {
		memset(lo, w->round % 3 == 1 ? 0xff : 0, len);
	}
	w->bytes += len;
	return true;
}

static int wreck(const char *sock, const char *queue, unsigned rounds)
{
	struct wreck w = { 0 };
	unsigned forged = 0;
	ipcq_client *c;
	ipcq_queue *q;
	int r = open_queue(sock, queue, IPCQ_SEND, &c, &q);

	if (r < 0)
		return cannot("open the queue for sending", r);
	for (w.round = 0; w.round < rounds; w.round++) {
		each_shared_mapping(wreck_one, &w);
		/* forged descriptors for every lane, and garbage */
		for (unsigned lane = 0; lane <= 8; lane++) {
			for (uint64_t off = 0; off < 65536; off += RING_ALIGN) {
				for (uint64_t gen = 1; gen <= 4; gen++) {
					struct proto_ring_desc d = { .hdr = { .kind = PROTO_MSG_RING, .lane = (uint16_t)lane,
						                              .len = MSG_MIN },
						                     .offset = off,
						                     .gen = gen };
					static const struct timespec past = { 0, 0 };

					if (mq_timedsend(q->mq, (const char *)&d, sizeof(d), 0, &past) < 0)
						goto full;
					forged++;
				}
			}
		}
full:
		{
			unsigned char junk[64];
			static const struct timespec past = { 0, 0 };

			if (getrandom(junk, sizeof(junk), 0) == (ssize_t)sizeof(junk))
				mq_timedsend(q->mq, (const char *)junk, sizeof(junk), 0, &past);
		}
		usleep(50000);
	}
	printf("wreck: %u rounds over %u writable shared mappings, %" PRIu64 " bytes written; %u forged descriptors "
	       "into the window\n",
	       rounds, w.mappings, w.bytes, forged);
	/* no close: the handle's memory is garbage, the daemon cleans up */
	fflush(stdout);
	_exit(0);
}

static int check(const char *sock, const char *queue, const char *token, unsigned n)
{
	static char buf[MSG_MAX + 64], want[MSG_MAX];
	unsigned char *seen = calloc(n, 1);
	unsigned got = 0, dup = 0, damaged = 0, foreign = 0, errors = 0, quiet = 0;
	uint64_t deadline = now_ms() + 30000;
	ipcq_client *c;
	ipcq_queue *q;
	int r;

	if (!seen)
		return cannot("allocate", -ENOMEM);
	r = open_queue(sock, queue, IPCQ_RECV, &c, &q);
	if (r < 0)
		return cannot("open the queue for receiving", r);
	while (got < n && now_ms() < deadline) {
		unsigned seq;
		ssize_t len = ipcq_recv(q, buf, sizeof(buf), NULL, 1000);

		if (len == -EBADMSG || len == -ESTALE) {
			errors++;
			continue;
		}
		/* (a count a hostile sender wrote over is put right by the
		 * daemon's sweeps, a second or two apart) */
		if (len == -ETIMEDOUT && ++quiet >= 5)
			break;
		if (len == -ETIMEDOUT)
			continue;
		quiet = 0;
		if (len < 0)
			return cannot("receive", (int)len);
		if ((size_t)len < strlen(token) + 2 || memcmp(buf, token, strlen(token)) != 0 ||
		    sscanf(buf + strlen(token), " %u", &seq) != 1 || seq >= n) {
			foreign++;
			continue;
		}
		if (make_message(want, token, seq) != (size_t)len || memcmp(want, buf, (size_t)len) != 0) {
			damaged++;
			continue;
		}
		if (seen[seq]++)
			dup++;
		else
			got++;
	}
	printf("check: %u of %u intact, %u damaged, %u duplicates, %u others (the spy's and forgeries), %u errors "
	       "from forged descriptors\n",
	       got, n, damaged, dup, foreign, errors);
	ipcq_close(q);
	ipcq_disconnect(c);
	free(seen);
	return got == n && !damaged && !dup ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "secret") == 0)
		return secret(argv[2], argv[3], argv[4], (unsigned)strtoul(argv[5], NULL, 10));
	if (argc == 5 && strcmp(argv[1], "hold") == 0)
		return hold(argv[2], argv[3], argv[4]);
	if (argc == 6 && strcmp(argv[1], "spy") == 0)
		return spy(argv[2], argv[3], argv[4], argv[5]);
	if (argc == 5 && strcmp(argv[1], "wreck") == 0)
		return wreck(argv[2], argv[3], (unsigned)strtoul(argv[4], NULL, 10));
	if (argc == 6 && strcmp(argv[1], "check") == 0)
		return check(argv[2], argv[3], argv[4], (unsigned)strtoul(argv[5], NULL, 10));
	fprintf(stderr, "usage: isolation secret|check SOCKET QUEUE TOKEN N | spy SOCKET QUEUE TOKEN PREFIX | "
	                "hold SOCKET QUEUE TOKEN | wreck SOCKET QUEUE ROUNDS\n");
	return 2;
}
