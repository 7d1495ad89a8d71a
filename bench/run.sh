#!/usr/bin/env bash
# The performance harness: scarecrow's release build against nginx on
# loopback, compared in the same run with blackbox_exporter and a bare
# tokio + reqwest loop. See bench/README.md for what each mode reports.
#
#   bench/run.sh [throughput|css|idle|validate|fds|instructions|scale|writes|copy|failover|all]...   (default: all)
#
# Parameters (environment), each with a per-mode default:
#   N            checks           throughput 2000, css 100, idle 10000, validate 10000, fds 1000,
#                                 instructions 200, scale 10000
#   EVERY        their interval   throughput 200ms, css 1s, idle 60s, fds 5s, instructions 1s,
#                                 scale 5m
#   DURATION     measured seconds throughput 30, css 30, idle 70, fds 30, instructions 20, scale 60
#   CONCURRENCY  runs at once (daemon), wrk connections, bare-loop tasks: 32
#   WARMUP       seconds before measuring: 5
#   COMPARE=0    throughput without blackbox_exporter and the bare loop (a soak)
#   ROUNDS       throughput comparisons to repeat (medians printed): 1
#   NO_BUILD=1   use the existing release build;  KEEP=1 keep the work directory
#   STORE=postgres  the daemon stores to a PostgreSQL cluster the harness starts
#                (Debian's postgresql, default settings, on 127.0.0.1:PG_PORT), and
#                throughput reports the runs it stored per second and PostgreSQL's CPU;
#                the copy mode (N runs, default 1000000) times `store copy` into it; writes
#                adds two replicas writing at once; failover (N checks, default 30, ROUNDS
#                default 3) times three replicas through SIGKILLs of the leader
#   NGINX_PORT 18080, LISTEN_PORT 19787, BLACKBOX_PORT 19115, HANG_PORT 18090
#   FD_TARGETS   hanging ports in the fds mode: 4;  NGINX_WORKERS: 1
#
# Needs (Debian): nginx prometheus-blackbox-exporter wrk curl python3, and valgrind
# for the instructions mode.
# Every process it starts is stopped on exit; all traffic stays on 127.0.0.1.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
CONCURRENCY=${CONCURRENCY:-32}
WARMUP=${WARMUP:-5}
NGINX_PORT=${NGINX_PORT:-18080}
LISTEN_PORT=${LISTEN_PORT:-19787}
BLACKBOX_PORT=${BLACKBOX_PORT:-19115}
HANG_PORT=${HANG_PORT:-18090}
PG_PORT=${PG_PORT:-15432}
STORE=${STORE:-sqlite}
FD_TARGETS=${FD_TARGETS:-4}
NGINX_WORKERS=${NGINX_WORKERS:-1}
# The body assertion every contender makes: the same regex everywhere.
BODY_RE='Fresh eggs: [0-9]+ dozen'
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release/scarecrow
BARE=$TARGET_DIR/release/examples/bare_loop
CLK_TCK=$(getconf CLK_TCK)
HELPERS=(python3 "$BENCH/helpers.py")

