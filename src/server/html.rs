//! Small pieces of HTML for the status page: escaping, times, sparklines
//! and the style sheet. Everything that comes from a check file or a
//! response goes through [`Esc`] (`text::EscapeHtml`).

use std::collections::VecDeque;
use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Utc};

use crate::live::RunPoint;

// The status page's names for the shared escaping and excerpts.
pub use crate::text::{EscapeHtml as Esc, excerpt as clip};

/// "3 min", "2 h 5 min", "4 days 3 h": a span as people say it.
pub fn span(d: TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    let (days, h, m) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    match (days, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (1, 0, _) => "1 day".to_owned(),
        (1, h, _) => format!("1 day {h} h"),
        (d, 0, _) => format!("{d} days"),
        (d, h, _) => format!("{d} days {h} h"),
    }
}

/// "just now", "5 min ago", "in 20 s".
pub fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let d = now - t;
    if d.num_seconds() <= -5 {
        format!("in {}", span(-d))
    } else if d < TimeDelta::zero() {
        "in a moment".to_owned()
    } else if d.num_seconds() < 5 {
        "just now".to_owned()
    } else {
        format!("{} ago", span(d))
    }
}

/// A `<time>` element: relative text, the exact UTC time on hover.
pub fn time(out: &mut String, now: DateTime<Utc>, t: DateTime<Utc>) {
    let _ = write!(
        out,
        r#"<time datetime="{}" title="{}">{}</time>"#,
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        t.format("%Y-%m-%d %H:%M:%S UTC"),
        ago(now, t)
    );
}

/// The clock time in UTC, with the date when it is not today.
pub fn clock(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M UTC").to_string()
    } else {
        t.format("%e %b %H:%M UTC")
            .to_string()
            .trim_start()
            .to_owned()
    }
}

/// Milliseconds as people read them.
pub fn ms(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.0} s", ms / 1e3)
    } else if ms >= 1000.0 {
        format!("{:.1} s", ms / 1e3)
    } else {
        format!("{ms:.0} ms")
    }
}

const SPARK_W: f64 = 140.0;
const SPARK_H: f64 = 32.0;
const PAD: f64 = 3.0;

