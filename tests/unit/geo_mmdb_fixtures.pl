#!/usr/bin/perl
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Writes the MaxMind DB fixtures of tests/unit/test_geo_formats.c with
# MaxMind::DB::Writer (Debian package libmaxmind-db-writer-perl).
#
#   perl tests/unit/geo_mmdb_fixtures.pl DIR          the test fixtures, into DIR
#   perl tests/unit/geo_mmdb_fixtures.pl --large N FILE
#                                                    an IPv6 database of about N
#                                                    networks, for load timing
#
# The fixtures are:
#   v4.mmdb       IPv4 tree: country/iso_code, a record with only
#                 registered_country/iso_code, one with only a top-level
#                 country_code, one without any country
#   v6.mmdb       IPv6 tree with IPv4 under ::/96 and the aliases
#                 ::ffff:0:0/96, 2001::/32 and 2002::/16
#   paths.mmdb    IPv4 tree whose countries are at other key paths
#   bad-code.mmdb a country code of three letters
#   bad-type.mmdb a country code that is a number, at country/numeric_code
#   overlap.mmdb  IPv6 tree without aliases, where ::192.0.2.0/120 and
#                 ::ffff:192.0.2.0/120 have different countries
#
# Every database states the build epoch 1735689600 (2025-01-01T00:00:00Z).

use strict;
use warnings;

use MaxMind::DB::Writer::Tree;

my $BUILD_EPOCH = 1735689600;

my %types = (
	country            => 'map',
	registered_country => 'map',
	continent          => 'map',
	location           => 'map',
	geo                => 'map',
	iso_code           => 'utf8_string',
	code               => 'utf8_string',
	country_code       => 'utf8_string',
	cc                 => 'utf8_string',
	numeric_code       => 'uint32',
);

sub new_tree {
	my ( $ip_version, %args ) = @_;
	my $tree = MaxMind::DB::Writer::Tree->new(
		ip_version               => $ip_version,
		record_size              => 24,
		database_type            => 'Borderflow-Test-Country',
		languages                => ['en'],
		description              => { en => 'borderflow unit test fixture' },
		map_key_type_callback    => sub { $types{ $_[0] } },
		remove_reserved_networks => 0,
		%args,
	);
	$tree->_set_build_epoch($BUILD_EPOCH);
	return $tree;
}

sub write_tree {
	my ( $tree, $path ) = @_;
	open my $fh, '>:raw', $path or die "cannot write '$path': $!\n";
	$tree->write_tree($fh);
	close $fh or die "cannot write '$path': $!\n";
}

# The IPv4 networks of v4.mmdb and of the IPv4 part of v6.mmdb.
my @ipv4_networks = (
	# country wins over registered_country
	[ '192.0.2.0/25', { country => { iso_code => 'MO' }, registered_country => { iso_code => 'HK' } } ],
	[ '192.0.2.128/25', { registered_country => { iso_code => 'HK' } } ],
	[ '198.51.100.0/24', { country_code => 'CN' } ],
	[ '203.0.113.0/26', { continent => { code => 'AS' } } ],
	[ '203.0.113.64/26', { country => { iso_code => 'eu' } } ],
	[ '202.175.3.0/24', { country => { iso_code => 'MO' } } ],
	[ '1.0.0.0/24', { country => { iso_code => 'AU' } } ],
	[ '1.0.1.0/24', { country => { iso_code => 'CN' } } ],
	[ '128.0.0.0/2', { country => { iso_code => 'US' } } ],
);

# 5.6.7.8 to 5.6.9.200, which the writer splits into several networks.
my @ipv4_range = ( '5.6.7.8', '5.6.9.200', { country => { iso_code => 'DE' } } );

sub write_fixtures {
	my ($dir) = @_;

	my $v4 = new_tree(4);
	$v4->insert_network( $_->[0], $_->[1] ) for @ipv4_networks;
	$v4->insert_range(@ipv4_range);
	write_tree( $v4, "$dir/v4.mmdb" );

	my $v6 = new_tree( 6, alias_ipv6_to_ipv4 => 1 );
	for my $network (@ipv4_networks) {
		my ( $address, $length ) = split m{/}, $network->[0];
		$v6->insert_network( "::$address/" . ( $length + 96 ), $network->[1] );
	}
	$v6->insert_range( "::$ipv4_range[0]", "::$ipv4_range[1]", $ipv4_range[2] );
	$v6->insert_network( '2001:db8::/33',      { country      => { iso_code => 'MO' } } );
	$v6->insert_network( '2001:db8:8000::/33', { registered_country => { iso_code => 'HK' } } );
	$v6->insert_network( '2400:cb00::/32',     { country_code => 'JP' } );
	$v6->insert_network( '2a00:1450::/29',     { country      => { iso_code => 'IE' } } );
	$v6->insert_network( 'fd00::/8',           { continent    => { code => 'EU' } } );
	write_tree( $v6, "$dir/v6.mmdb" );

	my $paths = new_tree(4);
	$paths->insert_network( '192.0.2.0/24',    { location => { geo => { cc => 'MO' } } } );
	$paths->insert_network( '198.51.100.0/24', { country  => { iso_code => 'HK' }, cc => 'CN' } );
	write_tree( $paths, "$dir/paths.mmdb" );

	my $bad_code = new_tree(4);
	$bad_code->insert_network( '192.0.2.0/24',    { country => { iso_code => 'MO' } } );
	$bad_code->insert_network( '198.51.100.0/24', { country => { iso_code => 'USA' } } );
	write_tree( $bad_code, "$dir/bad-code.mmdb" );

	my $bad_type = new_tree(4);
	$bad_type->insert_network( '198.51.100.0/24', { country => { iso_code => 'US' } } );
	$bad_type->insert_network( '203.0.113.0/24', { country => { numeric_code => 446 } } );
	write_tree( $bad_type, "$dir/bad-type.mmdb" );

	my $overlap = new_tree( 6, alias_ipv6_to_ipv4 => 0 );
	$overlap->insert_network( '::192.0.2.0/120',      { country => { iso_code => 'MO' } } );
	$overlap->insert_network( '::ffff:192.0.2.0/120', { country => { iso_code => 'US' } } );
	write_tree( $overlap, "$dir/overlap.mmdb" );
}

# About $count networks: IPv4 /24s and IPv6 /48s, alternating between countries so
# that no two neighbours share a record and the writer cannot merge them.
sub write_large {
	my ( $count, $path ) = @_;
	my @countries = map { { country => { iso_code => $_ } } } qw(MO HK CN US DE JP);
	my $tree = new_tree( 6, alias_ipv6_to_ipv4 => 1 );
	my $half = int( $count / 2 );

	for my $i ( 0 .. $half - 1 ) {
		my $address = sprintf '::%d.%d.%d.0/120', 11 + ( $i >> 16 ), ( $i >> 8 ) & 255, $i & 255;
		$tree->insert_network( $address, $countries[ $i % @countries ] );
	}
	for my $i ( 0 .. $count - $half - 1 ) {
		my $address = sprintf '2a%02x:%x::/48', 1 + ( $i >> 16 ), $i & 0xffff;
		$tree->insert_network( $address, $countries[ $i % @countries ] );
	}
	write_tree( $tree, $path );
}

if ( @ARGV == 3 && $ARGV[0] eq '--large' ) {
	write_large( $ARGV[1], $ARGV[2] );
} elsif ( @ARGV == 1 ) {
	write_fixtures( $ARGV[0] );
} else {
	die "usage: $0 DIR | $0 --large COUNT FILE\n";
}
