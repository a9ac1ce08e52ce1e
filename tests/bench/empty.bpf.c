// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Programs that do nothing, on the eight cgroup hooks that borderflow uses.
 * The benchmark attaches them to measure what being attached costs by
 * itself, apart from what borderflow's programs do.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("cgroup_skb/egress")
int empty_egress(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup_skb/ingress")
int empty_ingress(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup/sock_create")
int empty_create(struct bpf_sock *sk)
{
	return 1;
}

SEC("cgroup/sock_release")
int empty_release(struct bpf_sock *sk)
{
	return 1;
}

SEC("cgroup/connect4")
int empty_connect4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/connect6")
int empty_connect6(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/sendmsg4")
int empty_sendmsg4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/sendmsg6")
int empty_sendmsg6(struct bpf_sock_addr *ctx)
{
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
