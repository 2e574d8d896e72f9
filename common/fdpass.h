/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fdpass.h - one datagram with descriptors (SCM_RIGHTS) over the control
 * socket: the daemon sends a queue's kernel objects, the library receives
 * them.  Written once for both.
 */
#ifndef IPCQ_FDPASS_H
#define IPCQ_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

/* Send buf as one datagram with n descriptors (the caller keeps them);
 * returns bytes sent or a negative errno.  flags as for sendmsg. */
ssize_t fdpass_send(int sock, const void *buf, size_t len, const int *fds, unsigned n, int flags);
/* Receive one datagram into buf with up to max descriptors (close-on-exec;
 * any beyond max are closed); *n says how many.  Returns its length,
 * -ECONNRESET at end of stream, -EPROTO when the datagram or its
 * descriptors were truncated (none is kept), or a negative errno.  flags
 * as for recvmsg (MSG_DONTWAIT). */
ssize_t fdpass_recv(int sock, void *buf, size_t cap, int *fds, unsigned max, unsigned *n, int flags);
/* Close the descriptors of fds that are open (>= 0). */
void fdpass_close(int *fds, unsigned n);

#endif
