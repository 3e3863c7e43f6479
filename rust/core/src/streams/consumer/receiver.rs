//! The receiver: one task per followed producer, reading its datums.
//!
//! Started by the worker (`worker.rs`), a receiver connects, sends the
//! handshake, checks `StartStream` (101 / 10404), then pushes the frames
//! into the consumer's [`DeliveryQueue`](super::queue::DeliveryQueue) as
//! the runs the link cut them into, everything that has arrived at once.
//! How it reacts to a closed link follows mosaik: 401 → catalog sync, then
//! retry; 10403 → catalog sync (the producer may hold an older entry of ours
//! than the ticket we just added), then one more try, final unless our tags
//! or tickets changed meanwhile; 204, 10404, 101, a
//! datum the reader cannot decode and local cancellation end it; anything
//! else retries under the backoff.

use std::{collections::VecDeque, time::Duration};

use futures::FutureExt;
use iroh::EndpointAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::{Shared, queue::Arrival};
use crate::{
    Digest,
    network::{CLOSE_GRACE, CloseReason, Link, LinkError},
    streams::{
        backoff::Backoff,
        handshake::{ConsumerHandshake, Criteria, HANDSHAKE_FRAME_LIMIT, StartStream},
        protocol::StreamsProtocol,
        status::ChannelGuard,
    },
};

/// Bound on the producer's answer to our handshake (mosaik has none).
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames a receiver queues at once when more have already arrived.
const MAX_BATCH: usize = 256;

/// How a session with one producer ended.
enum Ending {
    /// Stop for good.
    Terminal,
    /// The producer does not know us yet: sync catalogs, then retry.
    UnknownPeer,
    /// Refused (10403): our tickets or entry did not pass.
    NotAllowed,
    Retry,
}

fn classify(error: &LinkError) -> Ending {
    debug!(%error, "subscription link ended");
    match error.remote_code().and_then(CloseReason::from_code) {
        Some(CloseReason::UnknownPeer) => Ending::UnknownPeer,
        Some(CloseReason::NotAllowed) => Ending::NotAllowed,
        Some(CloseReason::GracefulShutdown | CloseReason::StreamNotFound | CloseReason::DifferentNetwork) => {
            Ending::Terminal
        }
        _ if matches!(error, LinkError::Decode(_) | LinkError::ClosedLocally(_)) => Ending::Terminal,
        _ => Ending::Retry,
    }
}

