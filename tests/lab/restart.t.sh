#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Lab test of a daemon that starts while the watched client already runs.
# One client connects before the start and sends after it: its socket was
# never seen by the socket hooks and must be labelled from /proc. Another
# client process starts before the daemon and opens its socket after: its
# process must be seeded from /proc. Both must count as the watched
# application, not as unattributed, and raise their alerts. A second start
# with another application added keeps the pinned counters of the first.

# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"

DAEMON=$LAB_OUTPUT/borderflowd
CLI=$LAB_OUTPUT/borderflow
PORT=9100
PAUSE_MS=3000
READY_TIMEOUT_S=10
STOP_TIMEOUT_S=5
OPEN_SOCKET_BYTES=20202
SEEDED_BYTES=30303
# At most 200 packets of at most 120 header bytes each (see monitor.t.sh).
HEADER_ALLOWANCE=$((200 * 120))

lab_require_root
lab_require_file "$DAEMON" "$CLI" "$LAB_BIN/sink" "$LAB_BIN/fakeclient"
lab_require_cmd ip ss awk jq

DAEMON_PID=

# shellcheck disable=SC2317 # called by lab_teardown through lab_on_cleanup
restart_cleanup()
{
	if [[ -n $DAEMON_PID ]] && lab_alive "$DAEMON_PID"; then
		lab_stop "$DAEMON_PID" "$STOP_TIMEOUT_S"
	fi
	return 0
}

lab_setup
METRICS_PORT=$(lab_free_port) || lab_bail "no free TCP port on 127.0.0.1 for metrics"
lab_on_cleanup restart_cleanup

APP_DIR=$LAB_TMP/opt/apps/com.alibabainc.dingtalk
WATCHED=$APP_DIR/dingtalk
CONF=$LAB_TMP/borderflow.conf
SOCK=$LAB_TMP/bf.sock
STATUS=$LAB_TMP/status.json
ALERTS=$LAB_TMP/alerts.jsonl

mkdir -p "$APP_DIR" || lab_bail "failed to create '$APP_DIR'"
cp "$LAB_BIN/fakeclient" "$WATCHED" || lab_bail "failed to copy fakeclient to '$WATCHED'"
lab_write_geo "$LAB_TMP/geo.csv"
printf '%s\n' "[policy]" "approved = MO HK" "[geo]" "data = $LAB_TMP/geo.csv" \
	"[app dingtalk]" "path = $APP_DIR/" "[alerts]" "file = $ALERTS" \
	"[daemon]" "socket = $SOCK" "pin = $LAB_PIN" \
	"[metrics]" "listen = 127.0.0.1:$METRICS_PORT" >"$CONF"

lab_assert_route "$LAB_CN4"
lab_assert_route "$LAB_US4"
lab_sink_start "$PORT"

# Connected now, sends after the pause, by when the daemon runs.
lab_client "$WATCHED" --pause-ms "$PAUSE_MS" tcp "$LAB_CN4" "$PORT" "$OPEN_SOCKET_BYTES" \
	>"$LAB_TMP/open.out" 2>&1 &
OPEN_PID=$!
LAB_PIDS+=("$OPEN_PID")
# Runs now, opens its socket after the delay.
lab_client "$WATCHED" --delay-ms "$PAUSE_MS" tcp "$LAB_US4" "$PORT" "$SEEDED_BYTES" \
	>"$LAB_TMP/seeded.out" 2>&1 &
SEEDED_PID=$!
LAB_PIDS+=("$SEEDED_PID")

established_to_cn()
{
	lab_ns "$LAB_CLI" ss -Htn state established "dst $LAB_CN4" | wc -l
}

for ((i = 0; i < 50; i++)); do
	(($(established_to_cn) >= 1)) && break
	sleep 0.05
done
check_eq "client connected before daemon start" "$(established_to_cn)" 1

"$DAEMON" --config "$CONF" --cgroup "$LAB_CGROUP" -v >"$LAB_TMP/daemon.out" \
	2>"$LAB_TMP/daemon.log" &
DAEMON_PID=$!
LAB_PIDS+=("$DAEMON_PID")

ready=false
for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
	lab_alive "$DAEMON_PID" || break
	if "$CLI" status --json --socket "$SOCK" >/dev/null 2>&1; then
		ready=true
		break
	fi
	sleep 0.1
done
if [[ $ready != true ]]; then
	not_ok "daemon ready within $READY_TIMEOUT_S s" "$(tail -n 20 "$LAB_TMP/daemon.log")"
	lab_finish
fi
ok "daemon ready within $READY_TIMEOUT_S s"
check_match "daemon seeds a running process" "$(cat "$LAB_TMP/daemon.log")" \
	'[1-9][0-9]* running processes of watched applications found'
check_match "daemon labels an open socket" "$(cat "$LAB_TMP/daemon.log")" \
	'[1-9][0-9]* sockets opened before the start labelled'

