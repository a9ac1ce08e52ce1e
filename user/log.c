// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <bpf/libbpf.h>

#include "log.h"

static int log_max_level = LOG_NOTICE;
static bool log_syslog;

void bf_log_init(int max_level, bool use_syslog)
{
	log_max_level = max_level;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog("borderflowd", LOG_PID, LOG_DAEMON);
}

static void log_va(int level, const char *fmt, va_list ap)
{
	static const char *const names[] = {
		[LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
		[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
	};

	struct timespec now;
	char stamp[32];
	struct tm tm;

	if (level > log_max_level)
		return;
	if (log_syslog) {
		vsyslog(level, fmt, ap);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ borderflowd: %s: ", stamp, now.tv_nsec / 1000000,
		level <= LOG_DEBUG && names[level] ? names[level] : "log");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void bf_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_va(level, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	int mapped = level == LIBBPF_WARN   ? LOG_NOTICE
		     : level == LIBBPF_INFO ? LOG_INFO
					    : LOG_DEBUG;
	char line[1024];
	size_t len;

	if (mapped > log_max_level)
		return 0;
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	len = strlen(line);
	while (len && line[len - 1] == '\n')
		line[--len] = '\0';
	bf_log(mapped, "libbpf: %s", line);
	return 0;
}

void bf_log_route_libbpf(void)
{
	(void)libbpf_set_print(libbpf_print);
}
