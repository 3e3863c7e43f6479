//! `Gate`: keeps one admitted peer under its validators for as long as a
//! subscription or bond with it lasts.
//!
//! The peer is checked again when its entry changes (a removed or renewed
//! ticket reaches us by gossip, catalog sync or a bond's `PeerEntryUpdate`,
//! all of which update the catalog) and when the expiry it was granted
//! comes. Unlike mosaik's producer, which drops a subscription at expiry
//! without looking again, a renewed ticket keeps the peer; unlike mosaik's
//! producer, removing a ticket ends the subscription.

use std::sync::Arc;

use iroh::EndpointId;
use tokio::{sync::broadcast, time::Instant};
use tracing::debug;

use super::{Expiration, InvalidTicket, TicketValidator, validate_peer};
use crate::discovery::{Discovery, Event, PeerEntry};

pub struct Gate {
    validators: Arc<[Arc<dyn TicketValidator>]>,
    discovery: Discovery,
    peer: EndpointId,
    /// When to check again; `None` once nothing can expire.
    until: Option<Instant>,
    /// Catalog changes, only while there is something to check.
    events: Option<broadcast::Receiver<Event>>,
}

impl Gate {
    /// Checks `peer` now; `Err` refuses it, `Ok` watches it from here on.
    pub fn admit(
        validators: Arc<[Arc<dyn TicketValidator>]>,
        discovery: &Discovery,
        peer: &PeerEntry,
    ) -> Result<Self, InvalidTicket> {
        let granted = validate_peer(&validators, peer)?;
        let events = (!validators.is_empty()).then(|| discovery.subscribe());
        Ok(Self {
            validators,
            discovery: discovery.clone(),
            peer: peer.id(),
            until: deadline(granted),
            events,
        })
    }

    /// Resolves once the peer is no longer authorized: its tickets expired
    /// or changed and no longer pass. Never resolves when nothing is
    /// required. Cancel-safe.
    pub async fn revoked(&mut self) -> InvalidTicket {
        let Some(events) = self.events.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            let expired = async {
                match self.until {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = expired => {}
                event = events.recv() => match event {
                    Ok(Event::Updated(entry) | Event::Discovered(entry)) if entry.entry().id() == self.peer => {}
                    Ok(_) => continue,
                    // Missed some: look at the latest entry anyway.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
                },
            }
            let Some(latest) = self.discovery.get(&self.peer) else {
                // Gone from the catalog: whoever follows it ends on that.
                self.until = None;
                continue;
            };
            match validate_peer(&self.validators, latest.entry()) {
                Ok(granted) => {
                    debug!(peer = %self.peer.fmt_short(), ?granted, "tickets checked again");
                    self.until = deadline(granted);
                }
                Err(refusal) => return refusal,
            }
        }
    }
}

/// When a grant must be looked at again.
fn deadline(granted: Option<Expiration>) -> Option<Instant> {
    granted
        .and_then(|until| until.remaining())
        .map(|left| Instant::now() + left)
}
