//! A running group member: the handle users hold ([`Group`]) and the state
//! it shares with its worker and the bond acceptor ([`Shared`]).
//!
//! Commands and queries go to the worker through a bounded inbox; what
//! the worker decides comes back through oneshot replies and two watches:
//! the member's [`Status`] and the index its machine has applied.

pub mod worker;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use iroh::EndpointId;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

pub use self::worker::Assignment;
use self::worker::Input;
use super::{
    bond::handshake::{Credentials, Formed},
    error::GroupError,
    id::GroupId,
    raft::{Cursor, Index, IndexRange, Raft, RoleKind, Term},
};
use crate::{discovery::SignedPeerEntry, tickets::Validators};

/// What a member looks like from outside, published after every step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub term: Term,
    pub role: RoleKind,
    pub leader: Option<EndpointId>,
    pub online: bool,
    pub committed: Index,
    pub log_position: Cursor,
    pub bonds: Vec<EndpointId>,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            term: 0,
            role: RoleKind::Follower,
            leader: None,
            online: false,
            committed: 0,
            log_position: Cursor::default(),
            bonds: vec![],
        }
    }
}

/// A strong query the machine must answer once it has applied `at`.
#[derive(Debug)]
pub struct QueryTask {
    pub query: Bytes,
    pub at: Index,
    pub reply: oneshot::Sender<Bytes>,
}

/// Work for a machine applied outside the core.
#[derive(Debug)]
pub enum Work {
    /// Committed entries, in order: (index, term, command).
    Apply(Vec<(Index, Term, Bytes)>),
    Query(QueryTask),
}

/// Strong queries waiting for an outside machine.
pub const QUERY_QUEUE: usize = 1024;

/// Strong queries on their way to an outside machine: those the worker
/// sent, and those taken but waiting for the machine to apply their index.
#[derive(Debug)]
pub struct QueryInbox {
    pub(crate) receiver: mpsc::Receiver<QueryTask>,
    pub(crate) held: std::collections::VecDeque<QueryTask>,
}
/// Requests waiting for the worker.
pub const INBOX: usize = 4096;

/// State shared by the handle, the worker and the bond acceptor.
pub struct Shared {
    pub(crate) id: GroupId,
    credentials: Credentials,
    pub(crate) inbox: mpsc::Sender<Input>,
    /// Our bonded peers' entries (for handshakes).
    pub(crate) bonded: Mutex<BTreeMap<EndpointId, SignedPeerEntry>>,
    pub(crate) status: watch::Sender<Status>,
    /// The highest index the machine has applied.
    pub(crate) applied: watch::Sender<Index>,
    /// The consensus core; the worker steps it, outside appliers read the log.
    pub(crate) raft: Mutex<Raft>,
    /// Strong queries for an outside machine (taken by the one applier).
    pub(crate) queries: Mutex<Option<QueryInbox>>,
    pub(crate) external_machine: bool,
    /// Validators every member must pass, on both sides of each bond.
    pub(crate) tickets: Validators,
    pub(crate) forward_timeout: Duration,
    pub(crate) election_timeout: Duration,
    pub(crate) cancel: CancellationToken,
    pub(crate) finished: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub(crate) fn bonded_entries(&self) -> Vec<SignedPeerEntry> {
        self.bonded.lock().expect("bonded").values().cloned().collect()
    }

    /// Hands a bond formed by the acceptor to the worker.
    pub(crate) fn accepted(&self, formed: Formed, entry: SignedPeerEntry) {
        if let Err(e) = self.inbox.try_send(Input::Accepted(Box::new((formed, entry)))) {
            let (mpsc::error::TrySendError::Full(Input::Accepted(accepted))
            | mpsc::error::TrySendError::Closed(Input::Accepted(accepted))) = e
            else {
                return;
            };
            accepted.0.link.close_now(crate::network::CloseReason::Cancelled);
        }
    }

    pub(crate) fn close(&self) {
        self.cancel.cancel();
    }

    pub(crate) async fn closed(&self) {
        let _ = self.finished.subscribe().wait_for(|done| *done).await;
    }
}

/// A handle on a group this node is a member of. Cheap to clone; closing
/// any clone closes the membership.
#[derive(Clone)]
pub struct Group {
    shared: Arc<Shared>,
}

/// How long `execute` waits for its commands to be applied here once the
/// leader has taken them, before it reports an unknown outcome.
pub const EXECUTE_TIMEOUT_ELECTIONS: u32 = 4;

impl Group {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    pub fn id(&self) -> GroupId {
        self.shared.id
    }

