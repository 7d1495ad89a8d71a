#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, two at a time,
# and prints per target: executions, coverage (libFuzzer's `cov:` and `ft:`),
# and the crashes found. fuzz/README.md explains the output and what to do
# with a crash.
#
#   fuzz/run.sh SECONDS [TARGET...]
#
# Fuzzing goes on after a crash (libFuzzer's fork mode with -ignore_crashes),
# so one known bug does not end a long run. Inputs that crashed, timed out or
# ran out of memory are saved to fuzz/artifacts/TARGET/; the full log of a
# run is fuzz/runs/TARGET.log. Set JOBS=1 to run one target at a time.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
all=(check_file config devtools placeholder response)

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
    echo "usage: fuzz/run.sh SECONDS [TARGET...]   (targets: ${all[*]})" >&2
    exit 2
fi
seconds=$1
shift
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all[@]}")
jobs=${JOBS:-2}

cd "$root"
# The main crate's CARGO_TARGET_DIR would mix normal and instrumented builds.
unset CARGO_TARGET_DIR
nice -n 19 cargo fuzz build --sanitizer none >&2

# Starting inputs beyond fuzz/seeds/: the shipped files and the tests' check
# files, read where they live so the corpus follows them.
seed_dirs() {
    case $1 in
        check_file)
            echo checks
            find tests/golden -name '*.toml' ! -name config.toml -printf '%h\n' | sort -u
            ;;
        response) echo checks ;;
        *) ;;
    esac
}

run_target() {
    local t=$1
    local corpus=fuzz/corpus/$t artifacts=fuzz/artifacts/$t log=fuzz/runs/$t.log
    mkdir -p "$corpus" "$artifacts" fuzz/runs
    if [[ $t == config ]]; then
        cp config.toml "$corpus/shipped-config.toml"
        cp deploy/container-config.toml "$corpus/shipped-container-config.toml"
        for f in tests/golden/*/config.toml; do
            cp "$f" "$corpus/golden-$(basename "$(dirname "$f")")-config.toml"
        done
    fi
    # shellcheck disable=SC2046
    nice -n 19 cargo fuzz run --sanitizer none "$t" "$corpus" "fuzz/seeds/$t" $(seed_dirs "$t") -- \
        -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -dict="fuzz/dict/$t.dict" -max_total_time="$seconds" \
        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 \
        >"$log" 2>&1 || true
}

running=0
for t in "${targets[@]}"; do
    run_target "$t" &
    running=$((running + 1))
    if ((running >= jobs)); then
        wait -n || true
        running=$((running - 1))
    fi
done
wait

# The last status line of fork mode reads
#   #EXECS: cov: C ft: F corp: N exec/s: E oom/timeout/crash: O/T/X time: S ...
summary() {
    local t=$1 log=fuzz/runs/$1.log
    local line
    line=$(grep -E '^#[0-9]+: cov: ' "$log" | tail -n 1 || true)
    if [[ -z $line ]]; then
        printf '%-12s no status line (see %s)\n' "$t" "$log"
        return
    fi
    local execs cov ft otc
    execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$line")
    cov=$(sed -E 's/.* cov: ([0-9]+).*/\1/' <<<"$line")
    ft=$(sed -E 's/.* ft: ([0-9]+).*/\1/' <<<"$line")
    otc=$(sed -E 's|.* oom/timeout/crash: ([0-9]+/[0-9]+/[0-9]+).*|\1|' <<<"$line")
    # Distinct crashes: panics by their location; deadly signals (a stack
    # overflow), timeouts and OOMs as one kind each.
    local distinct
    distinct=$( {
        grep -ohE "panicked at [^ ]+:[0-9]+:[0-9]+" "$log" || true
        grep -ohE "ERROR: libFuzzer: (deadly signal|timeout|out-of-memory)" "$log" || true
    } | sort -u)
    local n=0
    [[ -z $distinct ]] || n=$(wc -l <<<"$distinct")
    printf '%-12s executions %-10s cov %-6s ft %-7s oom/timeout/crash %-9s distinct crashes %s\n' \
        "$t" "$execs" "$cov" "$ft" "$otc" "$n"
    if [[ -n $distinct ]]; then
        sed 's/^/               /' <<<"$distinct"
    fi
}

echo "fuzzed ${seconds}s per target:"
for t in "${targets[@]}"; do
    summary "$t"
done
