#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Lab test of the Prometheus metrics endpoint. borderflowd attaches to the
# test cgroup with [metrics] listen on a free loopback port and a textfile
# folder. A watched copy of fakeclient ("dingtalk") and an unwatched copy send
# TCP to the lab host that the test geolocation file places in CN. The test
# scrapes /metrics with curl and compares the series with the status JSON.
# It lints the scrape and the shipped rules with promtool. It runs a real
# Prometheus server (on 127.0.0.1, scraping only the daemon) and reads the
# counter and the firing out-of-region alert back through its HTTP API, and
# it has node_exporter's textfile collector read the daemon's textfile. It
# also checks the error paths (404, 405, a port already in use), an IPv6
# listen address, /healthz after a link is detached from outside, that 50
# concurrent clients and one client that sends nothing do not stop counting
# or status answers, the textfile written at exit, and that the counters
# keep their values across a restart on the same pin folder.

# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"

DAEMON=$LAB_OUTPUT/borderflowd
CLI=$LAB_OUTPUT/borderflow
RULES_DIR=$LAB_ROOT/packaging/prometheus
PORT=9300
READY_TIMEOUT_S=10
STOP_TIMEOUT_S=5
COUNT_TIMEOUT_S=10
PROMETHEUS_TIMEOUT_S=30
CURL_TIMEOUT_S=10
CONCURRENT_CLIENTS=50
# The daemon closes a connection that has sent nothing for 10 s (HTTP_TIMEOUT_S in metrics.c).
IDLE_CLOSE_MIN_S=8
IDLE_CLOSE_MAX_S=20
FIRST_BYTES=40404
SECOND_BYTES=50505
LOAD_BYTES=20202
OTHER_BYTES=30303

lab_require_root
lab_require_file "$DAEMON" "$CLI" "$LAB_BIN/sink" "$LAB_BIN/fakeclient"
lab_require_cmd ip ss awk jq curl bpftool sha256sum promtool prometheus prometheus-node-exporter

# Every HTTP request of this test goes to 127.0.0.1, never through a proxy from the environment.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy='*' NO_PROXY='*'

DAEMON_PID=
PROMETHEUS_PID=
NODE_PID=
SECOND_PIN=$LAB_PIN-second

# shellcheck disable=SC2317 # called by lab_teardown through lab_on_cleanup
metrics_cleanup()
{
	if [[ -n $PROMETHEUS_PID ]] && lab_alive "$PROMETHEUS_PID"; then
		lab_stop "$PROMETHEUS_PID" "$STOP_TIMEOUT_S"
	fi
	if [[ -n $NODE_PID ]] && lab_alive "$NODE_PID"; then
		lab_stop "$NODE_PID" "$STOP_TIMEOUT_S"
	fi
	if [[ -n $DAEMON_PID ]] && lab_alive "$DAEMON_PID"; then
		lab_stop "$DAEMON_PID" "$STOP_TIMEOUT_S"
	fi
	exec 3<&- 2>/dev/null
	[[ -d $SECOND_PIN ]] && rm -rf -- "$SECOND_PIN"
	return 0
}

lab_setup
lab_on_cleanup metrics_cleanup

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

APP_DIR=$LAB_TMP/opt/apps/com.alibabainc.dingtalk
WATCHED=$APP_DIR/dingtalk
UNWATCHED=$LAB_TMP/bin/fakeclient
CONF=$LAB_TMP/borderflow.conf
SOCK=$LAB_TMP/bf.sock
STATUS=$LAB_TMP/status.json
SCRAPE=$LAB_TMP/scrape.txt
TEXTFILE_DIR=$LAB_TMP/textfile
TEXTFILE=$TEXTFILE_DIR/borderflow.prom
METRICS_PORT=$(unused_port) || lab_bail "no free TCP port on 127.0.0.1 for metrics"
PROMETHEUS_PORT=$(unused_port) || lab_bail "no free TCP port on 127.0.0.1 for Prometheus"
[[ $PROMETHEUS_PORT != "$METRICS_PORT" ]] ||
	PROMETHEUS_PORT=$(unused_port) || lab_bail "no second free TCP port on 127.0.0.1"
