// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "borderflow.h"

#ifndef BF_VERSION
#define BF_VERSION "0.1"
#endif

void tool_error(const char *fmt, ...)
{
	va_list ap;

	fputs("borderflow: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: borderflow COMMAND [OPTION]...\n"
		"Query the borderflow monitor and its geolocation data.\n"
		"\n"
		"Commands:\n"
		"  status [--json] [--socket PATH] [--config FILE]\n"
		"                      bytes, packets and flows per application, country and\n"
		"                      verdict, from the running borderflowd\n"
		"  geo lookup [--config FILE] ADDRESS...\n"
		"                      country, verdict and geolocation source of addresses\n"
		"                      under a configuration\n"
		"  geo info [--config FILE]\n"
		"                      the geolocation sources with dates, hashes and counts\n"
		"  geo diff [--config FILE] OLD NEW\n"
		"                      addresses whose country or verdict an update changes\n"
		"  geo compile [--config FILE] OUTPUT\n"
		"                      one file of the whole stack that loads without parsing\n"
		"  check-config FILE   validate a configuration, the geolocation files and the\n"
		"                      application paths it names\n"
		"  --version           show the version\n"
		"\n"
		"Examples:\n"
		"  borderflow status\n"
		"  borderflow status --json | jq '.apps[] | select(.app == \"dingtalk\")'\n"
		"  borderflow geo lookup 202.175.3.3 2001:db8::1\n"
		"  borderflow check-config /etc/borderflow/borderflow.conf\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("borderflow %s\n", BF_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "status"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(argv[1], "geo"))
		return cmd_geo(argc - 1, argv + 1);
	if (!strcmp(argv[1], "check-config"))
		return cmd_check_config(argc - 1, argv + 1);
	tool_error("unknown command '%s'; see 'borderflow --help'", argv[1]);
	return 2;
}
