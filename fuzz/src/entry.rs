//! The fuzz targets' entry points: one function per target, taking the raw
//! input. The fuzz binaries (fuzz_targets/, through lib.rs) and the main
//! crate's tests/fuzz_regressions.rs (which includes this file as a module)
//! call the same functions, so a crash the fuzzer saved replays under
//! `cargo test`.
//!
//! Each function does what the daemon does with such an input, through the
//! crate's public API, and panics only where the daemon would panic (or where
//! a value the loader accepted would make it panic later).

use std::path::Path;
use std::time::{Duration, Instant};

use scarecrow::assert::Response;
use scarecrow::check::{Assertion, Check, Predicate, Schedule, TextPredicate};
use scarecrow::config::{Defaults, Diagnostic, Source, read_check, read_config};
use scarecrow::schedule::plan;
use scarecrow::template::{Resolve, Template};

/// The stack of the threads a daemon loads, reloads and judges on: tokio's
/// workers and blocking pool, 2 MiB (the daemon sets no `thread_stack_size`).
/// libFuzzer's main thread (and a test's) has more, which would hide a stack
/// overflow the daemon dies of.
pub const DAEMON_STACK: usize = 2 * 1024 * 1024;

/// A target's entry point: one raw input.
pub type Entry = fn(&[u8]);

/// The targets by name, as their directories under fuzz/regressions/ are named.
pub const TARGETS: [(&str, Entry); 5] = [
    ("check_file", check_file),
    ("config", config),
    ("devtools", devtools),
    ("placeholder", placeholder),
    ("response", response),
];

/// Runs `f` on a thread named `name` with the daemon's stack size and waits
/// for it; a panic on that thread is raised again here, so libFuzzer (whose
/// panic hook aborts) and the test harness both see it. A stack overflow
/// aborts the process with a message naming the thread.
pub fn on_daemon_stack(name: &str, f: impl FnOnce() + Send) {
    std::thread::scope(|s| {
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .stack_size(DAEMON_STACK)
            .spawn_scoped(s, f)
            .expect("a thread for the input");
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
    });
}

/// `${env:…}` for every target: set (to its name in lower case) unless the
/// name starts with `UNSET`, so both the value and the "not set" paths run.
fn env(name: &str) -> Option<String> {
    (!name.starts_with("UNSET")).then(|| name.to_lowercase())
}

/// The text of a file as the daemon reads it (`read_to_string`): a file that
/// is not UTF-8 is a load error before any parsing.
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Renders diagnostics as `validate` prints them (source line and carets).
fn show(diags: &[Diagnostic]) {
    for d in diags {
        std::hint::black_box(d.to_string());
    }
}

/// Target `check_file`: one check file's text, read as `scarecrow validate`
/// and a (re)load read it, its diagnostics rendered; a check that loads is
/// then planned as the scheduler plans it, and its durations are put on the
/// clock as a run does (`start + timeout`), which must not overflow.
pub fn check_file(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let src = Source::new("checks/fuzz.toml", text.to_owned());
    let (check, diags) = read_check(&src, &Defaults::default(), &env);
    show(&diags);
    if let Some(check) = check {
        schedule_and_deadlines(&check);
    }
}

fn schedule_and_deadlines(check: &Check) {
    let now = Duration::from_secs(3600);
    let wall = chrono::Utc::now();
    if let Some(due) = plan::first_due(&check.name, &check.schedule, now, wall) {
        let later = due + Duration::from_secs(1);
        std::hint::black_box(plan::next_due(&check.schedule, due, later, wall));
    }
    if let Schedule::Every(every) = check.schedule {
        std::hint::black_box(plan::spread(&check.name, every));
    }
    // The probe's own arithmetic: one deadline for the run, one per attempt,
    // and a retry's wake-up time.
    let start = Instant::now();
    std::hint::black_box(start + check.timeout);
    for step in &check.steps {
        if let Some(limit) = step.timeout {
            std::hint::black_box(start + limit);
        }
        std::hint::black_box(start + step.retry.interval);
    }
}

/// Target `config`: `config.toml`'s text, read as the daemon reads it at
/// start and reload, its diagnostics rendered.
pub fn config(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let src = Source::new("/etc/scarecrow/config.toml", text.to_owned());
    match read_config(&src, &env) {
        Ok(config) => {
            std::hint::black_box((config.history, config.retention));
            std::hint::black_box(config.roles.for_owner(Some("shop-team")));
        }
        Err(diags) => show(&diags),
    }
}

/// Run-time values for placeholders, without touching the disk.
struct Vars;

impl Resolve for Vars {
    fn secret(&self, name: &str) -> Result<String, String> {
        match name.starts_with("UNSET") {
            true => Err("not set in the environment".into()),
            false => Ok(format!("secret-{name}")),
        }
    }
    fn file(&self, path: &Path) -> Result<String, String> {
        Ok(format!("file {}\n", path.display()))
    }
    fn capture(&self, name: &str) -> Option<String> {
        (!name.starts_with("unset")).then(|| format!("captured-{name}"))
    }
}

