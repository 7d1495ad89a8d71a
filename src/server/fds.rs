//! The process's open-file limit, which every connection (the server's and
//! the checks') draws from. Raised to the hard limit at start, so a low
//! default soft limit (1,024 on many systems) does not become the daemon's.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises the soft `RLIMIT_NOFILE` to the hard one and answers the soft
/// limit now in force (`None`: unlimited).
pub fn raise_open_files() -> Option<u64> {
    let lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        let raised = Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        // Linux refuses an unlimited soft limit for open files: the soft
        // limit then stays as it was.
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return lim.maximum;
        }
    }
    lim.current
}

/// The connections the server accepts at once: a quarter of the open-file
/// limit, so the other three quarters stay for the checks, the store and the
/// watch. Bounded on both sides: an unlimited limit still gets a cap, a
/// tiny one still lets `/healthz` in.
pub fn connection_cap(open_files: Option<u64>) -> usize {
    const FLOOR: u64 = 16;
    const CEILING: u64 = 16_384;
    (open_files.unwrap_or(u64::MAX) / 4).clamp(FLOOR, CEILING) as usize
}

/// Accept failed because the process or the system is out of descriptors
/// or buffers: waiting helps, retrying at once would spin.
pub fn exhausted(e: &std::io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        Errno::from_io_error(e),
        Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_a_quarter_of_the_limit_within_bounds() {
        assert_eq!(connection_cap(Some(1024)), 256);
        assert_eq!(connection_cap(Some(20)), 16);
        assert_eq!(connection_cap(Some(1 << 40)), 16_384);
        assert_eq!(connection_cap(None), 16_384);
    }

    #[test]
    fn running_out_of_descriptors_is_told_from_a_reset() {
        assert!(exhausted(&rustix::io::Errno::MFILE.into()));
        assert!(!exhausted(&rustix::io::Errno::CONNABORTED.into()));
    }
}
