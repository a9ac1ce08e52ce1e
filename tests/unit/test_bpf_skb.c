// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The packet counters on the real kernel through BPF_PROG_TEST_RUN: crafted
 * packets go through bf_egress and bf_ingress, and the test reads what they
 * added to totals and stats. The kernel gives a test run a socket with no
 * storage, so these packets count as unattributed.
 *
 * Needs root (CAP_BPF). Outside CI the tests skip without it; with CI=true
 * a missing capability fails them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include <cmocka.h>

#include "borderflow.skel.h"
#include "geo_tables.h"
#include "maps/flow.h"
#include "maps/geo.h"

struct fixture {
	struct borderflow_bpf *skel;
};

static int print_nothing(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

static bool in_ci(void)
{
	const char *ci = getenv("CI");

	return ci && !strcmp(ci, "true");
}

/*
 * The geolocation data of the tests in slot 0 of geo4 and geo6, with the
 * verdicts of the default [policy] (approved MO HK).
 */
static void put_geo_tables(struct borderflow_bpf *skel)
{
	static struct bf_config cfg;
	struct bf_geo_table t;

	bf_config_defaults(&cfg);
	test_table_init(&t);
	test_table_add(&t, "10.0.0.0", "10.255.255.255", BF_CC('?', '?'), TEST_SOURCE_BUILTIN);
	test_table_add(&t, "192.0.2.0", "192.0.2.127", BF_CC('M', 'O'), TEST_SOURCE_DATA);
	test_table_add(&t, "198.51.100.0", "198.51.100.255", BF_CC('C', 'N'), TEST_SOURCE_DATA);
	test_table_add(&t, "2001:db8:852::", "2001:db8:852:ffff:ffff:ffff:ffff:ffff",
		       BF_CC('H', 'K'), TEST_SOURCE_DATA);
	test_tables_put(&t, &cfg, 1, bpf_map__fd(skel->maps.geo4), bpf_map__fd(skel->maps.geo6));
	bf_geo_table_free(&t);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	libbpf_set_print(print_nothing);
	if (geteuid() != 0) {
		free(f);
		*state = NULL;
		return 0;
	}
	f->skel = borderflow_bpf__open();
	if (!f->skel || borderflow_bpf__load(f->skel)) {
		borderflow_bpf__destroy(f->skel);
		free(f);
		*state = NULL;
		return 0;
	}
	put_geo_tables(f->skel);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f) {
		borderflow_bpf__destroy(f->skel);
		free(f);
	}
	return 0;
}

static struct borderflow_bpf *need_skel(void **state)
{
	struct fixture *f = *state;

	if (f && f->skel)
		return f->skel;
	if (in_ci())
		fail_msg("BPF programs could not be loaded (needs root and a BPF-enabled kernel)");
	skip();
	return NULL;
}

/* Builds Ethernet + IPv4 + TCP (with options up to tcp_bytes) + payload into buf. */
static size_t build_tcp4(uint8_t *buf, const char *src, const char *dst, size_t tcp_bytes,
			 size_t payload)
{
	struct ethhdr *eth = (struct ethhdr *)buf;
	struct iphdr *ip = (struct iphdr *)(eth + 1);
	struct tcphdr *tcp = (struct tcphdr *)(ip + 1);
	size_t len = sizeof(*eth) + sizeof(*ip) + tcp_bytes + payload;

	memset(buf, 0, len);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_TCP;
	ip->tot_len = htons(len - sizeof(*eth));
	inet_pton(AF_INET, src, &ip->saddr);
	inet_pton(AF_INET, dst, &ip->daddr);
	tcp->source = htons(40000);
	tcp->dest = htons(443);
	tcp->doff = tcp_bytes / 4;
	tcp->ack = 1;
	return len;
}

static size_t build_udp6(uint8_t *buf, const char *src, const char *dst, size_t payload)
{
	struct ethhdr *eth = (struct ethhdr *)buf;
	struct ipv6hdr *ip6 = (struct ipv6hdr *)(eth + 1);
	struct udphdr *udp = (struct udphdr *)(ip6 + 1);
	size_t len = sizeof(*eth) + sizeof(*ip6) + sizeof(*udp) + payload;

	memset(buf, 0, len);
	eth->h_proto = htons(ETH_P_IPV6);
	ip6->version = 6;
	ip6->nexthdr = IPPROTO_UDP;
	ip6->hop_limit = 64;
	ip6->payload_len = htons(sizeof(*udp) + payload);
	inet_pton(AF_INET6, src, &ip6->saddr);
	inet_pton(AF_INET6, dst, &ip6->daddr);
	udp->source = htons(5353);
	udp->dest = htons(40001);
	udp->len = htons(sizeof(*udp) + payload);
	return len;
}

