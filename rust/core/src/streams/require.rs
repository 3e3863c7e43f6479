//! `require`: a user predicate that decides which peers a stream deals with.
//!
//! A producer asks it about each consumer at subscribe time (10403
//! `NotAllowed` when it says no); a consumer asks it about each producer
//! whenever that producer's signed entry changes, and leaves producers it
//! no longer accepts. The predicate may block on a lock it does not own
//! (the Python GIL), so it runs on tokio's blocking pool, never on a worker.

use std::{fmt, sync::Arc};

use crate::discovery::SignedPeerEntry;

type Predicate = dyn Fn(&SignedPeerEntry) -> bool + Send + Sync;

#[derive(Clone)]
pub struct Require(Arc<Predicate>);

impl Require {
    pub fn new(predicate: impl Fn(&SignedPeerEntry) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(predicate))
    }

    /// The predicate's verdict on each entry, in order. A predicate that
    /// panics says no.
    pub async fn check_all(&self, entries: Vec<SignedPeerEntry>) -> Vec<bool> {
        let predicate = self.0.clone();
        let count = entries.len();
        tokio::task::spawn_blocking(move || entries.iter().map(|e| predicate(e)).collect())
            .await
            .unwrap_or_else(|_| vec![false; count])
    }

    pub async fn check(&self, entry: SignedPeerEntry) -> bool {
        self.check_all(vec![entry])
            .await
            .first()
            .copied()
            .unwrap_or(false)
    }
}

impl fmt::Debug for Require {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Require(..)")
    }
}
