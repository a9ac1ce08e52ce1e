/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Ring buffer events from the BPF programs to the daemon. Events may be lost
 * when the buffer is full (counted in BF_STAT_EVENTS_LOST); counters never are.
 */
#ifndef BORDERFLOW_MAPS_EVENT_H
#define BORDERFLOW_MAPS_EVENT_H

#include "flow.h"

/* Size of the ring buffer of flow events. */
#define BF_EVENTS_BYTES (1u << 20)

/*
 * Size of the ring buffer of out-of-region events, apart from flow events
 * so that a flood of flows cannot crowd alerts out.
 */
#define BF_ALERT_EVENTS_BYTES (256u << 10)

/*
 * Flow start and end events wake the daemon only when the events waiting in
 * the ring buffer pass a multiple of this: it reads them on that wakeup or
 * its one-second tick, which saves a wakeup per connection. Out-of-region
 * events always wake it.
 */
#define BF_EVENTS_WAKEUP_BYTES (BF_EVENTS_BYTES / 4)

/*
 * Key of alert_counts: alerts raised per application, country and rule
 * (0 foreign destination, 1 unknown destination). The daemon counts there,
 * in a pinned map, so the counts survive its restarts like totals.
 */
struct bf_alert_count_key {
	__u32 app;
	__u16 country;
	__u8 rule;
	__u8 pad;
};

enum bf_event_type {
	BF_EVENT_FLOW_START = 1,
	BF_EVENT_FLOW_END = 2,
	BF_EVENT_OUT_OF_REGION = 3, /* first egress packet of a flow to a foreign or unknown peer */
};

struct bf_event {
	__u32 type; /* enum bf_event_type */
	__u32 pad;
	__u64 ts_ns; /* CLOCK_MONOTONIC */
	struct bf_flow_key key;
	struct bf_flow_value flow;
	__u32 packet_bytes; /* BF_EVENT_OUT_OF_REGION: size of the packet that raised it */
	__u32 pad2;
};

#endif
