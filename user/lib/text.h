/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef BORDERFLOW_TEXT_H
#define BORDERFLOW_TEXT_H

#include <stddef.h>

/*
 * Copies text that a monitored process controls (its name, its executable
 * path) into out for logs and JSON: valid UTF-8 is kept, control
 * characters and bytes that are not UTF-8 become "\xNN", so such text can
 * neither split a log line nor make a JSON line invalid. in stops at a NUL
 * or after len bytes; out is always terminated, cut at a whole character.
 */
void bf_escape_text(const char *in, size_t len, char *out, size_t size);

#endif
