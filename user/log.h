/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef BORDERFLOW_LOG_H
#define BORDERFLOW_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* Levels are syslog's: LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG. */
void bf_log_init(int max_level, bool use_syslog);
void bf_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Routes libbpf's own messages through bf_log, one level below their own. */
void bf_log_route_libbpf(void);

#define log_err(...)	bf_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...)	bf_log(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) bf_log(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)	bf_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	bf_log(LOG_DEBUG, __VA_ARGS__)

#endif
