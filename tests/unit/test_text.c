// SPDX-License-Identifier: GPL-2.0-or-later
/* Escaping of text that monitored processes control, for logs and JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "user/lib/text.h"

static void escape(const char *in, size_t len, char *out, size_t size)
{
	memset(out, 'Z', size);
	bf_escape_text(in, len, out, size);
}

static void test_ascii_kept(void **state)
{
	char out[64];

	escape("com.alibabainc.", 15, out, sizeof(out));
	assert_string_equal(out, "com.alibabainc.");
}

static void test_newline_and_tab_escaped(void **state)
{
	char out[64];

	escape("a\nb\tc\x7f", 6, out, sizeof(out));
	assert_string_equal(out, "a\\x0ab\\x09c\\x7f");
}

static void test_valid_utf8_kept(void **state)
{
	char out[64];
	const char *name = "\xe9\x87\x98\xe9\x87\x98 caf\xc3\xa9"; /* 钉钉 café */

	escape(name, strlen(name), out, sizeof(out));
	assert_string_equal(out, name);
}

static void test_invalid_utf8_escaped(void **state)
{
	char out[64];

	escape("a\xff" "b", 3, out, sizeof(out));
	assert_string_equal(out, "a\\xffb");
	escape("\xc0\xaf", 2, out, sizeof(out)); /* overlong '/' */
	assert_string_equal(out, "\\xc0\\xaf");
	escape("\xed\xa0\x80", 3, out, sizeof(out)); /* UTF-16 surrogate */
	assert_string_equal(out, "\\xed\\xa0\\x80");
	escape("\xe9\x87", 2, out, sizeof(out)); /* cut sequence */
	assert_string_equal(out, "\\xe9\\x87");
}

static void test_stops_at_nul_and_length(void **state)
{
	char out[64];

	escape("abc\0def", 7, out, sizeof(out));
	assert_string_equal(out, "abc");
	escape("abcdef", 3, out, sizeof(out));
	assert_string_equal(out, "abc");
}

static void test_truncates_at_whole_character(void **state)
{
	char out[6];

	escape("ab\ncd", 5, out, sizeof(out)); /* "ab\x0a" needs 7 bytes with the NUL */
	assert_string_equal(out, "ab");
	escape("a\xc3\xa9\xc3\xa9", 5, out, 5);
	assert_string_equal(out, "a\xc3\xa9");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ascii_kept),
		cmocka_unit_test(test_newline_and_tab_escaped),
		cmocka_unit_test(test_valid_utf8_kept),
		cmocka_unit_test(test_invalid_utf8_escaped),
		cmocka_unit_test(test_stops_at_nul_and_length),
		cmocka_unit_test(test_truncates_at_whole_character),
	};

	return cmocka_run_group_tests_name("text", tests, NULL, NULL);
}
