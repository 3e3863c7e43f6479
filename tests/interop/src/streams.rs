//! Stream producers and consumers on the running node, through mosaik's own
//! `Network::streams()` API.
//!
//! Every command names its stream by `stream_id` (64 lowercase hex), as
//! answered by `produce` / `consume`. Datums are either `String`
//! (`"type": "string"`, the default; JSON strings in `items`) or `Vec<u8>`
//! (`"type": "bytes"`; hex strings in `items_hex`); both use mosaik's blanket
//! postcard `Datum` encoding.
//!
//! Commands:
//! - `produce {"type", "stream"?}` → `{"stream_id"}`. Without `stream` this
//!   is `streams().produce::<D>()` (stream id = blake3 of the Rust type name);
//!   with it, `streams().producer::<D>().with_stream_id(stream).build()`
//!   (mosaik's string rule: 64 hex chars are taken as the id, anything else
//!   is hashed with blake3).
//! - `send {"stream_id", "items" | "items_hex", "timeout_ms"?}` →
//!   `{"sent", "full_retries"}`: `SinkExt::send` per datum, which waits
//!   while the producer is offline (no connected consumer); `Full` refusals
//!   are retried (see [`RetryingSender`]).
//! - `wait_subscribed {"stream_id", "minimum"?, "timeout_ms"?}` →
//!   `{"consumers", "elapsed_ms"}` once `when().subscribed().minimum_of(n)`
//!   holds.
//! - `close_producer {"stream_id"}` → `{"remaining_consumers"}`: drops our
//!   `Producer` handle. In mosaik 0.3.13 this does **not** end any
//!   subscription: the node's fan-out sink keeps its own sender and lives
//!   until the node shuts down, and the stream id stays advertised. A later
//!   `produce` on that stream id gets the same sink back.
//! - `consume {"type", "stream"?}` → `{"stream_id"}`: a `Consumer` whose
//!   datums a background task collects (at most [`MAX_ITEMS`] kept, the rest
//!   counted in `dropped`).
//! - `received {"stream_id", "count"?, "timeout_ms"?}` →
//!   `{"items" | "items_hex", "dropped"}` once at least `count` datums are
//!   held (default 0: at once), then clears them. On timeout it fails and
//!   keeps them.
//! - `wait_producers {"stream_id", "minimum"?, "timeout_ms"?}` →
//!   `{"producers", "elapsed_ms", "since_consume_ms"}` once the consumer is
//!   connected to at least `minimum` producers.
//!
//! `consumers` / `producers` list the connected channels as
//! `{"peer_id", "state", "datums", "bytes"}`.

use {
    crate::tickets,
    crate::wire,
    anyhow::{Context, Result, bail, ensure},
    futures::SinkExt,
    mosaik::{
        Datum, Network, StreamId,
        streams::{
            Consumer, Producer,
            producer::{BuilderError, Error as ProducerError},
            status::{ChannelInfo, When},
        },
        tickets::Jwt,
    },
    serde_json::{Value, json},
    std::{
        collections::HashMap,
        time::{Duration, Instant},
    },
    tokio::{
        sync::{mpsc, oneshot, watch},
        task::JoinHandle,
    },
};

/// Most datums a consumer keeps between two `received` commands.
const MAX_ITEMS: usize = 100_000;
/// Pause before a `send` retries a datum refused with `Full`.
const FULL_RETRY: Duration = Duration::from_millis(1);

/// The datum types these commands support.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    String,
    Bytes,
}

impl Kind {
    /// The `type` field of a command (default `string`).
    fn from_cmd(cmd: &Value) -> Result<Self> {
        match cmd.get("type").and_then(Value::as_str) {
            None | Some("string") => Ok(Self::String),
            Some("bytes") => Ok(Self::Bytes),
            Some(other) => bail!("unknown stream type `{other}` (expected `string` or `bytes`)"),
        }
    }

    /// mosaik's default stream id for this datum type (blake3 of its Rust
    /// type name).
    fn derived_stream_id(self) -> StreamId {
        match self {
            Self::String => String::derived_stream_id(),
            Self::Bytes => Vec::<u8>::derived_stream_id(),
        }
    }

    /// The JSON field holding datums of this kind.
    const fn items_key(self) -> &'static str {
        match self {
            Self::String => "items",
            Self::Bytes => "items_hex",
        }
    }
}

/// A datum type with its JSON text form.
trait Item: Datum + Clone + Sync {
    const KIND: Kind;
    fn parse(text: &str) -> Result<Self>;
    fn render(&self) -> String;
}

impl Item for String {
    const KIND: Kind = Kind::String;

    fn parse(text: &str) -> Result<Self> {
        Ok(text.to_owned())
    }

    fn render(&self) -> String {
        self.clone()
    }
}

