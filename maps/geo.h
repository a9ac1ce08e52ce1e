/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Geolocation tries: the daemon fills one LPM trie per address family with
 * the country and verdict of every prefix of the loaded data, and the BPF
 * programs look each new flow's peer up in them. Each trie sits in slot 0
 * of an array of maps (geo4, geo6), so a reload fills new tries aside and
 * puts them in place with one update: no lookup sees a half-filled trie.
 */
#ifndef BORDERFLOW_MAPS_GEO_H
#define BORDERFLOW_MAPS_GEO_H

#include "common.h"

/* Key of geo4: prefix length in bits, then the address in network order. */
struct bf_geo4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

/* Key of geo6. */
struct bf_geo6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Source index of a lookup that found no prefix. */
#define BF_GEO_SOURCE_NONE 0xff

/*
 * Value of both tries. source is an index into the source table of the
 * generation: the daemon numbers each load of the data, so a flow tagged
 * before a reload still names the data that tagged it.
 */
struct bf_geo_value {
	__u16 country;
	__u8 verdict; /* enum bf_verdict */
	__u8 source;
	__u16 generation;
	__u16 pad;
};

/*
 * Key of geo_cache, the recent results of trie lookups. epoch is the value
 * of geo_epoch when the result was cached. The daemon increments it after it
 * puts new tries in place, so results of replaced tries never match again.
 */
struct bf_geo_cache_key {
	__u32 addr[4];
	__u32 epoch;
	__u8 family;
	__u8 pad[3];
};

#endif
