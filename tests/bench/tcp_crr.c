// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * TCP connect/request/response benchmark, as netperf's TCP_CRR test does it:
 * every transaction opens a new connection, sends a 1-byte request, reads the
 * 1-byte response and the end of the stream, and closes.
 *
 *	tcp_crr server --address ADDR --port PORT [--timeout SECONDS]
 *	tcp_crr client --address ADDR --port PORT --seconds SECONDS [--max-connections N]
 *
 * The server closes each connection first, right after the response, so the
 * TIME_WAIT state stays on the server side and the client does not run out of
 * ephemeral ports. The client prints one line:
 *
 *	connections=N errors=N seconds=S rate=R
 *
 * where rate is completed connections per second. Both sides stop by
 * themselves: the server after --timeout, the client after --seconds or
 * --max-connections, and the client after too many errors in a row.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SERVER_TIMEOUT_S 600
#define MAX_TIMEOUT_S            3600
#define MAX_CLIENT_SECONDS       600
#define DEFAULT_MAX_CONNECTIONS  100000000UL
#define MAX_ERRORS_IN_ROW        100
#define SOCKET_TIMEOUT_MS        2000
#define LISTEN_BACKLOG           1024

struct options {
	const char *mode;
	const char *address;
	const char *port;
	unsigned long timeout_s;
	unsigned long seconds;
	unsigned long max_connections;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int resolve(const struct options *o, struct sockaddr_storage *addr, socklen_t *len)
{
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC,
	    .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
	};
	struct addrinfo *res;
	int ret;