[[ $PROMETHEUS_PORT != "$METRICS_PORT" ]] || lab_bail "no second free TCP port on 127.0.0.1"
METRICS_URL=http://127.0.0.1:$METRICS_PORT
PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT

mkdir -p "$APP_DIR" "$LAB_TMP/bin" "$TEXTFILE_DIR" || lab_bail "failed to create the folders"
cp "$LAB_BIN/fakeclient" "$WATCHED" || lab_bail "failed to copy fakeclient to '$WATCHED'"
cp "$LAB_BIN/fakeclient" "$UNWATCHED" || lab_bail "failed to copy fakeclient to '$UNWATCHED'"
lab_write_geo "$LAB_TMP/geo.csv"
# An override file whose name needs escaping in a label value: a double quote and a backslash.
OVERRIDE=$LAB_TMP/over\"ride\\x.csv
OVERRIDE_LABEL=$LAB_TMP/over\\\"ride\\\\x.csv
echo "$LAB_CN4/32,CN" >"$OVERRIDE" || lab_bail "failed to write '$OVERRIDE'"

# write_config FILE PIN SOCKET [LISTEN]
write_config()
{
	printf '%s\n' "[policy]" "approved = MO HK" \
		"[geo]" "data = $LAB_TMP/geo.csv" "override = $OVERRIDE" \
		"[app dingtalk]" "path = $APP_DIR/" "[alerts]" "file = $LAB_TMP/alerts.jsonl" \
		"[daemon]" "socket = $3" "pin = $2" \
		"[metrics]" "listen = ${4:-127.0.0.1:$METRICS_PORT}" >"$1"
}
write_config "$CONF" "$LAB_PIN" "$SOCK"

lab_assert_route "$LAB_CN4"
lab_sink_start "$PORT"

# --- helpers ----------------------------------------------------------------------

read_status()
{
	"$CLI" status --json --socket "$SOCK" >"$STATUS.tmp" 2>/dev/null &&
		jq -e . "$STATUS.tmp" >/dev/null 2>&1 && mv "$STATUS.tmp" "$STATUS"
}

