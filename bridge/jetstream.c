/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jetstream.c - the bridge's NATS connection, its JetStream context, and
 * the stream checks and set-up.
 *
 * The first connection must succeed (a wrong URL, a server that is not
 * there, bad credentials are the user's to fix, and exit 1 says so); once
 * connected the client reconnects forever, every second, buffering what is
 * published meanwhile, and the bridge says on stderr when the link goes
 * down and comes back.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"

static void on_disconnected(natsConnection *nc, void *closure)
{
	struct js_link *l = closure;

	if (!natsConnection_IsClosed(nc) && !l->closing)
		bridge_status("waiting for NATS at %s: disconnected, reconnecting", l->url);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	struct js_link *l = closure;

	(void)nc;
	atomic_fetch_add(&l->reconnects, 1);
	bridge_status("NATS at %s: reconnected", l->url);
}

void js_report(const char *what, natsStatus s, jsErrCode jerr)
{
	const char *last = nats_GetLastError(NULL);

	/* the client's last error reads "(file.c:123): text": keep the text,
	 * and only when it says more than the status */
	if (last && *last == '(' && strstr(last, "): "))
		last = strstr(last, "): ") + 3;
	fprintf(stderr, "ipcq-bridge: %s: %s", what, natsStatus_GetText(s));
	if (jerr)
		fprintf(stderr, " (JetStream error %d)", (int)jerr);
	if (last && *last && strcmp(last, natsStatus_GetText(s)))
		fprintf(stderr, ": %s", last);
	fputc('\n', stderr);
}

/* [USER[:PASS]@]HOST[:PORT], no path: the part of a URL after its scheme. */
static bool js_hostport_valid(const char *p, size_t len)
{
	const char *host = p, *colon = NULL;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == '/' || p[i] == ' ')
			return false;
		if (p[i] == '@')
			host = p + i + 1, colon = NULL;
		else if (p[i] == ':')
			colon = p + i;
	}
	if (host >= p + len || *host == ':')
		return false;
	if (colon && (colon + 1 == p + len || strspn(colon + 1, "0123456789") < (size_t)(p + len - colon - 1)))
		return false;
	return true;
}

/* Each comma-separated URL: a scheme the client speaks (or none, for
 * HOST:PORT) and a host after it.  The client itself takes almost any
 * string and only fails to connect, which says less. */
static bool js_url_valid(const char *urls)
{
	static const char *const schemes[] = { "nats://", "tls://", "ws://", "wss://" };
	const char *u = urls;

	for (;;) {
		size_t len = strcspn(u, ",");
		const char *sep = strstr(u, "://");
		size_t skip = 0;

		while (len && *u == ' ')
			u++, len--;
		if (sep && (size_t)(sep - u) < len) {
			for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
				if (!strncmp(u, schemes[i], strlen(schemes[i])))
					skip = strlen(schemes[i]);
			if (!skip)
				return false;
		}
		if (!js_hostport_valid(u + skip, len - skip))
			return false;
		if (u[len] != ',')
			return true;
		u += len + 1;
	}
}

int js_link_open(struct js_link *l, const struct bridge_opts *opts)
{
	natsOptions *no = NULL;
	natsStatus s;
	char what[512];

	*l = (struct js_link){ .url = opts->url };
	if (!js_url_valid(opts->url)) {
		fprintf(stderr, "ipcq-bridge: bad NATS URL '%s': expected nats://HOST:PORT (or tls://, ws://, wss://; "
		                "several comma-separated)\n", opts->url);
		return 1;
	}
	s = natsOptions_Create(&no);
	if (s == NATS_OK)
		s = natsOptions_SetURL(no, opts->url);
	if (s != NATS_OK) {
		snprintf(what, sizeof(what), "bad NATS URL '%s'", opts->url);
		js_report(what, s, 0);
		natsOptions_Destroy(no);
		return 1;
	}
	if (opts->creds) {
		s = natsOptions_SetUserCredentialsFromFiles(no, opts->creds, NULL);
		if (s != NATS_OK) {
			snprintf(what, sizeof(what), "cannot use credentials file '%s'", opts->creds);
			js_report(what, s, 0);
			natsOptions_Destroy(no);
			return 1;
		}
	}
	if (opts->tls_ca) {
		/* the client says "(null)" of a file it cannot open */
		if (access(opts->tls_ca, R_OK)) {
			fprintf(stderr, "ipcq-bridge: cannot read the CA certificates '%s': %s\n", opts->tls_ca,
			        strerror(errno));
			natsOptions_Destroy(no);
			return 1;
		}
		s = natsOptions_LoadCATrustedCertificates(no, opts->tls_ca);
		if (s != NATS_OK) {
			snprintf(what, sizeof(what), "cannot use the CA certificates of '%s'", opts->tls_ca);
			js_report(what, s, 0);
			natsOptions_Destroy(no);
			return 1;
		}
	}
	natsOptions_SetName(no, "ipcq-bridge");
	natsOptions_SetTimeout(no, 2000);
	natsOptions_SetMaxReconnect(no, -1);
	natsOptions_SetReconnectWait(no, 1000);
	natsOptions_SetReconnectBufSize(no, 64 * 1024 * 1024);
	natsOptions_SetDisconnectedCB(no, on_disconnected, l);
	natsOptions_SetReconnectedCB(no, on_reconnected, l);
	s = natsConnection_Connect(&l->nc, no);
	natsOptions_Destroy(no);
	if (s != NATS_OK) {
		snprintf(what, sizeof(what), "cannot connect to NATS at '%s'", opts->url);
		js_report(what, s, 0);
		return 1;
	}
	jsOptions_Init(&l->jsopts);
	l->jsopts.Wait = 5000;
	l->jsopts.PublishAsync.MaxPending = 4 * BRIDGE_BATCH;
	return 0;
}