/* Runs prog once on the packet, with gso_segs set when non-zero. */
static void run_packet(struct bpf_program *prog, uint8_t *packet, size_t len, uint32_t gso_segs)
{
	struct __sk_buff ctx = { .gso_segs = gso_segs, .gso_size = gso_segs ? 1000 : 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet, .data_size_in = len, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx));
	int ret = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);

	assert_int_equal(ret, 0);
	assert_int_equal(opts.retval, 1); /* counting never drops a packet */
}

/* Sums the per-CPU totals of the unattributed row for country, verdict and proto. */
static struct bf_total_value read_total(struct borderflow_bpf *skel, const char *cc,
					uint8_t verdict, uint8_t proto)
{
	struct bf_total_key key = {
		.app = BF_APP_UNATTRIBUTED,
		.country = cc ? BF_CC(cc[0], cc[1]) : BF_CC_NONE,
		.verdict = verdict,
		.proto = proto,
	};
	int ncpus = libbpf_num_possible_cpus();
	struct bf_total_value *values = calloc(ncpus, sizeof(*values)), sum = {};
	int cpu;

	assert_non_null(values);
	if (!bpf_map_lookup_elem(bpf_map__fd(skel->maps.totals), &key, values)) {
		for (cpu = 0; cpu < ncpus; cpu++) {
			sum.transmit_bytes += values[cpu].transmit_bytes;
			sum.receive_bytes += values[cpu].receive_bytes;
			sum.transmit_packets += values[cpu].transmit_packets;
			sum.receive_packets += values[cpu].receive_packets;
			sum.flows += values[cpu].flows;
		}
	}
	free(values);
	return sum;
}

static uint64_t read_stat(struct borderflow_bpf *skel, uint32_t index)
{
	int ncpus = libbpf_num_possible_cpus(), cpu;
	uint64_t *values = calloc(ncpus, sizeof(*values)), sum = 0;

	assert_non_null(values);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.stats), &index, values), 0);
	for (cpu = 0; cpu < ncpus; cpu++)
		sum += values[cpu];
	free(values);
	return sum;
}

static void test_egress_tcp4_counted_by_destination(void **state)
{
	struct borderflow_bpf *skel = need_skel(state);
	struct bf_total_value before, after;
	uint8_t packet[256];
	size_t len = build_tcp4(packet, "203.0.113.9", "198.51.100.7", 20, 100);

	before = read_total(skel, "CN", BF_VERDICT_FOREIGN, IPPROTO_TCP);
	run_packet(skel->progs.bf_egress, packet, len, 0);
	after = read_total(skel, "CN", BF_VERDICT_FOREIGN, IPPROTO_TCP);
	assert_int_equal(after.transmit_bytes - before.transmit_bytes, len - ETH_HLEN);
	assert_int_equal(after.transmit_packets - before.transmit_packets, 1);
	assert_int_equal(after.receive_bytes - before.receive_bytes, 0);
}

static void test_ingress_tcp4_counted_by_source(void **state)
{
	struct borderflow_bpf *skel = need_skel(state);
	struct bf_total_value before, after;
	uint8_t packet[256];
	size_t len = build_tcp4(packet, "192.0.2.10", "203.0.113.9", 20, 40);

	before = read_total(skel, "MO", BF_VERDICT_APPROVED, IPPROTO_TCP);
	run_packet(skel->progs.bf_ingress, packet, len, 0);
	after = read_total(skel, "MO", BF_VERDICT_APPROVED, IPPROTO_TCP);
	assert_int_equal(after.receive_bytes - before.receive_bytes, len - ETH_HLEN);
	assert_int_equal(after.receive_packets - before.receive_packets, 1);
	assert_int_equal(after.transmit_bytes - before.transmit_bytes, 0);
}

