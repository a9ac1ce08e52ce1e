#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Benchmarks of what borderflowd costs, each measured without and with the daemon in one run:
#
#   1. TCP throughput with iperf3; target: with/without >= 0.97
#   2. short TCP connections per second with tcp_crr; target: with/without >= 0.95; then
#      the same with empty programs on the same hooks, the floor of any program there
#   3. daemon start time with the default geolocation data (target < 1.5 s) and resident
#      memory after start (target < 64 MiB)
#   4. geolocation, without the daemon: loading the default data into the kernel's tables as the
#      daemon does (target < 1 s), then lookups per second of the same addresses in those tables
#      through BPF_PROG_TEST_RUN, in the userspace table and in libmaxminddb on an mmdb written
#      from the same table (target: kernel and userspace at least as fast as libmaxminddb),
#      and the number of addresses for which their countries differ
#
# Traffic flows only between the two network namespaces of the lab in tests/lab/lib.sh, joined
# by a veth pair with documentation addresses and without a default route: the client sends
# from 198.51.100.254 to 198.51.100.1. The clients run in the lab's child cgroup of the cgroup
# v2 hierarchy, and the daemon attaches to that cgroup only. The namespaces, the cgroup, the
# pinned BPF objects and the temporary files are removed on exit, also on failure.
#
# This is not part of the test suite: it prints figures and never judges them. It exits 1 when
# a measurement could not be made, for example while build/borderflowd does not exist.
#
# Usage, as root from the repository: make bench, or OUTPUT=build tests/bench/run.sh
# Environment: BENCH_IPERF_SECONDS (default 10), BENCH_CRR_SECONDS (5), BENCH_REPETITIONS (3),
# BENCH_START_RUNS (5), BENCH_GEO_ADDRESSES (1000000), BENCH_GEO_ROUNDS (5),
# BENCH_GEO_LOAD_RUNS (3), and BENCH_ONLY: the sections to run, a space-separated list of
# throughput, crr, crr-empty, start and geo (default: all of them).

set -u -o pipefail

# shellcheck source=tests/lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lab/lib.sh" || exit 1
LAB_NAME=bench
# A missing capability fails the benchmark instead of skipping it, as in the lab tests under CI.
CI=true

cd "$LAB_ROOT" || exit 1

OUTPUT=${OUTPUT:-build}
DAEMON=$OUTPUT/borderflowd
CLI=$OUTPUT/borderflow
BENCH_BIN=$OUTPUT/bench

IPERF_SECONDS=${BENCH_IPERF_SECONDS:-10}
CRR_SECONDS=${BENCH_CRR_SECONDS:-5}
REPETITIONS=${BENCH_REPETITIONS:-3}
START_RUNS=${BENCH_START_RUNS:-5}
GEO_ADDRESSES=${BENCH_GEO_ADDRESSES:-1000000}
GEO_ROUNDS=${BENCH_GEO_ROUNDS:-5}
GEO_LOAD_RUNS=${BENCH_GEO_LOAD_RUNS:-3}
SECTIONS=${BENCH_ONLY:-throughput crr crr-empty start geo}

SERVER_ADDR=$LAB_CN4
IPERF_PORT=5201
CRR_PORT=7001
READY_TIMEOUT_S=15
STOP_TIMEOUT_S=10
# Backstop for the servers in case this script is killed before its trap runs.
SERVER_TIMEOUT_S=900
DEFAULT_GEO_DATA=(/usr/share/borderflow/geoip /usr/share/borderflow/geoip6)
# Bound of each step of section 4, whose steps take a few seconds each.
GEO_TIMEOUT_S=300

BPFFS=/sys/fs/bpf
PIN_DIR=$BPFFS/borderflow-bench-$$

APP_DIR=""
MOUNTED_BPFFS=0
FAILURES=()
DAEMON_PID=""
GEO_FILES=()

log() {
	echo "bench: $*" >&2
}

fail_part() {
	FAILURES+=("$*")
	log "$*"
}

check_count() {
	local name=$1 value=$2 max=$3

	if ! [[ $value =~ ^[0-9]+$ ]] || [ "$value" -lt 1 ] || [ "$value" -gt "$max" ]; then
		log "invalid $name '$value', expected a whole number from 1 to $max"
		exit 2
	fi
}

