// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Traffic client for the lab tests, also used as the fake DingTalk client.
 * It sends BYTES bytes of payload to one address and port and nothing else:
 *
 *	tcp            connect, write, shut down the write side, wait for the
 *	               server to close, so every byte has arrived on exit
 *	udp            unconnected sendto() of datagrams of at most 1200 bytes
 *	udp-connected  the same datagrams on a connected socket
 *	mapped         TCP from an AF_INET6 socket with IPV6_V6ONLY=0 to the
 *	               IPv4-mapped address ::ffff:ADDRESS (ADDRESS is IPv4)
 *
 * With --reconnect a TCP socket sends BYTES twice, on two connections to the
 * same peer, with a connect(AF_UNSPEC) between them. With --dstopts every
 * packet that an IPv6 socket sends carries a destination options extension
 * header.
 *
 * On success it prints one line of key=value pairs to stdout (pid, transport,
 * source, sport, destination, dport, bytes) and exits 0. A failed step prints
 * a message to stderr and exits 1, invalid arguments exit 2.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_DATAGRAM_BYTES 1200
#define MAX_TOTAL_BYTES	   (256ul << 20)
#define WRITE_CHUNK_BYTES  16384
#define IO_TIMEOUT_S	   10
/* Pause after each datagram, so a sink on the same machine keeps up without drops. */
#define UDP_PAUSE_NS 200000L

enum mode { MODE_TCP, MODE_UDP, MODE_UDP_CONNECTED, MODE_MAPPED };

struct request {
	enum mode mode;
	const char *address;
	struct sockaddr_storage dest;
	socklen_t dest_len;
	uint16_t port;
	unsigned long bytes;
	unsigned long pause_ms; /* between opening the socket and the first byte */
	unsigned long delay_ms; /* before opening the socket */
	unsigned long repeat;	/* connections (or UDP sockets) made one after the other */
	bool quiet;		/* no result line, for many repeats */
	bool reconnect;		/* TCP: a second connection on the same socket */
	bool dstopts;		/* IPv6: a destination options header on every packet */
};

static char payload[WRITE_CHUNK_BYTES];

static void sleep_ms(unsigned long ms)
{
	struct timespec left = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&left, &left) && errno == EINTR)
		;
}

/* Waits req->pause_ms after the socket is open, so that a test can start the monitor meanwhile. */
static void pause_before_sending(const struct request *req)
{
	sleep_ms(req->pause_ms);
}

/* Prints why a step failed and returns the exit status 1. */
static int fail(const char *step, const struct request *req)
{
	int err = errno;

	/* SO_SNDTIMEO and SO_RCVTIMEO expire as EAGAIN, or EINPROGRESS for connect(). */
	if (err == EAGAIN || err == EINPROGRESS)
		fprintf(stderr, "fakeclient: failed to %s %s port %u: timed out after %d s\n", step,
			req->address, req->port, IO_TIMEOUT_S);
	else
		fprintf(stderr, "fakeclient: failed to %s %s port %u: %s\n", step, req->address,
			req->port, strerror(err));
	return 1;
}

static int parse_mode(const char *text, enum mode *mode)
{
	static const struct {
		const char *name;
		enum mode mode;
	} modes[] = {
		{ "tcp", MODE_TCP },
		{ "udp", MODE_UDP },
		{ "udp-connected", MODE_UDP_CONNECTED },
		{ "mapped", MODE_MAPPED },
	};
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (!strcmp(text, modes[i].name)) {
			*mode = modes[i].mode;
			return 0;
		}
	}
	return -EINVAL;
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

/* Fills req->dest from the address text. Mapped mode turns an IPv4 address into ::ffff:a.b.c.d. */
static int parse_address(struct request *req)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&req->dest;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&req->dest;
	struct in_addr v4;

	memset(&req->dest, 0, sizeof(req->dest));
	if (inet_pton(AF_INET, req->address, &v4) == 1) {
		if (req->mode == MODE_MAPPED) {
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(req->port);
			sin6->sin6_addr.s6_addr[10] = 0xff;
			sin6->sin6_addr.s6_addr[11] = 0xff;
			memcpy(&sin6->sin6_addr.s6_addr[12], &v4, sizeof(v4));
			req->dest_len = sizeof(*sin6);
			return 0;
		}
		sin->sin_family = AF_INET;
		sin->sin_port = htons(req->port);
		sin->sin_addr = v4;
		req->dest_len = sizeof(*sin);
		return 0;
	}
	if (req->mode != MODE_MAPPED && inet_pton(AF_INET6, req->address, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(req->port);
		req->dest_len = sizeof(*sin6);
		return 0;
	}
	return -EINVAL;
}

static void format_sockaddr(const struct sockaddr_storage *ss, char *addr, size_t len,
			    unsigned int *port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, addr, len);
		*port = ntohs(sin->sin_port);
	} else {
		inet_ntop(AF_INET6, &sin6->sin6_addr, addr, len);
		*port = ntohs(sin6->sin6_port);
	}
}

