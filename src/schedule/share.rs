//! Which replica runs a check: the members alive at one location split the
//! checks by rendezvous (highest random weight) hashing. Each member's
//! weight for a check is the first 8 bytes of SHA-256 over its id, a
//! newline and the check's name, read big-endian; the heaviest member
//! owns the check. A stable hash, pinned by a test vector, so replicas of
//! different versions agree; and when a member comes or goes, only the
//! checks it gains or had move.

use sha2::{Digest as _, Sha256};

/// `member`'s weight for `check`.
pub fn weight(member: &str, check: &str) -> u64 {
    let mut hash = Sha256::new();
    hash.update(member.as_bytes());
    hash.update(b"\n");
    hash.update(check.as_bytes());
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The member of `members` that runs `check` (ties, never seen in
/// practice, go to the greater id).
pub fn owner<'a>(check: &str, members: &'a [String]) -> Option<&'a str> {
    members
        .iter()
        .max_by_key(|m| (weight(m, check), m.as_str()))
        .map(String::as_str)
}

/// This replica's share: which checks it runs. The default, a replica
/// alone at the default location, runs every check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Share {
    me: String,
    /// The members alive at this replica's location, this one included.
    peers: Vec<String>,
    /// This replica's location; empty: the default one.
    location: String,
}

impl Share {
    pub fn new(me: String, peers: Vec<String>) -> Share {
        Share {
            me,
            peers,
            location: String::new(),
        }
    }

    /// The same share, at `location`.
    pub fn at(mut self, location: &str) -> Share {
        location.clone_into(&mut self.location);
        self
    }

    /// Whether this replica runs `check`: its location is one the check
    /// names, and the check is this replica's among its location's.
    pub fn runs(&self, check: &crate::check::Check) -> bool {
        let location = match self.location.as_str() {
            "" => crate::check::DEFAULT_LOCATION,
            l => l,
        };
        check.runs_at(location) && self.owns(&check.name)
    }

    /// Whether this replica runs `check`.
    pub fn owns(&self, check: &str) -> bool {
        self.peers.len() <= 1 || owner(check, &self.peers) == Some(self.me.as_str())
    }

    /// How many replicas share the checks.
    pub fn peers(&self) -> usize {
        self.peers.len().max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0b0c6f2e-5a54-4a8e-9d43-2b1f5f0d4c11";
    const B: &str = "7d1e3b9a-0f44-4c2b-8e65-9a3f1c2d5e77";
    const C: &str = "c4f2a8d1-93b6-4e0f-a1d7-5b8e2c6f9a30";

    /// Computed with Python's hashlib, not with this code: a change of the
    /// hash would move every check between replicas of different versions.
    #[test]
    fn weights_match_the_pinned_vector() {
        assert_eq!(weight(A, "weather"), 0xc55c_a76c_5475_3020);
        assert_eq!(weight(B, "weather"), 0x8fc9_9ccc_b206_b88d);
        assert_eq!(weight(C, "weather"), 0xdf5a_e08c_4f51_da1c);
        assert_eq!(weight(A, "diesel-order"), 0x4825_b930_15cc_fcba);
        assert_eq!(weight(B, "diesel-order"), 0xba8c_7e5f_1635_34f5);
        assert_eq!(weight(C, "diesel-order"), 0xd50f_33d5_0d4b_f758);
        assert_eq!(weight(A, "mitglieder-login-ü"), 0x2e7c_4d26_2545_1e20);
    }

    #[test]
    fn the_heaviest_member_owns_a_check() {
        let three = [A, B, C].map(String::from);
        assert_eq!(owner("weather", &three), Some(C));
        assert_eq!(owner("diesel-order", &three), Some(C));
        let two = [A, B].map(String::from);
        assert_eq!(owner("weather", &two), Some(A));
        assert_eq!(owner("diesel-order", &two), Some(B));
        assert_eq!(owner("weather", &[]), None);
    }

    /// Every check has exactly one owner, the load is about even, and a
    /// member leaving moves only its own checks.
    #[test]
    fn checks_split_evenly_and_only_a_leavers_move() {
        let three = [A, B, C].map(String::from);
        let shares: Vec<Share> = three
            .iter()
            .map(|me| Share::new(me.clone(), three.to_vec()))
            .collect();
        let names: Vec<String> = (0..3000).map(|i| format!("check-{i}")).collect();
        let mut counts = [0usize; 3];
        for name in &names {
            let owners: Vec<usize> = (0..3).filter(|&i| shares[i].owns(name)).collect();
            assert_eq!(owners.len(), 1, "{name}: {owners:?}");
            counts[owners[0]] += 1;
        }
        for n in counts {
            assert!((850..=1150).contains(&n), "{counts:?}");
        }
        let two = [A, B].map(String::from);
        for name in &names {
            let before = owner(name, &three).unwrap();
            let after = owner(name, &two).unwrap();
            if before != C {
                assert_eq!(before, after, "{name} moved though its owner stayed");
            }
        }
    }

    #[test]
    fn a_replica_alone_runs_everything() {
        assert!(Share::default().owns("weather"));
        assert!(Share::new(A.into(), vec![A.into()]).owns("weather"));
        assert!(!Share::new(A.into(), [A, B, C].map(String::from).to_vec()).owns("weather"));
    }
}
