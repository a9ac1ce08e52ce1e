// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Socket tagging. These cgroup programs run in the context of the process
 * that creates, connects or sends on a socket, so they are where the owner
 * of a socket is known. The packet counters (skb.bpf.c) run later, often in
 * softirq context, and read the owner back from socket storage.
 */
#include "geo.bpf.h"
#include <bpf/bpf_endian.h>

static __always_inline void set_caller(struct bf_sock_owner *owner)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct bf_proc_value *proc = bpf_map_lookup_elem(&procs, &tgid);

	owner->tgid = tgid;
	owner->uid = (__u32)bpf_get_current_uid_gid();
	owner->cgroup_id = bpf_get_current_cgroup_id();
	owner->app = proc && !(proc->flags & BF_PROC_EXITED) ? proc->app : BF_APP_OTHER;
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
		owner->cookie = cookie;
		owner->flags = 0;
		owner->peer_family = 0;
	} else if (owner->tgid == bpf_get_current_pid_tgid() >> 32) {
		/*
		 * The creator itself: only the application can have changed,
		 * by an exec between socket(2) and this call.
		 */
		struct bf_proc_value *proc = bpf_map_lookup_elem(&procs, &owner->tgid);

		owner->app = proc && !(proc->flags & BF_PROC_EXITED) ? proc->app : BF_APP_OTHER;
		return owner;
	}
	set_caller(owner);
	return owner;
}

static __always_inline void set_peer(struct bf_sock_owner *owner, __u8 family, const __u32 addr[4],
				     __u32 port)
{
	__builtin_memcpy(owner->peer, addr, 16);
	owner->peer_port = bpf_ntohs((__u16)port);
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
		set_peer(owner, 4, addr, ctx->user_port);
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
	set_peer(owner, family, addr, ctx->user_port);
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

static __always_inline void end_flow(struct bf_sock_owner *owner, __u64 cookie, __u8 proto)
{
	struct bf_flow_key key = {};
	struct bf_flow_value *flow;
	struct bf_event *event;

	key.cookie = cookie;
	__builtin_memcpy(key.peer, owner->peer, 16);
	key.peer_port = owner->peer_port;
	key.family = owner->peer_family;
	key.proto = proto;
	flow = bpf_map_lookup_elem(&flows, &key);
	if (!flow)
		return;
	flow->end_ns = bpf_ktime_get_ns();

	event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
	if (!event) {
		bf_stat_add(BF_STAT_EVENTS_LOST, 1);
		return;
	}
	event->type = BF_EVENT_FLOW_END;
	event->ts_ns = flow->end_ns;
	event->key = key;
	event->flow = *flow;
	event->packet_bytes = 0;
	bpf_ringbuf_submit(event,
			   bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= BF_EVENTS_WAKEUP_BYTES
				   ? BPF_RB_FORCE_WAKEUP
				   : BPF_RB_NO_WAKEUP);
}

/*
 * The process closed the socket. Packets can still follow (FIN, TIME_WAIT),
 * so the flow entry of a watched application stays until the daemon expires
 * it, and packets that carry no full socket find it by their key. For other
 * sockets, closed keeps the application for those packets.
 */
SEC("cgroup/sock_release")
int bf_sock_release(struct bpf_sock *sk)
{
	struct bf_sock_owner *owner;
	__u64 cookie;

	if (!is_counted_socket(sk))
		return 1;
	owner = bpf_sk_storage_get(&sk_owner, sk, NULL, 0);
	if (!owner)
		return 1;
	cookie = bpf_get_socket_cookie(sk);
	owner->flags |= BF_SOCK_RELEASED;
	if (owner->app == BF_APP_OTHER || owner->app == BF_APP_UNATTRIBUTED) {
		(void)bpf_map_update_elem(&closed, &cookie, &owner->app, BPF_ANY);
		return 1;
	}
	if (owner->cookie == cookie && owner->peer_family)
		end_flow(owner, cookie, sk->protocol);
	return 1;
}
