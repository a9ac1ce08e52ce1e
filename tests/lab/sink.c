// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Traffic sink for the lab tests. It runs in the server network namespace,
 * accepts TCP and UDP on the given ports on "::" (dual-stack), or on the
 * address of --address, and counts the
 * bytes it receives per transport, local address, local port and peer
 * address. The summary file contains one line per key:
 *
 *	transport local_address local_port peer_address bytes count
 *
 * where count is the number of TCP connections or UDP datagrams. IPv4 peers
 * are written in dotted form, not as IPv4-mapped IPv6 addresses.
 *
 * SIGUSR1 writes the summary and keeps running. SIGTERM, SIGINT and the
 * --timeout deadline drain the sockets, write the summary and exit 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS	  8
#define MAX_CONNS	  256
#define MAX_KEYS	  1024
#define MAX_EVENTS	  64
#define DEFAULT_TIMEOUT_S 120
#define MAX_TIMEOUT_S	  3600
#define UDP_RCVBUF_BYTES  (4 << 20)
#define READ_BUF_BYTES	  65536

enum transport { TRANSPORT_TCP, TRANSPORT_UDP };

/* Bytes and connections or datagrams received for one key. */
struct counter {
	enum transport transport;
	struct in6_addr local;
	uint16_t local_port;
	struct in6_addr peer;
	uint64_t bytes;
	uint64_t count;
};

struct conn {
	int fd; /* -1 when the slot is free */
	struct counter *counter;
};

/* What an epoll event refers to: a listener, a UDP socket, a connection or the signalfd. */
enum source_kind { SOURCE_LISTENER, SOURCE_UDP, SOURCE_CONN, SOURCE_SIGNAL };

struct source {
	enum source_kind kind;
	int fd;
	uint16_t port; /* local port of a UDP socket */
	struct conn *conn;
};

struct sink {
	int epoll_fd;
	int nr_ports;
	struct source listeners[MAX_PORTS];
	struct source udp[MAX_PORTS];
	struct source signal;
	struct conn conns[MAX_CONNS];
	struct source conn_sources[MAX_CONNS];
	struct counter counters[MAX_KEYS];
	int nr_counters;
	uint64_t rejected_conns;
	uint64_t overflow_bytes;
	struct in6_addr address; /* to listen on; IPv4 as IPv4-mapped */
	const char *out_path;
	char buf[READ_BUF_BYTES];
};

/* Prints "sink: MESSAGE: strerror(errno)" and returns -errno, saved before printing. */
static int report_errno(const char *message)
{
	int err = errno;

	fprintf(stderr, "sink: %s: %s\n", message, strerror(err));
	return -err;
}

static const char *transport_name(enum transport t)
{
	return t == TRANSPORT_TCP ? "tcp" : "udp";
}

static void format_addr(const struct in6_addr *addr, char *out, size_t len)
{
	if (IN6_IS_ADDR_V4MAPPED(addr))
		inet_ntop(AF_INET, &addr->s6_addr[12], out, len);
	else
		inet_ntop(AF_INET6, addr, out, len);
}

/* Finds or adds the counter of a key. Returns NULL when the table is full. */
static struct counter *counter_get(struct sink *s, enum transport t, const struct in6_addr *local,
				   uint16_t local_port, const struct in6_addr *peer)
{
	struct counter *c;
	int i;

	for (i = 0; i < s->nr_counters; i++) {
		c = &s->counters[i];
		if (c->transport == t && c->local_port == local_port &&
		    !memcmp(&c->local, local, sizeof(*local)) &&
		    !memcmp(&c->peer, peer, sizeof(*peer)))
			return c;
	}
	if (s->nr_counters == MAX_KEYS)
		return NULL;

	c = &s->counters[s->nr_counters++];
	c->transport = t;
	c->local = *local;
	c->local_port = local_port;
	c->peer = *peer;
	return c;
}

