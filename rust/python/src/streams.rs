//! Producers and consumers for Python: bytes in, bytes out. Codecs live in
//! `mosaik/codecs.py`; only conversion happens here.

use std::sync::Arc;

use bytes::Bytes;
use mosaik_core::{
    Digest, Node,
    streams::{Consumer, ConsumerConfig, Lagging, Producer, ProducerConfig, SendError},
};
use pyo3::{
    prelude::*,
    types::{PyBytes, PyList},
};

use crate::{
    errors::{Closed, Empty, Full, Offline, value_error},
    runtime,
};

fn send_error(error: SendError) -> PyErr {
    match error {
        SendError::Offline(_) => Offline::new_err("the producer has no subscribers yet"),
        SendError::Full(_) => Full::new_err("the producer's buffer is full"),
        SendError::Closed(_) => Closed::new_err("the producer is closed"),
    }
}

pub fn producer(
    node: &Node,
    stream: &str,
    buffer_size: usize,
    lagging: &str,
    max_consumers: Option<usize>,
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
    // The core spawns its workers with `tokio::spawn`: run it inside our runtime.
    let handle = runtime::handle()?;
    let _entered = handle.enter();
    let producer = node
        .streams()
        .producer(config)
        .map_err(|e| value_error("stream", e))?;
    Ok(PyProducer { producer })
}

pub fn consumer(node: &Node, stream: &str, queue_size: usize) -> PyResult<PyConsumer> {
    if queue_size == 0 {
        return Err(value_error("queue_size", "must be at least 1"));
    }
    let mut config = ConsumerConfig::new(Digest::from_name(stream));
    config.queue_size = queue_size;
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

    /// Sends each payload in order; resolves to how many were sent.
    fn send_many<'py>(&self, py: Python<'py>, payloads: Vec<Vec<u8>>) -> PyResult<Bound<'py, PyAny>> {
        let producer = self.producer.clone();
        runtime::into_py_future(py, async move {
            let count = payloads.len();
            for payload in payloads {
                producer.send(Bytes::from(payload)).await.map_err(send_error)?;
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

    #[getter]
    fn is_closed(&self) -> bool {
        self.consumer.is_closed()
    }

    #[getter]
    fn stats(&self) -> (u64, u64) {
        (self.consumer.stats().datums(), self.consumer.stats().bytes())
    }

    /// Resolves to the next payload, or `None` once closed and drained.
    fn recv<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let consumer = self.consumer.clone();
        runtime::into_py_future(py, async move {
            Ok(consumer
                .recv()
                .await
                .map(|payload| Python::attach(|py| PyBytes::new(py, &payload).unbind())))
        })
    }

    /// Resolves to up to `max_items` payloads (at least one), or `[]` once closed and drained.
    fn recv_batch<'py>(&self, py: Python<'py>, max_items: usize) -> PyResult<Bound<'py, PyAny>> {
        if max_items == 0 {
            return Err(value_error("max_items", "must be at least 1"));
        }
        let consumer = self.consumer.clone();
        runtime::into_py_future(py, async move {
            let batch = consumer.recv_batch(max_items).await;
            Python::attach(|py| {
                let items = batch.iter().map(|payload| PyBytes::new(py, payload));
                PyList::new(py, items).map(Bound::unbind)
            })
        })
    }

    /// A payload if one is ready; raises `Empty`, or `Closed` once closed and drained.
    fn try_recv<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        match self.consumer.try_recv() {
            Ok(payload) => Ok(PyBytes::new(py, &payload)),
            Err(true) => Err(Closed::new_err("the consumer is closed")),
            Err(false) => Err(Empty::new_err("nothing to receive yet")),
        }
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