/// Target `placeholder`: one string in the placeholder grammar, parsed and
/// rendered as a template, and read by the check file and `config.toml`
/// readers in the places templates are allowed (as a basic string with
/// escapes, and as a literal string where it can be one), so their
/// diagnostics point inside it.
pub fn placeholder(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(t) = Template::parse(s, env) {
        std::hint::black_box(t.render(&Vars).map(|r| r.len()).ok());
        std::hint::black_box(format!("{t} {t:?}"));
        std::hint::black_box(t.captures().count() + t.secrets().count());
    }
    std::hint::black_box(scarecrow::config::template_text(s, &env).ok());
    let mut quoted = vec![basic(s)];
    if !s.contains(['\'', '\n', '\r']) {
        quoted.push(format!("'{s}'"));
    }
    for q in &quoted {
        check_file(check_with(q).as_bytes());
        config(format!("checks_dir = {q}\napi_token = {q}\n").as_bytes());
    }
}

/// A check file with `value` (TOML, quoted) wherever a template may stand.
fn check_with(value: &str) -> String {
    format!(
        "every = \"1m\"\n\
         [[step]]\nname = \"capture\"\nurl = \"http://127.0.0.1/\"\n\
         [[step.capture]]\nname = \"tok\"\nregex = \"t=(\\\\w+)\"\n\
         [[step]]\nname = \"use\"\nurl = {value}\nheaders = {{ x-fuzz = {value} }}\n\
         form = {{ a = {value} }}\n\
         [step.expect]\nbody_contains = {value}\n\
         [[step.expect.css]]\nselector = \"p\"\nequals = {value}\n"
    )
}

/// `s` as a TOML basic string.
fn basic(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Separates the check file from the response body in a `response` input.
pub const BODY_SEPARATOR: &str = "\n--- body ---\n";

/// Target `response`: a check file, [`BODY_SEPARATOR`], then a response
/// body. Every step of the check, if it loads, judges the body (HTML, or
/// JSON when it starts with `{` or `[`) as a run judges a step's response,
/// on the thread size a run judges it on, and takes the excerpt a failing
/// run would show of it. An input without the separator is
/// a body judged by a check with one assertion of each kind.
pub fn response(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (check_text, body) = match text.split_once(BODY_SEPARATOR) {
        Some((check, body)) => (check.to_owned(), body),
        None => (EVERY_KIND.to_owned(), &*text),
    };
    let src = Source::new("checks/fuzz.toml", check_text);
    let (Some(check), _) = read_check(&src, &Defaults::default(), &env) else {
        return;
    };
    if check.steps.iter().any(reads_files) {
        // `${file:…}` in an expectation reads the disk at run time: a fuzzer
        // naming /dev/zero would test the file reader, not the evaluation.
        return;
    }
    let json = body.trim_start().starts_with(['{', '[']);
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(match json {
            true => "application/json",
            false => "text/html; charset=utf-8",
        }),
    );
    headers.insert("x-fuzz", http::HeaderValue::from_static("1"));
    let url = url::Url::parse("https://fuzz.example/page?q=1").expect("a valid URL");
    let response = Response {
        status: 200,
        headers: &headers,
        body,
        size: body.len() as u64,
        elapsed: Duration::from_millis(40),
        certificate: None,
    };
    // Well inside libFuzzer's -timeout=10: a page still parsing then is
    // reported as a timeout of the step, not of the fuzzer.
    let deadline = Instant::now() + Duration::from_secs(5);
    for step in &check.steps {
        std::hint::black_box(scarecrow::probe::judge(step, response, &url, deadline));
        // The evidence a failing run takes of the body, looking first where
        // the step's queries looked.
        let looked_at: Vec<_> = step
            .assertions
            .iter()
            .filter_map(|a| match a {
                Assertion::Pick(pick, _) => Some(pick.clone()),
                _ => None,
            })
            .collect();
        std::hint::black_box(scarecrow::assert::visible::excerpt(
            body, &looked_at, deadline,
        ));
    }
}

fn reads_files(step: &scarecrow::check::Step) -> bool {
    let template = |t: &TextPredicate| match t {
        TextPredicate::Equals(t) | TextPredicate::Contains(t) | TextPredicate::NotContains(t) => {
            t.to_string().contains("${file:")
        }
        TextPredicate::Matches(_) => false,
    };
    step.assertions.iter().any(|a| match a {
        Assertion::Body(t) | Assertion::Pick(_, Predicate::Text(t)) => template(t),
        _ => false,
    })
}

/// The check a bare body is judged by: a CSS selector with `:has()`, a
/// JSONPath filter, regexes over the body and captures of each kind.
const EVERY_KIND: &str = r#"
[[step]]
name = "judge"
url = "https://fuzz.example/page"

[[step.capture]]
name = "title"
css = "head title"

[[step.capture]]
name = "id"
jsonpath = "$..id"

[[step.capture]]
name = "word"
regex = "(\\w+)\\s*$"

[step.expect]
body_contains = "${capture:title}"
body_matches = "(?i)<(div|p)[^>]*>"

[[step.expect.css]]
selector = "div:has(p.price) span, ul li:nth-child(2n+1) a[href^='/']"
count = { min = 0 }

[[step.expect.css]]
selector = "time"
attr = "datetime"
format = "rfc3339"
max_age = "30m"

[[step.expect.json]]
path = "$.items[?@.price > 3].name"
matches = "^\\w"

[[step.expect.json]]
path = "$..temp"
number = { min = -50, max = 60 }
"#;

/// Target `devtools`: what Chromium writes to the DevTools pipe (messages
/// ended by NUL, answers and events with page-made strings in them), its
/// first byte the size of the chunks the pipe delivers the rest in, read
/// as the daemon reads it: cut, parsed, routed to the page it belongs to.
pub fn devtools(data: &[u8]) {
    std::hint::black_box(scarecrow::probe::devtools(data));
}
