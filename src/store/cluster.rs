//! Replicas on one PostgreSQL store: what a replica knows of the others
//! (the members alive, whether it leads) and what the store tells it of
//! the runs they all write. SQLite has one daemon and none of this.

use std::sync::Arc;

use crate::check::RunRecord;
use crate::incident::Incident;

pub use crate::check::DEFAULT_LOCATION;

/// A member alive now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub location: String,
}

/// This replica's view of the replicas sharing its store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cluster {
    /// This replica's member id (a UUID per process).
    pub me: String,
    pub location: String,
    /// The members alive, by id; this one among them once registered.
    pub members: Vec<Member>,
    /// Whether this replica holds the leader's lease (and runs the
    /// incident engine).
    pub leading: bool,
}

impl Cluster {
    /// The ids of the members alive at this replica's location, this one
    /// included even before its row is read back.
    pub fn peers(&self) -> Vec<String> {
        let mut peers: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.location == self.location)
            .map(|m| m.id.clone())
            .collect();
        if !peers.contains(&self.me) {
            peers.push(self.me.clone());
            peers.sort();
        }
        peers
    }

    /// Live members per location, by location.
    pub fn per_location(&self) -> std::collections::BTreeMap<&str, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for m in &self.members {
            *counts.entry(m.location.as_str()).or_default() += 1;
        }
        counts
    }
}

/// A check's latest run at one location (the run's) as the store has it,
/// whichever replica there ran it, with the check's counters there as
/// that run's transaction left them.
#[derive(Debug, Clone)]
pub struct Latest {
    pub run: Arc<RunRecord>,
    /// Failed runs in a row at the run's location, ending with this one
    /// (0 if it passed).
    pub failures: u32,
    /// Passed runs in a row, ending with this one (0 if it failed).
    pub passes: u32,
}

/// What a replica reads from the store every second: the checks whose
/// counters changed since the last read, the incidents open now and, on
/// the leader, the calls other replicas handed it.
#[derive(Debug, Clone, Default)]
pub struct Feed {
    pub latest: Vec<Latest>,
    pub open: Vec<Incident>,
    pub asks: Vec<Ask>,
    /// Whether this replica led when it read this: the first feed of a
    /// new leader holds every check's latest run, for its engine.
    pub leading: bool,
}

/// A resolve asked of a replica that does not lead, for the leader: its
/// answer goes back through the store ([`crate::store::Store::answer`]).
#[derive(Debug, Clone)]
pub struct Ask {
    pub id: i64,
    pub incident: String,
    pub note: Option<String>,
}
