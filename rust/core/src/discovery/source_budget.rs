//! `SourceBudgets`: how many new peers each source may add to the catalog
//! per window. A source is the peer that handed us the entries (the other
//! side of a catalog sync, or the gossip neighbour that delivered them), so
//! one member signing 100k fresh identities adds at most
//! `max_new_entries_per_source` of them per `new_entries_window`, and the
//! rest are refused before their signatures are checked. Updates of peers we
//! hold are not limited: they cannot grow the catalog.

use std::{collections::HashMap, time::Duration};

use iroh::EndpointId;
use tokio::time::Instant;

/// Sources tracked at once. A flood from fresh source ids beyond it shares
/// one budget, so the map stays bounded whatever the number of sources.
const MAX_SOURCES: usize = 4096;

pub struct SourceBudgets {
    per_source: usize,
    window: Duration,
    /// Each source's window start and the new peers taken in it.
    used: HashMap<EndpointId, (Instant, usize)>,
    /// The budget shared by sources over `MAX_SOURCES`.
    overflow: (Instant, usize),
}

impl SourceBudgets {
    pub fn new(per_source: usize, window: Duration) -> Self {
        Self {
            per_source,
            window,
            used: HashMap::new(),
            overflow: (Instant::now(), 0),
        }
    }

    /// Takes one new peer from `source`'s budget; false once it is spent.
    pub fn take(&mut self, source: EndpointId, now: Instant) -> bool {
        if !self.used.contains_key(&source) && self.used.len() >= MAX_SOURCES {
            let window = self.window;
            self.used
                .retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let slot = if self.used.contains_key(&source) || self.used.len() < MAX_SOURCES {
            self.used.entry(source).or_insert((now, 0))
        } else {
            &mut self.overflow
        };
        if now.duration_since(slot.0) >= self.window {
            *slot = (now, 0);
        }
        if slot.1 >= self.per_source {
            return false;
        }
        slot.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use iroh::SecretKey;

    use super::*;

    fn id(seed: u8) -> EndpointId {
        SecretKey::from_bytes(&[seed; 32]).public()
    }

    #[test]
    fn each_source_gets_its_budget_per_window() {
        let mut budgets = SourceBudgets::new(3, Duration::from_secs(60));
        let start = Instant::now();
        let taken = (0..10).filter(|_| budgets.take(id(1), start)).count();
        assert_eq!(taken, 3);
        assert!(budgets.take(id(2), start), "another source has its own budget");
        assert!(!budgets.take(id(1), start + Duration::from_secs(59)));
        assert!(
            budgets.take(id(1), start + Duration::from_secs(60)),
            "a new window"
        );
    }

    #[test]
    fn sources_beyond_the_bound_share_one_budget() {
        let mut budgets = SourceBudgets::new(1, Duration::from_secs(60));
        let now = Instant::now();
        let keys: Vec<EndpointId> = (0..MAX_SOURCES + 10)
            .map(|i| SecretKey::from_bytes(&blake3::hash(&i.to_be_bytes()).into()).public())
            .collect();
        let taken = keys.iter().filter(|k| budgets.take(**k, now)).count();
        assert_eq!(taken, MAX_SOURCES + 1);
        assert_eq!(budgets.used.len(), MAX_SOURCES);
    }
}
