//! The tokio runtime this extension owns, and the bridge to asyncio.
//!
//! We build the runtime ourselves (rather than pyo3-async-runtimes' global
//! one) so we can shut it down: at interpreter exit the Python package calls
//! `_shutdown`, which closes live nodes and stops the workers with the GIL
//! released and a deadline. A process forked from one that started the
//! runtime has no worker threads, so every entry point checks the pid and
//! raises instead of hanging.
//!
//! `into_py_future` hands Rust futures to asyncio through `bridge.rs`.

use std::{
    future::Future,
    panic::AssertUnwindSafe,
    sync::{
        Mutex, OnceLock, Weak,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::FutureExt;
use mosaik_core::Node;
use pyo3::{IntoPyObjectExt, exceptions::PyRuntimeError, prelude::*};
use tokio::{
    runtime::{Handle, Runtime},
    task::AbortHandle,
};

use crate::{bridge, errors::MosaikError};

struct Owned {
    runtime: Mutex<Option<Runtime>>,
    handle: Handle,
    pid: u32,
}

static OWNED: OnceLock<Owned> = OnceLock::new();
static SHUT_DOWN: AtomicBool = AtomicBool::new(false);
/// Nodes still open, closed on shutdown so peers hear a proper goodbye.
static LIVE_NODES: Mutex<Vec<(Weak<()>, Node)>> = Mutex::new(Vec::new());
/// Rust futures currently awaited from Python (a cancelled await must drop its future).
static INFLIGHT: AtomicUsize = AtomicUsize::new(0);

const SHUTDOWN_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
const SHUTDOWN_WORKERS_TIMEOUT: Duration = Duration::from_secs(1);

fn owned() -> &'static Owned {
    OWNED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("mosaik-worker")
            .enable_all()
            .build()
            .expect("mosaik: could not start the tokio runtime");
        Owned {
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
            pid: std::process::id(),
        }
    })
}

fn forked(owned: &Owned) -> bool {
    owned.pid != std::process::id()
}

/// The runtime handle, or a clear error after fork or shutdown.
pub fn handle() -> PyResult<Handle> {
    let owned = owned();
    if forked(owned) {
        return Err(PyRuntimeError::new_err(
            "mosaik cannot be used in a process forked from one that already used it: \
             its runtime threads do not survive fork(); start nodes in a fresh process \
             (multiprocessing 'spawn' or 'forkserver')",
        ));
    }
    if SHUT_DOWN.load(Ordering::Acquire) {
        return Err(MosaikError::new_err(
            "mosaik's runtime has shut down (the interpreter is exiting)",
        ));
    }
    Ok(owned.handle.clone())
}

/// Registers a node so shutdown closes it; `token` lives as long as its Python handle.
pub fn register_node(token: Weak<()>, node: Node) {
    prune_nodes();
    LIVE_NODES
        .lock()
        .expect("node registry")
        .push((token, node.clone()));
    // Once drained, the node leaves the registry, which would otherwise keep
    // its endpoint, and so its socket, until the next node is created.
    if let Some(owned) = OWNED.get() {
        owned.handle.spawn(async move {
            node.drained().await;
            drop(node);
            prune_nodes();
        });
    }
}

/// Drops drained nodes and nodes nobody can close any more. Closed nodes
/// stay until their endpoint has drained: shutdown waits for them.
fn prune_nodes() {
    LIVE_NODES
        .lock()
        .expect("node registry")
        .retain(|(t, n)| (t.strong_count() > 0 || n.is_closed()) && !n.is_drained());
}

/// Closes `node` on the runtime without blocking the caller (used on drop).
pub fn close_in_background(node: Node) {
    match OWNED.get() {
        Some(owned) if !forked(owned) && !SHUT_DOWN.load(Ordering::Acquire) => {
            owned.handle.spawn(async move { node.close().await });
        }
        // After fork or shutdown there is no reactor to drop iroh state on.
        _ => std::mem::forget(node),
    }
}

/// Closes every live node, then stops the workers. Idempotent.
pub fn shutdown(py: Python<'_>) {
    let Some(owned) = OWNED.get() else { return };
    if SHUT_DOWN.swap(true, Ordering::AcqRel) {
        return;
    }
    let runtime = owned.runtime.lock().expect("runtime lock").take();
    let nodes: Vec<Node> = LIVE_NODES
        .lock()
        .expect("node registry")
        .drain(..)
        .map(|(_, node)| node)
        .collect();
    let Some(runtime) = runtime else { return };
    if forked(owned) {
        std::mem::forget(nodes);
        std::mem::forget(runtime);
        return;
    }
    py.detach(move || {
        runtime.block_on(async move {
            let closing = futures::future::join_all(nodes.iter().map(|n| async move {
                n.close().await;
                n.drained().await;
            }));
            let _ = tokio::time::timeout(SHUTDOWN_CLOSE_TIMEOUT, closing).await;
            crate::logging::mute_dependencies();
            drop(nodes);
        });
        runtime.shutdown_timeout(SHUTDOWN_WORKERS_TIMEOUT);
    });
}

pub fn inflight() -> usize {
    INFLIGHT.load(Ordering::Relaxed)
}

pub fn alive_tasks() -> usize {
    handle().map_or(0, |h| h.metrics().num_alive_tasks())
}

/// Decrements the in-flight count when the Rust future is dropped,
/// whether it finished or was cancelled from Python.
struct InflightGuard;