static int write_summary(const struct sink *s)
{
	char tmp_path[PATH_MAX], local[INET6_ADDRSTRLEN], peer[INET6_ADDRSTRLEN];
	const struct counter *c;
	FILE *f;
	int i, n, err;

	n = snprintf(tmp_path, sizeof(tmp_path), "%s.tmp", s->out_path);
	if (n < 0 || (size_t)n >= sizeof(tmp_path)) {
		fprintf(stderr, "sink: output path '%s' is too long\n", s->out_path);
		return -ENAMETOOLONG;
	}
	f = fopen(tmp_path, "we");
	if (!f) {
		err = -errno;
		fprintf(stderr, "sink: failed to open '%s': %s\n", tmp_path, strerror(-err));
		return err;
	}

	fprintf(f, "# transport local_address local_port peer_address bytes count\n");
	for (i = 0; i < s->nr_counters; i++) {
		c = &s->counters[i];
		format_addr(&c->local, local, sizeof(local));
		format_addr(&c->peer, peer, sizeof(peer));
		fprintf(f, "%s %s %u %s %" PRIu64 " %" PRIu64 "\n", transport_name(c->transport),
			local, c->local_port, peer, c->bytes, c->count);
	}
	fprintf(f, "# rejected_connections %" PRIu64 "\n", s->rejected_conns);
	fprintf(f, "# uncounted_bytes %" PRIu64 "\n", s->overflow_bytes);

	if (ferror(f) || fclose(f)) {
		fprintf(stderr, "sink: failed to write '%s'\n", tmp_path);
		return -EIO;
	}
	if (rename(tmp_path, s->out_path)) {
		err = -errno;
		fprintf(stderr, "sink: failed to rename '%s' to '%s': %s\n", tmp_path, s->out_path,
			strerror(-err));
		return err;
	}
	return 0;
}

static int epoll_add(struct sink *s, struct source *src)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = src };

	if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, src->fd, &ev))
		return report_errno("epoll_ctl failed");
	return 0;
}

static int open_socket(int type, const struct in6_addr *address, uint16_t port)
{
	struct sockaddr_in6 addr = {
		.sin6_family = AF_INET6,
		.sin6_addr = *address,
		.sin6_port = htons(port),
	};
	int fd, err, off = 0, on = 1, rcvbuf = UDP_RCVBUF_BYTES;
	const char *name = type == SOCK_STREAM ? "tcp" : "udp";

	fd = socket(AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return report_errno(type == SOCK_STREAM ? "failed to create tcp socket"
							: "failed to create udp socket");
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)))
		goto fail;
	if (type == SOCK_DGRAM &&
	    (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on)) ||
	     setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf))))
		goto fail;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)))
		goto fail;
	if (type == SOCK_STREAM && listen(fd, 128))
		goto fail;
	return fd;

fail:
	err = -errno;
	fprintf(stderr, "sink: failed to set up %s socket on port %u: %s\n", name, port,
		strerror(-err));
	close(fd);
	return err;
}

static void conn_close(struct sink *s, struct conn *c)
{
	(void)epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->counter = NULL;
}

static void conn_read(struct sink *s, struct conn *c)
{
	ssize_t n;

	for (;;) {
		n = read(c->fd, s->buf, sizeof(s->buf));
		if (n > 0) {
			if (c->counter)
				c->counter->bytes += (uint64_t)n;
			else
				s->overflow_bytes += (uint64_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0)
			fprintf(stderr, "sink: read failed, closing connection: %s\n",
				strerror(errno));
		conn_close(s, c);
		return;
	}
}

static struct conn *conn_slot(struct sink *s)
{
	int i;

	for (i = 0; i < MAX_CONNS; i++)
		if (s->conns[i].fd < 0)
			return &s->conns[i];
	return NULL;
}

static void accept_all(struct sink *s, int listen_fd)
{
	struct sockaddr_in6 peer, local;
	socklen_t peer_len, local_len;
	struct conn *c;
	int fd;

	for (;;) {
		peer_len = sizeof(peer);
		fd = accept4(listen_fd, (struct sockaddr *)&peer, &peer_len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				fprintf(stderr, "sink: accept failed: %s\n", strerror(errno));
			return;
		}

		local_len = sizeof(local);
		c = conn_slot(s);
		if (!c || getsockname(fd, (struct sockaddr *)&local, &local_len)) {
			s->rejected_conns++;
			close(fd);
			continue;
		}
		c->fd = fd;
		c->counter = counter_get(s, TRANSPORT_TCP, &local.sin6_addr, ntohs(local.sin6_port),
					 &peer.sin6_addr);
		if (c->counter)
			c->counter->count++;

		s->conn_sources[c - s->conns] =
			(struct source){ .kind = SOURCE_CONN, .fd = fd, .conn = c };
		if (epoll_add(s, &s->conn_sources[c - s->conns])) {
			s->rejected_conns++;
			close(fd);
			c->fd = -1;
			continue;
		}
		conn_read(s, c);
	}
}

/* Returns the destination address of a datagram from its IPV6_PKTINFO message. */
static bool datagram_local(struct msghdr *msg, struct in6_addr *local)
{
	struct cmsghdr *cm;
	struct in6_pktinfo info;

	for (cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
		if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
			memcpy(&info, CMSG_DATA(cm), sizeof(info));
			*local = info.ipi6_addr;
			return true;
		}
	}
	return false;
}