TMP=$(mktemp -d /tmp/scarecrow-bench.XXXXXX)
chmod 755 "$TMP"
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*"; }
section() { say ""; say "== $* ($(uptime | sed 's/.*load average/load average/'))"; }
# The value of KEY in a line of key=value words.
get() { sed -n "s/.*\<$1=\([^ ]*\).*/\1/p" <<<"$2"; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
now() { date +%s.%N; }

# utime + stime of a process (clock ticks), as /proc/PID/stat has them.
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# The same for a process and its children (nginx's master and workers).
tree_ticks() {
    local sum=0 p
    for p in "$1" $(pgrep -P "$1" || true); do sum=$((sum + $(ticks "$p"))); done
    echo "$sum"
}
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

wait_http() {
    local url=$1 deadline=$(($(date +%s) + ${2:-30}))
    until curl -sf -o /dev/null "$url"; do
        (($(date +%s) < deadline)) || { say "error: $url did not answer"; exit 1; }
        sleep 0.05
    done
}

# Saves /metrics to $1; prints "seconds bytes" of the request.
scrape() {
    curl -sf -o "$1" -w '%{time_total} %{size_download}' "http://127.0.0.1:$LISTEN_PORT/metrics"
}

build() {
    if [[ ${NO_BUILD:-0} == 1 ]]; then return; fi
    say "building the release daemon and the bare loop…"
    (cd "$ROOT" && cargo build --release --locked --quiet --bin scarecrow --example bare_loop --example store_writes)
}

start_nginx() {
    mkdir -p "$TMP/www" "$TMP/nginx-tmp"
    "${HELPERS[@]}" pages "$TMP/www"
    chmod -R a+rX "$TMP/www"
    sed -e "s|@DIR@|$TMP|g" -e "s|@PORT@|$NGINX_PORT|g" -e "s|@WORKERS@|$NGINX_WORKERS|g" \
        "$BENCH/nginx.conf" >"$TMP/nginx.conf"
    nginx -c "$TMP/nginx.conf" -p "$TMP" -e "$TMP/nginx-error.log" &
    NGINX=$!
    PIDS+=("$NGINX")
    wait_http "http://127.0.0.1:$NGINX_PORT/small.html"
    say "nginx $(nginx -v 2>&1 | sed 's/.*\///') on 127.0.0.1:$NGINX_PORT, pages: small $(wc -c <"$TMP/www/small.html") B, big $(wc -c <"$TMP/www/big.html") B"
}

# gen_checks DIR COUNT EVERY KIND: check files for the simple (status + body
# regex) or css (status + 4 selectors) kind; the fds kind points at hanging ports.
gen_checks() {
    local dir=$1 n=$2 every=$3 kind=$4 i url
    rm -rf "$dir"
    mkdir -p "$dir/checks"
    printf 'checks_dir = "checks"\nconcurrency = %s\nlisten = "127.0.0.1:%s"\n' \
        "$CONCURRENCY" "$LISTEN_PORT" >"$dir/config.toml"
    if [[ $STORE == postgres ]]; then
        printf '\n[store]\nurl = "postgres://scarecrow@127.0.0.1:%s/bench"\nsslmode = "disable"\n' \
            "$PG_PORT" >>"$dir/config.toml"
    fi
    for ((i = 0; i < n; i++)); do
        case $kind in
            simple) url="http://127.0.0.1:$NGINX_PORT/small.html" ;;
            css) url="http://127.0.0.1:$NGINX_PORT/big.html" ;;
            fds) url="http://127.0.0.1:$((HANG_PORT + i % FD_TARGETS))/" ;;
        esac
        {
            printf 'every = "%s"\n\n[[step]]\nname = "market page"\nurl = "%s"\n\n[step.expect]\nstatus = 200\n' "$every" "$url"
            case $kind in
                simple | fds) printf "body_matches = '%s'\n" "$BODY_RE" ;;
                css) cat <<'EOF'

[[step.expect.css]]
selector = "nav#main a"
count = { min = 5 }

[[step.expect.css]]
selector = "table#prices tbody tr.item"
count = { min = 100 }

[[step.expect.css]]
selector = "table#prices td.price"
matches = '^\d+\.\d\d €$'

[[step.expect.css]]
selector = "form#order input[name=csrf]"
attr = "value"
matches = '^[0-9a-f]{32}$'
EOF
                    ;;
            esac
        } >"$dir/checks/c$(printf '%05d' "$i").toml"
    done
}

# A PostgreSQL cluster of its own in $TMP/pg, with the package's default
# settings (durable commits), trusting loopback; as root, run as nobody.
start_postgres() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    PG_BIN=$bin
    mkdir -p "$TMP/pg"
    local as=()
    if ((EUID == 0)); then chown nobody "$TMP/pg"; as=(runuser -u nobody --); fi
    PG_AS=("${as[@]}")
    "${as[@]}" "$bin/initdb" -D "$TMP/pg/data" -U scarecrow --auth=trust -E UTF8 >"$TMP/pg/initdb.log"
    "${as[@]}" "$bin/postgres" -D "$TMP/pg/data" -p "$PG_PORT" -k "$TMP/pg" -c listen_addresses=127.0.0.1 \
        >"$TMP/pg/server.log" 2>&1 &
    PG_PID=$!
    PIDS+=("$PG_PID")
    for _ in $(seq 100); do "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break; sleep 0.1; done
    say "PostgreSQL $("$bin/postgres" --version | awk '{ print $3 }') on 127.0.0.1:$PG_PORT (default settings)"
}

