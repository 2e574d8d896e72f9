/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_ctl.c - the control protocol as each end reads it (common/proto.c).
 *
 *  - The daemon reads a client's datagram into a buffer of one request
 *    and decodes it (proto_req_read, as daemon/ctl.c does with every
 *    datagram), answers (proto_reply_init), and, for a request it
 *    decoded, checks what the request carries before acting on it: the
 *    queue name it makes kernel object names of, the geometry and the
 *    options of a queue to create.
 *  - The library reads the daemon's reply (proto_reply_decode, as
 *    libclient/control.c does) and copies out what it says.
 *
 * The fuzzer's bytes are both: a request, and a reply to the request
 * whose op and seq they name.  Besides memory errors, this checks that
 * the daemon's answer to anything it read decodes at a client that asked
 * with that op and seq (else the client would drop the connection).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fuzz.h"
#include "proto.h"
#include "util.h"

#define TOKEN "0123456789abcdef"

static void must(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_ctl: %s\n", what);
		abort();
	}
}

/* What ctl.c checks of a decoded request before it acts on it. */
static void check_request(const struct proto_req *req, struct proto_reply *rep)
{
	static const char *const suffixes[] = { NULL, ".ring", ".data", ".meta" };
	const ipcq_queue_opts *o = &req->opts;
	char obj[PROTO_OBJ_NAME_MAX];
	const char *why = NULL;

	if (req->op != PROTO_OP_LIST) {
		/* a decoded name makes kernel object names (daemon/queue.c) */
		for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++)
			must(proto_object_name(obj, sizeof(obj), "default", req->name, TOKEN, suffixes[i]) > 0,
			     "a decoded queue name makes no object name");
	}
	if (proto_geometry_check(&req->geo, &why) < 0)
		snprintf(rep->errmsg, sizeof(rep->errmsg), "invalid geometry: %s", why);
	if (o->ttl_ms > CONFIG_TTL_MAX_MS || o->max_deliveries > CONFIG_MAX_DELIVERIES_MAX)
		rep->status = -EINVAL;
	else if (o->dead_letter[0] && (strnlen(o->dead_letter, sizeof(o->dead_letter)) == sizeof(o->dead_letter) ||
	                               !proto_queue_name_valid(o->dead_letter)))
		rep->status = -EINVAL;
	else if (o->dead_letter[0])
		snprintf(rep->errmsg, sizeof(rep->errmsg), "no queue named '%s'", o->dead_letter);
}

/* The daemon's side: a datagram of size bytes, received into a buffer of
 * one request (ctl.c's on_conn_io: a longer one is cut short). */
static void read_request(const uint8_t *data, size_t size)
{
	unsigned char buf[sizeof(struct proto_req)];
	size_t n = size > sizeof(buf) ? sizeof(buf) + 1 : size;
	struct proto_reply rep;
	struct proto_req req, asked;
	const struct proto_reply *dec;
	int ret;

	memset(buf, 0, sizeof(buf));
	if (size)
		memcpy(buf, data, MIN(size, sizeof(buf)));
	ret = proto_req_read(buf, n, &req);
	must(ret == 0 || ret == -EPROTO || ret == -EINVAL, "proto_req_read: an error it does not name");
	proto_reply_init(&rep, &req, ret);
	if (ret == 0)
		check_request(&req, &rep);
	/* the client that sent it asked with this op and seq */
	proto_req_init(&asked, (enum proto_op)req.op, req.seq, NULL);
	must(proto_reply_decode(&rep, sizeof(rep), &asked, &dec) == 0, "the daemon's reply does not decode");
}

/* The library's side: a reply of size bytes (at most what ipcq_list
 * receives into) to a request of its op and seq. */
static void read_reply(const uint8_t *data, size_t size)
{
	size_t n = MIN(size, PROTO_REPLY_MAX);
	_cleanup_free_ struct proto_reply *rep = malloc(n ? n : 1);
	const struct proto_reply *dec;
	struct proto_req req;
	ipcq_stats out[PROTO_LIST_MAX];
	char errmsg[PROTO_ERRMSG_MAX];
	size_t names = 0;

	if (!rep)
		abort();
	if (n)
		memcpy(rep, data, n);
	proto_req_init(&req, PROTO_OP_STAT, 0, "q");
	if (n >= offsetof(struct proto_reply, status)) {
		req.op = rep->op;
		req.seq = rep->seq;
	}
	if (proto_reply_decode(rep, n, &req, &dec) < 0)
		return;
	must(dec == rep && dec->count <= PROTO_LIST_MAX, "proto_reply_decode passed a reply it should not");
	snprintf(errmsg, sizeof(errmsg), "%s", dec->errmsg);
	for (uint32_t i = 0; i < dec->count; i++) {
		out[i] = dec->stats[i];
		names += strlen(out[i].name);
	}
	must(names <= (size_t)dec->count * IPCQ_NAME_MAX, "a stats name runs past its field");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_request(data, size);
	read_reply(data, size);
	return 0;
}
