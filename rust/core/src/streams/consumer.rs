//! Consumer: a worker that follows the catalog, and a receiver per producer.
//!
//! The worker starts one receiver for every peer whose signed entry lists
//! the stream, whatever it is written in, and cancels receivers whose
//! producer left or stopped listing it. A receiver connects, sends the
//! handshake, checks `StartStream` (101 / 10404), then pushes every frame
//! into the consumer's bounded queue: a full queue stops reading, which is
//! backpressure all the way to the producer. How it reacts to a closed link
//! follows mosaik: 401 → catalog sync, then retry; 10403, 204, 10404, 101
//! and local cancellation end it; anything else retries under the backoff.

use std::{collections::HashMap, sync::Arc, time::Duration};

use bytes::Bytes;
use iroh::{EndpointAddr, EndpointId};
use tokio::{
    sync::{Mutex, mpsc},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::{
    backoff::{Backoff, BackoffConfig},
    handshake::{ConsumerHandshake, Criteria, StartStream},
    status::{Connected, Stats},
};
use crate::{
    discovery::Discovery,
    network::{CloseReason, Link, LinkError, protocol::Streams as StreamsProtocol},
    primitives::Digest,
};

/// Bound on the producer's answer to our handshake (mosaik has none).
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the worker re-checks the catalog besides discovery events.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    pub stream_id: Digest,
    pub queue_size: usize,
    pub backoff: BackoffConfig,
}

impl ConsumerConfig {
    pub fn new(stream_id: Digest) -> Self {
        Self {
            stream_id,
            queue_size: 1024,
            backoff: BackoffConfig::default(),
        }
    }
}

struct Shared {
    config: ConsumerConfig,
    discovery: Discovery,
    connected: Connected,
    stats: Stats,
    cancel: CancellationToken,
}

pub struct Consumer {
    shared: Arc<Shared>,
    queue: Mutex<mpsc::Receiver<Bytes>>,
}

impl Consumer {
    pub(crate) fn spawn(config: ConsumerConfig, discovery: Discovery) -> Self {
        let (tx, rx) = mpsc::channel(config.queue_size.max(1));
        let shared = Arc::new(Shared {
            config,
            discovery,
            connected: Connected::default(),
            stats: Stats::default(),
            cancel: CancellationToken::new(),
        });
        tokio::spawn(follow_producers(shared.clone(), tx));
        Self {
            shared,
            queue: Mutex::new(rx),
        }
    }

    pub fn stream_id(&self) -> Digest {
        self.shared.config.stream_id
    }

    /// Producers currently connected.
    pub fn producers(&self) -> usize {
        self.shared.connected.get()
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Resolves once at least `minimum` producers are connected.
    pub async fn subscribed(&self, minimum: usize) {
        self.shared.connected.at_least(minimum).await;
    }

    /// The next datum, or `None` once closed and drained.
    pub async fn recv(&self) -> Option<Bytes> {
        self.queue.lock().await.recv().await
    }

    /// A datum if one is ready; `Err(true)` once closed and drained.
    pub fn try_recv(&self) -> Result<Bytes, bool> {
        let Ok(mut queue) = self.queue.try_lock() else {
            return Err(false);
        };
        queue
            .try_recv()
            .map_err(|e| matches!(e, mpsc::error::TryRecvError::Disconnected))
    }

    /// Up to `max` datums, waiting for the first; empty once closed and drained.
    pub async fn recv_batch(&self, max: usize) -> Vec<Bytes> {
        let mut queue = self.queue.lock().await;
        let mut batch = Vec::new();
        queue.recv_many(&mut batch, max.max(1)).await;
        batch
    }

    /// Cancels every receiver (102 to producers); queued datums stay readable.
    pub fn close(&self) {
        self.shared.cancel.cancel();
    }

    pub fn is_closed(&self) -> bool {
        self.shared.cancel.is_cancelled()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

/// Keeps one receiver per eligible producer.
async fn follow_producers(shared: Arc<Shared>, queue: mpsc::Sender<Bytes>) {
    let mut events = shared.discovery.subscribe();
    let mut receivers: HashMap<EndpointId, (CancellationToken, JoinHandle<()>)> = HashMap::new();
    let stop = shared.discovery.cancel_token().clone();
    loop {
        let producers: HashMap<EndpointId, EndpointAddr> = shared
            .discovery
            .peers()
            .into_iter()
            .filter(|e| e.entry().streams.contains(&shared.config.stream_id))
            .map(|e| (e.entry().id(), e.entry().address.clone()))
            .collect();
        receivers.retain(|id, (cancel, task)| {
            let keep = producers.contains_key(id) && !task.is_finished();
            if !keep {
                cancel.cancel();
            }
            keep
        });
        for (id, addr) in producers {
            receivers.entry(id).or_insert_with(|| {
                let cancel = shared.cancel.child_token();
                let task = tokio::spawn(receive(shared.clone(), addr, queue.clone(), cancel.clone()));
                (cancel, task)
            });
        }
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            _ = stop.cancelled() => break,
            _ = events.recv() => {}
            _ = tokio::time::sleep(RECONCILE_EVERY) => {}
        }
    }
    for (cancel, _) in receivers.values() {
        cancel.cancel();
    }
}

/// Counts a producer as connected for as long as it lives, even when the
/// session future is dropped mid-way (cancellation).
struct ConnectedGuard<'a>(&'a Shared);

impl<'a> ConnectedGuard<'a> {
    fn new(shared: &'a Shared) -> Self {
        shared.connected.up();
        Self(shared)
    }
}

impl Drop for ConnectedGuard<'_> {
    fn drop(&mut self) {
        self.0.connected.down();
    }
}

