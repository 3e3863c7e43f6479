//! Producers and consumers for Python. The built-in codecs' layouts
//! (`Vec<u8>`, `String`) are written and read here, in one pass over each
//! batch, so a datum is copied once each way and no Python code runs per
//! datum; other codecs run in `mosaik/codecs.py` and cross as raw bytes.

use std::{sync::Arc, time::Duration};

use mosaik_core::{
    Digest, Node,
    network::frames::{WireFrames, WireFramesBuilder},
    streams::{
        Arrival, BackoffConfig, Channel, Consumer, ConsumerConfig, Lagging, Overflow, Producer,
        ProducerConfig, Require, SendError,
        datum::{decode_prefixed, decode_str, encode_prefixed, prefixed_len},
        producer::{MAX_DATUM, frames_builder},
    },
};
use pyo3::{
    IntoPyObjectExt,
    exceptions::PyTypeError,
    prelude::*,
    types::{PyByteArray, PyBytes, PyList, PyMemoryView, PyString},
};
use tracing::warn;

use crate::{
    errors::{Closed, Empty, Full, Offline, value_error},
    network::peer_tuple,
    runtime,
};

/// What the native side adds to a Python value on the way out and strips on
/// the way in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// `bytes` as they are (the `raw` codec, and custom codecs' output).
    Raw,
    /// `bytes` as a postcard `Vec<u8>`.
    Bytes,
    /// `str` as a postcard `String`.
    Str,
}

impl Framing {
    fn parse(value: &str) -> PyResult<Self> {
        match value {
            "raw" => Ok(Self::Raw),
            "bytes" => Ok(Self::Bytes),
            "str" => Ok(Self::Str),
            other => Err(value_error(
                "framing",
                format!("expected \"raw\", \"bytes\" or \"str\", got {other:?}"),
            )),
        }
    }

    /// Calls `write` with the bytes of `datum`, or raises `TypeError`.
    fn with_data<R>(self, datum: &Bound<'_, PyAny>, write: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
        if self == Framing::Str {
            let text = datum.cast::<PyString>().map_err(|_| wrong_type("str", datum))?;
            return Ok(write(text.to_cow()?.as_bytes()));
        }
        if let Ok(bytes) = datum.cast::<PyBytes>() {
            return Ok(write(bytes.as_bytes()));
        }
        if let Ok(array) = datum.cast::<PyByteArray>() {
            return Ok(write(&array.to_vec()));
        }
        if datum.cast::<PyMemoryView>().is_ok() {
            let bytes = datum.call_method0("tobytes")?;
            return Ok(write(bytes.cast::<PyBytes>()?.as_bytes()));
        }
        Err(wrong_type("bytes", datum))
    }

    /// One datum's frame.
    fn encode(self, datum: &Bound<'_, PyAny>) -> PyResult<WireFrames> {
        let mut frames = frames_builder();
        self.push(&mut frames, datum, || "datum".into())?;
        Ok(frames.finish())
    }

    /// Many datums' frames, laid out in one buffer as the links write them.
    fn encode_all(self, datums: &Bound<'_, PyList>) -> PyResult<WireFrames> {
        let mut frames = frames_builder();
        for (index, datum) in datums.iter().enumerate() {
            self.push(&mut frames, &datum, || format!("datums[{index}]"))?;
        }
        Ok(frames.finish())
    }

    /// Appends `datum`'s frame; `ValueError` (naming the argument) for a
    /// datum over the stream's frame limit, before anything is copied.
    fn push(
        self,
        frames: &mut WireFramesBuilder,
        datum: &Bound<'_, PyAny>,
        name: impl Fn() -> String,
    ) -> PyResult<()> {
        let too_large = |length: usize| {
            value_error(
                &name(),
                format!("a datum of {length} bytes exceeds the stream's frame limit of {MAX_DATUM} bytes"),
            )
        };
        self.with_data(datum, |data| {
            if data.len() > MAX_DATUM {
                return Err(too_large(data.len()));
            }
            let encoded_len = match self {
                Framing::Raw => data.len(),
                Framing::Bytes | Framing::Str => prefixed_len(data.len()),
            };
            frames
                .push_with(encoded_len, |buf| match self {
                    Framing::Raw => buf.extend_from_slice(data),
                    Framing::Bytes | Framing::Str => encode_prefixed(buf, data),
                })
                .map_err(|_| too_large(data.len()))
        })?
    }