static void print_result(int fd, const struct request *req, const char *transport)
{
	if (req->quiet)
		return;
	char source[INET6_ADDRSTRLEN] = "?", dest[INET6_ADDRSTRLEN] = "?";
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);
	unsigned int sport = 0, dport = 0;

	if (!getsockname(fd, (struct sockaddr *)&local, &len))
		format_sockaddr(&local, source, sizeof(source), &sport);
	format_sockaddr(&req->dest, dest, sizeof(dest), &dport);
	printf("pid=%d transport=%s source=%s sport=%u destination=%s dport=%u bytes=%lu\n",
	       (int)getpid(), transport, source, sport, dest, dport, req->bytes);
	fflush(stdout);
}

static int open_socket(const struct request *req, int type)
{
	struct timeval timeout = { .tv_sec = IO_TIMEOUT_S };
	int fd, off = 0;

	fd = socket(req->dest.ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* Next header (the kernel fills it in), length 0 (8 bytes), a PadN option of 4 bytes. */
	static const uint8_t dstopts[8] = { 0, 0, 1, 4, 0, 0, 0, 0 };

	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) ||
	    (req->mode == MODE_MAPPED &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off))) ||
	    (req->dstopts &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_DSTOPTS, dstopts, sizeof(dstopts)))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int write_all(int fd, unsigned long bytes)
{
	size_t len;
	ssize_t n;

	while (bytes) {
		len = bytes < sizeof(payload) ? bytes : sizeof(payload);
		n = write(fd, payload, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		bytes -= (unsigned long)n;
	}
	return 0;
}

/* Waits for the server to close, so the exit of this process implies the data arrived. */
static int wait_for_close(int fd)
{
	char buf[512];
	ssize_t n;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n == 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* Connects fd, sends the payload and waits for the server to close. Returns 0 or 1. */
static int exchange_tcp(int fd, const struct request *req)
{
	if (connect(fd, (const struct sockaddr *)&req->dest, req->dest_len))
		return fail("connect to", req);
	pause_before_sending(req);
	if (write_all(fd, req->bytes))
		return fail("send to", req);
	if (shutdown(fd, SHUT_WR))
		return fail("shut down the connection to", req);
	if (wait_for_close(fd))
		return fail("wait for the server to close the connection from", req);
	return 0;
}

/* Makes fd unconnected again, so that it can connect once more. */
static int disconnect_tcp(int fd, const struct request *req)
{
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };

	if (connect(fd, &unspec, sizeof(unspec)))
		return fail("disconnect (connect AF_UNSPEC) from", req);
	return 0;
}

static int run_tcp(const struct request *req)
{
	int fd, ret;

	fd = open_socket(req, SOCK_STREAM);
	if (fd < 0)
		return fail("create a socket for", req);
	ret = exchange_tcp(fd, req);
	if (!ret && req->reconnect)
		ret = disconnect_tcp(fd, req) || exchange_tcp(fd, req);
	if (!ret)
		print_result(fd, req, "tcp");
	close(fd);
	return ret;
}

static int run_udp(const struct request *req)
{
	const struct timespec pause = { .tv_nsec = UDP_PAUSE_NS };
	bool connected = req->mode == MODE_UDP_CONNECTED;
	unsigned long left = req->bytes;
	size_t len;
	ssize_t n;
	int fd, ret = 1;

	fd = open_socket(req, SOCK_DGRAM);
	if (fd < 0)
		return fail("create a socket for", req);
	if (connected && connect(fd, (const struct sockaddr *)&req->dest, req->dest_len)) {
		ret = fail("connect to", req);
		goto out;
	}
	pause_before_sending(req);
	while (left) {
		len = left < MAX_DATAGRAM_BYTES ? left : MAX_DATAGRAM_BYTES;
		if (connected)
			n = send(fd, payload, len, 0);
		else
			n = sendto(fd, payload, len, 0, (const struct sockaddr *)&req->dest,
				   req->dest_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = fail("send a datagram to", req);
			goto out;
		}
		if ((size_t)n != len) {
			fprintf(stderr,
				"fakeclient: short datagram to %s port %u: %zd of %zu bytes\n",
				req->address, req->port, n, len);
			goto out;
		}
		left -= len;
		nanosleep(&pause, NULL);
	}
	print_result(fd, req, "udp");
	ret = 0;
out:
	close(fd);
	return ret;
}

static int run_once(const struct request *req)
{
	if (req->mode == MODE_UDP || req->mode == MODE_UDP_CONNECTED)
		return run_udp(req);
	return run_tcp(req);
}

static int run_request(const struct request *req)
{
	unsigned long i;
	int ret = 0;

	sleep_ms(req->delay_ms);
	for (i = 0; i < req->repeat && !ret; i++)
		ret = run_once(req);
	return ret;
}

/* Runs the request in a child process and returns the child's exit status. */
static int run_forked(const struct request *req)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "fakeclient: fork failed: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0)
		_exit(run_request(req));

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "fakeclient: waitpid %d failed: %s\n", (int)pid,
				strerror(errno));
			return 1;
		}
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	fprintf(stderr, "fakeclient: child %d was killed by signal %d\n", (int)pid,
		WTERMSIG(status));
	return 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: fakeclient [--fork] [--delay-ms MS] [--pause-ms MS] [--repeat N]\n"
		"                  [--reconnect] [--dstopts] MODE ADDRESS PORT BYTES\n"
		"\n"
		"Sends BYTES bytes (1-%lu) of payload to ADDRESS PORT and prints one line of\n"
		"key=value results. MODE is one of:\n"
		"  tcp            TCP, waits for the server to close after sending\n"
		"  udp            unconnected UDP, datagrams of at most %d bytes\n"
		"  udp-connected  connected UDP, datagrams of at most %d bytes\n"
		"  mapped         TCP from a dual-stack IPv6 socket to ::ffff:ADDRESS (IPv4)\n"
		"  --fork         send from a forked child; the parent waits for it\n"
		"  --pause-ms MS  wait MS milliseconds (0-60000) between connecting and sending\n"
		"  --delay-ms MS  wait MS milliseconds (0-60000) before opening the socket\n"
		"  --repeat N     do it N times (1-100000), a new socket each time, printing\n"
		"                 one line with the count instead of a result line each\n"
		"  --reconnect    TCP: send BYTES once more on a second connection of the same\n"
		"                 socket, after connect(AF_UNSPEC)\n"
		"  --dstopts      IPv6: a destination options header on every packet sent\n"
		"\n"
		"Example: fakeclient tcp 192.0.2.1 9000 4096\n",
		MAX_TOTAL_BYTES, MAX_DATAGRAM_BYTES, MAX_DATAGRAM_BYTES);
}

