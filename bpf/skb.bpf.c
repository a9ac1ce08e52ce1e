// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Packet counting. cgroup_skb/egress and cgroup_skb/ingress see every IP
 * packet of the sockets of the attached cgroup, before segmentation offload
 * on egress and after receive offload on ingress. Every packet lands in
 * totals. Packets of watched applications also land in their flow: for the
 * connected peer of a socket, the flow that its socks entry contains (see
 * struct bf_sock), else its flows entry. Neither depends on the ring
 * buffer: an event that cannot be sent is counted as lost and the bytes are
 * still counted.
 */
#include "flow.bpf.h"
#include "geo.bpf.h"
#include <bpf/bpf_endian.h>

/* Minimum time between two out-of-region events for one destination; the daemon sets it. */
const volatile __u64 alert_repeat_ns = 600ull * 1000000000;

#define ETH_P_IP   0x0800
#define ETH_P_IPV6 0x86DD
#define IP_OFFSET  0x1fff

/* What counting needs of one packet, with peer and local seen from this host. */
struct packet {
	__u32 peer[4];
	__u32 local[4];
	__u16 peer_port;
	__u16 local_port;
	__u8 family;
	__u8 proto;
	__u16 header_bytes; /* IP and transport headers, repeated in every segment */
};

/*
 * Reads the ports, and for TCP the header length, of the transport header
 * at offset. l4, when not NULL, is that header as parse_packet read it
 * already with the IP header, which covers a TCP header without options in
 * the common case.
 */
static __always_inline int parse_l4(struct __sk_buff *skb, __u32 offset, const struct tcphdr *l4,
				    struct packet *pkt)
{
	struct tcphdr tcp;

	if (pkt->proto != BF_PROTO_TCP && pkt->proto != BF_PROTO_UDP)
		return 0;
	if (!l4) {
		if (bpf_skb_load_bytes(skb, offset, &tcp,
				       pkt->proto == BF_PROTO_UDP ? sizeof(struct udphdr)
								  : sizeof(tcp)))
			return -1;
		l4 = &tcp;
	}
	pkt->peer_port = bpf_ntohs(l4->dest);
	pkt->local_port = bpf_ntohs(l4->source);
	if (pkt->proto == BF_PROTO_UDP)
		pkt->header_bytes += sizeof(struct udphdr);
	else
		pkt->header_bytes += l4->doff * 4;
	return 0;
}

/*
 * Copies the first len bytes of the packet, its IP header first, to buf.
 * They are in the linear data of almost every packet, where word loads copy
 * them for less than the helper call that reads any part of a packet. The
 * loads may be unaligned, which the verifier accepts on the machines that
 * handle them at no cost (x86, arm64).
 */
static __always_inline long load_head(struct __sk_buff *skb, __u64 *buf, __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	const __u64 *words = data;
	__u32 i;

	if (data + len > data_end)
		return bpf_skb_load_bytes(skb, 0, buf, len);
#pragma unroll
	for (i = 0; i < len / 8; i++)
		buf[i] = words[i];
	if (len % 8)
		((__u32 *)buf)[len / 4 - 1] = ((const __u32 *)data)[len / 4 - 1];
	return 0;
}

/*
 * Fills pkt as seen from the local socket: on egress the peer is the
 * destination. One load reads the IP header and the 20 bytes after it; a
 * shorter packet is read again piece by piece.
 */
