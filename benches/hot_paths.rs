//! The daemon's hot paths, through the crate's public API: assertion
//! evaluation, HTML parsing with several selectors, JSONPath, interpolation,
//! next-fire computation, `/metrics` with 10,000 checks, reading a check file.
//! `cargo bench --bench hot_paths`; bench/README.md relates them to the
//! performance targets. Never timed tests: CI only builds them.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scarecrow::assert::{Document, Response};
use scarecrow::check::cron::Cron;
use scarecrow::check::{
    Assertion, CountRange, Css, JsonPath, Patterns, Pick, Predicate, StatusMatch, StatusSet,
    TextPredicate,
};
use scarecrow::check::{
    Check, HttpStep, Outcome, Phases, Reason, Redacted, RunResult, Schedule, StepDetail, StepResult,
};
use scarecrow::config::{Defaults, Source, read_check};
use scarecrow::metrics::Metrics;
use scarecrow::schedule::plan;
use scarecrow::template::{Resolve, Template};

/// Run-time values for placeholders, as a run's captures and secrets.
struct Vars;

impl Resolve for Vars {
    fn secret(&self, _: &str) -> Result<String, String> {
        Ok("hunter2-secret".into())
    }
    fn file(&self, _: &Path) -> Result<String, String> {
        Ok("s3cret\n".into())
    }
    fn capture(&self, _: &str) -> Option<String> {
        Some("8f14e45fceea167a5a36dedd4bea2543".into())
    }
}

/// A farm shop's market page of at least `size` bytes: navigation, a price
/// table, an order form, news paragraphs, as a real page mixes them.
fn farm_page(size: usize) -> String {
    const PRODUCE: [&str; 8] = [
        "Potatoes",
        "Carrots",
        "Free-range eggs",
        "Raw milk",
        "Apples",
        "Honey",
        "Kale",
        "Rye bread",
    ];
    let mut p = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Hollow Creek Farm — market</title>\
         <link rel=\"stylesheet\" href=\"/static/site.css\"></head><body><header class=\"site\"><nav id=\"main\"><ul>",
    );
    for item in ["Home", "Market", "Weather", "Diesel", "Members", "Contact"] {
        let _ = write!(
            p,
            "<li><a href=\"/{}\">{item}</a></li>",
            item.to_lowercase()
        );
    }
    p.push_str("</ul></nav></header><main><h1>Market prices</h1><table id=\"prices\" class=\"market\"><thead><tr><th>Produce</th><th>Unit</th><th>Price</th><th>Stock</th></tr></thead><tbody>");
    let mut i = 0;
    while p.len() < size * 2 / 5 {
        let name = PRODUCE[i % PRODUCE.len()];
        let _ = write!(
            p,
            "<tr class=\"item\" data-sku=\"HC-{i:05}\"><td class=\"name\">{name} <small>lot {i}</small></td>\
             <td class=\"unit\">kg</td><td class=\"price\">{}.{:02} €</td><td class=\"stock\">{}</td></tr>",
            1 + i % 17,
            (i * 37) % 100,
            (i * 13) % 250
        );
        i += 1;
    }
    p.push_str(
        "</tbody></table><form id=\"order\" method=\"post\" action=\"/order\">\
        <input type=\"hidden\" name=\"csrf\" value=\"8f14e45fceea167a5a36dedd4bea2543\">\
        <label>Liters <input name=\"liters\" type=\"number\" min=\"100\"></label>\
        <select name=\"tank\"><option>North barn</option><option>South field</option></select>\
        <button type=\"submit\">Order diesel</button></form><section id=\"news\">",
    );
    let mut n = 0;
    while p.len() < size {
        let _ = write!(
            p,
            "<article class=\"news\"><h2>Week {n}: harvest notes</h2><p>The <em>early</em> potatoes are in, \
             the carrots need another week of rain, and the hens laid {} eggs. Members collect boxes on \
             <strong>Saturday</strong> from 9 to 12 at the <a href=\"/barn\">north barn</a>.</p>\
             <p class=\"meta\">Posted <time datetime=\"2026-06-{:02}\">June {}</time> by the farm team.</p></article>",
            400 + n % 90,
            1 + n % 28,
            1 + n % 28
        );
        n += 1;
    }
    p.push_str("</section></main><footer><p class=\"updated\">Updated <time>09:00</time></p></footer></body></html>");
    p
}

