// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Writes synthetic totals into a pinned totals map, for the metrics
 * benchmark: every combination of application ids 1..APPS, COUNTRIES
 * country codes (AA, AB, ... in order) and the transports TCP and UDP, with
 * the same counts on every CPU. MO and HK get the verdict approved, the
 * others foreign.
 *
 *	metrics_load PIN_FOLDER/totals APPS COUNTRIES
 *
 * Prints the number of entries written. Exits 1 on a failed update, 2 on
 * invalid arguments.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "maps/flow.h"

static int parse_count(const char *text, unsigned long max, unsigned long *value)
{
	char *end;

	errno = 0;
	*value = strtoul(text, &end, 10);
	return errno || end == text || *end || *value == 0 || *value > max ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
	unsigned long apps, countries, app, c, written = 0;
	int ncpus = libbpf_num_possible_cpus(), fd, cpu, p;
	static const __u8 protos[] = { BF_PROTO_TCP, BF_PROTO_UDP };
	struct bf_total_value *values;

	if (argc != 4 || parse_count(argv[2], BF_MAX_APPS, &apps) ||
	    parse_count(argv[3], 26 * 26, &countries)) {
		fprintf(stderr,
			"usage: metrics_load PIN_FOLDER/totals APPS(1-%u) COUNTRIES(1-676)\n",
			BF_MAX_APPS);
		return 2;
	}
	if (ncpus <= 0) {
		fprintf(stderr, "metrics_load: failed to count the possible CPUs: %s\n",
			strerror(-ncpus));
		return 1;
	}
	fd = bpf_obj_get(argv[1]);
	if (fd < 0) {
		fprintf(stderr, "metrics_load: failed to open pinned map '%s': %s\n", argv[1],
			strerror(errno));
		return 1;
	}
	values = calloc(ncpus, sizeof(*values));
	if (!values) {
		fprintf(stderr, "metrics_load: out of memory\n");
		return 1;
	}

	for (app = 1; app <= apps; app++) {
		for (c = 0; c < countries; c++) {
			char a = 'A' + c / 26, b = 'A' + c % 26;
			bool approved = (a == 'M' && b == 'O') || (a == 'H' && b == 'K');

			for (p = 0; p < 2; p++) {
				struct bf_total_key key = {
					.app = app,
					.country = BF_CC(a, b),
					.verdict =
						approved ? BF_VERDICT_APPROVED : BF_VERDICT_FOREIGN,
					.proto = protos[p],
				};

				for (cpu = 0; cpu < ncpus; cpu++)
					values[cpu] = (struct bf_total_value){
						.transmit_bytes = 1000 * (app + c),
						.receive_bytes = 2000 * (app + c),
						.transmit_packets = 10 + c,
						.receive_packets = 20 + c,
						.flows = 1,
					};
				if (bpf_map_update_elem(fd, &key, values, BPF_ANY)) {
					fprintf(stderr,
						"metrics_load: failed to write entry %lu of '%s': "
						"%s\n",
						written + 1, argv[1], strerror(errno));
					return 1;
				}
				written++;
			}
		}
	}
	printf("%lu\n", written);
	free(values);
	return 0;
}