impl Item for Vec<u8> {
    const KIND: Kind = Kind::Bytes;

    fn parse(text: &str) -> Result<Self> {
        hex::decode(text.trim()).with_context(|| format!("`{text}` is not valid hex"))
    }

    fn render(&self) -> String {
        hex::encode(self)
    }
}

/// A producer handle of either datum type.
enum AnyProducer {
    String(Producer<String>),
    Bytes(Producer<Vec<u8>>),
}

impl AnyProducer {
    fn when(&self) -> &When {
        match self {
            Self::String(p) => p.when(),
            Self::Bytes(p) => p.when(),
        }
    }

    fn consumers(&self) -> Vec<ChannelInfo> {
        match self {
            Self::String(p) => p.consumers().collect(),
            Self::Bytes(p) => p.consumers().collect(),
        }
    }
}

/// Datums collected by a consumer's background task.
#[derive(Default)]
struct Inbox {
    items: Vec<String>,
    dropped: u64,
}

/// Asks the collector task for `Consumer::producers()`.
type ProducersRequest = oneshot::Sender<Vec<ChannelInfo>>;

/// A consumer: its status handle plus the task that owns the `Consumer`,
/// fills the inbox and answers [`ProducersRequest`]s. Dropping it aborts the
/// task, which drops the `Consumer` (mosaik then closes its links with 102
/// `Cancelled`).
struct Collector {
    kind: Kind,
    when: When,
    created: Instant,
    inbox: watch::Sender<Inbox>,
    requests: mpsc::UnboundedSender<ProducersRequest>,
    task: JoinHandle<()>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The producers and consumers created by commands, by stream id hex.
#[derive(Default)]
pub struct Registry {
    producers: HashMap<String, AnyProducer>,
    /// Datum type of every sink ever created here: mosaik keeps a sink for
    /// the node's lifetime and panics if it is reopened with another type.
    sink_kinds: HashMap<String, Kind>,
    consumers: HashMap<String, Collector>,
}

impl Registry {
    /// `produce`.
    pub fn produce(&mut self, network: &Network, cmd: &Value) -> Result<Value> {
        let kind = Kind::from_cmd(cmd)?;
        let explicit = explicit_stream(cmd)?;
        let key = wire::hex(&explicit.unwrap_or_else(|| kind.derived_stream_id()));
        ensure!(
            !self.producers.contains_key(&key),
            "a producer for stream {key} already exists"
        );
        if let Some(existing) = self.sink_kinds.get(&key) {
            ensure!(
                *existing == kind,
                "stream {key} already has a {existing:?} sink on this node"
            );
        }
        let producer = match kind {
            Kind::String => AnyProducer::String(open_producer(network, explicit, tickets::gate(cmd)?)),
            Kind::Bytes => AnyProducer::Bytes(open_producer(network, explicit, tickets::gate(cmd)?)),
        };
        self.sink_kinds.insert(key.clone(), kind);
        self.producers.insert(key.clone(), producer);
        Ok(json!({ "stream_id": key }))
    }

    /// `send`.
    pub async fn send(&self, cmd: &Value) -> Result<Value> {
        let timeout = wire::timeout_field(cmd)?;
        match self.producer(cmd)? {
            AnyProducer::String(p) => send_items(p.clone(), cmd, timeout).await,
            AnyProducer::Bytes(p) => send_items(p.clone(), cmd, timeout).await,
        }
    }

    /// `wait_subscribed`.
    pub async fn wait_subscribed(&self, cmd: &Value) -> Result<Value> {
        let producer = self.producer(cmd)?;
        let elapsed_ms = wait_channels(producer.when(), cmd, "consumers").await?;
        Ok(json!({
            "consumers": channels_json(&producer.consumers(), |c| *c.consumer_id()),
            "elapsed_ms": elapsed_ms,
        }))
    }

    /// `close_producer`.
    pub fn close_producer(&mut self, cmd: &Value) -> Result<Value> {
        let key = stream_key(cmd)?;
        let producer = self
            .producers
            .remove(&key)
            .with_context(|| format!("no producer for stream {key}"))?;
        let remaining = producer.consumers().iter().filter(|c| c.is_connected()).count();
        drop(producer);
        Ok(json!({ "remaining_consumers": remaining }))
    }

    /// `consume`.
    pub fn consume(&mut self, network: &Network, cmd: &Value) -> Result<Value> {
        let kind = Kind::from_cmd(cmd)?;
        let explicit = explicit_stream(cmd)?;
        let key = wire::hex(&explicit.unwrap_or_else(|| kind.derived_stream_id()));
        ensure!(
            !self.consumers.contains_key(&key),
            "a consumer for stream {key} already exists"
        );
        let collector = match kind {
            Kind::String => Collector::spawn::<String>(network, explicit, tickets::gate(cmd)?),
            Kind::Bytes => Collector::spawn::<Vec<u8>>(network, explicit, tickets::gate(cmd)?),
        };
        self.consumers.insert(key.clone(), collector);
        Ok(json!({ "stream_id": key }))
    }

