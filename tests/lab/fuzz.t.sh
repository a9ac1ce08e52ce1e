#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Fuzz test of the geolocation parsers, with the libFuzzer targets of tests/fuzz/ that
# "make tests" builds into $OUTPUT/fuzz/ when clang's libFuzzer runtime is installed
# (Debian package libclang-rt-dev). Without them the test skips, and fails under CI=true.
#
# Each target first runs every input of tests/fuzz/regressions/TARGET/ once, and the inputs
# that an earlier run kept in tests/fuzz/crashes/, then fuzzes for FUZZ_TIME_S seconds
# (default 20) from its seed corpus tests/fuzz/corpus/TARGET/ and the dictionary
# tests/fuzz/TARGET.dict. A crash, a sanitizer report, a leak, an input that runs longer than
# FUZZ_TIMEOUT_S seconds or a process above FUZZ_RSS_LIMIT_MB MB is a failure. libFuzzer
# keeps the input of a new failure in tests/fuzz/crashes/, which git ignores: once the bug is
# fixed, move the file into the regression folder of its target and commit it there.
#
# The inputs found while fuzzing go to a temporary folder, so the seed corpora stay as
# committed. The targets write their files below TMPDIR, which this test points at its own
# temporary folder and removes at exit, also after a crash.

# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"

FUZZ_SRC=$LAB_ROOT/tests/fuzz
FUZZ_BIN=$LAB_OUTPUT/fuzz
FUZZ_CRASHES=$FUZZ_SRC/crashes
FUZZ_TIME_S=${FUZZ_TIME_S:-20}
FUZZ_TIMEOUT_S=${FUZZ_TIMEOUT_S:-10}
FUZZ_RSS_LIMIT_MB=${FUZZ_RSS_LIMIT_MB:-2048}
# Time past -max_total_time for startup, the regression inputs and libFuzzer's final leak check.
FUZZ_GRACE_S=60
FUZZ_CC=${FUZZ_CC:-clang}
# Lines of a failure report shown as TAP comments.
FUZZ_REPORT_LINES=25