static __always_inline int parse_packet(struct __sk_buff *skb, bool egress, struct packet *pkt)
{
	__u64 buf[(sizeof(struct ipv6hdr) + sizeof(struct tcphdr) + 7) / 8];
	const struct tcphdr *l4 = NULL;
	__u32 src[4] = {}, dst[4] = {};
	__u32 offset;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (struct iphdr *)buf;

		if (!load_head(skb, buf, sizeof(*ip) + sizeof(struct tcphdr)))
			l4 = (const struct tcphdr *)(ip + 1);
		else if (bpf_skb_load_bytes(skb, 0, buf, sizeof(*ip)))
			return -1;
		offset = ip->ihl * 4;
		if (offset < sizeof(*ip))
			return -1;
		if (offset != sizeof(*ip))
			l4 = NULL; /* IP options: the bytes read are not the transport header */
		pkt->family = 4;
		pkt->proto = ip->protocol;
		src[0] = ip->saddr;
		dst[0] = ip->daddr;
		if (ip->frag_off & bpf_htons(IP_OFFSET))
			pkt->proto = 0; /* a later fragment carries no ports */
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (struct ipv6hdr *)buf;

		if (!load_head(skb, buf, sizeof(*ip6) + sizeof(struct tcphdr)))
			l4 = (const struct tcphdr *)(ip6 + 1);
		else if (bpf_skb_load_bytes(skb, 0, buf, sizeof(*ip6)))
			return -1;
		pkt->family = 6;
		pkt->proto = ip6->nexthdr;
		__builtin_memcpy(src, &ip6->saddr, 16);
		__builtin_memcpy(dst, &ip6->daddr, 16);
		offset = sizeof(*ip6);
	} else {
		return -1;
	}
	pkt->header_bytes = offset;

	if (egress) {
		__builtin_memcpy(pkt->peer, dst, 16);
		__builtin_memcpy(pkt->local, src, 16);
	} else {
		__builtin_memcpy(pkt->peer, src, 16);
		__builtin_memcpy(pkt->local, dst, 16);
	}
	if (parse_l4(skb, offset, l4, pkt))
		return -1;
	if (!egress) {
		__u16 port = pkt->peer_port;

		pkt->peer_port = pkt->local_port;
		pkt->local_port = port;
	}
	return 0;
}

/* Adds a packet to the totals of its application, country, verdict and transport. */
static __always_inline void add_totals(__u32 app, const struct bf_geo_value *geo, __u8 proto,
				       bool egress, __u64 bytes, __u64 packets, bool new_flow)
{
	struct bf_total_key key = {
		.app = app,
		.country = geo->country,
		.verdict = geo->verdict,
		.proto = proto,
	};
	struct bf_total_value *total = bpf_map_lookup_elem(&totals, &key);

	if (!total) {
		struct bf_total_value zero = {};

		(void)bpf_map_update_elem(&totals, &key, &zero, BPF_NOEXIST);
		total = bpf_map_lookup_elem(&totals, &key);
	}
	if (!total) {
		bf_stat_add(BF_STAT_TOTALS_FULL, 1);
		bf_stat_add(BF_STAT_OVERFLOW_BYTES, bytes);
		bf_stat_add(BF_STAT_OVERFLOW_PACKETS, packets);
		return;
	}
	/*
	 * Atomic even though the value is per CPU: another task preempting this
	 * one on the same CPU can run this program in the middle of the add.
	 */
	if (egress) {
		__sync_fetch_and_add(&total->transmit_bytes, bytes);
		__sync_fetch_and_add(&total->transmit_packets, packets);
	} else {
		__sync_fetch_and_add(&total->receive_bytes, bytes);
		__sync_fetch_and_add(&total->receive_packets, packets);
	}
	if (new_flow)
		__sync_fetch_and_add(&total->flows, 1);
}

/*
 * Sends an out-of-region event for the flow's destination, unless one was
 * sent for it within alert_repeat_ns, so that a client opening many
 * connections to one server raises one event per interval. Returns false
 * when the event could not be sent (alert ring full): the caller tries
 * again on the next packet.
 */
