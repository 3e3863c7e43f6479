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
