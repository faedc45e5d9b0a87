#!/usr/bin/env bash
# Runs the atheris fuzz targets in fuzz/ for a bounded time each.
#   tools/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default: 20 seconds, every target
# Targets: footer toc open inflate (fuzz/fuzz_<target>.py).  For hours on every core:
#   FUZZ_JOBS=$(nproc) tools/fuzz.sh 3600
# Environment:
#   PYTHON        the interpreter with pystargz and atheris (default: python3)
#   FUZZ_DIR      corpora, crash inputs and logs, kept between runs (default: .fuzz)
#   FUZZ_JOBS     parallel fuzzing processes per target (default: 1)
#   FUZZ_PRELOAD  LD_PRELOAD for the fuzzer processes only (the ASan runtime, for a sanitized build)
# Exits 1 when a target crashed; the input that crashed it is in FUZZ_DIR/crashes/<target>/ and
# `python fuzz/fuzz_<target>.py <that file>` replays it (see docs/fuzzing.md).
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."
seconds=${1:-20}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(footer toc open inflate)
python=${PYTHON:-python3}
dir=$(mkdir -p "${FUZZ_DIR:-.fuzz}" && cd "${FUZZ_DIR:-.fuzz}" && pwd)
jobs=${FUZZ_JOBS:-1}
repo=$PWD
failed=()

for target in "${targets[@]}"; do
    script="$repo/fuzz/fuzz_$target.py"
    [ -f "$script" ] || { echo "fuzz: no target $target ($script)" >&2; exit 2; }
    mkdir -p "$dir/corpus/$target" "$dir/crashes/$target" "$dir/logs/$target"
    rm -rf "$dir/seeds/$target"
    env ${FUZZ_PRELOAD:+LD_PRELOAD="$FUZZ_PRELOAD"} "$python" "$script" --make-seeds "$dir/seeds/$target" >/dev/null
    options=(-max_total_time="$seconds" -timeout=30 -rss_limit_mb=3072 -max_len=65536
             -artifact_prefix="$dir/crashes/$target/" -print_final_stats=1)
    [ "$jobs" -le 1 ] || options+=(-jobs="$jobs" -workers="$jobs")
    log="$dir/logs/$target/run.log"
    # libFuzzer writes one fuzz-<job>.log per job into the working directory.
    if (cd "$dir/logs/$target" && env ${FUZZ_PRELOAD:+LD_PRELOAD="$FUZZ_PRELOAD"} \
            "$python" "$script" "${options[@]}" "$dir/corpus/$target" "$dir/seeds/$target") >"$log" 2>&1; then
        status=ok
    else
        status=CRASHED
        failed+=("$target")
    fi
    logs=("$log" "$dir"/logs/"$target"/fuzz-*.log)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "${logs[@]}" | awk '{ n += $1 } END { print n + 0 }')
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "${logs[@]}" | awk '{ n += $1 } END { print n + 0 }')
    corpus=$(find "$dir/corpus/$target" -type f | wc -l)
    echo "fuzz $target: $status, $runs executions (${rate}/s) in ${seconds}s x $jobs job(s), corpus $corpus inputs"
    if [ "$status" = CRASHED ]; then
        grep -h -B2 -A30 -E "Uncaught Python exception|ERROR: (AddressSanitizer|libFuzzer)|runtime error" \
            "${logs[@]}" | head -80 >&2 || true
        ls "$dir/crashes/$target" >&2
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashes in ${failed[*]}; inputs in $dir/crashes/" >&2
    exit 1
fi
