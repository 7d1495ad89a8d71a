//! `scarecrow_tls_certificate_expiry_timestamp_seconds{check,host}`: when the
//! certificate each host of a check presented expires. The hosts are those
//! the check's steps reach (bounded by its check file); the series go with
//! the check.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use crate::check::StepResult;

/// The latest `notAfter` seen per host, in Unix seconds.
#[derive(Debug, Default)]
pub(super) struct CertExpiry(Mutex<BTreeMap<String, f64>>);

impl CertExpiry {
    /// Keeps the expiry of every HTTPS step of a run. A host the run did
    /// not reach (a failed handshake, an earlier failing step) keeps the
    /// value it had.
    pub(super) fn record(&self, steps: &[StepResult]) {
        let seen = steps.iter().filter_map(|s| {
            let http = s.http()?;
            let at = http.cert_expires_at?;
            Some((http.host.as_deref()?, at.timestamp() as f64))
        });
        let mut hosts = self.lock();
        for (host, at) in seen {
            match hosts.get_mut(host) {
                Some(old) => *old = at,
                None => {
                    hosts.insert(host.to_owned(), at);
                }
            }
        }
    }

    /// The hosts and their expiry, in host order.
    pub(super) fn snapshot(&self) -> Vec<(String, f64)> {
        self.lock().iter().map(|(h, at)| (h.clone(), *at)).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, f64>> {
        // Each update is a single insert or assignment: a panic cannot leave
        // the map half-written, so poisoning is ignored.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
