//! Protocols on the wire, and how subsystems serve them.
//!
//! A `Link` is opened or accepted for one [`Protocol`]; the protocol decides
//! the ALPN and the largest frame a peer may send us. mosaik sets no frame
//! limit (`usize::MAX`); we bound every link so a peer claiming a 4 GiB frame
//! costs us nothing but a closed link. Each subsystem names its own
//! protocols and serves them through [`ProtocolProvider::install`] (as
//! mosaik's `ProtocolProvider`), so the node composing them needs no
//! knowledge of any one of them.

use iroh::protocol::{ProtocolHandler, RouterBuilder};

use super::route_repair::RouteRepair;

/// The node's router while it is being built: every handler served through
/// it has its incoming connections watched by the route repair.
#[derive(Debug)]
pub struct Protocols {
    router: RouterBuilder,
    repair: RouteRepair,
}

impl Protocols {
    pub fn new(router: RouterBuilder, repair: RouteRepair) -> Self {
        Self { router, repair }
    }

    /// Serves `handler` for connections that negotiated `alpn`.
    pub fn serve<H: ProtocolHandler>(self, alpn: &[u8], handler: H) -> Self {
        Self {
            router: self.router.accept(alpn, self.repair.handler(handler)),
            repair: self.repair,
        }
    }

    /// The router, ready to spawn.
    pub fn into_router(self) -> RouterBuilder {
        self.router
    }
}

/// A subsystem that answers connections on the node's endpoint.
pub trait ProtocolProvider {
    /// Adds this subsystem's protocol handlers.
    fn install(&self, protocols: Protocols) -> Protocols;
}

/// A protocol carried over `Link`s.
pub trait Protocol {
    /// The ALPN, byte for byte as mosaik registers it.
    const ALPN: &'static [u8];
    /// The largest payload we accept in one frame.
    const MAX_FRAME: usize;
}
