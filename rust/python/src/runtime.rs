//! The tokio runtime this extension owns, and the bridge to asyncio.
//!
//! We build the runtime ourselves (rather than pyo3-async-runtimes' global
//! one) so we can shut it down: at interpreter exit the Python package calls
//! `_shutdown`, which closes live nodes and stops the workers with the GIL
//! released and a deadline. A process forked from one that started the
//! runtime has no worker threads, so every entry point checks the pid and
//! raises instead of hanging.

use std::{
    any::Any,
    cell::OnceCell,
    future::Future,
    pin::Pin,
    sync::{
        Mutex, OnceLock, Weak,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use mosaik_core::Node;
use pyo3::{exceptions::PyRuntimeError, prelude::*};
use pyo3_async_runtimes::{
    TaskLocals,
    generic::{self, ContextExt, JoinError as GenericJoinError, Runtime as GenericRuntime},
};
use tokio::runtime::{Handle, Runtime};

use crate::errors::MosaikError;

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
    let mut nodes = LIVE_NODES.lock().expect("node registry");
    // Keep closed nodes until their endpoint has drained: shutdown waits for them.
    nodes.retain(|(t, n)| (t.strong_count() > 0 || n.is_closed()) && !n.is_drained());
    nodes.push((token, node));
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

/// Runs `fut` on our runtime and returns an asyncio future for it.
/// Cancelling the asyncio future drops `fut`.
pub fn into_py_future<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    handle()?;
    let guard = InflightGuard::new();
    generic::future_into_py::<MosaikRuntime, _, T>(py, async move {
        let _guard = guard;
        fut.await
    })
}

/// pyo3-async-runtimes' view of our runtime.
pub struct MosaikRuntime;

pub struct TaskJoinError(tokio::task::JoinError);

impl GenericJoinError for TaskJoinError {
    fn is_panic(&self) -> bool {
        self.0.is_panic()
    }

    fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.0.into_panic()
    }
}

pub struct TaskJoinHandle(tokio::task::JoinHandle<()>);

impl Future for TaskJoinHandle {
    type Output = Result<(), TaskJoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map_err(TaskJoinError)
    }
}

tokio::task_local! {
    static TASK_LOCALS: OnceCell<TaskLocals>;
}

impl GenericRuntime for MosaikRuntime {
    type JoinError = TaskJoinError;
    type JoinHandle = TaskJoinHandle;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // After shutdown the handle still accepts tasks and drops them at once.
        TaskJoinHandle(owned().handle.spawn(fut))
    }

    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        TaskJoinHandle(owned().handle.spawn_blocking(f))
    }
}

impl ContextExt for MosaikRuntime {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        let cell = OnceCell::new();
        cell.set(locals).ok();
        Box::pin(TASK_LOCALS.scope(cell, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS
            .try_with(|cell| cell.get().cloned())
            .unwrap_or_default()
    }
}
