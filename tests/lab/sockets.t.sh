#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Lab test of flow records for sockets whose peer is not the address that connect() passed,
# and for a watched server. A TCP connect() to 0.0.0.0 or :: reaches the loopback address of
# the client namespace, so the flow's peer comes from its packets. A watched server's
# listener receives the SYNs of every client, and each connection that accept() returns is one
# flow of its own. In both cases every entry must end when its socket closes, because open
# entries stay for as long as their socket. An unwatched server's connections count under the
# application other, one flow per connection, also when it takes the port of a closed watched
# listener, and the handshake of every server is attributed.

# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"

DAEMON=$LAB_OUTPUT/borderflowd
CLI=$LAB_OUTPUT/borderflow
READY_TIMEOUT_S=10
STOP_TIMEOUT_S=5
COUNT_TIMEOUT_S=10
LOOPBACK_PORT=9501
SERVER_PORT=9502
UNWATCHED_PORT=9503
CONNECTIONS=3
CONNECTION_BYTES=1000

lab_require_root
lab_require_file "$DAEMON" "$CLI" "$LAB_BIN/sink" "$LAB_BIN/fakeclient"
lab_require_cmd ip jq bpftool ss

lab_setup

APP_DIR=$LAB_TMP/opt/apps/com.alibabainc.dingtalk
WATCHED=$APP_DIR/dingtalk
WATCHED_SERVER=$APP_DIR/dingtalk-server
CONF=$LAB_TMP/borderflow.conf
SOCK=$LAB_TMP/bf.sock
STATUS=$LAB_TMP/status.json
ENTRIES=$LAB_TMP/flows.json
# The address of the client namespace on the MO link, which the server namespace reaches.
SERVER_ADDR=${LAB_CLIENT_ADDR[$LAB_MO4]%/*}

mkdir -p "$APP_DIR" || lab_bail "failed to create '$APP_DIR'"
cp "$LAB_BIN/fakeclient" "$WATCHED" || lab_bail "failed to copy fakeclient to '$WATCHED'"
cp "$LAB_BIN/sink" "$WATCHED_SERVER" || lab_bail "failed to copy sink to '$WATCHED_SERVER'"
lab_write_config "$CONF" "$SOCK" "$APP_DIR"

server_dev=$(lab_route_dev "$LAB_SRV" "$SERVER_ADDR")
[[ $server_dev == "$LAB_SRV_IF" ]] ||
	lab_bail "route from '$LAB_SRV' to $SERVER_ADDR is '$server_dev', expected $LAB_SRV_IF"

lab_start_daemon "$CONF" "$SOCK" "$READY_TIMEOUT_S"

# The loopback sink runs outside the test cgroup, the watched server inside it.
ip netns exec "$LAB_CLI" "$LAB_BIN/sink" --port "$LOOPBACK_PORT" --out "$LAB_TMP/loopback.txt" \
	--timeout 120 >"$LAB_TMP/loopback.log" 2>&1 &
LAB_PIDS+=("$!")
lab_client "$WATCHED_SERVER" --port "$SERVER_PORT" --address "$SERVER_ADDR" \
	--out "$LAB_TMP/server.txt" --timeout 120 >"$LAB_TMP/server.log" 2>&1 &
LAB_PIDS+=("$!")

# listening PORT: the TCP and UDP sockets listening on PORT in the client namespace.
listening()
{
	lab_ns "$LAB_CLI" ss -Hlntu | awk -v port="$1" '{ n = split($5, a, ":") }
		a[n] == port { count++ } END { print count + 0 }'
}

# wait_listening PORT: waits up to 5 s for a TCP and a UDP socket listening on PORT.
wait_listening()
{
	local i

	for ((i = 0; i < 50; i++)); do
		(($(listening "$1") == 2)) && return 0
		sleep 0.1
	done
	lab_bail "sink not listening on port $1 after 5 s"
}

# connect_clients PORT NAME: connects CONNECTIONS unwatched clients to the NAME server on PORT.
connect_clients()
{
	local i out

	for ((i = 1; i <= CONNECTIONS; i++)); do
		if out=$(ip netns exec "$LAB_SRV" "$LAB_BIN/fakeclient" tcp "$SERVER_ADDR" "$1" \
			"$CONNECTION_BYTES" 2>&1); then
			ok "unwatched client $i connects to the $2 server"
		else
			not_ok "unwatched client $i connects to the $2 server" "$out"
		fi
	done
}

for ((i = 0; i < 50; i++)); do
	(($(listening "$LOOPBACK_PORT") == 2 && $(listening "$SERVER_PORT") == 2)) && break
	sleep 0.1
done
(($(listening "$LOOPBACK_PORT") == 2 && $(listening "$SERVER_PORT") == 2)) ||
	lab_bail "sinks not listening on ports $LOOPBACK_PORT and $SERVER_PORT after 5 s"
# "ip netns exec" runs the server as a child of its own, the only process in the test cgroup.
SERVER_PID=$(cat "$LAB_CGROUP/cgroup.procs")
[[ $SERVER_PID =~ ^[0-9]+$ ]] || lab_bail "expected one process in '$LAB_CGROUP', found '$SERVER_PID'"
LAB_PIDS+=("$SERVER_PID")

# An unwatched server in the test cgroup too: the sink run from outside the watched folder.
lab_client "$LAB_BIN/sink" --port "$UNWATCHED_PORT" --out "$LAB_TMP/unwatched.txt" --timeout 120 \
	>"$LAB_TMP/unwatched.log" 2>&1 &
LAB_PIDS+=("$!")
wait_listening "$UNWATCHED_PORT"
UNWATCHED_PID=$(grep -vx "$SERVER_PID" "$LAB_CGROUP/cgroup.procs")
[[ $UNWATCHED_PID =~ ^[0-9]+$ ]] ||
	lab_bail "expected the unwatched server in '$LAB_CGROUP', found '$UNWATCHED_PID'"
LAB_PIDS+=("$UNWATCHED_PID")

# --- traffic ----------------------------------------------------------------------

for addr in 0.0.0.0 ::; do
	if out=$(lab_client "$WATCHED" tcp "$addr" "$LOOPBACK_PORT" "$CONNECTION_BYTES" 2>&1); then
		ok "watched client connects to $addr"
	else
		not_ok "watched client connects to $addr" "$out"
	fi
done
connect_clients "$SERVER_PORT" watched
connect_clients "$UNWATCHED_PORT" unwatched
kill -TERM "$SERVER_PID" "$UNWATCHED_PID"
if lab_wait_exit "$SERVER_PID" "$STOP_TIMEOUT_S"; then
	ok "watched server ends on SIGTERM"
else
	not_ok "watched server ends on SIGTERM" "still running after $STOP_TIMEOUT_S s"
fi
lab_wait_exit "$UNWATCHED_PID" "$STOP_TIMEOUT_S" || lab_bail "unwatched server still running"

# An unwatched server on every address takes the port of the watched one, which listened on
# one address only: its connections must not take the closed listener's owner.
lab_client "$LAB_BIN/sink" --port "$SERVER_PORT" --out "$LAB_TMP/replacement.txt" --timeout 120 \
	>"$LAB_TMP/replacement.log" 2>&1 &
LAB_PIDS+=("$!")
wait_listening "$SERVER_PORT"
REPLACEMENT_PID=$(cat "$LAB_CGROUP/cgroup.procs")
[[ $REPLACEMENT_PID =~ ^[0-9]+$ ]] ||
	lab_bail "expected one process in '$LAB_CGROUP', found '$REPLACEMENT_PID'"
LAB_PIDS+=("$REPLACEMENT_PID")
connect_clients "$SERVER_PORT" replacement
kill -TERM "$REPLACEMENT_PID"
lab_wait_exit "$REPLACEMENT_PID" "$STOP_TIMEOUT_S" || lab_bail "replacement server still running"

# --- the flow records -------------------------------------------------------------

ended_expected=$((2 + CONNECTIONS))
for ((i = 0; i < COUNT_TIMEOUT_S * 5; i++)); do
	"$CLI" status --json --socket "$SOCK" >"$STATUS" 2>/dev/null &&
		(($(jq '.flows_ended' "$STATUS") >= ended_expected)) && break
	sleep 0.2
done
lab_dump_flows "$DAEMON_PID" "$ENTRIES"

# entries FILTER: the number of flows entries that the jq FILTER selects.
entries()
{
	jq "[.[].formatted | select($1)] | length" "$ENTRIES"
}

check_eq "flow end events" "$(jq .flows_ended "$STATUS")" "$ended_expected"
check_eq "loopback flows have one entry each" "$(entries ".key.peer_port == $LOOPBACK_PORT")" 2
check_eq "loopback entries all ended" \
	"$(entries ".key.peer_port == $LOOPBACK_PORT and .value.end_ns == 0")" 0
check_eq "server connections have one entry each" \
	"$(entries ".value.local_port == $SERVER_PORT")" "$CONNECTIONS"
check_eq "server entries all ended" \
	"$(entries ".value.local_port == $SERVER_PORT and .value.end_ns == 0")" 0
check_eq "server connections counted as $CONNECTIONS MO flows" \
	"$(jq '[.apps[] | select(.app == "dingtalk") | .destinations[] |
		select(.country == "MO") | .tcp.flows // 0] | add // 0' "$STATUS")" "$CONNECTIONS"
check_range "server entries received the payload" \
	"$(jq "[.[].formatted | select(.value.local_port == $SERVER_PORT) |
		.value.receive_bytes] | add // 0" "$ENTRIES")" \
	$((CONNECTIONS * CONNECTION_BYTES)) $((CONNECTIONS * (CONNECTION_BYTES + 1000)))

# status_mo APP FIELD: FIELD of the MO TCP row of APP in the status.
status_mo()
{
	jq --arg app "$1" --arg field "$2" '[.apps[] | select(.app == $app) | .destinations[] |
		select(.country == "MO") | .tcp[$field] // 0] | add // 0' "$STATUS"
}

# The sockets that accept() returns to the two unwatched servers take their application from
# the listener, and each counts as one flow.
check_eq "unwatched server connections counted as flows" "$(status_mo other flows)" \
	$((2 * CONNECTIONS))
check_range "unwatched server receive bytes counted under other" \
	"$(status_mo other receive_bytes)" \
	$((2 * CONNECTIONS * CONNECTION_BYTES)) $((2 * CONNECTIONS * (CONNECTION_BYTES + 1000)))
check_eq "no MO bytes unattributed" \
	"$(($(status_mo unattributed transmit_bytes) + $(status_mo unattributed receive_bytes)))" 0

lab_stop "$DAEMON_PID" "$STOP_TIMEOUT_S"
check_eq "daemon exits 0 within $STOP_TIMEOUT_S s of SIGTERM" "$?" 0
lab_finish
