/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shmguard.h - the daemon survives shared memory cut short under it.
 *
 * A client given a writable descriptor of a queue's ring objects can
 * ftruncate them (shm_open objects cannot be sealed), and a page of a
 * ring whose pages were given back (ring_give_back) may find /dev/shm
 * full when it is touched again: either way the daemon's next access is
 * a SIGBUS, which would end it.  So, as Wayland compositors do for their
 * clients' shared-memory pools, the daemon registers every ring mapping
 * here; a SIGBUS inside one replaces the whole mapping with anonymous
 * zero pages (the access is made again and reads zeros, which fail the
 * ring's checks like any other garbage) and marks it, and the queue is
 * quarantined with what happened.  A SIGBUS anywhere else ends the daemon
 * as before.  The daemon is single-threaded: the handler runs in the
 * thread that faulted, never inside shmguard_add or shmguard_remove.
 */
#ifndef IPCQ_SHMGUARD_H
#define IPCQ_SHMGUARD_H

#include <stdbool.h>
#include <stddef.h>

/* Install the SIGBUS handler (once, at start): 0 or a negative errno. */
int shmguard_install(void);
/* Guard the mapping [addr, addr + len) until shmguard_remove(addr). */
int shmguard_add(void *addr, size_t len);
void shmguard_remove(void *addr);
/* Whether a SIGBUS hit the mapping at addr (it reads zeros since). */
bool shmguard_faulted(const void *addr);

#endif
