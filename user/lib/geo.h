/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Geolocation tables: ranges of addresses with a country, loaded from files,
 * layered (a later layer wins where ranges overlap), flattened into one
 * sorted, non-overlapping table, and converted to prefixes for the kernel.
 */
#ifndef BORDERFLOW_GEO_H
#define BORDERFLOW_GEO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "../../maps/common.h"

#define BF_GEO_MAX_SOURCES 32

/* Inclusive IPv4 range, addresses in host order. */
struct bf_range4 {
	uint32_t first;
	uint32_t last;
	uint16_t country; /* BF_CC() */
	uint8_t source;	  /* index into bf_geo_table.sources */
	uint8_t pad;
};

/* Inclusive IPv6 range, addresses in network order. */
struct bf_range6 {
	uint8_t first[16];
	uint8_t last[16];
	uint16_t country;
	uint8_t source;
	uint8_t pad;
};

/* Values are stored and compared, so new formats are added at the end. */
enum bf_geo_format {
	BF_GEO_FORMAT_TOR4 = 1,	  /* Tor/IPFire "first,last,CC", decimal IPv4 */
	BF_GEO_FORMAT_TOR6,	  /* Tor/IPFire "first,last,CC", textual IPv6 */
	BF_GEO_FORMAT_CIDR,	  /* "CIDR,CC" lines, both families */
	BF_GEO_FORMAT_BUILTIN,	  /* the fixed local ranges */
	BF_GEO_FORMAT_MMDB,	  /* MaxMind DB (.mmdb), read with libmaxminddb */
	BF_GEO_FORMAT_GEOIP2_CSV, /* GeoIP2/GeoLite2 Blocks CSV joined with its Locations CSV */
	BF_GEO_FORMAT_DBIP_CSV,	  /* DB-IP "ip_start,ip_end,country", both families */
	BF_GEO_FORMAT_IP2LOCATION_CSV, /* IP2Location LITE DB1 CSV, IPv4 or IPv6 edition */
	BF_GEO_FORMAT_RANGE_CSV,       /* ip-location-db "start,end,country", text or decimal */
	BF_GEO_FORMAT_CIDR_LIST,       /* one prefix per line, of a country the caller names */
};

/* A file (or the built-in table) that contributed ranges. */
struct bf_geo_source {
	char path[4096];
	enum bf_geo_format format;
	char date[64]; /* build date stated in the file, "" when it states none */
	size_t count4; /* ranges read, before flattening */
	size_t count6;
	char sha256[65]; /* SHA-256 of the file's bytes, lower-case hex; "" for the builtin table */
	char detail[160]; /* the mmdb database_type, or the variant of a text format */
};

#define BF_GEO_MAX_MMDB_PATHS 8 /* key paths of [geo] mmdb_country */
#define BF_GEO_MAX_MMDB_KEYS  8 /* keys of one key path */

/* Options of bf_geo_load_file_opts(). */
struct bf_geo_options {
	/*
	 * Where the country of an mmdb record is: key paths with '/' between the
	 * map keys (or array indexes), tried in order until one has a string.
	 * Without any, country/iso_code, registered_country/iso_code, then
	 * country_code.
	 */
	const char *mmdb_country[BF_GEO_MAX_MMDB_PATHS];
	size_t nmmdb_country;
};

struct bf_geo_table {
	struct bf_range4 *v4;
	size_t n4, cap4;
	struct bf_range6 *v6;
	size_t n6, cap6;
	struct bf_geo_source sources[BF_GEO_MAX_SOURCES];
	size_t nsources;
	bool flat; /* set by bf_geo_flatten(); lookups need it */
};

void bf_geo_table_init(struct bf_geo_table *t);
void bf_geo_table_free(struct bf_geo_table *t);

/*
 * Reads a geolocation file and adds its ranges as a new layer above the
 * ones already added. The format is detected from the content:
 *
 *  - MaxMind DB (.mmdb): the metadata at its end, or the name *.mmdb. An
 *    IPv6 database's IPv4 networks under ::/96 are stored as IPv4, once,
 *    without their aliases ::ffff:0:0/96, 2001::/32 and 2002::/16.
 *  - A folder of GeoIP2/GeoLite2 CSV files: both of its *-Blocks-IPv4.csv
 *    and *-Blocks-IPv6.csv, as two layers, with the countries of the
 *    Locations file beside them (*-Locations-en.csv, else any
 *    *-Locations-*.csv).
 *  - A GeoIP2/GeoLite2 Blocks CSV file: the header "network,geoname_id,...".
 *  - Decimal "first,last,CC": Tor/IPFire geoip and ip-location-db "-num"
 *    files. When the first data line has a number above 4294967295 the
 *    numbers are 128-bit IPv6 addresses.
 *  - Textual "first,last,CC", with an optional header such as
 *    "ip_start,ip_end,country": Tor/IPFire geoip6, DB-IP, ip-location-db.
 *  - Quoted "first","last","CC","name": IP2Location LITE DB1, where the IPv6
 *    edition has 128-bit numbers.
 *  - "CIDR,CC".
 *
 * The part of an IPv6 range inside ::ffff:0:0/96 is stored as IPv4, and so
 * is a prefix of length 96 or more inside it. Blank lines and lines starting
 * with '#' are skipped and CRLF line ends are accepted. Country codes are any
 * two ASCII letters, stored upper case. "??", an IP2Location "-", and a
 * record or row without a country are stored as BF_CC_NONE. The source
 * records the file's SHA-256, its build date when the file states one, and
 * the detected variant.
 *
 * Returns 0, or a negative errno with err naming the file, the line number
 * (the byte offset in an mmdb file) and the offending value. On error the
 * table is unchanged.
 */
