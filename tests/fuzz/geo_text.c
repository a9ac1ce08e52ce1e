// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target of bf_geo_load_file() on a text file: the input is the content
 * of geo.csv, whose format the library detects (Tor/IPFire, DB-IP,
 * ip-location-db, IP2Location, "CIDR,CC", or a GeoIP2 Blocks header, which
 * fails here for want of a Locations file). Content that ends with MaxMind DB
 * metadata goes to the mmdb loader, as in real use.
 */
#include "harness.h"

static int load_any(struct bf_geo_table *t, const void *path, struct bf_error *err)
{
	return bf_geo_load_file(t, path, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *path;

	if (!path)
		path = fuzz_path("geo.csv");
	fuzz_write_file(path, data, size);
	fuzz_check_load(load_any, path, 0);
	return 0;
}