static __always_inline bool send_alert(const struct bf_flow_key *key,
				       const struct bf_flow_value *flow, __u32 app, __u64 bytes)
{
	struct bf_alert_key akey = {};
	__u64 now = bpf_ktime_get_ns(), *last;
	struct bf_event *event;

	__builtin_memcpy(akey.peer, key->peer, 16);
	akey.app = app;
	akey.peer_port = key->peer_port;
	akey.family = key->family;
	akey.proto = key->proto;
	akey.country = flow->country;
	last = bpf_map_lookup_elem(&alerted, &akey);
	if (last && now - *last < alert_repeat_ns)
		return true;

	event = bpf_ringbuf_reserve(&alert_events, sizeof(*event), 0);
	if (!event) {
		bf_stat_add(BF_STAT_ALERTS_LOST, 1);
		return false;
	}
	event->type = BF_EVENT_OUT_OF_REGION;
	event->ts_ns = now;
	event->key = *key;
	event->flow = *flow;
	event->packet_bytes = bytes;
	bpf_ringbuf_submit(event, BPF_RB_FORCE_WAKEUP);
	(void)bpf_map_update_elem(&alerted, &akey, &now, BPF_ANY);
	return true;
}

static __always_inline bool out_of_region(__u8 verdict)
{
	return verdict == BF_VERDICT_FOREIGN || verdict == BF_VERDICT_UNKNOWN;
}

/*
 * Counts a socket's first packet as a flow, for sockets whose flows have no
 * entry. The fetch of the old flags makes it one flow when two CPUs race.
 */
static __always_inline bool first_packet_of_socket(struct bf_sock *sock)
{
	if (!sock)
		return false;
	/* Idle expiry of the entries that no sock_release may remove. */
	if (sock->flags & BF_SOCK_ADOPTED)
		sock->flow.last_ns = bpf_ktime_get_coarse_ns();
	if (sock->flags & BF_SOCK_COUNTED)
		return false;
	return !(__sync_fetch_and_or(&sock->flags, BF_SOCK_COUNTED) & BF_SOCK_COUNTED);
}

/* Fills every field of a flow but its counters. */
static __always_inline void init_flow_details(struct bf_flow_value *flow,
					      const struct bf_owner *owner,
					      const struct packet *pkt, struct bf_geo_value geo,
					      __u32 app)
{
	__u64 now = bpf_ktime_get_ns();

	flow->flags = 0;
	flow->end_ns = 0;
	flow->start_ns = now;
	flow->last_ns = now;
	flow->app = app;
	flow->country = geo.country;
	flow->verdict = geo.verdict;
	flow->source = geo.source;
	flow->generation = geo.generation;
	__builtin_memcpy(flow->local, pkt->local, 16);
	flow->local_port = pkt->local_port;
	if (owner) {
		flow->cgroup_id = owner->cgroup_id;
		flow->tgid = owner->tgid;
		flow->uid = owner->uid;
		__builtin_memcpy(flow->comm, owner->comm, sizeof(flow->comm));
	}
}

static __always_inline void init_flow(struct bf_flow_value *flow, const struct bf_owner *owner,
				      const struct packet *pkt, struct bf_geo_value geo, __u32 app)
{
	__builtin_memset(flow, 0, sizeof(*flow));
	init_flow_details(flow, owner, pkt, geo, app);
}

static __always_inline void add_to_flow(struct bf_flow_value *flow, bool egress, __u64 bytes,
					__u64 packets)
{
	if (egress) {
		__sync_fetch_and_add(&flow->transmit_bytes, bytes);
		__sync_fetch_and_add(&flow->transmit_packets, packets);
	} else {
		__sync_fetch_and_add(&flow->receive_bytes, bytes);
		__sync_fetch_and_add(&flow->receive_packets, packets);
	}
}

/*
 * Counts a packet of a watched application in its flows entry, creating the
 * entry on its first packet: for unconnected UDP, and for a peer that a
 * socket left by a connect() to another one. Returns whether the flow is new, and
 * updates *geo to the verdict the flow was tagged with, so a flow keeps one
 * verdict for life.
 */