int bf_geo_load_file(struct bf_geo_table *t, const char *path, struct bf_error *err);

/* Same as bf_geo_load_file() with options; opts may be NULL for the defaults. */
int bf_geo_load_file_opts(struct bf_geo_table *t, const char *path,
			  const struct bf_geo_options *opts, struct bf_error *err);

/* Same as bf_geo_load_file() for a file that must be "CIDR,CC" lines (overrides). */
int bf_geo_load_cidr_file(struct bf_geo_table *t, const char *path, struct bf_error *err);

/*
 * Same as bf_geo_load_file() for a list of prefixes of one country: one
 * "address/length" or address per line, optionally followed by a comment
 * that starts with '#' or ';'.
 */
int bf_geo_load_list_file(struct bf_geo_table *t, const char *path, uint16_t country,
			  struct bf_error *err);

/*
 * Resolves the layers into one sorted table without overlaps (a later layer
 * wins), then lays the fixed local ranges (loopback, private, link-local,
 * CGNAT, multicast, unique local) on top with the country BF_CC_NONE and the
 * builtin source. Adjacent ranges with the same country and source merge.
 */
int bf_geo_flatten(struct bf_geo_table *t, struct bf_error *err);

/* Looks an address up in a flattened table. Returns the range, or NULL when no range covers it. */
const struct bf_range4 *bf_geo_lookup4(const struct bf_geo_table *t, uint32_t addr);
const struct bf_range6 *bf_geo_lookup6(const struct bf_geo_table *t, const uint8_t addr[16]);

/* True when the address is in one of the fixed local ranges. */
bool bf_geo_is_local4(uint32_t addr);
bool bf_geo_is_local6(const uint8_t addr[16]);

/*
 * Splits an inclusive range into the minimal list of prefixes, in address
 * order, and calls fn for each. Stops at and returns fn's first non-zero
 * result. IPv4 addresses are host order; IPv6 network order.
 */
typedef int (*bf_prefix4_fn)(uint32_t addr, unsigned int prefixlen, void *ctx);
typedef int (*bf_prefix6_fn)(const uint8_t addr[16], unsigned int prefixlen, void *ctx);
int bf_range4_to_prefixes(uint32_t first, uint32_t last, bf_prefix4_fn fn, void *ctx);
int bf_range6_to_prefixes(const uint8_t first[16], const uint8_t last[16], bf_prefix6_fn fn,
			  void *ctx);

/*
 * Parses an address, accepting IPv4, IPv6 and IPv4-mapped IPv6 (returned as
 * IPv4). Returns 4 or 6, or 0 when text is not an address.
 */
int bf_parse_address(const char *text, uint32_t *v4, uint8_t v6[16]);

/* Country code helpers: "CN" <-> BF_CC('C','N'); BF_CC_NONE formats as "??". */
int bf_country_parse(const char *text, uint16_t *country);
void bf_country_format(uint16_t country, char out[3]);

/*
 * True for two-letter codes that registries use for something that is not a
 * country: "??" (stored as BF_CC_NONE), EU, AP, A1, A2, A3, O1, ZZ, XX.
 */
bool bf_country_is_pseudo(uint16_t country);

/*
 * Counts the prefixes that bf_range4_to_prefixes() and bf_range6_to_prefixes()
 * produce for all ranges of a flattened table, for sizing the kernel's tries.
 * n4 and n6 may be NULL. Returns 0, or -EINVAL when the table is not flat.
 */
int bf_geo_count_prefixes(const struct bf_geo_table *t, size_t *n4, size_t *n6);

/*
 * Writes a flattened table as a compiled file at path (through a temporary
 * file and a rename), which bf_geo_load_file() reads without parsing and
 * with every source's provenance. The fixed local ranges are left out.
 */
int bf_geo_compile(const struct bf_geo_table *t, const char *path, struct bf_error *err);

#endif
