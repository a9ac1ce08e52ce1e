#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# End-to-end lab test of borderflowd. The daemon attaches to the test cgroup
# and watches a temporary copy of the DingTalk install folder, which contains
# fakeclient as "dingtalk-helper". That client sends TCP and UDP, IPv4 and
# IPv6, to lab hosts that the test geolocation file places in MO, HK, CN and
# US. The test compares "borderflow status --json" and the alerts file with
# the bytes the sink received, then checks that an unwatched copy of the
# client is not counted as DingTalk and that invalid configuration is rejected
# before anything is attached.

# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"

DAEMON=$LAB_OUTPUT/borderflowd
CLI=$LAB_OUTPUT/borderflow
MAIN_PORT=9000
UNWATCHED_PORT=9001
MAPPED_PORT=9002
READY_TIMEOUT_S=10
STOP_TIMEOUT_S=5
REJECT_TIMEOUT_S=5
COUNT_TIMEOUT_S=10
# Upper bounds of the header bytes of one packet, over IPv4 and IPv6. TCP: an IPv4
# header of at most 60 bytes plus a TCP header of at most 60 (IPv6: 40 + 60). UDP:
# 20 + 8 for IPv4 and 40 + 8 for IPv6. Packets carry no IP options or extension
# headers in the lab.
TCP_HEADER_MAX=120
UDP_HEADER_MAX=48

lab_require_root
if [[ ! -e $DAEMON ]]; then
	[[ ${CI:-} == true ]] || {
		skip "$LAB_NAME" "borderflowd not built"
		exit 0
	}
	lab_bail "borderflowd not built: '$DAEMON' does not exist"
fi
for bin in "$CLI" "$LAB_BIN/sink" "$LAB_BIN/fakeclient"; do
	[[ -x $bin ]] || lab_bail "'$bin' not built (run make tests)"
done
lab_require_cmd ip ss awk sysctl jq bpftool
[[ $(stat -f -c %T /sys/fs/bpf 2>/dev/null) == bpf_fs ]] ||
	diag "/sys/fs/bpf is not a BPF file system, so the daemon has to mount one to pin"

PIN=/sys/fs/bpf/borderflow-test-$LAB_SUFFIX
DAEMON_PID=

# shellcheck disable=SC2317 # called by lab_teardown through lab_on_cleanup
monitor_cleanup()
{
	if [[ -n $DAEMON_PID ]] && lab_alive "$DAEMON_PID"; then
		lab_stop "$DAEMON_PID" "$STOP_TIMEOUT_S"
	fi
	[[ -e $PIN ]] && rm -rf -- "$PIN"
	return 0
}

lab_setup
lab_on_cleanup monitor_cleanup

APP_DIR=$LAB_TMP/opt/apps/com.alibabainc.dingtalk
WATCHED=$APP_DIR/dingtalk-helper
UNWATCHED=$LAB_TMP/bin/fakeclient
GEO=$LAB_TMP/geo.csv
CONF=$LAB_TMP/borderflow.conf
ALERTS=$LAB_TMP/alerts.jsonl
SOCK=$LAB_TMP/bf.sock
STATUS=$LAB_TMP/status.json
METRICS_PORT=$(lab_free_port) || lab_bail "no free TCP port on 127.0.0.1 for metrics"

mkdir -p "$APP_DIR" "$LAB_TMP/bin" || lab_bail "failed to create the client folders"
for copy in "$WATCHED" "$UNWATCHED"; do
	cp "$LAB_BIN/fakeclient" "$copy" || lab_bail "failed to copy fakeclient to '$copy'"
done
lab_write_geo "$GEO"

# write_config FILE APPROVED GEO_DATA
write_config()
{
	cat >"$1" <<-EOF
		[policy]
		approved = $2
		unknown = alert

		[geo]
		data = $3

		[app dingtalk]
		path = $APP_DIR/

		[alerts]
		file = $ALERTS
		repeat = 10m

		[daemon]
		socket = $SOCK
		pin = $PIN

		[metrics]
		listen = 127.0.0.1:$METRICS_PORT
	EOF
}

