//! Close reasons: the QUIC application CONNECTION_CLOSE codes mosaik uses.
//!
//! Every link ends with one of these. The code is what peers act on (mosaik
//! compares codes only); the reason bytes are the ASCII type name, exactly as
//! mosaik's `make_close_reason!` writes them, so logs on both sides agree.

use std::{fmt, time::Duration};

/// How long a link that closes waits for the peer to read the close before
/// the connection goes: a peer that acts on the code must see it.
pub const CLOSE_GRACE: Duration = Duration::from_millis(200);

macro_rules! close_reasons {
    ($($(#[$doc:meta])* $variant:ident = ($code:literal, $name:literal),)*) => {
        /// A mosaik close reason, with its exact code and reason bytes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum CloseReason {
            $($(#[$doc])* $variant,)*
        }

        impl CloseReason {
            /// Every reason mosaik 0.3.13 defines.
            pub const ALL: &'static [CloseReason] = &[$(CloseReason::$variant,)*];

            /// The QUIC application error code.
            pub const fn code(self) -> u32 {
                match self { $(CloseReason::$variant => $code,)* }
            }

            /// The reason bytes mosaik sends: its type name in ASCII.
            pub const fn name(self) -> &'static str {
                match self { $(CloseReason::$variant => $name,)* }
            }
        }
    };
}

close_reasons! {
    /// 200: a catalog sync or ping ended normally (sent by the initiator).
    Success = (200, "Success"),
    /// 204: the producer is shutting down on purpose.
    GracefulShutdown = (204, "GracefulShutdown"),
    /// 100: the connection's ALPN is not the link's protocol.
    InvalidAlpn = (100, "InvalidAlpn"),
    /// 101: the peer belongs to another network.
    DifferentNetwork = (101, "DifferentNetwork"),
    /// 102: the local side cancelled the link.
    Cancelled = (102, "Cancelled"),
    /// 103: the peer ended the stream without closing the link.
    UnexpectedClose = (103, "UnexpectedClose"),
    /// 400: a frame failed to decode (or broke a protocol limit).
    ProtocolViolation = (400, "ProtocolViolation"),
    /// 401: the peer is not in our discovery catalog.
    UnknownPeer = (401, "UnknownPeer"),
    /// 10403: a stream's `require` predicate or ticket check failed.
    NotAllowed = (10403, "NotAllowed"),
    /// 10404: no producer for that stream id here.
    StreamNotFound = (10404, "StreamNotFound"),
    /// 10413: the consumer fell too far behind (`disconnect_lagging`).
    TooSlow = (10413, "TooSlow"),
    /// 10509: the producer reached `max_consumers`.
    NoCapacity = (10509, "NoCapacity"),
    /// 30400: groups: malformed bond handshake.
    InvalidHandshake = (30400, "InvalidHandshake"),
    /// 30403: groups: not allowed (same name as the streams reason, another code).
    GroupNotAllowed = (30403, "NotAllowed"),
    /// 30404: groups: unknown group.
    GroupNotFound = (30404, "GroupNotFound"),
    /// 30405: groups: the bond proof did not verify.
    InvalidProof = (30405, "InvalidProof"),
    /// 30408: groups: timed out.
    Timeout = (30408, "Timeout"),
    /// 30429: groups: already bonded.
    AlreadyBonded = (30429, "AlreadyBonded"),
}

impl CloseReason {
    /// The reason a peer meant by `code`, if mosaik defines one.
    pub fn from_code(code: u64) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| u64::from(r.code()) == code)
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

/// How a remote peer ended a link: its code and reason bytes, as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteClose {
    pub code: u64,
    pub reason: Vec<u8>,
}

impl RemoteClose {
    /// The mosaik reason behind the code, if it is one of ours.
    pub fn known(&self) -> Option<CloseReason> {
        CloseReason::from_code(self.code)
    }
}

impl fmt::Display for RemoteClose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", String::from_utf8_lossy(&self.reason), self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_match_mosaik() {
        let table: Vec<(u32, &str)> = CloseReason::ALL.iter().map(|r| (r.code(), r.name())).collect();
        assert_eq!(
            table,
            vec![
                (200, "Success"),
                (204, "GracefulShutdown"),
                (100, "InvalidAlpn"),
                (101, "DifferentNetwork"),
                (102, "Cancelled"),
                (103, "UnexpectedClose"),
                (400, "ProtocolViolation"),
                (401, "UnknownPeer"),
                (10403, "NotAllowed"),
                (10404, "StreamNotFound"),
                (10413, "TooSlow"),
                (10509, "NoCapacity"),
                (30400, "InvalidHandshake"),
                (30403, "NotAllowed"),
                (30404, "GroupNotFound"),
                (30405, "InvalidProof"),
                (30408, "Timeout"),
                (30429, "AlreadyBonded"),
            ]
        );
    }

    #[test]
    fn codes_are_unique() {
        for r in CloseReason::ALL {
            assert_eq!(CloseReason::from_code(r.code().into()), Some(*r));
        }
        assert_eq!(CloseReason::from_code(0), None);
    }
}
