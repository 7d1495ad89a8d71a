//! A stack overflow must reach libFuzzer's crash handler, which saves the
//! input. Under a C `main` Rust installs no overflow handler, and a handler
//! that runs on the overflowed stack itself faults: the process would die of
//! a bare SIGSEGV and the input would be lost. So the handler runs on an
//! alternate signal stack, which each input's thread sets up.

/// Before libFuzzer installs its handlers (from `fuzz_target!`'s
/// `init`): marks SIGSEGV and SIGBUS as handled on the alternate stack,
/// a flag libFuzzer keeps when it replaces the default action.
pub fn init() {
    for signal in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: a zeroed sigaction with SIG_DFL is a valid argument,
        // and this runs once, before any other thread exists.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            action.sa_flags = libc::SA_ONSTACK;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// The current thread's alternate signal stack, removed on drop.
pub struct AltStack {
    /// Held, never read: the kernel writes the handler's frames here.
    _memory: Vec<u8>,
}

/// Room for libFuzzer's handler: it prints a report and writes the input.
const SIZE: usize = 256 * 1024;

impl AltStack {
    pub fn install() -> AltStack {
        let mut memory = vec![0u8; SIZE];
        let stack = libc::stack_t {
            ss_sp: memory.as_mut_ptr().cast(),
            ss_flags: 0,
            ss_size: SIZE,
        };
        // SAFETY: `memory` outlives the registration, which drop removes.
        unsafe { libc::sigaltstack(&stack, std::ptr::null_mut()) };
        AltStack { _memory: memory }
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let off = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: disabling the current thread's alternate stack.
        unsafe { libc::sigaltstack(&off, std::ptr::null_mut()) };
    }
}
