/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Flow helpers of both the packet counters (skb.bpf.c) and the socket hooks
 * (sock.bpf.c).
 */
#ifndef BORDERFLOW_FLOW_BPF_H
#define BORDERFLOW_FLOW_BPF_H

#include "geo.bpf.h"
#include "maps.bpf.h"

/* Bytes that one event takes in the ring buffer, with the record header. */
#define BF_EVENT_RECORD_BYTES ((sizeof(struct bf_event) + BPF_RINGBUF_HDR_SZ + 7) / 8 * 8)

/*
 * Sends a flow start or end event. It wakes the daemon only when its record
 * makes the waiting events cross a multiple of BF_EVENTS_WAKEUP_BYTES: a
 * wakeup for every event past the mark would cost an interrupt per event for
 * as long as the daemon takes to read. A crossing that two CPUs' events hide
 * from each other leaves the daemon to the next one or to its tick.
 */
static __always_inline void bf_send_flow_event(__u32 type, const struct bf_flow_key *key,
					       const struct bf_flow_value *flow, __u64 ts_ns)
{
	struct bf_event *event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
	__u64 flags = BPF_RB_NO_WAKEUP, waiting;

	if (!event) {
		bf_stat_add(BF_STAT_EVENTS_LOST, 1);
		return;
	}
	event->type = type;
	event->ts_ns = ts_ns;
	event->key = *key;
	event->flow = *flow;
	event->packet_bytes = 0;
	waiting = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	if (waiting / BF_EVENTS_WAKEUP_BYTES !=
	    (waiting - BF_EVENT_RECORD_BYTES) / BF_EVENTS_WAKEUP_BYTES)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(event, flags);
}

/* True when the connected peer of a socks entry is the given address and port (host order). */
static __always_inline bool bf_sock_has_peer(const struct bf_sock *sock, __u8 family,
					     const __u32 addr[4], __u16 port)
{
	const __u32 *peer = (const __u32 *)sock->peer;

	return sock->peer_family == family && sock->peer_port == port && peer[0] == addr[0] &&
	       peer[1] == addr[1] && peer[2] == addr[2] && peer[3] == addr[3];
}

/* Fills the key of the flow in a socks entry. */
static __always_inline void bf_socket_flow_key(const struct bf_sock *sock, __u64 cookie,
					       struct bf_flow_key *key)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->cookie = cookie;
	__builtin_memcpy(key->peer, sock->peer, 16);
	key->peer_port = sock->peer_port;
	key->family = sock->peer_family;
	key->proto = sock->proto;
}

/* A zeroed socks value, for entries that their creator fills in place. */
static const struct bf_sock bf_zero_sock;

/*
 * Inserts a zeroed socks entry for cookie, unless one exists, and returns
 * the entry for the caller to fill. NULL when socks is full: the socket's
 * packets then count as unattributed, and the daemon reports how full socks
 * is.
 */
static __always_inline struct bf_sock *bf_insert_sock(__u64 cookie, __u8 proto)
{
	struct bf_sock *sock;

	(void)bpf_map_update_elem(&socks, &cookie, &bf_zero_sock, BPF_NOEXIST);
	sock = bpf_map_lookup_elem(&socks, &cookie);
	if (sock)
		sock->proto = proto;
	return sock;
}

/* As bf_insert_sock, for an entry that sock_create did not make (BF_SOCK_ADOPTED). */
static __always_inline struct bf_sock *bf_adopt_sock(__u64 cookie, __u8 proto)
{
	struct bf_sock *sock = bf_insert_sock(cookie, proto);

	if (sock) {
		sock->flow.last_ns = bpf_ktime_get_coarse_ns();
		__sync_fetch_and_or(&sock->flags, BF_SOCK_ADOPTED);
	}
	return sock;
}

/*
 * Fills the listeners key of a socket's local address and port. The fields
 * read are those that timewait and request sockets have too.
 */
static __always_inline void bf_listen_key(const struct bpf_sock *sk, struct bf_listen_key *lkey)
{
	__builtin_memset(lkey, 0, sizeof(*lkey));
	lkey->port = (__u16)sk->src_port;
	if (sk->family == AF_INET6) {
		__u32 *addr = (__u32 *)lkey->addr;

		lkey->family = 6;
		addr[0] = sk->src_ip6[0];
		addr[1] = sk->src_ip6[1];
		addr[2] = sk->src_ip6[2];
		addr[3] = sk->src_ip6[3];
	} else {
		lkey->family = 4;
		*(__u32 *)lkey->addr = sk->src_ip4;
	}
}

#endif
