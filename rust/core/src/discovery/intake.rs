//! Intake: how entries enter the catalog, from gossip one at a time
//! ([`Discovery::ingest`]) or from a catalog sync as a batch
//! ([`Discovery::merge_snapshot`]).
//!
//! Every entry passes, in this order: the size bound, the catalog's rules
//! (network, freshness, newer than what we hold), and for a peer we do not
//! hold, the catalog's room and its source's budget (`source_budget.rs`).
//! Only then is a snapshot entry's signature checked, since verifying costs
//! far more than all the rest; a link whose entries fail it
//! `max_forged_per_link` times is not verified further (the sync closes it
//! with 400). A batch takes the catalog lock twice, not once per entry, and
//! refusals are tallied and recorded once per reason.

use std::collections::BTreeMap;

use iroh::{EndpointId, endpoint_info::EndpointInfo};
use tokio::time::Instant;
use tracing::debug;

use super::{
    catalog::{Catalog, Fresh, Source, Upsert},
    entry::{PeerEntry, SignedPeerEntry, now_ms},
    event::Event,
    rejection::Rejection,
    service::Discovery,
    source_budget::SourceBudgets,
    sync::{Merged, Snapshot},
    sync_queue::Learned,
};

/// Largest entry we take. mosaik frames have no limit, and an honest peer
/// may carry many tickets (tests/test_tickets.py: 1000 JWTs, ~300 KB), so
/// this is well above our ping frame; the catalog's memory is bounded by
/// `max_catalog_entries` times this (a total-bytes budget is still to come).
pub const MAX_ENTRY_BYTES: usize = 512 * 1024;

/// Refusals of one batch, by reason, recorded together.
#[derive(Default)]
struct Tally(BTreeMap<Rejection, u64>);

impl Tally {
    fn add(&mut self, reason: Rejection) {
        // Echoes of our own entry and copies we already hold are everyday
        // traffic, not refusals worth a count.
        if !matches!(reason, Rejection::OwnEntry | Rejection::NotNewer) {
            *self.0.entry(reason).or_default() += 1;
        }
    }
}

/// The admission state of one batch: the catalog's free places left and the
/// budgets, both held under the catalog lock.
struct Admission<'a> {
    catalog: &'a Catalog,
    budgets: &'a mut SourceBudgets,
    room: usize,
    now_ms: i64,
    now: Instant,
}

impl Admission<'_> {
    /// Whether `entry` (of `wire_len` bytes, from `from`) may be taken,
    /// signature aside; a new peer takes a place and a unit of budget.
    fn admit(
        &mut self,
        entry: &PeerEntry,
        wire_len: usize,
        from: Option<EndpointId>,
    ) -> Result<(), Rejection> {
        if wire_len > MAX_ENTRY_BYTES {
            return Err(Rejection::OversizedEntry);
        }
        match self.catalog.classify(entry, self.now_ms)? {
            Fresh::Newer => Ok(()),
            Fresh::New if self.room == 0 => Err(Rejection::CatalogFull),
            Fresh::New => {
                if let Some(source) = from
                    && !self.budgets.take(source, self.now)
                {
                    return Err(Rejection::SourceBudget);
                }
                self.room -= 1;
                Ok(())
            }
        }
    }
}

