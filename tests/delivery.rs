//! Incident delivery end to end, through the daemon the CLI starts: each
//! attempt kept for the post-mortem, the
//! incident gauges after a restart and at each scrape, the Alertmanager
//! sink after a restart, receivers that throttle, and bursts of
//! declarations to a healthy receiver.

mod common;

mod delivery {
    pub mod attempts;
    pub mod burst;
    pub mod gauges;
    pub mod harness;
    pub mod restart;
    pub mod throttle;
}