/// Response times of the recent runs as an inline SVG line, failed runs as
/// red dots. Scaled to the slowest run, so the shape shows change, and the
/// label says the range.
pub fn sparkline(out: &mut String, points: &VecDeque<RunPoint>) {
    if points.is_empty() {
        return;
    }
    let duration = |p: &RunPoint| p.duration_ms();
    let max = points.iter().map(duration).fold(1.0, f64::max);
    let min = points.iter().map(duration).fold(f64::MAX, f64::min);
    let step = match points.len() {
        1 => 0.0,
        n => (SPARK_W - 2.0 * PAD) / (n - 1) as f64,
    };
    let xy = |i: usize, p: &RunPoint| {
        let x = PAD + step * i as f64;
        let y = SPARK_H - PAD - (duration(p) / max).clamp(0.0, 1.0) * (SPARK_H - 2.0 * PAD);
        (x, y)
    };
    let _ = write!(
        out,
        r#"<svg class="spark" viewBox="0 0 {SPARK_W} {SPARK_H}" width="{SPARK_W}" height="{SPARK_H}" role="img" aria-label="Response times of the last {} runs: {} to {}"><title>Last {} runs: {} to {}</title>"#,
        points.len(),
        ms(min),
        ms(max),
        points.len(),
        ms(min),
        ms(max),
    );
    out.push_str(r#"<polyline fill="none" stroke="currentColor" stroke-width="1.5" stroke-linejoin="round" stroke-linecap="round" points=""#);
    for (i, p) in points.iter().enumerate() {
        let (x, y) = xy(i, p);
        let _ = write!(out, "{x:.1},{y:.1} ");
    }
    out.push_str(r#""/>"#);
    for (i, p) in points.iter().enumerate() {
        let last = i + 1 == points.len();
        if !p.ok() || last {
            let (x, y) = xy(i, p);
            let class = if p.ok() { "ok" } else { "bad" };
            let _ = write!(
                out,
                r#"<circle class="{class}" cx="{x:.1}" cy="{y:.1}" r="2.5"/>"#
            );
        }
    }
    out.push_str("</svg>");
}

/// The page's style: system fonts, calm colours, one column that fits a
/// phone, dark when the device is.
pub const CSS: &str = r#"
:root{--bg:#f5f4ee;--card:#fff;--ink:#1f2a1f;--muted:#5f6b5f;--line:#e2e0d6;--up:#2e7d32;--up-bg:#e8f3e8;--down:#b3261e;--down-bg:#fbeae8;--wait:#8a8f85;--accent:#3d6b35}
@media (prefers-color-scheme:dark){:root{--bg:#171a16;--card:#20251f;--ink:#e6e9e2;--muted:#a3ab9f;--line:#33392f;--up:#7cc47f;--up-bg:#1f3320;--down:#f08a80;--down-bg:#3a1f1c;--accent:#9ccc8f}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
.wrap{max-width:46rem;margin:0 auto;padding:1rem}
header.top{display:flex;justify-content:space-between;align-items:baseline;gap:.5rem;color:var(--muted);font-size:.85rem;margin-bottom:.75rem}
header.top strong{color:var(--accent);font-size:1rem;letter-spacing:.02em}
.summary{border-radius:12px;padding:1rem 1.1rem;margin-bottom:1.25rem;border:1px solid var(--line)}
.summary.up{background:var(--up-bg)}.summary.down{background:var(--down-bg)}.summary.wait{background:var(--card)}
.summary h1{margin:0;font-size:1.3rem;line-height:1.3}
.summary.up h1{color:var(--up)}.summary.down h1{color:var(--down)}
.summary p{margin:.25rem 0 0;color:var(--muted);font-size:.9rem}
h2{font-size:.8rem;text-transform:uppercase;letter-spacing:.08em;color:var(--muted);margin:1.5rem 0 .5rem}
ul.list{list-style:none;margin:0;padding:0}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:.85rem 1rem;margin-bottom:.6rem}
.card.down{border-left:4px solid var(--down)}.card.up{border-left:4px solid var(--up)}.card.wait{border-left:4px solid var(--wait)}
.incident{background:var(--down-bg);border-color:var(--down)}
.incident .why{padding:0;background:none}
.head{display:flex;align-items:center;gap:.5rem;justify-content:space-between}
.head h3{margin:0;font-size:1.02rem;line-height:1.3}
.badge{flex:none;font-size:.75rem;font-weight:600;border-radius:999px;padding:.1rem .6rem;color:#fff}
.up .badge{background:var(--up)}.down .badge{background:var(--down)}.wait .badge{background:var(--wait)}
.name{font:.78rem ui-monospace,"DejaVu Sans Mono",monospace;color:var(--muted)}
.since{margin:.3rem 0 0;font-size:.9rem}
.down .since{color:var(--down);font-weight:600}
.why{margin:.4rem 0 0;padding:.5rem .65rem;border-radius:8px;background:var(--down-bg);font-size:.88rem;overflow-wrap:anywhere}
.why b{font-weight:600}
.roles,.runbook{margin:.35rem 0 0;font-size:.85rem;overflow-wrap:anywhere}
.runbook a{color:var(--accent);font-weight:600}
.tag{display:inline-block;font:600 .75rem ui-monospace,"DejaVu Sans Mono",monospace;padding:0 .4rem;border-radius:4px;background:var(--card);color:var(--down);border:1px solid var(--down)}
.message{display:block;margin-top:.2rem}
.locations{list-style:none;margin:.4rem 0 0;padding:0;font-size:.85rem}
.locations li{margin:.1rem 0;overflow-wrap:anywhere}
.locations b{font:600 .8rem ui-monospace,"DejaVu Sans Mono",monospace}
.locations [data-state=failing] .state{color:var(--down);font-weight:600}
.locations [data-state=passing] .state{color:var(--up)}
.locations [data-state=stale] .state{color:var(--wait)}
.foot{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:.25rem .75rem;margin-top:.45rem;color:var(--muted);font-size:.82rem}
.spark{color:var(--accent);flex:none}.down .spark{color:var(--down)}
.spark .bad{fill:var(--down)}.spark .ok{fill:var(--accent)}
table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid var(--line);border-radius:12px;overflow:hidden;font-size:.88rem}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600;font-size:.78rem}
td.t{white-space:nowrap}
tr:last-child td{border-bottom:0}
.muted{color:var(--muted)}
footer{margin:1.5rem 0 1rem;color:var(--muted);font-size:.8rem}
footer p{margin:.2rem 0}
.warn{color:var(--down)}
a{color:var(--accent)}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_like_speech() {
        assert_eq!(span(TimeDelta::seconds(42)), "42 s");
        assert_eq!(span(TimeDelta::seconds(300)), "5 min");
        assert_eq!(span(TimeDelta::seconds(3900)), "1 h 5 min");
        assert_eq!(span(TimeDelta::seconds(90_000)), "1 day 1 h");
        assert_eq!(span(TimeDelta::seconds(3 * 86_400)), "3 days");
    }

    #[test]
    fn a_sparkline_marks_failed_runs() {
        let points: VecDeque<RunPoint> = [(10, true), (30, false), (20, true)]
            .into_iter()
            .map(|(ms, ok)| RunPoint::new(std::time::Duration::from_millis(ms), ok))
            .collect();
        let mut out = String::new();
        sparkline(&mut out, &points);
        assert!(out.starts_with("<svg"), "{out}");
        assert_eq!(out.matches(r#"class="bad""#).count(), 1, "{out}");
        assert!(out.contains("10 ms to 30 ms"), "{out}");
    }
}
