//! Counters and channel state, as users see them (never on the wire).

use std::sync::atomic::{AtomicU64, Ordering};

/// Datums and payload bytes, counted as mosaik counts them (encoded bytes).
#[derive(Debug, Default)]
pub struct Stats {
    datums: AtomicU64,
    bytes: AtomicU64,
}

impl Stats {
    pub fn record(&self, bytes: usize) {
        self.datums.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn datums(&self) -> u64 {
        self.datums.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// How many channels are connected, with a way to wait for a minimum.
#[derive(Debug)]
pub struct Connected {
    count: tokio::sync::watch::Sender<usize>,
}

impl Default for Connected {
    fn default() -> Self {
        Self {
            count: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl Connected {
    pub fn get(&self) -> usize {
        *self.count.borrow()
    }

    pub fn up(&self) {
        self.count.send_modify(|n| *n += 1);
    }

    pub fn down(&self) {
        self.count.send_modify(|n| *n = n.saturating_sub(1));
    }

    /// Resolves once at least `minimum` channels are connected.
    pub async fn at_least(&self, minimum: usize) {
        let _ = self.count.subscribe().wait_for(|n| *n >= minimum).await;
    }
}
