// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * borderflowd: loads the programs, fills the geolocation tables and the
 * application matchers, attaches, and runs one event loop. Everything that
 * can be wrong in the configuration or the data is checked before anything
 * is attached, so a bad input never leaves a half-loaded policy in force.
 */
#include <errno.h>
#include <malloc.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "borderflow.skel.h"

#include "daemon.h"
#include "lib/stack.h"
#include "log.h"
#include "metrics.h"

#ifndef BF_VERSION
#define BF_VERSION "0.1"
#endif

struct options {
	const char *config;
	const char *cgroup;
	const char *socket;
	const char *pid_file;
	const char *textfile_dir;
	int verbosity;
	bool syslog;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: borderflowd [OPTION]...\n"
		"Monitor the outbound flows of watched applications and alert when bytes leave\n"
		"the approved region.\n"
		"\n"
		"  -c, --config FILE   configuration file (default " BF_CONFIG_DEFAULT_PATH ")\n"
		"  -g, --cgroup PATH   attach to this cgroup v2 folder instead of the root of the\n"
		"                      hierarchy, so only its processes are counted\n"
		"  -s, --socket PATH   control socket, overriding [daemon] socket\n"
		"  -p, --pid-file PATH write the process id to PATH once running, remove it at "
		"exit\n"
		"  -t, --textfile-dir DIR\n"
		"                      write the metrics to DIR/" BF_METRICS_TEXTFILE_NAME
		" every %d s and at\n"
		"                      exit, for node_exporter's textfile collector; overrides\n"
		"                      [metrics] textfile\n"
		"  -v, --verbose       log more; twice for debug output and the verifier log\n"
		"      --syslog        log to syslog instead of stderr\n"
		"  -h, --help          show this help\n"
		"  -V, --version       show the version\n"
		"\n"
		"Examples:\n"
		"  borderflowd --config /etc/borderflow/borderflow.conf\n"
		"  borderflowd -c test.conf --cgroup /sys/fs/cgroup/unified/lab -v\n"
		"  borderflowd --textfile-dir /var/lib/prometheus/node-exporter\n",
		BF_METRICS_TEXTFILE_INTERVAL_S);
}