/* The JetStream context, once the caller set l->jsopts (the export's ack
 * handler). */
static int js_link_context(struct js_link *l)
{
	natsStatus s = natsConnection_JetStream(&l->js, l->nc, &l->jsopts);

	if (s != NATS_OK) {
		js_report("cannot use JetStream", s, 0);
		return 1;
	}
	return 0;
}

void js_link_close(struct js_link *l)
{
	l->closing = true;
	jsCtx_Destroy(l->js);
	l->js = NULL;
	natsConnection_Destroy(l->nc);
	l->nc = NULL;
}

bool js_link_connected(struct js_link *l)
{
	return natsConnection_Status(l->nc) == NATS_CONN_STATUS_CONNECTED;
}

int js_check_stream(struct js_link *l, const struct bridge_opts *opts)
{
	jsErrCode jerr = 0;
	natsStatus s;
	char what[512];

	if (!l->js && js_link_context(l))
		return 1;
	if (opts->stream) {
		jsStreamInfo *si = NULL;

		s = js_GetStreamInfo(&si, l->js, opts->stream, NULL, &jerr);
		jsStreamInfo_Destroy(si);
		if (s == NATS_NOT_FOUND) {
			fprintf(stderr, "ipcq-bridge: no JetStream stream '%s' at %s (create it first, e.g. "
			                "'ipcq-bridge --nats URL add-stream %s SUBJECT')\n",
			        opts->stream, opts->url, opts->stream);
			return 1;
		}
		if (s != NATS_OK) {
			snprintf(what, sizeof(what), "cannot look up stream '%s'", opts->stream);
			js_report(what, s, jerr);
			return 1;
		}
		return 0;
	}
	/* no stream named: one must take the subject */
	jsStreamNamesList *names = NULL;
	jsOptions o;

	jsOptions_Init(&o);
	o.Stream.Info.SubjectsFilter = opts->subject;
	s = js_StreamNames(&names, l->js, &o, &jerr);
	jsStreamNamesList_Destroy(names);
	if (s == NATS_NOT_FOUND) {
		fprintf(stderr, "ipcq-bridge: no JetStream stream takes subject '%s' at %s (create one first, e.g. "
		                "'ipcq-bridge --nats URL add-stream NAME %s')\n",
		        opts->subject, opts->url, opts->subject);
		return 1;
	}
	if (s != NATS_OK) {
		snprintf(what, sizeof(what), "cannot look up the stream of subject '%s'", opts->subject);
		js_report(what, s, jerr);
		return 1;
	}
	return 0;
}

int bridge_add_stream(const struct bridge_opts *opts)
{
	struct js_link l;
	jsStreamConfig cfg;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	const char *subjects[] = { opts->subject };
	natsStatus s;
	char what[512];

	if (js_link_open(&l, opts))
		return 1;
	if (js_link_context(&l)) {
		js_link_close(&l);
		return 1;
	}
	jsStreamConfig_Init(&cfg);
	cfg.Name = opts->stream;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Retention = js_WorkQueuePolicy;
	cfg.Storage = js_FileStorage;
	s = js_AddStream(&si, l.js, &cfg, NULL, &jerr);
	jsStreamInfo_Destroy(si);
	js_link_close(&l);
	if (s != NATS_OK) {
		snprintf(what, sizeof(what), "cannot create stream '%s' for subject '%s'", opts->stream, opts->subject);
		js_report(what, s, jerr);
		return 1;
	}
	return 0;
}
