//! The clearly marked test events `scarecrow notify --test` sends through a
//! sink, and that templates are checked against when the config loads.

use chrono::{DateTime, TimeDelta, Utc};

use crate::check::Failure;
use crate::incident::{Event, EventKind, Evidence, Feature, Incident, Roles, new_id};

/// The check every test notification is about.
pub const TEST_CHECK: &str = "scarecrow-test";

const TEST_FAILURE: &str =
    "test: expected it to be a test notification, got \"[TEST] nothing is wrong\"";

/// A clearly marked test declaration and its resolution, as `scarecrow
/// notify --test` sends them (and templates are checked against): every
/// field filled in, a failed expectation and a previous incident too.
pub fn test_events(instance_group: &str, roles: Roles, now: DateTime<Utc>) -> [Event; 2] {
    let since = now - TimeDelta::minutes(2);
    let mut incident = Incident {
        id: new_id("inc"),
        key: crate::incident::key::new(instance_group, TEST_CHECK),
        title: "[TEST] scarecrow-test is failing: this is a test notification".to_owned(),
        severity: "critical".to_owned(),
        feature: Feature {
            check: TEST_CHECK.to_owned(),
            description: Some(
                "A test notification from `scarecrow notify --test`: nothing is wrong".to_owned(),
            ),
            owner: Some("scarecrow".to_owned()),
            runbook: Some("https://example.org/runbooks/scarecrow-test".to_owned()),
            labels: [("test".to_owned(), "true".to_owned())].into(),
            roles,
        },
        first_failure_at: since,
        detected_at: since + TimeDelta::minutes(1),
        declared_at: now,
        resolved_at: None,
        resolution: None,
        note: None,
        evidence: Evidence {
            run_id: new_id("run"),
            at: since + TimeDelta::minutes(1),
            reason: "test".to_owned(),
            step: Some("test".to_owned()),
            message: "[TEST] a test of this notification sink; nothing is wrong".to_owned(),
            failures: vec![TEST_FAILURE.to_owned()],
            failure_details: vec![
                Failure::new("test", TEST_FAILURE.to_owned())
                    .expected("be a test notification")
                    .actual("[TEST] nothing is wrong"),
            ],
            status: Some(200),
            url: Some("https://example.org/scarecrow-test".to_owned()),
            phases_ms: [("ttfb".to_owned(), 1.0)].into(),
            duration_ms: 1.0,
            consecutive_failures: 2,
            excerpt: None,
            screenshot: None,
            screenshot_url: None,
            locations: Vec::new(),
        },
        run_ids: vec![],
        // Shown like a real one, so a receiver's rendering of it is seen.
        previous_incident: Some(new_id("inc")),
        affected: Vec::new(),
    };
    let declared = Event {
        id: new_id("msg"),
        kind: EventKind::Declared,
        at: now,
        incident: incident.clone(),
    };
    incident.resolved_at = Some(now);
    incident.resolution = Some("manual".to_owned());
    incident.note = Some("[TEST] end of the test".to_owned());
    let resolved = Event {
        id: new_id("msg"),
        kind: EventKind::Resolved,
        at: now,
        incident,
    };
    [declared, resolved]
}
