//! The per-check families in the Prometheus text format 0.0.4, written by hand
//! straight from each check's handles (the `metrics` module says why).

use std::fmt::Write as _;

use prometheus::core::Atomic;

use super::durations::RunDurations;
use super::out::{Out, push_label, write_float};
use super::series::{CheckSeries, Loaded, PHASES, RESULTS, Shape};
use crate::check::{Check, Reason};

/// The name, type and help of one per-check family.
pub(super) struct Family {
    pub(super) name: &'static str,
    kind: &'static str,
    pub(super) help: &'static str,
}

pub(super) const DURATION: Family = Family {
    name: "scarecrow_check_duration_seconds",
    kind: "histogram",
    help: "How long runs of the check took.",
};
const LAST_DURATION: Family = Family {
    name: "scarecrow_check_last_duration_seconds",
    kind: "gauge",
    help: "How long the check's last run took; 0 before its first run.",
};
const FAILURES: Family = Family {
    name: "scarecrow_check_failures_total",
    kind: "counter",
    help: "Failed runs of the check, by the class of failure.",
};
const INCIDENT_OPEN: Family = Family {
    name: "scarecrow_incident_open",
    kind: "gauge",
    help: "Whether the check has an open incident (1) or not (0).",
};
const INCIDENTS_DECLARED: Family = Family {
    name: "scarecrow_incidents_declared_total",
    kind: "counter",
    help: "Incidents declared for the check by this process.",
};
const INCIDENTS_90D: Family = Family {
    name: "scarecrow_incidents_90d",
    kind: "gauge",
    help: "Incidents declared for the check in the last 90 days (from the store; refreshed every few minutes).",
};
const MAINTENANCE: Family = Family {
    name: "scarecrow_maintenance_active",
    kind: "gauge",
    help: "Whether a maintenance window covers the check right now (1): runs are recorded, nothing is declared.",
};
const INFO: Family = Family {
    name: "scarecrow_check_info",
    kind: "gauge",
    help: "A loaded check's metadata; always 1. Labels from the check file carry the prefix label_.",
};
const LAST_RUN: Family = Family {
    name: "scarecrow_check_last_run_timestamp_seconds",
    kind: "gauge",
    help: "When the check's last run started, in Unix seconds; 0 before its first run.",
};
const LAST_SUCCESS: Family = Family {
    name: "scarecrow_check_last_success_timestamp_seconds",
    kind: "gauge",
    help: "When the check's last successful run started, in Unix seconds; 0 before its first success.",
};
const PHASE: Family = Family {
    name: "scarecrow_check_phase_seconds",
    kind: "gauge",
    help: "Time the check's last run spent in each request phase, summed over its steps; 0 for a phase that did not happen.",
};
const RUNS: Family = Family {
    name: "scarecrow_check_runs_total",
    kind: "counter",
    help: "Runs of the check, by result (success or failure).",
};
const SKIPPED: Family = Family {
    name: "scarecrow_check_skipped_runs_total",
    kind: "counter",
    help: "Runs of the check skipped because the previous run was still going when the next was due.",
};
const UP: Family = Family {
    name: "scarecrow_check_up",
    kind: "gauge",
    help: "Whether the check's last run succeeded (1) or failed (0); 0 until its first successful run.",
};

const CERT_EXPIRY: Family = Family {
    name: "scarecrow_tls_certificate_expiry_timestamp_seconds",
    kind: "gauge",
    help: "When the TLS certificate a host of the check presented expires (its notAfter), in Unix seconds.",
};

