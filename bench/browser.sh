#!/usr/bin/env bash
# What browser steps cost: scarecrow's release build runs N checks, each one
# browser step on the demo site's JavaScript widget, every EVERY, with
# `[browser] concurrency` CONCURRENCY, for DURATION seconds; then it stands
# idle with the browser started. Reports runs per minute, CPU seconds per
# run (the machine's) and peak memory (the daemon and Chromium together),
# memory with the browser idle, the profile's size and a screenshot's.
#
#   bench/browser.sh        N=4 EVERY=1s CONCURRENCY=2 DURATION=60 NO_BUILD=1 KEEP=1
#
# Needs Debian's chromium. Everything stays on 127.0.0.1.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
N=${N:-4}
EVERY=${EVERY:-1s}
CONCURRENCY=${CONCURRENCY:-2}
DURATION=${DURATION:-60}
SITE_PORT=${SITE_PORT:-18780}
LISTEN_PORT=${LISTEN_PORT:-19787}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/scarecrow

[[ ${NO_BUILD:-0} == 1 ]] || (cd "$ROOT" && cargo build --release --locked --bin scarecrow)
WORK=$(mktemp -d /tmp/scarecrow-bench-browser.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ ${KEEP:-0} == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/checks"
cat > "$WORK/config.toml" <<EOF
listen = "127.0.0.1:$LISTEN_PORT"
log_level = "warn"
[store]
path = "$WORK/store.db"
[browser]
sandbox = false
concurrency = $CONCURRENCY
screenshots = "$WORK/shots"
EOF
for i in $(seq 1 "$N"); do
    cat > "$WORK/checks/widget-$i.toml" <<EOF
every = "$EVERY"
timeout = "20s"
[[step]]
name = "widget"
kind = "browser"
url = "http://127.0.0.1:$SITE_PORT/weather/widget"
actions = [ { wait_for = "#forecast tr.day" } ]
screenshot = "never"
[[step.expect.css]]
selector = "#forecast td.temp"
count = { min = 5 }
EOF
done

"$BIN" demo-site --listen "127.0.0.1:$SITE_PORT" >/dev/null 2>&1 &
pids+=($!)
"$BIN" run --config "$WORK/config.toml" 2>"$WORK/daemon.log" &
daemon=$!
pids+=("$daemon")

runs() {
    curl -s "http://127.0.0.1:$LISTEN_PORT/metrics" |
        awk '/^scarecrow_check_runs_total/ { n += $2 } END { print n + 0 }'
}
failures() {
    curl -s "http://127.0.0.1:$LISTEN_PORT/metrics" |
        awk '/^scarecrow_check_runs_total.*result="failure"/ { n += $2 } END { print n + 0 }'
}
# CPU seconds the whole machine was busy (user, nice, system, irq,
# softirq): the daemon, every Chromium process and the demo site; nothing
# else runs here. Summing per process misses renderers that came and went.
cpu() {
    awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8) / hz }' /proc/stat
}
# Chromium's processes are the group of the one the daemon started.
tree() {
    local main
    main=$(pgrep -P "$daemon" | head -1 || true)
    echo "$daemon" ${main:+$(pgrep -g "$main" || true)}
}
cpu() {
    local hz total=0
    hz=$(getconf CLK_TCK)
    for p in $(tree); do
        [[ -r /proc/$p/stat ]] || continue
        local t
        t=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$p/stat" 2>/dev/null || true)
        total=$((total + ${t:-0}))
    done
    echo "scale=2; $total / $hz" | bc
}
# Their memory in MiB: PSS (shared pages divided among the processes that
# share them: what they cost together) and RSS summed (which counts each
# shared library once per process).
mem() {
    local pss=0 rss=0 v
    for p in $(tree); do
        v=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || true)
        pss=$((pss + ${v:-0}))
        v=$(awk '/^VmRSS/ { print $2 }' "/proc/$p/status" 2>/dev/null || true)
        rss=$((rss + ${v:-0}))
    done
    echo "$((pss / 1024)) $((rss / 1024))"
}

sleep 10 # the browser starts with the first run
r0=$(runs) f0=$(failures) c0=$(cpu) t0=$(date +%s.%N) peak=0 peak_rss=0
# Memory every 5 s: reading it costs CPU too.
for _ in $(seq 1 $((DURATION / 5))); do
    sleep 5
    read -r pss rss < <(mem)
    ((pss > peak)) && peak=$pss
    ((rss > peak_rss)) && peak_rss=$rss
done
r1=$(runs) f1=$(failures) c1=$(cpu) t1=$(date +%s.%N)
ran=$((r1 - r0))
took=$(echo "$t1 - $t0" | bc)
echo "browser runs: $ran in ${took%.*} s ($(echo "$ran * 60 / $took" | bc) per minute), $((f1 - f0)) failed; N=$N every $EVERY, [browser] concurrency $CONCURRENCY, $(nproc) cores"
echo "CPU: $(echo "$c1 - $c0" | bc) s busy in all ($(echo "scale=2; ($c1 - $c0) / $took" | bc) cores), $(echo "scale=3; ($c1 - $c0) / $ran" | bc) s per run (the machine: daemon, Chromium, demo site)"
echo "memory under load: peak PSS $peak MiB (RSS summed $peak_rss MiB), daemon + Chromium"
echo "profile in /tmp: $(du -sk /tmp/scarecrow-browser-"$daemon"-* 2>/dev/null | awk '{ n += $1 } END { print int(n / 1024) }') MiB"

# Idle: no check due for an hour, the browser still up.
for f in "$WORK"/checks/*.toml; do sed -i "s/^every = .*/every = \"1h\"/" "$f"; done
sleep 15
read -r pss rss < <(mem)
echo "idle, browser started: PSS $pss MiB (RSS summed $rss MiB); the daemon alone: RSS $(awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$daemon/status") MiB"

# A screenshot of the widget.
cat > "$WORK/checks/shot.toml" <<EOF
[[step]]
kind = "browser"
url = "http://127.0.0.1:$SITE_PORT/weather/widget"
actions = [ { wait_for = "#forecast tr.day" } ]
screenshot = "always"
EOF
(cd "$WORK" && SCARECROW_SITE= "$BIN" once --config config.toml --check shot >/dev/null 2>&1) || true
shot=$(ls "$WORK"/shots/*.png 2>/dev/null | head -1)
[[ -n $shot ]] && echo "screenshot: $(stat -c %s "$shot") bytes (1280x800 PNG of the widget)"
