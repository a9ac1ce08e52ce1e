// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target of the MaxMind DB loader: the input is written to x.mmdb and
 * loaded with bf_geo_load_file(), which picks the mmdb loader by the name
 * even when the metadata is damaged. A second load uses other country key
 * paths, which reach further into the data records.
 */
#include "harness.h"

static const struct bf_geo_options other_paths = {
	.mmdb_country = { "location/geo/cc", "cc", "country/names/en", "0/iso_code" },
	.nmmdb_country = 4,
};

static int load_default(struct bf_geo_table *t, const void *path, struct bf_error *err)
{
	return bf_geo_load_file(t, path, err);
}

static int load_other_paths(struct bf_geo_table *t, const void *path, struct bf_error *err)
{
	return bf_geo_load_file_opts(t, path, &other_paths, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *path;

	if (!path)
		path = fuzz_path("x.mmdb");
	fuzz_write_file(path, data, size);
	fuzz_check_load(load_default, path, 0);
	fuzz_check_load(load_other_paths, path, 0);
	return 0;
}

/*
 * MMDB_open() of libmaxminddb 1.7.1, the version of Debian 12, leaks the entry
 * list of a metadata map that it fails to decode, allocated under
 * MMDB_get_entry_data_list(). Upstream fixed it in November 2024 (pull request
 * 356 of maxmind/libmaxminddb). borderflow never calls that function itself, so
 * the suppression hides only that leak. It matches only with the slow
 * unwinder on malloc, because the library has no frame pointers. Stacks of
 * 8 frames keep the slow unwinder at about half the speed of the fast one,
 * and ASAN_OPTIONS=malloc_context_size=30 gives longer ones for debugging.
 */
const char *__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0:malloc_context_size=8";
}

const char *__lsan_default_suppressions(void)
{
	return "leak:MMDB_get_entry_data_list\n";
}

const char *__lsan_default_options(void)
{
	return "print_suppressions=0";
}
