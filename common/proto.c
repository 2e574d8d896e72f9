/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proto.c - encoding and checking of control messages and data message
 * headers, and the naming rules shared by the daemon and the library.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

_Static_assert(sizeof(struct proto_msg_hdr) == 8, "mq message header is 8 bytes");
_Static_assert(sizeof(struct proto_ring_desc) == 24, "ring descriptor is 24 bytes");
_Static_assert(sizeof(struct proto_ring_desc) <= PROTO_MSG_SIZE_MIN, "descriptor fits the smallest message");
_Static_assert(sizeof(struct proto_meta) == 360 && offsetof(struct proto_meta, listened) == 76 &&
                       offsetof(struct proto_meta, lanes) == 88, "meta page layout (fields added at the end: an older page reads 0 there)");
_Static_assert(sizeof(struct proto_meta) <= PROTO_META_SIZE, "meta fits its page");
_Static_assert(PROTO_LANES_MAX <= 64, "a lane is a bit of proto_meta.lanes");
/* the public structs keep their size from release to release (a new
 * field takes reserved room), so a program built against an older ipcq.h
 * works with a newer libipcq */
_Static_assert(sizeof(ipcq_stats) == 640 && offsetof(ipcq_stats, geo) == 72 && sizeof(ipcq_geometry) == 64 &&
                       sizeof(ipcq_queue_opts) == 88,
               "ipcq_stats, ipcq_geometry and ipcq_queue_opts keep their size and layout, on 32-bit systems too");

static bool name_chars_valid(const char *s, size_t max, bool allow_dot)
{
	size_t n = 0;

	if (!s || !*s)
		return false;
	for (; s[n]; n++) {
		char ch = s[n];

		if (n >= max)
			return false;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '_' || ch == '-')
			continue;
		if (ch == '.' && allow_dot && n > 0)
			continue;
		return false;
	}
	return true;
}

bool proto_queue_name_valid(const char *name)
{
	return name_chars_valid(name, IPCQ_NAME_MAX, true);
}

bool proto_namespace_valid(const char *ns)
{
	return name_chars_valid(ns, IPCQ_NAMESPACE_MAX, false);
}

int proto_object_name(char *buf, size_t cap, const char *ns, const char *queue, const char *token,
                      const char *suffix)
{
	int n;

	if (!proto_namespace_valid(ns) || !proto_queue_name_valid(queue) || !proto_token_valid(token))
		return -EINVAL;
	n = snprintf(buf, cap, PROTO_OBJ_PREFIX "%s.%s%s%s%s", ns, queue, *token ? "." : "", token,
	             suffix ? suffix : "");
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return n;
}

bool proto_token_valid(const char *token)
{
	size_t n = 0;

	if (!token)
		return false;
	for (; token[n]; n++)
		if (!((token[n] >= '0' && token[n] <= '9') || (token[n] >= 'a' && token[n] <= 'f')))
			return false;
	return n == 0 || n == PROTO_TOKEN_LEN;
}

int proto_geometry_check(const ipcq_geometry *g, const char **why)
{
	const char *w = NULL;

	if (g->max_msgs < 1 || g->max_msgs > PROTO_MAX_MSGS_MAX)
		w = "max_msgs must be between 1 and 65536";
	else if (g->msg_size < PROTO_MSG_SIZE_MIN || g->msg_size > PROTO_MSG_SIZE_MAX)
		w = "msg_size must be between 64 and 1M";
	else if (g->ring_size < PROTO_RING_SIZE_MIN || g->ring_size > PROTO_RING_SIZE_MAX)
		w = "ring_size must be between 64K and 64G";
	else if (g->ring_size % PROTO_RING_PAGE)
		w = "ring_size must be a multiple of 4096";
	else if (g->max_payload < 1 || g->max_payload > g->ring_size - PROTO_RING_RESERVE ||
	         g->max_payload > PROTO_MAX_PAYLOAD_MAX)
		w = "max_payload must be between 1 and ring_size minus 64 bytes (and below 4G)";
	else if (g->prefetch < 1 || g->prefetch > PROTO_PREFETCH_MAX)
		w = "prefetch must be between 1 and 64";
	else if (g->senders > IPCQ_SENDERS_ISOLATED)
		w = "senders must be shared or isolated";
	else if (g->max_depth > PROTO_MAX_DEPTH_MAX)
		w = "max_depth must be at most 2^40 (0: only the ring bounds the queue)";
	if (why)
		*why = w;
	return w ? -EINVAL : 0;
}

