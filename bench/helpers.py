#!/usr/bin/env python3
"""Number crunching and small servers for bench/run.sh (standard library only).

  helpers.py pages DIR                  writes small.html (~1.5 KB) and big.html (~200 KB)
  helpers.py summary METRICS            runs, failures, skips and lateness buckets of a /metrics text
  helpers.py delta BEFORE AFTER         the same, AFTER minus BEFORE, with lateness p50/p99
  helpers.py starts LOG T0 SECONDS N    per-second run rate and load/first-run times from the log
  helpers.py hang PORT COUNT SECONDS    accepts on COUNT ports, never answers, exits after SECONDS
  helpers.py fill-runs DB COUNT CHECKS  adds COUNT runs of CHECKS checks to the SQLite store DB
"""

import asyncio
import re
import sys
from datetime import datetime, timezone

PRODUCE = ["Potatoes", "Carrots", "Free-range eggs", "Raw milk", "Apples", "Honey", "Kale", "Rye bread"]


def page(size):
    """A farm shop's page: navigation, price table, order form, news."""
    out = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
           '<title>Hollow Creek Farm — market</title></head><body>'
           '<header><nav id="main"><ul>']
    for item in ["Home", "Market", "Weather", "Diesel", "Members", "Contact"]:
        out.append(f'<li><a href="/{item.lower()}">{item}</a></li>')
    out.append('</ul></nav></header><main><h1>Market prices</h1>'
               '<p class="stock">Fresh eggs: 42 dozen today</p>'
               '<table id="prices"><thead><tr><th>Produce</th><th>Unit</th><th>Price</th></tr></thead><tbody>')
    length, i = sum(map(len, out)), 0
    while length < max(size * 2 // 5, 600) and (i < 3 or size > 5000):
        row = (f'<tr class="item" data-sku="HC-{i:05}"><td class="name">{PRODUCE[i % 8]} <small>lot {i}</small></td>'
               f'<td class="unit">kg</td><td class="price">{1 + i % 17}.{i * 37 % 100:02} €</td></tr>')
        out.append(row)
        length += len(row)
        i += 1
    out.append('</tbody></table><form id="order" method="post" action="/order">'
               '<input type="hidden" name="csrf" value="8f14e45fceea167a5a36dedd4bea2543">'
               '<input name="liters" type="number"><button type="submit">Order diesel</button></form>')
    n = 0
    while length < size:
        art = (f'<article class="news"><h2>Week {n}: harvest notes</h2><p>The early potatoes are in, the carrots '
               f'need rain, and the hens laid {400 + n % 90} eggs. Boxes on <strong>Saturday</strong> from 9 to 12 '
               f'at the <a href="/barn">north barn</a>.</p><p class="meta">Posted <time>June {1 + n % 28}</time></p></article>')
        out.append(art)
        length += len(art)
        n += 1
    out.append('</main><footer><p class="updated">Updated <time>09:00</time></p></footer></body></html>\n')
    return "".join(out)


def pages(directory):
    for name, size in [("small.html", 1500), ("big.html", 200_000)]:
        with open(f"{directory}/{name}", "w", encoding="utf-8") as f:
            f.write(page(size))


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')


def parse(path):
    """Totals of the series the harness reads, from one /metrics text."""
    s = {"success": 0.0, "failure": 0.0, "skipped": 0.0, "series": 0, "buckets": {}, "reasons": {}}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = SAMPLE.match(line.strip())
            if not m:
                continue
            s["series"] += 1
            name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
            if name == "scarecrow_check_runs_total":
                s["success" if 'result="success"' in labels else "failure"] += value
            elif name == "scarecrow_check_skipped_runs_total":
                s["skipped"] += value
            elif name == "scarecrow_check_failures_total" and value:
                reason = re.search(r'reason="([^"]*)"', labels).group(1)
                s["reasons"][reason] = s["reasons"].get(reason, 0) + value
            elif name == "scarecrow_scheduler_lateness_seconds_bucket":
                le = re.search(r'le="([^"]*)"', labels).group(1)
                s["buckets"][float("inf") if le == "+Inf" else float(le)] = value
    return s


def quantile(q, buckets):
    """histogram_quantile: linear interpolation inside the bucket."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0
    if total <= 0:
        return float("nan")
    rank, prev_bound, prev_count = q * total, 0.0, 0.0
    for b in bounds:
        c = buckets[b]
        if c >= rank:
            if b == float("inf"):
                return prev_bound
            return prev_bound + (b - prev_bound) * (rank - prev_count) / max(c - prev_count, 1e-9)
        prev_bound, prev_count = b, c
    return prev_bound


def show(s):
    runs = s["success"] + s["failure"]
    p50, p99 = quantile(0.5, s["buckets"]), quantile(0.99, s["buckets"])
    reasons = ",".join(f"{k}:{int(v)}" for k, v in sorted(s["reasons"].items())) or "-"
    started = s["buckets"].get(float("inf"), 0)
    # The buckets are coarse (1 ms, 5 ms, 10 ms): the share within 5 ms is exact.
    within = s["buckets"].get(0.005, 0) / started * 100 if started else float("nan")
    print(f"runs={int(runs)} failures={int(s['failure'])} skipped={int(s['skipped'])} started={int(started)} "
          f"lateness_p50_ms={p50 * 1e3:.3f} lateness_p99_ms={p99 * 1e3:.3f} lateness_within_5ms_pct={within:.2f} "
          f"series={s['series']} reasons={reasons}")


def delta(before, after):
    a, b = parse(before), parse(after)
    d = {k: b[k] - a[k] for k in ("success", "failure", "skipped")}
    d["series"] = b["series"]
    d["buckets"] = {k: v - a["buckets"].get(k, 0) for k, v in b["buckets"].items()}
    d["reasons"] = {k: v - a["reasons"].get(k, 0) for k, v in b["reasons"].items() if v - a["reasons"].get(k, 0)}
    show(d)


ANSI = re.compile(r"\x1b\[[0-9;]*m")
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z")


def starts(log, t0, seconds, checks):
    """Runs per second (by when they ended) in the first SECONDS after the
    scheduler started, and when each of CHECKS had run once (from the log;
    times relative to T0, the exec)."""
    t0, seconds, checks = float(t0), int(seconds), int(checks)
    per, first, loaded, origin, seen, all_ran = [0] * seconds, None, None, None, set(), None
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = ANSI.sub("", line)
            m = STAMP.match(line)
            if not m:
                continue
            stamp = m.group(1)
            if "." in stamp:
                whole, frac = stamp.split(".")
                stamp = f"{whole}.{frac[:6]}"
                fmt = "%Y-%m-%dT%H:%M:%S.%f"
            else:
                fmt = "%Y-%m-%dT%H:%M:%S"
            t = datetime.strptime(stamp, fmt).replace(tzinfo=timezone.utc).timestamp()
            if "scarecrow running" in line and loaded is None:
                loaded, origin = t - t0, t
            if origin is not None and ("check passed" in line or "check failed" in line):
                first = t - t0 if first is None else first
                k = int(t - origin)
                if 0 <= k < seconds:
                    per[k] += 1
                name = re.search(r"check=(\S+)", line)
                if name and all_ran is None:
                    seen.add(name.group(1))
                    if len(seen) >= checks:
                        all_ran = t - t0
    nan = float("nan")
    total = sum(per)
    avg = total / seconds if seconds else 0
    peak = max(per) if per else 0
    print(f"loaded_after_s={nan if loaded is None else loaded:.3f} "
          f"first_run_after_s={nan if first is None else first:.3f} "
          f"all_{checks}_ran_once_after_s={nan if all_ran is None else all_ran:.3f} "
          f"runs_first_{seconds}s={total} avg_per_s={avg:.1f} max_per_s={peak} min_per_s={min(per) if per else 0} "
          f"max_over_avg={peak / avg if avg else nan:.2f}")


async def hang(port, count, seconds):
    async def handle(reader, writer):
        try:
            while await reader.read(65536):
                pass
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    servers = [await asyncio.start_server(handle, "127.0.0.1", port + i, backlog=4096) for i in range(count)]
    print(f"hanging on 127.0.0.1:{port}..{port + count - 1}", flush=True)
    await asyncio.sleep(seconds)
    for s in servers:
        s.close()


def fill_runs(db, count, checks):
    """COUNT runs of CHECKS checks, one a minute each, added to the SQLite
    store DB (made by the daemon, so its schema is this build's): rows as
    the daemon writes them, a one-step run's steps in JSON, a third failed."""
    import sqlite3
    import uuid

    count, checks = int(count), int(checks)
    steps = (
        '[{"name":"market page","url":"http://127.0.0.1:18080/small.html",'
        '"duration_ms":1.042,"attempts":1,"kind":"http","method":"GET","status":200,'
        '"phases":{"dns_ms":0.0,"connect_ms":0.1,"ttfb_ms":0.8,"transfer_ms":0.1},'
        '"failures":[],"captures":{}}]'
    )
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    rows = (
        (
            str(uuid.UUID(int=n)),
            f"c{n % checks:05d}",
            f"2026-11-{1 + n // checks // 1440 % 28:02d}T{n // checks // 60 % 24:02d}:{n // checks % 60:02d}:00.{n % checks:09d}Z",
            1.042,
            "failure" if n % 3 == 0 else "success",
            "assertion" if n % 3 == 0 else None,
            "market page" if n % 3 == 0 else None,
            "status: expected 200, got 502" if n % 3 == 0 else None,
            steps,
        )
        for n in range(count)
    )
    conn.executemany(
        "INSERT INTO runs (run_id, check_name, started_at, duration_ms, result, reason, step,"
        " message, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.commit()
    conn.close()


def receiver(port, status_file, log):
    """A webhook receiver on 127.0.0.1:PORT answering with the status in
    STATUS_FILE (re-read per request, no Retry-After), logging
    "unix-time status webhook-id event-type" per request to LOG."""
    import http.server
    import json
    import time

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with open(status_file) as f:
                status = int(f.read().strip() or 200)
            try:
                kind = json.loads(body).get("type", "")
            except ValueError:
                kind = ""
            with open(log, "a") as f:
                f.write(f"{time.time():.3f} {status} {self.headers.get('webhook-id', '')} {kind}\n")
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Hook).serve_forever()


def main(argv):
    cmd, args = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    if cmd == "pages":
        pages(*args)
    elif cmd == "summary":
        show(parse(args[0]))
    elif cmd == "delta":
        delta(*args)
    elif cmd == "starts":
        starts(*args)
    elif cmd == "fill-runs":
        fill_runs(*args)
    elif cmd == "receiver":
        receiver(*args)
    elif cmd == "hang":
        asyncio.run(hang(int(args[0]), int(args[1]), min(float(args[2]), 3600)))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
