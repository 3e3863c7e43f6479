//! Producers and consumers for Python: bytes in, bytes out. Codecs live in
//! `mosaik/codecs.py`; only conversion happens here.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use mosaik_core::{
    Digest, Node,
    streams::{
        BackoffConfig, Channel, Consumer, ConsumerConfig, Delivery, Lagging, Overflow, Producer,
        ProducerConfig, Require, SendError,
    },
};
use pyo3::{
    prelude::*,
    types::{PyBytes, PyList},
};
use tracing::warn;

use crate::{
    errors::{Closed, Empty, Full, Offline, value_error},
    network::peer_tuple,
    runtime,
};

fn send_error(error: SendError) -> PyErr {
    match error {
        SendError::Offline(_) => Offline::new_err("the producer has no subscribers yet"),
        SendError::Full(_) => Full::new_err("the producer's buffer is full"),
        SendError::Closed(_) => Closed::new_err("the producer is closed"),
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

pub fn producer(
    node: &Node,
    stream: &str,
    buffer_size: usize,
    lagging: &str,
    max_consumers: Option<usize>,
    require: Option<Py<PyAny>>,
) -> PyResult<PyProducer> {
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
    Ok(PyProducer { producer })
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
    queue_size: usize,
    overflow: &str,
    backoff: Option<BackoffTuple>,
    require: Option<Py<PyAny>>,
) -> PyResult<PyConsumer> {
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
    })
}

#[pyclass(module = "mosaik._mosaik", name = "Producer", frozen)]
pub struct PyProducer {
    producer: Producer,
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

    fn send<'py>(&self, py: Python<'py>, payload: Vec<u8>) -> PyResult<Bound<'py, PyAny>> {
        let producer = self.producer.clone();
        runtime::into_py_future(py, async move {
            producer.send(Bytes::from(payload)).await.map_err(send_error)
        })
    }

    /// Sends each payload in order; resolves to how many were sent. An error
    /// carries `sent`, the count that went out before it.
    fn send_many<'py>(&self, py: Python<'py>, payloads: Vec<Vec<u8>>) -> PyResult<Bound<'py, PyAny>> {
        let producer = self.producer.clone();
        runtime::into_py_future(py, async move {
            let count = payloads.len();
            for (sent, payload) in payloads.into_iter().enumerate() {
                if let Err(error) = producer.send(Bytes::from(payload)).await {
                    let error = send_error(error);
                    Python::attach(|py| error.value(py).setattr("sent", sent))?;
                    return Err(error);
                }
            }
            Ok(count)
        })
    }

    fn try_send(&self, payload: Vec<u8>) -> PyResult<()> {
        self.producer.try_send(Bytes::from(payload)).map_err(send_error)
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

/// A batch for Python: the payloads, and which channel each came through as
/// runs of `(count, channel)`, so one list crosses instead of a tuple per datum.
type Batch = (Py<PyList>, Vec<(usize, u64)>);

fn batch_for_python(py: Python<'_>, deliveries: Vec<Delivery>) -> PyResult<Batch> {
    let mut runs: Vec<(usize, u64)> = Vec::new();
    for delivery in &deliveries {
        match runs.last_mut() {
            Some((count, channel)) if *channel == delivery.channel => *count += 1,
            _ => runs.push((1, delivery.channel)),
        }
    }
    let payloads = PyList::new(py, deliveries.iter().map(|d| PyBytes::new(py, &d.payload)))?;
    Ok((payloads.unbind(), runs))
}

#[pyclass(module = "mosaik._mosaik", name = "Consumer", frozen)]
pub struct PyConsumer {
    consumer: Arc<Consumer>,
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

    /// Resolves to `(payloads, runs)` with 1 to `max_items` payloads, or
    /// `None` once closed and drained.
    fn recv_batch<'py>(&self, py: Python<'py>, max_items: usize) -> PyResult<Bound<'py, PyAny>> {
        if max_items == 0 {
            return Err(value_error("max_items", "must be at least 1"));
        }
        let consumer = self.consumer.clone();
        runtime::into_py_future(py, async move {
            let batch = consumer.recv_batch(max_items).await;
            if batch.is_empty() {
                return Ok(None);
            }
            Python::attach(|py| batch_for_python(py, batch)).map(Some)
        })
    }

    /// Like `recv_batch` without waiting: raises `Empty`, or `Closed` once
    /// closed and drained.
    fn try_recv_batch(&self, py: Python<'_>, max_items: usize) -> PyResult<Batch> {
        if max_items == 0 {
            return Err(value_error("max_items", "must be at least 1"));
        }
        match self.consumer.try_recv_batch(max_items) {
            Ok(batch) => batch_for_python(py, batch),
            Err(true) => Err(Closed::new_err("the consumer is closed")),
            Err(false) => Err(Empty::new_err("nothing to receive yet")),
        }
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
