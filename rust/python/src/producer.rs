//! `Producer` for Python. A datum's bytes are taken from the Python object
//! (`str` for the `str` layout, a bytes-like object otherwise) and laid out
//! by the core's `DatumLayout` straight into the frames the links write, in
//! one pass over each batch: no Python code runs per datum.

use mosaik_core::{
    network::frames::{WireFrames, WireFramesBuilder},
    streams::{
        Producer, SendError,
        datum::{DatumLayout, frames_builder},
    },
};
use pyo3::{
    IntoPyObjectExt,
    exceptions::PyTypeError,
    prelude::*,
    types::{PyByteArray, PyBytes, PyList, PyMemoryView, PyString},
};

use crate::{
    convert::{ChannelInfo, Stats},
    errors::{py_err, value_error},
    runtime,
};

/// Calls `write` with the bytes of `datum`, or raises `TypeError` naming it.
fn with_data<R>(
    layout: DatumLayout,
    datum: &Bound<'_, PyAny>,
    write: impl FnOnce(&[u8]) -> R,
) -> PyResult<R> {
    if layout == DatumLayout::Str {
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

fn wrong_type(expected: &str, datum: &Bound<'_, PyAny>) -> PyErr {
    let got = datum
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    PyTypeError::new_err(format!("datum: expected {expected}, got {got}"))
}

/// `datum`'s payload in `layout`, on its own (outside any frame).
pub fn payload_of(layout: DatumLayout, datum: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    with_data(layout, datum, |data| {
        let mut payload = bytes::BytesMut::with_capacity(layout.encoded_len(data.len()));
        layout.encode_into(&mut payload, data);
        payload.to_vec()
    })
}

/// Appends `datum`'s frame; `ValueError` naming the argument for a datum
/// over the stream's frame limit, before anything is copied.
fn push(
    layout: DatumLayout,
    frames: &mut WireFramesBuilder,
    datum: &Bound<'_, PyAny>,
    name: impl Fn() -> String,
) -> PyResult<()> {
    with_data(layout, datum, |data| {
        layout
            .push(frames, data)
            .map_err(|too_large| value_error(&name(), too_large))
    })?
}

/// One datum's frame.
fn encode(layout: DatumLayout, datum: &Bound<'_, PyAny>) -> PyResult<WireFrames> {
    let mut frames = frames_builder();
    push(layout, &mut frames, datum, || "datum".into())?;
    Ok(frames.finish())
}

/// Many datums' frames, laid out in one buffer as the links write them.
fn encode_all(layout: DatumLayout, datums: &Bound<'_, PyList>) -> PyResult<WireFrames> {
    let mut frames = frames_builder();
    for (index, datum) in datums.iter().enumerate() {
        push(layout, &mut frames, &datum, || format!("datums[{index}]"))?;
    }
    Ok(frames.finish())
}

/// `error` with `sent`, how many datums of a `send_many` went out before it.
fn with_sent(py: Python<'_>, error: PyErr, sent: usize) -> PyErr {
    let _ = error.value(py).setattr("sent", sent);
    error
}

#[pyclass(module = "mosaik._mosaik", name = "Producer", frozen)]
pub struct PyProducer {
    /// The stream's id, 64 hex.
    #[pyo3(get)]
    stream_id: String,
    producer: Producer,
    layout: DatumLayout,
}

impl PyProducer {
    pub fn new(producer: Producer, layout: DatumLayout) -> Self {
        Self {
            stream_id: producer.stream_id().to_hex(),
            producer,
            layout,
        }
    }
}

#[pymethods]
impl PyProducer {
    #[getter]
    fn consumer_count(&self) -> usize {
        self.producer.consumers()
    }

    /// Live subscriptions, connecting or connected.
    #[getter]
    fn channels(&self) -> Vec<ChannelInfo> {
        self.producer
            .channels()
            .iter()
            .map(|c| ChannelInfo::of(c, self.producer.peer_entry(&c.peer())))
            .collect()
    }

    #[getter]
    fn is_online(&self) -> bool {
        self.producer.is_online()
    }

    #[getter]
    fn is_closed(&self) -> bool {
        self.producer.is_closed()
    }

    /// Datums and bytes sent, counted once per datum as mosaik does.
    #[getter]
    fn stats(&self) -> Stats {
        Stats::of(self.producer.stats())
    }

    /// Subscriptions refused or ended for access, by reason.
    #[getter]
    fn refusals(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.producer.refusals()
    }

    /// Queues `datum` at once if it fits and returns None; otherwise an
    /// awaitable that waits while offline or full. Encoded once either way.
    fn send<'py>(&self, py: Python<'py>, datum: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let frame = encode(self.layout, datum)?;
        match self.producer.try_send_many(&frame) {
            Ok(_) => return Ok(None),
            Err(SendError::Offline(_) | SendError::Full(_)) => {}
            Err(closed) => return Err(py_err(closed)),
        };
        let producer = self.producer.clone();
        runtime::into_py_future(py, async move {
            producer
                .send_many(frame)
                .await
                .map_err(|(error, _)| py_err(error))
        })
        .map(Some)
    }

    /// Sends each datum in order. What fits is queued at once: then this
    /// returns the count; otherwise an awaitable that queues the rest
    /// (waiting while offline or full) and resolves to the count. Encoded
    /// once either way. An error carries `sent`, the count that went out
    /// before it.
    fn send_many<'py>(&self, py: Python<'py>, datums: &Bound<'py, PyList>) -> PyResult<Bound<'py, PyAny>> {
        let frames = encode_all(self.layout, datums)?;
        let count = frames.len();
        let sent = match self.producer.try_send_many(&frames) {
            Ok(sent) => sent,
            Err(SendError::Offline(_) | SendError::Full(_)) => 0,
            Err(closed) => return Err(with_sent(py, py_err(closed), 0)),
        };
        if sent == count {
            return count.into_bound_py_any(py);
        }
        let rest = frames.slice(sent..count);
        let producer = self.producer.clone();
        runtime::into_py_future(py, async move {
            producer
                .send_many(rest)
                .await
                .map_err(|(error, more)| Python::attach(|py| with_sent(py, py_err(error), sent + more)))?;
            Ok(count)
        })
    }

    fn try_send(&self, datum: &Bound<'_, PyAny>) -> PyResult<()> {
        self.producer
            .try_send_many(&encode(self.layout, datum)?)
            .map(|_| ())
            .map_err(py_err)
    }

    fn subscribed<'py>(&self, py: Python<'py>, minimum: usize) -> PyResult<Bound<'py, PyAny>> {
        let producer = self.producer.clone();
        runtime::until_done(py, async move { producer.subscribed(minimum).await })
    }

    fn unsubscribed<'py>(&self, py: Python<'py>, maximum: usize) -> PyResult<Bound<'py, PyAny>> {
        let producer = self.producer.clone();
        runtime::until_done(py, async move { producer.unsubscribed(maximum).await })
    }

    fn next_subscription<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        // Counted from now, not from when the awaitable first runs.
        let next = self.producer.next_subscription();
        runtime::until_done(py, next)
    }

    fn close(&self) {
        self.producer.close();
    }
}
