//! Bonds: one authenticated QUIC link per pair of members of a group.
//!
//! [`handshake`] forms a bond (dialing or accepting, with the key proof),
//! [`worker`] runs it (frames both ways, pings, liveness), [`heartbeat`]
//! decides when a silent peer is gone, and [`protocol`] holds the frames.

pub mod handshake;
pub mod heartbeat;
pub mod protocol;
pub mod worker;

use iroh::EndpointId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::protocol::BondMessage;
use crate::{discovery::SignedPeerEntry, primitives::Digest};

/// Frames queued for one bond before it counts as too slow and is closed
/// (it then re-forms and catches up by log replay).
pub const BOND_QUEUE: usize = 4096;

/// The group's side of a running bond.
#[derive(Debug, Clone)]
pub struct Bond {
    pub peer: EndpointId,
    /// Both ends derive the same id from the connection (local only).
    pub id: Digest,
    /// Whether we dialed its connection (the duplicate tie-break).
    pub dialed_by_us: bool,
    outbox: mpsc::Sender<BondMessage>,
    cancel: CancellationToken,
    /// Set when another bond with the same peer replaces this one.
    superseded: CancellationToken,
}

impl Bond {
    /// Queues a frame. A bond whose queue is full is closed instead: the
    /// peer reads too slowly to take part, and will catch up once it bonds
    /// again.
    pub fn send(&self, message: BondMessage) -> bool {
        match self.outbox.try_send(message) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(peer = %self.peer.fmt_short(), "bond queue full; closing the bond");
                self.cancel.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Ends the bond (the worker says goodbye if it still can).
    pub fn close(&self) {
        self.cancel.cancel();
    }

    /// Ends the bond as a duplicate (30429, no goodbye): another bond with
    /// the same peer took its place, and the peer keeps that one too.
    pub fn close_as_duplicate(&self) {
        self.superseded.cancel();
    }
}

/// What bonds tell their group.
#[derive(Debug)]
pub enum BondEvent {
    /// A consensus message from the peer.
    Raft {
        peer: EndpointId,
        message: Box<crate::groups::raft::Message>,
    },
    /// The peer bonded with `entry`'s node: bond with it too.
    Formed(Box<SignedPeerEntry>),
    /// The bond ended.
    Down {
        peer: EndpointId,
        id: Digest,
        reason: String,
        /// The peer closed it as a duplicate (30429): it keeps another bond
        /// with us, which may still be forming on our side.
        duplicate: bool,
    },
}