    pub fn status(&self) -> Status {
        self.shared.status.borrow().clone()
    }

    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.shared.status.subscribe()
    }

    pub fn applied(&self) -> Index {
        *self.shared.applied.borrow()
    }

    pub fn watch_applied(&self) -> watch::Receiver<Index> {
        self.shared.applied.subscribe()
    }

    pub fn is_closed(&self) -> bool {
        self.shared.cancel.is_cancelled()
    }

    fn check_open(&self) -> Result<(), GroupError> {
        if self.is_closed() {
            Err(GroupError::Closed)
        } else {
            Ok(())
        }
    }

    async fn ask<T>(
        &self,
        input: impl FnOnce(oneshot::Sender<Result<T, GroupError>>) -> Input,
    ) -> Result<T, GroupError> {
        self.check_open()?;
        let (reply, answer) = oneshot::channel();
        self.shared
            .inbox
            .send(input(reply))
            .await
            .map_err(|_| GroupError::Closed)?;
        tokio::select! {
            answer = answer => answer.unwrap_or(Err(GroupError::Closed)),
            _ = self.shared.cancel.cancelled() => Err(GroupError::Closed),
        }
    }

    /// Resolves once the leader has given `commands` their indices.
    pub async fn feed(&self, commands: Vec<Bytes>) -> Result<IndexRange, GroupError> {
        Ok(self.propose(commands).await?.range)
    }

    /// The term of the entry at `index` in this member's log, if it has one.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        self.shared.raft.lock().expect("raft").log().term_at(index)
    }

    /// Resolves once the leader has given `commands` their indices, with
    /// that leader's term (see `Assignment`).
    pub async fn propose(&self, commands: Vec<Bytes>) -> Result<Assignment, GroupError> {
        if commands.is_empty() {
            return Err(GroupError::NoCommands);
        }
        self.while_offline(|| self.ask(|reply| Input::Propose(commands.clone(), reply)))
            .await
    }

    /// Runs `attempt` until it is not refused as `Offline` (nothing was
    /// appended, so trying again is safe), waiting for a leader in between,
    /// for at most the forward timeout: a member that has not seen its first
    /// election yet does not fail at once.
    async fn while_offline<T, F: Future<Output = Result<T, GroupError>>>(
        &self,
        mut attempt: impl FnMut() -> F,
    ) -> Result<T, GroupError> {
        let deadline = tokio::time::Instant::now() + self.shared.forward_timeout;
        let mut status = self.shared.status.subscribe();
        loop {
            match attempt().await {
                Err(GroupError::Offline) if tokio::time::Instant::now() < deadline => {}
                outcome => return outcome,
            }
            // Wait for the member's view to change (a leader elected, a
            // bond formed), then try again.
            status.borrow_and_update();
            tokio::select! {
                waited = tokio::time::timeout_at(deadline, status.changed()) => match waited {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Err(GroupError::Closed),
                    Err(_) => return Err(GroupError::Offline),
                },
                _ = self.shared.cancel.cancelled() => return Err(GroupError::Closed),
            }
        }
    }

    /// Resolves once `commands` are committed and applied on this member.
    /// If their indices were committed with another leader's entries (the
    /// leader that took them was deposed first), they were never applied:
    /// `Lost`, never a success reported for someone else's command.
    pub async fn execute(&self, commands: Vec<Bytes>) -> Result<IndexRange, GroupError> {
        let assignment = self.propose(commands).await?;
        let range = assignment.range;
        self.wait_applied(range.end).await?;
        let raft = self.shared.raft.lock().expect("raft");
        let ours = (range.start..=range.end).all(|i| raft.log().term_at(i) == Some(assignment.term));
        if ours { Ok(range) } else { Err(GroupError::Lost) }
    }

    /// Until this member has applied `index`. Gives up (unknown outcome)
    /// if that takes several election timeouts: the entry may have been
    /// replaced by another leader's.
    pub async fn wait_applied(&self, index: Index) -> Result<(), GroupError> {
        let mut applied = self.shared.applied.subscribe();
        let limit = self.shared.election_timeout * EXECUTE_TIMEOUT_ELECTIONS + self.shared.forward_timeout;
        tokio::select! {
            reached = tokio::time::timeout(limit, applied.wait_for(|a| *a >= index)) => match reached {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(_)) => Err(GroupError::Closed),
                Err(_) => Err(GroupError::OutcomeUnknown),
            },
            _ = self.shared.cancel.cancelled() => Err(GroupError::Closed),
        }
    }

    /// A linearizable query, answered by the leader's machine: the result
    /// and the index it reflects.
    pub async fn query_strong(&self, query: Bytes) -> Result<(Bytes, Index), GroupError> {
        self.while_offline(|| self.ask(|reply| Input::Query(query.clone(), reply)))
            .await
    }

    /// Resolves once the membership is closed.
    pub async fn closed(&self) {
        self.shared.cancel.cancelled().await;
    }

    /// The next work for a machine applied outside the core, given the
    /// last index it applied. Waits until there is some.
    pub async fn next_work(&self, applied: Index, max: usize) -> Result<Work, GroupError> {
        self.check_open()?;
        if applied > *self.shared.applied.borrow() {
            self.shared.applied.send_replace(applied);
        }
        let mut status = self.shared.status.subscribe();
        let mut inbox = self
            .shared
            .queries
            .lock()
            .expect("queries")
            .take()
            .ok_or(GroupError::Closed)?;
        let work = loop {
            // A strong query is answered only once the machine has applied
            // the index it must reflect (the worker hands it over as soon as
            // that index commits, possibly before it is published).
            if inbox.held.front().is_some_and(|task| task.at <= applied) {
                break Ok(Work::Query(inbox.held.pop_front().expect("checked")));
            }
            status.borrow_and_update();
            let entries = {
                let raft = self.shared.raft.lock().expect("raft");
                let end = raft.committed().min(applied + max.max(1) as u64);
                raft.log()
                    .range(IndexRange::new(applied + 1, end), u64::MAX)
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (applied + 1 + i as u64, e.term, e.command.clone()))
                    .collect::<Vec<_>>()
            };
            if !entries.is_empty() {
                break Ok(Work::Apply(entries));
            }
            while let Ok(task) = inbox.receiver.try_recv() {
                inbox.held.push_back(task);
            }
            if inbox.held.front().is_some_and(|task| task.at <= applied) {
                continue;
            }
            tokio::select! {
                changed = status.changed() => if changed.is_err() { break Err(GroupError::Closed) },
                task = inbox.receiver.recv() => match task {
                    Some(task) => inbox.held.push_back(task),
                    None => break Err(GroupError::Closed),
                },
                _ = self.shared.cancel.cancelled() => break Err(GroupError::Closed),
            }
        };
        *self.shared.queries.lock().expect("queries") = Some(inbox);
        work
    }

    /// Leaves the group: goodbye to every bond. Idempotent.
    pub async fn close(&self) {
        self.shared.close();
        self.shared.closed().await;
    }
}
