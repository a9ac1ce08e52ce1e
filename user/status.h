/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef BORDERFLOW_STATUS_H
#define BORDERFLOW_STATUS_H

#include <json-c/json.h>

#include "alerts.h"
#include "monitor.h"

/*
 * Builds the status document from the kernel's totals and stats:
 * {"apps": [{"app", "destinations": [{"country", "verdict", counters,
 * "tcp": {...}, "udp": {...}}]}], "unattributed_bytes", "lost_events",
 * "geo": {...}, ...}. Returns NULL on failure with errno set.
 */
json_object *bf_status_build(struct bf_monitor *mon, const struct bf_config *cfg,
			     const struct bf_geo_table *table, uint16_t generation,
			     const struct bf_alerts *alerts);

#endif
