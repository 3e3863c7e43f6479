//! Admission: the producer's worker that decides which subscriptions to serve.
//!
//! The acceptor (`streams/accept.rs`) hands each subscription here. In
//! mosaik's order, it is refused when the producer is full
//! (`max_consumers`, 10509), and then, beyond mosaik, when the consumer's
//! peer already holds `max_subscriptions_per_peer` subscriptions (10509:
//! one peer opening a thousand subscriptions would otherwise be served a
//! thousand times) or when the producer already runs its most `require`
//! evaluations (10509). What passes is checked on a task of its own: the
//! consumer's tickets, then `require` (10403 for no; 10509 when it does not
//! answer in time), so a slow predicate never holds up this worker. Only
//! then does it become an outlet (counted toward `max_consumers`, capacity
//! checked again) with a sender (`sender.rs`). Refusals are counted by
//! reason and closed without holding up the next subscription.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use iroh::EndpointId;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::debug;

use super::{Outlet, SUBSCRIPTION_CLOSE_GRACE, Shared, Subscribe, outbox::Outbox, sender::run_sender};
use crate::{
    discovery::SignedPeerEntry,
    network::{CloseReason, Link},
    streams::{
        protocol::StreamsProtocol,
        refusal::Refusal,
        require::{MAX_PENDING_CHECKS, REQUIRE_TIMEOUT},
    },
    tickets::Gate,
};

/// Subscriptions per peer, admitted or being checked.
#[derive(Debug, Default)]
pub(super) struct PeerSlots(Mutex<HashMap<EndpointId, usize>>);

/// One subscription's place among its peer's; given back on drop (when
/// the subscription is refused or its sender ends).
pub(super) struct PeerSlot {
    slots: Arc<PeerSlots>,
    peer: EndpointId,
}

impl PeerSlots {
    fn claim(self: &Arc<Self>, peer: EndpointId, most: usize) -> Option<PeerSlot> {
        let mut held = self.0.lock().expect("peer slots");
        let count = held.entry(peer).or_default();
        if *count >= most {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            slots: self.clone(),
            peer,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut held = self.slots.0.lock().expect("peer slots");
        if let Some(count) = held.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.peer);
            }
        }
    }
}

/// Admits subscriptions handed over by the acceptor; on close, stops them
/// all gracefully.
pub(super) async fn admit(shared: Arc<Shared>, mut subscribe: mpsc::Receiver<Subscribe>) {
    let checks = Arc::new(Semaphore::new(MAX_PENDING_CHECKS));
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            Some((link, consumer)) = subscribe.recv() => consider(&shared, &checks, link, consumer),
        }
    }
    // Closing is graceful: each sender still writes what its outbox holds
    // (what `send` accepted), within a bound, then ends with 204.
    let mut outlets = shared.outlets.lock().expect("outlets");
    outlets.closed = true;
    for outlet in outlets.list.iter_mut() {
        outlet.stop(CloseReason::GracefulShutdown);
    }
}

/// Refuses at once what the producer cannot take; hands the rest to a
/// task that checks the consumer.
fn consider(
    shared: &Arc<Shared>,
    checks: &Arc<Semaphore>,
    link: Link<StreamsProtocol>,
    consumer: SignedPeerEntry,
) {
    let config = &shared.config;
    let peer = consumer.entry().id();
    if shared.outlets.lock().expect("outlets").live() >= config.max_consumers {
        return refuse_later(shared, link, Refusal::NoCapacity);
    }
    let Some(slot) = shared.peer_slots.claim(peer, config.max_subscriptions_per_peer) else {
        return refuse_later(shared, link, Refusal::PeerLimit);
    };
    let permit = match &config.require {
        None => None,
        Some(_) => match checks.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => return refuse_later(shared, link, Refusal::RequireBusy),
        },
    };
    tokio::spawn(vet(shared.clone(), link, consumer, slot, permit));
}

/// Checks the consumer's tickets and `require`, then admits it.
async fn vet(
    shared: Arc<Shared>,
    link: Link<StreamsProtocol>,
    consumer: SignedPeerEntry,
    slot: PeerSlot,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    let gate = match Gate::admit(shared.config.tickets.clone(), &shared.discovery, consumer.entry()) {
        Ok(gate) => gate,
        Err(refusal) => {
            debug!(peer = %slot.peer.fmt_short(), %refusal, "consumer's tickets refused");
            return refuse(&shared, link, Refusal::Ticket).await;
        }
    };
    if let (Some(require), Some(permit)) = (&shared.config.require, permit) {
        let verdict = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = link.connection().closed() => return,
            verdict = require.check_within(consumer.clone(), REQUIRE_TIMEOUT, permit) => verdict,
        };
        match verdict {
            Some(true) => {}
            Some(false) => return refuse(&shared, link, Refusal::Require).await,
            None => return refuse(&shared, link, Refusal::RequireTimeout).await,
        }
    }
    let admitted = {
        let mut outlets = shared.outlets.lock().expect("outlets");
        if outlets.closed {
            return;
        }
        (outlets.live() < shared.config.max_consumers).then(|| {
            let outbox = Arc::new(Outbox::new(shared.config.buffer_size));
            let (stop, stopped) = oneshot::channel();
            outlets.list.push(Outlet {
                outbox: outbox.clone(),
                stop: Some(stop),
            });
            (outbox, stopped)
        })
    };
    match admitted {
        Some((outbox, stopped)) => run_sender(shared, link, slot.peer, gate, outbox, stopped).await,
        None => refuse(&shared, link, Refusal::NoCapacity).await,
    }
    drop(slot);
}

/// The close code a producer's refusal sends.
fn close_reason(refusal: Refusal) -> CloseReason {
    match refusal {
        Refusal::NoCapacity | Refusal::PeerLimit | Refusal::RequireBusy | Refusal::RequireTimeout => {
            CloseReason::NoCapacity
        }
        Refusal::Require | Refusal::Ticket | Refusal::TicketRevoked => CloseReason::NotAllowed,
    }
}

/// Counts `refusal` and closes `link` with its code, giving the consumer
/// time to read it.
async fn refuse(shared: &Shared, link: Link<StreamsProtocol>, refusal: Refusal) {
    shared.refusals.record(refusal);
    debug!(peer = %link.remote_id().fmt_short(), reason = refusal.name(), "subscription refused");
    link.close(close_reason(refusal), SUBSCRIPTION_CLOSE_GRACE).await;
}

/// `refuse` on a task of its own: the admission worker does not wait for
/// the consumer to read the close.
fn refuse_later(shared: &Arc<Shared>, link: Link<StreamsProtocol>, refusal: Refusal) {
    let shared = shared.clone();
    tokio::spawn(async move { refuse(&shared, link, refusal).await });
}
