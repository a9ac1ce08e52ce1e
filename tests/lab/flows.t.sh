#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Lab test of the flow records of a watched client. A connected socket counts
# its packets in the flow that its socks entry holds, an unconnected one in
# flows entries, and packets after sock_release still count in the flow. So
# once a flow has ended, its record must contain every packet of it, exactly
# as the totals that "borderflow status" reports. Each case sends to its own
# country and transport, so that a status row and a flow record compare one
# to one. The test reads the records from the daemon's flows and socks maps
# with bpftool.

# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"

DAEMON=$LAB_OUTPUT/borderflowd
CLI=$LAB_OUTPUT/borderflow
READY_TIMEOUT_S=10
STOP_TIMEOUT_S=5
COUNT_TIMEOUT_S=10
# Sent through bash's /dev/tcp and closed at once, while a rate limit on the
# client's link keeps most of it queued in the socket. So most of it leaves
# after the release and counts in the flow entry directly.
QUEUED_BYTES=3000000
QUEUED_RATE=50mbit
# Per packet at most 60 bytes of IP header (IPv6: 40) and 60 of TCP header.
TCP_HEADER_MAX=120
UDP_HEADER_MAX=48

lab_require_root
lab_require_file "$DAEMON" "$CLI" "$LAB_BIN/sink" "$LAB_BIN/fakeclient"
lab_require_cmd ip tc jq bpftool bash head

lab_setup

APP_DIR=$LAB_TMP/opt/apps/com.alibabainc.dingtalk
WATCHED=$APP_DIR/dingtalk
WATCHED_BASH=$APP_DIR/bash
CONF=$LAB_TMP/borderflow.conf
SOCK=$LAB_TMP/bf.sock
STATUS=$LAB_TMP/status.json
ENTRIES=$LAB_TMP/flows.json

mkdir -p "$APP_DIR" || lab_bail "failed to create '$APP_DIR'"
cp "$LAB_BIN/fakeclient" "$WATCHED" || lab_bail "failed to copy fakeclient to '$WATCHED'"
cp "$(command -v bash)" "$WATCHED_BASH" || lab_bail "failed to copy bash to '$WATCHED_BASH'"
lab_write_config "$CONF" "$SOCK" "$APP_DIR"

# port, mode, server address, payload bytes, country, transport, connected (1) or not (0).
# "queued" is bash writing to /dev/tcp and closing right away.
CASES=(
	"9401 tcp           $LAB_CN4 20001 CN tcp 1"
	"9402 udp-connected $LAB_HK4 5002  HK udp 1"
	"9403 queued        $LAB_US4 $QUEUED_BYTES US tcp 1"
	"9404 mapped        $LAB_MO4 7004  MO tcp 1"
	"9405 udp           $LAB_MO6 3005  MO udp 0"
	"9406 tcp           $LAB_HK6 40006 HK tcp 1"
	"9407 udp-connected $LAB_US6 6007  US udp 1"
)
PORTS=()
for c in "${CASES[@]}"; do
	read -r port _ addr _ <<<"$c"
	lab_assert_route "$addr"
	PORTS+=("$port")
done
lab_sink_start "${PORTS[@]}"

lab_start_daemon "$CONF" "$SOCK" "$READY_TIMEOUT_S"

# --- traffic ----------------------------------------------------------------------