fn css(selector: &str, predicate: Predicate) -> Assertion {
    let selector = Css::parse(selector).expect("valid selector");
    Assertion::Pick(
        Pick::Css {
            selector,
            attr: None,
        },
        predicate,
    )
}

fn regex(re: &str) -> TextPredicate {
    TextPredicate::Matches(Patterns::default().compile(re).expect("valid regex"))
}

fn matches(re: &str) -> Predicate {
    Predicate::Text(regex(re))
}

fn response<'a>(headers: &'a http::HeaderMap, body: &'a str) -> Response<'a> {
    Response {
        status: 200,
        headers,
        body,
        size: body.len() as u64,
        elapsed: Duration::from_millis(3),
        certificate: None,
    }
}

fn html_headers() -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h
}

fn assertions(c: &mut Criterion) {
    let headers = html_headers();
    let small = farm_page(1_000);
    let big = farm_page(200_000);
    let simple = [
        Assertion::Status(StatusSet(vec![StatusMatch::Class(2)])),
        Assertion::Pick(
            Pick::Header(http::header::CONTENT_TYPE),
            matches("^text/html"),
        ),
        Assertion::Body(TextPredicate::Contains(Template::literal("Market prices"))),
        Assertion::Body(regex(r"Hollow Creek Farm|Market \w+")),
    ];
    let mut g = c.benchmark_group("assert");
    for (name, body) in [("simple_1KB", &small), ("simple_200KB", &big)] {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let doc = Document::new(response(&headers, black_box(body)));
                simple.iter().all(|a| doc.check(a, &Vars).is_ok())
            })
        });
    }
    // A regex that must scan the whole body (the match is at its end).
    let tail = Assertion::Body(regex(r"Updated <time>\d\d:\d\d</time>"));
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("body_regex_at_end_200KB", |b| {
        b.iter(|| Document::new(response(&headers, black_box(&big))).check(&tail, &Vars))
    });
    g.finish();

    // One parse per response, however many selectors.
    let selectors = [
        css(
            "nav#main a",
            Predicate::Count(CountRange {
                min: Some(5),
                max: None,
            }),
        ),
        css(
            "table#prices tbody tr.item",
            Predicate::Count(CountRange {
                min: Some(100),
                max: None,
            }),
        ),
        css("table#prices td.price", matches(r"^\d+\.\d\d €$")),
        Assertion::Pick(
            Pick::Css {
                selector: Css::parse("form#order input[name=csrf]").expect("valid selector"),
                attr: Some("value".into()),
            },
            matches("^[0-9a-f]{32}$"),
        ),
    ];
    let mut g = c.benchmark_group("html");
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("parse_200KB", |b| {
        b.iter(|| scraper::Html::parse_document(black_box(&big)))
    });
    g.bench_function("parse_and_4_selectors_200KB", |b| {
        b.iter(|| {
            let doc = Document::new(response(&headers, black_box(&big)));
            selectors.iter().all(|a| doc.check(a, &Vars).is_ok())
        })
    });
    g.finish();
}