# status_sum APP CC FIELD: FIELD (a jq path such as .transmit_bytes) summed over the
# destinations of APP in CC.
status_sum()
{
	jq -r --arg app "$1" --arg cc "$2" \
		"[.apps[]? | select(.app == \$app) | .destinations[]? |
		select(.country == \$cc) | ($3 // 0)] | add // 0" "$STATUS"
}

# scrape: GET /metrics into $SCRAPE; fails unless the status is 200.
scrape()
{
	local code

	code=$(curl -sS --max-time "$CURL_TIMEOUT_S" -o "$SCRAPE.tmp" -w '%{http_code}' \
		"$METRICS_URL/metrics" 2>/dev/null) || return 1
	[[ $code == 200 ]] && mv "$SCRAPE.tmp" "$SCRAPE"
}

# metric FILE SERIES: the value of one series, written as in the exposition with its labels
# in order, such as 'borderflow_flows_total{app="x",country="CN",verdict="foreign",transport="tcp"}'.
# Prints "missing" when the series is not there.
metric()
{
	awk -v series="$2" '
		index($0, series " ") == 1 { print substr($0, length(series) + 2); found = 1 }
		END { if (!found) print "missing" }' "$1"
}

# series NAME APP CC VERDICT: the series string of a traffic family.
series()
{
	printf '%s{app="%s",country="%s",verdict="%s"}' "$1" "$2" "$3" "$4"
}

# wait_status_stable APP CC: waits until the transmit bytes of APP in CC stay the same for 2 s.
wait_status_stable()
{
	local tries=$((COUNT_TIMEOUT_S * 2)) last=-1 same=0 now

	while ((tries-- > 0)); do
		read_status || return 1
		now=$(status_sum "$1" "$2" .transmit_bytes)
		if [[ $now == "$last" ]]; then
			((++same >= 4)) && return 0
		else
			same=0
		fi
		last=$now
		sleep 0.5
	done
	return 1
}

# scrape_between_status: a scrape that the status reads just before and just after bracket,
# with no counter change between them, so the two can be compared value by value. Tries 10 times.
scrape_between_status()
{
	local tries=10 before

	while ((tries-- > 0)); do
		read_status || return 1
		before=$(jq -S -c 'del(.flows_started, .flows_ended, .flows_expired)' "$STATUS")
		scrape || return 1
		read_status || return 1
		[[ $(jq -S -c 'del(.flows_started, .flows_ended, .flows_expired)' "$STATUS") == \
			"$before" ]] && return 0
		sleep 0.3
	done
	return 1
}

# send_watched BYTES / send_unwatched BYTES: one TCP connection to the CN lab host.
send_watched()
{
	lab_client "$WATCHED" tcp "$LAB_CN4" "$PORT" "$1" >/dev/null
}

send_unwatched()
{
	lab_client "$UNWATCHED" tcp "$LAB_CN4" "$PORT" "$1" >/dev/null
}

start_daemon()
{
	"$DAEMON" --config "$CONF" --cgroup "$LAB_CGROUP" --textfile-dir "$TEXTFILE_DIR" \
		>>"$LAB_TMP/daemon.out" 2>>"$LAB_TMP/daemon.log" &
	DAEMON_PID=$!
	LAB_PIDS+=("$DAEMON_PID")
	for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
		lab_alive "$DAEMON_PID" || return 1
		read_status && scrape && return 0
		sleep 0.1
	done
	return 1
}

# --- start ------------------------------------------------------------------------

if ! start_daemon; then
	not_ok "daemon serves status and metrics within $READY_TIMEOUT_S s" \
		"$(tail -n 20 "$LAB_TMP/daemon.log")"
	lab_finish
fi
ok "daemon serves status and metrics within $READY_TIMEOUT_S s"

# --- HTTP responses ---------------------------------------------------------------

headers=$(curl -sS --max-time "$CURL_TIMEOUT_S" -o /dev/null -D - "$METRICS_URL/metrics")
check_match "metrics content type is text format 0.0.4" "$headers" \
	$'[Cc]ontent-[Tt]ype: text/plain; version=0\\.0\\.4'
check_eq "healthz answers ok" \
	"$(curl -sS --max-time "$CURL_TIMEOUT_S" "$METRICS_URL/healthz")" ok
check_eq "unknown path answers 404" "$(curl -s --max-time "$CURL_TIMEOUT_S" -o /dev/null \
	-w '%{http_code}' "$METRICS_URL/nope")" 404
check_eq "POST answers 405" "$(curl -s --max-time "$CURL_TIMEOUT_S" -o /dev/null \
	-w '%{http_code}' -X POST --data x "$METRICS_URL/metrics")" 405
check_eq "HEAD of metrics answers 200" "$(curl -s --max-time "$CURL_TIMEOUT_S" -o /dev/null \
	-w '%{http_code}' --head "$METRICS_URL/metrics")" 200

# --- a port already in use stops a second daemon at start -------------------------------

write_config "$LAB_TMP/second.conf" "$SECOND_PIN" "$LAB_TMP/second.sock"
second_err=$(timeout 30 "$DAEMON" --config "$LAB_TMP/second.conf" --cgroup "$LAB_CGROUP" 2>&1)
second_rc=$?
check_range "daemon on a used metrics port exits non-zero" "$second_rc" 1 123
check_match "used port error names the address" "$second_err" \
	"failed to listen on 127\\.0\\.0\\.1:$METRICS_PORT for \\[metrics\\] listen: Address already in use"
rm -rf -- "$SECOND_PIN"
check_eq "first daemon still serves after the rejected start" \
	"$(curl -sS --max-time "$CURL_TIMEOUT_S" "$METRICS_URL/healthz")" ok

# --- an IPv6 listen address ---------------------------------------------------------

if ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/'; then
	V6_PORT=$(unused_port) || lab_bail "no free TCP port for the IPv6 endpoint"
	write_config "$LAB_TMP/v6.conf" "$SECOND_PIN" "$LAB_TMP/v6.sock" "[::1]:$V6_PORT"
	"$DAEMON" --config "$LAB_TMP/v6.conf" --cgroup "$LAB_CGROUP" >/dev/null 2>"$LAB_TMP/v6.log" &
	V6_PID=$!
	LAB_PIDS+=("$V6_PID")
	v6_health=none
	for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
		lab_alive "$V6_PID" || break
		v6_health=$(curl -s -g --max-time "$CURL_TIMEOUT_S" "http://[::1]:$V6_PORT/healthz") &&
			break
		sleep 0.1
	done
	check_eq "daemon serves on [::1]" "$v6_health" ok
	lab_stop "$V6_PID" "$STOP_TIMEOUT_S"
	check_eq "daemon on [::1] exits 0" "$?" 0
	rm -rf -- "$SECOND_PIN"
else
	skip "daemon serves on [::1]" "the host's lo has no ::1"
fi

# --- traffic, then the scrape against the status --------------------------------------------

send_watched "$FIRST_BYTES" || lab_bail "watched client failed to send to $LAB_CN4"
send_unwatched "$OTHER_BYTES" || lab_bail "unwatched client failed to send to $LAB_CN4"
lab_sink_wait_total $((FIRST_BYTES + OTHER_BYTES)) 5 ||
	diag "sink did not receive every byte: $(cat "$LAB_SINK_OUT")"
wait_status_stable dingtalk CN || diag "dingtalk CN bytes still changed after $COUNT_TIMEOUT_S s"
wait_status_stable other CN || diag "other CN bytes still changed after $COUNT_TIMEOUT_S s"
for ((i = 0; i < COUNT_TIMEOUT_S * 5; i++)); do
	read_status && [[ $(jq '[.alerts[]? | select(.app == "dingtalk")] | length' "$STATUS") -ge 1 ]] &&
		break
	sleep 0.2
done

if scrape_between_status; then
	ok "scrape between two equal status reads"
else
	not_ok "scrape between two equal status reads" "the counters kept changing"
fi

for app in dingtalk other; do
	for field in transmit_bytes receive_bytes transmit_packets receive_packets; do
		check_eq "metric $field of $app CN equals status" \
			"$(metric "$SCRAPE" "$(series "borderflow_${field}_total" "$app" CN foreign)")" \
			"$(status_sum "$app" CN ".$field")"
	done
	check_eq "metric tcp flows of $app CN equals status" \
		"$(metric "$SCRAPE" "borderflow_flows_total{app=\"$app\",country=\"CN\",verdict=\"foreign\",transport=\"tcp\"}")" \
		"$(status_sum "$app" CN .tcp.flows)"
done
check_range "metric transmit bytes of dingtalk CN covers the payload" \
	"$(metric "$SCRAPE" "$(series borderflow_transmit_bytes_total dingtalk CN foreign)")" \
	"$FIRST_BYTES" $((FIRST_BYTES + 200 * 120))
check_eq "metric unattributed bytes equals status" \
	"$(metric "$SCRAPE" borderflow_unattributed_bytes_total)" "$(jq -r .unattributed_bytes "$STATUS")"
check_eq "metric lost events equals status" \
	"$(metric "$SCRAPE" borderflow_lost_events_total)" "$(jq -r .lost_events "$STATUS")"
check_eq "metric alerts lost equals status" \
	"$(metric "$SCRAPE" borderflow_alerts_lost_total)" "$(jq -r .alerts_lost "$STATUS")"
check_eq "metric alerts of dingtalk CN equals status" \
	"$(metric "$SCRAPE" 'borderflow_alerts_total{app="dingtalk",country="CN",rule="foreign-destination"}')" \
	"$(jq -r '[.alerts[] | select(.app == "dingtalk" and .country == "CN" and
		.rule == "foreign-destination") | .count] | add // "missing"' "$STATUS")"