int main(int argc, char **argv)
{
	struct request req = { .repeat = 1 };
	unsigned long port;
	bool forked = false;
	int arg = 1, ret;

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	for (; arg < argc && argv[arg][0] == '-' && argv[arg][1] == '-'; arg++) {
		if (!strcmp(argv[arg], "--fork")) {
			forked = true;
		} else if (!strcmp(argv[arg], "--reconnect")) {
			req.reconnect = true;
		} else if (!strcmp(argv[arg], "--dstopts")) {
			req.dstopts = true;
		} else if (!strcmp(argv[arg], "--repeat") && arg + 1 < argc) {
			if (parse_ulong(argv[++arg], 1, 100000, &req.repeat)) {
				fprintf(stderr,
					"fakeclient: invalid repeat count '%s', expected "
					"1-100000\n",
					argv[arg]);
				return 2;
			}
			req.quiet = req.repeat > 1;
		} else if (!strcmp(argv[arg], "--delay-ms") && arg + 1 < argc) {
			if (parse_ulong(argv[++arg], 0, 60000, &req.delay_ms)) {
				fprintf(stderr,
					"fakeclient: invalid delay '%s', expected 0-60000 ms\n",
					argv[arg]);
				return 2;
			}
		} else if (!strcmp(argv[arg], "--pause-ms") && arg + 1 < argc) {
			if (parse_ulong(argv[++arg], 0, 60000, &req.pause_ms)) {
				fprintf(stderr,
					"fakeclient: invalid pause '%s', expected 0-60000 ms\n",
					argv[arg]);
				return 2;
			}
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (argc - arg != 4) {
		usage(stderr);
		return 2;
	}

	if (parse_mode(argv[arg], &req.mode)) {
		fprintf(stderr,
			"fakeclient: invalid mode '%s', expected tcp, udp, udp-connected or "
			"mapped\n",
			argv[arg]);
		return 2;
	}
	if (parse_ulong(argv[arg + 2], 1, 65535, &port)) {
		fprintf(stderr, "fakeclient: invalid port '%s', expected 1-65535\n", argv[arg + 2]);
		return 2;
	}
	req.port = (uint16_t)port;
	if (parse_ulong(argv[arg + 3], 1, MAX_TOTAL_BYTES, &req.bytes)) {
		fprintf(stderr, "fakeclient: invalid byte count '%s', expected 1-%lu\n",
			argv[arg + 3], MAX_TOTAL_BYTES);
		return 2;
	}
	req.address = argv[arg + 1];
	if (parse_address(&req)) {
		fprintf(stderr, "fakeclient: invalid address '%s'%s\n", req.address,
			req.mode == MODE_MAPPED ? ", mapped mode expects an IPv4 address" : "");
		return 2;
	}

	memset(payload, 'b', sizeof(payload));
	ret = forked ? run_forked(&req) : run_request(&req);
	if (!ret && req.quiet)
		printf("repeat=%lu mode=%s destination=%s dport=%u bytes=%lu\n", req.repeat,
		       argv[arg], req.address, (unsigned int)req.port, req.bytes);
	return ret;
}