    /// `received`.
    pub async fn received(&self, cmd: &Value) -> Result<Value> {
        let collector = self.consumer(cmd)?;
        let count = optional_count(cmd, "count", 0)?;
        let timeout = wire::timeout_field(cmd)?;
        let mut watch = collector.inbox.subscribe();
        // `wait_for` answers a read guard of the watch; drop it right away
        // (the `send_replace` below would otherwise deadlock on it).
        let reached = tokio::time::timeout(timeout, watch.wait_for(|i| i.items.len() >= count))
            .await
            .is_ok_and(|guard| guard.is_ok());
        if !reached {
            bail!(
                "timed out after {} ms with {} of {count} datums",
                timeout.as_millis(),
                collector.inbox.borrow().items.len()
            );
        }
        let inbox = collector.inbox.send_replace(Inbox::default());
        Ok(json!({
            collector.kind.items_key(): inbox.items,
            "dropped": inbox.dropped,
        }))
    }

    /// `wait_producers`.
    pub async fn wait_producers(&self, cmd: &Value) -> Result<Value> {
        let collector = self.consumer(cmd)?;
        let elapsed_ms = wait_channels(&collector.when, cmd, "producers").await?;
        let producers = collector.producers().await?;
        Ok(json!({
            "producers": channels_json(&producers, |c| *c.producer_id()),
            "elapsed_ms": elapsed_ms,
            "since_consume_ms": collector.created.elapsed().as_millis() as u64,
        }))
    }

    fn producer(&self, cmd: &Value) -> Result<&AnyProducer> {
        let key = stream_key(cmd)?;
        self.producers
            .get(&key)
            .with_context(|| format!("no producer for stream {key}; send `produce` first"))
    }

    fn consumer(&self, cmd: &Value) -> Result<&Collector> {
        let key = stream_key(cmd)?;
        self.consumers
            .get(&key)
            .with_context(|| format!("no consumer for stream {key}; send `consume` first"))
    }
}

impl Collector {
    /// Builds the mosaik consumer (`streams().consume::<D>()`, or a builder
    /// `with_stream_id` for an explicit stream) and starts collecting.
    fn spawn<D: Item>(network: &Network, explicit: Option<StreamId>, gate: Option<Jwt>) -> Self {
        let streams = network.streams();
        let consumer: Consumer<D> = if explicit.is_none() && gate.is_none() {
            streams.consume::<D>()
        } else {
            let mut builder = streams.consumer::<D>();
            if let Some(stream_id) = explicit {
                builder = builder.with_stream_id(stream_id);
            }
            if let Some(jwt) = gate {
                builder = builder.require_ticket(jwt);
            }
            builder.build()
        };
        let when = consumer.when().clone();
        let inbox = watch::Sender::new(Inbox::default());
        let (requests, pending) = mpsc::unbounded_channel();
        let task = tokio::spawn(collect(consumer, inbox.clone(), pending));
        Self {
            kind: D::KIND,
            when,
            created: Instant::now(),
            inbox,
            requests,
            task,
        }
    }

    /// The consumer's current channels, one per producer it tracks.
    async fn producers(&self) -> Result<Vec<ChannelInfo>> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(reply)
            .ok()
            .context("consumer task has stopped")?;
        answer.await.context("consumer task has stopped")
    }
}

/// The collector task: moves every datum into `inbox` (`Consumer::recv` is
/// cancel safe) and answers producer-list requests, until the consumer ends.
async fn collect<D: Item>(
    mut consumer: Consumer<D>,
    inbox: watch::Sender<Inbox>,
    mut requests: mpsc::UnboundedReceiver<ProducersRequest>,
) {
    loop {
        tokio::select! {
            datum = consumer.recv() => match datum {
                Some(datum) => inbox.send_modify(|inbox| push(inbox, datum.render())),
                None => break,
            },
            Some(reply) = requests.recv() => {
                let _ = reply.send(consumer.producers().collect());
            }
        }
    }
}

fn push(inbox: &mut Inbox, item: String) {
    if inbox.items.len() < MAX_ITEMS {
        inbox.items.push(item);
    } else {
        inbox.dropped += 1;
    }
}

/// The explicit `stream` of a command, if any, by mosaik's string rule
/// (`StreamId::from(&str)`: 64 hex characters are the id itself, any other
/// string is hashed with blake3).
fn explicit_stream(cmd: &Value) -> Result<Option<StreamId>> {
    match cmd.get("stream") {
        None | Some(Value::Null) => Ok(None),
        Some(_) => Ok(Some(StreamId::from(wire::str_field(cmd, "stream")?))),
    }
}

