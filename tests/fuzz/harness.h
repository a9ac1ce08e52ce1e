/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared part of the libFuzzer targets of the geolocation parsers.
 *
 * A target writes its input into files of a temporary folder and loads them
 * through the public entry points of user/lib/geo.h, so that format detection
 * is fuzzed too. fuzz_check_load() then checks what the library promises:
 * an error leaves the table unchanged and names the file, and a successful
 * load gives sorted, overlap-free layers that flatten, look up and split into
 * prefixes consistently. A broken promise aborts, which libFuzzer reports as
 * a crash, like the sanitizers' own reports.
 */
#ifndef BORDERFLOW_FUZZ_HARNESS_H
#define BORDERFLOW_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "user/lib/geo.h"

/* Flags of fuzz_check_load(). */
enum fuzz_load_flags {
	/*
	 * The file carries the sources of the files it was made from (a compiled
	 * file): their paths, hashes and formats are data of the input, and a
	 * source may have no ranges left after flattening.
	 */
	FUZZ_FOREIGN_SOURCES = 1 << 0,
};

/* Loads one or more files into t, as a target defines it. Returns what the library returned. */
typedef int (*fuzz_load_fn)(struct bf_geo_table *t, const void *ctx, struct bf_error *err);

/* Prints the message to stderr and aborts unless cond holds. */
#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                         \
	} while (0)

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 4, 5)));

/*
 * Returns the path of name in the temporary folder of this process, which is
 * created on the first call under $TMPDIR (default /tmp) and removed with
 * everything in it at exit. A crash or a timeout ends the process without
 * that cleanup, so tests/lab/fuzz.t.sh points TMPDIR at a folder it removes.
 * The string stays valid until exit.
 */
const char *fuzz_path(const char *name);

/* Writes size bytes to path, replacing the file. Aborts when that fails. */
void fuzz_write_file(const char *path, const uint8_t *data, size_t size);

/* Removes path if it exists. Aborts on any other error. */
void fuzz_remove_file(const char *path);

/*
 * Runs load on a copy of a small flattened base table and checks the result.
 * On success it also flattens the table, looks up the edges of every range,
 * splits every range into prefixes, flattens again, and runs load a second
 * time on top, which must not change the country of any address. Aborts on
 * any broken invariant.
 */
void fuzz_check_load(fuzz_load_fn load, const void *ctx, unsigned int flags);

#endif
