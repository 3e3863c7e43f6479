//! Recording of mosaik discovery events (`Discovery::events()`).
//!
//! A background task subscribes right after the node is built and appends
//! one JSON record per event to a shared, bounded list; the `events` command
//! drains it. Records: `{"kind": "discovered" | "updated", "peer_id",
//! "version"}`, `{"kind": "departed", "peer_id"}`, and `{"kind": "lagged",
//! "missed": n}` when mosaik's broadcast channel (backlog 100) overflowed.
//!
//! `Discovery::events()` only yields events sent after the call, and the
//! handle exists only once `NetworkBuilder::build()` returns, so an event
//! in the instant between mosaik's worker going online and our subscription
//! would be missed (none occurred in practice: first events need a dial,
//! sync or gossip message, which the driver sends after `start`).

use {
    mosaik::discovery::{Event, PeerEntry},
    serde_json::{Value, json},
    std::sync::{Arc, Mutex},
    tokio::{sync::broadcast, task::JoinHandle},
};

/// At most this many records are kept between two `events` commands; later
/// ones are counted in `dropped` instead.
const MAX_EVENTS: usize = 10_000;

#[derive(Default)]
struct Log {
    records: Vec<Value>,
    dropped: u64,
}

/// Shared event list plus the task that fills it.
pub struct EventLog {
    log: Arc<Mutex<Log>>,
    task: JoinHandle<()>,
}

impl EventLog {
    /// Starts recording from `receiver` until the channel closes.
    pub fn spawn(mut receiver: broadcast::Receiver<Event>) -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let sink = Arc::clone(&log);
        let task = tokio::spawn(async move {
            loop {
                let record = match receiver.recv().await {
                    Ok(event) => event_json(&event),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        json!({ "kind": "lagged", "missed": missed })
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                push(&sink, record);
            }
        });
        Self { log, task }
    }

    /// Returns the recorded events and clears the list.
    pub fn drain(&self) -> Value {
        let mut log = self.log.lock().expect("event log poisoned");
        let records = std::mem::take(&mut log.records);
        let dropped = std::mem::take(&mut log.dropped);
        json!({ "events": records, "dropped": dropped })
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn push(log: &Mutex<Log>, record: Value) {
    let mut log = log.lock().expect("event log poisoned");
    if log.records.len() < MAX_EVENTS {
        log.records.push(record);
    } else {
        log.dropped += 1;
    }
}

fn event_json(event: &Event) -> Value {
    let with_entry = |kind: &str, entry: &PeerEntry| {
        json!({
            "kind": kind,
            "peer_id": entry.id().to_string(),
            "version": serde_json::to_value(entry.update_version()).unwrap_or_default(),
        })
    };
    match event {
        Event::PeerDiscovered(entry) => with_entry("discovered", entry),
        Event::PeerUpdated(entry) => with_entry("updated", entry),
        Event::PeerDeparted(id) => json!({ "kind": "departed", "peer_id": id.to_string() }),
    }
}
