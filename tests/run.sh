#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Runs every test of the project and prints one TAP result line per test:
#
#   1. the unit test binaries $OUTPUT/tests/test_* (cmocka, TAP output)
#   2. the lab scripts tests/lab/*.t.sh
#
# The last line is "N passed, N failed, N skipped". The exit status is 1
# when anything failed, else 0. With CI=true a skipped lab test counts as a
# failure, because CI must run the lab.
#
# Usage: OUTPUT=build tests/run.sh   (make test does this after the build)

set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUTPUT=${OUTPUT:-build}
case $OUTPUT in
/*) ;;
*) OUTPUT=$ROOT/$OUTPUT ;;
esac
export OUTPUT

UNIT_TIMEOUT_S=300
LAB_TIMEOUT_S=600
# Grace period between SIGTERM and SIGKILL, so a lab script can tear its lab down.
KILL_AFTER_S=60
LOG_TAIL_LINES=30

passed=0
failed=0
skipped=0

result_pass()
{
	printf 'ok - %s\n' "$1"
	passed=$((passed + 1))
}

result_fail()
{
	printf 'not ok - %s\n' "$1"
	failed=$((failed + 1))
}

result_skip()
{
	printf 'ok - %s # SKIP %s\n' "$1" "$2"
	skipped=$((skipped + 1))
}

# print_log_tail FILE: the end of a test's output, as TAP comments.
print_log_tail()
{
	[[ -s $1 ]] || return 0
	tail -n "$LOG_TAIL_LINES" "$1" | sed 's/^/# /'
}

describe_status()
{
	local rc=$1 limit=$2

	case $rc in
	124) printf 'timed out after %s s' "$limit" ;;
	137) printf 'killed after the %s s time limit' "$limit" ;;
	*)
		if ((rc > 128)); then
			printf 'killed by signal %d' $((rc - 128))
		else
			printf 'exit status %d' "$rc"
		fi
		;;
	esac
}

# parse_tap_line PREFIX LINE: counts and prints one line of a test's output.
# Sets tap_failures, tap_results and tap_planned of the running test. Both the
# numbered form "ok 3 - name" of cmocka and the unnumbered "ok - name" of the lab
# scripts are read. cmocka reports a skip as "not ok 3 # SKIP name".
parse_tap_line()
{
	local prefix=$1 line=$2 re_skip_only re_skip re_result

	re_skip_only='^(not )?ok( [0-9]+)? # SKIP ?(.*)$'
	re_skip='^(not )?ok( [0-9]+)?( -)? (.*) # SKIP ?(.*)$'
	re_result='^(not )?ok( [0-9]+)?( -)? ?(.*)$'

	if [[ $line =~ $re_skip_only ]]; then
		tap_results=$((tap_results + 1))
		report_skip "$prefix: ${BASH_REMATCH[3]}" "skipped"
	elif [[ $line =~ $re_skip ]]; then
		tap_results=$((tap_results + 1))
		report_skip "$prefix: ${BASH_REMATCH[4]}" "${BASH_REMATCH[5]}"
	elif [[ $line =~ $re_result ]]; then
		tap_results=$((tap_results + 1))
		if [[ -n ${BASH_REMATCH[1]} ]]; then
			tap_failures=$((tap_failures + 1))
			result_fail "$prefix: ${BASH_REMATCH[4]}"
		else
			result_pass "$prefix: ${BASH_REMATCH[4]}"
		fi
	elif [[ $line =~ ^([0-9]+)\.\.([0-9]+) ]]; then
		tap_planned=$((tap_planned + BASH_REMATCH[2]))
	elif [[ $line =~ ^Bail\ out! ]]; then
		tap_failures=$((tap_failures + 1))
		result_fail "$prefix: $line"
	elif [[ $line == \#* ]]; then
		printf '%s\n' "$line"
	elif [[ -n $line ]]; then
		printf '# %s\n' "$line"
	fi
}

# report_skip NAME REASON: counts a lab skip as a failure under CI=true. Unit skips stay skips.
report_skip()
{
	if [[ $tap_kind == lab && ${CI:-} == true ]]; then
		tap_failures=$((tap_failures + 1))
		result_fail "$1 (skipped with CI=true: $2)"
	else
		result_skip "$1" "$2"
	fi
}

run_unit_binary()
{
	local bin=$1 name log rc line

	name=$(basename "$bin")
	log=$(mktemp)
	tap_kind=unit
	tap_failures=0
	tap_results=0
	tap_planned=0

	# The braces take the shell's own report of a crash, such as "Segmentation fault",
	# into the log too.
	{
		CMOCKA_MESSAGE_OUTPUT=TAP timeout --kill-after="$KILL_AFTER_S" "$UNIT_TIMEOUT_S" "$bin"
	} >"$log" 2>&1
	rc=$?
	while IFS= read -r line || [[ -n $line ]]; do
		parse_tap_line "$name" "$line"
	done <"$log"

	# A crash or a non-zero exit without a reported failure is one failure of the binary.
	if ((rc != 0 && (tap_failures == 0 || rc == 124 || rc > 128))); then
		result_fail "$name ($(describe_status "$rc" "$UNIT_TIMEOUT_S"))"
	elif ((tap_results < tap_planned)); then
		result_fail "$name ($tap_results of $tap_planned planned tests reported)"
	fi
	rm -f "$log"
}

run_lab_script()
{
	local script=$1 name err status_file rc line

	name=$(basename "$script" .t.sh)
	err=$(mktemp)
	status_file=$(mktemp)
	tap_kind=lab
	tap_failures=0
	tap_results=0
	tap_planned=0

	# Results are printed as the script runs; stderr is shown only when it fails. The
	# subshell writes the exit status before it closes the pipe that ends the loop.
	while IFS= read -r line || [[ -n $line ]]; do
		parse_tap_line "$name" "$line"
	done < <(
		timeout --kill-after="$KILL_AFTER_S" "$LAB_TIMEOUT_S" bash "$script" 2>"$err"
		echo $? >"$status_file"
	)

	rc=$(cat "$status_file" 2>/dev/null)
	[[ $rc =~ ^[0-9]+$ ]] || rc=1
	if ((rc != 0 && (tap_failures == 0 || rc == 124 || rc > 128))); then
		result_fail "$name ($(describe_status "$rc" "$LAB_TIMEOUT_S"))"
	fi
	if ((rc != 0)); then
		print_log_tail "$err"
	fi
	rm -f "$err" "$status_file"
}

main()
{
	local bin script

	cd "$ROOT" || exit 1
	for bin in "$OUTPUT"/tests/test_*; do
		[[ -f $bin && -x $bin ]] || continue
		run_unit_binary "$bin"
	done
	for script in "$ROOT"/tests/lab/*.t.sh; do
		[[ -f $script ]] || continue
		run_lab_script "$script"
	done

	printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
	((failed == 0))
}

main
