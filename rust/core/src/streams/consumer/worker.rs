//! The consumer's worker: follows the catalog, one receiver per producer.
//!
//! It starts a receiver (`receiver.rs`) for every peer whose signed entry
//! lists the stream and passes the ticket validators and `require`, and
//! cancels receivers whose producer left, went stale, stopped passing (a
//! changed entry, an expired ticket) or restarted (a new receiver
//! then dials the new run at once). A receiver that ended for good is tried
//! again only once its producer's entry changes (a restart, a re-announce)
//! or our tags or tickets do, so a gone stream is not dialled in a loop.
//! It wakes on discovery events, on `require`'s answers (asked off this loop, `verdicts.rs`) and once a
//! second; when the consumer or the node closes it cancels every receiver
//! and closes the delivery queue.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::FutureExt;
use iroh::EndpointId;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Shared, receiver::receive, verdicts::Verdicts};
use crate::{
    Digest,
    discovery::{PeerEntryVersion, SignedPeerEntry},
    tickets::Verdicts as TicketVerdicts,
};

/// How often the worker re-checks the catalog besides discovery events.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

struct Following {
    version: PeerEntryVersion,
    /// Our tags and tickets when the receiver started: the newest the
    /// producer can have judged us by (a change earns another try).
    ours: Digest,
    cancel: CancellationToken,
    /// Resolves to the producer's entry version as the receiver ended.
    task: JoinHandle<Option<PeerEntryVersion>>,
}

/// Keeps one receiver per eligible producer.
pub(super) async fn follow_producers(shared: Arc<Shared>) {
    let mut events = shared.discovery.subscribe();
    let stop = shared.discovery.cancel_token().clone();
    let mut following: HashMap<EndpointId, Following> = HashMap::new();
    // Producers whose receiver ended for good, with their entry's version
    // and our credentials then: a producer that refused us (10403) may
    // accept us once we hold another ticket or tag.
    let mut ended: HashMap<EndpointId, (PeerEntryVersion, Digest)> = HashMap::new();
    let mut verdicts = shared.config.require.clone().map(Verdicts::new);
    let mut tickets = TicketVerdicts::default();
    loop {
        let ours = shared.discovery.local().current().entry().credentials();
        let eligible = eligible_producers(&shared, &mut tickets, verdicts.as_mut());
        following.retain(|id, f| {
            if f.task.is_finished() {
                // The producer's entry as the receiver ended (not as it is
                // now: a producer started again on that node re-signs its
                // entry, maybe before we look): only a change after the end
                // earns a retry; ours as the receiver started.
                let version = (&mut f.task)
                    .now_or_never()
                    .and_then(Result::ok)
                    .flatten()
                    .unwrap_or(f.version);
                ended.insert(*id, (version, f.ours));
                return false;
            }
            // A producer that restarted (a new `started_at`) is dialled
            // afresh: the old link may be dead without either side knowing
            // until QUIC's idle timeout.
            let keep = eligible
                .get(id)
                .is_some_and(|e| e.entry().version.started_at_ms() == f.version.started_at_ms());
            if !keep {
                f.cancel.cancel();
            }
            keep
        });
        ended.retain(|id, _| eligible.contains_key(id));
        for (id, entry) in eligible {
            let version = entry.entry().version;
            if following.contains_key(&id) || ended.get(&id) == Some(&(version, ours)) {
                continue;
            }
            let cancel = shared.cancel.child_token();
            let addr = entry.entry().address.clone();
            let (receiving, producer) = (shared.clone(), cancel.clone());
            let task = tokio::spawn(async move {
                receive(receiving.clone(), addr, producer).await;
                receiving.discovery.get(&id).map(|e| e.entry().version)
            });
            following.insert(
                id,
                Following {
                    version,
                    ours,
                    cancel,
                    task,
                },
            );
        }
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            _ = stop.cancelled() => break,
            _ = events.recv() => {}
            _ = async { verdicts.as_mut().expect("a require").next_answer().await }, if verdicts.is_some() => {}
            _ = tokio::time::sleep(next_look(&tickets)) => {}
        }
    }
    for f in following.values() {
        f.cancel.cancel();
    }
    shared.queue.close();
}

/// When to reconcile at the latest: once a second, sooner when a followed
/// producer's ticket expires before that (never in a busy loop).
fn next_look(tickets: &TicketVerdicts) -> Duration {
    const SOONEST: Duration = Duration::from_millis(20);
    tickets
        .next_expiry()
        .and_then(|until| until.remaining())
        .map_or(RECONCILE_EVERY, |left| left.clamp(SOONEST, RECONCILE_EVERY))
}

/// Peers that list the stream and pass the ticket validators and `require`
/// (asked only about entries it has not seen, and not waited for here);
/// tickets are checked again once the granted expiry passed.
fn eligible_producers(
    shared: &Shared,
    tickets: &mut TicketVerdicts,
    verdicts: Option<&mut Verdicts>,
) -> HashMap<EndpointId, SignedPeerEntry> {
    let mut producers: HashMap<EndpointId, SignedPeerEntry> = shared
        .discovery
        .peers()
        .into_iter()
        .filter(|e| e.entry().streams.contains(&shared.config.stream_id))
        .map(|e| (e.entry().id(), e))
        .collect();
    if !shared.config.tickets.is_empty() {
        tickets.retain(|id| producers.contains_key(id));
        producers.retain(|_, e| tickets.check(&shared.config.tickets, e.entry()).is_ok());
    }
    if let Some(verdicts) = verdicts {
        verdicts.retain_accepted(&mut producers);
    }
    producers
}
