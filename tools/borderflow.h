/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef BORDERFLOW_TOOL_H
#define BORDERFLOW_TOOL_H

/* Subcommands: each takes the arguments after its name and returns the exit status. */
int cmd_status(int argc, char **argv);
int cmd_geo(int argc, char **argv);
int cmd_check_config(int argc, char **argv);

/* Prints "borderflow: " and the message to stderr. */
void tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
