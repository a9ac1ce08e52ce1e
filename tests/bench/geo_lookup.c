// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Geolocation benchmark: how long the data takes to load into the kernel's
 * geolocation tables, and how many lookups per second the kernel tables,
 * the userspace table and libmaxminddb make on the same addresses.
 *
 *	geo_lookup ranges [--data FILE]...
 *	geo_lookup run --mmdb FILE [--data FILE]... [--addresses N] [--seed N]
 *		       [--rounds N] [--load-runs N] [--mmdb-write-seconds S]
 *
 * "ranges" prints the flattened table as "first,last,CC" lines, without the
 * ranges that have no country, for tests/bench/geo_mmdb_write.pl to write the
 * mmdb that "run" compares against.
 *
 * "run" loads the data the way user/monitor.c does (parse, flatten, count
 * the ranges, one table per family written through mmap()), --load-runs
 * times. Then it looks the same pseudo-random addresses up in each
 * contender, once to compare their countries and then --rounds times, and
 * prints two tables and a "bench-json:" line. It never judges a timing,
 * but it exits 3 when a contender's countries differ from the userspace
 * table's; it exits 1 on any other failure and 2 on invalid options.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "geo_lookup.skel.h"
#include "maps/geo.h"
#include "user/lib/config.h"
#include "user/lib/geo.h"
#include "user/lib/geomap.h"

#include "geo_lookup.h"

#define DEFAULT_ADDRESSES 1000000UL
#define MAX_ADDRESSES	  10000000UL
#define DEFAULT_ROUNDS	  5UL
#define MAX_ROUNDS	  20UL
#define DEFAULT_LOAD_RUNS 3UL
#define MAX_LOAD_RUNS	  10UL
#define DEFAULT_SEED	  1UL

/* Shares of the addresses: IPv4 among all, and uniformly random ones among each family's. */
#define IPV4_PERCENT   70
#define RANDOM_PERCENT 10

/* Addresses per BPF_PROG_TEST_RUN, so no run lasts long: about 0.1 s with the full default data. */
#define RUN_LOOKUPS 65536

/* Mismatches printed as examples, per contender. */
#define MAX_MISMATCH_EXAMPLES 5

enum contender {
	CONTENDER_KERNEL,
	CONTENDER_USER,
	CONTENDER_MMDB,
	CONTENDER_MMDB_COUNTRY,
	CONTENDER_COUNT,
};

static const char *const contender_names[CONTENDER_COUNT] = {
	[CONTENDER_KERNEL] = "kernel tables, BPF_PROG_TEST_RUN",
	[CONTENDER_USER] = "userspace table, bf_geo_lookup4/6",
	[CONTENDER_MMDB] = "libmaxminddb, MMDB_lookup_sockaddr",
	[CONTENDER_MMDB_COUNTRY] = "libmaxminddb, lookup + country",
};

static const char *const contender_keys[CONTENDER_COUNT] = {
	[CONTENDER_KERNEL] = "kernel",
	[CONTENDER_USER] = "userspace",
	[CONTENDER_MMDB] = "mmdb_lookup",
	[CONTENDER_MMDB_COUNTRY] = "mmdb_lookup_country",
};

struct options {
	const char *mode;
	const char *data[BF_GEO_MAX_SOURCES];
	size_t ndata;
	const char *mmdb;
	unsigned long addresses;
	unsigned long rounds;
	unsigned long load_runs;
	unsigned long seed;
	double mmdb_write_s; /* negative when not given */
};

/* Seconds of each step of one load. */
struct load_times {
	double parse_s[BF_GEO_MAX_SOURCES];
	double flatten_s;
	double count_s;
	double create_s;
	double fill_s;	/* both tables */
	double fill4_s; /* the IPv4 table alone */
	double fill6_s;
	double total_s;
};

struct tables {
	int fd4;
	int fd6;
	struct bf_geo_map_fill filled;
};

