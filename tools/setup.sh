#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Sets borderflow up on Debian 12, as root, on a machine that may have nothing installed yet.
# It installs the build and test dependencies and the default geolocation data, and builds.
# Then it either installs and starts the daemon or runs the test suite.
#
#   sh tools/setup.sh run    install into /usr/local, start borderflowd in the background, and
#                            show a demo client's traffic (tools/demo.sh)
#   sh tools/setup.sh test   build the tests and run them; exits with the test runner's status
#
# Every step can run again: packages already installed and geolocation data that is as new as
# the package are left alone, and a running daemon is not started twice.

set -eu

# Debian packages needed to build and run borderflow, and to build the test lab's programs
# that the run command's demo uses.
PACKAGES="build-essential pkg-config clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev \
libpcap-dev libinih-dev libjson-c-dev libmicrohttpd-dev libcmocka-dev libmaxminddb-dev libssl-dev \
iproute2 procps util-linux"

# Debian packages only the tests and benchmarks need. prometheus and prometheus-node-exporter
# bring services that would listen on every interface: they are installed with service starts
# blocked, because the tests run their binaries on loopback themselves.
TEST_PACKAGES="iperf3 jq curl mmdb-bin libmaxmind-db-writer-perl libclang-rt-dev prometheus \
prometheus-node-exporter"

GEO_PACKAGE=tor-geoipdb
DATA_DIR=/usr/share/borderflow
ATTRIBUTION=$DATA_DIR/geoip.ATTRIBUTION
PREFIX=/usr/local
CONFIG=/etc/borderflow/borderflow.conf
RUN_DIR=/run/borderflow
PID_FILE=$RUN_DIR/borderflowd.pid
LOG_DIR=/var/log/borderflow
LOG_FILE=$LOG_DIR/borderflowd.log
DEFAULT_ALERTS_FILE=$LOG_DIR/alerts.jsonl
START_TIMEOUT_S=15

step=""
work_dir=""

usage() {
	echo "usage: sh tools/setup.sh run|test"
	echo "  run   install borderflow into $PREFIX and start borderflowd"
	echo "  test  build borderflow and run its test suite"
}

on_exit() {
	status=$?
	if [ -n "$work_dir" ]; then
		rm -rf "$work_dir"
	fi
	if [ "$status" -ne 0 ] && [ -n "$step" ]; then
		echo "setup.sh: step '$step' failed (exit status $status)" >&2
	fi
	exit "$status"
}

begin_step() {
	step=$1
	echo "==> $step"
}

die() {
	echo "setup.sh: $*" >&2
	exit 1
}

install_packages() {
	begin_step "install Debian packages"
	apt-get update || die "'apt-get update' failed; check the APT sources and the network"
	# PACKAGES is split into words on purpose.
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES ||
		die "'apt-get install' failed for: $PACKAGES"
}

# Installs TEST_PACKAGES with service starts blocked through /usr/sbin/policy-rc.d, the
# interface Debian's maintainer scripts ask before starting a service.
install_test_packages() {
	begin_step "install the Debian packages of the tests"
	blocker=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		blocker=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\n# Written by borderflow tools/setup.sh while it installs test tools.\nexit 101\n' \
			>"$blocker"
		chmod 0755 "$blocker"
	fi
	status=0
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $TEST_PACKAGES ||
		status=$?
	if [ -n "$blocker" ]; then
		rm -f "$blocker"
	fi
	[ "$status" -eq 0 ] || die "'apt-get install' failed for: $TEST_PACKAGES"
}

# Prints the tor-geoipdb version recorded in the attribution file, or nothing.
installed_geo_version() {
	if [ -r "$ATTRIBUTION" ]; then
		sed -n 's/^Package version: *//p' "$ATTRIBUTION" | head -n 1
	fi
}

geo_data_is_current() {
	have=$1
	candidate=$2

	[ -s "$DATA_DIR/geoip" ] && [ -s "$DATA_DIR/geoip6" ] && [ -n "$have" ] || return 1
	dpkg --compare-versions "$have" ge "$candidate"
}

# Copies a file into DATA_DIR under a temporary name and renames it, so that a daemon reading
# the old file never reads a partly written one.
install_data_file() {
	install -m 0644 "$1" "$DATA_DIR/.$2.new"
	mv -f "$DATA_DIR/.$2.new" "$DATA_DIR/$2"
}

write_attribution() {
	version=$1
	generated=$2

	cat >"$DATA_DIR/.geoip.ATTRIBUTION.new" <<EOF
Geolocation data: IPFire Location database, https://location.ipfire.org/
License: CC BY-SA 4.0, https://creativecommons.org/licenses/by-sa/4.0/
Export date: $generated
Converted to Tor's geoip format by Tor's geoip-db-tool and shipped by Debian.
Package: $GEO_PACKAGE
Package version: $version
Files: $DATA_DIR/geoip $DATA_DIR/geoip6
Debian copyright file of the package: $DATA_DIR/geoip.copyright
Installed by tools/setup.sh on: $(date -u '+%Y-%m-%d %H:%M:%S UTC')

Source, license and export date are those stated in the header of the data files.
EOF
	mv -f "$DATA_DIR/.geoip.ATTRIBUTION.new" "$ATTRIBUTION"
}