impl InflightGuard {
    fn new() -> Self {
        INFLIGHT.fetch_add(1, Ordering::Relaxed);
        Self
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        INFLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs `fut` on our runtime and returns an asyncio future for it, bound
/// to the running event loop. Cancelling the asyncio future drops `fut`.
///
/// The result reaches the loop through its completion queue (see
/// `bridge.rs`), or, on a loop that cannot watch a descriptor, through a
/// blocking thread and `call_soon_threadsafe` (`resolve_from_thread`).
/// Either way a result that arrives after its event loop has closed is
/// dropped quietly. That happens whenever `asyncio.run` ends (Ctrl-C, an
/// exception, `main` returning) while a call is in flight: asyncio.run
/// cancels the call's future and closes the loop, racing the worker that
/// delivers the result (pyo3-async-runtimes printed "RuntimeError: Event
/// loop is closed" from a background thread there, seen in
/// tests/reliability/test_shutdown.py). Nobody can await such a result.
pub fn into_py_future<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let handle = handle()?;
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let future = event_loop.call_method0("create_future")?;
    let guard = InflightGuard::new();
    // A panic in `fut` must still complete the future, or its await hangs.
    let run = async move {
        let _guard = guard;
        AssertUnwindSafe(fut).catch_unwind().await.map_err(panic_message)
    };
    let py_future = future.clone().unbind();
    let task = match bridge::queue_for(&event_loop) {
        Some(queue) => handle.spawn(async move {
            let outcome = run.await;
            queue.push(Box::new(move |py| complete(py, py_future.bind(py), outcome)));
        }),
        None => {
            let event_loop = event_loop.clone().unbind();
            handle.spawn(async move {
                let outcome = run.await;
                // Wait for the GIL on a blocking thread, never on a worker.
                tokio::task::spawn_blocking(move || {
                    Python::attach(|py| {
                        resolve_from_thread(py, event_loop.bind(py), py_future.bind(py), outcome)
                    });
                });
            })
        }
    };
    // Aborting the task drops `fut` and nothing is ever queued for it.
    future.call_method1("add_done_callback", (AbortIfCancelled(task.abort_handle()),))?;
    Ok(future)
}

/// A call's outcome: its result, or the message of the panic that ended it.
type Outcome<T> = Result<PyResult<T>, String>;

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(text) => *text,
        Err(panic) => panic
            .downcast::<&str>()
            .map(|text| text.to_string())
            .unwrap_or_else(|_| "unknown error".into()),
    }
}

/// An awaitable that resolves to `None` once `fut` has finished.
pub fn until_done<'py>(
    py: Python<'py>,
    fut: impl Future<Output = ()> + Send + 'static,
) -> PyResult<Bound<'py, PyAny>> {
    into_py_future(py, async move {
        fut.await;
        Ok(())
    })
}

/// Runs `make` inside the runtime, for core calls that spawn their workers
/// with `tokio::spawn`.
pub fn entered<T>(make: impl FnOnce() -> T) -> PyResult<T> {
    let handle = handle()?;
    let _entered = handle.enter();
    Ok(make())
}

/// The value to complete a future with, and whether it is an exception.
fn into_value<T>(py: Python<'_>, outcome: Outcome<T>) -> (Py<PyAny>, bool)
where
    T: for<'a> IntoPyObject<'a>,
{
    match outcome {
        Ok(Ok(value)) => match value.into_py_any(py) {
            Ok(value) => (value, false),
            Err(error) => (error.into_value(py).into_any(), true),
        },
        Ok(Err(error)) => (error.into_value(py).into_any(), true),
        Err(panic) => {
            let error = PyRuntimeError::new_err(format!("mosaik: a native task panicked: {panic}"));
            (error.into_value(py).into_any(), true)
        }
    }
}

fn is_true(value: PyResult<Bound<'_, PyAny>>) -> bool {
    value.and_then(|v| v.is_truthy()).unwrap_or(true)
}

/// On the loop's thread: completes `future` unless it was cancelled.
fn complete<T>(py: Python<'_>, future: &Bound<'_, PyAny>, outcome: Outcome<T>)
where
    T: for<'a> IntoPyObject<'a>,
{
    if is_true(future.call_method0("done")) {
        return; // cancelled
    }
    let (value, failed) = into_value(py, outcome);
    let method = if failed { "set_exception" } else { "set_result" };
    if let Err(error) = future.call_method1(method, (value,)) {
        error.write_unraisable(py, Some(future));
    }
}

/// From another thread: hands `outcome` to the loop that owns `future`,
/// unless nobody can take it.
fn resolve_from_thread<T>(
    py: Python<'_>,
    event_loop: &Bound<'_, PyAny>,
    future: &Bound<'_, PyAny>,
    outcome: Outcome<T>,
) where
    T: for<'a> IntoPyObject<'a>,
{
    if is_true(future.call_method0("done")) {
        return; // cancelled
    }
    let (value, failed) = into_value(py, outcome);
    if let Err(error) = event_loop.call_method1("call_soon_threadsafe", (Resolve, future, value, failed)) {
        // A closed loop is the expected case (see `into_py_future`); report anything else.
        if !is_true(event_loop.call_method0("is_closed")) {
            error.write_unraisable(py, Some(future));
        }
    }
}

/// Runs on the event loop: completes the future unless it was cancelled meanwhile.
#[pyclass(frozen)]
struct Resolve;

#[pymethods]
impl Resolve {
    fn __call__(&self, future: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>, failed: bool) -> PyResult<()> {
        if future.call_method0("done")?.is_truthy()? {
            return Ok(());
        }
        let method = if failed { "set_exception" } else { "set_result" };
        future.call_method1(method, (value,))?;
        Ok(())
    }
}

/// The future's done-callback: a cancelled await drops the Rust future.
#[pyclass(frozen)]
struct AbortIfCancelled(AbortHandle);

#[pymethods]
impl AbortIfCancelled {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0("cancelled")?.is_truthy()? {
            self.0.abort();
        }
        Ok(())
    }
}
