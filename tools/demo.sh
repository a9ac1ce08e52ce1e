#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A demonstration of borderflow on this machine, safe to run beside a real
# monitor. It builds the test lab (two network namespaces joined by a veth
# pair, documentation addresses only, no default route), starts a second
# borderflowd on the default geolocation data that watches one demo client
# and attaches only to the lab's own cgroup, sends a little traffic from the
# client to lab hosts placed in Macau, Hong Kong, China and the United
# States, prints what borderflow saw, and removes everything again.
#
# The lab addresses are documentation ranges that no geolocation database
# places anywhere, so an override file maps them to those countries; the
# rest of the data is the default one.
#
# Usage, as root from the repository after "make tests": bash tools/demo.sh

set -u

# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/../tests/lab/lib.sh"

DAEMON=$LAB_OUTPUT/borderflowd
CLI=$LAB_OUTPUT/borderflow
DATA_DIR=${BF_DATA_DIR:-/usr/share/borderflow}
PORT=9443
READY_TIMEOUT_S=15

CI=true # a missing capability is an error here, not a reason to skip
lab_require_root
lab_require_file "$DAEMON" "$CLI" "$LAB_BIN/sink" "$LAB_BIN/fakeclient"
lab_require_cmd ip ss awk
for f in "$DATA_DIR/geoip" "$DATA_DIR/geoip6"; do
	[[ -s $f ]] || lab_bail "default geolocation data '$f' not found; run 'sh tools/setup.sh run'"
done

DAEMON_PID=

# shellcheck disable=SC2317 # called by lab_teardown through lab_on_cleanup
demo_cleanup()
{
	if [[ -n $DAEMON_PID ]] && lab_alive "$DAEMON_PID"; then
		lab_stop "$DAEMON_PID" 5
	fi
	return 0
}

lab_setup
METRICS_PORT=$(lab_free_port) || lab_bail "no free TCP port on 127.0.0.1 for metrics"
lab_on_cleanup demo_cleanup

APP_DIR=$LAB_TMP/opt/apps/demo
CLIENT=$APP_DIR/demo-client
CONF=$LAB_TMP/demo.conf
SOCK=$LAB_TMP/demo.sock
ALERTS=$LAB_TMP/alerts.jsonl

mkdir -p "$APP_DIR" || lab_bail "failed to create '$APP_DIR'"
cp "$LAB_BIN/fakeclient" "$CLIENT" || lab_bail "failed to copy the demo client"
lab_write_geo "$LAB_TMP/lab-override.csv"
printf '%s\n' "[policy]" "approved = MO HK" \
	"[geo]" "data = $DATA_DIR/geoip $DATA_DIR/geoip6" "override = $LAB_TMP/lab-override.csv" \
	"[app demo]" "path = $APP_DIR/" \
	"[alerts]" "file = $ALERTS" \
	"[daemon]" "socket = $SOCK" "pin = $LAB_PIN" \
	"[metrics]" "listen = 127.0.0.1:$METRICS_PORT" >"$CONF"

echo "demo: starting a second borderflowd for the demo client, on cgroup $LAB_CGROUP"
"$DAEMON" --config "$CONF" --cgroup "$LAB_CGROUP" 2>"$LAB_TMP/daemon.log" &
DAEMON_PID=$!
LAB_PIDS+=("$DAEMON_PID")
for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
	lab_alive "$DAEMON_PID" || lab_bail "borderflowd exited: $(cat "$LAB_TMP/daemon.log")"
	"$CLI" status --socket "$SOCK" >/dev/null 2>&1 && break
	sleep 0.1
done
"$CLI" status --socket "$SOCK" >/dev/null 2>&1 ||
	lab_bail "borderflowd not ready after $READY_TIMEOUT_S s: $(cat "$LAB_TMP/daemon.log")"

lab_sink_start "$PORT"
for target in "$LAB_MO4 tcp 4000" "$LAB_HK6 tcp 3000" "$LAB_CN4 tcp 20000" \
	"$LAB_US4 udp 5000"; do
	read -r addr mode bytes <<<"$target"
	lab_assert_route "$addr"
	echo "demo: demo-client sends $bytes bytes over $mode to $addr"
	lab_client "$CLIENT" "$mode" "$addr" "$PORT" "$bytes" >/dev/null ||
		lab_bail "demo client failed to send to $addr"
done
lab_sink_wait_total 32000 5 || true
sleep 1.5 # flow events reach the daemon within its one-second tick

echo
echo "demo: borderflow status --socket $SOCK"
"$CLI" status --socket "$SOCK"
echo
echo "demo: alerts ($ALERTS):"
cat "$ALERTS" 2>/dev/null
echo
echo "demo: the lab, the demo daemon and its files are removed now"
lab_stop "$DAEMON_PID" 5
DAEMON_PID=
lab_finish >/dev/null
