/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Prometheus metrics of the daemon. An HTTP endpoint on [metrics]
 * listen serves GET /metrics in the text exposition format 0.0.4 and GET
 * /healthz, with libmicrohttpd on threads of its own. Optionally the same
 * text is written to a folder for node_exporter's textfile collector.
 *
 * The counters come from the kernel's totals and stats maps, which are
 * pinned in [daemon] pin, so they only grow across daemon restarts. Labels
 * are application, country, verdict, transport, alert rule, map, program
 * and geolocation source: never an address, port, process or user.
 */
#ifndef BORDERFLOW_METRICS_H
#define BORDERFLOW_METRICS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

#include "../maps/flow.h"

struct bf_daemon;
struct MHD_Daemon;

/* How often the textfile is rewritten while the daemon runs. */
#define BF_METRICS_TEXTFILE_INTERVAL_S 15
#define BF_METRICS_TEXTFILE_NAME       "borderflow.prom"

struct bf_metrics {
	struct bf_daemon *daemon;
	const char *version; /* of borderflowd, the label of borderflow_build_info */
	struct MHD_Daemon *httpd;
	const char *textfile_dir; /* NULL without --textfile-dir */
	int textfile_stop_fd;	  /* eventfd that ends the textfile thread */
	bool textfile_running;
	bool textfile_failing; /* the latest write failed; its error was logged */
	pthread_t textfile_thread;
	uint64_t render_errors; /* scrapes that failed, for the rate limit of their log line */
	int64_t render_error_logged_s;
};

/*
 * Starts the HTTP endpoint on d->cfg.metrics_listen and, when textfile_dir
 * is not NULL, writes textfile_dir/borderflow.prom once and starts the
 * thread that rewrites it every BF_METRICS_TEXTFILE_INTERVAL_S. Call it
 * after the programs are attached; the threads it starts block every
 * signal, so the event loop's signalfd receives them. On error nothing
 * is left running and err names the address or folder.
 */
int bf_metrics_start(struct bf_metrics *m, struct bf_daemon *d, const char *version,
		     const char *textfile_dir, struct bf_error *err);

/*
 * Stops the endpoint (waiting for the scrapes in progress) and the textfile
 * thread, then writes the textfile a last time. Safe on a metrics object
 * that was zeroed and never started.
 */
void bf_metrics_stop(struct bf_metrics *m);

/*
 * Renders every metric family in the text exposition format into a
 * malloc'ed text. Reads the kernel maps without d->lock and takes it only
 * to copy the alert counts and the geolocation sources.
 */
int bf_metrics_render(struct bf_metrics *m, char **text, size_t *size);

/*
 * Reading of the kernel counters, shared with the status document.
 */

/* Called with each key of totals and its per-CPU values summed; non-zero stops the walk. */
typedef int (*bf_totals_fn)(const struct bf_total_key *key, const struct bf_total_value *sum,
			    void *ctx);

/*
 * Walks the totals map (fd) in batches and calls fn for each key. The map is
 * only read, because totals are monotonic. Returns 0, fn's non-zero value,
 * or a negative errno.
 */
int bf_totals_foreach(int fd, bf_totals_fn fn, void *ctx);

/* Sums one counter of the per-CPU stats map (fd) over the CPUs. */
int bf_stat_read(int fd, __u32 index, uint64_t *sum);

#endif