static __always_inline bool count_flow(const struct bf_flow_key *key, struct bf_sock *sock,
				       const struct packet *pkt, struct bf_geo_value *geo,
				       __u32 app, bool egress, __u64 bytes, __u64 packets)
{
	struct bf_flow_value *flow = bpf_map_lookup_elem(&flows, key);

	if (!flow) {
		struct bf_flow_value fresh;
		long err;

		/*
		 * Packets after sock_release (data still queued, FIN, TIME_WAIT)
		 * count only in an entry that exists, so the daemon can remove
		 * ended flows soon without the late packets making new ones.
		 */
		if (!sock || (sock->flags & BF_SOCK_RELEASED))
			return false;

		init_flow(&fresh, &sock->owner, pkt, *geo, app);
		/* Two CPUs may both send one, and the daemon's repeat interval drops the second. */
		if (egress && out_of_region(fresh.verdict) && send_alert(key, &fresh, app, bytes))
			fresh.flags |= BF_FLOW_ALERTED;
		/* The entry starts with this packet in it, so no lookup follows the insert. */
		if (egress) {
			fresh.transmit_bytes = bytes;
			fresh.transmit_packets = packets;
		} else {
			fresh.receive_bytes = bytes;
			fresh.receive_packets = packets;
		}
		err = bpf_map_update_elem(&flows, key, &fresh, BPF_NOEXIST);
		if (!err) {
			/* The start event shows the flow before its first packet. */
			fresh.transmit_bytes = 0;
			fresh.transmit_packets = 0;
			fresh.receive_bytes = 0;
			fresh.receive_packets = 0;
			bf_send_flow_event(BF_EVENT_FLOW_START, key, &fresh, fresh.start_ns);
			return true;
		}
		if (err != -17 /* EEXIST: another CPU created it */) {
			/*
			 * flows is full: the bytes go to totals only, the socket
			 * counts as one flow, and alerts still go out.
			 */
			bf_stat_add(BF_STAT_FLOWS_FULL, 1);
			return first_packet_of_socket(sock);
		}
		flow = bpf_map_lookup_elem(&flows, key);
		if (!flow)
			return false;
	}

	geo->country = flow->country;
	geo->verdict = flow->verdict;
	geo->source = flow->source;
	geo->generation = flow->generation;
	add_to_flow(flow, egress, bytes, packets);
	/* Coarse (jiffy resolution) is enough for idle expiry, and cheaper per packet. */
	flow->last_ns = bpf_ktime_get_coarse_ns();

	if (egress && !(flow->flags & BF_FLOW_ALERTED) && out_of_region(flow->verdict) &&
	    send_alert(key, flow, app, bytes))
		flow->flags |= BF_FLOW_ALERTED;
	return false;
}

/*
 * Starts the flow that a socks entry contains, at its first packet: the flow's
 * details and its start event. A UDP socket that sent to this peer before it
 * connected has that flow in flows: the flow goes on here with its counts
 * and its verdict, and the flows entry goes. Returns whether the flow is new.
 */
static __always_inline bool start_socket_flow(struct bf_sock *sock,
					      const struct bf_flow_key *key,
					      const struct packet *pkt, __u32 app)
{
	struct bf_flow_value *flow = &sock->flow, *earlier;

	init_flow_details(flow, &sock->owner, pkt, sock->peer_geo, app);
	earlier = sock->proto == BF_PROTO_UDP ? bpf_map_lookup_elem(&flows, key) : NULL;
	if (!earlier) {
		bf_send_flow_event(BF_EVENT_FLOW_START, key, flow, flow->start_ns);
		return true;
	}
	flow->start_ns = earlier->start_ns;
	flow->flags = earlier->flags;
	flow->country = earlier->country;
	flow->verdict = earlier->verdict;
	flow->source = earlier->source;
	flow->generation = earlier->generation;
	sock->peer_geo.country = earlier->country;
	sock->peer_geo.verdict = earlier->verdict;
	sock->peer_geo.source = earlier->source;
	sock->peer_geo.generation = earlier->generation;
	__sync_fetch_and_add(&flow->transmit_bytes, earlier->transmit_bytes);
	__sync_fetch_and_add(&flow->receive_bytes, earlier->receive_bytes);
	__sync_fetch_and_add(&flow->transmit_packets, earlier->transmit_packets);
	__sync_fetch_and_add(&flow->receive_packets, earlier->receive_packets);
	(void)bpf_map_delete_elem(&flows, key);
	return false;
}

