#!/usr/bin/perl
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Writes a MaxMind DB country database with MaxMind::DB::Writer (Debian package
# libmaxmind-db-writer-perl) from "first,last,CC" lines on standard input, where first and last
# are the inclusive bounds of a range as textual IPv4 or IPv6 addresses.
#
#   geo_lookup ranges | perl tests/bench/geo_mmdb_write.pl FILE
#
# The database is an IPv6 tree with each record at country/iso_code, as in GeoIP2 Country.
# IPv4 ranges go under ::/96, where libmaxminddb looks IPv4 addresses up, and the tree has no
# aliases (::ffff:0:0/96, 2001::/32, 2002::/16), so that an IPv6 address there gets the answer
# of its own range, as in borderflow's tables. Reserved networks are kept.

use strict;
use warnings;

use MaxMind::DB::Writer::Tree;

my %types = (
	country  => 'map',
	iso_code => 'utf8_string',
);

die "usage: $0 FILE < RANGES\n" unless @ARGV == 1;
my $path = $ARGV[0];

# 24-bit records address up to 16M nodes; the full default data needs about 1.3M.
my $tree = MaxMind::DB::Writer::Tree->new(
	ip_version               => 6,
	record_size              => 24,
	database_type            => 'Borderflow-Bench-Country',
	languages                => ['en'],
	description              => { en => 'borderflow benchmark database' },
	map_key_type_callback    => sub { $types{ $_[0] } },
	remove_reserved_networks => 0,
	alias_ipv6_to_ipv4       => 0,
);

# One record per country, so that the writer stores each country's data once.
my %records;
while ( my $line = <STDIN> ) {
	chomp $line;
	my ( $first, $last, $country ) = split /,/, $line;
	die "invalid line $. of standard input: '$line', expected 'first,last,CC'\n"
		unless defined $country && $country =~ /^[A-Z0-9]{2}$/;
	if ( $first =~ /^[0-9.]+$/ ) {
		$first = "::$first";
		$last  = "::$last";
	}
	$records{$country} //= { country => { iso_code => $country } };
	$tree->insert_range( $first, $last, $records{$country} );
}

open my $fh, '>:raw', $path or die "cannot write '$path': $!\n";
$tree->write_tree($fh);
close $fh or die "cannot write '$path': $!\n";
