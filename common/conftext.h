/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conftext.h - a libconfuse config's text made ready for cfg_parse_buf(),
 * for the daemon's config and the bridge's.
 */
#ifndef IPCQ_CONFTEXT_H
#define IPCQ_CONFTEXT_H

#include <stdbool.h>

/* Overwrite every comment ("# ...", "// ..." and C-style) with spaces, and
 * with semicolons every ';' too, keeping newlines.  libconfuse 3.3 counts
 * two extra lines for each "#" or "//" comment and one for each C-style
 * one, so every line number after a comment would be wrong; it also
 * refuses a comment inside a list.  Quoted strings are left alone, their
 * escapes included, as libconfuse's scanner reads them.  Returns the line
 * of a '{' never closed (libconfuse 3.3 takes the end of the text for its
 * '}'), or 0. */
int conf_blank(char *s, bool semicolons);

#endif