    /// The Python value of one frame payload, or why it is not one.
    fn decode<'py>(self, py: Python<'py>, payload: &[u8]) -> Result<Bound<'py, PyAny>, String> {
        match self {
            Framing::Raw => Ok(PyBytes::new(py, payload).into_any()),
            Framing::Bytes => decode_prefixed(payload)
                .map(|data| PyBytes::new(py, data).into_any())
                .map_err(|e| e.to_string()),
            Framing::Str => decode_str(payload)
                .map(|text| PyString::new(py, text).into_any())
                .map_err(|e| e.to_string()),
        }
    }
}

fn wrong_type(expected: &str, datum: &Bound<'_, PyAny>) -> PyErr {
    let got = datum
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    PyTypeError::new_err(format!("datum: expected {expected}, got {got}"))
}

/// `error` with `sent`, how many datums of a `send_many` went out before it.
fn with_sent(py: Python<'_>, error: PyErr, sent: usize) -> PyErr {
    let _ = error.value(py).setattr("sent", sent);
    error
}

fn send_error(error: SendError) -> PyErr {
    match error {
        SendError::Offline(_) => Offline::new_err("the producer has no subscribers yet"),
        SendError::Full(_) => Full::new_err("the producer's buffer is full"),
        SendError::Closed(_) => Closed::new_err("the producer is closed"),
        too_large @ SendError::TooLarge(_) => value_error("datum", too_large),
    }
}

