/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Constants shared by the BPF programs and userspace. Both sides include the
 * headers in maps/, so every struct here uses fixed-width types and explicit
 * padding, and no field changes meaning between kernel and userspace.
 */
#ifndef BORDERFLOW_MAPS_COMMON_H
#define BORDERFLOW_MAPS_COMMON_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Application ids. Watched applications are numbered from 1 in config order. */
#define BF_APP_OTHER	    0u		/* a process of no watched application */
#define BF_APP_UNATTRIBUTED 0xffffffffu /* no owner: sockets older than the monitor, kernel */
#define BF_MAX_APPS	    64u

/* Verdicts of a destination, stored per range in the geolocation tables. */
enum bf_verdict {
	BF_VERDICT_LOCAL = 0,
	BF_VERDICT_APPROVED = 1,
	BF_VERDICT_FOREIGN = 2,
	BF_VERDICT_UNKNOWN = 3,
	BF_VERDICT_COUNT = 4,
};

/* Transports, as IANA protocol numbers so the kernel side stores them as is. */
#define BF_PROTO_TCP 6
#define BF_PROTO_UDP 17

/*
 * A country code is two ASCII letters packed into 16 bits, first letter in
 * the low byte: "CN" is 'C' | 'N' << 8. 0 means "no entry in the data" and
 * is reported as "??".
 */
#define BF_CC(a, b) ((__u16)((__u8)(a) | ((__u16)(__u8)(b) << 8)))
#define BF_CC_NONE  0u

#endif
