//! A check's run durations: by default the last run's alone (one series), or
//! a histogram with the bounds of `[metrics] duration_buckets`, kept in a few
//! dozen bytes. `prometheus::Histogram` costs about 650 bytes a check (two
//! shards, a descriptor, label strings), the largest part of the metrics with
//! 10,000 checks. Runs of one check never overlap, so each histogram has one
//! writer; buckets are counted one by one and summed when rendered, so a
//! scrape during an update still sees counts that add up.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::core::{Atomic, AtomicF64};

pub(super) enum RunDurations {
    /// The default: a gauge of the last run's duration, in seconds.
    Last(AtomicF64),
    Histogram(Histogram),
}

impl RunDurations {
    /// A histogram of `bounds` bounds, or the last duration when there are none.
    pub(super) fn new(bounds: usize) -> RunDurations {
        match bounds {
            0 => RunDurations::Last(AtomicF64::new(0.0)),
            n => RunDurations::Histogram(Histogram::new(n)),
        }
    }

    /// Records one run; `bounds` are those this value was made for.
    pub(super) fn observe(&self, bounds: &[f64], seconds: f64) {
        match self {
            RunDurations::Last(last) => last.set(seconds),
            RunDurations::Histogram(h) => h.observe(bounds, seconds),
        }
    }
}

pub(super) struct Histogram {
    /// Runs per bucket (not cumulative); the last one is above every bound.
    counts: Box<[AtomicU64]>,
    sum: AtomicF64,
}

/// What a scrape shows besides the cumulative counts: the count and the sum.
pub(super) struct Totals {
    pub(super) count: u64,
    pub(super) sum: f64,
}

impl Histogram {
    fn new(bounds: usize) -> Histogram {
        Histogram {
            counts: (0..=bounds).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicF64::new(0.0),
        }
    }

    fn observe(&self, bounds: &[f64], seconds: f64) {
        let i = bounds.partition_point(|bound| *bound < seconds);
        if let Some(n) = self.counts.get(i) {
            n.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.inc_by(seconds);
    }

    /// Fills `cumulative` with the count up to each bound, in a buffer the
    /// caller reuses across checks.
    pub(super) fn snapshot(&self, cumulative: &mut Vec<u64>) -> Totals {
        cumulative.clear();
        let mut count = 0;
        for n in self.counts.iter() {
            count += n.load(Ordering::Relaxed);
            cumulative.push(count);
        }
        // The last bucket is above every bound: its count is `+Inf`'s.
        cumulative.pop();
        Totals {
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
        let bounds = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
        let h = Histogram::new(bounds.len());
        for seconds in [0.01, 0.02, 0.3, 45.0] {
            h.observe(&bounds, seconds);
        }
        let mut cumulative = Vec::new();
        let t = h.snapshot(&mut cumulative);
        assert_eq!(cumulative, [1, 2, 2, 2, 3, 3, 3, 3, 3, 3]);
        assert_eq!(t.count, 4);
        assert!((t.sum - 45.33).abs() < 1e-9);
    }

    #[test]
    fn without_bounds_only_the_last_duration_is_kept() {
        let d = RunDurations::new(0);
        d.observe(&[], 0.5);
        d.observe(&[], 0.25);
        match d {
            RunDurations::Last(last) => assert_eq!(last.get(), 0.25),
            RunDurations::Histogram(_) => panic!("a histogram without bounds"),
        }
    }
}
