// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Socket tagging. These cgroup programs run in the context of the process
 * that creates, connects or sends on a socket, so they are where the owner
 * of a socket is known. The packet counters (skb.bpf.c) run later, often in
 * softirq context, and read the owner back from socks by socket cookie.
 */
#include "flow.bpf.h"
#include "geo.bpf.h"
#include <bpf/bpf_endian.h>

static __always_inline __u32 app_of(__u32 tgid)
{
	struct bf_proc_value *proc = bpf_map_lookup_elem(&procs, &tgid);

	return proc && !(proc->flags & BF_PROC_EXITED) ? proc->app : BF_APP_OTHER;
}

/*
 * Stores the caller as the owner. Only flow records and alerts name the
 * user, cgroup and process name, and only watched applications have those,
 * so the sockets of other processes go without them.
 */
static __always_inline void set_caller(struct bf_owner *owner)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	owner->tgid = tgid;
	owner->app = app_of(tgid);
	if (owner->app == BF_APP_OTHER)
		return;
	owner->uid = (__u32)bpf_get_current_uid_gid();
	owner->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(owner->comm, sizeof(owner->comm));
}

static __always_inline bool is_counted_socket(struct bpf_sock *sk)
{
	if (sk->family != AF_INET && sk->family != AF_INET6)
		return false;
	return sk->protocol == BF_PROTO_TCP || sk->protocol == BF_PROTO_UDP;
}

/*
 * Inserting fails when socks is full: the socket's packets then count as
 * unattributed, and the daemon reports how full socks is.
 */
SEC("cgroup/sock_create")
int bf_sock_create(struct bpf_sock *sk)
{
	struct bf_sock fresh = {};
	__u64 cookie;

	if (!is_counted_socket(sk))
		return 1;
	cookie = bpf_get_socket_cookie(sk);
	set_caller(&fresh.owner);
	fresh.proto = sk->protocol;
	(void)bpf_map_update_elem(&socks, &cookie, &fresh, BPF_NOEXIST);
	return 1;
}

/*
 * Returns the socks entry of the socket behind ctx with the caller as
 * owner: the process that connects or sends is the one responsible for the
 * bytes, even when another process created the socket. The entry is
 * created here for sockets older than the monitor that the daemon did not
 * label, and for kernel sockets that the hooks see, such as MPTCP subflows.
 */
static __always_inline struct bf_sock *claim_socket(struct bpf_sock_addr *ctx)
{
	struct bf_sock *sock;
	__u64 cookie;

	if (!ctx->sk || (ctx->protocol != BF_PROTO_TCP && ctx->protocol != BF_PROTO_UDP))
		return NULL;
	cookie = bpf_get_socket_cookie(ctx);
	sock = bpf_map_lookup_elem(&socks, &cookie);
	if (!sock) {
		sock = bf_adopt_sock(cookie, ctx->protocol);
		if (sock)
			set_caller(&sock->owner);
		return sock;
	}
	if (sock->owner.tgid == bpf_get_current_pid_tgid() >> 32) {
		/*
		 * The creator itself: only the application can have changed,
		 * by an exec between socket(2) and this call. A watched one
		 * new to the socket needs the details that set_caller skips
		 * for other processes.
		 */
		__u32 app = app_of(sock->owner.tgid);

		if (app == sock->owner.app || app == BF_APP_OTHER) {
			sock->owner.app = app;
			return sock;
		}
	}
	set_caller(&sock->owner);
	return sock;
}

/* Ends the flow that a socks entry contains and sends its end event. */
static __always_inline void end_flow(struct bf_sock *sock, __u64 cookie)
{
	struct bf_flow_key key;

	bf_socket_flow_key(sock, cookie, &key);
	sock->flow.end_ns = bpf_ktime_get_ns();
	/* The daemon keeps the entry ENDED_LINGER_NS from here, for the packets that follow. */
	sock->flow.last_ns = sock->flow.end_ns;
	bf_send_flow_event(BF_EVENT_FLOW_END, &key, &sock->flow, sock->flow.end_ns);
}

