//! `Consumer` for Python. Datums cross in batches: one native call moves
//! everything queued (up to a bound) into one Python list, the core's
//! `DatumLayout` stripping each frame's layout on the way, so a datum is
//! copied once and no Python code runs per datum.

use std::sync::Arc;

use mosaik_core::streams::{Arrival, Consumer, TryRecvError, datum::DatumLayout};
use pyo3::{
    exceptions::PyOSError,
    prelude::*,
    types::{PyBytes, PyList, PyString},
};

use crate::{
    convert::{ChannelInfo, Stats},
    errors::{Closed, Empty},
    runtime,
};

/// A batch for Python: the datums; which channel each came through, as runs
/// of `(count, channel)`, so one list crosses instead of a tuple per datum;
/// and `(index, reason)` for each payload that did not decode (left as raw
/// `bytes` in its place).
#[pyclass(module = "mosaik._mosaik", name = "Batch", frozen)]
pub struct Batch {
    #[pyo3(get)]
    items: Py<PyList>,
    #[pyo3(get)]
    runs: Vec<(usize, u64)>,
    #[pyo3(get)]
    undecodable: Vec<(usize, String)>,
}

/// The Python value of one frame payload, or why it is not one.
pub fn decode<'py>(
    py: Python<'py>,
    layout: DatumLayout,
    payload: &[u8],
) -> Result<Bound<'py, PyAny>, String> {
    Ok(match layout {
        DatumLayout::Str => {
            PyString::new(py, layout.decode_str(payload).map_err(|e| e.to_string())?).into_any()
        }
        DatumLayout::Raw | DatumLayout::Bytes => {
            PyBytes::new(py, layout.decode(payload).map_err(|e| e.to_string())?).into_any()
        }
    })
}

fn batch_for_python(py: Python<'_>, layout: DatumLayout, arrivals: Vec<Arrival>) -> PyResult<Batch> {
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
            match decode(py, layout, payload) {
                Ok(item) => items.append(item)?,
                Err(reason) => {
                    items.append(PyBytes::new(py, payload))?;
                    undecodable.push((index, reason));
                }
            }
            index += 1;
        }
    }
    Ok(Batch {
        items: items.unbind(),
        runs,
        undecodable,
    })
}

#[pyclass(module = "mosaik._mosaik", name = "Consumer", frozen)]
pub struct PyConsumer {
    /// The stream's id, 64 hex.
    #[pyo3(get)]
    stream_id: String,
    consumer: Arc<Consumer>,
    layout: DatumLayout,
}

impl PyConsumer {
    pub fn new(consumer: Arc<Consumer>, layout: DatumLayout) -> Self {
        Self {
            stream_id: consumer.stream_id().to_hex(),
            consumer,
            layout,
        }
    }
}

#[pymethods]
impl PyConsumer {
    #[getter]
    fn producer_count(&self) -> usize {
        self.consumer.producers()
    }

    /// Followed producers, connecting or connected.
    #[getter]
    fn channels(&self) -> Vec<ChannelInfo> {
        self.consumer
            .channels()
            .iter()
            .map(|c| ChannelInfo::of(c, self.consumer.peer_entry(&c.peer())))
            .collect()
    }

    #[getter]
    fn is_closed(&self) -> bool {
        self.consumer.is_closed()
    }

    #[getter]
    fn is_online(&self) -> bool {
        self.consumer.is_online()
    }

    #[getter]
    fn stats(&self) -> Stats {
        Stats::of(self.consumer.stats())
    }

    /// Datums the overflow policy dropped.
    #[getter]
    fn dropped(&self) -> u64 {
        self.consumer.dropped()
    }

    /// Resolves to a `Batch` of 1 to `max_items` datums, or `None` once
    /// closed and drained.
    fn recv_batch<'py>(&self, py: Python<'py>, max_items: usize) -> PyResult<Bound<'py, PyAny>> {
        let consumer = self.consumer.clone();
        let layout = self.layout;
        runtime::into_py_future(py, async move {
            let batch = consumer.recv_batch(max_items).await;
            if batch.is_empty() {
                return Ok(None);
            }
            Python::attach(|py| batch_for_python(py, layout, batch)).map(Some)
        })
    }

    /// Like `recv_batch` without waiting: raises `Empty`, or `Closed` once
    /// closed and drained.
    fn try_recv_batch(&self, py: Python<'_>, max_items: usize) -> PyResult<Batch> {
        match self.consumer.try_recv_batch(max_items) {
            Ok(batch) => batch_for_python(py, self.layout, batch),
            Err(TryRecvError::Closed) => Err(Closed::new_err("the consumer is closed")),
            Err(TryRecvError::Empty) => Err(Empty::new_err("nothing to receive yet")),
        }
    }

    /// A descriptor the event loop polls instead of awaiting `recv_batch`
    /// (readable once armed and a datum arrives, or the consumer closes).
    fn ready_fd(&self) -> PyResult<i32> {
        self.consumer
            .ready_fd()
            .map_err(|e| PyOSError::new_err(format!("no ready descriptor: {e}")))
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
        runtime::until_done(py, async move { consumer.subscribed(minimum).await })
    }

    fn unsubscribed<'py>(&self, py: Python<'py>, maximum: usize) -> PyResult<Bound<'py, PyAny>> {
        let consumer = self.consumer.clone();
        runtime::until_done(py, async move { consumer.unsubscribed(maximum).await })
    }

    fn next_subscription<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        // Counted from now, not from when the awaitable first runs.
        let next = self.consumer.next_subscription();
        runtime::until_done(py, next)
    }

    fn close(&self) {
        self.consumer.close();
    }
}
