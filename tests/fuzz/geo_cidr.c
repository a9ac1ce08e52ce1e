// SPDX-License-Identifier: GPL-2.0-or-later
/* Fuzz target of bf_geo_load_cidr_file(), the loader of "CIDR,CC" override files. */
#include "harness.h"

static int load_cidr(struct bf_geo_table *t, const void *path, struct bf_error *err)
{
	return bf_geo_load_cidr_file(t, path, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *path;

	if (!path)
		path = fuzz_path("overrides.csv");
	fuzz_write_file(path, data, size);
	fuzz_check_load(load_cidr, path, 0);
	return 0;
}
