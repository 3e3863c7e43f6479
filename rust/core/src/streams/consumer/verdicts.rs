//! `Verdicts`: what the consumer's `require` said about each producer,
//! asked off the worker's loop.
//!
//! The worker (`worker.rs`) asks about every producer entry it has no
//! verdict for (a new producer, or a changed entry); each question runs
//! on a task of its own and its answer comes back through a channel the
//! worker waits on beside discovery events. So a predicate that hangs holds
//! up no other producer and no close: the worker keeps following the
//! others, and closing the consumer drops the questions (the predicate
//! itself, once started, runs to its end on its blocking thread). At most
//! `MAX_PENDING_CHECKS` run at once; no answer within `REQUIRE_TIMEOUT`
//! counts as no for that entry, asked again once it changes.

use std::{collections::HashMap, sync::Arc};

use iroh::EndpointId;
use tokio::{
    sync::{Semaphore, mpsc},
    task::AbortHandle,
};

use crate::{
    discovery::{PeerEntryVersion, SignedPeerEntry},
    streams::require::{MAX_PENDING_CHECKS, REQUIRE_TIMEOUT, Require},
};

type Answer = (EndpointId, PeerEntryVersion, bool);

pub(super) struct Verdicts {
    require: Require,
    /// The answer for each producer, and the entry version it is about.
    known: HashMap<EndpointId, (PeerEntryVersion, bool)>,
    /// Questions in flight, by producer, and the version each asks about.
    asking: HashMap<EndpointId, (PeerEntryVersion, AbortHandle)>,
    permits: Arc<Semaphore>,
    answers_tx: mpsc::UnboundedSender<Answer>,
    answers: mpsc::UnboundedReceiver<Answer>,
}

impl Verdicts {
    pub(super) fn new(require: Require) -> Self {
        let (answers_tx, answers) = mpsc::unbounded_channel();
        Self {
            require,
            known: HashMap::new(),
            asking: HashMap::new(),
            permits: Arc::new(Semaphore::new(MAX_PENDING_CHECKS)),
            answers_tx,
            answers,
        }
    }

    /// Keeps the producers `require` accepted (in their latest answered
    /// entry); asks about the entries it has no answer for (as many as may
    /// run), and forgets producers that are gone.
    pub(super) fn retain_accepted(&mut self, producers: &mut HashMap<EndpointId, SignedPeerEntry>) {
        self.known.retain(|id, _| producers.contains_key(id));
        self.asking.retain(|id, (version, question)| {
            let current = producers.get(id).map(|e| e.entry().version);
            let wanted = current == Some(*version);
            if !wanted {
                question.abort();
            }
            wanted
        });
        for (id, entry) in producers.iter() {
            let version = entry.entry().version;
            let answered = self.known.get(id).is_some_and(|(v, _)| *v == version);
            if answered || self.asking.contains_key(id) {
                continue;
            }
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                break; // asked once a question in flight is answered
            };
            let (require, answers, id, entry) =
                (self.require.clone(), self.answers_tx.clone(), *id, entry.clone());
            let question = tokio::spawn(async move {
                let verdict = require.check_within(entry, REQUIRE_TIMEOUT, permit).await;
                let _ = answers.send((id, version, verdict.unwrap_or(false)));
            });
            self.asking.insert(id, (version, question.abort_handle()));
        }
        // A producer whose entry changed keeps its last answer until the
        // new one comes: a re-announce must not end its subscription.
        producers.retain(|id, _| self.known.get(id).is_some_and(|(_, accepted)| *accepted));
    }

    /// Waits for the next answer and records it.
    pub(super) async fn next_answer(&mut self) {
        let Some((id, version, accepted)) = self.answers.recv().await else {
            return std::future::pending().await; // we hold a sender: never
        };
        if self.asking.get(&id).is_some_and(|(v, _)| *v == version) {
            self.asking.remove(&id);
            self.known.insert(id, (version, accepted));
        }
    }
}

impl Drop for Verdicts {
    /// Questions still in flight are dropped with the worker.
    fn drop(&mut self) {
        for (_, question) in self.asking.values() {
            question.abort();
        }
    }
}
