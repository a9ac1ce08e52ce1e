/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Flow accounting: socket owners, per-flow counters of watched applications,
 * and the per application x country x verdict totals that never lose a byte.
 */
#ifndef BORDERFLOW_MAPS_FLOW_H
#define BORDERFLOW_MAPS_FLOW_H

#include "common.h"
#include "geo.h"

/* Owner of a socket: the process that created it, or that connected or sent on it last. */
struct bf_owner {
	__u64 cgroup_id;
	__u32 tgid;
	__u32 uid;
	__u32 app; /* BF_APP_* or a watched application id */
	__u32 pad;
	char comm[16];
};

/*
 * Key of listeners: the local address and port of a TCP listening socket,
 * the address all zero when it listens on every address. family is the
 * socket's, so an IPv6 listener that takes IPv4 connections has 6.
 */
struct bf_listen_key {
	__u8 addr[16];
	__u16 port; /* host order */
	__u8 family;
	__u8 pad;
};

/*
 * Key of flows, and of the flow that a socks entry contains. One socket is one
 * flow per peer. A connected socket's flow is in its socks entry. flows has
 * an entry for each peer that an unconnected UDP socket sent to or heard
 * from, and for the flow that a socket left by a connect() to another peer.
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
 * Value of socks, keyed by socket cookie: one entry for each inet socket
 * created while the programs are attached, written in the caller's context
 * at socket creation, connect and sendmsg. A socket that accept() returns
 * takes the owner of its listener at its first packet.
 *
 * flow is the flow of the connected peer (peer, peer_port, peer_family)
 * once BF_SOCK_FLOW is set: packets to and from that peer count in it
 * directly, so a connected flow costs no flows entry. Entries of watched
 * flows outlive sock_release, for the packets that follow it (data still
 * queued at close, the FIN exchange), until the daemon removes them.
 */
struct bf_sock {
	struct bf_owner owner;
	__u32 flags;	  /* BF_SOCK_*, set with atomic or because packets on two CPUs race */
	__u16 peer_port;  /* host order */
	__u8 peer_family; /* 0 until a connected peer is known, else 4 or 6 */
	__u8 proto;	  /* BF_PROTO_* */
	__u8 peer[16];	  /* IPv4 in the first 4 bytes */
	struct bf_geo_value peer_geo; /* looked up once per connected peer */
	struct bf_flow_value flow;
};

/* Default and limits of the entries of socks, which the daemon preallocates. */
#define BF_SOCKS_DEFAULT 262144
#define BF_SOCKS_MIN	 1024
#define BF_SOCKS_MAX	 4194304

#define BF_SOCK_COUNTED	 1u /* the socket's first packet was counted as a flow in totals */
#define BF_SOCK_RELEASED 2u /* the process closed the socket; its flow is ending */
#define BF_SOCK_FLOW	 4u /* flow contains the connected peer's flow, see above */
/*
 * The entry was made outside sock_create, so no sock_release may come for
 * it. Such entries come from three places:
 * - a connect or send on a socket older than the monitor, which may be a
 *   kernel socket (an MPTCP subflow);
 * - the daemon's labels of older sockets, which may belong to a cgroup
 *   outside the monitored one;
 * - the first packet of a socket from a listener, which accept() may never
 *   return.
 * flow.last_ns is its latest packet, and the daemon removes it when idle
 * for 6 hours.
 */
#define BF_SOCK_ADOPTED 8u

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