/* Counts a packet in the started flow of a socks entry and sends its first out-of-region event. */
static __always_inline void add_to_socket_flow(struct bf_sock *sock, __u64 cookie, __u8 verdict,
					       __u32 app, bool egress, __u64 bytes, __u64 packets)
{
	struct bf_flow_value *flow = &sock->flow;
	struct bf_flow_key key;

	/* Two CPUs may both send one, and the daemon's repeat interval drops the second. */
	if (egress && !(flow->flags & BF_FLOW_ALERTED) && out_of_region(verdict)) {
		bf_socket_flow_key(sock, cookie, &key);
		if (send_alert(&key, flow, app, bytes))
			flow->flags |= BF_FLOW_ALERTED;
	}
	add_to_flow(flow, egress, bytes, packets);
	/* Coarse (jiffy resolution) is enough for idle expiry, and cheaper per packet. */
	flow->last_ns = bpf_ktime_get_coarse_ns();
}

/*
 * Counts a packet of a watched application's socket to its connected peer,
 * in the flow that its socks entry contains, and starts that flow at its first
 * packet. After sock_release, the entry of a flow that started before it
 * still counts, and a socket without one counts in totals only. Returns
 * whether the flow is new.
 */
static __always_inline bool count_socket_flow(struct bf_sock *sock, __u64 cookie,
					      const struct packet *pkt, struct bf_geo_value *geo,
					      __u32 app, bool egress, __u64 bytes, __u64 packets)
{
	bool created = false;
	struct bf_flow_key key;

	if (!(sock->flags & BF_SOCK_FLOW)) {
		if (sock->flags & BF_SOCK_RELEASED)
			return false;
		/* The fetch of the old flags makes one CPU the flow's starter when two race. */
		if (!(__sync_fetch_and_or(&sock->flags, BF_SOCK_FLOW) & BF_SOCK_FLOW)) {
			bf_socket_flow_key(sock, cookie, &key);
			created = start_socket_flow(sock, &key, pkt, app);
			*geo = sock->peer_geo;
		}
	}
	add_to_socket_flow(sock, cookie, geo->verdict, app, egress, bytes, packets);
	return created;
}

/*
 * True while a TCP socket's packets may set its connected peer: until its
 * flow starts. The peer that connect4/6 saw is not the one the kernel
 * connects to for 0.0.0.0 or ::, nor when a later program rewrites the
 * address, and a TCP socket's packets all go to its one peer.
 */
static __always_inline bool takes_packet_peer(const struct bf_sock *sock)
{
	return !sock->peer_family || !(sock->flags & (BF_SOCK_FLOW | BF_SOCK_RELEASED));
}

/* Records the owner of a listening socket at a SYN it receives, unless it is known. */
static __always_inline void note_listener(const struct bpf_sock *sk, struct bf_sock *sock)
{
	struct bf_listen_key lkey;
	struct bf_owner *known;

	bf_listen_key(sk, &lkey);
	known = bpf_map_lookup_elem(&listeners, &lkey);
	if (known && known->tgid == sock->owner.tgid && known->app == sock->owner.app)
		return;
	(void)bpf_map_update_elem(&listeners, &lkey, &sock->owner, BPF_ANY);
	/* For sock_release, which removes the entry again (sock.bpf.c). */
	__builtin_memcpy(sock->flow.local, lkey.addr, 16);
	sock->flow.local_port = lkey.port;
}

/*
 * Finds the owner of the listener that a TCP socket without an entry came
 * from, by its local address and port, then by its port alone for a
 * listener on every address.
 */
