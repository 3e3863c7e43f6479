//! Rust `tracing` events, delivered to Python's `logging` under `mosaik`.
//!
//! Tokio workers never touch the GIL for logging: the tracing layer formats
//! an event and `try_send`s it into a bounded channel (dropping, and
//! counting, when full). One forwarder thread drains the channel in batches
//! and calls `logging.getLogger("mosaik.<crate>").log(...)`. The forwarder
//! is stopped at interpreter exit before finalization begins.

use std::{
    fmt::Write as _,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering},
        mpsc::{self, Receiver, RecvTimeoutError, SyncSender},
    },
    thread::JoinHandle,
    time::Duration,
};

use pyo3::prelude::*;
use tracing::{Event, Level, Subscriber, field::Field};
use tracing_subscriber::{
    layer::{Context, Layer},
    prelude::*,
};

const CHANNEL_CAPACITY: usize = 4096;
const BATCH: usize = 256;

/// Python level numbers (DEBUG=10 ... ERROR=40; TRACE maps to 5).
static PY_LEVEL: AtomicU8 = AtomicU8::new(30);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static STOPPING: AtomicBool = AtomicBool::new(false);
static DEPENDENCIES_MUTED: AtomicBool = AtomicBool::new(false);
/// The running forwarder.
struct Forwarder {
    sender: SyncSender<Record>,
    thread: JoinHandle<()>,
    /// The process that started it: one forked from it has no such thread.
    started_by: u32,
}

static FORWARDER: Mutex<Option<Forwarder>> = Mutex::new(None);

struct Record {
    level: u8,
    logger: String,
    message: String,
}

fn py_level(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        Level::TRACE => 5,
    }
}

/// The core (`mosaik_core`) and this binding (its lib is `_mosaik`).
fn is_ours(target: &str) -> bool {
    target.starts_with("mosaik") || target.starts_with("_mosaik")
}

/// Our crates log at the chosen level. Dependencies (iroh, noq, ...) warn
/// about routine things (peers vanishing mid-handshake, endpoints closing),
/// so they are forwarded from ERROR up, from WARNING up at DEBUG, and fully
/// at TRACE.
fn wanted(level: u8, target: &str) -> bool {
    let threshold = PY_LEVEL.load(Ordering::Relaxed);
    if is_ours(target) {
        return level >= threshold;
    }
    if DEPENDENCIES_MUTED.load(Ordering::Relaxed) {
        return false;
    }
    let floor = match threshold {
        0..=5 => threshold,
        6..=10 => 30,
        _ => 40,
    };
    level >= floor.max(threshold)
}

struct PythonLayer {
    sender: SyncSender<Record>,
}

struct MessageVisitor<'a>(&'a mut String);

impl tracing::field::Visit for MessageVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for PythonLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        wanted(py_level(metadata.level()), metadata.target())
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let metadata = event.metadata();
        let crate_name = metadata.target().split("::").next().unwrap_or("mosaik");
        let mut message = String::new();
        event.record(&mut MessageVisitor(&mut message));
        let record = Record {
            level: py_level(metadata.level()),
            logger: match crate_name {
                "_mosaik" => "mosaik.binding".to_owned(),
                name => format!("mosaik.{}", name.trim_start_matches("mosaik_")),
            },
            message,
        };
        if self.sender.try_send(record).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn forward(receiver: Receiver<Record>) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        match receiver.recv_timeout(Duration::from_millis(200)) {
            Ok(record) => batch.push(record),
            Err(RecvTimeoutError::Timeout) if STOPPING.load(Ordering::Acquire) => return,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while batch.len() < BATCH {
            match receiver.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        Python::attach(|py| {
            let Ok(logging) = py.import("logging") else {
                return;
            };
            for record in batch.drain(..) {
                if let Ok(logger) = logging.call_method1("getLogger", (record.logger.as_str(),)) {
                    let _ = logger.call_method1("log", (record.level, record.message));
                }
            }
        });
        if STOPPING.load(Ordering::Acquire) {
            return;
        }
    }
}

/// Installs the layer as the global subscriber and starts the forwarder.
pub fn init() {
    let mut forwarder = FORWARDER.lock().expect("log forwarder");
    if forwarder.is_some() {
        return;
    }
    let (sender, receiver) = mpsc::sync_channel(CHANNEL_CAPACITY);
    let layer = PythonLayer {
        sender: sender.clone(),
    };
    if tracing_subscriber::registry().with(layer).try_init().is_err() {
        // Someone else (an embedding app) owns the global subscriber.
        return;
    }
    let thread = std::thread::Builder::new()
        .name("mosaik-log".into())
        .spawn(move || forward(receiver))
        .expect("mosaik: could not start the log forwarder");
    *forwarder = Some(Forwarder {
        sender,
        thread,
        started_by: std::process::id(),
    });
}

/// Stops the forwarder; later events are dropped. Call with the GIL released.
pub fn stop() {
    let taken = FORWARDER.lock().expect("log forwarder").take();
    if let Some(Forwarder {
        sender,
        thread,
        started_by,
    }) = taken
    {
        drop(sender);
        // The layer keeps a sender clone, so the forwarder would never see a
        // disconnect: wake it with the flag instead.
        STOPPING.store(true, Ordering::Release);
        if started_by == std::process::id() {
            let _ = thread.join();
        } else {
            // Forked: the thread stayed in the parent; joining panics.
            std::mem::forget(thread);
        }
    }
}

/// At interpreter exit, endpoints still draining are dropped, and iroh says
/// so at ERROR level; that is expected then, so dependencies go quiet.
pub fn mute_dependencies() {
    DEPENDENCIES_MUTED.store(true, Ordering::Relaxed);
    tracing::callsite::rebuild_interest_cache();
}

pub fn set_level(level: u8) {
    PY_LEVEL.store(level, Ordering::Relaxed);
    tracing::callsite::rebuild_interest_cache();
}

pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}