/// Follows one producer until it ends for good or is cancelled.
pub(super) async fn receive(shared: Arc<Shared>, addr: EndpointAddr, cancel: CancellationToken) {
    let peer = addr.id;
    // The channel's own token is a child: cancelling it alone means the
    // reader rejected a datum; cancelling `cancel` means we left.
    let guard = shared
        .channels
        .open(peer, shared.config.stream_id, cancel.child_token());
    let stop = guard.channel().cancel_token().clone();
    let mut backoff = Backoff::new(shared.config.backoff.clone());
    let mut first = true;
    // Our credentials as we pushed them after a refusal (10403).
    let mut judged: Option<Digest> = None;
    loop {
        if !first {
            let Some(delay) = backoff.next_delay() else {
                debug!(peer = %peer.fmt_short(), "backoff exhausted; giving up on this producer");
                return;
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
        first = false;
        let addr = shared
            .discovery
            .get(&peer)
            .map(|e| e.entry().address.clone())
            .unwrap_or(addr.clone());
        let ours = credentials(&shared);
        let ending = session(&shared, addr.clone(), &guard, &mut backoff, &cancel).await;
        guard.connecting();
        match ending {
            Ending::Terminal => return,
            // The producer judged the entry of ours it had, which may be
            // older than a ticket we just added: hand it ours and ask again.
            // A refusal of the entry we pushed is final (until one changes).
            Ending::NotAllowed if judged == Some(ours) => return,
            Ending::Retry => {}
            Ending::NotAllowed | Ending::UnknownPeer => {
                if matches!(ending, Ending::NotAllowed) {
                    judged = Some(credentials(&shared));
                }
                let synced = tokio::select! {
                    _ = stop.cancelled() => return,
                    synced = shared.discovery.sync_with(addr) => synced,
                };
                if let Err(e) = synced {
                    debug!(peer = %peer.fmt_short(), error = %e, "sync after 401 failed");
                    return;
                }
            }
        }
    }
}

/// Our tags and tickets, as a producer judges them.
fn credentials(shared: &Shared) -> Digest {
    shared.discovery.local().current().entry().credentials()
}

async fn session(
    shared: &Shared,
    addr: EndpointAddr,
    guard: &ChannelGuard<'_>,
    backoff: &mut Backoff,
    cancel: &CancellationToken,
) -> Ending {
    let channel = guard.channel();
    let stop = channel.cancel_token();
    let started = tokio::select! {
        _ = stop.cancelled() => return Ending::Terminal,
        started = start_session(shared, addr) => started,
    };
    let mut link = match started {
        Ok(link) => link,
        Err(ending) => return ending,
    };
    guard.connected();
    let mut batch = VecDeque::new();
    let ending = loop {
        let run = tokio::select! {
            biased;
            _ = stop.cancelled() => break Ending::Terminal,
            run = link.recv_run(MAX_BATCH) => match run {
                Ok(run) => run,
                Err(e) => break classify(&e),
            },
        };
        // Take everything that has already arrived with it, and queue it
        // under one lock: one reader wake per batch, not per datum.
        let mut ended = None;
        let (mut datums, mut bytes) = (run.frames, run.payload_bytes);
        batch.push_back(Arrival {
            channel: channel.key(),
            run,
        });
        // A receiver holds at most this batch besides the queue: its bytes
        // are bounded like the queue's.
        while datums < MAX_BATCH && bytes < shared.config.queue_bytes {
            match link.recv_run(MAX_BATCH - datums).now_or_never() {
                Some(Ok(run)) => {
                    datums += run.frames;
                    bytes += run.payload_bytes;
                    batch.push_back(Arrival {
                        channel: channel.key(),
                        run,
                    });
                }
                Some(Err(e)) => {
                    ended = Some(classify(&e));
                    break;
                }
                None => break,
            }
        }
        shared.stats.record_many(datums, bytes);
        channel.stats().record_many(datums, bytes);
        backoff.reset();
        tokio::select! {
            biased;
            _ = stop.cancelled() => break Ending::Terminal,
            pushed = shared.queue.push_many(&mut batch) => if pushed.is_err() { break Ending::Terminal },
        }
        if let Some(ending) = ended {
            break ending;
        }
    };
    if stop.is_cancelled() {
        // Our own leaving is 102; a datum the reader refused is the producer's fault.
        let reason = if cancel.is_cancelled() {
            CloseReason::Cancelled
        } else {
            CloseReason::ProtocolViolation
        };
        link.close(reason, CLOSE_GRACE).await;
    }
    ending
}

/// Connects, sends the handshake and checks the producer's `StartStream`.
async fn start_session(shared: &Shared, addr: EndpointAddr) -> Result<Link<StreamsProtocol>, Ending> {
    let stream = shared.config.stream_id;
    let network = shared.discovery.network();
    let mut link = shared
        .discovery
        .dialer()
        .open::<StreamsProtocol>(addr)
        .await
        .map_err(|e| classify(&e))?;
    let handshake = ConsumerHandshake {
        network_id: network,
        stream_id: stream,
        criteria: Criteria {},
    };
    link.send(&handshake).await.map_err(|e| classify(&e))?;
    // StartStream is 64 bytes; datum frames may be as large as the protocol allows.
    link.limit_frames(HANDSHAKE_FRAME_LIMIT);
    let start: StartStream = match tokio::time::timeout(START_TIMEOUT, link.recv()).await {
        Ok(Ok(start)) => start,
        Ok(Err(e)) => return Err(classify(&e)),
        Err(_) => return Err(Ending::Retry),
    };
    if start.0 != network {
        link.close_now(CloseReason::DifferentNetwork);
        return Err(Ending::Terminal);
    }
    if start.1 != stream {
        link.close_now(CloseReason::StreamNotFound);
        return Err(Ending::Terminal);
    }
    link.limit_frames(usize::MAX);
    Ok(link)
}
