//! The sender: one task per subscription, writing a consumer's outbox to its link.
//!
//! The admission worker (`admission.rs`) starts it with a link it admitted
//! and the consumer's ticket gate. It sends `StartStream`, marks the channel
//! connected and then writes every run of frames `send` queued in its
//! [`Outbox`] as one chunk each, until the producer stops it (10413
//! `TooSlow`, 204 `GracefulShutdown`), the consumer's tickets expire or
//! stop passing (10403), or the consumer goes. A graceful stop still writes what is queued, within a
//! bound, before the 204. However it ends, the outbox closes, so `send`
//! stops queueing for this consumer.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use iroh::EndpointId;
use tokio::sync::oneshot;
use tracing::debug;

use super::{SUBSCRIPTION_CLOSE_GRACE, Shared, outbox::Outbox};
use crate::{
    network::{CloseReason, Link, LinkError, frames::FrameRun},
    streams::{handshake::StartStream, protocol::StreamsProtocol, refusal::Refusal, status::Channel},
    tickets::Gate,
};

/// Frames a sender takes from its outbox at once (whole runs, so it may
/// take more): what is written before it looks for a stop again.
const MAX_COALESCED: usize = 256;
/// Bound on delivering what was accepted before a graceful close.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

pub(super) async fn run_sender(
    shared: Arc<Shared>,
    mut link: Link<StreamsProtocol>,
    peer: EndpointId,
    mut gate: Gate,
    outbox: Arc<Outbox>,
    mut stop: oneshot::Receiver<CloseReason>,
) {
    // However this ends, the outbox closes: `send` stops queueing for it.
    let _closing = CloseOnDrop(outbox.clone());
    let guard = shared
        .channels
        .open(peer, shared.config.stream_id, shared.cancel.child_token());
    let start = StartStream(shared.network, shared.config.stream_id);
    if let Err(e) = link.send(&start).await {
        debug!(peer = %peer.fmt_short(), error = %e, "could not start the stream");
        return;
    }
    guard.connected();
    let channel = guard.channel().clone();
    let connection = link.connection().clone();
    let mut runs = VecDeque::new();
    let reason = loop {
        let more = tokio::select! {
            biased;
            reason = &mut stop => break Some(reason.unwrap_or(CloseReason::Cancelled)),
            _ = connection.closed() => break None,
            refusal = gate.revoked() => {
                shared.refusals.record(Refusal::TicketRevoked);
                debug!(peer = %peer.fmt_short(), %refusal, "consumer no longer allowed (10403)");
                break Some(CloseReason::NotAllowed);
            }
            more = outbox.pop_many(MAX_COALESCED, &mut runs) => more,
        };
        if !more {
            break Some(CloseReason::GracefulShutdown);
        }
        // A consumer that stopped reading blocks this write on QUIC flow
        // control; the stop (10413, 204) must still get through.
        tokio::select! {
            biased;
            reason = &mut stop => break Some(reason.unwrap_or(CloseReason::Cancelled)),
            _ = connection.closed() => break None,
            _ = gate.revoked() => {
                shared.refusals.record(Refusal::TicketRevoked);
                break Some(CloseReason::NotAllowed);
            }
            written = write_runs(&mut link, &channel, &mut runs) => if written.is_err() { break None },
        }
    };
    drop(guard);
    match reason {
        Some(CloseReason::GracefulShutdown) => {
            // Frames already queued for this consumer still go out, within a
            // bound; then the stream ends and 204 follows once they arrived.
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
                while !runs.is_empty() || outbox.try_pop_many(MAX_COALESCED, &mut runs) {
                    write_runs(&mut link, &channel, &mut runs).await?;
                }
                Ok::<_, LinkError>(())
            })
            .await;
            debug!(peer = %peer.fmt_short(), "ending subscription gracefully (204)");
            link.finish_and_close(CloseReason::GracefulShutdown, SUBSCRIPTION_CLOSE_GRACE)
                .await;
        }
        Some(reason) => {
            debug!(peer = %peer.fmt_short(), %reason, "ending subscription");
            link.close(reason, SUBSCRIPTION_CLOSE_GRACE).await;
        }
        None => {}
    }
}

struct CloseOnDrop(Arc<Outbox>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Writes `runs`, each handed to QUIC as one chunk. Cancel-safe: a run
/// leaves `runs` (and its bytes leave it) only once the link took them, so
/// a graceful stop that interrupts a write (to get through a blocked one)
/// still sends the rest.
async fn write_runs(
    link: &mut Link<StreamsProtocol>,
    channel: &Channel,
    runs: &mut VecDeque<FrameRun>,
) -> Result<(), LinkError> {
    while let Some(run) = runs.front_mut() {
        if !run.wire.is_empty() {
            link.write_wire(&mut run.wire).await?;
        }
        if run.wire.is_empty() {
            channel.stats().record_many(run.frames, run.payload_bytes);
            runs.pop_front();
        }
    }
    Ok(())
}