/* A GSO packet of 4 segments puts IP and TCP headers on the wire 4 times. */
static void test_gso_counts_segments_and_headers(void **state)
{
	struct borderflow_bpf *skel = need_skel(state);
	struct bf_total_value before, after;
	const size_t tcp_bytes = 32, header = 20 + 32;
	uint8_t packet[8192];
	size_t len = build_tcp4(packet, "203.0.113.9", "198.51.100.8", tcp_bytes, 2000);

	before = read_total(skel, "CN", BF_VERDICT_FOREIGN, IPPROTO_TCP);
	run_packet(skel->progs.bf_egress, packet, len, 4);
	after = read_total(skel, "CN", BF_VERDICT_FOREIGN, IPPROTO_TCP);
	assert_int_equal(after.transmit_packets - before.transmit_packets, 4);
	assert_int_equal(after.transmit_bytes - before.transmit_bytes, len - ETH_HLEN + 3 * header);
}

static void test_ingress_udp6_counted_by_source(void **state)
{
	struct borderflow_bpf *skel = need_skel(state);
	struct bf_total_value before, after;
	uint8_t packet[512];
	size_t len = build_udp6(packet, "2001:db8:852::53", "2001:db8:1::2", 200);

	before = read_total(skel, "HK", BF_VERDICT_APPROVED, IPPROTO_UDP);
	run_packet(skel->progs.bf_ingress, packet, len, 0);
	after = read_total(skel, "HK", BF_VERDICT_APPROVED, IPPROTO_UDP);
	assert_int_equal(after.receive_bytes - before.receive_bytes, len - ETH_HLEN);
	assert_int_equal(after.receive_packets - before.receive_packets, 1);
}

/* 40 + 8 + 1 bytes: shorter than the header bytes the program reads in one load. */
static void test_short_udp6_datagram_counted(void **state)
{
	struct borderflow_bpf *skel = need_skel(state);
	struct bf_total_value before, after;
	uint8_t packet[128];
	size_t len = build_udp6(packet, "2001:db8:1::2", "2001:db8:852::53", 1);

	before = read_total(skel, "HK", BF_VERDICT_APPROVED, IPPROTO_UDP);
	run_packet(skel->progs.bf_egress, packet, len, 0);
	after = read_total(skel, "HK", BF_VERDICT_APPROVED, IPPROTO_UDP);
	assert_int_equal(after.transmit_bytes - before.transmit_bytes, len - ETH_HLEN);
	assert_int_equal(after.transmit_packets - before.transmit_packets, 1);
}

static void test_address_outside_data_is_unknown(void **state)
{
	struct borderflow_bpf *skel = need_skel(state);
	struct bf_total_value before, after;
	uint8_t packet[256];
	size_t len = build_tcp4(packet, "203.0.113.9", "203.0.113.200", 20, 10);

	before = read_total(skel, NULL, BF_VERDICT_UNKNOWN, IPPROTO_TCP);
	run_packet(skel->progs.bf_egress, packet, len, 0);
	after = read_total(skel, NULL, BF_VERDICT_UNKNOWN, IPPROTO_TCP);
	assert_int_equal(after.transmit_bytes - before.transmit_bytes, len - ETH_HLEN);
}

static void test_local_prefix_gives_local(void **state)
{
	struct borderflow_bpf *skel = need_skel(state);
	struct bf_total_value before, after;
	uint8_t packet[256];
	size_t len = build_tcp4(packet, "203.0.113.9", "10.1.2.3", 20, 10);

	before = read_total(skel, "??", BF_VERDICT_LOCAL, IPPROTO_TCP);
	run_packet(skel->progs.bf_egress, packet, len, 0);
	after = read_total(skel, "??", BF_VERDICT_LOCAL, IPPROTO_TCP);
	assert_int_equal(after.transmit_packets - before.transmit_packets, 1);
}

/* A later fragment has no transport header: counted with transport 0, bytes all kept. */
static void test_later_fragment_counted_without_ports(void **state)
{
	struct borderflow_bpf *skel = need_skel(state);
	struct bf_total_value before, after;
	uint8_t packet[256];
	size_t len = build_tcp4(packet, "203.0.113.9", "198.51.100.9", 20, 60);
	struct iphdr *ip = (struct iphdr *)(packet + ETH_HLEN);

	ip->frag_off = htons(185); /* offset 1480 bytes */
	before = read_total(skel, "CN", BF_VERDICT_FOREIGN, 0);
	run_packet(skel->progs.bf_egress, packet, len, 0);
	after = read_total(skel, "CN", BF_VERDICT_FOREIGN, 0);
	assert_int_equal(after.transmit_bytes - before.transmit_bytes, len - ETH_HLEN);
}