check_eq "metric geo generation equals status" \
	"$(metric "$SCRAPE" borderflow_geo_generation)" "$(jq -r .geo.generation "$STATUS")"
check_eq "metric IPv4 prefixes equals status" \
	"$(metric "$SCRAPE" 'borderflow_geo_prefixes{family="ipv4"}')" "$(jq -r .geo.prefixes_ipv4 "$STATUS")"
check_eq "metric IPv6 prefixes equals status" \
	"$(metric "$SCRAPE" 'borderflow_geo_prefixes{family="ipv6"}')" "$(jq -r .geo.prefixes_ipv6 "$STATUS")"
check_match "metric geo info names the geolocation file" "$(cat "$SCRAPE")" \
	"borderflow_geo_info\\{source=\"$LAB_TMP/geo.csv\",format=\"cidr\",date=\"\",sha256=\"$(sha256sum "$LAB_TMP/geo.csv" | cut -d' ' -f1)\"\\} 1"
check_eq "metric geo info escapes the override file name" \
	"$(grep -cF "borderflow_geo_info{source=\"$OVERRIDE_LABEL\",format=\"cidr\"" "$SCRAPE")" 1
check_eq "metric flows map capacity" "$(metric "$SCRAPE" 'borderflow_map_capacity{map="flows"}')" 65536
check_match "metric active flows is a number" "$(metric "$SCRAPE" borderflow_active_flows)" '^[0-9]+$'
check_eq "metric socks map capacity" "$(metric "$SCRAPE" 'borderflow_map_capacity{map="socks"}')" 262144
lab_dump_flows "$DAEMON_PID" "$LAB_TMP/flow-records.json"
check_eq "metric active flows equals the flow records in the flows and socks maps" \
	"$(metric "$SCRAPE" borderflow_active_flows)" "$(jq length "$LAB_TMP/flow-records.json")"
