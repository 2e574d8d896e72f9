/* SPDX-License-Identifier: Apache-2.0 */
/*
 * export.c - local queue -> JetStream.
 *
 * One round: take up to BRIDGE_BATCH views (ipcq_recv_batch), publish each
 * asynchronously with its priority in a header, wait until every PubAck
 * came back (js_PublishAsyncComplete), then release the views whose
 * publish JetStream acknowledged and give back (ipcq_nack) the others, to
 * be delivered and published again.  A view is never released before its
 * PubAck, so a bridge killed at any point loses nothing of an
 * at-least-once queue: what it held comes back to the queue.  The price is
 * a duplicate in the stream for a message JetStream stored but whose
 * PubAck did not reach the bridge.
 *
 * The ack handler runs on a NATS client thread: it only marks the round's
 * slot (found by the message's address: two messages alive at once never
 * share one) under a lock; the views are released on the main thread.
 * After a round that timed out, the messages still pending are taken back
 * from the client (js_PublishAsyncGetPendingList), so no late ack can
 * touch the next round.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "bridge.h"

enum slot_state {
	SLOT_PENDING,
	SLOT_ACKED,
	SLOT_FAILED,
};

struct export_round {
	pthread_mutex_t lock;
	unsigned n;
	natsMsg *sent[BRIDGE_BATCH];
	enum slot_state state[BRIDGE_BATCH];
	natsStatus first_err;
	jsErrCode first_jerr;
};

static void on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct export_round *round = closure;

	(void)js;
	pthread_mutex_lock(&round->lock);
	for (unsigned i = 0; i < round->n; i++) {
		if (round->sent[i] != msg || round->state[i] != SLOT_PENDING)
			continue;
		round->state[i] = pa ? SLOT_ACKED : SLOT_FAILED;
		round->sent[i] = NULL;
		if (!pa && round->first_err == NATS_OK) {
			round->first_err = pae ? pae->Err : NATS_ERR;
			round->first_jerr = pae ? pae->ErrCode : 0;
		}
		break;
	}
	pthread_mutex_unlock(&round->lock);
	natsMsg_Destroy(msg);
}

static natsStatus export_message(struct js_link *l, struct export_round *round, unsigned i,
                                 const struct bridge_opts *opts, const ipcq_msg *m)
{
	natsMsg *nm = NULL;
	char prio[16];
	natsStatus s;

	s = natsMsg_Create(&nm, opts->subject, NULL, m->data, (int)m->len);
	if (s == NATS_OK && m->prio) {
		snprintf(prio, sizeof(prio), "%u", m->prio);
		s = natsMsgHeader_Set(nm, BRIDGE_PRIO_HEADER, prio);
	}
	if (s != NATS_OK) {
		natsMsg_Destroy(nm);
		return s;
	}
	pthread_mutex_lock(&round->lock);
	round->sent[i] = nm;
	round->state[i] = SLOT_PENDING;
	round->n = i + 1;
	pthread_mutex_unlock(&round->lock);
	s = js_PublishMsgAsync(l->js, &nm, NULL);
	if (s != NATS_OK) {
		/* the client did not take it: nm is still ours */
		pthread_mutex_lock(&round->lock);
		round->sent[i] = NULL;
		round->state[i] = SLOT_FAILED;
		pthread_mutex_unlock(&round->lock);
		natsMsg_Destroy(nm);
	}
	return s;
}

/* Wait for the round's PubAcks; what is still pending after the wait is
 * taken back and counts as failed.  The wait is short once the link came
 * back during the round: a PubAck the old connection was owed never comes
 * (what was buffered while the link was down went out on reconnecting and
 * is answered at once), so a second after the reconnection the rest is
 * taken as lost; else at most 10 s. */
static void export_wait_acks(struct js_link *l, struct export_round *round, unsigned reconnects_before)
{
	jsPubOptions po;
	natsMsgList pending = { 0 };
	natsStatus s;
	int waited = 0, since_reconnect = 0;

	jsPubOptions_Init(&po);
	po.MaxWait = 100;
	while ((s = js_PublishAsyncComplete(l->js, &po)) == NATS_TIMEOUT) {
		waited += 100;
		if (atomic_load(&l->reconnects) != reconnects_before && js_link_connected(l))
			since_reconnect += 100;
		if (waited >= 10000 || since_reconnect >= 1000)
			break;
	}
	if (s == NATS_OK)
		return;
	if (js_PublishAsyncGetPendingList(&pending, l->js) == NATS_OK) {
		pthread_mutex_lock(&round->lock);
		for (int k = 0; k < pending.Count; k++) {
			for (unsigned i = 0; i < round->n; i++) {
				if (round->sent[i] == pending.Msgs[k] && round->state[i] == SLOT_PENDING) {
					round->state[i] = SLOT_FAILED;
					round->sent[i] = NULL;
				}
			}
		}
		pthread_mutex_unlock(&round->lock);
		natsMsgList_Destroy(&pending);
	}
	pthread_mutex_lock(&round->lock);
	if (round->first_err == NATS_OK)
		round->first_err = s;
	pthread_mutex_unlock(&round->lock);
}

