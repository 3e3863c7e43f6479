//! How discovery serves its three protocols on a node
//! ([`ProtocolProvider`]): gossip announcements ([`ANNOUNCE_ALPN`]), catalog
//! sync ([`CatalogSync`]) and ping ([`Ping`]), each named in its own module.

use super::{
    announce::ANNOUNCE_ALPN,
    ping::{Ping, PingService},
    service::Discovery,
    sync::{CatalogSync, SyncService},
};
use crate::network::{Protocol, ProtocolProvider, Protocols};

impl ProtocolProvider for Discovery {
    fn install(&self, protocols: Protocols) -> Protocols {
        protocols
            .serve(ANNOUNCE_ALPN, self.gossip().clone())
            .serve(CatalogSync::ALPN, SyncService::new(self.clone()))
            .serve(
                Ping::ALPN,
                PingService::new(self.local().clone(), self.endpoint().clone()),
            )
    }
}