impl Discovery {
    fn admission<R>(&self, admit: impl FnOnce(&mut Admission<'_>) -> R) -> R {
        let catalog = self.inner.catalog.lock().expect("catalog");
        let mut budgets = self.inner.budgets.lock().expect("budgets");
        let mut admission = Admission {
            room: self
                .inner
                .config
                .max_catalog_entries
                .saturating_sub(catalog.len(now_ms())),
            catalog: &catalog,
            budgets: &mut budgets,
            now_ms: now_ms(),
            now: Instant::now(),
        };
        admit(&mut admission)
    }

    /// Applies the rules and budgets to one verified entry (gossip) and,
    /// if it is taken, makes it known everywhere it matters.
    pub fn ingest(&self, entry: SignedPeerEntry, source: Source, from: Option<EndpointId>) -> Upsert {
        if source == Source::Gossip {
            let drift = self.inner.config.max_time_drift.as_millis() as i64;
            if entry.entry().version.updated_at_ms() < now_ms() - drift {
                // Not hostile: a slow network relays old copies of honest
                // entries. Counted, and only logged at debug level.
                self.inner.rejections.count(Rejection::Stale, 1);
                debug!(
                    peer = ?from.map(|p| p.fmt_short().to_string()),
                    "gossiped entry older than the drift bound ignored"
                );
                return Upsert::Rejected(Rejection::Stale);
            }
        }
        self.make_room_if_sent_by_itself(entry.entry(), from);
        let admitted = self.admission(|a| a.admit(entry.entry(), entry.wire().len(), from));
        if let Err(reason) = admitted {
            let mut tally = Tally::default();
            tally.add(reason);
            self.record(tally, from);
            return Upsert::Rejected(reason);
        }
        let mut tally = Tally::default();
        let entry_id = entry.entry().id();
        let outcome = self
            .take(vec![entry], None, Learned::FromOthers, &mut tally)
            .pop()
            .unwrap_or(Upsert::Rejected(Rejection::NotNewer));
        self.confirm_if_sent_by_itself(entry_id, from);
        self.record(tally, from);
        outcome
    }

    /// Merges a snapshot `from` sent: admits, verifies what was admitted
    /// (until `max_forged_per_link` signatures failed), then stores.
    /// Blocking work for a big snapshot: call it off the async workers.
    pub(crate) fn merge_snapshot(&self, snapshot: Snapshot, from: EndpointId, learned: Learned) -> Merged {
        let mut tally = Tally::default();
        if snapshot.truncated {
            tally.add(Rejection::OversizedSnapshot);
        }
        if let Some(own) = snapshot.entries.iter().find(|e| e.entry().id() == from) {
            self.make_room_if_sent_by_itself(own.entry(), Some(from));
        }
        let admitted: Vec<_> = self.admission(|a| {
            snapshot
                .entries
                .into_iter()
                .filter(|e| {
                    a.admit(e.entry(), e.wire().len(), Some(from))
                        .map_err(|r| tally.add(r))
                        .is_ok()
                })
                .collect()
        });
        let max_forged = self.inner.config.max_forged_per_link;
        let mut forged = 0;
        let mut verified = Vec::with_capacity(admitted.len());
        for entry in admitted {
            if forged == max_forged {
                break;
            }
            match entry.verify() {
                Ok(entry) => verified.push(entry),
                Err(_) => {
                    forged += 1;
                    tally.add(Rejection::ForgedSignature);
                }
            }
        }
        let taken = self
            .take(verified, Some(from), learned, &mut tally)
            .into_iter()
            .filter(|outcome| matches!(outcome, Upsert::New | Upsert::Updated))
            .count();
        self.confirm_if_sent_by_itself(from, Some(from));
        self.record(tally, Some(from));
        Merged {
            taken,
            forged_limit_reached: forged == max_forged,
        }
    }

    /// Stores admitted, verified entries; then, outside the lock, makes the
    /// taken ones dialable, announces them and queues syncs with new peers
    /// (except `exchanging_with`, the peer whose snapshot this is).
    fn take(
        &self,
        entries: Vec<SignedPeerEntry>,
        exchanging_with: Option<EndpointId>,
        learned: Learned,
        tally: &mut Tally,
    ) -> Vec<Upsert> {
        let now = now_ms();
        let outcomes: Vec<(SignedPeerEntry, Upsert)> = {
            let mut catalog = self.inner.catalog.lock().expect("catalog");
            entries
                .into_iter()
                .map(|entry| {
                    let outcome = catalog.upsert(entry.clone(), now);
                    (entry, outcome)
                })
                .collect()
        };
        let mut any_new = false;
        for (entry, outcome) in &outcomes {
            let event = match outcome {
                Upsert::Rejected(reason) => {
                    tally.add(*reason);
                    continue;
                }
                Upsert::New => Event::Discovered(entry.clone()),
                Upsert::Updated => Event::Updated(entry.clone()),
            };
            let address = &entry.entry().address;
            self.inner
                .lookup
                .add_endpoint_info(EndpointInfo::from(address.clone()));
            if *outcome == Upsert::New {
                any_new = true;
                debug!(peer = %address.id.fmt_short(), "peer discovered");
                if Some(address.id) == exchanging_with {
                    // We are exchanging catalogs with it right now.
                    self.mark_synced(address.id);
                } else {
                    self.observe(address, learned);
                }
            }
            let _ = self.inner.events.send(event);
        }
        if any_new {
            self.publish_count();
        }
        outcomes.into_iter().map(|(_, outcome)| outcome).collect()
    }

    /// A peer's entry sent by the peer itself (its key authenticated the
    /// connection) gets a place even in a full catalog: see `Catalog`.
    fn make_room_if_sent_by_itself(&self, entry: &PeerEntry, from: Option<EndpointId>) {
        if from != Some(entry.id()) {
            return;
        }
        let evicted = self
            .inner
            .catalog
            .lock()
            .expect("catalog")
            .make_room_for_confirmed(entry, now_ms());
        if let Some(evicted) = evicted {
            debug!(peer = %evicted.entry().id().fmt_short(), "unconfirmed entry evicted for a live peer");
            self.forget(evicted);
        }
    }

    fn confirm_if_sent_by_itself(&self, id: EndpointId, from: Option<EndpointId>) {
        if from == Some(id) {
            self.inner.catalog.lock().expect("catalog").confirm(id);
        }
    }

    fn record(&self, tally: Tally, from: Option<EndpointId>) {
        for (reason, n) in tally.0 {
            self.inner.rejections.record(reason, n, from, &"entries refused");
        }
    }
}
