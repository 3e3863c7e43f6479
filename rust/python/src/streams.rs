//! `node.streams` for Python: makes producers (`producer.rs`) and consumers
//! (`consumer.rs`) from the options dicts `mosaik/streams.py` passes, and
//! turns a Python predicate into the core's `Require` and `require_ticket`
//! into its ticket validators.

use std::sync::Arc;

use mosaik_core::{
    Digest, Node,
    streams::{ConsumerConfig, ProducerConfig, Require, datum::DatumLayout},
    tickets::Validators,
};
use pyo3::prelude::*;
use tracing::warn;

use crate::{
    consumer::PyConsumer,
    convert::{self, BackoffOptions, PeerInfo},
    errors::py_err,
    node::check_open,
    producer::PyProducer,
    runtime, tickets,
};

/// What `net.streams.producer(...)` passes besides the stream name.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct ProducerOptions {
    layout: String,
    buffer_size: usize,
    lagging: String,
    max_consumers: Option<usize>,
    max_subscriptions_per_peer: usize,
    require: Option<Py<PyAny>>,
    require_ticket: Py<PyAny>,
}

/// What `net.streams.consumer(...)` passes besides the stream name.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct ConsumerOptions {
    layout: String,
    queue_size: usize,
    queue_bytes: usize,
    overflow: String,
    backoff: Option<BackoffOptions>,
    require: Option<Py<PyAny>>,
    require_ticket: Py<PyAny>,
}

/// A Python callable taking a `PeerInfo`. It runs on a blocking thread; an
/// exception, or an interpreter that is shutting down, means no.
fn require_from(callable: Py<PyAny>) -> Require {
    Require::new(move |entry| {
        let peer = PeerInfo::of(entry);
        Python::try_attach(|py| match callable.call1(py, (peer,)) {
            Ok(verdict) => verdict.is_truthy(py).unwrap_or(false),
            Err(error) => {
                warn!(argument = "require", %error, "the predicate raised; treating it as False");
                false
            }
        })
        .unwrap_or(false)
    })
}

#[pyclass(module = "mosaik._mosaik", name = "Streams", frozen)]
pub struct PyStreams {
    node: Node,
}

impl PyStreams {
    pub fn new(node: Node) -> Self {
        Self { node }
    }
}

impl ProducerOptions {
    fn into_config(self, stream: &str) -> PyResult<(ProducerConfig, DatumLayout)> {
        let mut config = ProducerConfig::new(Digest::from_name(stream));
        config.buffer_size = self.buffer_size;
        config.lagging = convert::lagging(&self.lagging)?;
        config.max_consumers = self.max_consumers.unwrap_or(config.max_consumers);
        config.max_subscriptions_per_peer = self.max_subscriptions_per_peer;
        config.require = self.require.map(require_from);
        config.tickets = ticket_validators(&self.require_ticket)?;
        Ok((config, convert::layout(&self.layout)?))
    }
}

/// The `require_ticket` option as the core's validator list.
fn ticket_validators(require_ticket: &Py<PyAny>) -> PyResult<Validators> {
    Python::attach(|py| tickets::validators_from(require_ticket.bind(py), "require_ticket"))
        .map(Validators::from)
}

impl ConsumerOptions {
    fn into_config(self, stream: &str) -> PyResult<(ConsumerConfig, DatumLayout)> {
        let mut config = ConsumerConfig::new(Digest::from_name(stream));
        config.queue_size = self.queue_size;
        config.queue_bytes = self.queue_bytes;
        config.overflow = convert::overflow(&self.overflow)?;
        if let Some(backoff) = self.backoff {
            config.backoff = backoff.into_config()?;
        }
        config.require = self.require.map(require_from);
        config.tickets = ticket_validators(&self.require_ticket)?;
        Ok((config, convert::layout(&self.layout)?))
    }
}

#[pymethods]
impl PyStreams {
    fn producer(&self, stream: &str, options: ProducerOptions) -> PyResult<PyProducer> {
        check_open(&self.node)?;
        let (config, layout) = options.into_config(stream)?;
        let producer = runtime::entered(|| self.node.streams().producer(config))?.map_err(py_err)?;
        Ok(PyProducer::new(producer, layout))
    }

    fn consumer(&self, stream: &str, options: ConsumerOptions) -> PyResult<PyConsumer> {
        check_open(&self.node)?;
        let (config, layout) = options.into_config(stream)?;
        let consumer = runtime::entered(|| self.node.streams().consumer(config))?.map_err(py_err)?;
        Ok(PyConsumer::new(Arc::new(consumer), layout))
    }
}