# Installs geoip and geoip6 from Debian's tor-geoipdb package without installing the package
# (and so without pulling in tor): the package is downloaded and unpacked in a temporary folder.
install_geo_data() {
	begin_step "install geolocation data"
	have=$(installed_geo_version)
	candidate=$(apt-cache policy "$GEO_PACKAGE" | sed -n 's/^ *Candidate: *//p')
	if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
		if [ -s "$DATA_DIR/geoip" ] && [ -s "$DATA_DIR/geoip6" ]; then
			echo "setup.sh: package '$GEO_PACKAGE' not found in the APT sources," \
				"keeping the data in $DATA_DIR, ignoring" >&2
			return 0
		fi
		die "package '$GEO_PACKAGE' not found in the APT sources; enable Debian 'main'" \
			"and run again"
	fi
	if geo_data_is_current "$have" "$candidate"; then
		echo "geolocation data from $GEO_PACKAGE $have is current"
		return 0
	fi

	work_dir=$(mktemp -d)
	# apt-get downloads as the user _apt, which needs to write to the folder.
	if id _apt >/dev/null 2>&1; then
		chown _apt "$work_dir"
	fi
	if ! (cd "$work_dir" && apt-get download "$GEO_PACKAGE"); then
		if [ -s "$DATA_DIR/geoip" ] && [ -s "$DATA_DIR/geoip6" ]; then
			echo "setup.sh: 'apt-get download $GEO_PACKAGE' failed, keeping the" \
				"data in $DATA_DIR (from ${have:-an unknown version}), ignoring" >&2
			rm -rf "$work_dir"
			work_dir=""
			return 0
		fi
		die "'apt-get download $GEO_PACKAGE' failed"
	fi
	deb=$(find "$work_dir" -maxdepth 1 -name "${GEO_PACKAGE}_*.deb" | head -n 1)
	[ -n "$deb" ] || die "'apt-get download $GEO_PACKAGE' left no .deb in $work_dir"
	version=$(dpkg-deb -f "$deb" Version)
	dpkg-deb -x "$deb" "$work_dir/root" || die "failed to unpack '$deb'"

	tree=$work_dir/root
	for f in usr/share/tor/geoip usr/share/tor/geoip6 usr/share/doc/$GEO_PACKAGE/copyright; do
		[ -s "$tree/$f" ] || die "$GEO_PACKAGE $version contains no '/$f'"
	done
	# The attribution repeats the source and license stated in the file header, so check them.
	header=$(head -n 40 "$tree/usr/share/tor/geoip")
	case $header in
	*"IPFire Location database"*) ;;
	*) die "'/usr/share/tor/geoip' of $GEO_PACKAGE $version does not name the IPFire" \
		"Location database in its header; not installing data of unknown source" ;;
	esac
	case $header in
	*"License:"*"CC BY-SA 4.0"*) ;;
	*) die "'/usr/share/tor/geoip' of $GEO_PACKAGE $version does not state the license" \
		"CC BY-SA 4.0 in its header; not installing data under an unknown license" ;;
	esac
	generated=$(printf '%s\n' "$header" | sed -n 's/^# *Generated: *//p' | head -n 1)
	[ -n "$generated" ] || generated="not stated in the file header"

	install -d -m 0755 "$DATA_DIR"
	install_data_file "$tree/usr/share/tor/geoip" geoip
	install_data_file "$tree/usr/share/tor/geoip6" geoip6
	install_data_file "$tree/usr/share/doc/$GEO_PACKAGE/copyright" geoip.copyright
	write_attribution "$version" "$generated"
	echo "installed geolocation data from $GEO_PACKAGE $version (export date: $generated)"

	rm -rf "$work_dir"
	work_dir=""
}

build() {
	begin_step "build (make -j2)"
	make --no-print-directory -j2
}

# Runs "make test" with the runner's summary line as the last line printed. make reports a
# failed recipe with a line of its own after that summary, so that line is dropped, and the
# exit status is make's. stderr is merged into stdout to keep the order of the lines.
run_tests() {
	status_file=$(mktemp)
	{
		rc=0
		make --no-print-directory test 2>&1 || rc=$?
		echo "$rc" >"$status_file"
	} | sed -u '/^make: \*\*\* \[[^]]*\] Error [0-9]*$/d'
	rc=$(cat "$status_file")
	rm -f "$status_file"
	return "$rc"
}

do_test() {
	begin_step "build the tests (make tests)"
	make --no-print-directory -j2 tests

	begin_step "run the tests (make test)"
	# From here on nothing may print after the runner's summary, not even a failure message.
	step=""
	trap - EXIT
	rc=0
	run_tests || rc=$?
	exit "$rc"
}

# True when the process is a live borderflowd.
pid_is_borderflowd() {
	case $1 in
	'' | *[!0-9]*) return 1 ;;
	esac
	[ "$(cat "/proc/$1/comm" 2>/dev/null)" = borderflowd ] || return 1
	# An exited daemon that its parent has not reaped yet is a zombie with the same name.
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d ' ' -f 1)
	[ -n "$state" ] && [ "$state" != Z ]
}

