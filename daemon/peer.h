/* SPDX-License-Identifier: Apache-2.0 */
/*
 * peer.h - the client processes a daemon knows, and the holder ids it
 * gave them.
 *
 * Whatever a client holds in a queue's shared memory (a chunk, a receive
 * slot, the producers' lock) is marked with its process's holder id, which
 * the daemon hands out when the process first opens a queue.  The daemon
 * knows the process by the pid SO_PEERCRED gives it, which the kernel has
 * translated into the daemon's own PID namespace, and watches it through a
 * pidfd: so a live client in a container is never taken for dead, and a
 * dead one is found at once.  An id the daemon gave no live process counts
 * as dead, so an id a client forged only makes the daemon reclaim sooner.
 *
 * The table outlives the daemon in a state file beside the registry
 * (mode 0600): a restarted daemon keeps the ids of processes that still
 * live (same pid, same start time), so it does not take their holdings
 * for a dead process's.
 */
#ifndef IPCQ_PEER_H
#define IPCQ_PEER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

struct daemon;

struct peer {
	struct peer *next;  /* in the daemon's list */
	struct peer *hnext; /* in its hash bucket */
	struct daemon *d;
	pid_t pid;          /* as the daemon sees it */
	uint64_t starttime; /* of that pid (/proc/PID/stat): a reused pid is another process */
	uint32_t holder;
	int pidfd;
	sd_event_source *src;
};

/* The peer of process pid (as SO_PEERCRED gave it), made and watched on
 * first use.  -ESRCH if the process is gone, or cannot be watched. */
int peer_get(struct daemon *d, pid_t pid, struct peer **out);
/* Whether holder is the id of a live process. */
bool peer_holder_alive(const struct daemon *d, uint32_t holder);
void peer_free(struct daemon *d, struct peer *p);
unsigned peer_count(const struct daemon *d);
/* After a restart: take back the ids of processes that still live. */
int peers_load(struct daemon *d);

#endif