total=0
connected=0
for c in "${CASES[@]}"; do
	read -r port mode addr bytes _ _ is_connected <<<"$c"
	if [[ $mode == queued ]]; then
		lab_ns "$LAB_CLI" tc qdisc add dev "$LAB_CLI_IF" root tbf rate "$QUEUED_RATE" \
			burst 32kbit latency 400ms || lab_bail "failed to limit the rate of $LAB_CLI_IF"
		out=$(lab_client "$WATCHED_BASH" -c \
			"exec 3<>/dev/tcp/$addr/$port && head -c $bytes /dev/zero >&3 && exec 3>&-" 2>&1)
		rc=$?
		lab_sink_snapshot
		check_range "queued bytes still on their way after the close" \
			"$(lab_sink_bytes tcp "$addr" "$port")" 0 $((bytes - 1))
		lab_sink_wait_total $((total + bytes)) "$COUNT_TIMEOUT_S" ||
			diag "sink received $(lab_sink_bytes tcp "$addr" "$port") of $bytes bytes"
		lab_ns "$LAB_CLI" tc qdisc del dev "$LAB_CLI_IF" root ||
			lab_bail "failed to remove the rate limit of $LAB_CLI_IF"
	else
		out=$(lab_client "$WATCHED" "$mode" "$addr" "$port" "$bytes" 2>&1)
		rc=$?
	fi
	if ((rc == 0)); then
		ok "watched client $mode to $addr port $port"
	else
		not_ok "watched client $mode to $addr port $port" "$out"
	fi
	total=$((total + bytes))
	connected=$((connected + is_connected))
done
lab_sink_wait_total "$total" "$COUNT_TIMEOUT_S" ||
	diag "sink received $(lab_sink_bytes any any any) of $total bytes"

# --- reading the daemon's counts ----------------------------------------------------

lab_wait_counts "$CLI" "$SOCK" "$STATUS" "$connected" $((2 * COUNT_TIMEOUT_S)) ||
	diag "counts did not settle within $((2 * COUNT_TIMEOUT_S)) s"
lab_dump_flows "$DAEMON_PID" "$ENTRIES"

check_eq "no lost events" "$(jq .lost_events "$STATUS")" 0
check_eq "flow start events" "$(jq .flows_started "$STATUS")" "${#CASES[@]}"
check_eq "flow end events" "$(jq .flows_ended "$STATUS")" "$connected"

# entry_sum PORT FIELD: FIELD of the flows entries to PORT, summed.
entry_sum()
{
	jq --argjson port "$1" --arg f "$2" \
		'[.[].formatted | select(.key.peer_port == $port) | .value[$f]] | add // 0' "$ENTRIES"
}

entry_count()
{
	jq --argjson port "$1" '[.[].formatted | select(.key.peer_port == $port)] | length' \
		"$ENTRIES"
}

# status_sum CC TRANSPORT FIELD: FIELD of dingtalk's destinations in CC over TRANSPORT.
status_sum()
{
	jq --arg cc "$1" --arg t "$2" --arg f "$3" \
		'[.apps[] | select(.app == "dingtalk") | .destinations[] |
		select(.country == $cc) | .[$t][$f] // 0] | add // 0' "$STATUS"
}

# --- the entry of every ended flow contains all its packets ----------------------------

for c in "${CASES[@]}"; do
	read -r port mode addr _ cc transport is_connected <<<"$c"
	name="$mode flow to $addr port $port"
	sink=$(lab_sink_bytes "$transport" "$addr" "$port")
	packets=$(entry_sum "$port" transmit_packets)
	header_max=$TCP_HEADER_MAX
	[[ $transport == udp ]] && header_max=$UDP_HEADER_MAX

	check_eq "$name has one entry" "$(entry_count "$port")" 1
	if ((is_connected)); then
		check_match "$name entry ended" "$(entry_sum "$port" end_ns)" '^[1-9][0-9]*$'
	else
		check_eq "$name entry still open" "$(entry_sum "$port" end_ns)" 0
	fi
	check_range "$name entry transmit bytes cover the sink's" \
		"$(entry_sum "$port" transmit_bytes)" "$sink" $((sink + packets * header_max))
	for field in transmit_bytes receive_bytes transmit_packets receive_packets; do
		check_eq "$name entry $field equal to status $cc $transport" \
			"$(entry_sum "$port" "$field")" "$(status_sum "$cc" "$transport" "$field")"
	done
	check_eq "$name counted as one flow" "$(status_sum "$cc" "$transport" flows)" 1
done

lab_sink_stop || diag "sink exited with status $?"
lab_stop "$DAEMON_PID" "$STOP_TIMEOUT_S"
check_eq "daemon exits 0 within $STOP_TIMEOUT_S s of SIGTERM" "$?" 0
lab_finish
