#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Lab test of a geolocation reload under steady traffic. The watched client
# makes one connection after another to the lab host 198.51.100.1 while the
# geolocation file is rewritten to place that host in the US instead of CN
# and the daemon gets SIGHUP. Every flow must carry the verdict of one of the
# two generations, never "no country", and no counter may go back. A reload
# of a damaged file must leave the data in force unchanged.

# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"

DAEMON=$LAB_OUTPUT/borderflowd
CLI=$LAB_OUTPUT/borderflow
PORT=9400
CONNECTIONS=400
BYTES_PER_CONNECTION=100
PAUSE_MS=10
READY_TIMEOUT_S=10
STOP_TIMEOUT_S=5
TCP_HEADER_MAX=120

lab_require_root
lab_require_file "$DAEMON" "$CLI" "$LAB_BIN/sink" "$LAB_BIN/fakeclient"
lab_require_cmd ip jq curl

DAEMON_PID=

# shellcheck disable=SC2317 # called by lab_teardown through lab_on_cleanup
reload_cleanup()
{
	if [[ -n $DAEMON_PID ]] && lab_alive "$DAEMON_PID"; then
		lab_stop "$DAEMON_PID" "$STOP_TIMEOUT_S"
	fi
	return 0
}

lab_setup
METRICS_PORT=$(lab_free_port) || lab_bail "no free TCP port on 127.0.0.1 for metrics"
lab_on_cleanup reload_cleanup

APP_DIR=$LAB_TMP/opt/apps/com.alibabainc.dingtalk
WATCHED=$APP_DIR/dingtalk
CONF=$LAB_TMP/borderflow.conf
GEO=$LAB_TMP/geo.csv
SOCK=$LAB_TMP/bf.sock
STATUS=$LAB_TMP/status.json
ALERTS=$LAB_TMP/alerts.jsonl

mkdir -p "$APP_DIR" || lab_bail "failed to create '$APP_DIR'"
cp "$LAB_BIN/fakeclient" "$WATCHED" || lab_bail "failed to copy fakeclient to '$WATCHED'"
lab_write_geo "$GEO"
printf '%s\n' "[policy]" "approved = MO HK" "[geo]" "data = $GEO" \
	"[app dingtalk]" "path = $APP_DIR/" "[alerts]" "file = $ALERTS" "repeat = 10m" \
	"[daemon]" "socket = $SOCK" "pin = $LAB_PIN" \
	"[metrics]" "listen = 127.0.0.1:$METRICS_PORT" >"$CONF"

lab_assert_route "$LAB_CN4"
lab_sink_start "$PORT"

lab_start_daemon "$CONF" "$SOCK" "$READY_TIMEOUT_S"

# status_sum CC FIELD: FIELD over the dingtalk destinations in CC.
status_sum()
{
	jq --arg cc "$1" --arg f "$2" '[.apps[] | select(.app == "dingtalk") | .destinations[] |
		select(.country == $cc) | .[$f]] | add // 0' "$STATUS"
}

read_status()
{
	"$CLI" status --json --socket "$SOCK" >"$STATUS.tmp" 2>/dev/null && mv "$STATUS.tmp" "$STATUS"
}

lab_client "$WATCHED" --repeat "$CONNECTIONS" --pause-ms "$PAUSE_MS" tcp "$LAB_CN4" "$PORT" \
	"$BYTES_PER_CONNECTION" >"$LAB_TMP/client.out" 2>&1 &
CLIENT_PID=$!
LAB_PIDS+=("$CLIENT_PID")

# Halfway: the same host moves from CN to US, written by rename as an updater would.
sleep 1.5
read_status || diag "status before the reload failed"
bytes_before=$(($(status_sum CN transmit_bytes) + $(status_sum US transmit_bytes)))
sed 's|^198.51.100.0/24,CN$|198.51.100.0/24,US|' "$GEO" >"$GEO.new" && mv "$GEO.new" "$GEO"
kill -HUP "$DAEMON_PID"

wait "$CLIENT_PID"
check_eq "client exits 0" "$?" 0
expected=$((CONNECTIONS * BYTES_PER_CONNECTION))
lab_sink_wait_total "$expected" 10 || diag "sink: $(cat "$LAB_SINK_OUT")"
sleep 1.5 # flow events reach the daemon within its one-second tick