static __always_inline struct bf_owner *listener_owner(const struct bpf_sock *sk)
{
	struct bf_listen_key lkey;
	struct bf_owner *owner;

	bf_listen_key(sk, &lkey);
	owner = bpf_map_lookup_elem(&listeners, &lkey);
	if (owner)
		return owner;
	__builtin_memset(lkey.addr, 0, sizeof(lkey.addr));
	return bpf_map_lookup_elem(&listeners, &lkey);
}

/*
 * True when a TCP socket without an entry may still see its sock_release:
 * a connection from a listener in ESTABLISHED or CLOSE_WAIT, or one that the
 * process shut down for writing and still has open. A socket in a FIN state
 * without a struct socket was closed already, and no release will come.
 */
static __always_inline bool open_after_accept(struct bpf_sock *sk)
{
	struct tcp_sock *tcp;

	if (sk->state == BPF_TCP_ESTABLISHED || sk->state == BPF_TCP_CLOSE_WAIT)
		return true;
	if (sk->state != BPF_TCP_FIN_WAIT1 && sk->state != BPF_TCP_FIN_WAIT2 &&
	    sk->state != BPF_TCP_CLOSING)
		return false;
	tcp = bpf_skc_to_tcp_sock(sk);
	return tcp && tcp->inet_conn.icsk_inet.sk.sk_socket;
}

/*
 * Finds the socks entry of a packet's socket. A socket that accept()
 * returned has none until its first packet, and then gets one with the
 * owner of its listener. A socket closed before its first packet gets none:
 * its packets count in totals under the listener's application, which *app
 * returns. *listening is set for a listener's packets.
 */
static __always_inline struct bf_sock *find_sock(struct __sk_buff *skb, struct bf_sock *sock,
						 __u64 cookie, __u8 proto, bool *listening,
						 __u32 *app)
{
	struct bpf_sock *sk = skb->sk;
	struct bf_owner *owner;

	if (!sk)
		return sock;
	*listening = sk->state == BPF_TCP_LISTEN;
	if (sock) {
		*app = sock->owner.app;
		if (*listening) {
			note_listener(sk, sock);
			/* A listener that the daemon labelled goes when idle: SYNs keep it. */
			if (sock->flags & BF_SOCK_ADOPTED)
				sock->flow.last_ns = bpf_ktime_get_coarse_ns();
		}
		return sock;
	}
	if (proto != BF_PROTO_TCP || *listening)
		return NULL;
	owner = listener_owner(sk);
	if (!owner)
		return NULL;
	*app = owner->app;
	sk = bpf_sk_fullsock(sk);
	if (!sk || !open_after_accept(sk))
		return NULL;
	sock = bf_adopt_sock(cookie, BF_PROTO_TCP);
	if (sock)
		sock->owner = *owner;
	return sock;
}

/*
 * Finds the application of a packet without a socks entry: unconnected UDP
 * to a peer of a closed socket by its flow key, an unwatched socket closed a
 * moment ago in closed.
 */
static __always_inline __u32 orphan_app(const struct bf_flow_key *key)
{
	struct bf_flow_value *flow = bpf_map_lookup_elem(&flows, key);
	__u32 *closed_app;

	if (flow)
		return flow->app;
	closed_app = bpf_map_lookup_elem(&closed, &key->cookie);
	return closed_app ? *closed_app : BF_APP_UNATTRIBUTED;
}

/*
 * True when an IPv6 packet's first next header is not TCP: an extension
 * header, or a packet too short to tell, which the parsing path counts
 * under the protocol it finds.
 */
static __always_inline bool has_ipv6_extension(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6 = data;
	__u8 nexthdr;

	if ((void *)(ip6 + 1) <= data_end)
		return ip6->nexthdr != BF_PROTO_TCP;
	if (bpf_skb_load_bytes(skb, __builtin_offsetof(struct ipv6hdr, nexthdr), &nexthdr, 1))
		return true;
	return nexthdr != BF_PROTO_TCP;
}