# fuzz_has_runtime: true when clang has the libFuzzer runtime that the targets link.
fuzz_has_runtime()
{
	local runtime

	command -v "$FUZZ_CC" >/dev/null 2>&1 || return 1
	runtime=$("$FUZZ_CC" -print-file-name="libclang_rt.fuzzer-$(uname -m).a" 2>/dev/null)
	[[ $runtime == /* && -f $runtime ]]
}

# fuzz_relative PATH: PATH relative to the repository, for messages.
fuzz_relative()
{
	printf '%s\n' "${1#"$LAB_ROOT"/}"
}

# fuzz_run LOG SECONDS BINARY ARGS...: runs a target in the background so that the EXIT trap
# can stop it, with a time limit of SECONDS. Returns the target's exit status.
fuzz_run()
{
	local log=$1 seconds=$2 pid rc

	shift 2
	TMPDIR=$LAB_TMP/files timeout --kill-after=10 "$seconds" "$@" >"$log" 2>&1 &
	pid=$!
	LAB_PIDS+=("$pid")
	wait "$pid"
	rc=$?
	lab_forget_pid "$pid"
	return $rc
}

# fuzz_failure_kind LOG: names the failure that a libFuzzer log reports.
fuzz_failure_kind()
{
	local log=$1

	if grep -q 'ERROR: LeakSanitizer' "$log"; then
		echo "memory leak"
	elif grep -q 'ERROR: AddressSanitizer' "$log"; then
		grep -m1 -o 'ERROR: AddressSanitizer: [a-z-]*' "$log" | sed 's/^ERROR: //'
	elif grep -q 'runtime error:' "$log"; then
		echo "undefined behavior"
	elif grep -q "check '.*' failed" "$log"; then
		echo "broken invariant"
	elif grep -q 'ERROR: libFuzzer: timeout' "$log"; then
		echo "timeout over $FUZZ_TIMEOUT_S s"
	elif grep -q 'ERROR: libFuzzer: out-of-memory' "$log"; then
		echo "out of memory over $FUZZ_RSS_LIMIT_MB MB"
	else
		echo "crash"
	fi
}

# fuzz_report LOG: the start of the failure report of a libFuzzer log, as diagnostic lines.
fuzz_report()
{
	local log=$1 start

	start=$(grep -n -m1 -E "check '.*' failed|runtime error:|==[0-9]+==ERROR|ERROR: libFuzzer" \
		"$log" | cut -d: -f1)
	if [[ -n $start ]]; then
		tail -n "+$start" "$log" | head -n "$FUZZ_REPORT_LINES"
	else
		tail -n "$FUZZ_REPORT_LINES" "$log"
	fi
}

# fuzz_replay TARGET: runs the regression inputs of TARGET and its kept crash inputs once each.
fuzz_replay()
{
	local target=$1 bin=$FUZZ_BIN/$1 log=$LAB_TMP/$1-replay.log input failed rc
	local inputs=() kept=()

	for input in "$FUZZ_SRC/regressions/$target"/*; do
		[[ -f $input ]] && inputs+=("$input")
	done
	for input in "$FUZZ_CRASHES/$target"-*; do
		[[ -f $input ]] && kept+=("$input")
	done
	inputs+=("${kept[@]}")
	if ((${#inputs[@]} == 0)); then
		ok "$target: regression inputs (none yet)"
		return
	fi

	# Given files instead of folders, libFuzzer runs each once and stops at the first failure.
	fuzz_run "$log" $((FUZZ_TIMEOUT_S * ${#inputs[@]} + FUZZ_GRACE_S)) "$bin" \
		-rss_limit_mb="$FUZZ_RSS_LIMIT_MB" -timeout="$FUZZ_TIMEOUT_S" "${inputs[@]}"
	rc=$?
	if ((rc == 0)); then
		ok "$target: regression inputs (${#inputs[@]})"
		for input in "${kept[@]}"; do
			diag "$(fuzz_relative "$input") passes now; move it to" \
				"tests/fuzz/regressions/$target/ and commit it"
		done
		return
	fi

	failed=$(sed -n 's/^Running: //p' "$log" | tail -n 1)
	if [[ -z $failed ]]; then
		not_ok "$target: regression inputs (exit status $rc)" "$(fuzz_report "$log")"
	elif [[ $failed == "$FUZZ_CRASHES"/* ]]; then
		not_ok "$target: $(fuzz_failure_kind "$log") on kept input $(fuzz_relative "$failed")" \
			"fix the bug, then move the input to tests/fuzz/regressions/$target/" \
			"$(fuzz_report "$log")"
	else
		not_ok "$target: $(fuzz_failure_kind "$log") on regression input" \
			"$(fuzz_relative "$failed")" "$(fuzz_report "$log")"
	fi
}

# fuzz_explore TARGET: fuzzes TARGET for FUZZ_TIME_S seconds from its seed corpus.
fuzz_explore()
{
	local target=$1 bin=$FUZZ_BIN/$1 log=$LAB_TMP/$1-fuzz.log work=$LAB_TMP/$1-corpus
	local seeds=$FUZZ_SRC/corpus/$1 dict=$FUZZ_SRC/$1.dict name stats input rc
	local options=()

	name="$target: fuzz for $FUZZ_TIME_S s"
	if [[ ! -d $seeds ]]; then
		not_ok "$name" "missing seed corpus $(fuzz_relative "$seeds")"
		return
	fi
	[[ -f $dict ]] && options+=(-dict="$dict")
	mkdir -p "$work" "$FUZZ_CRASHES" || lab_bail "failed to create '$work' or '$FUZZ_CRASHES'"

	# The first corpus folder receives the new inputs, the seed folder is only read.
	fuzz_run "$log" $((FUZZ_TIME_S + FUZZ_GRACE_S)) "$bin" -max_total_time="$FUZZ_TIME_S" \
		-rss_limit_mb="$FUZZ_RSS_LIMIT_MB" -timeout="$FUZZ_TIMEOUT_S" -print_final_stats=1 \
		-artifact_prefix="$FUZZ_CRASHES/$target-" "${options[@]}" "$work" "$seeds"
	rc=$?
	if ((rc == 0)); then
		ok "$name"
		stats=$(awk '
			$2 == "DONE" { for (i = 1; i < NF; i++) if ($i == "cov:") cov = $(i + 1);
				   for (i = 1; i < NF; i++) if ($i == "ft:") ft = $(i + 1) }
			/^stat::number_of_executed_units:/ { runs = $2 }
			/^stat::average_exec_per_sec:/ { rate = $2 }
			/^stat::peak_rss_mb:/ { rss = $2 }
			/^INFO: Seed:/ { seed = $3 }
			END { printf "%s inputs, %s exec/s, coverage %s edges, %s features, " \
				     "peak RSS %s MB, -seed=%s", runs, rate, cov, ft, rss, seed }' "$log")
		diag "$target: $stats"
		return
	fi

	input=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
	if [[ -z $input ]]; then
		not_ok "$name (exit status $rc)" "$(fuzz_report "$log")"
		return
	fi
	not_ok "$target: $(fuzz_failure_kind "$log"), input kept as $(fuzz_relative "$input")" \
		"once fixed, move it to tests/fuzz/regressions/$target/ and commit it" \
		"$(fuzz_report "$log")"
}

main()
{
	local src target targets=()

	for src in "$FUZZ_SRC"/geo_*.c; do
		[[ -f $src ]] && targets+=("$(basename "$src" .c)")
	done
	((${#targets[@]} > 0)) || lab_bail "no fuzz targets in $(fuzz_relative "$FUZZ_SRC")"
	fuzz_has_runtime ||
		lab_unavailable "clang's libFuzzer runtime not found (install libclang-rt-dev)"
	for target in "${targets[@]}"; do
		lab_require_file "$FUZZ_BIN/$target"
	done

	trap lab_exit_trap EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	lab_setup_tmp
	mkdir "$LAB_TMP/files" || lab_bail "failed to create '$LAB_TMP/files'"

	for target in "${targets[@]}"; do
		fuzz_replay "$target"
		fuzz_explore "$target"
	done
	lab_finish
}

main "$@"
