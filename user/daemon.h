/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef BORDERFLOW_DAEMON_H
#define BORDERFLOW_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "alerts.h"
#include "control.h"
#include "lib/config.h"
#include "lib/geo.h"
#include "monitor.h"

struct ring_buffer;

#include "reload.h"

/* Tags of the event loop's epoll sources. */
enum { BF_SOURCE_EVENTS = 1, BF_SOURCE_SIGNAL, BF_SOURCE_TIMER, BF_SOURCE_INOTIFY };

#define BF_MAX_FOLDER_WATCHES 16

struct bf_daemon {
	struct bf_config cfg;
	struct bf_geo_table table;
	struct bf_monitor mon;
	struct bf_alerts alerts;
	struct bf_control control;
	struct ring_buffer *events;
	int epoll_fd, signal_fd, timer_fd;
	/*
	 * Guards what the control thread reads while the event loop writes:
	 * alerts (its counts) and the flow counters below.
	 */
	pthread_mutex_t lock;
	uint16_t generation;		   /* of the geolocation data in force, from 1 */
	struct bf_geo_generation *history; /* BF_GEO_GENERATIONS slots */
	int inotify_fd;
	int folder_wds[BF_MAX_FOLDER_WATCHES]; /* watches of data folders: any change counts */
	size_t nfolder_wds;
	uint64_t reload_at_ns; /* CLOCK_MONOTONIC of a reload due after changes, 0 for none */
	uint64_t flows_started, flows_ended, flows_expired;
	uint64_t flows_full_logged; /* BF_STAT_FLOWS_FULL when its last warning was logged */
	uint64_t reload_failures;   /* reloads that kept the data in force, under lock */
	bool reload_failed;	    /* the last reload failed, under lock */
};

/* Runs the event loop until SIGTERM or SIGINT. Returns 0 or a negative errno. */
int bf_daemon_run(struct bf_daemon *d);

/*
 * Removes flows that ended (sock_release) or went idle long enough ago,
 * reading each one's final counters in the same step as deleting it.
 */
void bf_daemon_expire_flows(struct bf_daemon *d, uint64_t now_ns);

/* Removes the entries of processes that exited more than a minute ago. */
void bf_daemon_expire_procs(struct bf_daemon *d, uint64_t now_ns);

#endif