wait "$OPEN_PID"
check_eq "client with open socket exits 0" "$?" 0
wait "$SEEDED_PID"
check_eq "seeded client exits 0" "$?" 0
lab_sink_wait_total $((OPEN_SOCKET_BYTES + SEEDED_BYTES)) 5 ||
	diag "sink did not receive every byte: $(cat "$LAB_SINK_OUT")"

# status_sum APP CC FIELD: FIELD summed over the destinations of APP in CC.
status_sum()
{
	jq --arg app "$1" --arg cc "$2" --arg f "$3" \
		'[.apps[] | select(.app == $app) | .destinations[] | select(.country == $cc) |
		.[$f]] | add // 0' "$STATUS"
}

for ((i = 0; i < 50; i++)); do
	"$CLI" status --json --socket "$SOCK" >"$STATUS" 2>/dev/null &&
		(($(status_sum dingtalk CN transmit_bytes) >= OPEN_SOCKET_BYTES)) &&
		(($(status_sum dingtalk US transmit_bytes) >= SEEDED_BYTES)) && break
	sleep 0.2
done
check_range "open socket counted as dingtalk CN" "$(status_sum dingtalk CN transmit_bytes)" \
	"$OPEN_SOCKET_BYTES" $((OPEN_SOCKET_BYTES + HEADER_ALLOWANCE))
check_range "seeded process counted as dingtalk US" "$(status_sum dingtalk US transmit_bytes)" \
	"$SEEDED_BYTES" $((SEEDED_BYTES + HEADER_ALLOWANCE))
check_eq "no unattributed bytes" "$(jq .unattributed_bytes "$STATUS")" 0

# alert_count ADDRESS: alerts of dingtalk for destination ADDRESS.
alert_count()
{
	jq -s --arg ip "$1" \
		'[.[] | select(.destination.ip == $ip and .borderflow.app == "dingtalk")] | length' \
		"$ALERTS" 2>/dev/null || echo 0
}
check_eq "alert for the open socket" "$(alert_count "$LAB_CN4")" 1
check_eq "alert for the seeded process" "$(alert_count "$LAB_US4")" 1
check_eq "alert names the seeded executable" \
	"$(jq -r --arg ip "$LAB_US4" 'select(.destination.ip == $ip) | .process.executable' \
		"$ALERTS")" "$WATCHED"

lab_stop "$DAEMON_PID" "$STOP_TIMEOUT_S"
check_eq "daemon exits 0 within $STOP_TIMEOUT_S s of SIGTERM" "$?" 0
DAEMON_PID=

# --- a restart keeps the pinned counters ------------------------------------------

# A new section before dingtalk: the pinned ids, not the config order, name the counts.
cn_before=$(status_sum dingtalk CN transmit_bytes)
us_before=$(status_sum dingtalk US transmit_bytes)
mkdir -p "$LAB_TMP/opt/apps/newer" || lab_bail "failed to create a second app folder"
printf '%s\n' "[policy]" "approved = MO HK" "[geo]" "data = $LAB_TMP/geo.csv" \
	"[app newer]" "path = $LAB_TMP/opt/apps/newer/" \
	"[app dingtalk]" "path = $APP_DIR/" "[alerts]" "file = $ALERTS" \
	"[daemon]" "socket = $SOCK" "pin = $LAB_PIN" \
	"[metrics]" "listen = 127.0.0.1:$METRICS_PORT" >"$CONF"

"$DAEMON" --config "$CONF" --cgroup "$LAB_CGROUP" >>"$LAB_TMP/daemon.out" \
	2>>"$LAB_TMP/daemon.log" &
DAEMON_PID=$!
LAB_PIDS+=("$DAEMON_PID")
for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
	"$CLI" status --json --socket "$SOCK" >"$STATUS" 2>/dev/null && break
	lab_alive "$DAEMON_PID" || break
	sleep 0.1
done
check_eq "restarted daemon keeps dingtalk CN bytes" "$(status_sum dingtalk CN transmit_bytes)" \
	"$cn_before"
check_eq "restarted daemon keeps dingtalk US bytes" "$(status_sum dingtalk US transmit_bytes)" \
	"$us_before"
check_eq "new application starts from zero" "$(status_sum newer CN transmit_bytes)" 0
check_eq "restarted daemon keeps the alert counts" \
	"$(jq '[.alerts[] | select(.app == "dingtalk") | .count] | add // 0' "$STATUS")" 2
check_match "second daemon on the same pins is rejected" \
	"$("$DAEMON" --config "$CONF" --cgroup "$LAB_CGROUP" --socket "$LAB_TMP/second.sock" 2>&1)" \
	"another borderflowd uses the pinned maps in '$LAB_PIN'"

lab_sink_stop || diag "sink exited with status $?"
lab_stop "$DAEMON_PID" "$STOP_TIMEOUT_S"
check_eq "restarted daemon exits 0 within $STOP_TIMEOUT_S s of SIGTERM" "$?" 0
DAEMON_PID=
lab_finish
