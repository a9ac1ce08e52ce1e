// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "borderflow.h"
#include "user/lib/config.h"

#define ANSWER_MAX (64u << 20)

/* Sends request to the daemon and returns its whole response, or NULL after printing the error. */
static char *ask_daemon(const char *path, const char *request)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	size_t len = 0, cap = 65536;
	char *answer;
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		tool_error("control socket path too long: '%s'", path);
		return NULL;
	}
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		tool_error("failed to create a socket: %s", strerror(errno));
		return NULL;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		if (errno == EACCES)
			tool_error("failed to connect to borderflowd at '%s': %s; run as root or "
				   "as a member of the group 'borderflow'",
				   path, strerror(errno));
		else
			tool_error("failed to connect to borderflowd at '%s': %s; is the daemon "
				   "running?",
				   path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (write(fd, request, strlen(request)) != (ssize_t)strlen(request) ||
	    write(fd, "\n", 1) != 1) {
		tool_error("failed to send request to '%s': %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	answer = malloc(cap);
	while (answer) {
		ssize_t n;

		if (len + 1 >= cap) {
			char *bigger = cap < ANSWER_MAX ? realloc(answer, cap * 2) : NULL;

			if (!bigger) {
				free(answer);
				answer = NULL;
				tool_error("answer from '%s' larger than %u bytes", path,
					   ANSWER_MAX);
				break;
			}
			answer = bigger;
			cap *= 2;
		}
		n = read(fd, answer + len, cap - 1 - len);
		if (n < 0) {
			tool_error("failed to read from '%s': %s", path, strerror(errno));
			free(answer);
			answer = NULL;
			break;
		}
		if (!n) {
			answer[len] = '\0';
			break;
		}
		len += n;
	}
	close(fd);
	if (answer && !len) {
		tool_error(
			"borderflowd at '%s' closed the connection without an answer; see its log",
			path);
		free(answer);
		return NULL;
	}
	return answer;
}

static uint64_t get_u64(json_object *obj, const char *name)
{
	json_object *field;

	if (!json_object_object_get_ex(obj, name, &field))
		return 0;
	return json_object_get_uint64(field);
}

static const char *get_str(json_object *obj, const char *name)
{
	json_object *field;

	if (!json_object_object_get_ex(obj, name, &field))
		return "";
	return json_object_get_string(field);
}

static void print_destinations(json_object *app)
{
	json_object *dests;
	size_t j, n;

	if (!json_object_object_get_ex(app, "destinations", &dests))
		return;
	n = json_object_array_length(dests);
	if (!n && strcmp(get_str(app, "app"), "other") &&
	    strcmp(get_str(app, "app"), "unattributed"))
		printf("%-14s %-7s %-9s %14s\n", get_str(app, "app"), "-", "-", "no traffic yet");
	for (j = 0; j < n; j++) {
		json_object *d = json_object_array_get_idx(dests, j);

		printf("%-14s %-7s %-9s %14" PRIu64 " %14" PRIu64 " %10" PRIu64 " %10" PRIu64
		       " %7" PRIu64 "\n",
		       get_str(app, "app"), get_str(d, "country"), get_str(d, "verdict"),
		       get_u64(d, "transmit_bytes"), get_u64(d, "receive_bytes"),
		       get_u64(d, "transmit_packets"), get_u64(d, "receive_packets"),
		       get_u64(d, "flows"));
	}
}

static void print_table(json_object *status)
{
	json_object *apps, *geo, *sources;
	size_t i;

	printf("%-14s %-7s %-9s %14s %14s %10s %10s %7s\n", "APP", "COUNTRY", "VERDICT", "TX BYTES",
	       "RX BYTES", "TX PKTS", "RX PKTS", "FLOWS");
	if (json_object_object_get_ex(status, "apps", &apps))
		for (i = 0; i < json_object_array_length(apps); i++)
			print_destinations(json_object_array_get_idx(apps, i));

	printf("\nunattributed bytes: %" PRIu64 "   lost events: %" PRIu64 "\n",
	       get_u64(status, "unattributed_bytes"), get_u64(status, "lost_events"));
	if (json_object_object_get_ex(status, "geo", &geo)) {
		printf("geolocation: %" PRIu64 " IPv4 and %" PRIu64
		       " IPv6 prefixes in force, from:\n",
		       get_u64(geo, "prefixes_ipv4"), get_u64(geo, "prefixes_ipv6"));
		if (json_object_object_get_ex(geo, "sources", &sources))
			for (i = 0; i < json_object_array_length(sources); i++)
				printf("  %s\n", get_str(json_object_array_get_idx(sources, i),
							 "description"));
	}
	printf("cgroup: %s\n", get_str(status, "cgroup"));
}

int cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *socket_path = NULL, *config_path = NULL;
	struct bf_config cfg;
	struct bf_error err = {};
	json_object *status;
	bool json = false;
	char *answer;
	int c, ret;

	optind = 1;
	opterr = 0; /* unknown options are reported below, with the command's prefix */
	while ((c = getopt_long(argc, argv, "js:c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 's':
			socket_path = optarg;
			break;
		case 'c':
			config_path = optarg;
			break;
		case 'h':
			printf("Usage: borderflow status [--json] [--socket PATH] [--config FILE]\n"
			       "The socket is --socket, else [daemon] socket of --config, else of "
			       "%s when it exists, else /run/borderflow/borderflowd.sock.\n",
			       BF_CONFIG_DEFAULT_PATH);
			return 0;
		default:
			tool_error("%s: invalid option '%s'; see '%s --help'", argv[0],
				   argv[optind - 1], argv[0]);
			return 2;
		}
	}
	if (optind < argc) {
		tool_error("status: unexpected argument '%s'", argv[optind]);
		return 2;
	}
	bf_config_defaults(&cfg);
	if (!socket_path) {
		if (!config_path && !access(BF_CONFIG_DEFAULT_PATH, R_OK))
			config_path = BF_CONFIG_DEFAULT_PATH;
		if (config_path) {
			ret = bf_config_load(&cfg, config_path, &err);
			if (ret) {
				/* The daemon keeps running on its last valid config, so it is still worth asking. */
				bf_config_free(&cfg);
				bf_config_defaults(&cfg);
				fprintf(stderr,
					"borderflow: warning: %s; asking the daemon on the default "
					"socket '%s' (use --socket PATH for another)\n",
					err.msg, cfg.control_socket);
			}
		}
		socket_path = cfg.control_socket;
	}

	answer = ask_daemon(socket_path, "status");
	bf_config_free(&cfg);
	if (!answer)
		return 1;
	status = json_tokener_parse(answer);
	if (!status) {
		tool_error("borderflowd sent an answer that is not JSON");
		free(answer);
		return 1;
	}
	if (json)
		fputs(answer, stdout);
	else
		print_table(status);
	json_object_put(status);
	free(answer);
	return 0;
}
