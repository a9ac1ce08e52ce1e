#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Lab test of counting while the daemon does not read its events. The daemon
# is stopped with SIGSTOP while the watched client makes more connections
# than the ring buffer has room for events. Events are then lost, and the
# daemon reports it, but every byte and every flow must still be in the
# counters when it runs again.

# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"

DAEMON=$LAB_OUTPUT/borderflowd
CLI=$LAB_OUTPUT/borderflow
PORT=9200
READY_TIMEOUT_S=10
STOP_TIMEOUT_S=5
# A flow sends two events (start and end) of 184 bytes each with the ring
# buffer's record header, so 3000 connections need 1.1 MB of the 1 MB ring.
CONNECTIONS=3000
BYTES_PER_CONNECTION=100
# Per packet at most 60 bytes of IPv4 and 60 of TCP header.
TCP_HEADER_MAX=120

lab_require_root
lab_require_file "$DAEMON" "$CLI" "$LAB_BIN/sink" "$LAB_BIN/fakeclient"
lab_require_cmd ip jq

DAEMON_PID=

# shellcheck disable=SC2317 # called by lab_teardown through lab_on_cleanup
overflow_cleanup()
{
	if [[ -n $DAEMON_PID ]] && lab_alive "$DAEMON_PID"; then
		kill -CONT "$DAEMON_PID" 2>/dev/null
		lab_stop "$DAEMON_PID" "$STOP_TIMEOUT_S"
	fi
	return 0
}

lab_setup
METRICS_PORT=$(lab_free_port) || lab_bail "no free TCP port on 127.0.0.1 for metrics"
lab_on_cleanup overflow_cleanup

APP_DIR=$LAB_TMP/opt/apps/com.alibabainc.dingtalk
WATCHED=$APP_DIR/dingtalk
CONF=$LAB_TMP/borderflow.conf
SOCK=$LAB_TMP/bf.sock
STATUS=$LAB_TMP/status.json

mkdir -p "$APP_DIR" || lab_bail "failed to create '$APP_DIR'"
cp "$LAB_BIN/fakeclient" "$WATCHED" || lab_bail "failed to copy fakeclient to '$WATCHED'"
lab_write_geo "$LAB_TMP/geo.csv"
printf '%s\n' "[policy]" "approved = MO HK" "[geo]" "data = $LAB_TMP/geo.csv" \
	"[app dingtalk]" "path = $APP_DIR/" "[alerts]" "file = $LAB_TMP/alerts.jsonl" \
	"[daemon]" "socket = $SOCK" "pin = $LAB_PIN" \
	"[metrics]" "listen = 127.0.0.1:$METRICS_PORT" >"$CONF"

lab_assert_route "$LAB_CN4"
lab_sink_start "$PORT"

lab_start_daemon "$CONF" "$SOCK" "$READY_TIMEOUT_S"

kill -STOP "$DAEMON_PID" || lab_bail "failed to stop the daemon with SIGSTOP"
if out=$(lab_client "$WATCHED" --repeat "$CONNECTIONS" tcp "$LAB_CN4" "$PORT" \
	"$BYTES_PER_CONNECTION" 2>&1); then
	ok "client makes $CONNECTIONS connections while the daemon is stopped"
else
	not_ok "client makes $CONNECTIONS connections while the daemon is stopped" "$out"
fi
kill -CONT "$DAEMON_PID" || lab_bail "failed to resume the daemon with SIGCONT"

expected=$((CONNECTIONS * BYTES_PER_CONNECTION))
lab_sink_wait_total "$expected" 10 || diag "sink: $(cat "$LAB_SINK_OUT")"
check_eq "sink bytes" "$(lab_sink_bytes tcp "$LAB_CN4" "$PORT")" "$expected"

# status_cn FIELD: FIELD of the CN destinations of dingtalk, over TCP.
status_cn()
{
	jq --arg f "$1" '[.apps[] | select(.app == "dingtalk") | .destinations[] |
		select(.country == "CN") | .tcp[$f]] | add // 0' "$STATUS"
}

for ((i = 0; i < 50; i++)); do
	"$CLI" status --json --socket "$SOCK" >"$STATUS" 2>/dev/null &&
		(($(status_cn transmit_bytes) >= expected)) && break
	sleep 0.2
done
check_match "events were lost" "$(jq .lost_events "$STATUS")" '^[1-9][0-9]*$'
check_eq "flows counted despite lost events" "$(status_cn flows)" "$CONNECTIONS"
packets=$(status_cn transmit_packets)
check_range "transmit bytes counted despite lost events" "$(status_cn transmit_bytes)" \
	"$expected" $((expected + packets * TCP_HEADER_MAX))
check_eq "no unattributed bytes" "$(jq .unattributed_bytes "$STATUS")" 0
check_match "daemon still answers" "$("$CLI" status --socket "$SOCK" 2>&1)" 'dingtalk +CN'

lab_sink_stop || diag "sink exited with status $?"
lab_stop "$DAEMON_PID" "$STOP_TIMEOUT_S"
check_eq "daemon exits 0 within $STOP_TIMEOUT_S s of SIGTERM" "$?" 0
DAEMON_PID=
lab_finish