static void udp_read(struct sink *s, int fd, uint16_t port)
{
	char control[CMSG_SPACE(sizeof(struct in6_pktinfo))];
	struct in6_addr local;
	struct sockaddr_in6 peer;
	struct iovec iov = { .iov_base = s->buf, .iov_len = sizeof(s->buf) };
	struct msghdr msg;
	struct counter *c;
	ssize_t n;

	for (;;) {
		msg = (struct msghdr){
			.msg_name = &peer,
			.msg_namelen = sizeof(peer),
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = control,
			.msg_controllen = sizeof(control),
		};
		n = recvmsg(fd, &msg, 0);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				fprintf(stderr, "sink: recvmsg failed: %s\n", strerror(errno));
			return;
		}
		if (!datagram_local(&msg, &local))
			local = in6addr_any;

		c = counter_get(s, TRANSPORT_UDP, &local, port, &peer.sin6_addr);
		if (!c) {
			s->overflow_bytes += (uint64_t)n;
			continue;
		}
		c->bytes += (uint64_t)n;
		c->count++;
	}
}

/* Reads whatever is queued on every socket, so a stop does not lose received data. */
static void drain(struct sink *s)
{
	int i;

	for (i = 0; i < s->nr_ports; i++) {
		accept_all(s, s->listeners[i].fd);
		udp_read(s, s->udp[i].fd, s->udp[i].port);
	}
	for (i = 0; i < MAX_CONNS; i++)
		if (s->conns[i].fd >= 0)
			conn_read(s, &s->conns[i]);
}