/// `(peer_id, stream_id, state, datums, bytes)` of one live channel.
type ChannelTuple = (String, String, &'static str, u64, u64);

fn channel_tuple(channel: &Arc<Channel>) -> ChannelTuple {
    (
        channel.peer().to_string(),
        channel.stream().to_hex(),
        channel.state().as_str(),
        channel.stats().datums(),
        channel.stats().bytes(),
    )
}

/// A Python callable taking a peer tuple. It runs on a blocking thread; an
/// exception, or an interpreter that is shutting down, means no.
fn require_from(argument: &'static str, callable: Py<PyAny>) -> Require {
    Require::new(move |entry| {
        let peer = peer_tuple(entry);
        Python::try_attach(|py| match callable.call1(py, (peer,)) {
            Ok(verdict) => verdict.is_truthy(py).unwrap_or(false),
            Err(error) => {
                warn!(argument, %error, "the predicate raised; treating it as False");
                false
            }
        })
        .unwrap_or(false)
    })
}

#[allow(clippy::too_many_arguments)]
pub fn producer(
    node: &Node,
    stream: &str,
    framing: &str,
    buffer_size: usize,
    lagging: &str,
    max_consumers: Option<usize>,
    require: Option<Py<PyAny>>,
) -> PyResult<PyProducer> {
    let framing = Framing::parse(framing)?;
    let mut config = ProducerConfig::new(Digest::from_name(stream));
    if buffer_size == 0 {
        return Err(value_error("buffer_size", "must be at least 1"));
    }
    config.buffer_size = buffer_size;
    config.lagging = match lagging {
        "disconnect" => Lagging::Disconnect,
        "drop" => Lagging::Drop,
        "block" => Lagging::Block,
        other => {
            return Err(value_error(
                "lagging",
                format!("expected \"disconnect\", \"drop\" or \"block\", got {other:?}"),
            ));
        }
    };
    if let Some(max) = max_consumers {
        if max == 0 {
            return Err(value_error("max_consumers", "must be at least 1"));
        }
        config.max_consumers = max;
    }
    config.require = require.map(|callable| require_from("require", callable));
    // The core spawns its workers with `tokio::spawn`: run it inside our runtime.
    let handle = runtime::handle()?;
    let _entered = handle.enter();
    let producer = node
        .streams()
        .producer(config)
        .map_err(|e| value_error("stream", e))?;
    Ok(PyProducer { producer, framing })
}

/// `(initial, factor, max_delay, max_elapsed, jitter)`, durations in seconds.
pub type BackoffTuple = (f64, f64, f64, f64, bool);

fn backoff_config(
    (initial, factor, max_delay, max_elapsed, jitter): BackoffTuple,
) -> PyResult<BackoffConfig> {
    let seconds = |argument: &str, value: f64| {
        Duration::try_from_secs_f64(value).map_err(|_| value_error(argument, "must be a non-negative number"))
    };
    Ok(BackoffConfig {
        initial: seconds("backoff.initial", initial)?,
        factor: factor as f32,
        max_delay: seconds("backoff.max_delay", max_delay)?,
        max_elapsed: seconds("backoff.max_elapsed", max_elapsed)?,
        jitter,
    })
}

pub fn consumer(
    node: &Node,
    stream: &str,
    framing: &str,
    queue_size: usize,
    overflow: &str,
    backoff: Option<BackoffTuple>,
    require: Option<Py<PyAny>>,
) -> PyResult<PyConsumer> {
    let framing = Framing::parse(framing)?;
    if queue_size == 0 {
        return Err(value_error("queue_size", "must be at least 1"));
    }
    let mut config = ConsumerConfig::new(Digest::from_name(stream));
    config.queue_size = queue_size;
    config.overflow = match overflow {
        "block" => Overflow::Block,
        "drop_oldest" => Overflow::DropOldest,
        "drop_newest" => Overflow::DropNewest,
        other => {
            return Err(value_error(
                "overflow",
                format!("expected \"block\", \"drop_oldest\" or \"drop_newest\", got {other:?}"),
            ));
        }
    };
    if let Some(backoff) = backoff {
        config.backoff = backoff_config(backoff)?;
    }
    config.require = require.map(|callable| require_from("require", callable));
    let handle = runtime::handle()?;
    let _entered = handle.enter();
    Ok(PyConsumer {
        consumer: Arc::new(node.streams().consumer(config)),
        framing,
    })
}

#[pyclass(module = "mosaik._mosaik", name = "Producer", frozen)]
pub struct PyProducer {
    producer: Producer,
    framing: Framing,
}

#[pymethods]
impl PyProducer {
    #[getter]
    fn stream_id(&self) -> String {
        self.producer.stream_id().to_hex()
    }

    #[getter]
    fn consumer_count(&self) -> usize {
        self.producer.consumers()
    }

    /// Live subscriptions as `(peer_id, stream_id, state, datums, bytes)`.
    #[getter]
    fn channels(&self) -> Vec<ChannelTuple> {
        self.producer.channels().iter().map(channel_tuple).collect()
    }

    #[getter]
    fn is_online(&self) -> bool {
        self.producer.is_online()
    }

    #[getter]
    fn is_closed(&self) -> bool {
        self.producer.is_closed()
    }

    /// `(datums, bytes)` sent, counted once per datum as mosaik does.
    #[getter]
    fn stats(&self) -> (u64, u64) {
        (self.producer.stats().datums(), self.producer.stats().bytes())
    }

    /// Queues `datum` at once if it fits and returns None; otherwise an
    /// awaitable that waits while offline or full. Encoded once either way.
    fn send<'py>(&self, py: Python<'py>, datum: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let frame = self.framing.encode(datum)?;
        match self.producer.try_send_many(&frame) {
            Ok(_) => return Ok(None),
            Err(SendError::Offline(_) | SendError::Full(_)) => {}
            Err(closed) => return Err(send_error(closed)),
        };
        let producer = self.producer.clone();
        runtime::into_py_future(py, async move {
            producer
                .send_many(frame)
                .await
                .map_err(|(error, _)| send_error(error))
        })
        .map(Some)
    }

    /// Sends each datum in order. What fits is queued at once: then this
    /// returns the count; otherwise an awaitable that queues the rest
    /// (waiting while offline or full) and resolves to the count. Encoded
    /// once either way. An error carries `sent`, the count that went out
    /// before it.
    fn send_many<'py>(&self, py: Python<'py>, datums: &Bound<'py, PyList>) -> PyResult<Bound<'py, PyAny>> {
        let frames = self.framing.encode_all(datums)?;
        let count = frames.len();
        let sent = match self.producer.try_send_many(&frames) {
            Ok(sent) => sent,
            Err(SendError::Offline(_) | SendError::Full(_)) => 0,
            Err(closed) => return Err(with_sent(py, send_error(closed), 0)),
        };
        if sent == count {
            return count.into_bound_py_any(py);
        }
        let rest = frames.slice(sent..count);
        let producer = self.producer.clone();
        runtime::into_py_future(py, async move {
            producer.send_many(rest).await.map_err(|(error, more)| {
                Python::attach(|py| with_sent(py, send_error(error), sent + more))
            })?;
            Ok(count)
        })
    }

    fn try_send(&self, datum: &Bound<'_, PyAny>) -> PyResult<()> {
        self.producer
            .try_send_many(&self.framing.encode(datum)?)
            .map(|_| ())
            .map_err(send_error)
    }

    fn subscribed<'py>(&self, py: Python<'py>, minimum: usize) -> PyResult<Bound<'py, PyAny>> {
        let producer = self.producer.clone();
        runtime::into_py_future(py, async move {
            producer.subscribed(minimum).await;
            Ok(())
        })
    }

    fn close(&self) {
        self.producer.close();
    }
}

