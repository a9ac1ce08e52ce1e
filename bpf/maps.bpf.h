/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Every map of the BPF side. bpf/maps.bpf.c defines them; the other objects
 * declare them extern, and "bpftool gen object" links all into one object.
 */
#ifndef BORDERFLOW_MAPS_BPF_H
#define BORDERFLOW_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "maps/event.h"
#include "maps/flow.h"
#include "maps/geo.h"
#include "maps/proc.h"

#ifdef BF_DEFINE_MAPS
#define BF_MAP
#else
#define BF_MAP extern
#endif

/*
 * Geolocation table of either family (maps/geo.h). The kernel accepts an
 * inner map only with the type, sizes and flags of its template;
 * BPF_F_INNER_MAP exempts max_entries, so that the daemon creates each
 * table the size of its data. The flag keeps the verifier from inlining
 * lookups in the table, which measured only about 2% faster with a fixed
 * size in tests/bench/geo_lookup.c.
 */
struct bf_geo_table_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BF_GEO_TABLE_FLAGS);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, BF_GEO_CHUNK_BYTES);
};

/* Slot 0 contains the IPv4 table in force, and nothing until the daemon fills it. */
BF_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct bf_geo_table_map);
} geo4 SEC(".maps");

/* Slot 0 contains the IPv6 table in force. */
BF_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct bf_geo_table_map);
} geo6 SEC(".maps");

/* Watched executables by inode, to application id. */
BF_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct bf_inode_key);
	__type(value, __u32);
} app_inodes SEC(".maps");

/* Watched folders by inode: an executable anywhere below one belongs to its application. */
BF_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct bf_inode_key);
	__type(value, __u32);
} app_dirs SEC(".maps");

/* Watched process names, the last resort of identity. */
BF_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct bf_comm_key);
	__type(value, __u32);
} app_comms SEC(".maps");

/* Processes of watched applications, by tgid. Others have no entry. */
BF_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct bf_proc_value);
} procs SEC(".maps");

/* Scratch space for a procs value, too large for the BPF stack beside the other locals. */
BF_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bf_proc_value);
} proc_scratch SEC(".maps");

/*
 * Owner and connected flow of every inet socket, by cookie (maps/flow.h).
 * Preallocated: an insert takes an entry from a free list, so it fails only
 * when the map is full. With BPF_F_NO_PREALLOC each insert allocated memory
 * charged to the memory cgroup, and bf_sock_create took about 1,100 ns
 * instead of 660 ns (kernel.bpf_stats_enabled during tests/bench/tcp_crr).
 * The daemon sets max_entries from [daemon] sockets before the load. The
 * entries of watched flows linger ENDED_LINGER_NS after the release (see
 * user/loop.c), which at 10,000 short connections a second is 100,000.
 */
BF_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BF_SOCKS_DEFAULT);
	__type(key, __u64);
	__type(value, struct bf_sock);
} socks SEC(".maps");

/*
 * Owners of TCP listening sockets, written at the SYNs they receive, so that
 * a socket that accept() returns takes the owner of its listener.
 */
BF_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct bf_listen_key);
	__type(value, struct bf_owner);
} listeners SEC(".maps");

/*
 * Application of TCP sockets released in the last moments without a flow
 * in their socks entry, by cookie, so that packets of TCP's TIME_WAIT, which
 * carry no full socket, are still attributed. The socks entries of watched
 * flows stay after the release for those packets.
 */
BF_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u32);
} closed SEC(".maps");

/*
 * Flows of watched applications that are not in a socks entry (maps/flow.h).
 * The daemon removes ended and idle ones.
 */
BF_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct bf_flow_key);
	__type(value, struct bf_flow_value);
} flows SEC(".maps");

/* Per application x country x verdict x transport totals; monotonic. */
BF_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct bf_total_key);
	__type(value, struct bf_total_value);
} totals SEC(".maps");

/*
 * Destinations that raised an out-of-region event, with the time, so that a
 * client opening many connections to one server sends one event per repeat
 * interval and not one per connection.
 */
BF_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct bf_alert_key);
	__type(value, __u64);
} alerted SEC(".maps");

/* Alerts raised, per application, country and rule; only the daemon writes it. */
BF_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct bf_alert_count_key);
	__type(value, __u64);
} alert_counts SEC(".maps");

/* Application names by id; only the daemon reads and writes it. */
BF_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BF_MAX_APPS + 1);
	__type(key, __u32);
	__type(value, struct bf_app_name);
} app_names SEC(".maps");

/* Health counters, indexed by enum bf_stat. */
BF_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BF_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Out-of-region events to the daemon. */
BF_MAP struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, BF_ALERT_EVENTS_BYTES);
} alert_events SEC(".maps");

/* Flow start and flow end events to the daemon. */
BF_MAP struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, BF_EVENTS_BYTES);
} events SEC(".maps");

static __always_inline void bf_stat_add(__u32 index, __u64 value)
{
	__u64 *counter = bpf_map_lookup_elem(&stats, &index);

	if (counter)
		*counter += value;
}

#endif
