//! Forming a bond: the dialer's and the acceptor's side of the handshake
//! (groups spec §2.2–2.5).
//!
//! The acceptor checks in mosaik's order: the dialer must be in our catalog
//! (401, after which a mosaik dialer syncs and retries), the same network
//! (101), a group we run (30404), tickets that pass the group's validators
//! (30403), a valid key proof (30405); a second bond
//! to a peer we are bonded with is closed by the group (30429). The dialer
//! answers 401 by syncing its catalog to the acceptor and trying again,
//! a bounded number of times.

use std::time::Duration;

use iroh::{
    EndpointId,
    endpoint::Connection,
    protocol::{AcceptError, ProtocolHandler},
};
use tracing::debug;

use super::protocol::{HandshakeEnd, HandshakeStart};
use crate::{
    discovery::{Discovery, SignedPeerEntry},
    groups::{
        key::{BOND_ID_LABEL, GroupKey, proof_material, shared_random},
        protocol::GroupsProtocol,
        rejection::Rejection,
        service::Groups,
    },
    network::{CLOSE_GRACE, CloseReason, Link, LinkError},
    primitives::Digest,
    tickets::validate_peer,
};

/// The handshake frames carry the sender's bonds: a few hundred entries at
/// most in any sane group.
pub const HANDSHAKE_FRAME_LIMIT: usize = 4 * 1024 * 1024;
/// How often a dialer told 401 (unknown peer) syncs and tries again.
const UNKNOWN_PEER_RETRIES: usize = 3;

/// A bond that finished its handshake, not yet running.
pub struct Formed {
    pub link: Link<GroupsProtocol>,
    pub id: Digest,
    /// The bonds the other side listed: bond with them too.
    pub their_bonds: Vec<SignedPeerEntry>,
}

/// Why a dial did not form a bond.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("no handshake answer within {0:?}")]
    Timeout(Duration),
    #[error("the peer's key proof is wrong")]
    InvalidProof,
    #[error("the peer does not know us after {0} catalog syncs")]
    StillUnknown(usize),
}

/// What a member needs to prove itself on a bond.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub me: EndpointId,
    pub network: Digest,
    pub group: Digest,
    pub key: GroupKey,
    pub handshake_timeout: Duration,
}

impl Credentials {
    fn material(&self, connection: &Connection) -> Digest {
        proof_material(connection, &self.group)
    }
}

/// Dials `peer` and runs the dialer's side of the handshake.
pub async fn dial(
    discovery: &Discovery,
    credentials: &Credentials,
    peer: &SignedPeerEntry,
    our_bonds: Vec<SignedPeerEntry>,
) -> Result<Formed, DialError> {
    let address = peer.entry().address.clone();
    for _ in 0..=UNKNOWN_PEER_RETRIES {
        let mut link = discovery.dialer().open::<GroupsProtocol>(address.clone()).await?;
        link.limit_frames(HANDSHAKE_FRAME_LIMIT);
        let material = credentials.material(link.connection());
        let start = HandshakeStart {
            network_id: credentials.network,
            group_id: credentials.group,
            proof: credentials.key.proof(&material, &credentials.me),
            bonds: our_bonds.clone(),
        };
        link.send(&start).await?;
        let answer = tokio::time::timeout(credentials.handshake_timeout, link.recv::<HandshakeEnd>()).await;
        let end = match answer {
            Err(_) => return Err(DialError::Timeout(credentials.handshake_timeout)),
            Ok(Err(e)) if e.remote_code() == Some(u64::from(CloseReason::UnknownPeer.code())) => {
                // The acceptor has not seen our entry yet: give it ours.
                debug!(peer = %link.remote_id().fmt_short(), "unknown to the peer; syncing catalogs");
                let _ = discovery.sync_with(address.clone()).await;
                continue;
            }
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(end)) => end,
        };
        if end.proof != credentials.key.proof(&material, &link.remote_id()) {
            link.close(CloseReason::InvalidProof, CLOSE_GRACE).await;
            return Err(DialError::InvalidProof);
        }
        link.limit_frames(usize::MAX);
        let id = shared_random(link.connection(), BOND_ID_LABEL);
        return Ok(Formed {
            link,
            id,
            their_bonds: end.bonds,
        });
    }
    Err(DialError::StillUnknown(UNKNOWN_PEER_RETRIES))
}