# Stops the daemon and removes what the benchmark added to the BPF file system. lab_teardown
# runs it before it removes the processes, the namespaces and the cgroup.
bench_cleanup() {
	stop_daemon
	# A new BPF file system contains at most the kernel's maps.debug and progs.debug.
	if [ "$MOUNTED_BPFFS" = 1 ] &&
		! find "$BPFFS" -mindepth 1 -maxdepth 1 ! -name maps.debug ! -name progs.debug |
		grep -q .; then
		umount "$BPFFS" 2>/dev/null || log "failed to unmount '$BPFFS', ignoring"
	fi
}

ensure_bpffs() {
	if awk -v dir="$BPFFS" '$5 == dir && / - bpf /' /proc/self/mountinfo | grep -q .; then
		return 0
	fi
	mount -t bpf bpf "$BPFFS" || lab_bail "failed to mount the BPF file system on '$BPFFS'"
	MOUNTED_BPFFS=1
}

# Ends the benchmark unless both namespaces lack a default route and the server is reached
# on-link over the lab veth, so that a mistake cannot send benchmark traffic anywhere else.
check_lab_routes() {
	local ns routes

	for ns in "$LAB_CLI" "$LAB_SRV"; do
		routes=$(lab_default_routes "$ns")
		[ -z "$routes" ] || lab_bail "namespace '$ns' has a default route: $routes"
	done
	lab_assert_route "$SERVER_ADDR"
}

# Starts a server in the server namespace, outside the benchmark cgroup.
start_server() {
	lab_server_bg "$@"
}

wait_listening() {
	local port=$1 tries=50

	while [ "$tries" -gt 0 ]; do
		if [ -n "$(lab_ns "$LAB_SRV" ss -Hltn "sport = :$port")" ]; then
			return 0
		fi
		sleep 0.1
		tries=$((tries - 1))
	done
	log "no server listens on $SERVER_ADDR port $port after 5 s"
	return 1
}

build_tools() {
	mkdir -p "$BENCH_BIN" || return 1
	if [ ! -x "$BENCH_BIN/tcp_crr" ] || [ tests/bench/tcp_crr.c -nt "$BENCH_BIN/tcp_crr" ]; then
		cc -O2 -g -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -o "$BENCH_BIN/tcp_crr" \
			tests/bench/tcp_crr.c || return 1
	fi
	# The clients run from the watched folder, so the daemon accounts their flows per flow.
	APP_DIR=$LAB_TMP/opt/apps/bench
	mkdir -p "$APP_DIR" || return 1
	cp /usr/bin/iperf3 "$APP_DIR/iperf3" && cp "$BENCH_BIN/tcp_crr" "$APP_DIR/tcp_crr"
}

# Prints why the daemon cannot run, or nothing when it can.
daemon_missing() {
	if [ ! -x "$DAEMON" ]; then
		echo "$DAEMON not found (build it with 'make')"
	elif [ ! -x "$CLI" ]; then
		echo "$CLI not found (build it with 'make')"
	fi
}

# Writes a daemon configuration whose [geo] data is the files given.
write_config() {
	local file=$1 port
	shift

	port=$(lab_free_port) || {
		log "no free local TCP port found for the metrics endpoint"
		return 1
	}
	cat >"$file" <<EOF
[policy]
approved = MO HK

[geo]
data = $*

[app bench]
path = $APP_DIR/

[alerts]
file = $LAB_TMP/alerts.jsonl

[history]
dir = $LAB_TMP/history

[daemon]
socket = $LAB_TMP/bf.sock
pin = $PIN_DIR

[metrics]
listen = 127.0.0.1:$port
EOF
}

# Prints "FLOWS TRANSMIT_BYTES" that the running daemon counted for the benchmark application.
daemon_accounting() {
	"$CLI" status --json --socket "$LAB_TMP/bf.sock" | jq -r '
		[.apps[] | select(.app == "bench") | .destinations[]] |
		"\(map(.flows) | add // 0) \(map(.transmit_bytes) | add // 0)"'
}

daemon_ready() {
	"$CLI" status --socket "$LAB_TMP/bf.sock" >/dev/null 2>&1
}