# attached_programs: prints the programs attached to the test cgroup, one a line.
attached_programs()
{
	bpftool cgroup show "$LAB_CGROUP" 2>&1 | awk '$1 ~ /^[0-9]+$/'
}

now_ms()
{
	echo $(($(date +%s%N) / 1000000))
}

# --- invalid input is rejected before attaching --------------------------------

# check_rejected NAME CONF FILE LINE VALUE: the daemon exits non-zero within
# REJECT_TIMEOUT_S, stderr names FILE, LINE (unless empty) and VALUE, and no
# program is attached to the test cgroup.
check_rejected()
{
	local name=$1 conf=$2 file=$3 line=$4 value=$5 err rc start elapsed

	err=$LAB_TMP/reject.err
	start=$(now_ms)
	timeout $((REJECT_TIMEOUT_S * 2)) "$DAEMON" --config "$conf" --cgroup "$LAB_CGROUP" \
		>/dev/null 2>"$err"
	rc=$?
	elapsed=$(($(now_ms) - start))

	if ((rc != 0 && rc != 124)); then
		ok "daemon rejects $name"
	else
		not_ok "daemon rejects $name" "exit status: $rc, expected non-zero" "$(tail -n 20 "$err")"
	fi
	check_range "daemon rejects $name within $((REJECT_TIMEOUT_S * 1000)) ms" "$elapsed" 0 \
		$((REJECT_TIMEOUT_S * 1000))
	if grep -qF -- "$file" "$err"; then
		ok "error for $name names file"
	else
		not_ok "error for $name names file" "stderr: $(cat "$err")" "expected: '$file'"
	fi
	if [[ -n $line ]]; then
		check_match "error for $name names line" "$(cat "$err")" \
			"(line $line|:$line)([^0-9]|$)"
	fi
	if grep -qF -- "$value" "$err"; then
		ok "error for $name names value"
	else
		not_ok "error for $name names value" "stderr: $(cat "$err")" "expected: '$value'"
	fi
	check_eq "no program attached after $name" "$(attached_programs)" ""
	check_eq "nothing pinned after $name" "$(ls -A "$PIN" 2>/dev/null)" ""
}

conf=$LAB_TMP/bad-country.conf
write_config "$conf" "MO HKG" "$GEO"
check_rejected "invalid approved country" "$conf" "$conf" \
	"$(grep -n '^approved' "$conf" | cut -d: -f1)" HKG

bad_geo=$LAB_TMP/bad-geo.csv
{
	head -n 3 "$GEO"
	echo "198.51.100.0/33,CN"
	tail -n +4 "$GEO"
} >"$bad_geo"
conf=$LAB_TMP/bad-cidr.conf
write_config "$conf" "MO HK" "$bad_geo"
check_rejected "malformed geo CIDR" "$conf" "$bad_geo" 4 198.51.100.0/33

conf=$LAB_TMP/missing-geo.conf
write_config "$conf" "MO HK" "$LAB_TMP/missing-geo.csv"
check_rejected "missing geo file" "$conf" "$LAB_TMP/missing-geo.csv" "" "$LAB_TMP/missing-geo.csv"

# --- daemon start -------------------------------------------------------------

write_config "$CONF" "MO HK" "$GEO"

# mode, server address, port, payload bytes, country. "fork-tcp" sends from a forked
# child of the watched client, and "mapped" connects to ::ffff:ADDRESS from an IPv6 socket.
CASES=(
	"tcp           $LAB_MO4 $MAIN_PORT   10101 MO"
	"udp           $LAB_MO6 $MAIN_PORT   2202  MO"
	"udp-connected $LAB_HK4 $MAIN_PORT   3303  HK"
	"tcp           $LAB_HK6 $MAIN_PORT   4404  HK"
	"tcp           $LAB_CN4 $MAIN_PORT   5505  CN"
	"udp           $LAB_CN6 $MAIN_PORT   6606  CN"
	"mapped        $LAB_CN4 $MAPPED_PORT 7707  CN"
	"udp           $LAB_US4 $MAIN_PORT   8808  US"
	"tcp           $LAB_US6 $MAIN_PORT   9909  US"
	"fork-tcp      $LAB_US4 $MAIN_PORT   11011 US"
)
UNWATCHED_BYTES=12121
COUNTRIES=(MO HK CN US)
declare -A VERDICT=([MO]=approved [HK]=approved [CN]=foreign [US]=foreign)
declare -A COUNTRY_ADDRS=(
	[MO]="$LAB_MO4 $LAB_MO6" [HK]="$LAB_HK4 $LAB_HK6"
	[CN]="$LAB_CN4 $LAB_CN6" [US]="$LAB_US4 $LAB_US6"
)

