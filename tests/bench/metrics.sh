#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Benchmark of the metrics endpoint: scrape latency and the daemon's CPU time per scrape with a
# large totals map, next to a scrape of node_exporter's own /metrics in the same run.
#
# borderflowd starts with BENCH_METRICS_APPS watched applications (default 10), on a pin folder
# of its own and attached to an empty cgroup of its own, so no real traffic is counted. The
# script then writes synthetic totals into the pinned totals map (tests/bench/metrics_load.c):
# every application x BENCH_METRICS_COUNTRIES country codes (default 250) x TCP and UDP. Both
# servers listen on 127.0.0.1 only, on free ports, and curl scrapes each BENCH_METRICS_SCRAPES
# times (default 50), one after the other. Reported: median and p99 (nearest rank) of curl's
# time_total, the response size, and the CPU time (utime + stime from /proc/PID/stat) that
# the server spent over all scrapes, divided by their number.
#
# Usage, as root from the repository after "make tests": OUTPUT=build tests/bench/metrics.sh

set -u -o pipefail

# shellcheck source=tests/lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lab/lib.sh" || exit 1
LAB_NAME=bench-metrics
CI=true

cd "$LAB_ROOT" || exit 1

OUTPUT=${OUTPUT:-build}
DAEMON=$OUTPUT/borderflowd
BENCH_BIN=$OUTPUT/bench
APPS=${BENCH_METRICS_APPS:-10}
COUNTRIES=${BENCH_METRICS_COUNTRIES:-250}
SCRAPES=${BENCH_METRICS_SCRAPES:-50}
READY_TIMEOUT_S=15
STOP_TIMEOUT_S=10
CURL_TIMEOUT_S=10
NODE_EXPORTER=prometheus-node-exporter

DAEMON_PID=
NODE_PID=

log()
{
	echo "bench: $*" >&2
}

check_count()
{
	local name=$1 value=$2 max=$3

	if ! [[ $value =~ ^[0-9]+$ ]] || ((value < 1 || value > max)); then
		log "invalid $name '$value', expected a whole number from 1 to $max"
		exit 2
	fi
}

check_count BENCH_METRICS_APPS "$APPS" 64
check_count BENCH_METRICS_COUNTRIES "$COUNTRIES" 676
check_count BENCH_METRICS_SCRAPES "$SCRAPES" 10000

# Every request goes to 127.0.0.1, never through a proxy from the environment.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy='*' NO_PROXY='*'

# shellcheck disable=SC2317 # called by lab_teardown through lab_on_cleanup
metrics_bench_cleanup()
{
	[[ -n $NODE_PID ]] && lab_alive "$NODE_PID" && lab_stop "$NODE_PID" "$STOP_TIMEOUT_S"
	[[ -n $DAEMON_PID ]] && lab_alive "$DAEMON_PID" && lab_stop "$DAEMON_PID" "$STOP_TIMEOUT_S"
	return 0
}

lab_require_root
lab_require_file "$DAEMON"
lab_require_cmd cc pkg-config curl awk sort "$NODE_EXPORTER"

trap lab_exit_trap EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
lab_setup_tmp
lab_setup_cgroup
lab_on_cleanup metrics_bench_cleanup

# unused_port: a port from lab_free_port that no TCP socket of the host uses in any state.
# lab_free_port looks at listening sockets only, and a client socket in TIME_WAIT that was
# not bound with SO_REUSEADDR (curl's, for one) also makes bind(2) fail with EADDRINUSE.
unused_port()
{
	local tries=20 port

	while ((tries-- > 0)); do
		port=$(lab_free_port) || return 1
		[[ -z $(ss -Htan "( sport = :$port or dport = :$port )") ]] && {
			echo "$port"
			return 0
		}
	done
	return 1
}

mkdir -p "$BENCH_BIN" || lab_bail "failed to create '$BENCH_BIN'"
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
cc -O2 -g -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -I. $(pkg-config --cflags libbpf) \
	-o "$BENCH_BIN/metrics_load" tests/bench/metrics_load.c $(pkg-config --libs libbpf) ||
	lab_bail "failed to build tests/bench/metrics_load.c"

METRICS_PORT=$(unused_port) || lab_bail "no free TCP port on 127.0.0.1"
NODE_PORT=$(unused_port) || lab_bail "no free TCP port on 127.0.0.1"
[[ $NODE_PORT != "$METRICS_PORT" ]] || NODE_PORT=$(unused_port)
[[ $NODE_PORT != "$METRICS_PORT" ]] || lab_bail "no second free TCP port on 127.0.0.1"