/*
 * Moves the flow that a socks entry contains to flows, at a connect() to
 * another peer or a new TCP connection to the same one, so that the entry
 * can hold the next flow. A TCP flow ends there. A UDP flow's flows entry counts later packets to that peer as
 * an unconnected flow does, and expires as one when idle. Each count is
 * taken with an atomic exchange, so a packet that adds to the entry
 * meanwhile lands in the moved flow or in the next one, never in both.
 */
static __always_inline void leave_peer(struct bf_sock *sock, __u64 cookie)
{
	struct bf_flow_value moved = sock->flow, *found;
	struct bf_flow_key key;

	__sync_fetch_and_and(&sock->flags, ~BF_SOCK_FLOW);
	bf_socket_flow_key(sock, cookie, &key);
	moved.transmit_bytes = __sync_lock_test_and_set(&sock->flow.transmit_bytes, 0);
	moved.receive_bytes = __sync_lock_test_and_set(&sock->flow.receive_bytes, 0);
	moved.transmit_packets = __sync_lock_test_and_set(&sock->flow.transmit_packets, 0);
	moved.receive_packets = __sync_lock_test_and_set(&sock->flow.receive_packets, 0);
	sock->flow.flags = 0;
	moved.last_ns = bpf_ktime_get_coarse_ns();
	if (key.proto == BF_PROTO_TCP) {
		moved.end_ns = bpf_ktime_get_ns();
		moved.last_ns = moved.end_ns;
		bf_send_flow_event(BF_EVENT_FLOW_END, &key, &moved, moved.end_ns);
	}
	if (!bpf_map_update_elem(&flows, &key, &moved, BPF_NOEXIST))
		return;
	/* Unconnected packets to the peer made an entry meanwhile, or flows is full. */
	found = bpf_map_lookup_elem(&flows, &key);
	if (!found) {
		bf_stat_add(BF_STAT_FLOWS_FULL, 1);
		return;
	}
	__sync_fetch_and_add(&found->transmit_bytes, moved.transmit_bytes);
	__sync_fetch_and_add(&found->receive_bytes, moved.receive_bytes);
	__sync_fetch_and_add(&found->transmit_packets, moved.transmit_packets);
	__sync_fetch_and_add(&found->receive_packets, moved.receive_packets);
}

static __always_inline void set_peer(struct bf_sock *sock, __u64 cookie, __u8 family,
				     const __u32 addr[4], __u32 port)
{
	__u16 peer_port = bpf_ntohs((__u16)port);

	if (sock->flags & BF_SOCK_FLOW) {
		/*
		 * A UDP connect() to the peer it has changes nothing. A TCP
		 * connect() always opens a new connection, to the same peer too:
		 * the hook runs only for a socket in TCP_CLOSE, after a failed
		 * attempt or a connect(AF_UNSPEC), so the earlier flow ends.
		 */
		if (sock->proto == BF_PROTO_UDP && bf_sock_has_peer(sock, family, addr, peer_port))
			return;
		leave_peer(sock, cookie);
	}
	__builtin_memcpy(sock->peer, addr, 16);
	sock->peer_port = peer_port;
	sock->peer_geo = bf_geo_lookup(family, addr);
	sock->peer_family = family;
}

/* Reads ctx->user_ip6 as an IPv4 address when it is IPv4-mapped. Returns the family. */
static __always_inline __u8 read_user_ip6(struct bpf_sock_addr *ctx, __u32 addr[4])
{
	addr[0] = ctx->user_ip6[0];
	addr[1] = ctx->user_ip6[1];
	addr[2] = ctx->user_ip6[2];
	addr[3] = ctx->user_ip6[3];
	if (!bf_is_v4_mapped(addr))
		return 6;
	addr[0] = addr[3];
	addr[1] = 0;
	addr[2] = 0;
	addr[3] = 0;
	return 4;
}