/* An address of either family, as libmaxminddb takes it. */
union sockaddr_any {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* The addresses looked up, and each contender's countries for them. */
struct lookup_set {
	size_t count;
	size_t count4;
	struct geo_lookup_addr *addrs;
	union sockaddr_any *sockaddrs;
	uint16_t *countries[CONTENDER_COUNT]; /* BF_CC(); BF_CC_NONE when no range covers it */
	size_t hits[CONTENDER_COUNT];
};

struct lookup_rates {
	double per_s[CONTENDER_COUNT][MAX_ROUNDS];
	double kernel_run_ns[MAX_ROUNDS]; /* sum of the durations BPF_PROG_TEST_RUN reports */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int compare_double(const void *pa, const void *pb)
{
	double a = *(const double *)pa, b = *(const double *)pb;

	return (a > b) - (a < b);
}

static double median(const double *values, size_t n)
{
	double sorted[MAX_ROUNDS > MAX_LOAD_RUNS ? MAX_ROUNDS : MAX_LOAD_RUNS];

	memcpy(sorted, values, n * sizeof(*values));
	qsort(sorted, n, sizeof(*sorted), compare_double);
	return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/* Formats (max - min) / median of the values in percent, the run-to-run noise, in a static buffer.
 */
static const char *spread(const double *values, size_t n)
{
	static char text[16];
	double min = values[0], max = values[0], mid = median(values, n);

	for (size_t i = 1; i < n; i++) {
		min = values[i] < min ? values[i] : min;
		max = values[i] > max ? values[i] : max;
	}
	if (n < 2 || mid <= 0)
		return "n/a";
	snprintf(text, sizeof(text), "%.0f%%", 100 * (max - min) / mid);
	return text;
}

/* Loading */

/*
 * Reads every data file as a layer and flattens the table, as
 * bf_geo_load_stack() does for the [geo] data of a configuration.
 */
static int load_table(const struct options *o, struct bf_geo_table *table, struct load_times *times,
		      struct bf_error *err)
{
	double t0;
	size_t i;
	int ret;

	bf_geo_table_init(table);
	for (i = 0; i < o->ndata; i++) {
		t0 = now_s();
		ret = bf_geo_load_file(table, o->data[i], err);
		if (ret)
			return ret;
		times->parse_s[i] = now_s() - t0;
	}
	t0 = now_s();
	ret = bf_geo_flatten(table, err);
	times->flatten_s = now_s() - t0;
	return ret;
}

static int create_tables(const struct bf_geo_table *table, struct tables *tables,
			 struct load_times *times, struct bf_error *err)
{
	size_t n4, n6;
	double t0;
	int ret;

	t0 = now_s();
	ret = bf_geo_map_count(table, &n4, &n6);
	if (ret)
		return bf_error_set(err, ret, "failed to count geolocation ranges: %s",
				    strerror(-ret));
	times->count_s = now_s() - t0;

	t0 = now_s();
	tables->fd4 = bf_geo_map_create(4, n4);
	if (tables->fd4 < 0)
		return bf_error_set(err, tables->fd4, "failed to create the IPv4 table: %s",
				    strerror(-tables->fd4));
	tables->fd6 = bf_geo_map_create(6, n6);
	if (tables->fd6 < 0)
		return bf_error_set(err, tables->fd6, "failed to create the IPv6 table: %s",
				    strerror(-tables->fd6));
	times->create_s = now_s() - t0;
	return 0;
}

/* Fills the tables with the daemon's own code (user/lib/geomap.c). */
static int fill_tables(const struct bf_geo_table *table, struct tables *tables,
		       struct load_times *times, struct bf_error *err)
{
	static struct bf_config cfg;
	double t0;
	int ret;

	bf_config_defaults(&cfg);
	t0 = now_s();
	ret = bf_geo_map_fill(tables->fd4, tables->fd6, table, &cfg, 0, &tables->filled, err);
	times->fill_s = now_s() - t0;
	times->fill4_s = tables->filled.seconds4;
	times->fill6_s = tables->filled.seconds6;
	return ret;
}

static void close_tables(struct tables *tables)
{
	if (tables->fd4 >= 0)
		close(tables->fd4);
	if (tables->fd6 >= 0)
		close(tables->fd6);
	tables->fd4 = tables->fd6 = -1;
}

/*
 * Loads the data into new tables load_runs times. The table and the kernel
 * tables of the last run stay for the lookups; the others are freed.
 */
static int load_all(const struct options *o, struct bf_geo_table *table, struct tables *tables,
		    struct load_times *runs)
{
	struct bf_error err = { "" };
	unsigned long run;
	double t0;
	int ret;

	for (run = 0; run < o->load_runs; run++) {
		if (run) {
			close_tables(tables);
			bf_geo_table_free(table);
		}
		t0 = now_s();
		ret = load_table(o, table, &runs[run], &err);
		if (!ret)
			ret = create_tables(table, tables, &runs[run], &err);
		if (!ret)
			ret = fill_tables(table, tables, &runs[run], &err);
		if (ret) {
			fprintf(stderr, "geo_lookup: %s\n", err.msg);
			return ret;
		}
		runs[run].total_s = now_s() - t0;
	}
	return 0;
}

/* Addresses */

static uint64_t random64(unsigned short state[3])
{
	return (uint64_t)(uint32_t)jrand48(state) << 32 | (uint32_t)jrand48(state);
}

static unsigned __int128 u128_from_bytes(const uint8_t bytes[16])
{
	unsigned __int128 v = 0;

	for (int i = 0; i < 16; i++)
		v = v << 8 | bytes[i];
	return v;
}

static void u128_to_bytes(unsigned __int128 v, uint8_t bytes[16])
{
	for (int i = 15; i >= 0; i--, v >>= 8)
		bytes[i] = (uint8_t)v;
}

/* An IPv4 address inside a random range of the table, or anywhere in RANDOM_PERCENT of cases. */
static void random_addr4(const struct bf_geo_table *table, unsigned short state[3],
			 struct geo_lookup_addr *key)
{
	uint32_t host, be;

	if (random64(state) % 100 < RANDOM_PERCENT) {
		host = (uint32_t)random64(state);
	} else {
		const struct bf_range4 *r = &table->v4[random64(state) % table->n4];
		uint64_t span = (uint64_t)r->last - r->first + 1;

		host = r->first + (uint32_t)(random64(state) % span);
	}
	be = htonl(host);
	memset(key, 0, sizeof(*key));
	key->family = 4;
	memcpy(key->addr, &be, 4);
}

/* An IPv6 address inside a random range of the table, or in 2000::/3 in RANDOM_PERCENT of cases. */
static void random_addr6(const struct bf_geo_table *table, unsigned short state[3],
			 struct geo_lookup_addr *key)
{
	unsigned __int128 random = (unsigned __int128)random64(state) << 64 | random64(state);
	unsigned __int128 addr;

	if (random64(state) % 100 < RANDOM_PERCENT) {
		addr = random >> 3 | (unsigned __int128)1 << 125;
	} else {
		const struct bf_range6 *r = &table->v6[random64(state) % table->n6];
		unsigned __int128 first = u128_from_bytes(r->first);
		unsigned __int128 span = u128_from_bytes(r->last) - first + 1;

		/* span is 0 only for the whole address space. */
		addr = first + (span ? random % span : random);
	}
	key->family = 6;
	u128_to_bytes(addr, key->addr);
}

static void fill_sockaddr(const struct geo_lookup_addr *key, union sockaddr_any *out)
{
	memset(out, 0, sizeof(*out));
	if (key->family == 4) {
		out->in.sin_family = AF_INET;
		memcpy(&out->in.sin_addr, key->addr, 4);
	} else {
		out->in6.sin6_family = AF_INET6;
		memcpy(&out->in6.sin6_addr, key->addr, 16);
	}
}

/*
 * Draws the addresses with jrand48() from the seed, so every run and every
 * contender gets the same list: IPV4_PERCENT IPv4, the rest IPv6, shuffled.
 */
static int make_addresses(const struct options *o, const struct bf_geo_table *table,
			  struct lookup_set *set)
{
	unsigned short state[3] = { 0x330e, (unsigned short)o->seed,
				    (unsigned short)(o->seed >> 16) };
	size_t i;

	if (!table->n4 || !table->n6) {
		fprintf(stderr, "geo_lookup: the data has no %s range to draw addresses from\n",
			table->n4 ? "IPv6" : "IPv4");
		return -EINVAL;
	}
	set->count = o->addresses;
	set->count4 = o->addresses * IPV4_PERCENT / 100;
	set->addrs = calloc(set->count, sizeof(*set->addrs));
	set->sockaddrs = calloc(set->count, sizeof(*set->sockaddrs));
	for (i = 0; i < CONTENDER_COUNT; i++)
		set->countries[i] = calloc(set->count, sizeof(uint16_t));
	for (i = 0; i < CONTENDER_COUNT; i++) {
		if (!set->countries[i])
			return -ENOMEM;
	}
	if (!set->addrs || !set->sockaddrs)
		return -ENOMEM;

	for (i = 0; i < set->count; i++) {
		if (i < set->count4)
			random_addr4(table, state, &set->addrs[i]);
		else
			random_addr6(table, state, &set->addrs[i]);
	}
	for (i = set->count - 1; i > 0; i--) {
		size_t j = random64(state) % (i + 1);
		struct geo_lookup_addr tmp = set->addrs[i];

		set->addrs[i] = set->addrs[j];
		set->addrs[j] = tmp;
	}
	for (i = 0; i < set->count; i++)
		fill_sockaddr(&set->addrs[i], &set->sockaddrs[i]);
	return 0;
}

static void free_addresses(struct lookup_set *set)
{
	free(set->addrs);
	free(set->sockaddrs);
	for (size_t i = 0; i < CONTENDER_COUNT; i++)
		free(set->countries[i]);
}

/* Kernel contender */

/*
 * Puts a table in slot 0 of its array of maps (geo4 or geo6), as the daemon
 * does. Earlier versions of bpf/maps.bpf.h declare geo4 and geo6 as the
 * maps themselves, and then the program uses the benchmark's maps in their
 * place, so that the benchmark also measures those versions.
 */
static int put_in_place(struct bpf_map *map, int table_fd, bool loaded)
{
	__u32 slot = 0;

	if (bpf_map__type(map) == BPF_MAP_TYPE_ARRAY_OF_MAPS)
		return loaded ? bpf_map_update_elem(bpf_map__fd(map), &slot, &table_fd, BPF_ANY)
			      : 0;
	return loaded ? 0 : bpf_map__reuse_fd(map, table_fd);
}

/*
 * Loads the lookup program with the last load's tables. The other maps of
 * bpf/maps.bpf.h are not created.
 */
static int load_program(struct geo_lookup_bpf *skel, const struct tables *tables, size_t count)
{
	const char *step = "load";
	int ret;

	if (bpf_map__value_size(skel->maps.results) != sizeof(struct bf_geo_value)) {
		fprintf(stderr, "geo_lookup: the BPF object was built from another maps/geo.h; "
				"rebuild both with tests/bench/run.sh\n");
		return -EINVAL;
	}
	ret = geo_lookup_skip_unused_maps(skel);
	if (!ret)
		ret = put_in_place(skel->maps.geo4, tables->fd4, false);
	if (!ret)
		ret = put_in_place(skel->maps.geo6, tables->fd6, false);
	if (!ret)
		ret = bpf_map__set_max_entries(skel->maps.addrs, count);
	if (!ret)
		ret = bpf_map__set_max_entries(skel->maps.results, count);
	if (!ret)
		ret = geo_lookup_bpf__load(skel);
	if (!ret) {
		step = "put the tables in place for";
		ret = put_in_place(skel->maps.geo4, tables->fd4, true);
	}
	if (!ret)
		ret = put_in_place(skel->maps.geo6, tables->fd6, true);
	if (ret)
		fprintf(stderr, "geo_lookup: failed to %s tests/bench/geo_lookup.bpf.c: %s\n", step,
			strerror(-ret));
	return ret;
}

/* Writes the addresses into the program's array, with one BPF_MAP_UPDATE_BATCH. */
static int write_addresses(struct geo_lookup_bpf *skel, const struct lookup_set *set)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	__u32 count = set->count;
	__u32 *keys;
	int ret;

	keys = malloc(set->count * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < set->count; i++)
		keys[i] = i;
	ret = bpf_map_update_batch(bpf_map__fd(skel->maps.addrs), keys, set->addrs, &count, &opts);
	free(keys);
	if (ret)
		fprintf(stderr,
			"geo_lookup: failed to write %zu addresses to the map 'addrs': %s\n",
			set->count, strerror(-ret));
	return ret;
}

/* Copies the countries that the last run stored in the program's results array. */
static int read_kernel_countries(struct geo_lookup_bpf *skel, struct lookup_set *set)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct bf_geo_value *values;
	__u32 *keys, batch, count;
	size_t done = 0, i;
	int ret = 0;

