/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Flow accounting: socket owners, per-flow counters of watched applications,
 * and the per application x country x verdict totals that never lose a byte.
 */
#ifndef BORDERFLOW_MAPS_FLOW_H
#define BORDERFLOW_MAPS_FLOW_H

#include "common.h"
#include "geo.h"

/*
 * Value of sk_owner, socket-local storage written in the caller's context
 * at socket creation, connect and sendmsg. peer/peer_port/peer_family cache
 * the connected peer so that sock_release can find the socket's flow.
 *
 * While BF_SOCK_FLOW is set, the counters at the end belong to the flow of
 * the connected peer. Its packets add to them, which is cheaper than a flows
 * lookup per packet. The counts move to the flows entry at sock_release, at
 * a connect to another peer, and at a packet BF_MOVE_JIFFIES after the last
 * move. The entry contains the rest: the counts moved so far and the packets
 * after sock_release.
 */
struct bf_sock_owner {
	__u64 cookie; /* socket cookie; differs from the socket's when inherited by accept() */
	__u64 cgroup_id;
	__u32 tgid;
	__u32 uid;
	__u32 app;	  /* BF_APP_* or a watched application id */
	__u32 flags;	  /* BF_SOCK_*, set with atomic or because packets on two CPUs race */
	__u8 peer[16];	  /* IPv4 in the first 4 bytes */
	__u16 peer_port;  /* host order */
	__u8 peer_family; /* 0 until a connected peer is known, else 4 or 6 */
	__u8 pad;
	struct bf_geo_value peer_geo; /* looked up once per connected peer */
	char comm[16];
	__u32 pad2;
	__u64 transmit_bytes; /* counts of the connected peer's flow not yet in its entry */
	__u64 receive_bytes;
	__u64 transmit_packets;
	__u64 receive_packets;
	__u64 moved_jiffies; /* of the last move of the counts to the entry */
};

#define BF_SOCK_COUNTED	  1u  /* the socket's first packet was counted as a flow in totals */
#define BF_SOCK_RELEASED  2u  /* the process closed the socket; its flow is ending */
#define BF_SOCK_FLOW	  4u  /* the connected peer's flow has a flows entry, see above */
#define BF_SOCK_UNTRACKED 8u  /* flows was full at the connected peer's first packet */
#define BF_SOCK_ALERTED	  16u /* the connected peer's out-of-region event was sent */

/*
 * Jiffies between two moves of a connected socket's counts to its flows
 * entry while packets flow: 1 s with HZ=1000, 10 s with HZ=100, the lowest
 * HZ that kernel/Kconfig.hz offers. Jiffies, because the BPF JIT inlines the
 * read of them. The moves keep the entry's last_ns recent for idle expiry.
 * While packets flow, the entry's counters are at most BF_MOVE_MAX_NS behind
 * the socket's. The counts of a socket's last packets before it goes idle
 * wait in its storage until its next packet or its release, so only totals
 * are current for them.
 */
#define BF_MOVE_JIFFIES 1000
#define BF_MOVE_MAX_NS	(10ull * 1000000000)

/*
 * Key of flows. One socket is one flow per peer: a connected socket has one
 * entry, an unconnected UDP socket one per peer it sent to or heard from.
 * Addresses are in network order, IPv4 in the first 4 bytes and the rest 0;
 * an IPv4-mapped IPv6 peer is stored as the IPv4 address it carries.
 */
struct bf_flow_key {
	__u64 cookie;
	__u8 peer[16];
	__u16 peer_port; /* host order */
	__u8 family;	 /* 4 or 6 */
	__u8 proto;	 /* BF_PROTO_* */
	__u32 pad;
};

/*
 * Value of flows. The counters are updated with atomic adds from any CPU;
 * transmit_bytes and receive_bytes count IP packets, headers included, as
 * they are on the wire after segmentation offload. The fields that every
 * packet touches come first, in one 64-byte cache line.
 */
struct bf_flow_value {
	__u64 transmit_bytes;
	__u64 receive_bytes;
	__u64 transmit_packets;
	__u64 receive_packets;
	__u64 last_ns; /* CLOCK_MONOTONIC_COARSE of the latest packet, for idle expiry */
	__u16 country;
	__u8 verdict;
	__u8 source;
	__u8 flags; /* BF_FLOW_* */
	__u8 pad;
	__u16 generation; /* of the geolocation data that tagged the flow */
	__u64 start_ns;	  /* CLOCK_MONOTONIC (bpf_ktime_get_ns) of the first packet */
	__u64 end_ns;	  /* CLOCK_MONOTONIC of sock_release, 0 while open */
	__u64 cgroup_id;
	__u32 tgid;
	__u32 uid;
	__u32 app;
	__u16 local_port;
	__u16 pad2;
	__u8 local[16];
	char comm[16];
};

#define BF_FLOW_ALERTED 1u /* a first out-of-region byte event was sent */
/*
 * The flow of a connected socket, whose counts wait in socket storage (see
 * struct bf_sock_owner): last_ns is updated only when they move, at least
 * every BF_MOVE_MAX_NS while packets flow. The flow ends at sock_release.
 */
#define BF_FLOW_SOCKET 2u

/*
 * Key of alerted: an application's destination and its country, so that a
 * destination that a reload places in another country alerts again.
 */
struct bf_alert_key {
	__u8 peer[16];
	__u32 app;
	__u16 peer_port;
	__u8 family;
	__u8 proto;
	__u16 country;
	__u16 pad;
};

/* Key of totals: the aggregate that metrics and status report. */
struct bf_total_key {
	__u32 app;
	__u16 country;
	__u8 verdict;
	__u8 proto;
};

/* Value of totals, one per CPU. Monotonic: nothing ever subtracts or deletes. */
struct bf_total_value {
	__u64 transmit_bytes;
	__u64 receive_bytes;
	__u64 transmit_packets;
	__u64 receive_packets;
	__u64 flows;
};

/* Indexes of stats, a per-CPU array of __u64 health counters. */
enum bf_stat {
	BF_STAT_EVENTS_LOST = 0, /* ring buffer full: event dropped */
	BF_STAT_FLOWS_FULL = 1,	 /* flows full: a watched flow counted in totals only */
	BF_STAT_TOTALS_FULL = 2, /* totals full: bytes counted in overflow_* below */
	BF_STAT_OVERFLOW_BYTES = 3,
	BF_STAT_OVERFLOW_PACKETS = 4,
	BF_STAT_UNPARSED_PACKETS = 5, /* not IPv4/IPv6, or a header that could not be read */
	BF_STAT_PROCS_FULL = 6,
	BF_STAT_ALERTS_LOST = 7, /* alert ring buffer full: retried on the flow's next packet */
	BF_STAT_COUNT = 8,
};

#endif
