/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef BORDERFLOW_ERROR_H
#define BORDERFLOW_ERROR_H

/*
 * The message of a failed library call. Library code does not print: it
 * fills one of these and returns a negative errno, and the caller decides
 * where the message goes.
 */
struct bf_error {
	char msg[512];
};

/* Formats err->msg (when err is not NULL) and returns ret, a negative errno. */
int bf_error_set(struct bf_error *err, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