fn jsonpath(c: &mut Criterion) {
    let mut body = String::from(r#"{"status":"ok","farm":"Hollow Creek","forecast":["#);
    for day in 0..200 {
        let sep = if day > 0 { "," } else { "" };
        let _ = write!(
            body,
            r#"{sep}{{"day":{day},"temp":{},"summary":"light rain, {} mm","wind":{{"speed":{},"dir":"SW"}}}}"#,
            day % 25 - 5,
            day % 7,
            day % 40
        );
    }
    body.push_str("]}");
    let json = |path: &str, predicate| {
        let path = JsonPath::parse(path).expect("valid JSONPath");
        Assertion::Pick(Pick::JsonPath(path), predicate)
    };
    let checks = [
        json("$.status", Predicate::JsonEquals(serde_json::json!("ok"))),
        json("$.forecast[*].temp", Predicate::Exists(true)),
        json(
            "$.forecast[?@.wind.speed > 30].summary",
            matches(r"^light rain, \d+ mm$"),
        ),
    ];
    let headers = http::HeaderMap::new();
    let mut g = c.benchmark_group("jsonpath");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("parse_and_3_paths", |b| {
        b.iter(|| {
            let doc = Document::new(response(&headers, black_box(&body)));
            checks.iter().all(|a| doc.check(a, &Vars).is_ok())
        })
    });
    g.finish();
}

fn interpolation(c: &mut Criterion) {
    let text = "https://${env:FARM_HOST:-farm.example}/orders/${capture:order}?key=${secret:API_KEY}&pw=${file:/run/secrets/pw}";
    let env = |name: &str| (name == "FARM_HOST").then(|| "hollow-creek.example".to_owned());
    let t = Template::parse(text, env).expect("valid template");
    let mut g = c.benchmark_group("template");
    g.bench_function("parse", |b| {
        b.iter(|| Template::parse(black_box(text), env))
    });
    g.bench_function("render", |b| {
        b.iter(|| black_box(&t).render(&Vars).map(|s| s.len()))
    });
    g.finish();
}

fn next_fire(c: &mut Criterion) {
    let tz: chrono_tz::Tz = "Europe/Berlin".parse().expect("known zone");
    let busy = Cron::parse("*/5 9-17 * * MON-FRI", tz).expect("valid cron");
    let daily = Cron::parse("30 2 * * *", tz).expect("valid cron");
    let wall: chrono::DateTime<chrono::Utc> = "2026-03-28T23:59:30Z".parse().expect("time");
    let every = Schedule::Every(Duration::from_secs(60));
    let mut g = c.benchmark_group("schedule");
    g.bench_function("cron_next_weekday_hours", |b| {
        b.iter(|| busy.next_after(black_box(wall)))
    });
    g.bench_function("cron_next_across_dst", |b| {
        b.iter(|| daily.next_after(black_box(wall)))
    });
    g.bench_function("every_next_due", |b| {
        b.iter(|| {
            plan::next_due(
                &every,
                black_box(Duration::from_secs(120)),
                Duration::from_secs(121),
                wall,
            )
        })
    });
    g.bench_function("spread", |b| {
        b.iter(|| plan::spread(black_box("check-04711"), Duration::from_secs(60)))
    });
    g.finish();
}

/// The shipped weather check, read as the daemon reads it (so the bench
/// follows the model as it grows).
fn weather() -> (String, Check) {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/checks/weather.toml"))
        .expect("the shipped weather check");
    let src = Source::new("checks/weather.toml", text.clone());
    let check = read_check(&src, &Defaults::default(), &|_| None)
        .0
        .expect("a valid check");
    (text, check)
}

fn run_result(i: usize) -> Redacted<RunResult> {
    let ms = |n| Some(Duration::from_millis(n));
    Redacted::vouched(RunResult {
        check: format!("check-{i:05}"),
        started_at: chrono::Utc::now(),
        duration: Duration::from_millis(12),
        outcome: if i.is_multiple_of(50) {
            Outcome::Failure {
                reason: Reason::Timeout,
                step: Some("home".into()),
                message: "timed out".into(),
            }
        } else {
            Outcome::Success
        },
        steps: vec![StepResult {
            name: "home".into(),
            url: "http://127.0.0.1/".into(),
            detail: StepDetail::Http(HttpStep {
                method: "GET".into(),
                status: Some(200),
                phases: Phases {
                    dns: ms(1),
                    connect: ms(2),
                    ttfb: ms(8),
                    transfer: ms(1),
                },
                ..HttpStep::default()
            }),
            duration: Duration::from_millis(12),
            attempts: 1,
            failures: Vec::new(),
            failure_details: Vec::new(),
            captures: Default::default(),
            excerpt: None,
        }],
    })
}

fn metrics(c: &mut Criterion) {
    let (_, mut check) = weather();
    let m = Metrics::new();
    for i in 0..10_000 {
        check.name = format!("check-{i:05}");
        m.add_check(&check);
        m.observe_run(&run_result(i));
    }
    let run = run_result(4711);
    let mut g = c.benchmark_group("metrics");
    g.bench_function("observe_run", |b| b.iter(|| m.observe_run(black_box(&run))));
    g.bench_function("observe_lateness", |b| {
        b.iter(|| m.observe_lateness(black_box(Duration::from_micros(300))))
    });
    g.sample_size(20);
    g.bench_function("render_10000_checks", |b| b.iter(|| m.render().len()));
    g.finish();
}

fn validate(c: &mut Criterion) {
    let (text, _) = weather();
    let defaults = Defaults::default();
    let mut g = c.benchmark_group("config");
    g.throughput(Throughput::Elements(1));
    g.bench_function("read_check_weather", |b| {
        b.iter(|| {
            let src = Source::new("checks/weather.toml", black_box(text.clone()));
            read_check(&src, &defaults, &|_| None).0.is_some()
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    assertions,
    jsonpath,
    interpolation,
    next_fire,
    metrics,
    validate
);
criterion_main!(benches);