for c in "${CASES[@]}"; do
	read -r _ addr _ <<<"$c"
	lab_assert_route "$addr"
done

lab_sink_start "$MAIN_PORT" "$UNWATCHED_PORT" "$MAPPED_PORT"

"$DAEMON" --config "$CONF" --cgroup "$LAB_CGROUP" >"$LAB_TMP/daemon.out" 2>"$LAB_TMP/daemon.log" &
DAEMON_PID=$!
LAB_PIDS+=("$DAEMON_PID")

# read_status: stores "borderflow status --json" in $STATUS.
read_status()
{
	"$CLI" status --json --socket "$SOCK" >"$STATUS.tmp" 2>"$LAB_TMP/status.err" &&
		jq -e . "$STATUS.tmp" >/dev/null 2>&1 && mv "$STATUS.tmp" "$STATUS"
}

daemon_log_tail()
{
	tail -n 30 "$LAB_TMP/daemon.log"
}

ready=false
for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
	if ! lab_alive "$DAEMON_PID"; then
		not_ok "daemon starts" "daemon exited before it was ready" "$(daemon_log_tail)"
		lab_finish
	fi
	if read_status; then
		ready=true
		break
	fi
	sleep 0.1
done
if [[ $ready != true ]]; then
	not_ok "daemon ready within $READY_TIMEOUT_S s" "$(cat "$LAB_TMP/status.err")" \
		"$(daemon_log_tail)"
	lab_finish
fi
ok "daemon ready within $READY_TIMEOUT_S s"
check_match "programs attached to test cgroup" "$(attached_programs | wc -l)" '^[1-9][0-9]*$'

# --- traffic of the watched client ----------------------------------------------

declare -a CASE_PID CASE_SPORT
for i in "${!CASES[@]}"; do
	read -r mode addr port bytes _ <<<"${CASES[i]}"
	args=("$mode")
	[[ $mode == fork-tcp ]] && args=(--fork tcp)
	if out=$(lab_client "$WATCHED" "${args[@]}" "$addr" "$port" "$bytes" 2>&1); then
		ok "watched client $mode to $addr port $port"
	else
		not_ok "watched client $mode to $addr port $port" "$out"
	fi
	CASE_PID[i]=$(sed -n 's/.*\bpid=\([0-9]*\).*/\1/p' <<<"$out")
	CASE_SPORT[i]=$(sed -n 's/.*\bsport=\([0-9]*\).*/\1/p' <<<"$out")
done

total=0
for c in "${CASES[@]}"; do
	read -r _ _ _ bytes _ <<<"$c"
	total=$((total + bytes))
done
lab_sink_wait_total "$total" 5 ||
	diag "sink received $(lab_sink_bytes any any any) of $total bytes after 5 s"

# sink_country_bytes CC TRANSPORT|any: bytes the sink received at the addresses of CC
# on the ports of the watched client.
sink_country_bytes()
{
	local cc=$1 transport=$2 addr port sum=0

	for addr in ${COUNTRY_ADDRS[$cc]}; do
		for port in "$MAIN_PORT" "$MAPPED_PORT"; do
			sum=$((sum + $(lab_sink_bytes "$transport" "$addr" "$port")))
		done
	done
	echo "$sum"
}

# status_sum APP CC PATH: sum of PATH, such as ".tcp.transmit_bytes", over the
# destinations of APP in country CC in $STATUS, or 0 when there is none.
status_sum()
{
	jq -r --arg app "$1" --arg cc "$2" \
		"[.apps[]? | select(.app == \$app) | .destinations[]? |
		select(.country == \$cc) | ($3 // 0)] | add // 0" "$STATUS"
}

# status_verdicts APP CC: the verdicts of the destinations of APP in CC, space-separated.
status_verdicts()
{
	jq -r --arg app "$1" --arg cc "$2" \
		'[.apps[]? | select(.app == $app) | .destinations[]? |
		select(.country == $cc) | .verdict] | join(" ")' "$STATUS"
}