/* Release what JetStream stored, give back the rest.  Returns how many
 * failed, or a negative errno when the local queue refused a release. */
static int export_settle(struct local_queue *lq, struct export_round *round, ipcq_msg *msgs, unsigned n)
{
	int failed = 0;
	int err = 0;

	pthread_mutex_lock(&round->lock);
	for (unsigned i = 0; i < n; i++) {
		int r;

		if (i < round->n && round->state[i] == SLOT_ACKED) {
			r = ipcq_release(lq->q, &msgs[i]);
		} else {
			failed++;
			r = ipcq_nack(lq->q, &msgs[i], 0);
		}
		if (r < 0 && !err)
			err = r;
	}
	round->n = 0;
	pthread_mutex_unlock(&round->lock);
	return err ? err : failed;
}

int bridge_export(const struct bridge_opts *opts)
{
	static struct export_round round = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct local_queue lq;
	struct js_link l;
	ipcq_msg msgs[BRIDGE_BATCH];
	unsigned long long exported = 0, rounds = 0;
	int status = 0;
	int backoff = 100;
	bool announced = false;

	if (js_link_open(&l, opts))
		return 1;
	l.jsopts.PublishAsync.AckHandler = on_puback;
	l.jsopts.PublishAsync.AckHandlerClosure = &round;
	if (js_check_stream(&l, opts)) {
		js_link_close(&l);
		return 1;
	}
	bridge_ready();
	local_queue_init(&lq, opts, IPCQ_RECV);
	while (!bridge_stopping) {
		unsigned reconnects;
		int n, r;

		r = local_queue_ensure(&lq);
		if (r == -EINTR)
			break;
		if (r < 0) {
			status = 1;
			break;
		}
		if (!js_link_connected(&l)) {
			bridge_status("waiting for NATS at %s", opts->url);
			announced = false;
			bridge_sleep(200);
			continue;
		}
		if (!announced) {
			bridge_status("exporting queue '%s' to subject '%s' at %s", opts->queue, opts->subject,
			              opts->url);
			announced = true;
		}
		n = ipcq_recv_batch(lq.q, msgs, BRIDGE_BATCH, 500);
		if (n < 0) {
			if (local_error_needs_reopen(n)) {
				local_queue_reset(&lq, n, "receive failed");
				announced = false;
			}
			continue;
		}
		/* one receive hands out at most a chunk (prefetch messages): fill
		 * the round with what else waits, so a PubAck wait covers more */
		while (n < BRIDGE_BATCH && (r = ipcq_recv_batch(lq.q, msgs + n, BRIDGE_BATCH - (unsigned)n, 0)) > 0)
			n += r;
		rounds++;
		round.first_err = NATS_OK;
		round.first_jerr = 0;
		reconnects = atomic_load(&l.reconnects);
		for (int i = 0; i < n; i++) {
			if (export_message(&l, &round, (unsigned)i, opts, &msgs[i]) != NATS_OK) {
				if (round.first_err == NATS_OK)
					round.first_err = NATS_ERR;
				break;
			}
		}
		export_wait_acks(&l, &round, reconnects);
		r = export_settle(&lq, &round, msgs, (unsigned)n);
		if (r < 0) {
			local_queue_reset(&lq, r, "release failed");
			announced = false;
			continue;
		}
		exported += (unsigned)(n - r);
		if (r > 0) {
			char what[128];

			snprintf(what, sizeof(what), "%d of %d messages not stored by JetStream; given back", r, n);
			js_report(what, round.first_err, round.first_jerr);
			announced = false;
			if (!bridge_sleep(backoff))
				break;
			backoff = backoff < 2500 ? backoff * 2 : 5000;
		} else {
			backoff = 100;
		}
	}
	if (opts->verbose)
		fprintf(stderr, "ipcq-bridge: exported %llu messages in %llu rounds\n", exported, rounds);
	local_queue_deinit(&lq);
	js_link_close(&l);
	return status;
}