	keys = calloc(RUN_LOOKUPS, sizeof(*keys));
	values = calloc(RUN_LOOKUPS, sizeof(*values));
	while (keys && values && done < set->count) {
		count = RUN_LOOKUPS;
		ret = bpf_map_lookup_batch(bpf_map__fd(skel->maps.results), done ? &batch : NULL,
					   &batch, keys, values, &count, &opts);
		if (ret && ret != -ENOENT)
			break;
		for (i = 0; i < count && keys[i] < set->count; i++)
			set->countries[CONTENDER_KERNEL][keys[i]] = values[i].country;
		done += count;
		if (ret == -ENOENT || !count)
			break;
	}
	if (!keys || !values)
		ret = -ENOMEM;
	else if (ret == -ENOENT)
		ret = 0;
	free(keys);
	free(values);
	if (!ret && done != set->count)
		ret = -EIO;
	if (ret)
		fprintf(stderr, "geo_lookup: failed to read the map 'results': %s\n",
			strerror(-ret));
	return ret;
}

/*
 * Looks every address up in the kernel tables, RUN_LOOKUPS per test run.
 * Returns the seconds from the first run's start to the last run's end, and
 * in run_ns the sum of the durations that the kernel measured.
 */
static int run_kernel(struct geo_lookup_bpf *skel, const struct lookup_set *set, double *seconds,
		      double *run_ns)
{
	int prog_fd = bpf_program__fd(skel->progs.geo_lookup_run);
	uint8_t packet[64] = { 0 };
	size_t first;
	double t0;
	int ret;

	*run_ns = 0;
	t0 = now_s();
	for (first = 0; first < set->count; first += RUN_LOOKUPS) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet,
			    .data_size_in = sizeof(packet), .repeat = 1);

