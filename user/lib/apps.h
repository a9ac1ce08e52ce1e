/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef BORDERFLOW_APPS_H
#define BORDERFLOW_APPS_H

#include <sys/stat.h>

#include "config.h"

/*
 * Checks one "path =" entry of an [app NAME] section and fills st. An
 * entry ending in '/' must be a folder, any other an executable regular
 * file. Returns 0; -ENOENT without a message when the path does not exist,
 * which the caller may accept, because a watched application need not be
 * installed; or a negative errno with err naming the config file, the
 * application and the path.
 */
int bf_app_path_check(const struct bf_config *cfg, const struct bf_app_config *app,
		      const char *path, struct stat *st, struct bf_error *err);

#endif