# Starts the daemon on the benchmark cgroup and waits until 'borderflow status' succeeds on its
# control socket. Sets DAEMON_PID. Polls every poll_s seconds, so that the start time can be
# measured too.
start_daemon() {
	local conf=$1 poll_s=${2:-0.1} deadline

	"$DAEMON" --config "$conf" --cgroup "$LAB_CGROUP" >>"$LAB_TMP/borderflowd.log" 2>&1 &
	DAEMON_PID=$!
	LAB_PIDS+=("$DAEMON_PID")
	deadline=$((SECONDS + READY_TIMEOUT_S))
	while ! daemon_ready; do
		if ! lab_alive "$DAEMON_PID"; then
			log "borderflowd exited during start; its last messages:"
			tail -n 20 "$LAB_TMP/borderflowd.log" >&2
			wait "$DAEMON_PID" 2>/dev/null
			lab_forget_pid "$DAEMON_PID"
			DAEMON_PID=""
			return 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "'borderflow status' did not succeed within $READY_TIMEOUT_S s of the" \
				"daemon's start"
			stop_daemon
			return 1
		fi
		sleep "$poll_s"
	done
}

# Stops the daemon and removes its pinned objects, so that the next start begins from nothing.
stop_daemon() {
	local rc=0

	if [ -n "$DAEMON_PID" ]; then
		lab_stop "$DAEMON_PID" "$STOP_TIMEOUT_S" || rc=$?
		case $rc in
		0) ;;
		124) log "borderflowd (pid $DAEMON_PID) did not stop within $STOP_TIMEOUT_S s" \
			"of SIGTERM and was killed" ;;
		*) log "borderflowd (pid $DAEMON_PID) exited with status $rc after SIGTERM" ;;
		esac
	fi
	DAEMON_PID=""
	rm -rf "$PIN_DIR"
}

median() {
	printf '%s\n' "$@" | sort -g | awk '
		NF { v[++n] = $1 }
		END {
			if (!n)
				print "n/a"
			else if (n % 2)
				print v[(n + 1) / 2]
			else
				print (v[n / 2] + v[n / 2 + 1]) / 2
		}'
}

# Prints (max - min) / median of the values in percent, a measure of the run-to-run noise.
spread_percent() {
	local med

	med=$(median "$@")
	printf '%s\n' "$@" | awk -v med="$med" '
		NF { if (n++ == 0 || $1 < min) min = $1; if (n == 1 || $1 > max) max = $1 }
		END {
			if (n < 2 || med == "n/a" || med + 0 == 0)
				print "n/a"
			else
				printf "%.1f%%\n", 100 * (max - min) / med
		}'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "n/a" || b == "n/a" || b + 0 == 0)
			print "n/a"
		else
			printf "%.3f\n", a / b
	}'
}

json_array() {
	local IFS=,

	echo "[$*]"
}

json_number() {
	if [ "$1" = n/a ]; then echo null; else echo "$1"; fi
}

ratio_row() {
	printf '  %-24s %-26s %-26s %-14s %s\n' "$@" | sed 's/ *$//'
}

print_ratio_table() {
	local unit=$1 without_median=$2 with_median=$3 ratio_value=$4 target=$5
	local without_runs=$6 with_runs=$7 with_flows=$8
	local -a without with

	read -r -a without <<<"$without_runs"
	read -r -a with <<<"$with_runs"
	ratio_row "" "without monitor" "with monitor" "with/without" "target"
	ratio_row "median ($unit)" "$without_median" "$with_median" "$ratio_value" ">= $target"
	ratio_row "runs ($unit)" "${without_runs:-n/a}" "${with_runs:-n/a}" "" ""
	ratio_row "spread (max-min)/median" "$(spread_percent "${without[@]}")" \
		"$(spread_percent "${with[@]}")" "" ""
	ratio_row "flows counted" "" "${with_flows:-n/a}" "" ""
}