		skel->bss->lookup_first = first;
		skel->bss->lookup_count =
			set->count - first < RUN_LOOKUPS ? set->count - first : RUN_LOOKUPS;
		ret = bpf_prog_test_run_opts(prog_fd, &opts);
		if (ret) {
			fprintf(stderr,
				"geo_lookup: BPF_PROG_TEST_RUN of geo_lookup_run failed: %s\n",
				strerror(-ret));
			return ret;
		}
		*run_ns += opts.duration;
	}
	*seconds = now_s() - t0;
	return 0;
}

/* Userspace and libmaxminddb contenders */

static double run_user(const struct bf_geo_table *table, struct lookup_set *set)
{
	uint16_t *countries = set->countries[CONTENDER_USER];
	size_t hits = 0;
	double t0 = now_s();

	for (size_t i = 0; i < set->count; i++) {
		const struct geo_lookup_addr *key = &set->addrs[i];
		uint16_t country = BF_CC_NONE;

		if (key->family == 4) {
			const struct bf_range4 *r;
			uint32_t be;

			memcpy(&be, key->addr, 4);
			r = bf_geo_lookup4(table, ntohl(be));
			if (r) {
				country = r->country;
				hits++;
			}
		} else {
			const struct bf_range6 *r = bf_geo_lookup6(table, key->addr);

			if (r) {
				country = r->country;
				hits++;
			}
		}
		countries[i] = country;
	}
	set->hits[CONTENDER_USER] = hits;
	return now_s() - t0;
}

static int mmdb_failed(const struct lookup_set *set, size_t i, int gai_error, int mmdb_error)
{
	char text[INET6_ADDRSTRLEN];

	inet_ntop(set->addrs[i].family == 4 ? AF_INET : AF_INET6, set->addrs[i].addr, text,
		  sizeof(text));
	fprintf(stderr, "geo_lookup: MMDB_lookup_sockaddr of '%s' failed: %s\n", text,
		gai_error ? gai_strerror(gai_error) : MMDB_strerror(mmdb_error));
	return -EIO;
}

/* Looks every address up without reading its record, the least work of any reader of the mmdb. */
static int run_mmdb(MMDB_s *mmdb, struct lookup_set *set, double *seconds)
{
	size_t hits = 0;
	double t0 = now_s();

	for (size_t i = 0; i < set->count; i++) {
		int mmdb_error;
		MMDB_lookup_result_s result;

		result = MMDB_lookup_sockaddr(mmdb, &set->sockaddrs[i].sa, &mmdb_error);
		if (mmdb_error != MMDB_SUCCESS)
			return mmdb_failed(set, i, 0, mmdb_error);
		hits += result.found_entry;
	}
	*seconds = now_s() - t0;
	set->hits[CONTENDER_MMDB] = hits;
	return 0;
}

/* Looks every address up and reads country/iso_code of its record, as a country lookup does. */
static int run_mmdb_country(MMDB_s *mmdb, struct lookup_set *set, double *seconds)
{
	uint16_t *countries = set->countries[CONTENDER_MMDB_COUNTRY];
	size_t hits = 0;
	double t0 = now_s();

	for (size_t i = 0; i < set->count; i++) {
		int mmdb_error;
		MMDB_lookup_result_s result;
		MMDB_entry_data_s data;

		countries[i] = BF_CC_NONE;
		result = MMDB_lookup_sockaddr(mmdb, &set->sockaddrs[i].sa, &mmdb_error);
		if (mmdb_error != MMDB_SUCCESS)
			return mmdb_failed(set, i, 0, mmdb_error);
		if (!result.found_entry)
			continue;
		hits++;
		mmdb_error = MMDB_get_value(&result.entry, &data, "country", "iso_code", NULL);
		if (mmdb_error != MMDB_SUCCESS)
			return mmdb_failed(set, i, 0, mmdb_error);
		if (data.has_data && data.type == MMDB_DATA_TYPE_UTF8_STRING && data.data_size == 2)
			countries[i] = BF_CC(data.utf8_string[0], data.utf8_string[1]);
	}
	*seconds = now_s() - t0;
	set->hits[CONTENDER_MMDB_COUNTRY] = hits;
	return 0;
}

/* Comparison */

static void print_mismatch(const struct lookup_set *set, enum contender c, size_t i)
{
	char text[INET6_ADDRSTRLEN], got[3], expected[3];

	inet_ntop(set->addrs[i].family == 4 ? AF_INET : AF_INET6, set->addrs[i].addr, text,
		  sizeof(text));
	bf_country_format(set->countries[c][i], got);
	bf_country_format(set->countries[CONTENDER_USER][i], expected);
	fprintf(stderr, "geo_lookup: %s: '%s' is %s, the userspace table returns %s\n",
		contender_keys[c], text, got, expected);
}

