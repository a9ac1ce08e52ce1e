// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdint.h>
#include <stdio.h>

#include "text.h"

/* Length of the valid UTF-8 sequence at s (at most left bytes), or 0 when it is not one. */
static size_t utf8_length(const unsigned char *s, size_t left)
{
	size_t n, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > left)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8. */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void bf_escape_text(const char *in, size_t len, char *out, size_t size)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, o = 0, n;

	if (!size)
		return;
	while (i < len && s[i]) {
		n = utf8_length(s + i, len - i);
		if (n == 1 && (s[i] < 0x20 || s[i] == 0x7f))
			n = 0;
		if (n) {
			if (o + n >= size)
				break;
			for (; n; n--)
				out[o++] = (char)s[i++];
			continue;
		}
		if (o + 4 >= size)
			break;
		snprintf(out + o, size - o, "\\x%02x", s[i++]);
		o += 4;
	}
	out[o] = '\0';
}
