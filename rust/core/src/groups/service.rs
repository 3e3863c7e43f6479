//! `Groups`: the groups a node runs, by id, shared by the bond acceptor
//! and the `join` calls.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use iroh::Endpoint;
use tracing::info;

use super::{
    config::{ConsensusConfig, ReplayConfig},
    error::GroupError,
    group::{Group, Shared, worker},
    id::{GroupId, GroupIdentity},
    key::GroupKey,
    machine::MachineSpec,
    raft::SafetyRules,
    rejection::Rejections,
};
use crate::{
    discovery::Discovery,
    tickets::{Validators, validator_signatures},
};

/// How long each handshake read may take (mosaik's `handshake_timeout`).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything `join` needs.
#[derive(Clone, Debug)]
pub struct JoinOptions {
    pub key: GroupKey,
    pub machine: MachineSpec,
    pub consensus: ConsensusConfig,
    pub replay: ReplayConfig,
    pub rules: SafetyRules,
    /// Whether the machine is applied outside the core (by the user's
    /// code pulling committed entries); NoOp otherwise.
    pub external_machine: bool,
    /// Ticket validators every member must pass (their signatures are
    /// part of the group id).
    pub tickets: Validators,
}

impl JoinOptions {
    pub fn group_id(&self) -> GroupId {
        GroupIdentity {
            key: self.key,
            consensus: self.consensus.digest(),
            machine: self.machine.signature,
            state_sync: self.machine.state_sync_signature(&self.replay),
            validators: validator_signatures(&self.tickets),
        }
        .group_id()
    }
}

#[derive(Clone)]
pub struct Groups {
    inner: Arc<Inner>,
}

struct Inner {
    discovery: Discovery,
    endpoint: Endpoint,
    active: Mutex<HashMap<GroupId, Arc<Shared>>>,
    rejections: Rejections,
}

impl Groups {
    pub fn new(discovery: Discovery, endpoint: Endpoint) -> Self {
        Self {
            inner: Arc::new(Inner {
                discovery,
                endpoint,
                active: Mutex::new(HashMap::new()),
                rejections: Rejections::default(),
            }),
        }
    }

    pub fn discovery(&self) -> &Discovery {
        &self.inner.discovery
    }

    /// Bonds refused or ended by us, by reason.
    pub fn rejections(&self) -> &Rejections {
        &self.inner.rejections
    }

    pub fn handshake_timeout(&self) -> Duration {
        HANDSHAKE_TIMEOUT
    }

    /// A running group of this node.
    pub(crate) fn group(&self, id: &GroupId) -> Option<Arc<Shared>> {
        self.inner.active.lock().expect("groups").get(id).cloned()
    }

    /// Starts a member of the group `options` describe.
    pub fn join(&self, options: JoinOptions) -> Result<Group, GroupError> {
        options.consensus.validate()?;
        let id = options.group_id();
        let mut active = self.inner.active.lock().expect("groups");
        if self.inner.discovery.cancel_token().is_cancelled() {
            return Err(GroupError::Closed);
        }
        if active.contains_key(&id) {
            return Err(GroupError::AlreadyJoined(id.to_hex()));
        }
        let shared = worker::start(
            self.clone(),
            &self.inner.discovery,
            &self.inner.endpoint,
            id,
            options,
        );
        active.insert(id, shared.clone());
        info!(group = %id.to_hex(), "joined group");
        Ok(Group::new(shared))
    }

    /// Forgets a closed group.
    pub(crate) fn remove(&self, id: &GroupId) {
        self.inner.active.lock().expect("groups").remove(id);
    }

    /// Closes every group (node shutdown): each says goodbye to its bonds.
    pub async fn close(&self) {
        let groups: Vec<Arc<Shared>> = self
            .inner
            .active
            .lock()
            .expect("groups")
            .values()
            .cloned()
            .collect();
        for group in &groups {
            group.close();
        }
        for group in groups {
            group.closed().await;
        }
    }
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.inner.active.lock().expect("groups").len();
        f.debug_struct("Groups").field("active", &count).finish()
    }
}
