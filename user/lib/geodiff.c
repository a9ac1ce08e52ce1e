// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The difference of two geolocation stacks. Both tables are sorted and free
 * of overlaps after bf_geo_flatten(), so one sweep over the address space
 * visits every stretch where neither side changes its range; a stretch
 * whose country or verdict differs adds its size to the pair it belongs to.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "geodiff.h"

struct side_value {
	uint16_t country;
	uint8_t verdict;
};

struct changes {
	struct bf_geo_change *items;
	size_t n, cap;
};

static struct bf_geo_change *find_change(struct changes *c, struct side_value from,
					 struct side_value to)
{
	struct bf_geo_change *item;
	size_t i;

	for (i = 0; i < c->n; i++) {
		item = &c->items[i];
		if (item->old_country == from.country && item->new_country == to.country &&
		    item->old_verdict == from.verdict && item->new_verdict == to.verdict)
			return item;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;

		item = realloc(c->items, cap * sizeof(*item));
		if (!item)
			return NULL;
		c->items = item;
		c->cap = cap;
	}
	item = &c->items[c->n++];
	memset(item, 0, sizeof(*item));
	item->old_country = from.country;
	item->new_country = to.country;
	item->old_verdict = from.verdict;
	item->new_verdict = to.verdict;
	return item;
}

static struct side_value value_of(const struct bf_geo_table *t, const struct bf_config *cfg,
				  uint16_t country, uint8_t source)
{
	bool local = source < t->nsources && t->sources[source].format == BF_GEO_FORMAT_BUILTIN;
	struct side_value v = { .country = country,
				.verdict = bf_config_verdict(cfg, country, local) };

	return v;
}

static const struct side_value uncovered = { .country = BF_CC_NONE, .verdict = BF_VERDICT_UNKNOWN };

static bool same(struct side_value a, struct side_value b)
{
	return a.country == b.country && a.verdict == b.verdict;
}

/*
 * The value at pos on one side and the last address it holds for: the
 * range covering pos, or the gap up to the next range. *i is the first
 * range that does not end before pos.
 */
static struct side_value at4(const struct bf_geo_table *t, const struct bf_config *cfg, size_t *i,
			     uint64_t pos, uint64_t *end)
{
	while (*i < t->n4 && t->v4[*i].last < pos)
		(*i)++;
	if (*i < t->n4 && t->v4[*i].first <= pos) {
		*end = t->v4[*i].last;
		return value_of(t, cfg, t->v4[*i].country, t->v4[*i].source);
	}
	*end = *i < t->n4 ? (uint64_t)t->v4[*i].first - 1 : UINT32_MAX;
	return uncovered;
}

static unsigned __int128 load128(const uint8_t bytes[16])
{
	unsigned __int128 v = 0;
	int k;

	for (k = 0; k < 16; k++)
		v = v << 8 | bytes[k];
	return v;
}

static struct side_value at6(const struct bf_geo_table *t, const struct bf_config *cfg, size_t *i,
			     unsigned __int128 pos, unsigned __int128 *end)
{
	while (*i < t->n6 && load128(t->v6[*i].last) < pos)
		(*i)++;
	if (*i < t->n6 && load128(t->v6[*i].first) <= pos) {
		*end = load128(t->v6[*i].last);
		return value_of(t, cfg, t->v6[*i].country, t->v6[*i].source);
	}
	*end = *i < t->n6 ? load128(t->v6[*i].first) - 1 : ~(unsigned __int128)0;
	return uncovered;
}

static int diff4(const struct bf_geo_table *a, const struct bf_config *acfg,
		 const struct bf_geo_table *b, const struct bf_config *bcfg, struct changes *c)
{
	size_t i = 0, j = 0;
	uint64_t pos = 0;

	while (pos <= UINT32_MAX) {
		uint64_t aend, bend, end;
		struct side_value from = at4(a, acfg, &i, pos, &aend);
		struct side_value to = at4(b, bcfg, &j, pos, &bend);
		struct bf_geo_change *item;

		end = aend < bend ? aend : bend;
		if (!same(from, to)) {
			item = find_change(c, from, to);
			if (!item)
				return -ENOMEM;
			item->addresses4 += end - pos + 1;
		}
		pos = end + 1;
	}
	return 0;
}

static int diff6(const struct bf_geo_table *a, const struct bf_config *acfg,
		 const struct bf_geo_table *b, const struct bf_config *bcfg, struct changes *c)
{
	const unsigned __int128 max = ~(unsigned __int128)0;
	unsigned __int128 pos = 0, aend, bend, end;
	size_t i = 0, j = 0;

	for (;;) {
		struct side_value from = at6(a, acfg, &i, pos, &aend);
		struct side_value to = at6(b, bcfg, &j, pos, &bend);
		struct bf_geo_change *item;

		end = aend < bend ? aend : bend;
		if (!same(from, to)) {
			item = find_change(c, from, to);
			if (!item)
				return -ENOMEM;
			/* The whole space (2^128) does not fit; it saturates one short. */
			item->addresses6 += end - pos == max ? max : end - pos + 1;
		}
		if (end == max)
			return 0;
		pos = end + 1;
	}
}

int bf_geo_diff(const struct bf_geo_table *old_table, const struct bf_config *old_cfg,
		const struct bf_geo_table *new_table, const struct bf_config *new_cfg,
		struct bf_geo_change **changes, size_t *nchanges)
{
	struct changes c = {};
	int ret;

	ret = diff4(old_table, old_cfg, new_table, new_cfg, &c);
	if (!ret)
		ret = diff6(old_table, old_cfg, new_table, new_cfg, &c);
	if (ret) {
		free(c.items);
		return ret;
	}
	*changes = c.items;
	*nchanges = c.n;
	return 0;
}
