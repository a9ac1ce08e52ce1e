// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
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
	struct stat st;
	mode_t mask;
	int ret;

	ctl->fd = -1;
	ctl->stop_fd = -1;
	ctl->running = false;
	if (path[0] != '/')
		return bf_error_set(err, -EINVAL,
				    "control socket path '%s' is not absolute; give a path that "
				    "starts with '/'",
				    path);
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
	if (!lstat(path, &st) && !S_ISSOCK(st.st_mode))
		return bf_error_set(
			err, -EEXIST,
			"control socket path '%s' exists and is not a socket; remove it "
			"or set another [daemon] socket",
			path);
	(void)unlink(path);

	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (ctl->fd < 0)
		return bf_error_set(err, -errno, "failed to create control socket: %s",
				    strerror(errno));
	/* The umask makes bind(2) create the socket with mode 0660 at once. */
	mask = umask(0117);
	ret = bind(ctl->fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(mask);
	if (ret || listen(ctl->fd, 64)) {
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
	return 0;
}

#define CONTROL_DEADLINE_MS 1000

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or the deadline passes. Returns true when ready. */
static bool wait_ready(int fd, short events, int64_t deadline_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int64_t left = deadline_ms - now_ms();

	return left > 0 && poll(&pfd, 1, (int)left) == 1 && (pfd.revents & events);
}

/* Reads one request line before the deadline. The client socket is non-blocking. */
static int read_request(int fd, char *request, size_t size, int64_t deadline_ms)
{
	size_t len = 0;

	while (len < size - 1 && wait_ready(fd, POLLIN, deadline_ms)) {
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

static void write_all(int fd, const char *data, size_t len, int64_t deadline_ms)
{
	while (len && wait_ready(fd, POLLOUT, deadline_ms)) {
		/* MSG_NOSIGNAL: a client that went away must not kill the daemon with SIGPIPE. */
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		data += n;
		len -= n;
	}
}

static void serve_client(int fd, bf_control_handler handler, void *ctx)
{
	char request[REQUEST_MAX];
	char *answer;

	if (read_request(fd, request, sizeof(request), now_ms() + CONTROL_DEADLINE_MS))
		return;
	answer = handler(request, ctx);
	if (!answer)
		return;
	write_all(fd, answer, strlen(answer), now_ms() + CONTROL_DEADLINE_MS);
	free(answer);
}

struct control_thread_args {
	struct bf_control *ctl;
	bf_control_handler handler;
	void *ctx;
};

static struct control_thread_args thread_args;

static void *control_thread(void *arg)
{
	struct control_thread_args *args = arg;
	struct pollfd pfds[2] = {
		{ .fd = args->ctl->fd, .events = POLLIN },
		{ .fd = args->ctl->stop_fd, .events = POLLIN },
	};

	for (;;) {
		int fd;

		if (poll(pfds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("control socket: poll failed: %s; status is no longer answered",
				strerror(errno));
			return NULL;
		}
		if (pfds[1].revents)
			return NULL;
		fd = accept4(args->ctl->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			continue;
		serve_client(fd, args->handler, args->ctx);
		close(fd);
	}
}

int bf_control_start(struct bf_control *ctl, bf_control_handler handler, void *ctx)
{
	int ret;

	ctl->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ctl->stop_fd < 0)
		return -errno;
	thread_args = (struct control_thread_args){ .ctl = ctl, .handler = handler, .ctx = ctx };
	ret = pthread_create(&ctl->thread, NULL, control_thread, &thread_args);
	if (ret)
		return -ret;
	ctl->running = true;
	return 0;
}

void bf_control_close(struct bf_control *ctl)
{
	uint64_t one = 1;

	if (ctl->running) {
		if (write(ctl->stop_fd, &one, sizeof(one)) == sizeof(one))
			pthread_join(ctl->thread, NULL);
		ctl->running = false;
	}
	if (ctl->stop_fd >= 0)
		close(ctl->stop_fd);
	ctl->stop_fd = -1;
	if (ctl->fd < 0)
		return;
	close(ctl->fd);
	ctl->fd = -1;
	(void)unlink(ctl->path);
}