declare -A SINK_BYTES SINK_TCP SINK_UDP
for cc in "${COUNTRIES[@]}"; do
	SINK_BYTES[$cc]=$(sink_country_bytes "$cc" any)
	SINK_TCP[$cc]=$(sink_country_bytes "$cc" tcp)
	SINK_UDP[$cc]=$(sink_country_bytes "$cc" udp)
done

# wait_counted APP: waits until the status shows at least the sink's bytes for
# every country under APP.
wait_counted()
{
	local tries=$((COUNT_TIMEOUT_S * 5)) cc done_count

	while ((tries-- > 0)); do
		if read_status; then
			done_count=0
			for cc in "${COUNTRIES[@]}"; do
				(($(status_sum "$1" "$cc" .transmit_bytes) >= ${SINK_BYTES[$cc]})) &&
					done_count=$((done_count + 1))
			done
			((done_count == ${#COUNTRIES[@]})) && return 0
		fi
		sleep 0.2
	done
	return 1
}

# wait_stable APP CC: waits until the transmit bytes of APP in CC stay the same for
# 2 s, so a later comparison does not see counters that were still being read.
wait_stable()
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

wait_counted dingtalk ||
	diag "status did not reach the sink's byte counts within $COUNT_TIMEOUT_S s"
wait_stable dingtalk CN || diag "dingtalk CN bytes still changed after $COUNT_TIMEOUT_S s"

# --- status: per country --------------------------------------------------------

# Expected flows per country and transport: one per case, because each case is one
# socket and one destination.
declare -A FLOWS_TCP FLOWS_UDP
for c in "${CASES[@]}"; do
	read -r mode _ _ _ cc <<<"$c"
	if [[ $mode == udp* ]]; then
		FLOWS_UDP[$cc]=$((${FLOWS_UDP[$cc]:-0} + 1))
	else
		FLOWS_TCP[$cc]=$((${FLOWS_TCP[$cc]:-0} + 1))
	fi
done

for cc in "${COUNTRIES[@]}"; do
	check_eq "dingtalk $cc verdict" "$(status_verdicts dingtalk "$cc")" "${VERDICT[$cc]}"

	tcp_packets=$(status_sum dingtalk "$cc" .tcp.transmit_packets)
	udp_packets=$(status_sum dingtalk "$cc" .udp.transmit_packets)
	check_range "dingtalk $cc transmit bytes" "$(status_sum dingtalk "$cc" .transmit_bytes)" \
		"${SINK_BYTES[$cc]}" \
		$((${SINK_BYTES[$cc]} + tcp_packets * TCP_HEADER_MAX + udp_packets * UDP_HEADER_MAX))
	check_range "dingtalk $cc tcp transmit bytes" \
		"$(status_sum dingtalk "$cc" .tcp.transmit_bytes)" \
		"${SINK_TCP[$cc]}" $((${SINK_TCP[$cc]} + tcp_packets * TCP_HEADER_MAX))
	check_range "dingtalk $cc udp transmit bytes" \
		"$(status_sum dingtalk "$cc" .udp.transmit_bytes)" \
		"${SINK_UDP[$cc]}" $((${SINK_UDP[$cc]} + udp_packets * UDP_HEADER_MAX))
	check_eq "dingtalk $cc transmit packets" "$(status_sum dingtalk "$cc" .transmit_packets)" \
		$((tcp_packets + udp_packets))
	check_eq "dingtalk $cc tcp flows" "$(status_sum dingtalk "$cc" .tcp.flows)" \
		"${FLOWS_TCP[$cc]:-0}"
	check_eq "dingtalk $cc udp flows" "$(status_sum dingtalk "$cc" .udp.flows)" \
		"${FLOWS_UDP[$cc]:-0}"
	check_eq "dingtalk $cc flows" "$(status_sum dingtalk "$cc" .flows)" \
		$((${FLOWS_TCP[$cc]:-0} + ${FLOWS_UDP[$cc]:-0}))
	# The sink never sends UDP, and every TCP connection receives at least a SYN-ACK.
	check_eq "dingtalk $cc udp receive bytes" "$(status_sum dingtalk "$cc" .udp.receive_bytes)" 0
	check_range "dingtalk $cc tcp receive packets" \
		"$(status_sum dingtalk "$cc" .tcp.receive_packets)" "${FLOWS_TCP[$cc]:-0}" 1000000
done

check_eq "status lost events" "$(jq -r '.lost_events' "$STATUS")" 0
check_match "status unattributed bytes" "$(jq -r '.unattributed_bytes' "$STATUS")" '^[0-9]+$'
check_eq "status geo is an object" "$(jq -r '.geo | type' "$STATUS")" object

# --- alerts ---------------------------------------------------------------------

# Expected alerts: one per destination address, port and transport in CN and US.
declare -a ALERT_CASES
for i in "${!CASES[@]}"; do
	read -r _ _ _ _ cc <<<"${CASES[i]}"
	[[ ${VERDICT[$cc]} == foreign ]] && ALERT_CASES+=("$i")
done

alert_lines()
{
	[[ -e $ALERTS ]] || {
		echo 0
		return
	}
	grep -c . "$ALERTS"
}

for ((i = 0; i < COUNT_TIMEOUT_S * 5; i++)); do
	(($(alert_lines) >= ${#ALERT_CASES[@]})) && break
	sleep 0.2
done
# A late duplicate would show up here, not after the check.
sleep 1

check_eq "alerts file line count" "$(alert_lines)" "${#ALERT_CASES[@]}"
check_cmd "alerts file is JSON lines" jq -e . "$ALERTS"
check_eq "no alert for MO or HK" \
	"$(jq -c 'select(.destination.geo.country_iso_code == "MO" or
		.destination.geo.country_iso_code == "HK")' "$ALERTS" 2>&1)" ""

# alert_get DEST PORT TRANSPORT FILTER: FILTER applied to the alerts of one destination.
alert_get()
{
	jq -r --arg ip "$1" --argjson port "$2" --arg t "$3" \
		"select(.destination.ip == \$ip and .destination.port == \$port and
		.network.transport == \$t) | $4" "$ALERTS" 2>/dev/null
}

# alert_keys: "destination.ip destination.port network.transport" of every alert.
alert_keys()
{
	jq -r '"\(.destination.ip) \(.destination.port) \(.network.transport)"' "$ALERTS" 2>&1
}

for i in "${ALERT_CASES[@]}"; do
	read -r mode addr port _ cc <<<"${CASES[i]}"
	transport=tcp
	[[ $mode == udp* ]] && transport=udp
	# A mapped connection has an IPv4 address as $addr, so it expects ipv4 too.
	type=ipv4
	[[ $addr == *:* ]] && type=ipv6
	name="alert $mode $addr port $port"
	count=$(alert_get "$addr" "$port" "$transport" 1 | grep -c .)
	if ((count == 1)); then
		ok "$name count"
	else
		not_ok "$name count" "actual:   $count" "expected: 1" \
			"alerts (destination.ip destination.port network.transport):" "$(alert_keys)"
		continue
	fi

	check_match "$name @timestamp" "$(alert_get "$addr" "$port" "$transport" '.["@timestamp"]')" \
		'^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}'
	check_eq "$name event.kind" "$(alert_get "$addr" "$port" "$transport" .event.kind)" alert
	check_match "$name rule.name" "$(alert_get "$addr" "$port" "$transport" .rule.name)" \
		'^[^[:space:]].*$'
	check_eq "$name process.pid" "$(alert_get "$addr" "$port" "$transport" .process.pid)" \
		"${CASE_PID[i]}"
	check_eq "$name process.name" "$(alert_get "$addr" "$port" "$transport" .process.name)" \
		dingtalk-helper
	check_eq "$name process.executable" \
		"$(alert_get "$addr" "$port" "$transport" .process.executable)" "$WATCHED"
	check_eq "$name user.id" "$(alert_get "$addr" "$port" "$transport" '.user.id | tostring')" 0
	check_eq "$name source.ip" "$(alert_get "$addr" "$port" "$transport" .source.ip)" \
		"$(lab_client_address "$addr")"
	check_eq "$name source.port" "$(alert_get "$addr" "$port" "$transport" .source.port)" \
		"${CASE_SPORT[i]}"
	check_eq "$name destination country" \
		"$(alert_get "$addr" "$port" "$transport" .destination.geo.country_iso_code)" "$cc"
	check_eq "$name network.type" "$(alert_get "$addr" "$port" "$transport" .network.type)" \
		"$type"
	check_match "$name network.bytes" "$(alert_get "$addr" "$port" "$transport" .network.bytes)" \
		'^[1-9][0-9]*$'
	check_eq "$name borderflow.app" "$(alert_get "$addr" "$port" "$transport" .borderflow.app)" \
		dingtalk
	check_eq "$name borderflow.verdict" \
		"$(alert_get "$addr" "$port" "$transport" .borderflow.verdict)" foreign
	check_match "$name borderflow.geo_source" \
		"$(alert_get "$addr" "$port" "$transport" .borderflow.geo_source)" '^[^[:space:]].*$'
done

# --- unwatched copy of the client -------------------------------------------------

read_status || diag "status failed: $(cat "$LAB_TMP/status.err")"
dingtalk_cn_bytes=$(status_sum dingtalk CN .transmit_bytes)
dingtalk_cn_packets=$(status_sum dingtalk CN .transmit_packets)
other_cn_bytes=$(status_sum other CN .transmit_bytes)
other_cn_packets=$(status_sum other CN .transmit_packets)
alerts_before=$(alert_lines)

if out=$(lab_client "$UNWATCHED" tcp "$LAB_CN4" "$UNWATCHED_PORT" "$UNWATCHED_BYTES" 2>&1); then
	ok "unwatched client tcp to $LAB_CN4 port $UNWATCHED_PORT"
else
	not_ok "unwatched client tcp to $LAB_CN4 port $UNWATCHED_PORT" "$out"
fi
lab_sink_wait_total $((total + UNWATCHED_BYTES)) 5
unwatched_sink=$(lab_sink_bytes tcp "$LAB_CN4" "$UNWATCHED_PORT")
check_eq "sink bytes of unwatched client" "$unwatched_sink" "$UNWATCHED_BYTES"

for ((i = 0; i < COUNT_TIMEOUT_S * 5; i++)); do
	read_status && (($(status_sum other CN .transmit_bytes) >= other_cn_bytes + unwatched_sink)) &&
		break
	sleep 0.2
done
wait_stable other CN || diag "other CN bytes still changed after $COUNT_TIMEOUT_S s"

check_eq "unwatched client adds no dingtalk CN bytes" \
	"$(status_sum dingtalk CN .transmit_bytes)" "$dingtalk_cn_bytes"
check_eq "unwatched client adds no dingtalk CN packets" \
	"$(status_sum dingtalk CN .transmit_packets)" "$dingtalk_cn_packets"
other_packets=$(($(status_sum other CN .transmit_packets) - other_cn_packets))
check_range "unwatched client bytes under other CN" \
	$(($(status_sum other CN .transmit_bytes) - other_cn_bytes)) "$unwatched_sink" \
	$((unwatched_sink + other_packets * TCP_HEADER_MAX))
check_eq "other CN verdict" "$(status_verdicts other CN)" foreign
sleep 1
check_eq "unwatched client raises no alert" "$(alert_lines)" "$alerts_before"

# --- stop -----------------------------------------------------------------------

lab_sink_stop || diag "sink exited with status $?"
lab_stop "$DAEMON_PID" "$STOP_TIMEOUT_S"
check_eq "daemon exits 0 within $STOP_TIMEOUT_S s of SIGTERM" "$?" 0
DAEMON_PID=

if ((LAB_FAILURES > 0)); then
	diag "daemon stderr (last 30 lines):"
	diag "$(daemon_log_tail)"
fi
lab_finish
