/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Flow helpers of both the packet counters (skb.bpf.c) and the socket hooks
 * (sock.bpf.c): flow events, and the counts of a connected socket, which
 * wait in its storage until they move to its flows entry.
 */
#ifndef BORDERFLOW_FLOW_BPF_H
#define BORDERFLOW_FLOW_BPF_H

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

/* Fills the flows key of the connected peer that owner caches. */
static __always_inline void bf_socket_flow_key(const struct bf_sock_owner *owner, __u64 cookie,
					       __u8 proto, struct bf_flow_key *key)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->cookie = cookie;
	__builtin_memcpy(key->peer, owner->peer, 16);
	key->peer_port = owner->peer_port;
	key->family = owner->peer_family;
	key->proto = proto;
}

/*
 * Moves the counts waiting in a connected socket's storage to its flows
 * entry. Each count is taken with an atomic exchange, so a packet that adds
 * to the storage meanwhile lands in this move or in a later one, never in
 * both and never in none.
 */
static __always_inline void bf_move_socket_counts(struct bf_sock_owner *owner,
						  struct bf_flow_value *flow)
{
	__u64 moved;

	moved = __sync_lock_test_and_set(&owner->transmit_bytes, 0);
	if (moved)
		__sync_fetch_and_add(&flow->transmit_bytes, moved);
	moved = __sync_lock_test_and_set(&owner->transmit_packets, 0);
	if (moved)
		__sync_fetch_and_add(&flow->transmit_packets, moved);
	moved = __sync_lock_test_and_set(&owner->receive_bytes, 0);
	if (moved)
		__sync_fetch_and_add(&flow->receive_bytes, moved);
	moved = __sync_lock_test_and_set(&owner->receive_packets, 0);
	if (moved)
		__sync_fetch_and_add(&flow->receive_packets, moved);
}

/*
 * Starts the owner of a socket anew, for storage that accept() copied from a
 * listener: the new socket has its own cookie and its own flows.
 */
static __always_inline void bf_reset_owner(struct bf_sock_owner *owner, __u64 cookie)
{
	owner->cookie = cookie;
	owner->flags = 0;
	owner->peer_family = 0;
	owner->transmit_bytes = 0;
	owner->receive_bytes = 0;
	owner->transmit_packets = 0;
	owner->receive_packets = 0;
}

#endif
