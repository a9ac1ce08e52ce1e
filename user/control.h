/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket: a Unix stream socket where "borderflow status" asks
 * the daemon for its status. A client sends one line with a command and
 * reads one JSON document up to end of file.
 */
#ifndef BORDERFLOW_CONTROL_H
#define BORDERFLOW_CONTROL_H

#include <pthread.h>
#include <stdbool.h>

#include "lib/error.h"

struct bf_control {
	int fd;
	int stop_fd; /* eventfd that ends the thread */
	bool running;
	pthread_t thread;
	char path[108];
};

/* Creates the socket, mode 0660, replacing a stale one that no daemon listens on. */
int bf_control_open(struct bf_control *ctl, const char *path, struct bf_error *err);

/*
 * Answers a request line with a malloc'ed document, or NULL to close the
 * connection without an answer. Runs on the control thread.
 */
typedef char *(*bf_control_handler)(const char *request, void *ctx);

/*
 * Starts the thread that accepts and answers clients one at a time. Each
 * client has CONTROL_DEADLINE_MS in all to send its request and again to
 * read the answer, so a slow client delays other clients, never the event
 * loop: counting, alerts and signals go on meanwhile.
 */
int bf_control_start(struct bf_control *ctl, bf_control_handler handler, void *ctx);

/* Stops the thread, if started, and removes the socket. */
void bf_control_close(struct bf_control *ctl);

#endif
