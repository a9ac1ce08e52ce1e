/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Types shared by the geolocation benchmark and its BPF program. */
#ifndef BORDERFLOW_BENCH_GEO_LOOKUP_H
#define BORDERFLOW_BENCH_GEO_LOOKUP_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* An address to look up, in network order: family 4 with the address in addr[0..3], or 6. */
struct geo_lookup_addr {
	__u32 family;
	__u8 addr[16];
};

#endif