/// Serves incoming bonds for every group this node runs.
#[derive(Debug)]
pub struct BondAcceptor {
    groups: Groups,
}

impl BondAcceptor {
    pub fn new(groups: Groups) -> Self {
        Self { groups }
    }

    async fn accept_bond(&self, connection: Connection) -> Result<(), Refused> {
        let remote = connection.remote_id();
        let mut link = Link::<GroupsProtocol>::accept(connection)
            .await
            .map_err(Refused::link)?;
        let discovery = self.groups.discovery();
        let Some(entry) = discovery.get(&remote) else {
            return Err(Refused::close(link, Rejection::UnknownPeer, "not in our catalog").await);
        };
        link.limit_frames(HANDSHAKE_FRAME_LIMIT);
        let timeout = self.groups.handshake_timeout();
        let start = match tokio::time::timeout(timeout, link.recv::<HandshakeStart>()).await {
            Err(_) => return Err(Refused::close(link, Rejection::HandshakeTimeout, "no handshake").await),
            // `recv` closed the link with 400 already.
            Ok(Err(e @ (LinkError::Decode(_) | LinkError::FrameTooLarge(_)))) => {
                return Err(Refused::new(Rejection::Undecodable, e));
            }
            Ok(Err(e)) => return Err(Refused::link(e)),
            Ok(Ok(start)) => start,
        };
        if start.network_id != discovery.network() {
            return Err(Refused::close(link, Rejection::DifferentNetwork, "another network").await);
        }
        let Some(group) = self.groups.group(&start.group_id) else {
            return Err(Refused::close(link, Rejection::GroupNotFound, start.group_id).await);
        };
        if let Err(refusal) = validate_peer(&group.tickets, entry.entry()) {
            return Err(Refused::close(link, Rejection::NotAllowed, refusal).await);
        }
        let credentials = group.credentials();
        let material = credentials.material(link.connection());
        if start.proof != credentials.key.proof(&material, &remote) {
            return Err(Refused::close(link, Rejection::InvalidProof, "wrong key proof").await);
        }
        let end = HandshakeEnd {
            proof: credentials.key.proof(&material, &credentials.me),
            bonds: group.bonded_entries(),
        };
        link.send(&end).await.map_err(Refused::link)?;
        link.limit_frames(usize::MAX);
        let id = shared_random(link.connection(), BOND_ID_LABEL);
        group.accepted(
            Formed {
                link,
                id,
                their_bonds: start.bonds,
            },
            entry,
        );
        Ok(())
    }
}

/// Why an incoming bond did not form.
struct Refused {
    /// Counted when it is one of ours; a lost link is not.
    reason: Option<Rejection>,
    detail: String,
}

impl Refused {
    fn new(reason: Rejection, detail: impl std::fmt::Display) -> Self {
        Self {
            reason: Some(reason),
            detail: detail.to_string(),
        }
    }

    fn link(error: LinkError) -> Self {
        Self {
            reason: None,
            detail: error.to_string(),
        }
    }

    /// Closes `link` with the reason's code.
    async fn close(link: Link<GroupsProtocol>, reason: Rejection, detail: impl std::fmt::Display) -> Self {
        link.close(reason.close_reason(), CLOSE_GRACE).await;
        Self::new(reason, detail)
    }
}

impl ProtocolHandler for BondAcceptor {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let remote = connection.remote_id();
        if let Err(refused) = self.accept_bond(connection).await {
            match refused.reason {
                Some(reason) => self.groups.rejections().record(reason, &remote, &refused.detail),
                None => debug!(peer = %remote.fmt_short(), detail = refused.detail, "bond not formed"),
            }
        }
        Ok(())
    }
}