# Prints a result table and a machine-readable line for a benchmark with and without the daemon.
report_ratio() {
	local name=$1 unit=$2 target=$3 error=$4 without_list=$5 with_list=$6 flows_list=$7
	local bytes_list=$8
	local -a without with flows bytes
	local without_median with_median ratio_value

	read -r -a without <<<"$without_list"
	read -r -a with <<<"$with_list"
	read -r -a flows <<<"$flows_list"
	read -r -a bytes <<<"$bytes_list"
	without_median=$(median "${without[@]}")
	with_median=$(median "${with[@]}")
	ratio_value=$(ratio "$with_median" "$without_median")

	print_ratio_table "$unit" "$without_median" "$with_median" "$ratio_value" "$target" \
		"$without_list" "$with_list" "$flows_list"
	[ -n "$error" ] && echo "  with monitor: not measured: $error"
	echo "bench-json: $(jq -nc --arg name "$name" --arg unit "$unit" \
		--argjson without "$(json_array "${without[@]}")" \
		--argjson with "$(json_array "${with[@]}")" \
		--argjson with_flows "$(json_array "${flows[@]}")" \
		--argjson with_transmit_bytes "$(json_array "${bytes[@]}")" \
		--argjson without_median "$(json_number "$without_median")" \
		--argjson with_median "$(json_number "$with_median")" \
		--argjson ratio "$(json_number "$ratio_value")" \
		--argjson target_ratio "$target" --arg error "$error" \
		'{name: $name, unit: $unit, without: $without, with: $with, with_flows: $with_flows,
		  with_transmit_bytes: $with_transmit_bytes,
		  without_median: $without_median, with_median: $with_median, ratio: $ratio,
		  target_ratio: $target_ratio,
		  error: (if $error == "" then null else $error end)}')"
}

# Prints the receiver's throughput in Gbit/s of one iperf3 run from the client namespace.
run_iperf() {
	local json=$LAB_TMP/iperf3.json

	if ! lab_client timeout $((IPERF_SECONDS + 20)) "$APP_DIR/iperf3" -c "$SERVER_ADDR" \
		-p "$IPERF_PORT" -t "$IPERF_SECONDS" -J --connect-timeout 3000 >"$json"; then
		log "iperf3 failed: $(jq -r '.error // empty' "$json" 2>/dev/null)"
		return 1
	fi
	jq -r '.end.sum_received.bits_per_second' "$json" | awk '{ printf "%.2f\n", $1 / 1e9 }'
}

# Prints the connections per second of one tcp_crr run from the client namespace.
run_crr() {
	local out

	out=$(lab_client timeout $((CRR_SECONDS + 20)) "$APP_DIR/tcp_crr" client \
		--address "$SERVER_ADDR" --port "$CRR_PORT" --seconds "$CRR_SECONDS") || {
		log "tcp_crr client failed"
		return 1
	}
	[[ $out =~ rate=([0-9.]+) ]] || {
		log "unexpected tcp_crr output '$out'"
		return 1
	}
	echo "${BASH_REMATCH[1]}"
}

# Runs a client command (run_iperf or run_crr) REPETITIONS times without and with the daemon,
# alternating, and reports the medians. The daemon runs with the small benchmark geolocation
# file, layered under the default data when that is installed. After each run with the daemon,
# the flows and bytes it counted for the application show that the measured path included the
# accounting.
bench_with_without() {
	local name=$1 unit=$2 target=$3 client=$4
	local error="" without_values="" with_values="" flows_values="" bytes_values=""
	local value rep accounting conf=$LAB_TMP/bench.conf

	error=$(daemon_missing)
	if [ -z "$error" ] && ! write_config "$conf" "${GEO_FILES[@]}"; then
		error="failed to write the daemon configuration"
	fi
	for ((rep = 1; rep <= REPETITIONS; rep++)); do
		check_lab_routes
		if value=$("$client"); then
			without_values+="$value "
		else
			fail_part "$name without monitor, run $rep: failed"
		fi
		[ -n "$error" ] && continue
		if ! start_daemon "$conf"; then
			error="borderflowd failed to start (see the messages above)"
			continue
		fi
		check_lab_routes
		if value=$("$client"); then
			with_values+="$value "
		else
			fail_part "$name with monitor, run $rep: failed"
		fi
		if accounting=$(daemon_accounting) && [[ $accounting =~ ^[0-9]+\ [0-9]+$ ]]; then
			flows_values+="${accounting% *} "
			bytes_values+="${accounting#* } "
			[ "${accounting% *}" != 0 ] ||
				fail_part "$name with monitor, run $rep: the daemon counted" \
					"no flow of application 'bench'"
		else
			fail_part "$name with monitor, run $rep: 'borderflow status --json' failed"
		fi
		stop_daemon
	done
	[ -n "$error" ] && fail_part "$name with monitor: $error"
	report_ratio "$name" "$unit" "$target" "$error" "$without_values" "$with_values" \
		"$flows_values" "$bytes_values"
}

