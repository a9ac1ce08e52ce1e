/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef BORDERFLOW_TRIE_H
#define BORDERFLOW_TRIE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "geo.h"

/* What bf_trie_fill() wrote, and how long each family took. */
struct bf_trie_fill {
	size_t written4, written6; /* prefixes */
	double seconds4, seconds6;
};

/* Verdict of a range of table under cfg: local for the fixed local ranges. */
enum bf_verdict bf_range_verdict(const struct bf_geo_table *table, const struct bf_config *cfg,
				 uint16_t country, uint8_t source);

/*
 * Creates an LPM trie with the layout of the kernel's geolocation tries
 * (maps/geo.h) and room for prefixes plus some headroom. family is 4 or 6.
 * Returns the map fd or a negative errno.
 */
int bf_trie_create(int family, size_t prefixes);

/*
 * Writes every prefix of table, with its verdict under cfg and generation,
 * into the tries fd4 and fd6, in batches. Returns 0 or a negative errno
 * with err set.
 */
int bf_trie_fill(int fd4, int fd6, const struct bf_geo_table *table, const struct bf_config *cfg,
		 uint16_t generation, struct bf_trie_fill *out, struct bf_error *err);

#endif