check_eq "metric totals entries" "$(metric "$SCRAPE" 'borderflow_map_entries{map="totals"}')" \
	"$(bpftool map dump pinned "$LAB_PIN/totals" -j 2>/dev/null | jq length)"
check_match "metric build info" "$(cat "$SCRAPE")" 'borderflow_build_info\{version="[^"]+"\} 1'
check_match "metric run count of the egress program" \
	"$(metric "$SCRAPE" 'borderflow_bpf_run_count_total{program="bf_egress"}')" '^[0-9]+$'
check_eq "no address, port, pid or user label" \
	"$(grep -v '^#' "$SCRAPE" | grep -cE '[{,](ip|addr|address|port|pid|uid|user|destination|source_ip)=')" 0
check_eq "no IP address in any label value" \
	"$(grep -v '^#' "$SCRAPE" | grep -cE '198\.51\.100\.|2001:db8')" 0
check_cmd "promtool check metrics accepts the scrape" sh -c "promtool check metrics <'$SCRAPE'"

# --- shipped rules ----------------------------------------------------------------

check_cmd "promtool check rules" promtool check rules "$RULES_DIR/borderflow.rules.yml"
check_cmd "promtool test rules" sh -c "cd '$RULES_DIR' && promtool test rules borderflow.rules.test.yml"
check_cmd "dashboard is JSON with panels" \
	jq -e '.panels | length > 0' "$RULES_DIR/grafana-dashboard.json"
check_eq "dashboard has a geomap panel on the country label" \
	"$(jq -r '[.panels[] | select(.type == "geomap") |
		.options.layers[0].location.lookup] | join(" ")' "$RULES_DIR/grafana-dashboard.json")" country

# --- many clients and a silent one ----------------------------------------------------

# The silent client connects and sends nothing; bash keeps it open on fd 3.
if exec 3<>"/dev/tcp/127.0.0.1/$METRICS_PORT"; then
	ok "silent client connects"
else
	not_ok "silent client connects"