/* Counts the addresses for which contender c returns another country than the userspace table. */
static size_t count_mismatches(const struct lookup_set *set, enum contender c)
{
	size_t mismatches = 0;

	for (size_t i = 0; i < set->count; i++) {
		if (set->countries[c][i] == set->countries[CONTENDER_USER][i])
			continue;
		if (mismatches++ < MAX_MISMATCH_EXAMPLES)
			print_mismatch(set, c, i);
	}
	return mismatches;
}

/* Runs every contender once, unmeasured, to warm caches and to record its countries. */
static int first_pass(struct geo_lookup_bpf *skel, const struct bf_geo_table *table, MMDB_s *mmdb,
		      struct lookup_set *set)
{
	double seconds, run_ns;
	int ret;

	skel->bss->hits = 0;
	ret = run_kernel(skel, set, &seconds, &run_ns);
	if (!ret)
		ret = read_kernel_countries(skel, set);
	if (ret)
		return ret;
	set->hits[CONTENDER_KERNEL] = skel->bss->hits;
	(void)run_user(table, set);
	ret = run_mmdb(mmdb, set, &seconds);
	if (!ret)
		ret = run_mmdb_country(mmdb, set, &seconds);
	return ret;
}

/* Runs the contenders one after the other, rounds times, and stores each one's lookups per second.
 */
static int measure(const struct options *o, struct geo_lookup_bpf *skel,
		   const struct bf_geo_table *table, MMDB_s *mmdb, struct lookup_set *set,
		   struct lookup_rates *rates)
{
	double seconds;
	unsigned long r;
	int ret;

	for (r = 0; r < o->rounds; r++) {
		ret = run_kernel(skel, set, &seconds, &rates->kernel_run_ns[r]);
		if (ret)
			return ret;
		rates->per_s[CONTENDER_KERNEL][r] = set->count / seconds;
		rates->per_s[CONTENDER_USER][r] = set->count / run_user(table, set);
		ret = run_mmdb(mmdb, set, &seconds);
		if (ret)
			return ret;
		rates->per_s[CONTENDER_MMDB][r] = set->count / seconds;
		ret = run_mmdb_country(mmdb, set, &seconds);
		if (ret)
			return ret;
		rates->per_s[CONTENDER_MMDB_COUNTRY][r] = set->count / seconds;
	}
	return 0;
}

/* Report */

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* The values of one load step over all runs, from its offset in struct load_times. */
static void step_values(const struct load_times *runs, size_t nruns, size_t offset, double *values)
{
	for (size_t i = 0; i < nruns; i++)
		values[i] = *(const double *)((const char *)&runs[i] + offset);
}

static void print_step(const char *name, const struct load_times *runs, size_t nruns, size_t offset,
		       const char *target)
{
	double values[MAX_LOAD_RUNS];
	char list[MAX_LOAD_RUNS * 12] = "";
	size_t len = 0;

	step_values(runs, nruns, offset, values);
	for (size_t i = 0; i < nruns; i++)
		len += snprintf(list + len, sizeof(list) - len, "%s%.3f", i ? " " : "", values[i]);
	printf("  %-36s %-11.3f %-30s %s\n", name, median(values, nruns), list, target);
}

static void print_load(const struct options *o, const struct load_times *runs,
		       const struct tables *tables, const struct bf_geo_table *table)
{
	const struct bf_geo_map_fill *filled = &tables->filled;
	char name[80];

	printf("  %-36s %-11s %-30s %s\n", "load step", "median (s)", "runs (s)", "target");
	for (size_t i = 0; i < o->ndata; i++) {
		snprintf(name, sizeof(name), "parse %s", base_name(o->data[i]));
		print_step(name, runs, o->load_runs,
			   offsetof(struct load_times, parse_s) + i * sizeof(double), "");
	}
	snprintf(name, sizeof(name), "flatten (%zu + %zu ranges)", table->n4, table->n6);
	print_step(name, runs, o->load_runs, offsetof(struct load_times, flatten_s), "");
	print_step("count ranges", runs, o->load_runs, offsetof(struct load_times, count_s), "");
	print_step("create the 2 tables", runs, o->load_runs, offsetof(struct load_times, create_s),
		   "");
	print_step("fill the tables", runs, o->load_runs, offsetof(struct load_times, fill_s), "");
	snprintf(name, sizeof(name), "  IPv4, %zu ranges, %.1f MiB", filled->ranges4,
		 filled->bytes4 / 1048576.0);
	print_step(name, runs, o->load_runs, offsetof(struct load_times, fill4_s), "");
	snprintf(name, sizeof(name), "  IPv6, %zu ranges, %.1f MiB", filled->ranges6,
		 filled->bytes6 / 1048576.0);
	print_step(name, runs, o->load_runs, offsetof(struct load_times, fill6_s), "");
	print_step("total", runs, o->load_runs, offsetof(struct load_times, total_s), "< 1");
	if (o->mmdb_write_s >= 0)
		printf("  mmdb written by tests/bench/geo_mmdb_write.pl in %.1f s, outside the "
		       "total\n",
		       o->mmdb_write_s);
}

/* Counts the addresses to which contender c gave a country. */
static size_t count_countries(const struct lookup_set *set, enum contender c)
{
	size_t n = 0;

	for (size_t i = 0; i < set->count; i++)
		n += set->countries[c][i] != BF_CC_NONE;
	return n;
}