psql_bench() { "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U scarecrow -At -d "${2:-bench}" -c "$1"; }
# The postmaster and its backends, the ended ones too (their CPU is in the
# postmaster's cutime and cstime once it has reaped them).
pg_ticks() {
    local pm
    pm=$(head -1 "$TMP/pg/data/postmaster.pid")
    echo $(($(tree_ticks "$pm") + $(sed 's/.*) //' "/proc/$pm/stat" | awk '{ print $14 + $15 }')))
}

start_daemon() {
    rm -rf "$1/data" # a fresh store each run
    if [[ $STORE == postgres ]]; then
        psql_bench "DROP DATABASE IF EXISTS bench" postgres >/dev/null
        psql_bench "CREATE DATABASE bench" postgres >/dev/null
    fi
    DAEMON_STARTED=$(now)
    "$BIN" run --config "$1/config.toml" 2>"$1/daemon.log" &
    DAEMON=$!
    PIDS+=("$DAEMON")
    wait_http "http://127.0.0.1:$LISTEN_PORT/healthz" 60
    DAEMON_READY=$(now)
}

# SIGTERM, as a supervisor stops it; SIGKILL if it is not gone within 20 s.
stop_daemon() {
    kill -TERM "$DAEMON" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DAEMON" 2>/dev/null || true
    wait "$DAEMON" 2>/dev/null || true
}

# Samples the daemon's RSS and fds once a second for $1 seconds, keeping the
# extremes in RSS_FIRST / RSS_LAST / RSS_MAX (KiB) and FDS_MAX; runs the
# command "$2 SECOND" each second when given.
sample() {
    local s
    RSS_FIRST=$(status_kb "$DAEMON" VmRSS) RSS_MAX=0 FDS_MAX=0
    for ((s = 1; s <= $1; s++)); do
        sleep 1
        local rss f
        rss=$(status_kb "$DAEMON" VmRSS) f=$(fds "$DAEMON")
        ((rss > RSS_MAX)) && RSS_MAX=$rss
        ((f > FDS_MAX)) && FDS_MAX=$f
        if [[ -n ${2:-} ]]; then "$2" "$s"; fi
    done
    RSS_LAST=$(status_kb "$DAEMON" VmRSS)
}

# Runs the daemon on the checks in $1 for WARMUP + DURATION seconds and
# reports its rate and cost over the DURATION window. Sets OURS_US.
measure_daemon() {
    local dir=$1 bytes=${2:-0} c0 c1 n0 n1 t0 t1 d secs runs render hwm
    start_daemon "$dir"
    sleep "$WARMUP"
    scrape "$dir/before.prom" >/dev/null
    local p0=0 p1=0 r0=0 r1=0
    [[ $STORE == postgres ]] && p0=$(pg_ticks) r0=$(psql_bench "SELECT count(*) FROM runs")
    c0=$(ticks "$DAEMON") n0=$(tree_ticks "$NGINX") t0=$(now)
    sample "$DURATION"
    c1=$(ticks "$DAEMON") n1=$(tree_ticks "$NGINX") t1=$(now)
    [[ $STORE == postgres ]] && p1=$(pg_ticks) r1=$(psql_bench "SELECT count(*) FROM runs")
    render=$(scrape "$dir/after.prom")
    d=$("${HELPERS[@]}" delta "$dir/before.prom" "$dir/after.prom")
    secs=$(calc "$t1 - $t0" 3)
    runs=$(get runs "$d")
    hwm=$(status_kb "$DAEMON" VmHWM)
    stop_daemon
    if ((runs == 0)); then say "error: no runs completed; see $dir/daemon.log"; KEEP=1; exit 1; fi
    OURS_US=$(calc "($c1 - $c0) * 1e6 / $CLK_TCK / $runs")
    OURS_RATE=$(calc "$runs / $secs" 0)
    say "scarecrow: $OURS_RATE checks/s over ${secs}s ($runs runs, offered $(calc "$N / $(every_seconds "$EVERY")" 0)/s), $OURS_US µs CPU per check"
    say "  failures $(get failures "$d") ($(get reasons "$d")), skipped $(get skipped "$d"), lateness p50 $(get lateness_p50_ms "$d") ms p99 $(get lateness_p99_ms "$d") ms ($(get lateness_within_5ms_pct "$d") % within 5 ms)"
    say "  RSS $((RSS_FIRST / 1024)) -> $((RSS_LAST / 1024)) MiB (max $((RSS_MAX / 1024)), peak VmHWM $((hwm / 1024))), fds max $FDS_MAX"
    say "  /metrics: $(calc "$(cut -d' ' -f1 <<<"$render") * 1000") ms, $(cut -d' ' -f2 <<<"$render") bytes, $(get series "$d") series"
    say "  nginx: $(calc "($n1 - $n0) * 1e6 / $CLK_TCK / $runs") µs CPU per request"
    if [[ $STORE == postgres ]]; then
        say "  PostgreSQL: $(calc "($r1 - $r0) / $secs" 0) runs stored per second ($((r1 - r0)) in the window), $(calc "($p1 - $p0) * 1e6 / $CLK_TCK / ($r1 - $r0)") µs of its CPU per run stored"
    fi
    if ((bytes > 0)); then
        say "  HTML: $(calc "$runs * $bytes / (($c1 - $c0) / $CLK_TCK) / 1e6") MB per CPU-second ($bytes B per check)"
    fi
}

every_seconds() {
    case $1 in
        *ms) calc "${1%ms} / 1000" 3 ;;
        *s) echo "${1%s}" ;;
        *m) echo $((${1%m} * 60)) ;;
    esac
}