static int parse_options(int argc, char **argv, struct options *opts)
{
	static const struct option longopts[] = { { "config", required_argument, NULL, 'c' },
						  { "cgroup", required_argument, NULL, 'g' },
						  { "socket", required_argument, NULL, 's' },
						  { "pid-file", required_argument, NULL, 'p' },
						  { "textfile-dir", required_argument, NULL, 't' },
						  { "verbose", no_argument, NULL, 'v' },
						  { "syslog", no_argument, NULL, 'S' },
						  { "help", no_argument, NULL, 'h' },
						  { "version", no_argument, NULL, 'V' },
						  {} };
	int c;

	opts->config = BF_CONFIG_DEFAULT_PATH;
	while ((c = getopt_long(argc, argv, "c:g:s:p:t:vhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			opts->config = optarg;
			break;
		case 'g':
			opts->cgroup = optarg;
			break;
		case 's':
			opts->socket = optarg;
			break;
		case 'p':
			opts->pid_file = optarg;
			break;
		case 't':
			if (!optarg[0]) {
				fprintf(stderr, "borderflowd: --textfile-dir must not be empty\n");
				return -EINVAL;
			}
			opts->textfile_dir = optarg;
			break;
		case 'v':
			opts->verbosity++;
			break;
		case 'S':
			opts->syslog = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("borderflowd %s\n", BF_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "borderflowd: unexpected argument '%s'; see --help\n",
			argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* Reads the config and every geolocation file; touches nothing in the kernel. */
static int load_inputs(struct bf_daemon *d, const struct options *opts, struct bf_error *err)
{
	int ret;

	ret = bf_config_load(&d->cfg, opts->config, err);
	if (ret)
		return ret;
	if (opts->socket) {
		if (strlen(opts->socket) >= sizeof(d->cfg.control_socket))
			return bf_error_set(err, -ENAMETOOLONG, "--socket path too long: '%s'",
					    opts->socket);
		strcpy(d->cfg.control_socket, opts->socket);
	}

	if (opts->cgroup) {
		struct statfs st;

		if (statfs(opts->cgroup, &st))
			return bf_error_set(err, -errno, "invalid --cgroup '%s': %s", opts->cgroup,
					    strerror(errno));
		if (st.f_type != CGROUP2_SUPER_MAGIC)
			return bf_error_set(err, -EINVAL,
					    "invalid --cgroup '%s': not a folder of the cgroup v2 "
					    "hierarchy (see 'mount -t cgroup2')",
					    opts->cgroup);
	}

	bf_geo_table_init(&d->table);
	return bf_geo_load_stack(&d->table, &d->cfg, err);
}

static double elapsed_s(struct timespec *since)
{
	struct timespec now;
	double s;

	clock_gettime(CLOCK_MONOTONIC, &now);
	s = (now.tv_sec - since->tv_sec) + (now.tv_nsec - since->tv_nsec) / 1e9;
	*since = now;
	return s;
}

static int start(struct bf_daemon *d, const struct options *opts, struct bf_error *err)
{
	struct timespec step;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &step);
	ret = bf_monitor_load(&d->mon, &d->cfg, err);
	if (ret)
		return ret;
	log_info("BPF programs loaded in %.3f s, with a socket table of %u entries preallocated",
		 elapsed_s(&step), d->cfg.sockets);
	ret = bf_monitor_fill_geo(&d->mon, &d->table, &d->cfg, d->generation, err);
	if (ret)
		return ret;
	bf_geo_history_add(d->history, d->generation, &d->table);
	log_info("geolocation tables filled in %.3f s", elapsed_s(&step));
	if (!ret)
		ret = bf_monitor_fill_apps(&d->mon, &d->cfg, err);
	if (!ret)
		ret = bf_alerts_open(&d->alerts, &d->cfg, d->history, &d->mon.registry,
				     bpf_map__fd(d->mon.skel->maps.procs),
				     bpf_map__fd(d->mon.skel->maps.alert_counts), err);
	if (!ret)
		ret = bf_control_open(&d->control, d->cfg.control_socket, err);
	if (ret)
		return ret;

	/* Tracepoints first, so no exec or fork falls between seeding and attaching. */
	ret = bf_monitor_attach_tracepoints(&d->mon, err);
	if (ret)
		return ret;
	ret = bf_monitor_seed_procs(&d->mon, &d->cfg);
	if (ret < 0)
		return bf_error_set(err, ret, "failed to seed running processes: %s",
				    strerror(-ret));
	log_info("%d running processes of watched applications found", ret);
	ret = bf_monitor_attach_cgroup(&d->mon, opts->cgroup, err);
	if (ret)
		return ret;
	log_info("programs attached in %.3f s", elapsed_s(&step));

	/* After attaching, so a socket opened meanwhile is labelled by the hooks. */
	ret = bf_monitor_seed_sockets(&d->mon, &d->table, &d->cfg);
	if (ret < 0)
		log_warn("failed to label sockets opened before the start: %s, ignoring",
			 strerror(-ret));
	else
		log_info("%d sockets opened before the start labelled in %.3f s", ret,
			 elapsed_s(&step));
	return 0;
}

/* Writes the pid file through a temporary name, so a reader never sees it half written. */
static int write_pid_file(const char *path)
{
	char tmp[4200];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "%d\n", (int)getpid());
	if (fclose(f) || rename(tmp, path)) {
		int ret = -errno;

		(void)unlink(tmp);
		return ret;
	}
	return 0;
}

/* Removes the pid file unless another process has written its own pid there meanwhile. */
static void remove_pid_file(const char *path)
{
	FILE *f = fopen(path, "re");
	int pid = 0;

	if (!f)
		return;
	if (fscanf(f, "%d", &pid) != 1)
		pid = 0;
	fclose(f);
	if (pid == (int)getpid())
		(void)unlink(path);
}

int main(int argc, char **argv)
{
	struct bf_daemon d = { .epoll_fd = -1, .signal_fd = -1, .timer_fd = -1 };
	struct bf_metrics metrics = {};
	struct bf_error err = {};
	struct options opts = {};
	const char *textfile_dir;
	struct timespec t0, t1;
	int ret;

	/*
	 * Geolocation parsing grows arrays of tens of MB. When mmap() serves
	 * them, realloc() moves their pages instead of copying them, and free()
	 * returns them to the system. With the default data this lowered VmHWM
	 * from 64 to 53 MiB and VmRSS after the start from 43 to 27 MiB.
	 */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	d.mon.cgroup_fd = -1;
	d.control.fd = -1;
	d.control.stop_fd = -1;
	pthread_mutex_init(&d.lock, NULL);
	d.generation = 1;
	d.inotify_fd = -1;
	d.history = calloc(BF_GEO_GENERATIONS, sizeof(*d.history));
	if (!d.history) {
		fprintf(stderr, "borderflowd: out of memory\n");
		return 1;
	}
	d.alerts.fd = -1;
	if (parse_options(argc, argv, &opts))
		return 2;
	bf_log_init(opts.verbosity >= 2 ? LOG_DEBUG
		    : opts.verbosity	? LOG_INFO
					: LOG_NOTICE,
		    opts.syslog);
	bf_log_route_libbpf();
	clock_gettime(CLOCK_MONOTONIC, &t0);

	ret = load_inputs(&d, &opts, &err);
	if (ret) {
		log_err("%s", err.msg);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_info("configuration and geolocation data read in %.3f s",
		 (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	ret = start(&d, &opts, &err);
	/* --textfile-dir wins over [metrics] textfile. */
	textfile_dir = opts.textfile_dir;
	if (!textfile_dir && d.cfg.metrics_textfile[0])
		textfile_dir = d.cfg.metrics_textfile;

	if (!ret)
		ret = bf_metrics_start(&metrics, &d, BF_VERSION, textfile_dir, &err);
	if (ret) {
		log_err("%s", err.msg);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_notice("started in %.3f s: watched applications %zu (missing paths %zu), prefixes "
		   "IPv4 %zu and IPv6 %zu, cgroup '%s', control socket '%s', metrics on %s",
		   (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, d.cfg.napps,
		   d.mon.missing_paths, d.mon.prefixes4, d.mon.prefixes6, d.mon.cgroup_path,
		   d.cfg.control_socket, d.cfg.metrics_listen);

	if (opts.pid_file) {
		ret = write_pid_file(opts.pid_file);
		if (ret) {
			log_err("failed to write pid file '%s': %s", opts.pid_file, strerror(-ret));
			goto out;
		}
	}

	ret = bf_daemon_run(&d);
	if (opts.pid_file)
		remove_pid_file(opts.pid_file);
out:
	/* Before the maps go: the last textfile write still reads them. */
	bf_metrics_stop(&metrics);
	if (d.events)
		ring_buffer__free(d.events);
	bf_control_close(&d.control);
	if (d.mon.skel)
		bf_monitor_destroy(&d.mon);
	bf_alerts_close(&d.alerts);
	bf_geo_table_free(&d.table);
	bf_config_free(&d.cfg);
	if (d.epoll_fd >= 0)
		close(d.epoll_fd);
	if (d.signal_fd >= 0)
		close(d.signal_fd);
	if (d.timer_fd >= 0)
		close(d.timer_fd);
	if (d.inotify_fd >= 0)
		close(d.inotify_fd);
	free(d.history);
	if (!ret)
		log_notice("stopped; programs detached");
	return ret ? 1 : 0;
}
