//! Discovery events, as `events()` subscribers see them.

use super::entry::SignedPeerEntry;

#[derive(Clone, Debug)]
pub enum Event {
    /// A peer we did not know (or had seen depart) appeared.
    Discovered(SignedPeerEntry),
    /// A known peer published a newer entry.
    Updated(SignedPeerEntry),
    /// A peer said goodbye or went stale; this is its last entry.
    Departed(SignedPeerEntry),
}

impl Event {
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Discovered(_) => "discovered",
            Event::Updated(_) => "updated",
            Event::Departed(_) => "departed",
        }
    }

    pub fn entry(&self) -> &SignedPeerEntry {
        match self {
            Event::Discovered(e) | Event::Updated(e) | Event::Departed(e) => e,
        }
    }
}