# blackbox_exporter probing $1, driven by wrk at the same concurrency. Sets BB_US.
measure_blackbox() {
    local url=$1 bb b0 b1 n0 n1 t0 t1 requests
    sed "s|@BODY_RE@|$BODY_RE|g" "$BENCH/blackbox.yml" >"$TMP/blackbox.yml"
    prometheus-blackbox-exporter --config.file="$TMP/blackbox.yml" \
        --web.listen-address="127.0.0.1:$BLACKBOX_PORT" 2>"$TMP/blackbox.log" &
    bb=$!
    PIDS+=("$bb")
    local probe="http://127.0.0.1:$BLACKBOX_PORT/probe?target=$url&module=http_body"
    wait_http "http://127.0.0.1:$BLACKBOX_PORT/metrics"
    curl -sf "$probe" | grep -q '^probe_success 1' || { say "error: blackbox probe fails"; exit 1; }
    wrk -t2 -c"$CONCURRENCY" -d"${WARMUP}s" "$probe" >/dev/null
    b0=$(ticks "$bb") n0=$(tree_ticks "$NGINX") t0=$(now)
    wrk -t2 -c"$CONCURRENCY" -d"${DURATION}s" --timeout 10s -s "$BENCH/probe_success.lua" "$probe" >"$TMP/wrk.txt"
    b1=$(ticks "$bb") n1=$(tree_ticks "$NGINX") t1=$(now)
    requests=$(awk '/requests in/ { print $1 }' "$TMP/wrk.txt")
    BB_US=$(calc "($b1 - $b0) * 1e6 / $CLK_TCK / $requests")
    say "blackbox_exporter $(prometheus-blackbox-exporter --version 2>&1 | awk 'NR == 1 { print $3 }'): $(calc "$requests / ($t1 - $t0)" 0) probes/s, $BB_US µs CPU per probe, $(sed -n 's/^probe_failures=//p' "$TMP/wrk.txt") failed probes, $(grep -c 'Non-2xx\|Socket errors' "$TMP/wrk.txt" || true) wrk error lines"
    say "  nginx: $(calc "($n1 - $n0) * 1e6 / $CLK_TCK / $requests") µs CPU per request"
    kill -TERM "$bb"
    wait "$bb" 2>/dev/null || true
}

# The bare loop against $1 at rate $2 (0: flat out). Sets BARE_US.
measure_bare() {
    local out how="flat out"
    ((${2:-0} > 0)) && how="paced at $2/s"
    out=$("$BARE" "$1" "$BODY_RE" "$CONCURRENCY" "$DURATION" "$WARMUP" "${2:-0}") || say "warning: the bare loop saw failures"
    BARE_US=$(calc "$(get cpu_ticks "$out") * 1e6 / $CLK_TCK / $(get checks "$out")")
    say "bare loop, $how: $(get checks_per_s "$out") checks/s, $BARE_US µs CPU per check, $(get failures "$out") failures"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

mode_throughput() {
    N=${N_OVERRIDE:-2000} EVERY=${EVERY_OVERRIDE:-200ms} DURATION=${DURATION_OVERRIDE:-30}
    local rounds=${ROUNDS:-1} r url="http://127.0.0.1:$NGINX_PORT/small.html" offered
    local -a bb_ratio paced_ratio flat_ratio
    offered=$(calc "$N / $(every_seconds "$EVERY")" 0)
    gen_checks "$TMP/tp" "$N" "$EVERY" simple
    for ((r = 1; r <= rounds; r++)); do
        section "throughput, round $r of $rounds: $N checks every $EVERY, status + body regex, concurrency $CONCURRENCY, ${DURATION}s"
        measure_daemon "$TMP/tp"
        [[ ${COMPARE:-1} == 1 ]] || continue
        local ours=$OURS_US paced
        measure_blackbox "$url"
        # The bare loop paced at the daemon's offered rate (the daemon's
        # regime: the ratio target), then flat out (the limit of the stack).
        measure_bare "$url" "$offered"
        paced=$BARE_US
        measure_bare "$url" 0
        bb_ratio+=("$(calc "$ours / $BB_US" 3)") paced_ratio+=("$(calc "$ours / $paced" 2)")
        flat_ratio+=("$(calc "$ours / $BARE_US" 2)")
        say "RATIOS  CPU per check: scarecrow/blackbox = ${bb_ratio[-1]} (target ≤ 0.25)," \
            "scarecrow/bare loop = ${paced_ratio[-1]} at the same rate (target ≤ 1.5), ${flat_ratio[-1]} vs. flat out"
    done
    if ((rounds > 1)) && ((${#bb_ratio[@]} > 0)); then
        say ""
        say "MEDIAN RATIOS over $rounds rounds: scarecrow/blackbox = $(median "${bb_ratio[@]}")," \
            "scarecrow/bare loop = $(median "${paced_ratio[@]}") at the same rate, $(median "${flat_ratio[@]}") vs. flat out"
    fi
}

mode_css() {
    N=${N_OVERRIDE:-100} EVERY=${EVERY_OVERRIDE:-1s} DURATION=${DURATION_OVERRIDE:-30}
    section "css: $N checks every $EVERY against the $(wc -c <"$TMP/www/big.html") B page, 4 selectors"
    gen_checks "$TMP/css" "$N" "$EVERY" css
    measure_daemon "$TMP/css" "$(wc -c <"$TMP/www/big.html")"
}

# Scrapes during the idle run: one at 5 s and 35 s, then every second to 65 s.
IDLE_RENDERS=()
idle_tick() {
    local s=$1 r
    case $s in
        5) scrape "$TMP/idle/a.prom" >/dev/null ;;
        35) scrape "$TMP/idle/b.prom" >/dev/null ;;
        65) scrape "$TMP/idle/c.prom" >/dev/null ;;
        *) if ((s > 35 && s < 65)); then
               r=$(scrape "$TMP/idle/scrape.prom")
               IDLE_RENDERS+=("$(cut -d' ' -f1 <<<"$r")")
               IDLE_SIZE=$(cut -d' ' -f2 <<<"$r")
           fi ;;
    esac
}

