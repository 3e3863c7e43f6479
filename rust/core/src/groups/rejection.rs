//! Why a bond was refused or ended by us: each reason is counted
//! (`Groups::rejections`, by name) and logged, with the close code mosaik
//! uses for it.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use tracing::warn;

use crate::network::CloseReason;

/// Why we refused or ended a bond.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rejection {
    /// The dialer is not in our catalog (401; a mosaik dialer syncs and retries).
    UnknownPeer,
    DifferentNetwork,
    GroupNotFound,
    InvalidProof,
    /// The peer's tickets do not pass our validators (30403).
    NotAllowed,
    /// No handshake within the handshake timeout.
    HandshakeTimeout,
    /// A frame that does not decode, or over the frame limit.
    Undecodable,
    /// A peer standing for election far more often than its timers allow.
    VoteStorm,
}

impl Rejection {
    pub fn name(self) -> &'static str {
        match self {
            Rejection::UnknownPeer => "unknown_peer",
            Rejection::DifferentNetwork => "different_network",
            Rejection::GroupNotFound => "group_not_found",
            Rejection::InvalidProof => "invalid_proof",
            Rejection::NotAllowed => "not_allowed",
            Rejection::HandshakeTimeout => "handshake_timeout",
            Rejection::Undecodable => "undecodable",
            Rejection::VoteStorm => "vote_storm",
        }
    }

    /// The code the link is closed with.
    pub fn close_reason(self) -> CloseReason {
        match self {
            Rejection::UnknownPeer => CloseReason::UnknownPeer,
            Rejection::DifferentNetwork => CloseReason::DifferentNetwork,
            Rejection::GroupNotFound => CloseReason::GroupNotFound,
            Rejection::InvalidProof => CloseReason::InvalidProof,
            Rejection::NotAllowed => CloseReason::GroupNotAllowed,
            Rejection::HandshakeTimeout => CloseReason::Timeout,
            Rejection::Undecodable | Rejection::VoteStorm => CloseReason::ProtocolViolation,
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Rejection counts shared by the acceptor and every bond.
#[derive(Clone, Debug, Default)]
pub struct Rejections(Arc<Mutex<BTreeMap<Rejection, u64>>>);

impl Rejections {
    /// Counts `reason`; hostile reasons are logged, the everyday one
    /// (unknown peer: a dialer that syncs and retries) only counted.
    pub fn record(&self, reason: Rejection, peer: &iroh::EndpointId, detail: &dyn std::fmt::Display) {
        *self.0.lock().expect("rejections").entry(reason).or_default() += 1;
        if reason != Rejection::UnknownPeer {
            warn!(peer = %peer.fmt_short(), %reason, "groups refused a peer: {detail}");
        }
    }

    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.0
            .lock()
            .expect("rejections")
            .iter()
            .map(|(r, n)| (r.name(), *n))
            .collect()
    }
}