/// `streams().produce::<D>()` for the default stream id, else a builder
/// `with_stream_id`; an existing sink for that id is reused either way.
fn open_producer<D: Item>(network: &Network, explicit: Option<StreamId>, gate: Option<Jwt>) -> Producer<D> {
    let streams = network.streams();
    if explicit.is_none() && gate.is_none() {
        return streams.produce::<D>();
    }
    let mut builder = streams.producer::<D>();
    if let Some(stream_id) = explicit {
        builder = builder.with_stream_id(stream_id);
    }
    if let Some(jwt) = gate {
        builder = builder.require_ticket(jwt);
    }
    match builder.build() {
        Ok(producer) => producer,
        Err(BuilderError::AlreadyExists(existing)) => existing,
    }
}

/// Sends every datum of the command in order, within `timeout` overall;
/// returns how many were sent and how often `Full` was retried.
async fn send_items<D: Item>(producer: Producer<D>, cmd: &Value, timeout: Duration) -> Result<Value> {
    let items = wire::str_list(cmd, D::KIND.items_key())?
        .iter()
        .map(|text| D::parse(text))
        .collect::<Result<Vec<D>>>()?;
    let total = items.len();
    let mut sender = RetryingSender {
        producer,
        sent: 0,
        full_retries: 0,
    };
    let sending = async {
        for item in items {
            sender.send(item).await?;
        }
        anyhow::Ok(())
    };
    let outcome = tokio::time::timeout(timeout, sending).await;
    let RetryingSender {
        sent, full_retries, ..
    } = sender;
    match outcome {
        Ok(result) => result.map(|()| json!({ "sent": sent, "full_retries": full_retries })),
        Err(_) => bail!(
            "timed out after {} ms with {sent} of {total} datums sent",
            timeout.as_millis()
        ),
    }
}

/// `SinkExt::send` on a producer, retrying `Error::Full`.
///
/// mosaik 0.3.13's `Sink for Producer` reserves a channel slot in
/// `poll_ready` but `start_send` is `try_send` on the channel itself, which
/// ignores that reservation; so a burst can fill the 1024-slot channel and
/// fail with `Full` (seen after 1023 back-to-back sends). The datum is handed
/// back untouched, so it is sent again after [`FULL_RETRY`].
struct RetryingSender<D: Item> {
    producer: Producer<D>,
    sent: usize,
    full_retries: u64,
}

impl<D: Item> RetryingSender<D> {
    async fn send(&mut self, mut item: D) -> Result<()> {
        loop {
            match self.producer.send(item).await {
                Ok(()) => {
                    self.sent += 1;
                    return Ok(());
                }
                Err(ProducerError::Full(back)) => {
                    item = back;
                    self.full_retries += 1;
                    tokio::time::sleep(FULL_RETRY).await;
                }
                Err(e) => bail!("send of datum {} failed: {e}", self.sent),
            }
        }
    }
}

/// Waits until `when` has at least `minimum` (default 1) connected
/// channels; returns the elapsed milliseconds.
async fn wait_channels(when: &When, cmd: &Value, what: &str) -> Result<u64> {
    let minimum = optional_count(cmd, "minimum", 1)?;
    let timeout = wire::timeout_field(cmd)?;
    let started = Instant::now();
    if tokio::time::timeout(timeout, when.subscribed().minimum_of(minimum))
        .await
        .is_err()
    {
        bail!(
            "timed out after {} ms waiting for {minimum} connected {what}",
            timeout.as_millis()
        );
    }
    Ok(started.elapsed().as_millis() as u64)
}

/// `{"peer_id", "state", "datums", "bytes"}` per channel; `remote` picks
/// the peer on the other side.
fn channels_json(channels: &[ChannelInfo], remote: impl Fn(&ChannelInfo) -> mosaik::PeerId) -> Vec<Value> {
    channels
        .iter()
        .map(|channel| {
            json!({
                "peer_id": remote(channel).to_string(),
                "state": format!("{:?}", channel.state()),
                "datums": channel.stats().datums(),
                "bytes": channel.stats().bytes(),
            })
        })
        .collect()
}

/// The required `stream_id` field, normalized to lowercase.
fn stream_key(cmd: &Value) -> Result<String> {
    Ok(wire::str_field(cmd, "stream_id")?.to_ascii_lowercase())
}

/// An optional non-negative integer field.
fn optional_count(cmd: &Value, name: &str, default: usize) -> Result<usize> {
    match cmd.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value
            .as_u64()
            .map(|n| n as usize)
            .with_context(|| format!("`{name}` must be a non-negative integer")),
    }
}
