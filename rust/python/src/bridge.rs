//! The bridge from tokio to asyncio: how a Rust future awaited from Python
//! hands its result to the event loop.
//!
//! Every event loop gets one completion queue and one readable descriptor
//! (the core's `ReadySignal`), registered once with `loop.add_reader`. A
//! tokio worker that finishes a call pushes a completion onto its loop's
//! queue and fires the descriptor, at most once per batch; the loop drains
//! the whole queue in one callback, with the GIL it already holds, converts
//! the values and completes the futures there. No tokio thread waits for
//! the GIL and no thread is handed work per call. The old path (a blocking
//! thread per call that took the GIL, then `call_soon_threadsafe`) cost
//! 110-190 µs per call and waited behind the loop's hold on the GIL.
//!
//! A loop whose `add_reader` is not available (Windows' proactor) keeps the
//! old path (`runtime::resolve_from_thread`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use mosaik_core::primitives::ReadySignal;
use pyo3::{prelude::*, types::PyWeakrefReference};

/// A finished call, run on the loop's thread with the GIL.
pub type Completion = Box<dyn FnOnce(Python<'_>) + Send>;

/// One event loop's queue of finished calls.
pub struct LoopQueue {
    signal: ReadySignal,
    done: Mutex<Vec<Completion>>,
    /// Keeps the weak reference (and its callback) alive as long as we are.
    _watch: Mutex<Option<Py<PyWeakrefReference>>>,
}

impl LoopQueue {
    /// Hands a finished call to the loop; wakes it unless a wake is pending.
    pub fn push(&self, completion: Completion) {
        self.done.lock().expect("completion queue").push(completion);
        self.signal.fire();
    }
}

/// The queues of live loops, by the loop object's address. An entry leaves
/// when its loop is garbage-collected (a weak reference's callback), before
/// the address can be reused.
static QUEUES: Mutex<Option<HashMap<usize, Arc<LoopQueue>>>> = Mutex::new(None);

/// The completion queue of `event_loop`, set up on first use; `None` when
/// the loop cannot watch a descriptor.
pub fn queue_for(event_loop: &Bound<'_, PyAny>) -> Option<Arc<LoopQueue>> {
    let key = event_loop.as_ptr() as usize;
    if let Some(queue) = QUEUES
        .lock()
        .expect("loop queues")
        .get_or_insert_default()
        .get(&key)
    {
        return Some(queue.clone());
    }
    let signal = ReadySignal::new().ok()?;
    // Armed from the start: the first completion wakes the loop.
    signal.arm();
    let fd = signal.fd();
    let queue = Arc::new(LoopQueue {
        signal,
        done: Mutex::new(Vec::new()),
        _watch: Mutex::new(None),
    });
    if event_loop
        .call_method1("add_reader", (fd, Drain(queue.clone())))
        .is_err()
    {
        return None;
    }
    let watch = PyWeakrefReference::new_with(event_loop, Forget(key)).ok()?;
    *queue._watch.lock().expect("loop watch") = Some(watch.unbind());
    QUEUES
        .lock()
        .expect("loop queues")
        .get_or_insert_default()
        .insert(key, queue.clone());
    Some(queue)
}

/// The loop's reader callback: runs every completion queued so far.
#[pyclass(frozen)]
struct Drain(Arc<LoopQueue>);

#[pymethods]
impl Drain {
    fn __call__(&self, py: Python<'_>) {
        let queue = &self.0;
        queue.signal.clear();
        // Armed before taking (see `ReadySignal::arm`): a completion pushed
        // after the take wakes us again; one pushed before is in this batch.
        queue.signal.arm();
        let batch = std::mem::take(&mut *queue.done.lock().expect("completion queue"));
        for completion in batch {
            completion(py);
        }
    }
}

/// The weak reference's callback: the loop is gone, so is its queue (and
/// its descriptor, and whatever completions it never ran).
#[pyclass(frozen)]
struct Forget(usize);

#[pymethods]
impl Forget {
    fn __call__(&self, _reference: &Bound<'_, PyAny>) {
        let removed = QUEUES
            .lock()
            .expect("loop queues")
            .get_or_insert_default()
            .remove(&self.0);
        drop(removed);
    }
}