int proto_socket_path(char *buf, size_t cap, const char *ns, enum proto_bus bus)
{
	const char *dir = PROTO_SYSTEM_RUNDIR;
	const char *sub = "";
	int n;

	if (!ns)
		ns = "default";
	if (!proto_namespace_valid(ns))
		return -EINVAL;
	if (bus == PROTO_BUS_USER) {
		dir = getenv("XDG_RUNTIME_DIR");
		if (!dir || dir[0] != '/')
			return -EDESTADDRREQ;
		sub = "/ipcbroker";
	}
	n = snprintf(buf, cap, "%s%s/%s.sock", dir, sub, ns);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return n;
}

void proto_req_init(struct proto_req *req, enum proto_op op, uint32_t seq, const char *name)
{
	memset(req, 0, sizeof(*req));
	req->magic = PROTO_MAGIC;
	req->version = PROTO_VERSION;
	req->op = (uint16_t)op;
	req->seq = seq;
	if (name)
		snprintf(req->name, sizeof(req->name), "%s", name);
}

static bool op_takes_name(uint16_t op)
{
	return op != PROTO_OP_LIST;
}

int proto_req_decode(const void *buf, size_t len, struct proto_req *out)
{
	if (len != sizeof(*out))
		return -EPROTO;
	memcpy(out, buf, sizeof(*out));
	if (out->magic != PROTO_MAGIC || out->version != PROTO_VERSION)
		return -EPROTO;
	if (out->op == 0 || out->op >= PROTO_OP_MAX_)
		return -EPROTO;
	if (memchr(out->name, '\0', sizeof(out->name)) == NULL)
		return -EPROTO;
	if (op_takes_name(out->op) && !proto_queue_name_valid(out->name))
		return -EINVAL;
	if (out->flags & ~(uint32_t)(IPCQ_SEND | IPCQ_RECV | IPCQ_CREATE))
		return -EINVAL;
	return 0;
}

int proto_req_read(const void *buf, size_t len, struct proto_req *out)
{
	int ret = len > sizeof(*out) ? -EPROTO : proto_req_decode(buf, len, out);

	if (ret < 0) {
		memset(out, 0, sizeof(*out));
		if (len >= offsetof(struct proto_req, flags))
			memcpy(out, buf, offsetof(struct proto_req, flags)); /* echo op and seq */
	}
	return ret;
}

void proto_reply_init(struct proto_reply *rep, const struct proto_req *req, int status)
{
	memset(rep, 0, sizeof(*rep));
	rep->magic = PROTO_MAGIC;
	rep->version = PROTO_VERSION;
	rep->op = req ? req->op : 0;
	rep->seq = req ? req->seq : 0;
	rep->status = status;
}

int proto_reply_decode(const void *buf, size_t len, const struct proto_req *req,
                       const struct proto_reply **out)
{
	const struct proto_reply *rep = buf;
	size_t want;

	if (len < sizeof(*rep))
		return -EPROTO;
	if (rep->magic != PROTO_MAGIC || rep->version != PROTO_VERSION)
		return -EPROTO;
	if (rep->op != req->op || rep->seq != req->seq)
		return -EPROTO;
	if (rep->status > 0 || rep->count > PROTO_LIST_MAX)
		return -EPROTO;
	if (memchr(rep->errmsg, '\0', sizeof(rep->errmsg)) == NULL)
		return -EPROTO;
	want = sizeof(*rep) + (size_t)rep->count * sizeof(ipcq_stats);
	if (len != want)
		return -EPROTO;
	for (uint32_t i = 0; i < rep->count; i++)
		if (memchr(rep->stats[i].name, '\0', sizeof(rep->stats[i].name)) == NULL)
			return -EPROTO;
	*out = rep;
	return 0;
}

int proto_msg_check(const void *msg, size_t n)
{
	struct proto_msg_hdr hdr;

	if (n < sizeof(hdr))
		return -EBADMSG;
	memcpy(&hdr, msg, sizeof(hdr));
	switch (hdr.kind) {
	case PROTO_MSG_INLINE:
		if ((size_t)hdr.len != n - sizeof(hdr))
			return -EBADMSG;
		return PROTO_MSG_INLINE;
	case PROTO_MSG_RING:
		if (n != sizeof(struct proto_ring_desc))
			return -EBADMSG;
		return PROTO_MSG_RING;
	case PROTO_MSG_CLOSED:
	case PROTO_MSG_NUDGE:
		if (n != sizeof(hdr) || hdr.len != 0)
			return -EBADMSG;
		return hdr.kind;
	default:
		return -EBADMSG;
	}
}