/* Returns 1 to keep running, 0 to stop, or a negative errno. */
static int handle_signal(struct sink *s)
{
	struct signalfd_siginfo info;
	ssize_t n;

	n = read(s->signal.fd, &info, sizeof(info));
	if (n != sizeof(info))
		return 1;
	if (info.ssi_signo == SIGUSR1) {
		drain(s);
		return write_summary(s) ? -EIO : 1;
	}
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int run(struct sink *s, int timeout_s)
{
	struct epoll_event events[MAX_EVENTS];
	int64_t deadline_ms = now_ms() + (int64_t)timeout_s * 1000;
	struct source *src;
	int i, n, ret;

	for (;;) {
		int64_t left_ms = deadline_ms - now_ms();

		if (left_ms <= 0) {
			fprintf(stderr, "sink: stopping after the %d s timeout\n", timeout_s);
			return 0;
		}
		n = epoll_wait(s->epoll_fd, events, MAX_EVENTS, (int)left_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return report_errno("epoll_wait failed");
		for (i = 0; i < n; i++) {
			src = events[i].data.ptr;
			switch (src->kind) {
			case SOURCE_LISTENER:
				accept_all(s, src->fd);
				break;
			case SOURCE_UDP:
				udp_read(s, src->fd, src->port);
				break;
			case SOURCE_CONN:
				if (src->conn->fd >= 0)
					conn_read(s, src->conn);
				break;
			case SOURCE_SIGNAL:
				ret = handle_signal(s);
				if (ret <= 0)
					return ret;
				break;
			}
		}
	}
}

static int setup(struct sink *s, const uint16_t *ports)
{
	sigset_t mask;
	int i, fd;

	s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epoll_fd < 0)
		return report_errno("epoll_create1 failed");

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return report_errno("sigprocmask failed");
	fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return report_errno("signalfd failed");
	s->signal = (struct source){ .kind = SOURCE_SIGNAL, .fd = fd };
	if (epoll_add(s, &s->signal))
		return -EIO;

	for (i = 0; i < MAX_CONNS; i++)
		s->conns[i].fd = -1;

	for (i = 0; i < s->nr_ports; i++) {
		fd = open_socket(SOCK_STREAM, &s->address, ports[i]);
		if (fd < 0)
			return fd;
		s->listeners[i] = (struct source){ .kind = SOURCE_LISTENER, .fd = fd };
		fd = open_socket(SOCK_DGRAM, &s->address, ports[i]);
		if (fd < 0)
			return fd;
		s->udp[i] = (struct source){ .kind = SOURCE_UDP, .fd = fd, .port = ports[i] };
		if (epoll_add(s, &s->listeners[i]) || epoll_add(s, &s->udp[i]))
			return -EIO;
	}
	return 0;
}

static int parse_uint(const char *text, unsigned long min, unsigned long max, unsigned long *out)
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
		"Usage: sink --port PORT [--port PORT ...] --out FILE [--timeout SECONDS]\n"
		"            [--address ADDRESS]\n"
		"\n"
		"Counts TCP and UDP bytes received on each PORT (at most %d ports) on \"::\".\n"
		"  --port PORT        TCP and UDP port to listen on, 1-65535\n"
		"  --address ADDRESS  IPv4 or IPv6 address to listen on instead of \"::\"\n"
		"  --out FILE         summary file, rewritten on SIGUSR1 and at exit\n"
		"  --timeout SECONDS  stop after this many seconds, 1-%d (default %d)\n"
		"\n"
		"Example: sink --port 9000 --out /tmp/sink.txt --timeout 60\n",
		MAX_PORTS, MAX_TIMEOUT_S, DEFAULT_TIMEOUT_S);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "out", required_argument, NULL, 'o' },
		{ "timeout", required_argument, NULL, 't' },
		{ "address", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	static struct sink s;
	uint16_t ports[MAX_PORTS];
	unsigned long value, timeout_s = DEFAULT_TIMEOUT_S;
	int opt, ret;

	s.address = in6addr_any;
	while ((opt = getopt_long(argc, argv, "p:o:t:a:h", options, NULL)) != -1) {
		switch (opt) {
		case 'a': {
			struct in_addr v4;

			if (inet_pton(AF_INET, optarg, &v4) == 1) {
				memset(&s.address, 0, sizeof(s.address));
				s.address.s6_addr[10] = 0xff;
				s.address.s6_addr[11] = 0xff;
				memcpy(&s.address.s6_addr[12], &v4, 4);
			} else if (inet_pton(AF_INET6, optarg, &s.address) != 1) {
				fprintf(stderr, "sink: invalid address '%s', expected IPv4 or IPv6\n",
					optarg);
				return 2;
			}
			break;
		}
		case 'p':
			if (s.nr_ports == MAX_PORTS) {
				fprintf(stderr, "sink: at most %d ports are supported\n",
					MAX_PORTS);
				return 2;
			}
			if (parse_uint(optarg, 1, 65535, &value)) {
				fprintf(stderr, "sink: invalid port '%s'\n", optarg);
				return 2;
			}
			ports[s.nr_ports++] = (uint16_t)value;
			break;
		case 'o':
			s.out_path = optarg;
			break;
		case 't':
			if (parse_uint(optarg, 1, MAX_TIMEOUT_S, &timeout_s)) {
				fprintf(stderr,
					"sink: invalid timeout '%s', expected 1-%d seconds\n",
					optarg, MAX_TIMEOUT_S);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !s.nr_ports || !s.out_path) {
		usage(stderr);
		return 2;
	}

	if (setup(&s, ports))
		return 1;
	ret = run(&s, (int)timeout_s);
	if (ret)
		return 1;
	drain(&s);
	return write_summary(&s) ? 1 : 0;
}
