#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Lab test of the lab itself, without the daemon: namespaces and routes, the
# client cgroup, exact byte counts of the sink for every kind of traffic that
# fakeclient sends, and a teardown that leaves nothing behind.

# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"

MAIN_PORT=9000
FORK_PORT=9001

lab_require_root
lab_require_cmd ip ss awk sysctl
lab_require_file "$LAB_BIN/sink" "$LAB_BIN/fakeclient"
lab_setup

# --- namespaces and routes ----------------------------------------------------

for ns in "$LAB_CLI" "$LAB_SRV"; do
	check_eq "no default route in ${ns%-*} namespace" "$(lab_default_routes "$ns")" ""
done

for addr in "${LAB_SERVER_ADDRS[@]}"; do
	check_eq "route to $addr is on-link via $LAB_CLI_IF" "$(lab_route_dev "$LAB_CLI" "$addr")" \
		"$LAB_CLI_IF"
done
check_eq "route to mapped ::ffff:$LAB_CN4 is on-link" \
	"$(lab_route_ok "::ffff:$LAB_CN4" && echo on-link)" on-link
check_eq "route check rejects address outside the lab" \
	"$(lab_route_ok 2001:db8:ffff::1 || echo rejected)" rejected

# --- client process placement -------------------------------------------------

cgroup_rel=/${LAB_CGROUP#"$(lab_cgroup2_root)"/}
check_eq "client runs in test cgroup" \
	"$(lab_client cat /proc/self/cgroup | awk -F: '$1 == "0" { print $3 }')" "$cgroup_rel"
check_eq "client runs in client namespace" \
	"$(lab_client readlink /proc/self/ns/net)" "net:[$(stat -L -c %i "/run/netns/$LAB_CLI")]"

# --- traffic ------------------------------------------------------------------

# mode, server address, port, bytes, expected peer form of the destination in the
# sink summary. Distinct byte counts make a miscounted case stand out.
CASES=(
	"tcp           $LAB_MO4 $MAIN_PORT 10001 $LAB_MO4"
	"udp           $LAB_HK4 $MAIN_PORT 5002  $LAB_HK4"
	"udp-connected $LAB_CN4 $MAIN_PORT 3003  $LAB_CN4"
	"udp           $LAB_US4 $MAIN_PORT 1200  $LAB_US4"
	"tcp           $LAB_HK6 $MAIN_PORT 20004 $LAB_HK6"
	"udp           $LAB_CN6 $MAIN_PORT 7005  $LAB_CN6"
	"udp-connected $LAB_US6 $MAIN_PORT 4006  $LAB_US6"
	"tcp           $LAB_MO6 $MAIN_PORT 150007 $LAB_MO6"
	"mapped        $LAB_US4 $MAIN_PORT 6007  $LAB_US4"
	"fork-tcp      $LAB_CN6 $FORK_PORT 8008  $LAB_CN6"
)

for c in "${CASES[@]}"; do
	read -r _ addr _ <<<"$c"
	lab_assert_route "$addr"
done

lab_sink_start "$MAIN_PORT" "$FORK_PORT"

total=0
for c in "${CASES[@]}"; do
	read -r mode addr port bytes _ <<<"$c"
	args=("$mode")
	[[ $mode == fork-tcp ]] && args=(--fork tcp)
	if out=$(lab_client "$LAB_BIN/fakeclient" "${args[@]}" "$addr" "$port" "$bytes" 2>&1); then
		ok "fakeclient $mode to $addr port $port"
	else
		not_ok "fakeclient $mode to $addr port $port" "$out"
	fi
	total=$((total + bytes))
done

lab_sink_wait_total "$total" 5 ||
	diag "sink received $(lab_sink_bytes any any any) of $total bytes after 5 s"
lab_sink_stop
check_eq "sink exits 0 on SIGTERM" "$?" 0

# The sink reports IPv4 and IPv4-mapped peers as IPv4, so "mapped" lands under tcp IPv4.
declare -A expect_bytes expect_count
for c in "${CASES[@]}"; do
	read -r mode addr port bytes dest <<<"$c"
	transport=tcp
	count=1
	if [[ $mode == udp* ]]; then
		transport=udp
		count=$(((bytes + 1199) / 1200))
	fi
	key="$transport $dest $port"
	expect_bytes[$key]=$((${expect_bytes[$key]:-0} + bytes))
	expect_count[$key]=$((${expect_count[$key]:-0} + count))
done

mapfile -t keys < <(printf '%s\n' "${!expect_bytes[@]}" | sort)
for key in "${keys[@]}"; do
	read -r transport dest port <<<"$key"
	peer=$(lab_client_address "$dest")
	unit=connections
	[[ $transport == udp ]] && unit=datagrams
	check_eq "sink $transport bytes from $peer to $dest port $port" \
		"$(lab_sink_bytes "$transport" "$dest" "$port" "$peer")" "${expect_bytes[$key]}"
	check_eq "sink $transport $unit from $peer to $dest port $port" \
		"$(lab_sink_count "$transport" "$dest" "$port" "$peer")" "${expect_count[$key]}"
done
check_eq "sink total bytes" "$(lab_sink_bytes any any any)" "$total"
check_eq "sink rejected no connection" \
	"$(awk '$2 == "rejected_connections" { print $3 }' "$LAB_SINK_OUT")" 0

# --- failures are reported ----------------------------------------------------

lab_sink_start "$MAIN_PORT"
out=$(lab_client "$LAB_BIN/fakeclient" tcp "$LAB_CN4" 9999 100 2>&1)
check_eq "fakeclient exits 1 on refused connection" "$?" 1
check_match "fakeclient names refused address" "$out" "$LAB_CN4 port 9999: Connection refused"
lab_sink_stop

# --- teardown -----------------------------------------------------------------

cgroup=$LAB_CGROUP
tmp=$LAB_TMP
lab_teardown
check_eq "teardown removes namespaces" \
	"$(ip netns list | awk -v a="$LAB_CLI" -v b="$LAB_SRV" '$1 == a || $1 == b')" ""
check_eq "teardown removes cgroup" "$([[ -e $cgroup ]] && echo "$cgroup exists")" ""
check_eq "teardown removes temporary folder" "$([[ -e $tmp ]] && echo "$tmp exists")" ""

lab_finish
