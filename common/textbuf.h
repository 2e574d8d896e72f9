/* SPDX-License-Identifier: Apache-2.0 */
/*
 * textbuf.h - what machine-readable outputs (ipcq's, and the daemon's
 * metrics file) are made of: a growing text buffer, JSON strings (escaped,
 * or base64 for bytes that are not UTF-8) and Prometheus label values.
 * Output is built in a buffer and written at once, so a line is never
 * half out when a write fails.
 */
#ifndef IPCQ_TEXTBUF_H
#define IPCQ_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>

struct textbuf {
	char *data;
	size_t len, cap;
	bool failed; /* an allocation failed: the contents are cut short */
};

void textbuf_deinit(struct textbuf *tb);
void textbuf_add(struct textbuf *tb, const void *p, size_t n);
void textbuf_adds(struct textbuf *tb, const char *s);
void textbuf_addc(struct textbuf *tb, char ch);
void textbuf_addf(struct textbuf *tb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whether s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or
 * code points beyond U+10FFFF). */
bool utf8_valid(const void *s, size_t n);
/* s[0..n), which must be valid UTF-8, as a JSON string with its quotes. */
void json_add_string(struct textbuf *tb, const void *s, size_t n);
/* s[0..n) in base64 (RFC 4648, padded), without quotes. */
void base64_add(struct textbuf *tb, const void *s, size_t n);
/* A Prometheus label value, with its quotes (\\, \" and \n escaped). */
void prom_add_label_value(struct textbuf *tb, const char *s);

#endif
