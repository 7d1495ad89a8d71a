//! The fuzz targets' library: the entry points (entry.rs, shared with the
//! main crate's regression test) and what only a libFuzzer process needs
//! (crash.rs).

pub mod crash;
mod entry;

pub use entry::*;

/// Runs one fuzz input: `entry` on a thread with the daemon's stack size
/// and an alternate signal stack, so a stack overflow is reported with the
/// input saved.
pub fn fuzz(name: &str, entry: Entry, data: &[u8]) {
    on_daemon_stack(name, || {
        let _crash_stack = crash::AltStack::install();
        entry(data);
    });
}
