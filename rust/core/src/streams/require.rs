//! `require`: a user predicate that decides which peers a stream deals with.
//!
//! A producer asks it about each consumer at subscribe time (10403
//! `NotAllowed` when it says no); a consumer asks it about each producer
//! whenever that producer's signed entry changes, and leaves producers it
//! no longer accepts. The predicate may block on a lock it does not own
//! (the Python GIL), so it runs on tokio's blocking pool, never on a worker.
//!
//! That pool also completes every call the Python binding awaits, so a
//! slow predicate must not take it over: each producer and each consumer
//! runs at most [`MAX_PENDING_CHECKS`] evaluations at once (a permit each,
//! held until the predicate returns), and waits [`REQUIRE_TIMEOUT`] for an
//! answer. A predicate cannot be interrupted: one that never returns keeps
//! its thread and its permit, and only its caller's capacity shrinks.

use std::{fmt, sync::Arc, time::Duration};

use tokio::sync::OwnedSemaphorePermit;

use crate::discovery::SignedPeerEntry;

/// Predicate evaluations one producer or consumer runs at once.
pub const MAX_PENDING_CHECKS: usize = 16;

/// How long a verdict is awaited; no answer by then counts as no.
pub const REQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

type Predicate = dyn Fn(&SignedPeerEntry) -> bool + Send + Sync;

#[derive(Clone)]
pub struct Require(Arc<Predicate>);

impl Require {
    pub fn new(predicate: impl Fn(&SignedPeerEntry) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(predicate))
    }

    /// The predicate's verdict on `entry`, or `None` if it did not answer
    /// within `timeout`. A predicate that panics says no. `permit` is held
    /// until the predicate returns, even past the timeout, so a hung
    /// predicate still counts against its caller's evaluations.
    pub async fn check_within(
        &self,
        entry: SignedPeerEntry,
        timeout: Duration,
        permit: OwnedSemaphorePermit,
    ) -> Option<bool> {
        let predicate = self.0.clone();
        let verdict = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            predicate(&entry)
        });
        match tokio::time::timeout(timeout, verdict).await {
            Ok(verdict) => Some(verdict.unwrap_or(false)),
            Err(_) => None,
        }
    }
}

impl fmt::Debug for Require {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Require(..)")
    }
}
