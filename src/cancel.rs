//! Cooperative cancellation: Ctrl-C or SIGTERM asks the work in flight to stop at the next safe
//! point (between documents, paragraphs and generated tokens), so nothing half-done is written.
//!
//! Not for: cleaning up (atomic writes mean there is nothing to clean) or reporting (the
//! pipeline reports what was done and what was abandoned).

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks everything in flight to stop.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// `Err(Error::Interrupted)` once a stop was asked for.
pub fn check() -> crate::Result<()> {
    if requested() {
        Err(crate::Error::Interrupted)
    } else {
        Ok(())
    }
}