bench_throughput() {
	echo
	echo "== 1. TCP throughput: iperf3 -t $IPERF_SECONDS," \
		"$(lab_client_address "$SERVER_ADDR") -> $SERVER_ADDR over veth," \
		"runs: $REPETITIONS without and $REPETITIONS with, alternating"
	start_server "$LAB_TMP/iperf3-server.log" timeout "$SERVER_TIMEOUT_S" \
		iperf3 -s -B "$SERVER_ADDR" -p "$IPERF_PORT"
	wait_listening "$IPERF_PORT" || {
		fail_part "tcp_throughput: iperf3 server did not start"
		return
	}
	bench_with_without tcp_throughput Gbit/s 0.97 run_iperf
}

# Starts the tcp_crr server of sections 2 and 2b, unless it runs already.
start_crr_server() {
	[ -n "$(lab_ns "$LAB_SRV" ss -Hltn "sport = :$CRR_PORT")" ] && return 0
	start_server "$LAB_TMP/tcp_crr-server.log" "$BENCH_BIN/tcp_crr" server \
		--address "$SERVER_ADDR" --port "$CRR_PORT" --timeout "$SERVER_TIMEOUT_S"
	wait_listening "$CRR_PORT"
}

bench_crr() {
	echo
	echo "== 2. Short TCP connections: tcp_crr for $CRR_SECONDS s, a 1-byte request and" \
		"response per connection," \
		"runs: $REPETITIONS without and $REPETITIONS with, alternating"
	start_crr_server || {
		fail_part "tcp_crr: server did not start"
		return
	}
	bench_with_without tcp_crr connections/s 0.95 run_crr
}

# Hook name of each program of empty.bpf.c, for bpftool cgroup attach.
declare -A EMPTY_HOOKS=(
	[empty_egress]=egress [empty_ingress]=ingress [empty_create]=sock_create
	[empty_release]=sock_release [empty_connect4]=connect4 [empty_connect6]=connect6
	[empty_sendmsg4]=sendmsg4 [empty_sendmsg6]=sendmsg6
)

# Attaches (attach) or detaches (detach) the empty programs pinned in $EMPTY_PIN.
empty_programs() {
	local prog flags=()

	[ "$1" = attach ] && flags=(multi)
	for prog in "${!EMPTY_HOOKS[@]}"; do
		bpftool cgroup "$1" "$LAB_CGROUP" "${EMPTY_HOOKS[$prog]}" pinned "$EMPTY_PIN/$prog" \
			"${flags[@]}" || return 1
	done
}

# shellcheck disable=SC2317 # called by lab_teardown through lab_on_cleanup
remove_empty_programs() {
	[ -n "${EMPTY_PIN:-}" ] && rm -rf -- "$EMPTY_PIN"
	return 0
}

# The short-connection test once more, without anything and with programs that do nothing
# on the same eight hooks: the cost of being attached, which no program body can remove.
bench_crr_empty() {
	local -a without=() with=()
	local i rate

	echo
	echo "== 2b. Short TCP connections as in 2, without programs and with empty programs on" \
		"the same 8 cgroup hooks (tests/bench/empty.bpf.c), alternating"
	EMPTY_PIN=$LAB_PIN-empty
	if ! clang -O2 -g -target bpf -I"$LAB_OUTPUT" -c tests/bench/empty.bpf.c \
		-o "$BENCH_BIN/empty.bpf.o" ||
		! bpftool prog loadall "$BENCH_BIN/empty.bpf.o" "$EMPTY_PIN"; then
		fail_part "tcp_crr_empty: failed to build or load tests/bench/empty.bpf.c"
		return
	fi
	lab_on_cleanup remove_empty_programs
	start_crr_server || {
		fail_part "tcp_crr_empty: server did not start"
		return
	}
	for ((i = 0; i < REPETITIONS; i++)); do
		check_lab_routes
		if rate=$(run_crr); then
			without+=("$rate")
		else
			fail_part "tcp_crr_empty without programs, run $((i + 1)): failed"
		fi
		if empty_programs attach; then
			if rate=$(run_crr); then
				with+=("$rate")
			else
				fail_part "tcp_crr_empty with empty programs, run $((i + 1)): failed"
			fi
		else
			fail_part "tcp_crr_empty: failed to attach the empty programs"
		fi
		empty_programs detach >/dev/null 2>&1
	done
	printf '  %-24s %-26s %-26s %s\n' "" "no programs" "empty programs" "empty/none"
	printf '  %-24s %-26s %-26s %s\n' "median (connections/s)" "$(median "${without[@]}")" \
		"$(median "${with[@]}")" "$(ratio "$(median "${with[@]}")" "$(median "${without[@]}")")"
	printf '  %-24s %-26s %s\n' "runs (connections/s)" "${without[*]}" "${with[*]}"
}

