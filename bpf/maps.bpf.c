// SPDX-License-Identifier: GPL-2.0-or-later
#define BF_DEFINE_MAPS
#include "maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";