static void print_lookups(const struct options *o, const struct lookup_set *set,
			  const struct lookup_rates *rates, const size_t mismatches[])
{
	double base = median(rates->per_s[CONTENDER_MMDB], o->rounds);

	printf("\n  %-36s %-11s %-10s %-16s %-8s %s\n", "contender", "lookups/s", "ns/lookup",
	       "vs libmaxminddb", "spread", "target");
	for (int c = 0; c < CONTENDER_COUNT; c++) {
		double rate = median(rates->per_s[c], o->rounds);

		printf("  %-36s %-11.0f %-10.1f %-16.3f %-8s %s\n", contender_names[c], rate,
		       1e9 / rate, rate / base, spread(rates->per_s[c], o->rounds),
		       c == CONTENDER_KERNEL || c == CONTENDER_USER ? ">= 1" : "");
	}
	printf("  medians of %lu rounds, spread (max-min)/median; %zu addresses: %zu IPv4, %zu "
	       "IPv6, seed %lu\n",
	       o->rounds, set->count, set->count4, set->count - set->count4, o->seed);
	printf("  with a country: kernel %zu, userspace %zu, libmaxminddb %zu; a range of the data "
	       "found in the kernel tables: %zu\n",
	       count_countries(set, CONTENDER_KERNEL), count_countries(set, CONTENDER_USER),
	       count_countries(set, CONTENDER_MMDB_COUNTRY), set->hits[CONTENDER_KERNEL]);
	printf("  countries other than the userspace table's: kernel %zu, libmaxminddb %zu%s\n",
	       mismatches[CONTENDER_KERNEL], mismatches[CONTENDER_MMDB_COUNTRY],
	       mismatches[CONTENDER_KERNEL] || mismatches[CONTENDER_MMDB_COUNTRY]
		       ? " (MISMATCH: examples on stderr)"
		       : "");
}

static struct json_object *json_number(double value, const char *format)
{
	char text[64];

	snprintf(text, sizeof(text), format, value);
	return json_object_new_double_s(value, text);
}

static struct json_object *json_numbers(const double *values, size_t n, const char *format)
{
	struct json_object *array = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(array, json_number(values[i], format));
	return array;
}

static void json_add_steps(struct json_object *out, const struct options *o,
			   const struct load_times *runs)
{
	static const struct {
		const char *key;
		size_t offset;
	} steps[] = {
		{ "flatten_s", offsetof(struct load_times, flatten_s) },
		{ "count_s", offsetof(struct load_times, count_s) },
		{ "create_s", offsetof(struct load_times, create_s) },
		{ "fill_s", offsetof(struct load_times, fill_s) },
		{ "fill4_s", offsetof(struct load_times, fill4_s) },
		{ "fill6_s", offsetof(struct load_times, fill6_s) },
		{ "total_s", offsetof(struct load_times, total_s) },
	};
	struct json_object *parse = json_object_new_array();
	double values[MAX_LOAD_RUNS];

	for (size_t i = 0; i < o->ndata; i++) {
		struct json_object *file = json_object_new_object();

		step_values(runs, o->load_runs,
			    offsetof(struct load_times, parse_s) + i * sizeof(double), values);
		json_object_object_add(file, "path", json_object_new_string(o->data[i]));
		json_object_object_add(file, "runs_s", json_numbers(values, o->load_runs, "%.4f"));
		json_object_array_add(parse, file);
	}
	json_object_object_add(out, "parse", parse);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		step_values(runs, o->load_runs, steps[i].offset, values);
		json_object_object_add(out, steps[i].key,
				       json_numbers(values, o->load_runs, "%.4f"));
	}
	step_values(runs, o->load_runs, offsetof(struct load_times, total_s), values);
	json_object_object_add(out, "total_median_s",
			       json_number(median(values, o->load_runs), "%.4f"));
}

static void json_add_lookups(struct json_object *out, const struct options *o,
			     const struct lookup_set *set, const struct lookup_rates *rates,
			     const size_t mismatches[])
{
	struct json_object *per_s = json_object_new_object();
	struct json_object *medians = json_object_new_object();
	struct json_object *hits = json_object_new_object();
	double base = median(rates->per_s[CONTENDER_MMDB], o->rounds);

	for (int c = 0; c < CONTENDER_COUNT; c++) {
		double rate = median(rates->per_s[c], o->rounds);

		json_object_object_add(per_s, contender_keys[c],
				       json_numbers(rates->per_s[c], o->rounds, "%.0f"));
		json_object_object_add(medians, contender_keys[c], json_number(rate, "%.0f"));
		json_object_object_add(hits, contender_keys[c],
				       json_object_new_int64(set->hits[c]));
	}
	json_object_object_add(out, "lookups_per_s", per_s);
	json_object_object_add(out, "median_lookups_per_s", medians);
	json_object_object_add(out, "kernel_run_ns",
			       json_numbers(rates->kernel_run_ns, o->rounds, "%.0f"));
	json_object_object_add(
		out, "ratio_kernel_to_mmdb",
		json_number(median(rates->per_s[CONTENDER_KERNEL], o->rounds) / base, "%.3f"));
	json_object_object_add(
		out, "ratio_userspace_to_mmdb",
		json_number(median(rates->per_s[CONTENDER_USER], o->rounds) / base, "%.3f"));
	json_object_object_add(out, "hits", hits);
	json_object_object_add(out, "with_country_userspace",
			       json_object_new_int64(count_countries(set, CONTENDER_USER)));
	json_object_object_add(out, "mismatches_kernel",
			       json_object_new_int64(mismatches[CONTENDER_KERNEL]));
	json_object_object_add(out, "mismatches_mmdb",
			       json_object_new_int64(mismatches[CONTENDER_MMDB_COUNTRY]));
}

