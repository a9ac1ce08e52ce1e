// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "log.h"

#define REQUEST_MAX 256

static int make_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0750) && errno != EEXIST)
		return -errno;
	return 0;
}

/* True when a daemon answers on path: then it must not be replaced. */
static bool socket_is_live(const struct sockaddr_un *addr)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return false;
	live = !connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	close(fd);
	return live;
}

int bf_control_open(struct bf_control *ctl, const char *path, struct bf_error *err)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct group *group;
	int ret;

	ctl->fd = -1;
	if (strlen(path) >= sizeof(addr.sun_path))
		return bf_error_set(err, -ENAMETOOLONG,
				    "control socket path '%s' is longer than %zu bytes", path,
				    sizeof(addr.sun_path) - 1);
	strcpy(addr.sun_path, path);
	strcpy(ctl->path, path);

	ret = make_parent(path);
	if (ret)
		return bf_error_set(err, ret,
				    "failed to create the folder of control socket '%s': %s", path,
				    strerror(-ret));
	if (socket_is_live(&addr))
		return bf_error_set(err, -EADDRINUSE,
				    "another borderflowd already listens on '%s'; stop it or set "
				    "another [daemon] socket",
				    path);
	(void)unlink(path);

	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (ctl->fd < 0)
		return bf_error_set(err, -errno, "failed to create control socket: %s",
				    strerror(errno));
	if (bind(ctl->fd, (struct sockaddr *)&addr, sizeof(addr)) || listen(ctl->fd, 16)) {
		ret = -errno;
		close(ctl->fd);
		ctl->fd = -1;
		return bf_error_set(err, ret, "failed to listen on control socket '%s': %s", path,
				    strerror(-ret));
	}
	/* Readable by root and the borderflow group only: status names applications. */
	group = getgrnam("borderflow");
	if (group && chown(path, 0, group->gr_gid))
		log_warn("failed to give control socket '%s' to group borderflow: %s, ignoring",
			 path, strerror(errno));
	if (chmod(path, 0660))
		log_warn("failed to set mode of control socket '%s': %s, ignoring", path,
			 strerror(errno));
	return 0;
}

static void set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = 1 };

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int read_request(int fd, char *request, size_t size)
{
	size_t len = 0;

	while (len < size - 1) {
		ssize_t n = read(fd, request + len, size - 1 - len);

		if (n <= 0)
			break;
		len += n;
		if (memchr(request, '\n', len))
			break;
	}
	request[len] = '\0';
	request[strcspn(request, "\r\n")] = '\0';
	return len ? 0 : -EIO;
}

static void write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);

		if (n <= 0)
			return;
		data += n;
		len -= n;
	}
}

void bf_control_serve(struct bf_control *ctl, bf_control_handler handler, void *ctx)
{
	char request[REQUEST_MAX];
	char *answer;
	int fd;

	fd = accept4(ctl->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	set_timeouts(fd);
	if (!read_request(fd, request, sizeof(request))) {
		answer = handler(request, ctx);
		if (answer) {
			write_all(fd, answer, strlen(answer));
			free(answer);
		}
	}
	close(fd);
}

void bf_control_close(struct bf_control *ctl)
{
	if (ctl->fd < 0)
		return;
	close(ctl->fd);
	ctl->fd = -1;
	(void)unlink(ctl->path);
}
