#!/usr/bin/env bash
# What reading the check files costs the daemon: N checks loaded (default
# 2000), every file read ROUNDS times (default 100, like `cat checks/*`),
# and the daemon's CPU (utime + stime from /proc/PID/stat) over an idle
# window, over the reads, and over the same length after them (a watch that
# takes reads for changes keeps reloading after the reads end).
#
#   bench/watch_reads.sh [path/to/scarecrow]   (default: $CARGO_TARGET_DIR or target, debug build)
#
# The checks run hourly against a closed loopback port, so their own runs
# cost next to nothing. Stops the daemon on exit; traffic stays on 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/scarecrow}
N=${N:-2000}
ROUNDS=${ROUNDS:-100}
WINDOW=${WINDOW:-10}
PORT=${LISTEN_PORT:-19788}
CLK_TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d /tmp/scarecrow-watch-reads.XXXXXX)
PID=
cleanup() {
    if [[ -n $PID ]]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

mkdir "$TMP/checks"
printf 'listen = "127.0.0.1:%s"\n' "$PORT" >"$TMP/config.toml"
for i in $(seq "$N"); do
    printf 'every = "1h"\n[[step]]\nname = "open"\nurl = "http://127.0.0.1:9/c%s"\n' "$i" >"$TMP/checks/c$i.toml"
done

"$BIN" run --config "$TMP/config.toml" 2>"$TMP/daemon.log" >/dev/null &
PID=$!
for _ in $(seq 600); do
    curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null || { cat "$TMP/daemon.log"; exit 1; }
sleep 5 # the checks' first runs, spread over their interval, settle

ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
loaded_at() { curl -fs "http://127.0.0.1:$PORT/api/v1/config" | python3 -c 'import json,sys; print(json.load(sys.stdin)["loaded_at"])'; }
# CPU between two tick counts over SECONDS, in percent of one core.
pct() { awk -v t="$1" -v s="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", 100 * t / hz / s }'; }

t0=$(ticks); sleep "$WINDOW"; t1=$(ticks)
echo "idle:          $(pct $((t1 - t0)) "$WINDOW") % of a core over ${WINDOW}s"

before=$(loaded_at)
start=$(date +%s.%N); t0=$(ticks)
for _ in $(seq "$ROUNDS"); do cat "$TMP"/checks/*.toml >/dev/null; done
t1=$(ticks); end=$(date +%s.%N)
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')
echo "reading:       $(pct $((t1 - t0)) "$secs") % of a core over ${secs}s ($ROUNDS rounds of $N files)"

t0=$(ticks); sleep "$WINDOW"; t1=$(ticks)
echo "after reading: $(pct $((t1 - t0)) "$WINDOW") % of a core over ${WINDOW}s"
echo "load time before the reads $before, after $(loaded_at)"
echo "daemon CPU in total: $(awk -v t="$(ticks)" -v hz="$CLK_TCK" 'BEGIN { print t / hz }') s"
