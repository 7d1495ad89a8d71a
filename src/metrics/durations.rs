//! A check's run-duration histogram, kept in about a hundred bytes.
//! `prometheus::Histogram` costs about 650 bytes a check (two shards, a
//! descriptor, label strings), the largest part of the metrics with 10,000
//! checks. Runs of one check never overlap, so each histogram has one
//! writer; buckets are counted one by one and summed when rendered, so a
//! scrape during an update still sees counts that add up.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::core::{Atomic, AtomicF64};

/// Buckets of a run's duration: 10 ms to 30 s.
pub(super) const BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

pub(super) struct Durations {
    /// Runs per bucket (not cumulative); the last one is above every bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum: AtomicF64,
}

/// What a scrape shows: cumulative counts per bound, the count and the sum.
pub(super) struct Snapshot {
    pub(super) cumulative: [u64; BUCKETS.len()],
    pub(super) count: u64,
    pub(super) sum: f64,
}

impl Default for Durations {
    fn default() -> Self {
        Durations {
            counts: Default::default(),
            sum: AtomicF64::new(0.0),
        }
    }
}

impl Durations {
    pub(super) fn observe(&self, seconds: f64) {
        let i = BUCKETS.partition_point(|bound| *bound < seconds);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum.inc_by(seconds);
    }

    pub(super) fn snapshot(&self) -> Snapshot {
        let mut cumulative = [0; BUCKETS.len()];
        let mut count = 0;
        for (i, n) in self.counts.iter().enumerate() {
            count += n.load(Ordering::Relaxed);
            if let Some(c) = cumulative.get_mut(i) {
                *c = count;
            }
        }
        Snapshot {
            cumulative,
            count,
            sum: self.sum.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_is_inclusive_and_counts_are_cumulative() {
        let d = Durations::default();
        for seconds in [0.01, 0.02, 0.3, 45.0] {
            d.observe(seconds);
        }
        let s = d.snapshot();
        assert_eq!(s.cumulative, [1, 2, 2, 2, 3, 3, 3, 3, 3, 3]);
        assert_eq!(s.count, 4);
        assert!((s.sum - 45.33).abs() < 1e-9);
    }
}