# True when the pid file names a live borderflowd.
daemon_running() {
	[ -r "$PID_FILE" ] && pid_is_borderflowd "$(cat "$PID_FILE")"
}

alerts_file() {
	file=$DEFAULT_ALERTS_FILE
	if [ -r "$CONFIG" ]; then
		# Prints the value of "file =" in [alerts], "(disabled)" when it is empty, and
		# nothing when the key is absent.
		file=$(awk '
			/^[ \t]*\[/ { section = $1; next }
			section == "[alerts]" && /^[ \t]*file[ \t]*=/ {
				sub(/^[^=]*=[ \t]*/, "")
				if ($0 ~ /^;/)
					$0 = ""
				sub(/[ \t]+;.*$/, "")
				sub(/[ \t]+$/, "")
				value = ($0 == "") ? "(disabled)" : $0
			}
			END { print value }' "$CONFIG")
		file=${file:-$DEFAULT_ALERTS_FILE}
	fi
	echo "$file"
}

wait_for_daemon() {
	pid=$1
	tries=$((START_TIMEOUT_S * 2))

	while [ "$tries" -gt 0 ]; do
		if "$PREFIX/bin/borderflow" status >/dev/null 2>&1; then
			return 0
		fi
		if ! pid_is_borderflowd "$pid"; then
			echo "setup.sh: borderflowd (pid $pid) exited during start; last lines of" \
				"$LOG_FILE:" >&2
			tail -n 20 "$LOG_FILE" >&2 || true
			exit 1
		fi
		sleep 0.5
		tries=$((tries - 1))
	done
	die "'borderflow status' did not succeed within ${START_TIMEOUT_S} s of starting" \
		"borderflowd (pid $pid), which is still running: see $LOG_FILE," \
		"stop it with 'kill $pid'"
}

start_daemon() {
	begin_step "start borderflowd"
	install -d -m 0755 "$RUN_DIR"
	install -d -m 0750 "$LOG_DIR"
	if daemon_running; then
		echo "borderflowd is already running (pid $(cat "$PID_FILE")) with the configuration" \
			"it read at its start; to apply changes to $CONFIG, stop it with" \
			"'kill $(cat "$PID_FILE")' and run this again"
		return 0
	fi
	# Members of this group may read the status and the alerts, as the README describes.
	if ! getent group borderflow >/dev/null; then
		groupadd --system borderflow || die "failed to create the group 'borderflow'"
	fi
	chgrp borderflow "$CONFIG" "$LOG_DIR" || die "failed to give $CONFIG to group borderflow"
	echo "==> $(date -u '+%Y-%m-%dT%H:%M:%SZ') starting borderflowd" >>"$LOG_FILE"

	# setsid detaches the daemon from this terminal's session so that it outlives the script.
	# The shell runs it without job control, so setsid execs in place and $! is the daemon's
	# pid.
	setsid "$PREFIX/sbin/borderflowd" --config "$CONFIG" --pid-file "$PID_FILE" \
		</dev/null >>"$LOG_FILE" 2>&1 &
	pid=$!
	echo "started borderflowd (pid $pid), waiting until 'borderflow status' succeeds"
	wait_for_daemon "$pid"
	if grep -q 'missing paths [1-9]' "$LOG_FILE" 2>/dev/null; then
		echo "note: some watched application paths do not exist (yet):"
		grep 'does not exist, so it is not watched' "$LOG_FILE" | tail -n 5
	fi
}

do_run() {
	begin_step "install (make install PREFIX=$PREFIX)"
	make --no-print-directory install PREFIX="$PREFIX"

	start_daemon

	# A fresh machine has no watched application running, so the demo shows one: a second,
	# temporary daemon watches a demo client that sends to lab hosts in network namespaces.
	begin_step "demo of a watched application (tools/demo.sh)"
	make --no-print-directory -j2 tests >/dev/null
	bash tools/demo.sh

	begin_step "borderflow status of the installed daemon"
	"$PREFIX/bin/borderflow" status

	step=""
	pid=$(cat "$PID_FILE")
	echo
	echo "borderflowd is running as pid $pid (pid file $PID_FILE)."
	echo "  stop it:  kill $pid    (or: kill \"\$(cat $PID_FILE)\")"
	echo "  log:      $LOG_FILE"
	echo "  alerts:   $(alerts_file)"
	echo "  config:   $CONFIG"
}

main() {
	if [ "$#" -ne 1 ]; then
		usage >&2
		exit 2
	fi
	case $1 in
	run | test) ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "setup.sh: unknown command '$1'" >&2
		usage >&2
		exit 2
		;;
	esac
	[ "$(id -u)" -eq 0 ] || die "must run as root: it installs packages and data"

	cd "$(dirname "$0")/.." || die "cannot change into the repository folder"
	trap on_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	install_packages
	[ "$1" = test ] && install_test_packages
	install_geo_data
	build
	case $1 in
	run) do_run ;;
	test) do_test ;;
	esac
}

main "$@"