fi
silent_start=$(date +%s)
before=$(status_sum dingtalk CN .transmit_bytes)
declare -a CURL_PIDS=()
for ((i = 0; i < CONCURRENT_CLIENTS; i++)); do
	curl -s --max-time "$CURL_TIMEOUT_S" -o "$LAB_TMP/concurrent.$i" -w '%{http_code}\n' \
		"$METRICS_URL/metrics" >"$LAB_TMP/concurrent.$i.code" 2>/dev/null &
	CURL_PIDS+=("$!")
	LAB_PIDS+=("$!")
done
if send_watched "$LOAD_BYTES"; then
	ok "watched client sends during the concurrent scrapes"
else
	not_ok "watched client sends during the concurrent scrapes"
fi
if read_status; then
	ok "status answers during the concurrent scrapes"
else
	not_ok "status answers during the concurrent scrapes"
fi
for pid in "${CURL_PIDS[@]}"; do
	wait "$pid" 2>/dev/null
	lab_forget_pid "$pid"
done
answered=$(cat "$LAB_TMP"/concurrent.*.code 2>/dev/null | grep -c '^200$')
check_eq "every concurrent client gets its scrape" "$answered" "$CONCURRENT_CLIENTS"
check_eq "every concurrent scrape is complete" \
	"$(grep -l '^borderflow_build_info' "$LAB_TMP"/concurrent.[0-9]* 2>/dev/null | wc -l)" \
	"$CONCURRENT_CLIENTS"
wait_status_stable dingtalk CN || diag "dingtalk CN bytes still changed after $COUNT_TIMEOUT_S s"
check_range "counting goes on with a silent client connected" \
	"$(status_sum dingtalk CN .transmit_bytes)" $((before + LOAD_BYTES)) $((before + LOAD_BYTES + 200 * 120))
scrape_between_status || diag "the counters kept changing"
check_eq "scrape with a silent client connected equals status" \
	"$(metric "$SCRAPE" "$(series borderflow_transmit_bytes_total dingtalk CN foreign)")" \
	"$(status_sum dingtalk CN .transmit_bytes)"
# read returns 1 at end of file, which the daemon's idle timeout causes, and more than 128
# when it times out itself.
read -r -t "$IDLE_CLOSE_MAX_S" -u 3 _
read_rc=$?
check_eq "daemon closes the silent connection" "$read_rc" 1
# Held open through the scrapes above, then closed by the idle timeout, not at once.
check_range "silent connection closed after the idle timeout" \
	$(($(date +%s) - silent_start)) "$IDLE_CLOSE_MIN_S" "$IDLE_CLOSE_MAX_S"
exec 3<&-

# --- a real Prometheus server ---------------------------------------------------------

cat >"$LAB_TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $RULES_DIR/borderflow.rules.yml
scrape_configs:
  - job_name: borderflow
    static_configs:
      - targets: ["127.0.0.1:$METRICS_PORT"]
EOF

prometheus --config.file="$LAB_TMP/prometheus.yml" --storage.tsdb.path="$LAB_TMP/tsdb" \
	--web.listen-address="127.0.0.1:$PROMETHEUS_PORT" >"$LAB_TMP/prometheus.log" 2>&1 &
PROMETHEUS_PID=$!
LAB_PIDS+=("$PROMETHEUS_PID")

# prom_query EXPR: the first value of an instant query, or "none".
prom_query()
{
	curl -sS --max-time "$CURL_TIMEOUT_S" "$PROMETHEUS_URL/api/v1/query" \
		--data-urlencode "query=$1" 2>/dev/null |
		jq -r 'if .status == "success" and (.data.result | length) > 0
			then .data.result[0].value[1] else "none" end' 2>/dev/null || echo none
}

# firing_alerts: "NAME app country" of every firing alert, one a line.
firing_alerts()
{
	curl -sS --max-time "$CURL_TIMEOUT_S" "$PROMETHEUS_URL/api/v1/alerts" 2>/dev/null |
		jq -r '.data.alerts[]? | select(.state == "firing") |
			"\(.labels.alertname) \(.labels.app // "-") \(.labels.country // "-")"' 2>/dev/null
}

