/* SPDX-License-Identifier: Apache-2.0 */
/*
 * textbuf.c - a growing text buffer and the escapings of JSON, base64 and
 * Prometheus's text format.
 *
 * JSON strings.  JSON carries Unicode text, and a payload is bytes: bytes
 * that are valid UTF-8 go into a JSON string as they are, with '"', '\\'
 * and the control characters escaped; other bytes cannot be written as
 * \u escapes without lying (\u00e9 means U+00E9, the two bytes C3 A9, not
 * the byte E9), so a caller with bytes that are not UTF-8 writes them in
 * base64 and says so (see ipcq recv --json).
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "textbuf.h"

void textbuf_deinit(struct textbuf *tb)
{
	free(tb->data);
	*tb = (struct textbuf){ 0 };
}

static bool textbuf_reserve(struct textbuf *tb, size_t n)
{
	size_t cap = tb->cap ? tb->cap : 256;
	char *data;

	if (tb->failed)
		return false;
	if (tb->cap - tb->len > n)
		return true;
	while (cap - tb->len <= n) {
		if (cap > SIZE_MAX / 2) {
			tb->failed = true;
			return false;
		}
		cap *= 2;
	}
	data = realloc(tb->data, cap);
	if (!data) {
		tb->failed = true;
		return false;
	}
	tb->data = data;
	tb->cap = cap;
	return true;
}

void textbuf_add(struct textbuf *tb, const void *p, size_t n)
{
	if (!textbuf_reserve(tb, n))
		return;
	if (n)
		memcpy(tb->data + tb->len, p, n);
	tb->len += n;
	tb->data[tb->len] = '\0';
}

void textbuf_adds(struct textbuf *tb, const char *s)
{
	textbuf_add(tb, s, strlen(s));
}

void textbuf_addc(struct textbuf *tb, char ch)
{
	textbuf_add(tb, &ch, 1);
}

void textbuf_addf(struct textbuf *tb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !textbuf_reserve(tb, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(tb->data + tb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	tb->len += (size_t)n;
}

bool utf8_valid(const void *s, size_t n)
{
	const unsigned char *p = s, *end = p + n;

	while (p < end) {
		unsigned char c = *p;
		size_t more;
		uint32_t cp, min;

		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			more = 1, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			more = 2, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			more = 3, cp = c & 0x07, min = 0x10000;
		else
			return false;
		if ((size_t)(end - p) <= more)
			return false;
		for (size_t i = 1; i <= more; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += more + 1;
	}
	return true;
}

/* The short escape of a character JSON must escape, or NULL. */
static const char *json_short_escape(unsigned char c)
{
	switch (c) {
	case '"':
		return "\\\"";
	case '\\':
		return "\\\\";
	case '\n':
		return "\\n";
	case '\r':
		return "\\r";
	case '\t':
		return "\\t";
	case '\b':
		return "\\b";
	case '\f':
		return "\\f";
	default:
		return NULL;
	}
}

void json_add_string(struct textbuf *tb, const void *s, size_t n)
{
	const unsigned char *p = s;
	size_t run = 0; /* bytes before p[i] that need no escape, not yet added */

	textbuf_addc(tb, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		const char *esc;

		if (c >= 0x20 && c != '"' && c != '\\') {
			run++;
			continue;
		}
		textbuf_add(tb, p + i - run, run);
		run = 0;
		esc = json_short_escape(c);
		if (esc)
			textbuf_adds(tb, esc);
		else
			textbuf_addf(tb, "\\u%04x", c);
	}
	textbuf_add(tb, p + n - run, run);
	textbuf_addc(tb, '"');
}

void base64_add(struct textbuf *tb, const void *s, size_t n)
{
	static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = s;
	char quad[4];

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		quad[0] = digits[v >> 18 & 63];
		quad[1] = digits[v >> 12 & 63];
		quad[2] = i + 1 < n ? digits[v >> 6 & 63] : '=';
		quad[3] = i + 2 < n ? digits[v & 63] : '=';
		textbuf_add(tb, quad, 4);
	}
}

void prom_add_label_value(struct textbuf *tb, const char *s)
{
	textbuf_addc(tb, '"');
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			textbuf_addc(tb, '\\');
		if (*s == '\n')
			textbuf_adds(tb, "\\n");
		else
			textbuf_addc(tb, *s);
	}
	textbuf_addc(tb, '"');
}