/// How a session with one producer ended.
enum Ending {
    /// Stop for good.
    Terminal,
    /// The producer does not know us yet: sync catalogs, then retry.
    UnknownPeer,
    Retry,
}

fn classify(error: &LinkError) -> Ending {
    match error.remote_code().and_then(CloseReason::from_code) {
        Some(CloseReason::UnknownPeer) => Ending::UnknownPeer,
        Some(
            CloseReason::NotAllowed
            | CloseReason::GracefulShutdown
            | CloseReason::StreamNotFound
            | CloseReason::DifferentNetwork,
        ) => Ending::Terminal,
        _ if matches!(error, LinkError::Decode(_) | LinkError::ClosedLocally(_)) => Ending::Terminal,
        _ => Ending::Retry,
    }
}

async fn receive(
    shared: Arc<Shared>,
    addr: EndpointAddr,
    queue: mpsc::Sender<Bytes>,
    cancel: CancellationToken,
) {
    let peer = addr.id;
    let mut backoff = Backoff::new(shared.config.backoff.clone());
    let mut first = true;
    loop {
        if !first {
            let Some(delay) = backoff.next_delay() else {
                debug!(peer = %peer.fmt_short(), "backoff exhausted; giving up on this producer");
                return;
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
        first = false;
        let addr = shared
            .discovery
            .get(&peer)
            .map(|e| e.entry().address.clone())
            .unwrap_or(addr.clone());
        let ending = tokio::select! {
            _ = cancel.cancelled() => return,
            ending = session(&shared, addr.clone(), &queue, &mut backoff, &cancel) => ending,
        };
        match ending {
            Ending::Terminal => return,
            Ending::Retry => {}
            Ending::UnknownPeer => {
                if let Err(e) = shared.discovery.sync_with(addr).await {
                    debug!(peer = %peer.fmt_short(), error = %e, "sync after 401 failed");
                    return;
                }
            }
        }
    }
}

async fn session(
    shared: &Shared,
    addr: EndpointAddr,
    queue: &mpsc::Sender<Bytes>,
    backoff: &mut Backoff,
    cancel: &CancellationToken,
) -> Ending {
    let stream = shared.config.stream_id;
    let network = shared.discovery.network();
    let mut link = match Link::<StreamsProtocol>::open(shared.discovery.endpoint(), addr).await {
        Ok(link) => link,
        Err(e) => return classify(&e),
    };
    let handshake = ConsumerHandshake {
        network_id: network,
        stream_id: stream,
        criteria: Criteria {},
    };
    if let Err(e) = link.send(&handshake).await {
        return classify(&e);
    }
    let start: StartStream = match tokio::time::timeout(START_TIMEOUT, link.recv()).await {
        Ok(Ok(start)) => start,
        Ok(Err(e)) => return classify(&e),
        Err(_) => return Ending::Retry,
    };
    if start.0 != network {
        link.close_now(CloseReason::DifferentNetwork);
        return Ending::Terminal;
    }
    if start.1 != stream {
        link.close_now(CloseReason::StreamNotFound);
        return Ending::Terminal;
    }
    let _connected = ConnectedGuard::new(shared);
    let ending = loop {
        let frame = match link.recv_raw().await {
            Ok(frame) => frame.freeze(),
            Err(e) => break classify(&e),
        };
        shared.stats.record(frame.len());
        backoff.reset();
        tokio::select! {
            _ = cancel.cancelled() => break Ending::Terminal,
            sent = queue.send(frame) => if sent.is_err() { break Ending::Terminal },
        }
    };
    if cancel.is_cancelled() {
        link.close(CloseReason::Cancelled, Duration::from_millis(200))
            .await;
    }
    ending
}
