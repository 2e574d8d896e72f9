/* SPDX-License-Identifier: Apache-2.0 */
/*
 * local.c - the bridge's local queue handle, opened again after the
 * daemon went away.
 *
 * Messages do not pass through the daemon, so a daemon restart alone does
 * not stop an open handle; what does (the queue deleted, the connection
 * needed and gone) makes a call fail, and the bridge then drops the handle
 * and opens the queue again, waiting with a backoff (0.1 s doubling to
 * 5 s) while no daemon answers.  Views a dropped handle held go back to the
 * queue (at-least-once queues), so nothing is lost, only delivered again.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "bridge.h"

void local_queue_init(struct local_queue *lq, const struct bridge_opts *opts, int flags)
{
	*lq = (struct local_queue){ .opts = opts, .flags = flags };
}

static int local_connect(struct local_queue *lq)
{
	if (lq->opts->socket)
		return ipcq_connect(&lq->client, lq->opts->socket);
	if (lq->opts->ns)
		return ipcq_connect_namespace(&lq->client, lq->opts->ns, 0);
	return ipcq_connect(&lq->client, NULL);
}

static const char *local_where(const struct local_queue *lq)
{
	return lq->opts->socket ? lq->opts->socket : lq->opts->ns ? lq->opts->ns : "the default daemon";
}

int local_queue_ensure(struct local_queue *lq)
{
	int backoff = 100;
	int r;

	while (!lq->q) {
		if (bridge_stopping)
			return -EINTR;
		if (!lq->client) {
			r = local_connect(lq);
			if (r == -ECONNREFUSED || r == -ECONNRESET || r == -EPIPE) {
				bridge_status("waiting for ipcbrokerd (%s): %s", local_where(lq), ipcq_strerror(r));
				if (!bridge_sleep(backoff))
					return -EINTR;
				backoff = backoff < 2500 ? backoff * 2 : 5000;
				continue;
			}
			if (r < 0) {
				fprintf(stderr, "ipcq-bridge: cannot connect to ipcbrokerd (%s): %s\n", local_where(lq),
				        ipcq_strerror(r));
				return r;
			}
		}
		r = ipcq_open(lq->client, lq->opts->queue, lq->flags, &lq->q);
		if (r == -ENOTCONN || r == -ECONNRESET || r == -EPIPE || r == -ECONNREFUSED) {
			ipcq_disconnect(lq->client);
			lq->client = NULL;
			continue;
		}
		if (r < 0) {
			const char *why = ipcq_last_error(lq->client);

			fprintf(stderr, "ipcq-bridge: cannot open queue '%s': %s%s%s\n", lq->opts->queue, ipcq_strerror(r),
			        *why ? ": " : "", why);
			return r;
		}
	}
	return 0;
}

bool local_error_needs_reopen(int err)
{
	return err != -ETIMEDOUT && err != -EAGAIN && err != -EINTR && err != -ENOBUFS;
}

void local_queue_reset(struct local_queue *lq, int err, const char *what)
{
	fprintf(stderr, "ipcq-bridge: %s on queue '%s': %s; opening it again\n", what, lq->opts->queue,
	        ipcq_strerror(err));
	local_queue_deinit(lq);
}

void local_queue_deinit(struct local_queue *lq)
{
	if (lq->q)
		ipcq_close(lq->q);
	lq->q = NULL;
	if (lq->client)
		ipcq_disconnect(lq->client);
	lq->client = NULL;
}