/* An IPv4 header that announces TCP, followed by 2 bytes instead of a TCP header. */
static void test_truncated_tcp_header_counted_as_unparsed(void **state)
{
	struct borderflow_bpf *skel = need_skel(state);
	uint8_t packet[256];
	uint64_t before, after;

	(void)build_tcp4(packet, "203.0.113.9", "198.51.100.7", 20, 0);
	before = read_stat(skel, BF_STAT_UNPARSED_PACKETS);
	run_packet(skel->progs.bf_egress, packet, ETH_HLEN + sizeof(struct iphdr) + 2, 0);
	after = read_stat(skel, BF_STAT_UNPARSED_PACKETS);
	assert_int_equal(after - before, 1);
}

static void test_non_ip_counted_as_unparsed(void **state)
{
	struct borderflow_bpf *skel = need_skel(state);
	uint8_t packet[64] = {};
	uint64_t before, after;

	((struct ethhdr *)packet)->h_proto = htons(ETH_P_ARP);
	before = read_stat(skel, BF_STAT_UNPARSED_PACKETS);
	run_packet(skel->progs.bf_ingress, packet, sizeof(packet), 0);
	after = read_stat(skel, BF_STAT_UNPARSED_PACKETS);
	assert_int_equal(after - before, 1);
}

/*
 * A reload puts a new table in place. The next packet to an address is
 * then counted under the country of the new table.
 */
static void test_new_table_answers_after_swap(void **state)
{
	struct borderflow_bpf *skel = need_skel(state);
	struct bf_total_value cn_before, cn_after, us_before, us_after;
	static struct bf_config cfg;
	struct bf_geo_table t;
	uint8_t packet[256];
	size_t len = build_tcp4(packet, "203.0.113.9", "198.51.100.77", 20, 10);

	cn_before = read_total(skel, "CN", BF_VERDICT_FOREIGN, IPPROTO_TCP);
	run_packet(skel->progs.bf_egress, packet, len, 0);
	cn_after = read_total(skel, "CN", BF_VERDICT_FOREIGN, IPPROTO_TCP);
	assert_int_equal(cn_after.transmit_packets - cn_before.transmit_packets, 1);

	bf_config_defaults(&cfg);
	test_table_init(&t);
	test_table_add(&t, "198.51.100.0", "198.51.100.255", BF_CC('U', 'S'), TEST_SOURCE_DATA);
	test_tables_put(&t, &cfg, 2, bpf_map__fd(skel->maps.geo4), bpf_map__fd(skel->maps.geo6));
	bf_geo_table_free(&t);

	us_before = read_total(skel, "US", BF_VERDICT_FOREIGN, IPPROTO_TCP);
	run_packet(skel->progs.bf_egress, packet, len, 0);
	us_after = read_total(skel, "US", BF_VERDICT_FOREIGN, IPPROTO_TCP);
	assert_int_equal(us_after.transmit_packets - us_before.transmit_packets, 1);
	assert_int_equal(us_after.transmit_bytes - us_before.transmit_bytes, len - ETH_HLEN);

	/* The tables of the other tests go back in place. */
	put_geo_tables(skel);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_egress_tcp4_counted_by_destination),
		cmocka_unit_test(test_ingress_tcp4_counted_by_source),
		cmocka_unit_test(test_gso_counts_segments_and_headers),
		cmocka_unit_test(test_ingress_udp6_counted_by_source),
		cmocka_unit_test(test_short_udp6_datagram_counted),
		cmocka_unit_test(test_address_outside_data_is_unknown),
		cmocka_unit_test(test_local_prefix_gives_local),
		cmocka_unit_test(test_later_fragment_counted_without_ports),
		cmocka_unit_test(test_truncated_tcp_header_counted_as_unparsed),
		cmocka_unit_test(test_non_ip_counted_as_unparsed),
		cmocka_unit_test(test_new_table_answers_after_swap),
	};

	return cmocka_run_group_tests_name("bpf_skb", tests, setup, teardown);
}
