//! Bond frames: the handshake pair and the steady-state `BondMessage`
//! (groups spec §2.2, §2.7), in mosaik's layouts.

use serde::{Deserialize, Serialize};

use crate::{discovery::SignedPeerEntry, groups::raft::Message, primitives::Digest};

/// The dialer's first frame.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HandshakeStart {
    pub network_id: Digest,
    pub group_id: Digest,
    pub proof: Digest,
    /// The dialer's current bonds, so the acceptor can bond with them too.
    pub bonds: Vec<SignedPeerEntry>,
}

/// The acceptor's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HandshakeEnd {
    pub proof: Digest,
    pub bonds: Vec<SignedPeerEntry>,
}

/// Every frame after the handshake.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum BondMessage {
    Ping,
    Pong,
    Departure,
    PeerEntryUpdate(SignedPeerEntry),
    BondFormed(SignedPeerEntry),
    Raft(Message),
}