/// Writes the per-check families `shape` asks for, each check's samples in
/// name order.
pub(super) fn write_checks(out: &mut Out, checks: &[Loaded], shape: &Shape) {
    let each = |out: &mut Out, family: &Family, f: &dyn Fn(&mut String, &CheckSeries)| {
        header(out, family);
        for c in checks {
            if out.closed {
                return;
            }
            f(out, &c.series);
            out.boundary();
        }
    };
    match shape.bounds.is_empty() {
        true => each(out, &LAST_DURATION, &|out, s| {
            if let RunDurations::Last(last) = &s.duration {
                sample(out, LAST_DURATION.name, &s.label, None);
                write_float(out, last.get());
            }
        }),
        false => write_histograms(out, checks, &shape.le),
    }
    write_failures(out, checks);
    each(out, &INCIDENT_OPEN, &|out, s| {
        sample(out, INCIDENT_OPEN.name, &s.label, None);
        write_float(out, s.incident_open.get());
    });
    each(out, &INCIDENTS_DECLARED, &|out, s| {
        sample(out, INCIDENTS_DECLARED.name, &s.label, None);
        write_int(out, s.incidents_declared.get());
    });
    each(out, &INCIDENTS_90D, &|out, s| {
        sample(out, INCIDENTS_90D.name, &s.label, None);
        write_float(out, s.incidents_90d.get());
    });
    each(out, &MAINTENANCE, &|out, s| {
        sample(out, MAINTENANCE.name, &s.label, None);
        write_float(out, s.maintenance.get());
    });
    header(out, &INFO);
    for c in checks {
        out.push_str(INFO.name);
        out.push('{');
        out.push_str(&c.info);
        out.push_str("} 1\n");
        out.boundary();
    }
    each(out, &LAST_RUN, &|out, s| {
        sample(out, LAST_RUN.name, &s.label, None);
        write_float(out, s.last_run.get());
    });
    each(out, &LAST_SUCCESS, &|out, s| {
        sample(out, LAST_SUCCESS.name, &s.label, None);
        write_float(out, s.last_success.get());
    });
    if shape.phases {
        each(out, &PHASE, &|out, s| {
            for (phase, v) in PHASES.iter().zip(&s.phases) {
                sample(out, PHASE.name, &s.label, Some(("phase", phase)));
                write_float(out, v.get());
            }
        });
    }
    each(out, &RUNS, &|out, s| {
        for (result, n) in RESULTS.iter().zip(&s.runs) {
            sample(out, RUNS.name, &s.label, Some(("result", result)));
            write_int(out, n.get());
        }
    });
    each(out, &SKIPPED, &|out, s| {
        sample(out, SKIPPED.name, &s.label, None);
        write_int(out, s.skipped.get());
    });
    each(out, &UP, &|out, s| {
        sample(out, UP.name, &s.label, None);
        write_float(out, s.up.get());
    });
    write_cert_expiry(out, checks);
}

/// The duration histograms, their `+Inf` bucket, sum and count.
fn write_histograms(out: &mut Out, checks: &[Loaded], le: &[String]) {
    const BUCKET: &str = "scarecrow_check_duration_seconds_bucket";
    header(out, &DURATION);
    let mut cumulative = Vec::with_capacity(le.len() + 1);
    for c in checks {
        if out.closed {
            return;
        }
        let s = &c.series;
        let RunDurations::Histogram(h) = &s.duration else {
            continue;
        };
        let totals = h.snapshot(&mut cumulative);
        for (le, n) in le.iter().zip(&cumulative) {
            sample(out, BUCKET, &s.label, Some(("le", le)));
            write_int(out, *n);
        }
        sample(out, BUCKET, &s.label, Some(("le", "+Inf")));
        write_int(out, totals.count);
        sample(out, "scarecrow_check_duration_seconds_sum", &s.label, None);
        write_float(out, totals.sum);
        sample(
            out,
            "scarecrow_check_duration_seconds_count",
            &s.label,
            None,
        );
        write_int(out, totals.count);
        out.boundary();
    }
}

/// The failure counters, each from its reason's first failure on: a check
/// has a dozen ways to fail and most never happen, so series at zero for
/// each would be most of its series. No family until some check has failed.
fn write_failures(out: &mut Out, checks: &[Loaded]) {
    let mut started = false;
    for c in checks {
        if out.closed {
            return;
        }
        for (reason, n) in Reason::ALL.iter().zip(&c.series.failures) {
            let n = n.get();
            if n == 0 {
                continue;
            }
            if !started {
                header(out, &FAILURES);
                started = true;
            }
            sample(
                out,
                FAILURES.name,
                &c.series.label,
                Some(("reason", reason.as_str())),
            );
            write_int(out, n);
        }
        out.boundary();
    }
}

