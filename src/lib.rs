//! scarecrow: synthetic monitoring and smoke tests for business-critical web features.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod app;
pub mod assert;
pub mod check;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error_chain;
pub mod fsread;
pub mod incident;
pub mod live;
pub mod metrics;
pub mod probe;
pub mod report;
pub mod schedule;
pub mod secret;
pub mod server;
pub mod sink;
pub mod store;
pub mod template;
pub mod text;
