// SPDX-License-Identifier: GPL-2.0-or-later
/* Fuzz target of bf_geo_load_list_file(), the loader of prefix lists of one country (here MO). */
#include "harness.h"

static int load_list(struct bf_geo_table *t, const void *path, struct bf_error *err)
{
	return bf_geo_load_list_file(t, path, BF_CC('M', 'O'), err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *path;

	if (!path)
		path = fuzz_path("macau.txt");
	fuzz_write_file(path, data, size);
	fuzz_check_load(load_list, path, 0);
	return 0;
}