/// A batch for Python: the datums; which channel each came through, as runs
/// of `(count, channel)`, so one list crosses instead of a tuple per datum;
/// and `(index, reason)` for each payload that did not decode (left as raw
/// `bytes` in its place).
type Batch = (Py<PyList>, Vec<(usize, u64)>, Vec<(usize, String)>);

fn batch_for_python(py: Python<'_>, framing: Framing, arrivals: Vec<Arrival>) -> PyResult<Batch> {
    let mut runs: Vec<(usize, u64)> = Vec::new();
    let mut undecodable = Vec::new();
    let items = PyList::empty(py);
    let mut index = 0;
    for arrival in &arrivals {
        match runs.last_mut() {
            Some((count, channel)) if *channel == arrival.channel => *count += arrival.run.frames,
            _ => runs.push((arrival.run.frames, arrival.channel)),
        }
        for payload in arrival.run.payloads() {
            match framing.decode(py, payload) {
                Ok(item) => items.append(item)?,
                Err(reason) => {
                    items.append(PyBytes::new(py, payload))?;
                    undecodable.push((index, reason));
                }
            }
            index += 1;
        }
    }
    Ok((items.unbind(), runs, undecodable))
}

#[pyclass(module = "mosaik._mosaik", name = "Consumer", frozen)]
pub struct PyConsumer {
    consumer: Arc<Consumer>,
    framing: Framing,
}

#[pymethods]
impl PyConsumer {
    #[getter]
    fn stream_id(&self) -> String {
        self.consumer.stream_id().to_hex()
    }

    #[getter]
    fn producer_count(&self) -> usize {
        self.consumer.producers()
    }

    /// Followed producers as `(peer_id, stream_id, state, datums, bytes)`.
    #[getter]
    fn channels(&self) -> Vec<ChannelTuple> {
        self.consumer.channels().iter().map(channel_tuple).collect()
    }

    #[getter]
    fn is_closed(&self) -> bool {
        self.consumer.is_closed()
    }

    #[getter]
    fn stats(&self) -> (u64, u64) {
        (self.consumer.stats().datums(), self.consumer.stats().bytes())
    }

    /// Datums the overflow policy dropped.
    #[getter]
    fn dropped(&self) -> u64 {
        self.consumer.dropped()
    }

    /// Resolves to a `Batch` of 1 to `max_items` datums, or `None` once
    /// closed and drained.
    fn recv_batch<'py>(&self, py: Python<'py>, max_items: usize) -> PyResult<Bound<'py, PyAny>> {
        if max_items == 0 {
            return Err(value_error("max_items", "must be at least 1"));
        }
        let consumer = self.consumer.clone();
        let framing = self.framing;
        runtime::into_py_future(py, async move {
            let batch = consumer.recv_batch(max_items).await;
            if batch.is_empty() {
                return Ok(None);
            }
            Python::attach(|py| batch_for_python(py, framing, batch)).map(Some)
        })
    }

    /// Like `recv_batch` without waiting: raises `Empty`, or `Closed` once
    /// closed and drained.
    fn try_recv_batch(&self, py: Python<'_>, max_items: usize) -> PyResult<Batch> {
        if max_items == 0 {
            return Err(value_error("max_items", "must be at least 1"));
        }
        match self.consumer.try_recv_batch(max_items) {
            Ok(batch) => batch_for_python(py, self.framing, batch),
            Err(true) => Err(Closed::new_err("the consumer is closed")),
            Err(false) => Err(Empty::new_err("nothing to receive yet")),
        }
    }

    /// A descriptor the event loop polls instead of awaiting `recv_batch`
    /// (readable once armed and a datum arrives, or the consumer closes).
    fn ready_fd(&self) -> PyResult<i32> {
        self.consumer
            .ready_fd()
            .map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("no ready descriptor: {e}")))
    }

    /// Arms the ready descriptor; True if there is no need to wait.
    fn arm_ready(&self) -> bool {
        self.consumer.arm_ready()
    }

    /// Makes the ready descriptor unreadable again after a wake.
    fn clear_ready(&self) {
        self.consumer.clear_ready()
    }

    /// Leaves the producer behind `channel` because its datum could not be
    /// decoded; returns whether that subscription was still live.
    fn reject(&self, channel: u64, reason: &str) -> bool {
        self.consumer.reject(channel, reason)
    }

    fn subscribed<'py>(&self, py: Python<'py>, minimum: usize) -> PyResult<Bound<'py, PyAny>> {
        let consumer = self.consumer.clone();
        runtime::into_py_future(py, async move {
            consumer.subscribed(minimum).await;
            Ok(())
        })
    }

    fn close(&self) {
        self.consumer.close();
    }
}