mode_idle() {
    N=${N_OVERRIDE:-10000} EVERY=${EVERY_OVERRIDE:-60s} DURATION=${DURATION_OVERRIDE:-70}
    section "idle: $N checks every $EVERY, ${DURATION}s"
    gen_checks "$TMP/idle" "$N" "$EVERY" simple
    # Starts per second are read from the log: passing runs log at debug.
    RUST_LOG=info,scarecrow::app::telemetry=debug start_daemon "$TMP/idle"
    say "healthz answered $(calc "$DAEMON_READY - $DAEMON_STARTED" 3) s after exec; RSS $(($(status_kb "$DAEMON" VmRSS) / 1024)) MiB"
    sample "$DURATION" idle_tick
    local hwm all
    hwm=$(status_kb "$DAEMON" VmHWM)
    scrape "$TMP/idle/end.prom" >/dev/null
    stop_daemon
    say "checks loaded and scheduled: $("${HELPERS[@]}" starts "$TMP/idle/daemon.log" "$DAEMON_STARTED" 60 "$N")"
    all=$("${HELPERS[@]}" summary "$TMP/idle/end.prom")
    say "whole run: $all"
    [[ -f $TMP/idle/b.prom ]] && say "lateness 5-35 s (one scrape): $("${HELPERS[@]}" delta "$TMP/idle/a.prom" "$TMP/idle/b.prom" | grep -o 'started.*within_5ms_pct=[^ ]*')"
    [[ -f $TMP/idle/c.prom ]] && say "lateness 35-65 s (a scrape every second): $("${HELPERS[@]}" delta "$TMP/idle/b.prom" "$TMP/idle/c.prom" | grep -o 'started.*within_5ms_pct=[^ ]*')"
    if ((${#IDLE_RENDERS[@]} > 0)); then
        say "/metrics with $N checks: $(printf '%s\n' "${IDLE_RENDERS[@]}" | sort -n | awk '{ t[NR] = $1 } END { printf "median %.1f ms, max %.1f ms over %d scrapes", t[int((NR + 1) / 2)] * 1000, t[NR] * 1000, NR }'), $IDLE_SIZE bytes, $(get series "$all") series"
    fi
    say "RSS: after load $((RSS_FIRST / 1024)) MiB, end $((RSS_LAST / 1024)) MiB, max $((RSS_MAX / 1024)) MiB, peak (VmHWM) $((hwm / 1024)) MiB; fds max $FDS_MAX"
}

# Instructions per check in user space, counted by callgrind: unlike CPU
# time, the same figure on a busy machine, so small changes show. The
# kernel's part (sockets, the same for both) is not counted, so this ratio
# is higher than the CPU-time one.
mode_instructions() {
    N=${N_OVERRIDE:-200} EVERY=${EVERY_OVERRIDE:-1s} DURATION=${DURATION_OVERRIDE:-20}
    section "instructions: $N checks every $EVERY under callgrind, ${DURATION}s"
    command -v callgrind_control >/dev/null || { say "skipped: needs valgrind"; return; }
    local dir=$TMP/instructions rate d runs ours w out
    gen_checks "$dir" "$N" "$EVERY" simple
    rm -rf "$dir/data"
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg.%p" \
        "$BIN" run --config "$dir/config.toml" 2>"$dir/daemon.log" &
    DAEMON=$!
    PIDS+=("$DAEMON")
    wait_http "http://127.0.0.1:$LISTEN_PORT/healthz" 180
    sleep "$WARMUP"
    scrape "$dir/before.prom" >/dev/null
    callgrind_control -z "$DAEMON" >/dev/null 2>&1
    sleep "$DURATION"
    callgrind_control -d "$DAEMON" >/dev/null 2>&1
    scrape "$dir/after.prom" >/dev/null
    stop_daemon
    d=$("${HELPERS[@]}" delta "$dir/before.prom" "$dir/after.prom")
    runs=$(get runs "$d")
    ours=$(calc "$(awk '/^(summary|totals):/ { print $2; exit }' "$dir/cg.$DAEMON.1") / $runs" 0)
    say "scarecrow: $ours instructions per check ($runs runs, failures $(get failures "$d"))"
    # The bare loop's start-up is the same in both runs; the difference is
    # $DURATION seconds of checks.
    rate=$(calc "$N / $(every_seconds "$EVERY")" 0)
    local -a irs=() checks=()
    for w in 5 $((5 + DURATION)); do
        out=$(valgrind --tool=callgrind --callgrind-out-file="$dir/bare.$w" \
            "$BARE" "http://127.0.0.1:$NGINX_PORT/small.html" "$BODY_RE" "$CONCURRENCY" "$w" 2 "$rate" 2>/dev/null)
        checks+=("$(get checks "$out")")
        irs+=("$(awk '/^(summary|totals):/ { print $2; exit }' "$dir/bare.$w")")
    done
    BARE_IR=$(calc "(${irs[1]} - ${irs[0]}) / (${checks[1]} - ${checks[0]})" 0)
    say "bare loop, paced at $rate/s: $BARE_IR instructions per check"
    say "RATIO  instructions per check: scarecrow/bare loop = $(calc "$ours / $BARE_IR" 2)"
}

mode_validate() {
    N=${N_OVERRIDE:-10000}
    section "validate: $N check files (status + 4 selectors each)"
    gen_checks "$TMP/validate" "$N" 1m css
    local run out
    for run in 1 2; do
        out=$( { /usr/bin/time -f 'time=%e rss_kb=%M' "$BIN" validate --config "$TMP/validate/config.toml" >"$TMP/validate/out.txt"; } 2>&1 | tail -1)
        say "run $run: $(get time "$out") s, max RSS $(($(get rss_kb "$out") / 1024)) MiB: $(tail -1 "$TMP/validate/out.txt")"
    done
}

# A fleet's worth of checks on one daemon: what `validate` and loading take,
# what the checks cost idle, what a scrape costs and how late runs start.
mode_scale() {
    N=${N_OVERRIDE:-10000} EVERY=${EVERY_OVERRIDE:-5m} DURATION=${DURATION_OVERRIDE:-60}
    local dir=$TMP/scale out d hwm r
    local -a times=()
    section "scale: $N checks every $EVERY, ${DURATION}s"
    gen_checks "$dir" "$N" "$EVERY" simple
    out=$( { /usr/bin/time -f 'time=%e rss_kb=%M' "$BIN" validate --config "$dir/config.toml" >"$dir/validate.txt"; } 2>&1 | tail -1)
    say "validate: $(get time "$out") s, max RSS $(($(get rss_kb "$out") / 1024)) MiB: $(tail -1 "$dir/validate.txt")"
    start_daemon "$dir"
    say "load: /healthz answered $(calc "$DAEMON_READY - $DAEMON_STARTED" 3) s after exec; RSS $(($(status_kb "$DAEMON" VmRSS) / 1024)) MiB"
    scrape "$dir/a.prom" >/dev/null
    sample "$DURATION"
    scrape "$dir/b.prom" >/dev/null
    for r in 1 2 3 4 5; do
        out=$(scrape "$dir/c.prom")
        times+=("$(cut -d' ' -f1 <<<"$out")")
    done
    hwm=$(status_kb "$DAEMON" VmHWM)
    stop_daemon
    d=$("${HELPERS[@]}" delta "$dir/a.prom" "$dir/b.prom")
    say "runs over ${DURATION}s: $(get runs "$d") (failures $(get failures "$d"), skipped $(get skipped "$d")); lateness p50 $(get lateness_p50_ms "$d") ms, p99 $(get lateness_p99_ms "$d") ms ($(get lateness_within_5ms_pct "$d") % within 5 ms)"
    say "/metrics: $(printf '%s\n' "${times[@]}" | sort -g | awk '{ t[NR] = $1 } END { printf "median %.1f ms, max %.1f ms over %d scrapes", t[int((NR + 1) / 2)] * 1000, t[NR] * 1000, NR }'), $(cut -d' ' -f2 <<<"$out") bytes, $(get series "$d") series ($(calc "($(get series "$d") - $(grep -v '^#' "$dir/b.prom" | grep -vc 'check="')) / $N" 1) per check, process-wide ones excluded)"
    say "RSS idle: after load $((RSS_FIRST / 1024)) MiB, end $((RSS_LAST / 1024)) MiB, max $((RSS_MAX / 1024)) MiB, peak (VmHWM) $((hwm / 1024)) MiB"
}

mode_fds() {
    N=${N_OVERRIDE:-1000} EVERY=${EVERY_OVERRIDE:-5s} DURATION=${DURATION_OVERRIDE:-30}
    section "fds: $N checks every $EVERY against $FD_TARGETS ports that accept and never answer, concurrency $CONCURRENCY"
    "${HELPERS[@]}" hang "$HANG_PORT" "$FD_TARGETS" $((DURATION + WARMUP + 30)) >"$TMP/hang.log" &
    local hang=$!
    PIDS+=("$hang")
    sleep 1
    gen_checks "$TMP/fds" "$N" "$EVERY" fds
    start_daemon "$TMP/fds"
    local base
    base=$(fds "$DAEMON")
    sample $((DURATION + WARMUP))
    scrape "$TMP/fds/end.prom" >/dev/null
    stop_daemon
    say "fds: $base at start, max $FDS_MAX (concurrency $CONCURRENCY); RSS max $((RSS_MAX / 1024)) MiB"
    say "runs: $("${HELPERS[@]}" summary "$TMP/fds/end.prom" | grep -o 'runs=.*skipped=[^ ]*\|reasons=.*' | tr '\n' ' ')"
    kill -TERM "$hang" 2>/dev/null || true
}

# The store's writer alone, probing left out: N runs (1,000,000) of 100
# checks queued as the daemon queues them, into SQLite, and into PostgreSQL
# with STORE=postgres.
mode_writes() {
    N=${N_OVERRIDE:-1000000}
    section "store writes: $N runs of 100 checks queued, then the store closed"
    local ex=$TARGET_DIR/release/examples/store_writes
    rm -f "$TMP/writes.db"*
    "$ex" "$N" "sqlite:$TMP/writes.db" | sed 's/^/  /'
    if [[ $STORE == postgres ]]; then
        psql_bench "DROP DATABASE IF EXISTS bench" postgres >/dev/null
        psql_bench "CREATE DATABASE bench" postgres >/dev/null
        local p0 p1
        p0=$(pg_ticks)
        "$ex" "$N" "postgres://scarecrow@127.0.0.1:$PG_PORT/bench" | sed 's/^/  /'
        p1=$(pg_ticks)
        say "  PostgreSQL's own CPU: $(calc "($p1 - $p0) * 1e6 / $CLK_TCK / $N") µs per run"
        say "  two replicas, $N runs each, at once:"
        local t0 t1 a b
        t0=$(now)
        "$ex" "$N" "postgres://scarecrow@127.0.0.1:$PG_PORT/bench" a | sed 's/^/    /' &
        a=$!
        "$ex" "$N" "postgres://scarecrow@127.0.0.1:$PG_PORT/bench" b | sed 's/^/    /' &
        b=$!
        wait "$a" "$b"
        t1=$(now)
        say "  together: $(calc "2 * $N / ($t1 - $t0)" 0) runs/s ($(calc "$t1 - $t0") s)"
    fi
}

# Three replicas on the PostgreSQL cluster, N checks every second of which
# one fails (declared to a receiver answering 503, no Retry-After); per
# round the leader is SIGKILLed and the receiver starts taking: prints the
# time from the kill to the first delivery by the next leader, and to every
# check having run again (the dead replica's moved). Then it is restarted.
mode_failover() {
    N=${N_OVERRIDE:-30}
    local rounds=${ROUNDS:-3} r i
    section "failover: 3 replicas, $N checks every 1s, $rounds SIGKILLs of the leader"
    [[ $STORE == postgres ]] || { say "skipped: needs STORE=postgres"; return; }
    psql_bench "DROP DATABASE IF EXISTS bench" postgres >/dev/null
    psql_bench "CREATE DATABASE bench" postgres >/dev/null
    local hook=$((LISTEN_PORT + 10)) status=$TMP/hook.status log=$TMP/hook.log
    echo 503 >"$status"
    : >"$log"
    "${HELPERS[@]}" receiver "$hook" "$status" "$log" &
    PIDS+=("$!")
    local reps=() ports=()
    for i in 0 1 2; do
        local dir=$TMP/replica$i port=$((LISTEN_PORT + 1 + i))
        mkdir -p "$dir/checks"
        printf 'checks_dir = "checks"
listen = "127.0.0.1:%s"

[store]
url = "postgres://scarecrow@127.0.0.1:%s/bench"
sslmode = "disable"

[[sinks]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:%s/hook"
' \
            "$port" "$PG_PORT" "$hook" >"$dir/config.toml"
        local c
        for ((c = 0; c < N; c++)); do
            printf 'critical = true\nevery = "1s"\ntimeout = "1s"\n\n[[step]]\nurl = "http://127.0.0.1:%s/small.html"\n' \
                "$NGINX_PORT" >"$dir/checks/c$(printf '%03d' "$c").toml"
        done
        ports+=("$port")
    done
    start_replica() {
        "$BIN" run --config "$TMP/replica$1/config.toml" 2>>"$TMP/replica$1/daemon.log" &
        reps[$1]=$!
        PIDS+=("${reps[$1]}")
        wait_http "http://127.0.0.1:${ports[$1]}/healthz" 60
    }
    for i in 0 1 2; do start_replica "$i"; done
    for ((r = 1; r <= rounds; r++)); do
        echo 503 >"$status"
        : >"$log"
        # A check of its own per round, failing (nothing listens there): a
        # new incident, and the last round's resolved as its check goes.
        for i in 0 1 2; do
            rm -f "$TMP/replica$i/checks/broken-"*.toml
            printf 'critical = true\nevery = "1s"\ntimeout = "1s"\n\n[[step]]\nurl = "http://127.0.0.1:%s/"\n' \
                "$((HANG_PORT + 50))" >"$TMP/replica$i/checks/broken-$r.toml"
        done
        local deadline=$(($(date +%s) + 120))
        until [[ -s $log ]]; do
            (($(date +%s) < deadline)) || { say "error: nothing reached the receiver"; return 1; }
            sleep 0.1
        done
        local lead=""
        for i in 0 1 2; do
            curl -sf "http://127.0.0.1:${ports[$i]}/metrics" | grep -qx 'scarecrow_leader 1' && lead=$i
        done
        [[ -n $lead ]] || { say "error: no leader"; return 1; }
        local t0 killed_at
        t0=$(now)
        killed_at=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
        kill -KILL "${reps[$lead]}"
        wait "${reps[$lead]}" 2>/dev/null || true
        echo 200 >"$status"
        local delivered="" moved=""
        deadline=$(($(date +%s) + 120))
        while [[ -z $delivered || -z $moved ]] && (($(date +%s) < deadline)); do
            if [[ -z $delivered ]] && awk '$2 == 200' "$log" | grep -q .; then delivered=$(now); fi
            if [[ -z $moved ]] && (($(psql_bench "SELECT count(*) FROM (SELECT check_name FROM runs WHERE check_name LIKE 'c%' GROUP BY 1 HAVING max(started_at) > '$killed_at') x") >= N)); then
                moved=$(now)
            fi
            sleep 0.1
        done
        say "round $r: leader replica$lead SIGKILLed; first delivery by the next leader after $(calc "${delivered:-nan} - $t0") s; every check ran again after $(calc "${moved:-nan} - $t0") s"
        start_replica "$lead"
    done
}

# `store copy` of N runs of 100 checks from a SQLite store into PostgreSQL,
# then again (every row already there).
mode_copy() {
    N=${N_OVERRIDE:-1000000}
    section "store copy: $N runs of 100 checks from SQLite into PostgreSQL"
    [[ $STORE == postgres ]] || { say "skipped: needs STORE=postgres"; return; }
    local dir=$TMP/copy t0 t1 t2 db
    mkdir -p "$dir/checks"
    printf 'checks_dir = "checks"\nlisten = "127.0.0.1:%s"\n\n[store]\npath = "data/scarecrow.db"\n' \
        "$LISTEN_PORT" >"$dir/config.toml"
    start_daemon "$dir" # makes the SQLite store with this build's schema
    stop_daemon
    db=$dir/data/scarecrow.db
    "${HELPERS[@]}" fill-runs "$db" "$N" 100
    say "SQLite store: $(du -m "$db" | cut -f1) MB"
    psql_bench "DROP DATABASE IF EXISTS bench" postgres >/dev/null
    psql_bench "CREATE DATABASE bench" postgres >/dev/null
    local to="postgres://scarecrow@127.0.0.1:$PG_PORT/bench"
    t0=$(now)
    "$BIN" store copy --from "$db" --to "$to" --sslmode disable >"$dir/first.txt"
    t1=$(now)
    "$BIN" store copy --from "$db" --to "$to" --sslmode disable >"$dir/again.txt"
    t2=$(now)
    say "first copy: $(calc "$t1 - $t0") s, $(calc "$N / ($t1 - $t0)" 0) runs/s; $(grep '^runs:' "$dir/first.txt")"
    say "again: $(calc "$t2 - $t1") s; $(grep '^runs:' "$dir/again.txt")"
    say "PostgreSQL: $(psql_bench "SELECT count(*) FROM runs") runs in $(psql_bench "SELECT count(*) FROM pg_inherits WHERE inhparent = 'runs'::regclass") partitions, $(psql_bench "SELECT pg_size_pretty(pg_database_size('bench'))")"
}

main() {
    local modes=("$@")
    ((${#modes[@]} > 0)) || modes=(all)
    [[ ${modes[0]} == all ]] && modes=(throughput css idle validate fds instructions)
    N_OVERRIDE=${N:-} EVERY_OVERRIDE=${EVERY:-} DURATION_OVERRIDE=${DURATION:-}
    for m in "${modes[@]}"; do
        declare -F "mode_$m" >/dev/null || { say "unknown mode $m"; exit 2; }
    done
    ulimit -n 65536 2>/dev/null || true
    build
    say "scarecrow $("$BIN" --version 2>/dev/null || echo '(release build)'), $(nproc) cores, work dir $TMP"
    start_nginx
    [[ $STORE == postgres ]] && start_postgres
    for m in "${modes[@]}"; do "mode_$m"; done
}

main "$@"
