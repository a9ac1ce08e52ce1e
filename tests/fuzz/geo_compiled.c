// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Fuzz target of the loader of compiled geolocation files, which
 * bf_geo_load_file() picks by their magic. The input is the body of the file:
 * the target adds the magic before it and the SHA-256 checksum after it, so
 * that mutations reach the parser instead of failing the checksum. The
 * magic and the checksum layout are those of user/lib/geo_compiled.c, and
 * the first input checks that the library still detects the magic.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "harness.h"
#include "user/lib/geo_layer.h"

#define MAGIC	      "BFGEOC1\n"
#define MAGIC_BYTES   (sizeof(MAGIC) - 1)
#define CHECKSUM_BYTES 32

static void check_magic(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	FUZZ_CHECK(fd >= 0, "failed to open '%s'", path);
	FUZZ_CHECK(geo_compiled_detect(fd), "the magic of compiled files is no longer '%s'",
		   "BFGEOC1\\n");
	(void)close(fd);
}

static int load_compiled(struct bf_geo_table *t, const void *path, struct bf_error *err)
{
	return bf_geo_load_file(t, path, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *path;
	static bool magic_checked;
	size_t file_size = MAGIC_BYTES + size + CHECKSUM_BYTES;
	unsigned int digest_size = 0;
	uint8_t *file;

	if (!path)
		path = fuzz_path("geo.compiled");
	file = malloc(file_size);
	FUZZ_CHECK(file, "out of memory");
	memcpy(file, MAGIC, MAGIC_BYTES);
	if (size)
		memcpy(file + MAGIC_BYTES, data, size);
	FUZZ_CHECK(EVP_Digest(file, MAGIC_BYTES + size, file + MAGIC_BYTES + size, &digest_size,
			      EVP_sha256(), NULL) &&
			   digest_size == CHECKSUM_BYTES,
		   "SHA-256 failed");
	fuzz_write_file(path, file, file_size);
	free(file);
	if (!magic_checked) {
		check_magic(path);
		magic_checked = true;
	}
	fuzz_check_load(load_compiled, path, FUZZ_FOREIGN_SOURCES);
	return 0;
}