# Prints "VmRSS VmHWM" of a process in MiB.
memory_mib() {
	awk '$1 == "VmRSS:" { rss = $2 } $1 == "VmHWM:" { hwm = $2 }
		END { printf "%.1f %.1f\n", rss / 1024, hwm / 1024 }' "/proc/$1/status"
}

# Prints the kernel memory in MiB of the BPF maps that a process has open, from the memlock
# figure of each map in /proc/PID/fdinfo. The geolocation tables are inner maps whose file
# descriptors the daemon closes once they are in place, so they are not in the sum.
map_memory_mib() {
	awk '/^memlock:/ { bytes = $2 } /^map_id:/ { sum += bytes } END { printf "%.1f\n", sum / 1048576 }' \
		/proc/"$1"/fdinfo/* 2>/dev/null
}

start_row() {
	printf '  %-24s %-10s %-44s %s\n' "$@" | sed 's/ *$//'
}

print_start_table() {
	local starts=$1 rss=$2 hwm=$3 maps=$4
	local -a s r h m

	read -r -a s <<<"$starts"
	read -r -a r <<<"$rss"
	read -r -a h <<<"$hwm"
	read -r -a m <<<"$maps"
	start_row "" "median" "runs" "target"
	start_row "start time (s)" "$(median "${s[@]}")" "${starts:-n/a}" "< 1.5"
	start_row "VmRSS after start (MiB)" "$(median "${r[@]}")" "${rss:-n/a}" "< 64"
	start_row "VmHWM after start (MiB)" "$(median "${h[@]}")" "${hwm:-n/a}" "< 64"
	start_row "BPF maps open (MiB)" "$(median "${m[@]}")" "${maps:-n/a}" ""
}

report_start() {
	local starts=$1 rss=$2 hwm=$3 maps=$4 error=$5
	local -a s r h m

	print_start_table "$starts" "$rss" "$hwm" "$maps"
	[ -n "$error" ] && echo "  not measured: $error"
	echo "  BPF maps open: kernel memory of the maps that the daemon has open (memlock in"
	echo "  /proc/PID/fdinfo), with socks preallocated in full; the geolocation tables"
	echo "  (about 11 MiB with the default data, section 4) are not in it"
	read -r -a s <<<"$starts"
	read -r -a r <<<"$rss"
	read -r -a h <<<"$hwm"
	read -r -a m <<<"$maps"
	echo "bench-json: $(jq -nc --argjson start_s "$(json_array "${s[@]}")" \
		--argjson rss "$(json_array "${r[@]}")" --argjson hwm "$(json_array "${h[@]}")" \
		--argjson start_median "$(json_number "$(median "${s[@]}")")" \
		--argjson rss_median "$(json_number "$(median "${r[@]}")")" \
		--argjson hwm_median "$(json_number "$(median "${h[@]}")")" \
		--argjson maps_mib "$(json_array "${m[@]}")" \
		--argjson maps_median_mib "$(json_number "$(median "${m[@]}")")" --arg error "$error" \
		'{name: "daemon_start", start_s: $start_s, start_median_s: $start_median,
		  target_start_s: 1.5, vmrss_mib: $rss, vmrss_median_mib: $rss_median,
		  vmhwm_mib: $hwm, vmhwm_median_mib: $hwm_median, target_memory_mib: 64,
		  bpf_maps_mib: $maps_mib, bpf_maps_median_mib: $maps_median_mib,
		  error: (if $error == "" then null else $error end)}')"
}

bench_start() {
	local error="" starts="" rss="" hwm="" maps="" run t0 t1 memory f conf=$LAB_TMP/start.conf

	echo
	echo "== 3. Daemon start with ${DEFAULT_GEO_DATA[*]}, from exec until" \
		"'borderflow status' succeeds (polled every 10 ms), runs: $START_RUNS"
	error=$(daemon_missing)
	for f in "${DEFAULT_GEO_DATA[@]}"; do
		if [ -z "$error" ] && [ ! -s "$f" ]; then
			error="geolocation data '$f' not found"
			error+=" (install it with 'sh tools/setup.sh test')"
		fi
	done
	if [ -z "$error" ] && ! write_config "$conf" "${DEFAULT_GEO_DATA[@]}"; then
		error="failed to write the daemon configuration"
	fi
	for ((run = 1; run <= START_RUNS; run++)); do
		[ -n "$error" ] && break
		t0=$EPOCHREALTIME
		if ! start_daemon "$conf" 0.01; then
			error="borderflowd failed to start (see the messages above)"
			break
		fi
		t1=$EPOCHREALTIME
		memory=$(memory_mib "$DAEMON_PID")
		maps+="$(map_memory_mib "$DAEMON_PID") "
		stop_daemon
		starts+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') "
		rss+="${memory% *} "
		hwm+="${memory#* } "
	done
	[ -n "$error" ] && fail_part "daemon_start: $error"
	report_start "$starts" "$rss" "$hwm" "$maps" "$error"
}

# Builds tests/bench/geo_lookup.c, its BPF object and skeleton into $BENCH_BIN, against the library
# and the headers of this tree. It builds on every run, because the library, bpf/ and maps/ change
# under it, and the BPF object and the program must agree on the layout of maps/geo.h.
build_geo_lookup() {
	local arch
	local -a libs=(libbpf json-c inih libmaxminddb libcrypto)

	if [ ! -s "$OUTPUT/libborderflow.a" ] || [ ! -s "$OUTPUT/vmlinux.h" ]; then
		log "$OUTPUT/libborderflow.a or $OUTPUT/vmlinux.h not found" \
			"(build them with 'make')"
		return 1
	fi
	arch=$(uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/' -e 's/ppc64le/powerpc/' \
		-e 's/riscv64/riscv/' -e 's/s390x/s390/' -e 's/loongarch64/loongarch/')
	clang -g -O2 -target bpf -D__TARGET_ARCH_"$arch" -mcpu=v3 -Wall -Werror -I"$OUTPUT" -I. \
		-c tests/bench/geo_lookup.bpf.c -o "$BENCH_BIN/geo_lookup.bpf.o" || return 1
	bpftool gen skeleton "$BENCH_BIN/geo_lookup.bpf.o" name geo_lookup_bpf \
		>"$BENCH_BIN/geo_lookup.skel.h" || return 1
	# shellcheck disable=SC2046 # pkg-config prints several flags, split on purpose
	cc -O2 -g -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$OUTPUT" -I. -I"$BENCH_BIN" \
		$(pkg-config --cflags "${libs[@]}") -o "$BENCH_BIN/geo_lookup" \
		tests/bench/geo_lookup.c "$OUTPUT/libborderflow.a" \
		$(pkg-config --libs "${libs[@]}") -lelf -lz -lpthread
}

# Writes the mmdb of section 4 from the flattened default data into $LAB_TMP, and prints the
# seconds that tests/bench/geo_mmdb_write.pl took.
write_geo_mmdb() {
	local mmdb=$1 ranges=$LAB_TMP/geo-ranges.csv t0
	shift

	timeout "$GEO_TIMEOUT_S" "$BENCH_BIN/geo_lookup" ranges "$@" >"$ranges" || {
		log "'geo_lookup ranges' failed"
		return 1
	}
	t0=$EPOCHREALTIME
	timeout "$GEO_TIMEOUT_S" perl tests/bench/geo_mmdb_write.pl "$mmdb" <"$ranges" || {
		log "tests/bench/geo_mmdb_write.pl failed on '$ranges'"
		return 1
	}
	awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f\n", b - a }'
}

# Geolocation loading and lookups, with the contenders side by side in one run. geo_lookup
# prints the tables and the bench-json line, and exits 3 when the contenders' countries differ.
bench_geo() {
	local error="" f write_s rc=0 mmdb=$LAB_TMP/geo-bench.mmdb
	local -a data=()

	echo
	echo "== 4. Geolocation: loading ${DEFAULT_GEO_DATA[*]} into the kernel's tables, runs:" \
		"$GEO_LOAD_RUNS; then $GEO_ADDRESSES lookups in the kernel tables, the userspace" \
		"table and libmaxminddb, rounds: $GEO_ROUNDS"
	for f in "${DEFAULT_GEO_DATA[@]}"; do
		if [ -z "$error" ] && [ ! -s "$f" ]; then
			error="geolocation data '$f' not found"
			error+=" (install it with 'sh tools/setup.sh test')"
		fi
		data+=(--data "$f")
	done
	if [ -z "$error" ] && ! perl -MMaxMind::DB::Writer::Tree -e 1 2>/dev/null; then
		error="perl module MaxMind::DB::Writer::Tree not found (install the package"
		error+=" libmaxmind-db-writer-perl with 'sh tools/setup.sh test')"
	fi
	if [ -z "$error" ] && ! build_geo_lookup; then
		error="failed to build tests/bench/geo_lookup.c"
	fi
	if [ -z "$error" ] && ! write_s=$(write_geo_mmdb "$mmdb" "${data[@]}"); then
		error="failed to write the mmdb from the default data"
	fi
	if [ -z "$error" ]; then
		timeout "$GEO_TIMEOUT_S" "$BENCH_BIN/geo_lookup" run "${data[@]}" --mmdb "$mmdb" \
			--addresses "$GEO_ADDRESSES" --rounds "$GEO_ROUNDS" \
			--load-runs "$GEO_LOAD_RUNS" --mmdb-write-seconds "$write_s" || rc=$?
		case $rc in
		0) ;;
		3) fail_part "geo_lookup: measured, but the contenders returned different" \
			"countries for some addresses (see the table)" ;;
		*) error="'geo_lookup run' failed with status $rc (see the messages above)" ;;
		esac
	fi
	if [ -n "$error" ]; then
		echo "  not measured: $error"
		echo "bench-json: $(jq -nc --arg error "$error" \
			'{name: "geo_lookup", error: $error}')"
		fail_part "geo_lookup: $error"
	fi
}

print_header() {
	echo "borderflow benchmarks, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "  commit:  $(git rev-parse --short HEAD 2>/dev/null || echo none)"
	echo "  kernel:  $(uname -r), $(nproc) CPUs," \
		"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	echo "  cgroup:  $LAB_CGROUP"
	echo "  geo data for 1 and 2: ${GEO_FILES[*]}"
}

# Picks the geolocation data for the traffic benchmarks: the default data when installed, so
# that lookups search tables of the real size, with the benchmark ranges layered above it.
choose_geo_files() {
	local f

	lab_write_geo "$LAB_TMP/bench-geo.csv"
	GEO_FILES=()
	for f in "${DEFAULT_GEO_DATA[@]}"; do
		[ -s "$f" ] && GEO_FILES+=("$f")
	done
	GEO_FILES+=("$LAB_TMP/bench-geo.csv")
}

main() {
	local tool part

	check_count BENCH_IPERF_SECONDS "$IPERF_SECONDS" 60
	check_count BENCH_CRR_SECONDS "$CRR_SECONDS" 60
	check_count BENCH_REPETITIONS "$REPETITIONS" 10
	check_count BENCH_START_RUNS "$START_RUNS" 20
	check_count BENCH_GEO_ADDRESSES "$GEO_ADDRESSES" 10000000
	check_count BENCH_GEO_ROUNDS "$GEO_ROUNDS" 20
	check_count BENCH_GEO_LOAD_RUNS "$GEO_LOAD_RUNS" 10
	for part in $SECTIONS; do
		case $part in
		throughput | crr | crr-empty | start | geo) ;;
		*)
			log "BENCH_ONLY: unknown section '$part'; use throughput, crr, crr-empty, start or geo"
			exit 2
			;;
		esac
	done
	if [ "$(id -u)" -ne 0 ]; then
		log "must run as root: it creates network namespaces and cgroups"
		exit 2
	fi
	for tool in ip iperf3 jq ss cc timeout shuf; do
		command -v "$tool" >/dev/null || {
			log "'$tool' not found; install the packages with 'sh tools/setup.sh test'"
			exit 2
		}
	done

	lab_setup
	lab_on_cleanup bench_cleanup
	check_lab_routes
	mkdir -p "$LAB_TMP/history" || lab_bail "failed to create '$LAB_TMP/history'"
	build_tools || lab_bail "failed to build the benchmark tools"
	ensure_bpffs
	choose_geo_files
	print_header

	for part in $SECTIONS; do
		case $part in
		throughput) bench_throughput ;;
		crr) bench_crr ;;
		crr-empty) bench_crr_empty ;;
		start) bench_start ;;
		geo) bench_geo ;;
		esac
	done

	echo
	if [ "${#FAILURES[@]}" -eq 0 ]; then
		echo "all measurements made"
		return 0
	fi
	echo "${#FAILURES[@]} measurements not made:"
	for part in "${FAILURES[@]}"; do
		echo "  $part"
	done
	return 1
}

main "$@"
