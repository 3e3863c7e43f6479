//! The groups protocol on the wire: `/mosaik/groups/1`, one bond per
//! connection; and how a node serves it ([`ProtocolProvider`]).

use crate::network::{Protocol, ProtocolProvider, Protocols};

use super::{GROUPS_ALPN, bond::handshake::BondAcceptor, service::Groups};

/// `/mosaik/groups/1`: one bond between two members of one group.
pub struct GroupsProtocol;

impl Protocol for GroupsProtocol {
    const ALPN: &'static [u8] = GROUPS_ALPN;
    /// Appends are split well below this (`raft::MAX_APPEND_BYTES`), so only
    /// a single command near this size is refused; mosaik sets no limit.
    const MAX_FRAME: usize = 64 * 1024 * 1024;
}

impl ProtocolProvider for Groups {
    fn install(&self, protocols: Protocols) -> Protocols {
        protocols.serve(GROUPS_ALPN, BondAcceptor::new(self.clone()))
    }
}