static void print_json(const struct options *o, const struct load_times *runs,
		       const struct tables *tables, const struct bf_geo_table *table,
		       const struct lookup_set *set, const struct lookup_rates *rates,
		       const size_t mismatches[])
{
	struct json_object *out = json_object_new_object();

	json_object_object_add(out, "name", json_object_new_string("geo_lookup"));
	json_object_object_add(out, "ranges4", json_object_new_int64(table->n4));
	json_object_object_add(out, "ranges6", json_object_new_int64(table->n6));
	json_object_object_add(out, "table_ranges4", json_object_new_int64(tables->filled.ranges4));
	json_object_object_add(out, "table_ranges6", json_object_new_int64(tables->filled.ranges6));
	json_object_object_add(out, "table_bytes4", json_object_new_int64(tables->filled.bytes4));
	json_object_object_add(out, "table_bytes6", json_object_new_int64(tables->filled.bytes6));
	json_add_steps(out, o, runs);
	json_object_object_add(out, "target_total_s", json_object_new_int(1));
	json_object_object_add(out, "mmdb_write_s",
			       o->mmdb_write_s >= 0 ? json_number(o->mmdb_write_s, "%.2f") : NULL);
	json_object_object_add(out, "addresses", json_object_new_int64(set->count));
	json_object_object_add(out, "addresses4", json_object_new_int64(set->count4));
	json_object_object_add(out, "seed", json_object_new_int64(o->seed));
	json_add_lookups(out, o, set, rates, mismatches);
	json_object_object_add(out, "target_ratio", json_object_new_int(1));
	printf("bench-json: %s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
	json_object_put(out);
}

/* Modes */

/* Pins this thread to the CPU it runs on, so every contender measures on the same one. */
static void pin_cpu(void)
{
	int cpu = sched_getcpu();
	cpu_set_t set;

	CPU_ZERO(&set);
	if (cpu >= 0)
		CPU_SET(cpu, &set);
	if (cpu < 0 || sched_setaffinity(0, sizeof(set), &set))
		fprintf(stderr, "geo_lookup: failed to pin the lookups to one CPU: %s, ignoring\n",
			strerror(errno));
}

static int open_mmdb(const char *path, MMDB_s *mmdb)
{
	int ret = MMDB_open(path, MMDB_MODE_MMAP, mmdb);

	if (ret != MMDB_SUCCESS) {
		fprintf(stderr, "geo_lookup: failed to open --mmdb '%s': %s\n", path,
			MMDB_strerror(ret));
		return -EINVAL;
	}
	return 0;
}

/* Returns 0, 1 when the contenders' countries differ, or a negative errno. */
static int lookup_all(const struct options *o, struct geo_lookup_bpf *skel, MMDB_s *mmdb,
		      const struct bf_geo_table *table, const struct tables *tables,
		      const struct load_times *runs)
{
	static struct lookup_rates rates;
	size_t mismatches[CONTENDER_COUNT] = { 0 };
	struct lookup_set set = { 0 };
	int ret;

	ret = make_addresses(o, table, &set);
	if (ret == -ENOMEM)
		fprintf(stderr, "geo_lookup: failed to allocate %lu addresses\n", o->addresses);
	if (!ret)
		ret = load_program(skel, tables, set.count);
	if (!ret)
		ret = write_addresses(skel, &set);
	if (!ret) {
		pin_cpu();
		ret = first_pass(skel, table, mmdb, &set);
	}
	if (!ret) {
		mismatches[CONTENDER_KERNEL] = count_mismatches(&set, CONTENDER_KERNEL);
		mismatches[CONTENDER_MMDB_COUNTRY] = count_mismatches(&set, CONTENDER_MMDB_COUNTRY);
		ret = measure(o, skel, table, mmdb, &set, &rates);
	}
	if (!ret) {
		print_load(o, runs, tables, table);
		print_lookups(o, &set, &rates, mismatches);
		print_json(o, runs, tables, table, &set, &rates, mismatches);
		ret = mismatches[CONTENDER_KERNEL] || mismatches[CONTENDER_MMDB_COUNTRY];
	}
	free_addresses(&set);
	return ret;
}

static int run(const struct options *o)
{
	static struct load_times runs[MAX_LOAD_RUNS];
	struct tables tables = { .fd4 = -1, .fd6 = -1 };
	struct geo_lookup_bpf *skel;
	struct bf_geo_table table;
	MMDB_s mmdb;
	int ret;

	ret = open_mmdb(o->mmdb, &mmdb);
	if (ret)
		return ret;
	skel = geo_lookup_bpf__open();
	if (!skel) {
		ret = -errno;
		fprintf(stderr, "geo_lookup: failed to open the BPF object: %s\n", strerror(-ret));
		MMDB_close(&mmdb);
		return ret;
	}
	ret = load_all(o, &table, &tables, runs);
	if (!ret)
		ret = lookup_all(o, skel, &mmdb, &table, &tables, runs);
	geo_lookup_bpf__destroy(skel);
	close_tables(&tables);
	bf_geo_table_free(&table);
	MMDB_close(&mmdb);
	return ret;
}

static void print_range(int family, const void *first, const void *last, uint16_t country)
{
	char first_text[INET6_ADDRSTRLEN], last_text[INET6_ADDRSTRLEN], cc[3];

	inet_ntop(family, first, first_text, sizeof(first_text));
	inet_ntop(family, last, last_text, sizeof(last_text));
	bf_country_format(country, cc);
	printf("%s,%s,%s\n", first_text, last_text, cc);
}

/*
 * Prints the flattened table. An IPv6 range under ::/96 would take the
 * place of IPv4 ranges in the mmdb, so it is an error.
 */
static int print_ranges(const struct options *o)
{
	static const uint8_t v4_space_end[16] = { [12] = 0xff, 0xff, 0xff, 0xff };
	struct load_times times;
	struct bf_geo_table table;
	struct bf_error err = { "" };
	int ret;

	ret = load_table(o, &table, &times, &err);
	if (ret) {
		fprintf(stderr, "geo_lookup: %s\n", err.msg);
		bf_geo_table_free(&table);
		return ret;
	}
	for (size_t i = 0; i < table.n4; i++) {
		const struct bf_range4 *r = &table.v4[i];
		uint32_t first = htonl(r->first), last = htonl(r->last);

		if (r->country != BF_CC_NONE)
			print_range(AF_INET, &first, &last, r->country);
	}
	for (size_t i = 0; i < table.n6 && !ret; i++) {
		const struct bf_range6 *r = &table.v6[i];

		if (r->country == BF_CC_NONE)
			continue;
		if (memcmp(r->first, v4_space_end, 16) <= 0) {
			fprintf(stderr, "geo_lookup: an IPv6 range with a country starts in ::/96, "
					"where the mmdb stores IPv4 ranges\n");
			ret = -EINVAL;
		}
		print_range(AF_INET6, r->first, r->last, r->country);
	}
	bf_geo_table_free(&table);
	if (!ret && fflush(stdout)) {
		fprintf(stderr, "geo_lookup: failed to write the ranges: %s\n", strerror(errno));
		ret = -errno;
	}
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: geo_lookup ranges [--data FILE]...\n"
		"       geo_lookup run --mmdb FILE [--data FILE]... [--addresses N] [--seed N]\n"
		"                      [--rounds N] [--load-runs N] [--mmdb-write-seconds S]\n"
		"\n"
		"  ranges  print the flattened table as \"first,last,CC\" lines, for\n"
		"          tests/bench/geo_mmdb_write.pl\n"
		"  run     measure loading the data into the kernel's tables, then lookups per\n"
		"          second in the kernel tables, the userspace table and the mmdb; run as\n"
		"          root\n"
		"\n"
		"  --data FILE               geolocation file, repeatable, in layer order\n"
		"                            (default /usr/share/borderflow/geoip and geoip6)\n"
		"  --mmdb FILE               mmdb written by geo_mmdb_write.pl from 'ranges'\n"
		"  --addresses N             addresses looked up, 1 to %lu (default %lu)\n"
		"  --seed N                  seed of the addresses (default %lu)\n"
		"  --rounds N                measured passes over the addresses, 1 to %lu (default "
		"%lu)\n"
		"  --load-runs N             loads measured, 1 to %lu (default %lu)\n"
		"  --mmdb-write-seconds S    seconds the mmdb took to write, only printed\n",
		MAX_ADDRESSES, DEFAULT_ADDRESSES, DEFAULT_SEED, MAX_ROUNDS, DEFAULT_ROUNDS,
		MAX_LOAD_RUNS, DEFAULT_LOAD_RUNS);
}

