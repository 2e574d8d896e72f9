/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conftext.c - see conftext.h.
 */
#include "config.h"

#include "conftext.h"

int conf_blank(char *s, bool semicolons)
{
	int open_lines[8];
	int depth = 0, line = 1;
	char quote = 0;

	while (*s) {
		if (*s == '\n')
			line++;
		if (quote) {
			if (*s == '\\' && s[1])
				s++;
			else if (*s == quote)
				quote = 0;
			s++;
		} else if (*s == '"' || *s == '\'') {
			quote = *s++;
		} else if (*s == '#' || (s[0] == '/' && s[1] == '/')) {
			for (; *s && *s != '\n'; s++)
				*s = ' ';
		} else if (s[0] == '/' && s[1] == '*') {
			for (; *s && !(s[0] == '*' && s[1] == '/'); s++) {
				if (*s == '\n')
					line++;
				else
					*s = ' ';
			}
			for (int i = 0; i < 2 && *s; i++)
				*s++ = ' ';
		} else {
			if (*s == ';' && semicolons)
				*s = ' ';
			else if (*s == '{' && depth < (int)(sizeof(open_lines) / sizeof(open_lines[0])))
				open_lines[depth++] = line;
			else if (*s == '}' && depth > 0)
				depth--;
			s++;
		}
	}
	return depth ? open_lines[depth - 1] : 0;
}