SEC("cgroup/connect4")
int bf_connect4(struct bpf_sock_addr *ctx)
{
	struct bf_sock *sock = claim_socket(ctx);
	__u32 addr[4] = { ctx->user_ip4, 0, 0, 0 };

	if (sock)
		set_peer(sock, bpf_get_socket_cookie(ctx), 4, addr, ctx->user_port);
	return 1;
}

SEC("cgroup/connect6")
int bf_connect6(struct bpf_sock_addr *ctx)
{
	struct bf_sock *sock = claim_socket(ctx);
	__u32 addr[4];
	__u8 family;

	if (!sock)
		return 1;
	family = read_user_ip6(ctx, addr);
	set_peer(sock, bpf_get_socket_cookie(ctx), family, addr, ctx->user_port);
	return 1;
}

/* Unconnected UDP: only the owner is refreshed, a peer per packet is found in skb.bpf.c. */
SEC("cgroup/sendmsg4")
int bf_sendmsg4(struct bpf_sock_addr *ctx)
{
	(void)claim_socket(ctx);
	return 1;
}

SEC("cgroup/sendmsg6")
int bf_sendmsg6(struct bpf_sock_addr *ctx)
{
	(void)claim_socket(ctx);
	return 1;
}

/*
 * Removes a closed listener's owner from listeners, so that a later
 * listener on the same port, perhaps on every address, is the one that the
 * sockets accept() returns find. Another process's listener on the same
 * address and port (SO_REUSEPORT) keeps its entry. The address is the one
 * that the listener's first SYN stored in its flow's local fields, because
 * sock_release programs cannot read a socket's local address.
 */
static __always_inline void forget_listener(struct bpf_sock *sk, const struct bf_sock *sock)
{
	struct bf_listen_key lkey = {};
	struct bf_owner *known;

	if (!sock->flow.local_port)
		return; /* no SYN reached it, so it has no entry */
	__builtin_memcpy(lkey.addr, sock->flow.local, 16);
	lkey.port = sock->flow.local_port;
	lkey.family = sk->family == AF_INET6 ? 6 : 4;
	known = bpf_map_lookup_elem(&listeners, &lkey);
	if (known && known->tgid == sock->owner.tgid)
		(void)bpf_map_delete_elem(&listeners, &lkey);
}

/*
 * The process closed the socket. Packets can still follow (data still
 * queued, FIN, TIME_WAIT), so the entry of a watched flow stays until the
 * daemon removes it, and they count in it. The entry of any other socket
 * goes now. For other TCP sockets that can still send, closed keeps the
 * application for those packets. UDP sockets send nothing after their
 * release.
 */
SEC("cgroup/sock_release")
int bf_sock_release(struct bpf_sock *sk)
{
	struct bf_sock *sock;
	__u64 cookie;
	__u32 flags;

	if (!is_counted_socket(sk))
		return 1;
	cookie = bpf_get_socket_cookie(sk);
	sock = bpf_map_lookup_elem(&socks, &cookie);
	if (!sock)
		return 1;
	/* A packet on another CPU that finds the flag starts no flow in the entry. */
	flags = __sync_fetch_and_or(&sock->flags, BF_SOCK_RELEASED);
	if (flags & BF_SOCK_FLOW) {
		end_flow(sock, cookie);
		return 1;
	}
	if (sk->state == BPF_TCP_LISTEN)
		forget_listener(sk, sock);
	else if (sk->protocol == BF_PROTO_TCP && sk->state != BPF_TCP_CLOSE)
		(void)bpf_map_update_elem(&closed, &cookie, &sock->owner.app, BPF_ANY);
	/*
	 * NOTE: a packet on another CPU that looked the entry up before this
	 * delete may still write to it after it (the BF_SOCK_COUNTED flag, or
	 * the peer that a TCP packet sets), into memory that the map may
	 * already have given to another socket's entry. This window is not
	 * tested.
	 */
	(void)bpf_map_delete_elem(&socks, &cookie);
	return 1;
}
