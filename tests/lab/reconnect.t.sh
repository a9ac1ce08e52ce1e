#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Lab test of two TCP sockets of a watched client that differ from one connection with bare
# TCP headers:
#
# - A socket that connects, disconnects with connect(AF_UNSPEC) and connects to the same peer
#   again makes two connections, so two flows, each with its own start and end.
# - A socket whose every packet out carries an IPv6 destination options header: such packets
#   count under the protocol number of that header (60), never under tcp, also once the
#   server's first reply has started the socket's TCP flow.

# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"

DAEMON=$LAB_OUTPUT/borderflowd
CLI=$LAB_OUTPUT/borderflow
READY_TIMEOUT_S=10
STOP_TIMEOUT_S=5
COUNT_TIMEOUT_S=10
RECONNECT_PORT=9801
DSTOPTS_PORT=9802
BYTES=3000
# Per packet at most 60 bytes of IP header (IPv6: 40, plus 8 of destination options) and 60 of
# TCP header.
HEADER_MAX=120

lab_require_root
lab_require_file "$DAEMON" "$CLI" "$LAB_BIN/sink" "$LAB_BIN/fakeclient"
lab_require_cmd ip jq bpftool

lab_setup

APP_DIR=$LAB_TMP/opt/apps/com.alibabainc.dingtalk
WATCHED=$APP_DIR/dingtalk
CONF=$LAB_TMP/borderflow.conf
SOCK=$LAB_TMP/bf.sock
STATUS=$LAB_TMP/status.json
ENTRIES=$LAB_TMP/flows.json

mkdir -p "$APP_DIR" || lab_bail "failed to create '$APP_DIR'"
cp "$LAB_BIN/fakeclient" "$WATCHED" || lab_bail "failed to copy fakeclient to '$WATCHED'"
lab_write_config "$CONF" "$SOCK" "$APP_DIR"

lab_assert_route "$LAB_CN4"
lab_assert_route "$LAB_US6"
lab_sink_start "$RECONNECT_PORT" "$DSTOPTS_PORT"
lab_start_daemon "$CONF" "$SOCK" "$READY_TIMEOUT_S"

# --- traffic ----------------------------------------------------------------------

if out=$(lab_client "$WATCHED" --reconnect tcp "$LAB_CN4" "$RECONNECT_PORT" "$BYTES" 2>&1); then
	ok "watched client connects twice on one socket to $LAB_CN4"
else
	not_ok "watched client connects twice on one socket to $LAB_CN4" "$out"
fi
if out=$(lab_client "$WATCHED" --dstopts tcp "$LAB_US6" "$DSTOPTS_PORT" "$BYTES" 2>&1); then
	ok "watched client sends with destination options to $LAB_US6"
else
	not_ok "watched client sends with destination options to $LAB_US6" "$out"
fi
lab_sink_wait_total $((3 * BYTES)) "$COUNT_TIMEOUT_S" ||
	diag "sink received $(lab_sink_bytes any any any) of $((3 * BYTES)) bytes"

# --- counts -------------------------------------------------------------------------

lab_wait_counts "$CLI" "$SOCK" "$STATUS" 3 $((2 * COUNT_TIMEOUT_S)) ||
	diag "counts did not settle within $((2 * COUNT_TIMEOUT_S)) s"
lab_dump_flows "$DAEMON_PID" "$ENTRIES"

# status CC PART FIELD: FIELD of dingtalk's destinations in CC, in PART (tcp, udp, or "all"
# for every transport).
status()
{
	jq --arg cc "$1" --arg part "$2" --arg f "$3" \
		'[.apps[] | select(.app == "dingtalk") | .destinations[] | select(.country == $cc) |
		if $part == "all" then .[$f] else .[$part][$f] end // 0] | add // 0' "$STATUS"
}

# entries FILTER: the number of flow records that the jq FILTER selects.
entries()
{
	jq "[.[].formatted | select($1)] | length" "$ENTRIES"
}

check_eq "sink saw two connections on port $RECONNECT_PORT" \
	"$(lab_sink_count tcp "$LAB_CN4" "$RECONNECT_PORT")" 2
check_eq "reconnected socket counted as two CN flows" "$(status CN tcp flows)" 2
check_eq "reconnected socket has two flow records" \
	"$(entries ".key.peer_port == $RECONNECT_PORT")" 2
check_eq "reconnected socket records both ended" \
	"$(entries ".key.peer_port == $RECONNECT_PORT and .value.end_ns == 0")" 0
sink=$(lab_sink_bytes tcp "$LAB_CN4" "$RECONNECT_PORT")
check_range "reconnected socket transmit bytes cover the sink's" "$(status CN tcp transmit_bytes)" \
	"$sink" $((sink + $(status CN tcp transmit_packets) * HEADER_MAX))
check_eq "reconnected records add up to the CN transmit bytes" \
	"$(jq "[.[].formatted | select(.key.peer_port == $RECONNECT_PORT) |
		.value.transmit_bytes] | add // 0" "$ENTRIES")" "$(status CN tcp transmit_bytes)"

check_eq "no packet with destination options counted as tcp" \
	"$(status US tcp transmit_packets)" 0
sink=$(lab_sink_bytes tcp "$LAB_US6" "$DSTOPTS_PORT")
check_range "destination options packets counted under US" "$(status US all transmit_bytes)" \
	"$sink" $((sink + $(status US all transmit_packets) * HEADER_MAX))
check_match "server's packets to that socket counted as tcp" \
	"$(status US tcp receive_packets)" '^[1-9][0-9]*$'

check_eq "no lost events" "$(jq .lost_events "$STATUS")" 0
lab_sink_stop || diag "sink exited with status $?"
lab_stop "$DAEMON_PID" "$STOP_TIMEOUT_S"
check_eq "daemon exits 0 within $STOP_TIMEOUT_S s of SIGTERM" "$?" 0
lab_finish