	ret = getaddrinfo(o->address, o->port, &hints, &res);
	if (ret) {
		fprintf(stderr, "tcp_crr: invalid address '%s' or port '%s': %s\n", o->address,
		        o->port, gai_strerror(ret));
		return -EINVAL;
	}
	memcpy(addr, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void set_timeouts(int fd)
{
	struct timeval tv = {
	    .tv_sec = SOCKET_TIMEOUT_MS / 1000,
	    .tv_usec = (SOCKET_TIMEOUT_MS % 1000) * 1000,
	};

	/* SO_SNDTIMEO also bounds connect() on Linux. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int listen_on(const struct sockaddr_storage *addr, socklen_t len)
{
	int fd, err, on = 1;

	fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		fprintf(stderr, "tcp_crr: failed to create socket: %s\n", strerror(-err));
		return err;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) ||
	    bind(fd, (const struct sockaddr *)addr, len) || listen(fd, LISTEN_BACKLOG)) {
		err = -errno;
		fprintf(stderr, "tcp_crr: failed to listen: %s\n", strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

/* Reads the request, sends the response and closes, so the TIME_WAIT state stays on the server. */
static void serve_one(int fd)
{
	char byte;

	set_timeouts(fd);
	if (read(fd, &byte, 1) == 1)
		(void)!write(fd, &byte, 1);
	close(fd);
}

static int run_server(const struct options *o)
{
	struct sockaddr_storage addr;
	double deadline;
	socklen_t len;
	int listen_fd, fd, ret;

	ret = resolve(o, &addr, &len);
	if (ret)
		return ret;
	listen_fd = listen_on(&addr, len);
	if (listen_fd < 0)
		return listen_fd;

	deadline = now_s() + (double)o->timeout_s;
	for (;;) {
		struct pollfd pfd = {.fd = listen_fd, .events = POLLIN};
		double left = deadline - now_s();

		if (left <= 0) {
			fprintf(stderr, "tcp_crr: server stopping after the %lu s timeout\n",
			        o->timeout_s);
			break;
		}
		ret = poll(&pfd, 1, left > 1.0 ? 1000 : (int)(left * 1000) + 1);
		if (ret < 0 && errno != EINTR) {
			ret = -errno;
			fprintf(stderr, "tcp_crr: poll failed: %s\n", strerror(-ret));
			close(listen_fd);
			return ret;
		}
		if (ret <= 0)
			continue;
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				fprintf(stderr, "tcp_crr: accept failed: %s\n", strerror(errno));
			continue;
		}
		serve_one(fd);
	}
	close(listen_fd);
	return 0;
}

/* Runs one transaction. Returns 0, or a negative errno naming the failed step in *step. */
static int transact(const struct sockaddr_storage *addr, socklen_t len, const char **step)
{
	char byte = 'x';
	ssize_t n;
	int fd, err;

	*step = "socket";
	fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	set_timeouts(fd);

	*step = "connect";
	if (connect(fd, (const struct sockaddr *)addr, len))
		goto fail;
	*step = "write";
	if (write(fd, &byte, 1) != 1)
		goto fail;
	*step = "read";
	if (read(fd, &byte, 1) != 1)
		goto fail;
	/* Wait for the server's FIN, so that the server closes first. */
	*step = "read end of stream";
	n = read(fd, &byte, 1);
	if (n != 0) {
		if (n > 0)
			errno = EPROTO;
		goto fail;
	}
	close(fd);
	return 0;

fail:
	err = errno ? -errno : -EIO;
	close(fd);
	return err;
}

static int run_client(const struct options *o)
{
	struct sockaddr_storage addr;
	unsigned long done = 0, errors = 0, errors_in_row = 0;
	double start, deadline, elapsed;
	const char *step;
	socklen_t len;
	int ret;

	ret = resolve(o, &addr, &len);
	if (ret)
		return ret;

	start = now_s();
	deadline = start + (double)o->seconds;
	while (done < o->max_connections && now_s() < deadline) {
		errno = 0;
		ret = transact(&addr, len, &step);
		if (!ret) {
			done++;
			errors_in_row = 0;
			continue;
		}
		errors++;
		if (++errors_in_row == MAX_ERRORS_IN_ROW) {
			fprintf(stderr,
			        "tcp_crr: %d transactions in a row failed, last at %s: %s\n",
			        MAX_ERRORS_IN_ROW, step, strerror(-ret));
			return -EIO;
		}
	}
	elapsed = now_s() - start;

	printf("connections=%lu errors=%lu seconds=%.3f rate=%.1f\n", done, errors, elapsed,
	       elapsed > 0 ? (double)done / elapsed : 0.0);
	return 0;
}

static int parse_ulong(const char *text, unsigned long min, unsigned long max, unsigned long *out)
{
	unsigned long value;
	char *end;

	errno = 0;
	value = strtoul(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || value < min || value > max)
		return -EINVAL;
	*out = value;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: tcp_crr server --address ADDR --port PORT [--timeout SECONDS]\n"
	        "       tcp_crr client --address ADDR --port PORT --seconds SECONDS"
	        " [--max-connections N]\n"
	        "\n"
	        "Measures TCP connections per second, one 1-byte request and response each.\n"
	        "  --address ADDR         numeric IPv4 or IPv6 address to listen on or connect to\n"
	        "  --port PORT            TCP port\n"
	        "  --timeout SECONDS      server: stop after this many seconds, 1-%d (default %d)\n"
	        "  --seconds SECONDS      client: run for this many seconds, 1-%d\n"
	        "  --max-connections N    client: stop after N connections (default %lu)\n"
	        "\n"
	        "Example: tcp_crr client --address 198.51.100.1 --port 7001 --seconds 5\n",
	        MAX_TIMEOUT_S, DEFAULT_SERVER_TIMEOUT_S, MAX_CLIENT_SECONDS,
	        DEFAULT_MAX_CONNECTIONS);
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option long_options[] = {
	    {"address", required_argument, NULL, 'a'},
	    {"port", required_argument, NULL, 'p'},
	    {"timeout", required_argument, NULL, 't'},
	    {"seconds", required_argument, NULL, 's'},
	    {"max-connections", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "a:p:t:s:n:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'a':
			o->address = optarg;
			break;
		case 'p':
			o->port = optarg;
			break;
		case 't':
			if (parse_ulong(optarg, 1, MAX_TIMEOUT_S, &o->timeout_s)) {
				fprintf(stderr, "tcp_crr: invalid timeout '%s', expected 1-%d\n",
				        optarg, MAX_TIMEOUT_S);
				return -EINVAL;
			}
			break;
		case 's':
			if (parse_ulong(optarg, 1, MAX_CLIENT_SECONDS, &o->seconds)) {
				fprintf(stderr, "tcp_crr: invalid seconds '%s', expected 1-%d\n",
				        optarg, MAX_CLIENT_SECONDS);
				return -EINVAL;
			}
			break;
		case 'n':
			if (parse_ulong(optarg, 1, DEFAULT_MAX_CONNECTIONS, &o->max_connections)) {
				fprintf(stderr,
				        "tcp_crr: invalid max-connections '%s', expected 1-%lu\n",
				        optarg, DEFAULT_MAX_CONNECTIONS);
				return -EINVAL;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind + 1 != argc || !o->address || !o->port) {
		usage(stderr);
		return -EINVAL;
	}
	o->mode = argv[optind];
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = {
	    .timeout_s = DEFAULT_SERVER_TIMEOUT_S,
	    .max_connections = DEFAULT_MAX_CONNECTIONS,
	};

	/* Options may come before or after the mode word. */
	if (parse_options(argc, argv, &o))
		return 2;

	if (!strcmp(o.mode, "server"))
		return run_server(&o) ? 1 : 0;
	if (!strcmp(o.mode, "client")) {
		if (!o.seconds) {
			fprintf(stderr, "tcp_crr: client needs --seconds\n");
			return 2;
		}
		return run_client(&o) ? 1 : 0;
	}
	fprintf(stderr, "tcp_crr: unknown mode '%s', expected server or client\n", o.mode);
	return 2;
}