read_status || diag "status after the reload failed"
cn_flows=$(status_sum CN flows)
us_flows=$(status_sum US flows)
check_match "daemon logs the reload" "$(cat "$LAB_TMP/daemon.log")" \
	'geolocation data reloaded \(SIGHUP\).*generation 2'
check_match "status names generation 2 or later" "$(jq .geo.generation "$STATUS")" '^[2-9]$'
check_match "status source names every source" "$(jq -r .geo.source "$STATUS")" \
	"^$GEO \\(cidr, sha256 [0-9a-f]{16}\\); builtin:local \\(builtin\\)\$"
check_match "flows before the reload are CN" "$cn_flows" '^[1-9][0-9]*$'
check_match "flows after the reload are US" "$us_flows" '^[1-9][0-9]*$'
check_eq "every flow is CN or US" $((cn_flows + us_flows)) "$CONNECTIONS"
check_eq "no flow without a country" "$(status_sum '??' flows)" 0
total=$(($(status_sum CN transmit_bytes) + $(status_sum US transmit_bytes)))
packets=$(($(status_sum CN transmit_packets) + $(status_sum US transmit_packets)))
check_range "counters not reset by the reload" "$total" "$bytes_before" \
	$((expected + packets * TCP_HEADER_MAX))
check_range "every byte counted across the reload" "$total" "$expected" \
	$((expected + packets * TCP_HEADER_MAX))
check_eq "one alert for the CN generation" \
	"$(jq -s '[.[] | select(.destination.geo.country_iso_code == "CN")] | length' "$ALERTS")" 1
check_eq "one alert for the US generation" \
	"$(jq -s '[.[] | select(.destination.geo.country_iso_code == "US")] | length' "$ALERTS")" 1
check_match "US alert names the new data" \
	"$(jq -r 'select(.destination.geo.country_iso_code == "US") | .borderflow.geo_source' \
		"$ALERTS")" "^$GEO \\(cidr, sha256 $(sha256sum "$GEO" | cut -c1-16)\\)\$"

# --- a damaged file leaves the data in force ------------------------------------

generation=$(jq .geo.generation "$STATUS")
cp "$GEO" "$GEO.good" || lab_bail "failed to copy '$GEO'"
printf '198.51.100.0/33,CN\n' >"$GEO.new" && mv "$GEO.new" "$GEO"
kill -HUP "$DAEMON_PID"
sleep 2.5 # past the reload that the file change schedules too
read_status || diag "status after the failed reload failed"
check_match "failed reload names file and line" "$(cat "$LAB_TMP/daemon.log")" \
	"reload \\(SIGHUP\\) failed: .*'$GEO' line 1: .*198.51.100.0/33"
check_eq "generation unchanged by a failed reload" "$(jq .geo.generation "$STATUS")" \
	"$generation"
us_before=$(status_sum US flows)
lab_client "$WATCHED" tcp "$LAB_CN4" "$PORT" "$BYTES_PER_CONNECTION" >/dev/null 2>&1 ||
	diag "client after the failed reload failed"
sleep 1.5
read_status
check_eq "new flows still US after a failed reload" "$(status_sum US flows)" $((us_before + 1))

# scrape_value NAME: the value of the series NAME (without labels) on /metrics.
scrape_value()
{
	curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" |
		awk -v name="$1" '$1 == name { print $2; found = 1 } END { if (!found) print "missing" }'
}

check_eq "metrics show the failed reload" "$(scrape_value borderflow_geo_reload_failed)" 1
check_match "metrics count the failed reloads" \
	"$(scrape_value borderflow_geo_reload_failures_total)" '^[1-9][0-9]*$'
cp "$GEO.good" "$GEO.new" && mv "$GEO.new" "$GEO"
kill -HUP "$DAEMON_PID"
sleep 2.5 # past the reload that the file change schedules too
check_eq "metrics clear the failure after a good reload" \
	"$(scrape_value borderflow_geo_reload_failed)" 0

lab_sink_stop || diag "sink exited with status $?"
lab_stop "$DAEMON_PID" "$STOP_TIMEOUT_S"
check_eq "daemon exits 0 within $STOP_TIMEOUT_S s of SIGTERM" "$?" 0
DAEMON_PID=
if ((LAB_FAILURES > 0)); then
	diag "daemon log:"
	diag "$(tail -n 20 "$LAB_TMP/daemon.log")"
fi
lab_finish
