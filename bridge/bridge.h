/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bridge.h - ipcq-bridge: local queues to and from NATS JetStream.
 *
 * The bridge is one foreground process with one direction:
 *  - export: local queue -> JetStream subject.  Views are taken from the
 *    queue and published asynchronously, a window of them in flight, and
 *    each view is released only once its own PubAck came back; a view
 *    whose publish failed is given back (ipcq_nack), so it is delivered
 *    again and published again.
 *  - import: durable pull consumer -> local queue.  A batch is fetched, sent
 *    into the queue, and each JetStream message is acknowledged only once
 *    the local send succeeded; what was not acknowledged JetStream delivers
 *    again after the consumer's AckWait.
 * So delivery is at least once end to end (with an at-least-once local
 * queue on the export side), and a duplicate only ever comes from a
 * delivery again after a failure or a crash.
 *
 * Both sides reconnect by themselves: the NATS client reconnects forever;
 * a local call that fails because the daemon went away closes the queue,
 * and the bridge opens it again with a backoff.  What it waits for goes to
 * stderr and to systemd's STATUS=.
 */
#ifndef IPCQ_BRIDGE_H
#define IPCQ_BRIDGE_H

#include <signal.h>
#include <stdbool.h>

#include <nats/nats.h>

#include "ipcq.h"

/* Header carrying a message's local priority across JetStream. */
#define BRIDGE_PRIO_HEADER "Ipcq-Priority"
/* What one queue handle may hold at once (export spreads its window of
 * messages in flight over several handles). */
#define BRIDGE_BATCH 64
/* Most messages imported per round (one fetch): a sender holds nothing. */
#define BRIDGE_IMPORT_BATCH 256
/* Longest --ack-wait (ack_wait), in seconds. */
#define BRIDGE_ACK_WAIT_MAX 86400

enum bridge_mode {
	BRIDGE_EXPORT,
	BRIDGE_IMPORT,
	BRIDGE_ADD_STREAM,
};

struct bridge_opts {
	enum bridge_mode mode;
	const char *ns;      /* --namespace, or NULL */
	const char *socket;  /* --socket, or NULL */
	const char *url;     /* --nats */
	const char *creds;   /* --creds, or NULL */
	const char *tls_ca;  /* --tls-ca: CA certificates to trust (PEM), or NULL */
	const char *queue;   /* local queue */
	const char *subject; /* JetStream subject */
	const char *stream;  /* --stream, or NULL (export: found by subject) */
	const char *durable; /* --durable (import; default: ipcq-QUEUE) */
	unsigned ack_wait_s; /* --ack-wait (import: the consumer's AckWait; 0: JetStream's 30 s) */
	bool verbose;
};

/* --config FILE (config.c): fill in what the flags left unset of opts,
 * the direction included.  0, or 2 after saying on stderr what is wrong,
 * with FILE:LINE where the line is known.  *out holds the strings opts
 * then points at. */
struct bridge_config;
int bridge_config_load(struct bridge_config **out, const char *path, struct bridge_opts *opts);
void bridge_config_free(struct bridge_config *c);

/* Set by SIGTERM and SIGINT: every loop polls it between short waits. */
extern volatile sig_atomic_t bridge_stopping;

/* A local queue handle that comes back after a daemon restart. */
struct local_queue {
	const struct bridge_opts *opts;
	int flags;           /* IPCQ_SEND or IPCQ_RECV */
	ipcq_client *client;
	ipcq_queue *q;
};

void local_queue_init(struct local_queue *lq, const struct bridge_opts *opts, int flags);
/* Open the queue if it is not open, waiting with a backoff while no
 * daemon answers.  0, or a negative errno that waiting will not cure
 * (-ENOENT: no such queue, -EACCES), or -EINTR when stopping. */
int local_queue_ensure(struct local_queue *lq);
/* Close after a failed call, so that the next ensure opens it anew. */
void local_queue_reset(struct local_queue *lq, int err, const char *what);
void local_queue_deinit(struct local_queue *lq);
/* An error after which the handle is worth opening again (the daemon went
 * away, the queue was deleted or quarantined), not a timeout. */
bool local_error_needs_reopen(int err);

/* The NATS side: one connection and its JetStream context. */
struct js_link {
	const char *url;
	bool closing; /* a disconnection from here on is ours */
	_Atomic unsigned reconnects; /* times the link came back */
	natsConnection *nc;
	jsCtx *js;
	jsOptions jsopts;
};

/* Connect (reconnecting forever once connected).  0, or 1 after printing
 * why it failed. */
int js_link_open(struct js_link *l, const struct bridge_opts *opts);
void js_link_close(struct js_link *l);
bool js_link_connected(struct js_link *l);
/* Print "ipcq-bridge: WHAT: <the NATS client's error>" on stderr. */
void js_report(const char *what, natsStatus s, jsErrCode jerr);
/* Check that a stream takes opts->subject (opts->stream, or any stream):
 * 0, or 1 after printing why not. */
int js_check_stream(struct js_link *l, const struct bridge_opts *opts);

/* Say what the bridge does or waits for: stderr (when it changes) and
 * systemd's STATUS=. */
void bridge_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Tell systemd the bridge is up (its checks passed). */
void bridge_ready(void);
/* Sleep ms milliseconds unless stopping; false when stopping. */
bool bridge_sleep(int ms);

/* The modes; each returns the process's exit status. */
int bridge_export(const struct bridge_opts *opts);
int bridge_import(const struct bridge_opts *opts);
int bridge_add_stream(const struct bridge_opts *opts);

#endif
