//! State a feature shares between its handlers and the break/fix switches: each feature owns
//! its own, and the site composes them (axum's `FromRef`), so no feature imports the site.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A value behind a lock; clones share it.
#[derive(Default)]
pub(super) struct Shared<T>(Arc<Mutex<T>>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Shared<T> {
    /// No handler panics while holding a lock, but if one ever did, the demo
    /// should keep serving rather than fail every later request.
    pub(super) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: Copy> Shared<T> {
    pub(super) fn get(&self) -> T {
        *self.lock()
    }

    pub(super) fn set(&self, value: T) {
        *self.lock() = value;
    }
}