scraped=false
for ((i = 0; i < PROMETHEUS_TIMEOUT_S * 5; i++)); do
	lab_alive "$PROMETHEUS_PID" || break
	if [[ $(prom_query 'up{job="borderflow"}') == 1 &&
		$(prom_query 'borderflow_build_info') == 1 ]]; then
		scraped=true
		break
	fi
	sleep 0.2
done
if [[ $scraped == true ]]; then
	ok "Prometheus scrapes the daemon within $PROMETHEUS_TIMEOUT_S s"
else
	not_ok "Prometheus scrapes the daemon within $PROMETHEUS_TIMEOUT_S s" \
		"$(tail -n 20 "$LAB_TMP/prometheus.log")"
fi

# increase() needs a sample before the new bytes, which the wait above ensured.
send_watched "$SECOND_BYTES" || diag "watched client failed to send the second bytes"
send_unwatched "$OTHER_BYTES" || diag "unwatched client failed to send the second bytes"
wait_status_stable dingtalk CN || diag "dingtalk CN bytes still changed after $COUNT_TIMEOUT_S s"
expected=$(status_sum dingtalk CN .transmit_bytes)
for ((i = 0; i < PROMETHEUS_TIMEOUT_S * 5; i++)); do
	[[ $(prom_query 'borderflow_transmit_bytes_total{app="dingtalk",country="CN"}') == \
		"$expected" ]] && break
	sleep 0.2
done
check_eq "Prometheus has the dingtalk CN transmit bytes of the status" \
	"$(prom_query 'borderflow_transmit_bytes_total{app="dingtalk",country="CN"}')" "$expected"

for ((i = 0; i < PROMETHEUS_TIMEOUT_S * 5; i++)); do
	firing_alerts | grep -qx 'BorderflowOutOfRegionTransfer dingtalk CN' && break
	sleep 0.2
done
check_eq "out-of-region alert fires for dingtalk CN" \
	"$(firing_alerts | grep -cx 'BorderflowOutOfRegionTransfer dingtalk CN')" 1
check_eq "no out-of-region alert for unwatched traffic" \
	"$(firing_alerts | grep -c '^BorderflowOutOfRegionTransfer other ')" 0
check_eq "Prometheus reads the escaped label value back" \
	"$(curl -sS --max-time "$CURL_TIMEOUT_S" "$PROMETHEUS_URL/api/v1/query" \
		--data-urlencode 'query=borderflow_geo_info{source=~".*ride.*"}' |
		jq -r '.data.result[0].metric.source')" "$OVERRIDE"
check_eq "no down or absent alert" \
	"$(firing_alerts | grep -cE '^Borderflow(Down|MetricsAbsent) ')" 0

