// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target of the GeoIP2/GeoLite2 CSV loader. The input is split at its
 * first two NUL bytes into a Locations file, a Blocks-IPv4 file and a
 * Blocks-IPv6 file, written into a folder named as MaxMind names them. A part
 * that the input lacks is no file at all. The folder is loaded as a whole,
 * then the Blocks-IPv4 file alone, which finds its Locations file itself.
 * Further NUL bytes stay in the IPv6 part, where the loader must reject them.
 */
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

#define FOLDER "GeoLite2-Country-CSV_20250103"

static const char *const names[] = {
	FOLDER "/GeoLite2-Country-Locations-en.csv",
	FOLDER "/GeoLite2-Country-Blocks-IPv4.csv",
	FOLDER "/GeoLite2-Country-Blocks-IPv6.csv",
};

#define NPARTS (sizeof(names) / sizeof(names[0]))

static const char *folder, *paths[NPARTS];

static int load_path(struct bf_geo_table *t, const void *path, struct bf_error *err)
{
	return bf_geo_load_file(t, path, err);
}

static void prepare_folder(void)
{
	folder = fuzz_path(FOLDER);
	FUZZ_CHECK(!mkdir(folder, 0700), "failed to create '%s'", folder);
	for (size_t i = 0; i < NPARTS; i++)
		paths[i] = fuzz_path(names[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *end = data + size;
	size_t i;

	if (!folder)
		prepare_folder();
	for (i = 0; i < NPARTS && data; i++) {
		const uint8_t *nul = i + 1 < NPARTS ? memchr(data, '\0', end - data) : NULL;
		const uint8_t *stop = nul ? nul : end;

		fuzz_write_file(paths[i], data, stop - data);
		data = nul ? nul + 1 : NULL;
	}
	for (; i < NPARTS; i++)
		fuzz_remove_file(paths[i]);

	fuzz_check_load(load_path, folder, 0);
	fuzz_check_load(load_path, paths[1], 0);
	return 0;
}
