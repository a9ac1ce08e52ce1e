// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Socket tagging. These cgroup programs run in the context of the process
 * that creates, connects or sends on a socket, so they are where the owner
 * of a socket is known. The packet counters (skb.bpf.c) run later, often in
 * softirq context, and read the owner back from socket storage.
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
static __always_inline void set_caller(struct bf_sock_owner *owner)
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

SEC("cgroup/sock_create")
int bf_sock_create(struct bpf_sock *sk)
{
	struct bf_sock_owner *owner;

	if (!is_counted_socket(sk))
		return 1;
	owner = bpf_sk_storage_get(&sk_owner, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!owner)
		return 1;
	set_caller(owner);
	owner->cookie = bpf_get_socket_cookie(sk);
	return 1;
}

/*
 * Returns the owner of the socket behind ctx with the caller as owner: the
 * process that connects or sends is the one responsible for the bytes, even
 * when another process created the socket. Storage is created here for
 * sockets older than the monitor.
 */
static __always_inline struct bf_sock_owner *claim_socket(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct bf_sock_owner *owner;
	__u64 cookie;

	if (!sk)
		return NULL;
	owner = bpf_sk_storage_get(&sk_owner, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!owner)
		return NULL;
	cookie = bpf_get_socket_cookie(ctx);
	if (owner->cookie != cookie) {
		bf_reset_owner(owner, cookie);
	} else if (owner->tgid == bpf_get_current_pid_tgid() >> 32) {
		/*
		 * The creator itself: only the application can have changed,
		 * by an exec between socket(2) and this call. A watched one
		 * new to the socket needs the details that set_caller skips
		 * for other processes.
		 */
		__u32 app = app_of(owner->tgid);

		if (app == owner->app || app == BF_APP_OTHER) {
			owner->app = app;
			return owner;
		}
	}
	set_caller(owner);
	return owner;
}

/*
 * Ends the flow of a connected socket: the counts in its storage move to its
 * entry, and the end event carries the entry.
 */
static __always_inline void end_flow(struct bf_sock_owner *owner, __u64 cookie, __u8 proto)
{
	struct bf_flow_value *flow;
	struct bf_flow_key key;

	bf_socket_flow_key(owner, cookie, proto, &key);
	flow = bpf_map_lookup_elem(&flows, &key);
	if (!flow)
		return;
	bf_move_socket_counts(owner, flow);
	if (owner->flags & BF_SOCK_ALERTED)
		flow->flags |= BF_FLOW_ALERTED;
	flow->end_ns = bpf_ktime_get_ns();
	/* The daemon keeps the entry ENDED_LINGER_NS from here, for the packets that follow. */
	flow->last_ns = flow->end_ns;
	bf_send_flow_event(BF_EVENT_FLOW_END, &key, flow, flow->end_ns);
}

/*
 * Stops the counting in storage for the cached peer, at a connect to another
 * peer. A TCP flow ends there. A UDP flow's counts move to its entry, which
 * from then on counts packets to that peer as an unconnected flow does, and
 * expires as one when idle.
 */
static __always_inline void leave_peer(struct bf_sock_owner *owner, __u8 proto)
{
	struct bf_flow_value *flow;
	struct bf_flow_key key;

	if (proto == BF_PROTO_TCP) {
		if (owner->flags & BF_SOCK_FLOW)
			end_flow(owner, owner->cookie, proto);
	} else {
		bf_socket_flow_key(owner, owner->cookie, proto, &key);
		flow = bpf_map_lookup_elem(&flows, &key);
		if (flow) {
			bf_move_socket_counts(owner, flow);
			flow->flags &= ~BF_FLOW_SOCKET;
			flow->last_ns = bpf_ktime_get_coarse_ns();
		}
	}
	__sync_fetch_and_and(&owner->flags, ~(BF_SOCK_FLOW | BF_SOCK_UNTRACKED | BF_SOCK_ALERTED));
}

static __always_inline void set_peer(struct bf_sock_owner *owner, __u8 family, const __u32 addr[4],
				     __u32 port, __u8 proto)
{
	__u16 peer_port = bpf_ntohs((__u16)port);

	if (owner->flags & (BF_SOCK_FLOW | BF_SOCK_UNTRACKED)) {
		const __u32 *peer = (const __u32 *)owner->peer;

		if (owner->peer_family == family && owner->peer_port == peer_port &&
		    peer[0] == addr[0] && peer[1] == addr[1] && peer[2] == addr[2] &&
		    peer[3] == addr[3])
			return;
		leave_peer(owner, proto);
	}
	__builtin_memcpy(owner->peer, addr, 16);
	owner->peer_port = peer_port;
	owner->peer_geo = bf_geo_lookup(family, addr);
	owner->peer_family = family;
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
	struct bf_sock_owner *owner = claim_socket(ctx);
	__u32 addr[4] = { ctx->user_ip4, 0, 0, 0 };

	if (owner)
		set_peer(owner, 4, addr, ctx->user_port, ctx->protocol);
	return 1;
}

SEC("cgroup/connect6")
int bf_connect6(struct bpf_sock_addr *ctx)
{
	struct bf_sock_owner *owner = claim_socket(ctx);
	__u32 addr[4];
	__u8 family;

	if (!owner)
		return 1;
	family = read_user_ip6(ctx, addr);
	set_peer(owner, family, addr, ctx->user_port, ctx->protocol);
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
 * The process closed the socket. Packets can still follow (FIN, TIME_WAIT),
 * so the flow entry of a watched application stays until the daemon expires
 * it, and packets that carry no full socket find it by their key. For other
 * TCP sockets that can still send, closed keeps the application for those
 * packets. UDP sockets send nothing after their release.
 */
SEC("cgroup/sock_release")
int bf_sock_release(struct bpf_sock *sk)
{
	struct bf_sock_owner *owner;
	__u64 cookie;
	__u32 flags;

	if (!is_counted_socket(sk))
		return 1;
	owner = bpf_sk_storage_get(&sk_owner, sk, NULL, 0);
	if (!owner)
		return 1;
	cookie = bpf_get_socket_cookie(sk);
	/* Storage that accept() copied and no packet claimed yet is not this socket's. */
	if (owner->cookie != cookie)
		bf_reset_owner(owner, cookie);
	/*
	 * The flag goes first, with a fully ordered atomic, so that a packet
	 * that adds to the storage after the move below finds it set and moves
	 * its count itself.
	 */
	flags = __sync_fetch_and_or(&owner->flags, BF_SOCK_RELEASED);
	/* Whatever the application is now: a process of another one may have sent last. */
	if (flags & BF_SOCK_FLOW)
		end_flow(owner, cookie, sk->protocol);
	/* Only TCP sockets that still have a connection can send after the release. */
	if ((owner->app == BF_APP_OTHER || owner->app == BF_APP_UNATTRIBUTED) &&
	    sk->protocol == BF_PROTO_TCP && sk->state != BPF_TCP_CLOSE &&
	    sk->state != BPF_TCP_LISTEN)
		(void)bpf_map_update_elem(&closed, &cookie, &owner->app, BPF_ANY);
	return 1;
}
