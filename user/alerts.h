/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Alerts on bytes that leave the approved region: one JSON object per line
 * with Elastic Common Schema field names, and a readable log line.
 */
#ifndef BORDERFLOW_ALERTS_H
#define BORDERFLOW_ALERTS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/error.h"
#include "lib/geo.h"
#include "registry.h"
#include "reload.h"

#include "../maps/event.h"

#define BF_RULE_FOREIGN "foreign-destination"
#define BF_RULE_UNKNOWN "unknown-destination"

/* Alerts raised per application, country and rule, for status and metrics. */
struct bf_alert_count {
	uint32_t app;
	uint16_t country;
	uint8_t rule; /* 0 foreign, 1 unknown */
	uint64_t count;
};

struct bf_alerts {
	const struct bf_config *cfg;
	const struct bf_geo_generation *history; /* to name the source of any generation */
	const struct bf_registry *registry;
	int fd;	      /* alerts file, -1 when disabled */
	int procs_fd; /* procs map, for the executable of a process that has exited */
	void *recent; /* tsearch(3) tree of destinations alerted within the repeat interval */
	size_t nrecent;
	struct bf_alert_count *counts;
	size_t ncounts, capcounts;
	uint64_t write_errors;
	int counts_fd; /* the alert_counts map, -1 for none */
	uint64_t count_errors;
	uint64_t log_second, log_lines, log_suppressed; /* rate limit of alert log lines */
};

int bf_alerts_open(struct bf_alerts *alerts, const struct bf_config *cfg,
		   const struct bf_geo_generation *history, const struct bf_registry *registry,
		   int procs_fd, int counts_fd, struct bf_error *err);

/*
 * Raises an alert for an out-of-region event unless the same application
 * sent to the same address, port and transport within the repeat interval,
 * or the verdict is unknown and the policy ignores unknown destinations.
 * now_s is CLOCK_MONOTONIC in seconds. Returns 1 when an alert was raised.
 */
int bf_alerts_handle(struct bf_alerts *alerts, const struct bf_event *event, uint64_t now_s);

/* Opens the alerts file again under its name, after a rotation; logs a failure. */
void bf_alerts_reopen(struct bf_alerts *alerts);

void bf_alerts_close(struct bf_alerts *alerts);

/* Formats an address of a flow key (family 4 or 6) as text. */
void bf_format_addr(uint8_t family, const uint8_t addr[16], char *out, size_t size);

#endif
