# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Shared functions of the lab tests. A tests/lab/*.t.sh script sources this
# file from bash, calls lab_setup, and prints TAP lines through ok, not_ok,
# skip and the check_* functions.
#
# The lab is two network namespaces, client and server, joined by one veth
# pair. Every server address is on-link for the client and neither namespace
# has a default route, so a packet to any other address has no route out.
# Clients run inside the client namespace and inside a child cgroup of the
# cgroup v2 hierarchy that belongs to this run. An EXIT trap removes the
# processes the test started, the namespaces, the cgroup and the temporary
# folder, also when the test fails or is interrupted.
#
# CI=true turns every missing capability (root, a command, a built binary)
# into a failure. Without it the script skips with a one-line reason.

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_OUTPUT=${OUTPUT:-build}
case $LAB_OUTPUT in
/*) ;;
*) LAB_OUTPUT=$LAB_ROOT/$LAB_OUTPUT ;;
esac
LAB_BIN=$LAB_OUTPUT/tests/lab
LAB_NAME=$(basename "$0" .t.sh)

# A per-run suffix keeps names apart when several lab tests run at once.
LAB_SUFFIX=$$
LAB_CLI=bf-cli-$LAB_SUFFIX
LAB_SRV=bf-srv-$LAB_SUFFIX
LAB_CLI_IF=bf-veth0
LAB_SRV_IF=bf-veth1
LAB_CGROUP=
LAB_TMP=
# Pin folder for a daemon of this run ([daemon] pin), so runs never share counters.
LAB_PIN=/sys/fs/bpf/borderflow-test-$LAB_SUFFIX

# Server addresses, named for the country the test geolocation file gives them.
LAB_MO4=192.0.2.1
LAB_HK4=192.0.2.129
LAB_CN4=198.51.100.1
LAB_US4=203.0.113.1
LAB_MO6=2001:db8:853::1
LAB_HK6=2001:db8:852::1
LAB_CN6=2001:db8:86::1
LAB_US6=2001:db8:1::1

# Server address -> "client address/prefix length" on the same link.
declare -A LAB_CLIENT_ADDR=(
	[$LAB_MO4]=192.0.2.126/25
	[$LAB_HK4]=192.0.2.254/25
	[$LAB_CN4]=198.51.100.254/24
	[$LAB_US4]=203.0.113.254/24
	[$LAB_MO6]=2001:db8:853::fe/64
	[$LAB_HK6]=2001:db8:852::fe/64
	[$LAB_CN6]=2001:db8:86::fe/64
	[$LAB_US6]=2001:db8:1::fe/64
)
# Server address -> prefix length on the server side.
declare -A LAB_SERVER_PREFIX=(
	[$LAB_MO4]=25 [$LAB_HK4]=25 [$LAB_CN4]=24 [$LAB_US4]=24
	[$LAB_MO6]=64 [$LAB_HK6]=64 [$LAB_CN6]=64 [$LAB_US6]=64
)
LAB_SERVER_ADDRS=("$LAB_MO4" "$LAB_HK4" "$LAB_CN4" "$LAB_US4"
	"$LAB_MO6" "$LAB_HK6" "$LAB_CN6" "$LAB_US6")

LAB_FAILURES=0
LAB_PIDS=()
LAB_CLEANUP_HOOKS=()
LAB_NETNS=()
LAB_SINK_PID=
LAB_SINK_OUT=

# --- TAP output -------------------------------------------------------------

ok()
{
	printf 'ok - %s\n' "$1"
}

# not_ok NAME [DIAGNOSTIC...]: each diagnostic line is printed as a TAP comment.
not_ok()
{
	local name=$1 line

	shift
	printf 'not ok - %s\n' "$name"
	for line in "$@"; do
		printf '%s\n' "$line" | sed 's/^/# /'
	done
	LAB_FAILURES=$((LAB_FAILURES + 1))
}

skip()
{
	printf 'ok - %s # SKIP %s\n' "$1" "$2"
}

# diag TEXT...: prints TAP comment lines that are not results.
diag()
{
	printf '%s\n' "$@" | sed 's/^/# /'
}

check_eq()
{
	local name=$1 actual=$2 expected=$3

	if [[ $actual == "$expected" ]]; then
		ok "$name"
	else
		not_ok "$name" "actual:   $actual" "expected: $expected"
	fi
}

# check_range NAME ACTUAL MIN MAX: integer MIN <= ACTUAL <= MAX.
check_range()
{
	local name=$1 actual=$2 min=$3 max=$4

	if [[ $actual =~ ^-?[0-9]+$ ]] && ((actual >= min && actual <= max)); then
		ok "$name"
	else
		not_ok "$name" "actual:   $actual" "expected: $min to $max"
	fi
}

# check_match NAME ACTUAL REGEX: bash extended regular expression.
check_match()
{
	local name=$1 actual=$2 regex=$3

	if [[ $actual =~ $regex ]]; then
		ok "$name"
	else
		not_ok "$name" "actual:   $actual" "expected: a match of /$regex/"
	fi
}

# check_cmd NAME COMMAND...: passes when COMMAND exits 0, else prints its output.
check_cmd()
{
	local name=$1 output rc

	shift
	output=$("$@" 2>&1)
	rc=$?
	if ((rc == 0)); then
		ok "$name"
	else
		not_ok "$name" "command: $*" "exit status: $rc" "$output"
	fi
}

# lab_bail REASON: reports a failed setup step and ends the test. The EXIT trap cleans up.
lab_bail()
{
	not_ok "$LAB_NAME: $1"
	exit 1
}

# lab_finish: the exit status of a test script, 1 when any check failed.
lab_finish()
{
	((LAB_FAILURES == 0))
	exit $?
}

# --- requirements -----------------------------------------------------------

# lab_unavailable REASON: a missing capability fails under CI=true, else skips.
lab_unavailable()
{
	if [[ ${CI:-} == true ]]; then
		not_ok "$LAB_NAME: $1" "CI=true, so a missing capability is a failure"
		exit 1
	fi
	skip "$LAB_NAME" "$1"
	exit 0
}

lab_require_root()
{
	[[ $(id -u) == 0 ]] || lab_unavailable "needs root for network namespaces and cgroups"
}

lab_require_cmd()
{
	local cmd

	for cmd in "$@"; do
		command -v "$cmd" >/dev/null 2>&1 || lab_unavailable "command '$cmd' not found"
	done
}

# lab_require_file PATH...: checks built binaries. A missing one means "make tests" did not run.
lab_require_file()
{
	local path

	for path in "$@"; do
		[[ -x $path ]] || lab_unavailable "'$path' not built (run make tests)"
	done
}

# --- process tracking -------------------------------------------------------

# lab_alive PID: true while the process exists and is not a zombie.
lab_alive()
{
	local state

	[[ -r /proc/$1/stat ]] || return 1
	state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[[ -n $state && $state != Z && $state != X ]]
}

# lab_wait_exit PID SECONDS: waits until PID has exited, at most SECONDS.
lab_wait_exit()
{
	local pid=$1 tries=$(($2 * 10))

	while ((tries-- > 0)); do
		lab_alive "$pid" || return 0
		sleep 0.1
	done
	! lab_alive "$pid"
}

lab_forget_pid()
{
	local pid=$1 i

	for i in "${!LAB_PIDS[@]}"; do
		[[ ${LAB_PIDS[$i]} == "$pid" ]] && unset 'LAB_PIDS[i]'
	done
}

# lab_stop PID SECONDS: sends SIGTERM to a process this test started, waits at most
# SECONDS and reaps it. The status of the process is the status of lab_stop:
# 124 if it is still running, and then it is killed.
lab_stop()
{
	local pid=$1 seconds=$2 rc

	lab_alive "$pid" && kill -TERM "$pid" 2>/dev/null
	if ! lab_wait_exit "$pid" "$seconds"; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		lab_forget_pid "$pid"
		return 124
	fi
	wait "$pid" 2>/dev/null
	rc=$?
	lab_forget_pid "$pid"
	return $rc
}

# lab_start_daemon CONF SOCKET SECONDS: starts borderflowd with CONF on the lab cgroup, its
# output in $LAB_TMP/daemon.out and daemon.log, and waits at most SECONDS until "borderflow
# status" reads SOCKET. Sets DAEMON_PID; bails out of the test if the daemon is not ready.
lab_start_daemon()
{
	local conf=$1 sock=$2 seconds=$3 i

	"$LAB_OUTPUT/borderflowd" --config "$conf" --cgroup "$LAB_CGROUP" \
		>"$LAB_TMP/daemon.out" 2>"$LAB_TMP/daemon.log" &
	DAEMON_PID=$!
	LAB_PIDS+=("$DAEMON_PID")
	for ((i = 0; i < seconds * 10; i++)); do
		"$LAB_OUTPUT/borderflow" status --socket "$sock" >/dev/null 2>&1 && break
		lab_alive "$DAEMON_PID" || break
		sleep 0.1
	done
	"$LAB_OUTPUT/borderflow" status --socket "$sock" >/dev/null 2>&1 ||
		lab_bail "daemon not ready after $seconds s: $(tail -n 20 "$LAB_TMP/daemon.log")"
	ok "daemon ready within $seconds s"
}

# lab_map_id PID NAME: prints the id of the BPF map named NAME among those that the fds of
# process PID refer to.
lab_map_id()
{
	local fdinfo id

	for fdinfo in /proc/"$1"/fdinfo/*; do
		id=$(awk '$1 == "map_id:" { print $2 }' "$fdinfo" 2>/dev/null)
		[[ -n $id ]] || continue
		if [[ $(bpftool map show id "$id" -j 2>/dev/null | jq -r .name) == "$2" ]]; then
			echo "$id"
			return 0
		fi
	done
	return 1
}

# lab_wait_counts CLI SOCK STATUS ENDED SECONDS: writes the daemon's status to STATUS once it has
# read ENDED flow end events and its destinations stayed the same over two reads 0.5 s apart.
# Then no packet is still on its way to the counters. Fails after SECONDS, leaving the last
# status read in STATUS.
lab_wait_counts()
{
	local cli=$1 sock=$2 status=$3 ended=$4 seconds=$5 last="" now i

	for ((i = 0; i < seconds * 2; i++)); do
		if "$cli" status --json --socket "$sock" >"$status.tmp" 2>/dev/null &&
			jq -e . "$status.tmp" >/dev/null 2>&1 && mv "$status.tmp" "$status" &&
			(($(jq '.flows_ended' "$status") >= ended)); then
			now=$(jq -c '[.apps[] | .destinations[]]' "$status")
			[[ $now == "$last" ]] && return 0
			last=$now
		fi
		sleep 0.5
	done
	return 1
}

# lab_dump_flows PID OUTFILE: writes the flow records of the daemon PID to OUTFILE, as
# bpftool prints the flows map: a JSON array of {"formatted": {"key", "value"}}. The flows
# that socks entries hold (the value's flags has BF_SOCK_FLOW, 4) come with a key of the
# flows map's form, made from the entry's cookie and peer.
lab_dump_flows()
{
	local flows socks

	flows=$(lab_map_id "$1" flows) || lab_bail "no map named flows among the fds of process $1"
	socks=$(lab_map_id "$1" socks) || lab_bail "no map named socks among the fds of process $1"
	bpftool map dump id "$flows" -j >"$2.flows" 2>"$2.err" ||
		lab_bail "bpftool map dump id $flows failed: $(cat "$2.err")"
	bpftool map dump id "$socks" -j >"$2.socks" 2>"$2.err" ||
		lab_bail "bpftool map dump id $socks failed: $(cat "$2.err")"
	jq -s '.[0] + [.[1][].formatted | select(.value.flags % 8 >= 4) | {formatted: {
		key: {cookie: .key, peer: .value.peer, peer_port: .value.peer_port,
			family: .value.peer_family, proto: .value.proto},
		value: .value.flow}}]' "$2.flows" "$2.socks" >"$2" ||
		lab_bail "failed to join the flows and socks entries of process $1"
}

# lab_on_cleanup FUNCTION: runs FUNCTION at exit, before the lab is torn down.
lab_on_cleanup()
{
	LAB_CLEANUP_HOOKS+=("$1")
}

# --- cleanup ----------------------------------------------------------------

lab_kill_cgroup_procs()
{
	local pid tries=50

	[[ -n $LAB_CGROUP && -d $LAB_CGROUP ]] || return 0
	# Every process in this cgroup was started by this test or descends from one.
	while ((tries-- > 0)); do
		[[ -s $LAB_CGROUP/cgroup.procs ]] || return 0
		while read -r pid; do
			kill -KILL "$pid" 2>/dev/null
		done <"$LAB_CGROUP/cgroup.procs"
		sleep 0.1
	done
	return 1
}

# lab_teardown: removes everything the test created. It is safe to call more than once.
lab_teardown()
{
	local i hook pid ns

	for ((i = ${#LAB_CLEANUP_HOOKS[@]} - 1; i >= 0; i--)); do
		hook=${LAB_CLEANUP_HOOKS[i]}
		"$hook" || diag "cleanup step '$hook' failed"
	done
	LAB_CLEANUP_HOOKS=()

	for pid in "${LAB_PIDS[@]}"; do
		lab_alive "$pid" && kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${LAB_PIDS[@]}"; do
		if ! lab_wait_exit "$pid" 3; then
			kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
	done
	LAB_PIDS=()

	if [[ -n $LAB_CGROUP && -d $LAB_CGROUP ]]; then
		lab_kill_cgroup_procs || diag "processes left in cgroup '$LAB_CGROUP'"
		rmdir "$LAB_CGROUP" 2>/dev/null || diag "failed to remove cgroup '$LAB_CGROUP'"
	fi

	for ns in "${LAB_NETNS[@]}"; do
		ip netns delete "$ns" 2>/dev/null
	done
	LAB_NETNS=()

	if [[ -d $LAB_PIN ]]; then
		rm -rf -- "$LAB_PIN"
	fi
	if [[ -n $LAB_TMP && $LAB_TMP == /tmp/bf-lab.* && -d $LAB_TMP ]]; then
		rm -rf -- "$LAB_TMP"
	fi
}

lab_exit_trap()
{
	local rc=$?

	# A second signal must not cut the teardown short.
	trap - EXIT
	trap '' INT TERM HUP
	lab_teardown
	exit $rc
}

# --- setup ------------------------------------------------------------------

# lab_cgroup2_root: prints the mount point of the cgroup v2 hierarchy.
lab_cgroup2_root()
{
	# mountinfo: the 5th field is the mount point, the file system type follows "-".
	awk '{
		for (i = 7; i <= NF; i++) {
			if ($i == "-") {
				if ($(i + 1) == "cgroup2") {
					print $5
					exit
				}
				break
			}
		}
	}' /proc/self/mountinfo
}

lab_setup_tmp()
{
	LAB_TMP=$(mktemp -d /tmp/bf-lab.XXXXXX) || lab_bail "failed to create a temporary folder"
}

lab_setup_cgroup()
{
	local root

	root=$(lab_cgroup2_root)
	[[ -n $root ]] || lab_unavailable "no cgroup2 file system in /proc/self/mountinfo"
	LAB_CGROUP=$root/borderflow-test-$LAB_SUFFIX
	[[ -e $LAB_CGROUP ]] && lab_bail "cgroup '$LAB_CGROUP' already exists"
	mkdir "$LAB_CGROUP" || lab_bail "failed to create cgroup '$LAB_CGROUP'"
}

# lab_ns NAMESPACE COMMAND...: runs COMMAND inside one of the lab namespaces.
lab_ns()
{
	local ns=$1

	shift
	ip netns exec "$ns" "$@"
}

lab_setup_netns()
{
	local ns addr family flags

	for ns in "$LAB_CLI" "$LAB_SRV"; do
		[[ -e /run/netns/$ns ]] && lab_bail "network namespace '$ns' already exists"
		ip netns add "$ns" || lab_unavailable "failed to create network namespace '$ns'"
		LAB_NETNS+=("$ns")
		ip -n "$ns" link set lo up || lab_bail "failed to set lo up in '$ns'"
		# Router advertisements are the one way a default route could appear.
		lab_ns "$ns" sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
			|| lab_bail "failed to disable router advertisements in '$ns'"
	done

	ip -n "$LAB_CLI" link add "$LAB_CLI_IF" type veth peer name "$LAB_SRV_IF" netns "$LAB_SRV" ||
		lab_bail "failed to create the veth pair between '$LAB_CLI' and '$LAB_SRV'"

	for addr in "${LAB_SERVER_ADDRS[@]}"; do
		family=-4
		flags=()
		if [[ $addr == *:* ]]; then
			family=-6
			flags=(nodad)
		fi
		ip -n "$LAB_SRV" "$family" addr add "$addr/${LAB_SERVER_PREFIX[$addr]}" \
			dev "$LAB_SRV_IF" "${flags[@]}" ||
			lab_bail "failed to add address $addr in '$LAB_SRV'"
		ip -n "$LAB_CLI" "$family" addr add "${LAB_CLIENT_ADDR[$addr]}" \
			dev "$LAB_CLI_IF" "${flags[@]}" ||
			lab_bail "failed to add address ${LAB_CLIENT_ADDR[$addr]} in '$LAB_CLI'"
	done

	ip -n "$LAB_CLI" link set "$LAB_CLI_IF" up || lab_bail "failed to set $LAB_CLI_IF up"
	ip -n "$LAB_SRV" link set "$LAB_SRV_IF" up || lab_bail "failed to set $LAB_SRV_IF up"
}

# lab_setup: the namespaces, the cgroup, the temporary folder and the cleanup trap.
lab_setup()
{
	trap lab_exit_trap EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP

	lab_setup_tmp
	lab_setup_cgroup
	lab_setup_netns
}

# lab_client_address SERVER_ADDRESS: prints the client's address on that link.
lab_client_address()
{
	local addr=${LAB_CLIENT_ADDR[$1]:-}

	printf '%s\n' "${addr%/*}"
}

# --- routes -----------------------------------------------------------------

# lab_route_dev NAMESPACE ADDRESS: prints "DEV" or "DEV via GATEWAY" of the route to ADDRESS.
lab_route_dev()
{
	local out

	out=$(lab_ns "$1" ip route get "$2" 2>&1) || {
		printf 'no route: %s\n' "$out"
		return 1
	}
	awk '{
		for (i = 1; i < NF; i++) {
			if ($i == "dev") dev = $(i + 1)
			if ($i == "via") via = $(i + 1)
		}
	} END {
		if (via != "") print dev " via " via; else print dev
	}' <<<"$out"
}

# lab_route_ok ADDRESS: true when the client reaches ADDRESS on-link through the lab veth.
# An IPv4-mapped IPv6 address is checked as the IPv4 address it carries, as the kernel routes it.
lab_route_ok()
{
	local addr=$1 dev

	[[ $addr == ::ffff:*.*.*.* ]] && addr=${addr#::ffff:}
	dev=$(lab_route_dev "$LAB_CLI" "$addr") || return 1
	[[ $dev == "$LAB_CLI_IF" ]]
}

# lab_assert_route ADDRESS: ends the test before anything is sent if ADDRESS is not
# reached through the lab veth.
lab_assert_route()
{
	local dev

	lab_route_ok "$1" && return 0
	dev=$(lab_route_dev "$LAB_CLI" "${1#::ffff:}")
	lab_bail "route from '$LAB_CLI' to $1 is '$dev', expected on-link via $LAB_CLI_IF"
}

# lab_default_routes NAMESPACE: prints every default route of any table, IPv4 and IPv6.
lab_default_routes()
{
	{
		ip -n "$1" -4 route show table all
		ip -n "$1" -6 route show table all
	} | awk '$1 == "default" || $1 == "0.0.0.0/0" || $1 == "::/0"'
}

# --- processes in the lab ---------------------------------------------------

# lab_client COMMAND...: runs COMMAND in the client namespace and in the test cgroup.
# The process joins the cgroup before "ip netns exec", which mounts its own /sys and so
# hides the cgroup file system.
lab_client()
{
	# shellcheck disable=SC2016 # the inner shell expands $$, $1 and $@
	sh -c 'cg=$1; ns=$2; shift 2
		echo $$ >"$cg/cgroup.procs" || exit 125
		exec ip netns exec "$ns" "$@"' lab-client "$LAB_CGROUP" "$LAB_CLI" "$@"
}

# lab_server_bg OUTFILE COMMAND...: starts COMMAND in the server namespace in the
# background, stdout and stderr to OUTFILE, and sets LAB_LAST_PID.
lab_server_bg()
{
	local out=$1

	shift
	ip netns exec "$LAB_SRV" "$@" >"$out" 2>&1 &
	LAB_LAST_PID=$!
	LAB_PIDS+=("$LAB_LAST_PID")
}

# --- sink -------------------------------------------------------------------

# lab_sink_start PORT...: starts the sink in the server namespace, waits until it listens.
lab_sink_start()
{
	local args=() port tries=50 listening

	for port in "$@"; do
		args+=(--port "$port")
	done
	LAB_SINK_OUT=$LAB_TMP/sink.txt
	lab_server_bg "$LAB_TMP/sink.log" "$LAB_BIN/sink" "${args[@]}" --out "$LAB_SINK_OUT" \
		--timeout 500
	LAB_SINK_PID=$LAB_LAST_PID

	while ((tries-- > 0)); do
		lab_alive "$LAB_SINK_PID" || lab_bail "sink exited: $(cat "$LAB_TMP/sink.log")"
		listening=$(lab_ns "$LAB_SRV" ss -Hlntu | awk -v ports=" $* " '{
			n = split($5, a, ":")
			if (index(ports, " " a[n] " ")) count++
		} END { print count + 0 }')
		((listening == 2 * $#)) && return 0
		sleep 0.1
	done
	lab_bail "sink does not listen on TCP and UDP ports $* after 5 s"
}

# lab_sink_snapshot: sends SIGUSR1 to the sink, so it rewrites its summary, and waits for the file.
lab_sink_snapshot()
{
	local tries=50

	rm -f "$LAB_SINK_OUT"
	kill -USR1 "$LAB_SINK_PID" 2>/dev/null || return 1
	while ((tries-- > 0)); do
		[[ -e $LAB_SINK_OUT ]] && return 0
		sleep 0.1
	done
	return 1
}

# lab_sink_stop: stops the sink, which writes its final summary. Fails unless it exits 0.
lab_sink_stop()
{
	lab_stop "$LAB_SINK_PID" 5
}

# lab_sink_field FIELD TRANSPORT LOCAL_ADDRESS PORT [PEER]: prints the sum of column
# FIELD over the lines of the last summary that match. "any" matches every value.
lab_sink_field()
{
	local field=$1

	shift
	awk -v t="${1:-any}" -v l="${2:-any}" -v p="${3:-any}" -v peer="${4:-any}" -v f="$field" '
		/^#/ { next }
		(t == "any" || $1 == t) && (l == "any" || $2 == l) &&
		(p == "any" || $3 == p) && (peer == "any" || $4 == peer) { sum += $f }
		END { print sum + 0 }' "$LAB_SINK_OUT" 2>/dev/null || echo 0
}

# lab_sink_bytes TRANSPORT LOCAL_ADDRESS PORT [PEER]: bytes received, as lab_sink_field.
lab_sink_bytes()
{
	lab_sink_field 5 "$@"
}

# lab_sink_count ...: connections (TCP) or datagrams (UDP), same arguments as lab_sink_bytes.
lab_sink_count()
{
	lab_sink_field 6 "$@"
}

# lab_sink_wait_total BYTES [SECONDS]: waits until the sink has received BYTES in total.
lab_sink_wait_total()
{
	local expected=$1 tries=$((${2:-5} * 5)) total=0

	while ((tries-- > 0)); do
		lab_sink_snapshot || return 1
		total=$(lab_sink_bytes any any any)
		((total >= expected)) && return 0
		sleep 0.2
	done
	return 1
}

# --- test data --------------------------------------------------------------

# lab_write_geo FILE: the test geolocation file, "CIDR,CC" lines.
lab_write_geo()
{
	cat >"$1" <<-'EOF'
		192.0.2.0/25,MO
		192.0.2.128/25,HK
		198.51.100.0/24,CN
		203.0.113.0/24,US
		2001:db8:853::/48,MO
		2001:db8:852::/48,HK
		2001:db8:86::/48,CN
		2001:db8:1::/48,US
	EOF
}

# lab_write_config CONF SOCK APP_DIR: writes the test geolocation file to $LAB_TMP/geo.csv and
# a daemon config CONF that watches APP_DIR as dingtalk, with MO and HK approved. The daemon's
# control socket is SOCK, its pins are in $LAB_PIN, and its metrics listen on a free port,
# which METRICS_PORT is set to.
lab_write_config()
{
	lab_write_geo "$LAB_TMP/geo.csv"
	METRICS_PORT=$(lab_free_port) || lab_bail "no free TCP port on 127.0.0.1 for metrics"
	printf '%s\n' "[policy]" "approved = MO HK" "[geo]" "data = $LAB_TMP/geo.csv" \
		"[app dingtalk]" "path = $3/" "[alerts]" "file = $LAB_TMP/alerts.jsonl" \
		"[daemon]" "socket = $2" "pin = $LAB_PIN" \
		"[metrics]" "listen = 127.0.0.1:$METRICS_PORT" >"$1" ||
		lab_bail "failed to write the config '$1'"
}

# lab_free_port: prints a TCP port on the host that no socket uses in any state. The ports
# come from below the ephemeral range (32768 and up on Linux by default), so no client
# connection takes one between this check and the bind.
lab_free_port()
{
	local port tries=100 used

	used=$(ss -Htan | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u)
	while ((tries-- > 0)); do
		port=$((20000 + RANDOM % 12000))
		grep -qx "$port" <<<"$used" || {
			echo "$port"
			return 0
		}
	done
	return 1
}
