//! The PagerDuty, Alertmanager, Slack and templated-webhook sinks against a
//! real HTTP receiver on loopback that records the exact bodies, the
//! examples of `docs/integrations.md`, and `scarecrow notify --test`.

mod sinks {
    pub mod alertmanager;
    pub mod docs;
    pub mod notify;
    pub mod pagerduty;
    pub mod slack;
    pub mod support;
    pub mod templates;
}
