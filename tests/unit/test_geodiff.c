// SPDX-License-Identifier: GPL-2.0-or-later
/* bf_geo_diff on small CIDR stacks written by the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "user/lib/geodiff.h"

struct side {
	struct bf_config cfg;
	struct bf_geo_table table;
};

static char folder[] = "/tmp/bf-geodiff.XXXXXX";

static void load_side(struct side *side, const char *name, const char *lines,
		      const char *approved)
{
	struct bf_error err = {};
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", folder, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(lines, f);
	fclose(f);
	bf_config_defaults(&side->cfg);
	side->cfg.napproved = 0;
	if (approved) {
		side->cfg.approved[side->cfg.napproved++] = BF_CC(approved[0], approved[1]);
		side->cfg.approved[side->cfg.napproved++] = BF_CC(approved[3], approved[4]);
	}
	bf_geo_table_init(&side->table);
	assert_int_equal(bf_geo_load_cidr_file(&side->table, path, &err), 0);
	assert_int_equal(bf_geo_flatten(&side->table, &err), 0);
}

static void free_side(struct side *side)
{
	bf_geo_table_free(&side->table);
	bf_config_free(&side->cfg);
}

static const struct bf_geo_change *find(const struct bf_geo_change *c, size_t n, const char *from,
					const char *to)
{
	uint16_t f = strcmp(from, "??") ? BF_CC(from[0], from[1]) : BF_CC_NONE;
	uint16_t t = strcmp(to, "??") ? BF_CC(to[0], to[1]) : BF_CC_NONE;
	size_t i;

	for (i = 0; i < n; i++)
		if (c[i].old_country == f && c[i].new_country == t)
			return &c[i];
	return NULL;
}

static void test_country_changes_counted(void **state)
{
	struct side a, b;
	struct bf_geo_change *changes;
	const struct bf_geo_change *c;
	size_t n;

	load_side(&a, "a.csv", "192.0.2.0/25,MO\n192.0.2.128/25,HK\n198.51.100.0/24,CN\n",
		  "MO HK");
	load_side(&b, "b.csv", "192.0.2.0/24,MO\n198.51.100.0/25,CN\n198.51.100.128/25,HK\n",
		  "MO HK");
	assert_int_equal(bf_geo_diff(&a.table, &a.cfg, &b.table, &b.cfg, &changes, &n), 0);
	assert_int_equal(n, 2);
	c = find(changes, n, "HK", "MO");
	assert_non_null(c);
	assert_int_equal(c->addresses4, 128);
	assert_int_equal(c->old_verdict, BF_VERDICT_APPROVED);
	c = find(changes, n, "CN", "HK");
	assert_non_null(c);
	assert_int_equal(c->addresses4, 128);
	assert_int_equal(c->old_verdict, BF_VERDICT_FOREIGN);
	assert_int_equal(c->new_verdict, BF_VERDICT_APPROVED);
	free(changes);
	free_side(&a);
	free_side(&b);
}

static void test_identical_stacks_no_changes(void **state)
{
	struct side a, b;
	struct bf_geo_change *changes;
	size_t n = 99;

	load_side(&a, "c.csv", "198.51.100.0/24,CN\n2001:db8::/32,US\n", "MO HK");
	load_side(&b, "d.csv", "198.51.100.0/25,CN\n198.51.100.128/25,CN\n2001:db8::/32,US\n",
		  "MO HK");
	assert_int_equal(bf_geo_diff(&a.table, &a.cfg, &b.table, &b.cfg, &changes, &n), 0);
	assert_int_equal(n, 0);
	free(changes);
	free_side(&a);
	free_side(&b);
}

/* The same data under another approved region changes verdicts, not countries. */
static void test_policy_change_counted(void **state)
{
	struct side a, b;
	struct bf_geo_change *changes;
	const struct bf_geo_change *c;
	size_t n;

	load_side(&a, "e.csv", "198.51.100.0/24,CN\n", "MO HK");
	load_side(&b, "f.csv", "198.51.100.0/24,CN\n", "MO CN");
	assert_int_equal(bf_geo_diff(&a.table, &a.cfg, &b.table, &b.cfg, &changes, &n), 0);
	assert_int_equal(n, 1);
	c = find(changes, n, "CN", "CN");
	assert_non_null(c);
	assert_int_equal(c->addresses4, 256);
	assert_int_equal(c->old_verdict, BF_VERDICT_FOREIGN);
	assert_int_equal(c->new_verdict, BF_VERDICT_APPROVED);
	free(changes);
	free_side(&a);
	free_side(&b);
}

static void test_ipv6_gap_and_whole_space(void **state)
{
	struct side a, b;
	struct bf_geo_change *changes;
	const struct bf_geo_change *c;
	size_t n;

	load_side(&a, "g.csv", "2001:db8::/32,US\n", "MO HK");
	load_side(&b, "h.csv", "::/0,CN\n", "MO HK");
	assert_int_equal(bf_geo_diff(&a.table, &a.cfg, &b.table, &b.cfg, &changes, &n), 0);
	c = find(changes, n, "US", "CN");
	assert_non_null(c);
	assert_true(c->addresses6 == (unsigned __int128)1 << 96);
	c = find(changes, n, "??", "CN");
	assert_non_null(c);
	/* Everything else but the /32 and the local ranges, which win over both sides. */
	assert_true(c->addresses6 > ((unsigned __int128)1 << 127));
	free(changes);
	free_side(&a);
	free_side(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_country_changes_counted),
		cmocka_unit_test(test_identical_stacks_no_changes),
		cmocka_unit_test(test_policy_change_counted),
		cmocka_unit_test(test_ipv6_gap_and_whole_space),
	};
	int ret;

	if (!mkdtemp(folder))
		return 1;
	ret = cmocka_run_group_tests_name("geodiff", tests, NULL, NULL);
	for (const char *name = "abcdefgh"; *name; name++) {
		char path[256];

		snprintf(path, sizeof(path), "%s/%c.csv", folder, *name);
		(void)unlink(path);
	}
	(void)rmdir(folder);
	return ret;
}