/*
 * Counts a packet of a started TCP flow of a watched application without
 * parsing it: every packet of a connected TCP socket goes to or comes from
 * its one peer, which the flow names with its country. A packet of
 * segmentation offload is left to the parsing path, which reads the header
 * length that each of its segments repeats, and so is an IPv6 packet with
 * an extension header, which that path counts under the header's protocol.
 * Returns false for every packet that needs that path.
 */
static __always_inline bool count_started_tcp(struct __sk_buff *skb, struct bf_sock *sock,
					      __u64 cookie, bool egress)
{
	__u32 app = sock->owner.app;
	__u64 bytes = skb->len;

	if (sock->proto != BF_PROTO_TCP || !(sock->flags & BF_SOCK_FLOW) || skb->gso_segs > 1 ||
	    app == BF_APP_OTHER || app == BF_APP_UNATTRIBUTED)
		return false;
	if (skb->protocol == bpf_htons(ETH_P_IPV6) && has_ipv6_extension(skb))
		return false;
	add_to_socket_flow(sock, cookie, sock->peer_geo.verdict, app, egress, bytes, 1);
	add_totals(app, &sock->peer_geo, BF_PROTO_TCP, egress, bytes, 1, false);
	return true;
}

static __always_inline int count_packet(struct __sk_buff *skb, bool egress)
{
	struct bf_flow_key key = {};
	struct bf_geo_value geo;
	struct packet pkt = {};
	struct bf_sock *sock;
	__u64 cookie, bytes, segs;
	bool new_flow, connected = false, listening = false;
	__u32 app = BF_APP_UNATTRIBUTED;

	cookie = bpf_get_socket_cookie(skb);
	sock = bpf_map_lookup_elem(&socks, &cookie);
	if (sock && count_started_tcp(skb, sock, cookie, egress))
		return 1;

	if (parse_packet(skb, egress, &pkt)) {
		bf_stat_add(BF_STAT_UNPARSED_PACKETS, 1);
		return 1;
	}
	segs = skb->gso_segs ? skb->gso_segs : 1;
	bytes = skb->len + (segs - 1) * pkt.header_bytes;

	key.cookie = cookie;
	__builtin_memcpy(key.peer, pkt.peer, 16);
	key.peer_port = pkt.peer_port;
	key.family = pkt.family;
	key.proto = pkt.proto;

	sock = find_sock(skb, sock, cookie, pkt.proto, &listening, &app);
	if (!sock && app == BF_APP_UNATTRIBUTED)
		app = orphan_app(&key);

	if (sock && bf_sock_has_peer(sock, pkt.family, pkt.peer, pkt.peer_port)) {
		geo = sock->peer_geo;
		connected = true;
	} else {
		geo = bf_geo_lookup(pkt.family, pkt.peer);
		if (sock && pkt.proto == BF_PROTO_TCP && !listening && takes_packet_peer(sock)) {
			__builtin_memcpy(sock->peer, pkt.peer, 16);
			sock->peer_port = pkt.peer_port;
			sock->peer_geo = geo;
			sock->peer_family = pkt.family;
			connected = true;
		}
	}

	/* A listener's SYNs belong to the connections that accept() returns, which count them. */
	if (listening)
		new_flow = false;
	else if (app == BF_APP_OTHER || app == BF_APP_UNATTRIBUTED)
		new_flow = first_packet_of_socket(sock);
	else if (connected)
		new_flow = count_socket_flow(sock, cookie, &pkt, &geo, app, egress, bytes, segs);
	else
		new_flow = count_flow(&key, sock, &pkt, &geo, app, egress, bytes, segs);

	add_totals(app, &geo, pkt.proto, egress, bytes, segs, new_flow);
	return 1;
}

SEC("cgroup_skb/egress")
int bf_egress(struct __sk_buff *skb)
{
	return count_packet(skb, true);
}

SEC("cgroup_skb/ingress")
int bf_ingress(struct __sk_buff *skb)
{
	return count_packet(skb, false);
}