static int parse_count(const char *name, const char *text, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || *out < 1 || *out > max) {
		fprintf(stderr,
			"geo_lookup: invalid %s '%s', expected a whole number from 1 to %lu\n",
			name, text, max);
		return -EINVAL;
	}
	return 0;
}

static int parse_seconds(const char *text, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(text, &end);
	if (errno || end == text || *end || !(*out >= 0 && *out < 1e6)) {
		fprintf(stderr,
			"geo_lookup: invalid --mmdb-write-seconds '%s', expected seconds from 0\n",
			text);
		return -EINVAL;
	}
	return 0;
}

static int parse_option(struct options *o, int opt, const char *arg)
{
	switch (opt) {
	case 'd':
		if (o->ndata == BF_GEO_MAX_SOURCES) {
			fprintf(stderr, "geo_lookup: more than %d --data files\n",
				BF_GEO_MAX_SOURCES);
			return -EINVAL;
		}
		o->data[o->ndata++] = arg;
		return 0;
	case 'm':
		o->mmdb = arg;
		return 0;
	case 'n':
		return parse_count("--addresses", arg, MAX_ADDRESSES, &o->addresses);
	case 's':
		return parse_count("--seed", arg, 0xffffffffUL, &o->seed);
	case 'r':
		return parse_count("--rounds", arg, MAX_ROUNDS, &o->rounds);
	case 'l':
		return parse_count("--load-runs", arg, MAX_LOAD_RUNS, &o->load_runs);
	case 'w':
		return parse_seconds(arg, &o->mmdb_write_s);
	default:
		usage(stderr);
		return -EINVAL;
	}
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option long_options[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "mmdb", required_argument, NULL, 'm' },
		{ "addresses", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "load-runs", required_argument, NULL, 'l' },
		{ "mmdb-write-seconds", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt, ret;

	*o = (struct options){ .addresses = DEFAULT_ADDRESSES,
			       .rounds = DEFAULT_ROUNDS,
			       .load_runs = DEFAULT_LOAD_RUNS,
			       .seed = DEFAULT_SEED,
			       .mmdb_write_s = -1 };
	while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			exit(0);
		}
		ret = parse_option(o, opt, optarg);
		if (ret)
			return ret;
	}
	if (optind + 1 != argc || (strcmp(argv[optind], "ranges") && strcmp(argv[optind], "run"))) {
		usage(stderr);
		return -EINVAL;
	}
	o->mode = argv[optind];
	if (!o->ndata) {
		o->data[o->ndata++] = "/usr/share/borderflow/geoip";
		o->data[o->ndata++] = "/usr/share/borderflow/geoip6";
	}
	if (!strcmp(o->mode, "run") && !o->mmdb) {
		fprintf(stderr, "geo_lookup: run needs --mmdb FILE; write one from 'geo_lookup "
				"ranges' with tests/bench/geo_mmdb_write.pl\n");
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options o;
	int ret;

	if (parse_options(argc, argv, &o))
		return 2;
	if (!strcmp(o.mode, "ranges"))
		return print_ranges(&o) ? 1 : 0;
	ret = run(&o);
	if (ret < 0)
		return 1;
	return ret ? 3 : 0;
}