# Every query of the dashboard, with its variables set, is valid PromQL for this server.
bad_queries=0
while IFS= read -r expr; do
	expr=${expr//\$__rate_interval/1m}
	expr=${expr//\$__range/5m}
	expr=${expr//\$instance/.*}
	expr=${expr//\$app/.*}
	status=$(curl -sS --max-time "$CURL_TIMEOUT_S" "$PROMETHEUS_URL/api/v1/query" \
		--data-urlencode "query=$expr" 2>/dev/null | jq -r .status 2>/dev/null)
	if [[ $status != success ]]; then
		bad_queries=$((bad_queries + 1))
		diag "dashboard query failed: $expr"
	fi
done < <(jq -r '.panels[].targets[]?.expr' "$RULES_DIR/grafana-dashboard.json")
check_eq "every dashboard query runs on Prometheus" "$bad_queries" 0

lab_stop "$PROMETHEUS_PID" "$STOP_TIMEOUT_S"
check_eq "Prometheus stops within $STOP_TIMEOUT_S s of SIGTERM" "$?" 0
PROMETHEUS_PID=

# --- textfile, restart -----------------------------------------------------------------

check_cmd "promtool check metrics accepts the textfile" sh -c "promtool check metrics <'$TEXTFILE'"
check_eq "textfile folder has only the textfile" "$(find "$TEXTFILE_DIR" -mindepth 1 -printf '%f\n')" \
	borderflow.prom

# node_exporter's textfile collector reads the file: its own scrape has the daemon's series.
NODE_PORT=$(unused_port) || lab_bail "no free TCP port on 127.0.0.1 for node_exporter"
prometheus-node-exporter --web.listen-address="127.0.0.1:$NODE_PORT" --collector.disable-defaults \
	--collector.textfile --collector.textfile.directory="$TEXTFILE_DIR" \
	>"$LAB_TMP/node-exporter.log" 2>&1 &
NODE_PID=$!
LAB_PIDS+=("$NODE_PID")
for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
	curl -s --max-time "$CURL_TIMEOUT_S" -o "$LAB_TMP/node.txt" "http://127.0.0.1:$NODE_PORT/metrics" &&
		break
	sleep 0.1
done
check_eq "node_exporter reads the textfile without error" \
	"$(metric "$LAB_TMP/node.txt" node_textfile_scrape_error)" 0
check_match "node_exporter exposes the textfile's series" \
	"$(metric "$LAB_TMP/node.txt" "$(series borderflow_transmit_bytes_total dingtalk CN foreign)")" \
	'^[1-9][0-9]*$'
lab_stop "$NODE_PID" "$STOP_TIMEOUT_S"
# node_exporter does not catch SIGTERM, so it ends with the signal's status, 143.
check_match "node_exporter stops within $STOP_TIMEOUT_S s of SIGTERM" "$?" '^(0|143)$'
NODE_PID=

scrape_between_status || diag "the counters kept changing"
last_bytes=$(metric "$SCRAPE" "$(series borderflow_transmit_bytes_total dingtalk CN foreign)")
lab_stop "$DAEMON_PID" "$STOP_TIMEOUT_S"
check_eq "daemon exits 0 within $STOP_TIMEOUT_S s of SIGTERM" "$?" 0
DAEMON_PID=
check_eq "textfile written at exit has the last count" \
	"$(metric "$TEXTFILE" "$(series borderflow_transmit_bytes_total dingtalk CN foreign)")" \
	"$last_bytes"
check_eq "endpoint closed after exit" "$(curl -s --max-time "$CURL_TIMEOUT_S" -o /dev/null \
	-w '%{http_code}' "$METRICS_URL/healthz")" 000

if start_daemon; then
	ok "daemon restarts on the same pin folder"
else
	not_ok "daemon restarts on the same pin folder" "$(tail -n 20 "$LAB_TMP/daemon.log")"
fi
check_eq "restarted daemon's metric keeps the pinned count" \
	"$(metric "$SCRAPE" "$(series borderflow_transmit_bytes_total dingtalk CN foreign)")" \
	"$last_bytes"
check_eq "restarted daemon's alert counter keeps the pinned count" \
	"$(metric "$SCRAPE" 'borderflow_alerts_total{app="dingtalk",country="CN",rule="foreign-destination"}')" \
	1

# Detaching one of the daemon's cgroup links from outside turns /healthz to 503.
cgroup_id=$(stat -c %i "$LAB_CGROUP")
link_id=$(bpftool link show -j 2>/dev/null |
	jq -r --argjson cg "$cgroup_id" '[.[] | select(.cgroup_id == $cg)][0].id // empty')
if [[ -n $link_id ]] && bpftool link detach id "$link_id"; then
	ok "one cgroup link detached"
else
	not_ok "one cgroup link detached" "no link of cgroup id $cgroup_id, or bpftool failed"
fi
check_eq "healthz answers 503 after a detach" "$(curl -s --max-time "$CURL_TIMEOUT_S" \
	-o /dev/null -w '%{http_code}' "$METRICS_URL/healthz")" 503

lab_stop "$DAEMON_PID" "$STOP_TIMEOUT_S"
check_eq "restarted daemon exits 0" "$?" 0
DAEMON_PID=
lab_sink_stop || diag "sink exited with status $?"
lab_finish