/// The certificate family, by check and host; no family until some check
/// has reached an HTTPS host.
fn write_cert_expiry(out: &mut Out, checks: &[Loaded]) {
    let mut started = false;
    for c in checks {
        for (host, at) in c.series.cert_expiry.snapshot() {
            if !started {
                header(out, &CERT_EXPIRY);
                started = true;
            }
            out.push_str(CERT_EXPIRY.name);
            out.push('{');
            out.push_str(&c.series.label);
            out.push(',');
            push_label(out, "host", &host);
            out.push_str("} ");
            write_float(out, at);
        }
        out.boundary();
    }
}

/// The label set of a check's info series: `check`, `critical`, `owner` (when
/// set) and each free label as `label_<key>`.
pub(super) fn info_labels(check: &Check) -> String {
    let mut out = String::new();
    let mut names = vec!["check".to_owned(), "critical".to_owned()];
    push_label(&mut out, "check", &check.name);
    let _ = write!(out, ",critical=\"{}\"", check.critical);
    if let Some(owner) = &check.owner {
        out.push(',');
        push_label(&mut out, "owner", owner);
    }
    for (key, value) in &check.labels {
        let name = label_name(key);
        // Two keys that sanitise alike would make an invalid series: the
        // first (in key order) wins.
        if names.contains(&name) {
            continue;
        }
        out.push(',');
        push_label(&mut out, &name, value);
        names.push(name);
    }
    out
}

/// The label every series of a check carries: `check="<name>"`, escaped.
pub(super) fn check_label(name: &str) -> String {
    let mut label = String::new();
    push_label(&mut label, "check", name);
    label
}

/// `label_` and `key` with every character outside `[a-zA-Z0-9_]` made `_`:
/// always a valid Prometheus label name, never a reserved one.
fn label_name(key: &str) -> String {
    let mut name = String::with_capacity(6 + key.len());
    name.push_str("label_");
    name.extend(key.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    name
}

fn header(out: &mut String, family: &Family) {
    let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
    let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
}

/// Writes a sample's name and labels and the space before its value.
fn sample(out: &mut String, name: &str, check: &str, extra: Option<(&str, &str)>) {
    out.push_str(name);
    out.push('{');
    out.push_str(check);
    if let Some((label, value)) = extra {
        out.push(',');
        out.push_str(label);
        out.push_str("=\"");
        out.push_str(value);
        out.push('"');
    }
    out.push_str("} ");
}

fn write_int(out: &mut String, v: u64) {
    let _ = writeln!(out, "{v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys_become_valid_label_names() {
        assert_eq!(label_name("site"), "label_site");
        assert_eq!(label_name("2fa"), "label_2fa");
        assert_eq!(label_name("team-name.x"), "label_team_name_x");
        assert_eq!(label_name("é"), "label__");
    }

    #[test]
    fn info_labels_are_escaped_and_the_first_of_two_alike_keys_wins() {
        let check = Check {
            name: "a\\b".to_owned(),
            description: None,
            critical: false,
            owner: Some("web \"ops\"".to_owned()),
            runbook: None,
            labels: [("team-x", "1\n2"), ("team_x", "lost")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
            schedule: crate::check::Schedule::Every(std::time::Duration::from_secs(60)),
            timeout: std::time::Duration::from_secs(10),
            steps: Vec::new(),
            incidents: Default::default(),
            connection: Default::default(),
            public_cookies: Vec::new(),
            depends_on: Vec::new(),
            locations: Vec::new(),
            source: "checks/a.toml".into(),
        };
        assert_eq!(
            info_labels(&check),
            r#"check="a\\b",critical="false",owner="web \"ops\"",label_team_x="1\n2""#
        );
        assert_eq!(check_label(&check.name), r#"check="a\\b""#);
    }
}
