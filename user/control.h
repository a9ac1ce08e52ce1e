/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket: a Unix stream socket where "borderflow status" asks
 * the daemon for its status. A client sends one line with a command and
 * reads one JSON document up to end of file.
 */
#ifndef BORDERFLOW_CONTROL_H
#define BORDERFLOW_CONTROL_H

#include "lib/error.h"

struct bf_control {
	int fd;
	char path[108];
};

/* Creates the socket, mode 0660, replacing a stale one that no daemon listens on. */
int bf_control_open(struct bf_control *ctl, const char *path, struct bf_error *err);

/*
 * Accepts one client and answers it. The client has one second to send its
 * request and to read the answer, so a stuck client delays the event loop
 * by at most about two seconds; counting in the kernel goes on meanwhile.
 */
typedef char *(*bf_control_handler)(const char *request, void *ctx);
void bf_control_serve(struct bf_control *ctl, bf_control_handler handler, void *ctx);

void bf_control_close(struct bf_control *ctl);

#endif
