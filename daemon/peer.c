/* SPDX-License-Identifier: Apache-2.0 */
/*
 * peer.c - client processes, their holder ids and pidfds (see peer.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "notify.h"
#include "peer.h"
#include "statefile.h"
#include "util.h"

static struct peer **bucket(struct daemon *d, uint32_t holder)
{
	return &d->peer_buckets[holder % PEER_BUCKETS];
}

/* Start time of pid in clock ticks since boot (field 22 of
 * /proc/PID/stat), or 0 when the process is gone. */
static uint64_t process_starttime(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* the command name may hold anything, spaces and ')' included */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
	                 &start) != 1)
		return 0;
	return start;
}

static uint32_t next_free_holder(struct daemon *d)
{
	for (;;) {
		uint32_t h = d->next_holder++;

		if (d->next_holder >= PROTO_HOLDER_DAEMON)
			d->next_holder = 1;
		if (h != 0 && h != PROTO_HOLDER_DAEMON && !peer_holder_alive(d, h))
			return h;
	}
}

static int write_holders(FILE *f, void *ctx)
{
	const struct daemon *d = ctx;

	fprintf(f, "# ipcbrokerd holders: holder pid starttime\n");
	for (const struct peer *p = d->peers; p; p = p->next)
		fprintf(f, "%u %d %" PRIu64 "\n", p->holder, (int)p->pid, p->starttime);
	return ferror(f) ? -EIO : 0;
}

/* The holder table, for a daemon started after this one.  /run is a
 * tmpfs, and the file matters only while the machine is up: no fsync. */
static int peers_save(struct daemon *d)
{
	return statefile_save(d->holders_path, write_holders, d, 0);
}

static void peer_unlink(struct daemon *d, struct peer *p)
{
	for (struct peer **pp = &d->peers; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	for (struct peer **pp = bucket(d, p->holder); *pp; pp = &(*pp)->hnext) {
		if (*pp == p) {
			*pp = p->hnext;
			break;
		}
	}
	d->n_peers--;
}

void peer_free(struct daemon *d, struct peer *p)
{
	notify_peer_gone(d, p);
	peer_unlink(d, p);
	sd_event_source_disable_unref(p->src);
	close(p->pidfd);
	free(p);
}

static int on_peer_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct peer *p = userdata;
	struct daemon *d = p->d;
	uint32_t holder = p->holder;

	log_debug("client pid %d (holder %u) exited", (int)p->pid, holder);
	peer_free(d, p);
	peers_save(d);
	daemon_sweep(d, holder);
	return 0;
}

/* Watch pid under holder id; the process must be the one of starttime. */
static int peer_add(struct daemon *d, pid_t pid, uint64_t starttime, uint32_t holder, struct peer **out)
{
	_cleanup_close_ int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct peer *p;
	int ret;

	if (fd < 0)
		return -ESRCH;
	/* the pidfd is of the process we checked, not of a later one */
	if (process_starttime(pid) != starttime)
		return -ESRCH;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	ret = sd_event_add_io(d->event, &p->src, fd, EPOLLIN, on_peer_exit, p);
	if (ret < 0) {
		free(p);
		return ret;
	}
	p->d = d;
	p->pid = pid;
	p->starttime = starttime;
	p->holder = holder;
	p->pidfd = TAKE_FD(fd);
	p->next = d->peers;
	d->peers = p;
	p->hnext = *bucket(d, holder);
	*bucket(d, holder) = p;
	d->n_peers++;
	*out = p;
	return 0;
}

int peer_get(struct daemon *d, pid_t pid, struct peer **out)
{
	uint64_t starttime;
	int ret;

	if (pid <= 0)
		return -ESRCH; /* in a PID namespace the daemon cannot see */
	starttime = process_starttime(pid);
	if (starttime == 0)
		return -ESRCH;
	for (struct peer *p = d->peers; p; p = p->next) {
		if (p->pid == pid && p->starttime == starttime) {
			*out = p;
			return 0;
		}
	}
	ret = peer_add(d, pid, starttime, next_free_holder(d), out);
	if (ret == 0)
		peers_save(d);
	return ret;
}

bool peer_holder_alive(const struct daemon *d, uint32_t holder)
{
	for (const struct peer *p = d->peer_buckets[holder % PEER_BUCKETS]; p; p = p->hnext)
		if (p->holder == holder)
			return true;
	return false;
}

unsigned peer_count(const struct daemon *d)
{
	return d->n_peers;
}

int peers_load(struct daemon *d)
{
	FILE *f = fopen(d->holders_path, "re");
	char line[128];
	unsigned kept = 0, gone = 0;

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned holder;
		int pid;
		uint64_t starttime;
		struct peer *p;

		if (line[0] == '#' || sscanf(line, "%u %d %" SCNu64, &holder, &pid, &starttime) != 3 ||
		    holder == 0 || holder >= PROTO_HOLDER_DAEMON || pid <= 0 || peer_holder_alive(d, holder))
			continue;
		if (process_starttime(pid) == starttime && peer_add(d, pid, starttime, holder, &p) == 0) {
			kept++;
			if (holder >= d->next_holder)
				d->next_holder = holder + 1 > PROTO_HOLDER_MAX ? 1 : holder + 1;
		} else {
			gone++;
		}
	}
	fclose(f);
	if (kept || gone)
		log_info("client processes of the previous daemon: %u still live, %u gone", kept, gone);
	return peers_save(d);
}
