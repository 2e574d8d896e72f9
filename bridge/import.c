/* SPDX-License-Identifier: Apache-2.0 */
/*
 * import.c - JetStream -> local queue.
 *
 * A durable pull consumer (named by --durable, shared by every importer
 * that names it: they share the stream's work, each message to one of
 * them).  One round: fetch up to BRIDGE_IMPORT_BATCH messages, send them into the
 * local queue in runs of one priority (ipcq_send_batch), and acknowledge
 * each JetStream message only after its local send succeeded.  A message
 * not sent is given back at once (natsMsg_Nak); one whose acknowledgement
 * was lost (the bridge killed between the send and the ack, the link
 * down) JetStream delivers again after the consumer's AckWait: a duplicate
 * locally, never a loss.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

static unsigned import_prio(natsMsg *m)
{
	const char *v = NULL;
	unsigned long p;
	char *end;

	if (natsMsgHeader_Get(m, BRIDGE_PRIO_HEADER, &v) != NATS_OK || !v)
		return 0;
	errno = 0;
	p = strtoul(v, &end, 10);
	if (errno || end == v || *end || p > 0xffffffffUL)
		return 0;
	return (unsigned)p;
}

/* Send msgs[0..n) (one priority) into the queue; ack each sent.  Returns
 * how many were sent and acked, or a negative errno when none was. */
static int import_run(struct local_queue *lq, natsMsg **msgs, unsigned n, unsigned prio)
{
	struct iovec iov[BRIDGE_IMPORT_BATCH];
	unsigned done = 0;

	for (unsigned i = 0; i < n; i++)
		iov[i] = (struct iovec){ .iov_base = (void *)natsMsg_GetData(msgs[i]),
			                 .iov_len = (size_t)natsMsg_GetDataLength(msgs[i]) };
	while (done < n) {
		int r = ipcq_send_batch(lq->q, iov + done, n - done, prio, 1000);

		if (r == -ETIMEDOUT || r == -EAGAIN) {
			bridge_status("waiting for room in queue '%s'", lq->opts->queue);
			if (bridge_stopping)
				break;
			continue;
		}
		if (r < 0)
			return done ? (int)done : r;
		for (unsigned i = done; i < done + (unsigned)r; i++)
			natsMsg_Ack(msgs[i], NULL);
		done += (unsigned)r;
	}
	return (int)done;
}

/* How many to fetch.  libnats before 3.8.3 overruns the list it returns
 * when a fetch finds more than half its batch, but not all of it, already
 * waiting in the subscription (messages an earlier request brought after
 * its fetch gave up, as after a reconnection): so those are taken one at
 * a time, which never overruns, and a full batch only when none waits. */
static int import_fetch_size(natsSubscription *sub)
{
	int pending = 0;

	if (natsSubscription_GetPending(sub, &pending, NULL) != NATS_OK || pending > 0)
		return 1;
	return BRIDGE_IMPORT_BATCH;
}

static int import_subscribe(struct js_link *l, const struct bridge_opts *opts, natsSubscription **sub)
{
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsStatus s;
	char what[512];

	jsSubOptions_Init(&so);
	so.Stream = opts->stream;
	if (opts->ack_wait_s)
		so.Config.AckWait = (int64_t)opts->ack_wait_s * 1000000000;
	s = js_PullSubscribe(sub, l->js, opts->subject, opts->durable, NULL, &so, &jerr);
	if (s != NATS_OK) {
		snprintf(what, sizeof(what), "cannot consume subject '%s' of stream '%s' as '%s'", opts->subject,
		         opts->stream, opts->durable);
		js_report(what, s, jerr);
		return 1;
	}
	return 0;
}

int bridge_import(const struct bridge_opts *opts)
{
	struct local_queue lq;
	struct js_link l;
	natsSubscription *sub = NULL;
	unsigned long long imported = 0;
	int status = 0;
	int backoff = 100;
	bool announced = false;

	if (js_link_open(&l, opts))
		return 1;
	if (js_check_stream(&l, opts) || import_subscribe(&l, opts, &sub)) {
		js_link_close(&l);
		return 1;
	}
	bridge_ready();
	local_queue_init(&lq, opts, IPCQ_SEND);
	while (!bridge_stopping) {
		natsMsgList list = { 0 };
		jsErrCode jerr = 0;
		natsStatus s;
		int i, r;

		r = local_queue_ensure(&lq);
		if (r == -EINTR)
			break;
		if (r < 0) {
			status = 1;
			break;
		}
		if (!announced) {
			bridge_status("importing subject '%s' of stream '%s' (consumer '%s') into queue '%s'",
			              opts->subject, opts->stream, opts->durable, opts->queue);
			announced = true;
		}
		s = natsSubscription_Fetch(&list, sub, import_fetch_size(sub), 500, &jerr);
		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK) {
			if (js_link_connected(&l))
				js_report("fetch failed", s, jerr);
			else
				bridge_status("waiting for NATS at %s", opts->url);
			announced = false;
			if (!bridge_sleep(backoff))
				break;
			backoff = backoff < 2500 ? backoff * 2 : 5000;
			continue;
		}
		backoff = 100;
		r = 0;
		for (i = 0; i < list.Count;) {
			unsigned prio = import_prio(list.Msgs[i]);
			int k = i + 1;

			/* a fetch may return more than it asked for (after a
			 * reconnection, what an earlier request left too) */
			while (k < list.Count && k - i < BRIDGE_IMPORT_BATCH && import_prio(list.Msgs[k]) == prio)
				k++;
			r = import_run(&lq, list.Msgs + i, (unsigned)(k - i), prio);
			if (r > 0) {
				imported += (unsigned)r;
				i += r;
			}
			if (r < 0 || i < k)
				break;
		}
		/* what was not sent goes back to JetStream at once */
		for (int k = i; k < list.Count; k++)
			natsMsg_Nak(list.Msgs[k], NULL);
		natsMsgList_Destroy(&list);
		if (r < 0 && local_error_needs_reopen(r)) {
			local_queue_reset(&lq, r, "send failed");
			announced = false;
		}
	}
	if (opts->verbose)
		fprintf(stderr, "ipcq-bridge: imported %llu messages\n", imported);
	local_queue_deinit(&lq);
	natsSubscription_Destroy(sub);
	js_link_close(&l);
	return status;
}
