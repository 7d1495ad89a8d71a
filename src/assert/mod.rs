//! Evaluation of assertions and captures on a step's response: the query
//! model (`check::Query`, `check::Assertion`) applied to a response. Pure
//! and free of I/O; a failure says where it looked, what was expected and
//! what was seen.

mod cert;
mod eval;
mod page;
#[cfg(test)]
mod values_tests;
pub mod visible;

pub use cert::PeerCertificate;
pub use eval::{Around, Document, Response};
pub use page::{MAX_PAGE_DEPTH, PageError};
