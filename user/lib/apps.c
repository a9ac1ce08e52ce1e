// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "apps.h"

int bf_app_path_check(const struct bf_config *cfg, const struct bf_app_config *app,
		      const char *path, struct stat *st, struct bf_error *err)
{
	size_t len = strlen(path);
	bool folder = len && path[len - 1] == '/';

	if (stat(path, st)) {
		if (errno == ENOENT)
			return -ENOENT;
		return bf_error_set(err, -errno, "config file '%s' [app %s] path '%s': %s",
				    cfg->path, app->name, path, strerror(errno));
	}
	if (folder && !S_ISDIR(st->st_mode))
		return bf_error_set(
			err, -ENOTDIR,
			"config file '%s' [app %s] path '%s' is not a folder; remove the "
			"trailing '/' to watch one executable file",
			cfg->path, app->name, path);
	if (!folder && S_ISDIR(st->st_mode))
		return bf_error_set(
			err, -EISDIR,
			"config file '%s' [app %s] path '%s' is a folder; end it with '/' "
			"to watch every executable below it",
			cfg->path, app->name, path);
	if (!folder && (!S_ISREG(st->st_mode) || !(st->st_mode & (S_IXUSR | S_IXGRP | S_IXOTH))))
		return bf_error_set(
			err, -EINVAL,
			"config file '%s' [app %s] path '%s' is not an executable file; "
			"name the program, or a folder ending in '/'",
			cfg->path, app->name, path);
	return 0;
}