CONF=$LAB_TMP/borderflow.conf
{
	printf '%s\n' "[geo]" "data = $LAB_TMP/geo.csv"
	for ((a = 0; a < APPS; a++)); do
		mkdir -p "$LAB_TMP/apps/bench$a" || lab_bail "failed to create an app folder"
		printf '%s\n' "[app bench$a]" "path = $LAB_TMP/apps/bench$a/"
	done
	printf '%s\n' "[alerts]" "file =" "[daemon]" "socket = $LAB_TMP/bf.sock" "pin = $LAB_PIN" \
		"[metrics]" "listen = 127.0.0.1:$METRICS_PORT"
} >"$CONF"
lab_write_geo "$LAB_TMP/geo.csv"

# wait_http URL: waits until a GET of URL returns status 200.
wait_http()
{
	local tries=$((READY_TIMEOUT_S * 10))

	while ((tries-- > 0)); do
		[[ $(curl -s --max-time 1 -o /dev/null -w '%{http_code}' "$1") == 200 ]] && return 0
		sleep 0.1
	done
	return 1
}

"$DAEMON" --config "$CONF" --cgroup "$LAB_CGROUP" >"$LAB_TMP/daemon.log" 2>&1 &
DAEMON_PID=$!
LAB_PIDS+=("$DAEMON_PID")
wait_http "http://127.0.0.1:$METRICS_PORT/healthz" ||
	lab_bail "borderflowd did not answer within $READY_TIMEOUT_S s: $(tail -n 5 "$LAB_TMP/daemon.log")"

entries=$("$BENCH_BIN/metrics_load" "$LAB_PIN/totals" "$APPS" "$COUNTRIES") ||
	lab_bail "failed to write the synthetic totals"

"$NODE_EXPORTER" --web.listen-address="127.0.0.1:$NODE_PORT" >"$LAB_TMP/node.log" 2>&1 &
NODE_PID=$!
LAB_PIDS+=("$NODE_PID")
wait_http "http://127.0.0.1:$NODE_PORT/metrics" ||
	lab_bail "node_exporter did not answer within $READY_TIMEOUT_S s: $(tail -n 5 "$LAB_TMP/node.log")"

# cpu_ticks PID: utime + stime of the process, in clock ticks.
cpu_ticks()
{
	sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# measure NAME PID URL: scrapes URL SCRAPES times and prints one row of the result table.
measure()
{
	local name=$1 pid=$2 url=$3 ticks_before ticks_after hz times median p99 size series

	# One scrape first, so that neither server's first-request work is measured.
	curl -s --max-time "$CURL_TIMEOUT_S" -o "$LAB_TMP/$name.txt" "$url" ||
		lab_bail "scrape of $url failed"
	size=$(wc -c <"$LAB_TMP/$name.txt")
	series=$(grep -vc '^#' "$LAB_TMP/$name.txt")
	ticks_before=$(cpu_ticks "$pid")
	: >"$LAB_TMP/$name.times"
	for ((s = 0; s < SCRAPES; s++)); do
		curl -s --max-time "$CURL_TIMEOUT_S" -o /dev/null -w '%{time_total}\n' "$url" \
			>>"$LAB_TMP/$name.times" || lab_bail "scrape $s of $url failed"
	done
	ticks_after=$(cpu_ticks "$pid")
	hz=$(getconf CLK_TCK)
	times=$(sort -n "$LAB_TMP/$name.times")
	median=$(awk -v n="$SCRAPES" '{ v[NR] = $1 } END {
		if (n % 2) print v[(n + 1) / 2] * 1000; else print (v[n / 2] + v[n / 2 + 1]) / 2 * 1000
	}' <<<"$times")
	p99=$(awk -v n="$SCRAPES" '{ v[NR] = $1 } END {
		r = int(0.99 * n); if (r < 0.99 * n) r++; print v[r] * 1000 }' <<<"$times")
	printf '| %s | %d | %d | %.2f | %.2f | %.2f |\n' "$name" "$series" "$size" "$median" "$p99" \
		"$(awk -v t=$((ticks_after - ticks_before)) -v hz="$hz" -v n="$SCRAPES" \
			'BEGIN { print t * 1000 / hz / n }')"
}

echo "== Metrics scrapes: $SCRAPES sequential curl scrapes each, totals of $APPS applications" \
	"x $COUNTRIES countries x 2 transports ($entries entries)"
echo
echo "| server | series | bytes | median (ms) | p99 (ms) | CPU per scrape (ms) |"
echo "| --- | --- | --- | --- | --- | --- |"
measure borderflowd "$DAEMON_PID" "http://127.0.0.1:$METRICS_PORT/metrics"
measure node_exporter "$NODE_PID" "http://127.0.0.1:$NODE_PORT/metrics"
echo
echo "CPU time is utime + stime of the server process over all scrapes, in clock ticks of" \
	"$(($(getconf CLK_TCK))) Hz, divided by $SCRAPES."
