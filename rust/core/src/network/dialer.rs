//! `Dialer`: the node's way out. Every link a subsystem opens goes through
//! it, so the route repair holds each outgoing connection and can close the
//! ones that still lead to a peer's previous run (see `route_repair.rs`).
//! Before a dial to an address the application names (a sync or a ping),
//! `expect_at` drops the connections to that peer that have no path to any
//! of the named addresses: iroh would otherwise send the dial to the dead
//! path. iroh-gossip's own connections cannot be closed from outside, so
//! those are waited out (bounded by the idle timeout).

use std::time::Duration;

use futures::future::join_all;
use iroh::{Endpoint, EndpointAddr};
use tracing::debug;

use super::{
    IDLE_TIMEOUT,
    link::{Link, LinkError},
    protocol::Protocol,
    route_repair::RouteRepair,
};

/// The most we wait for a leftover connection to be declared dead before
/// dialing anyway. Measured on loopback: it ends 3.0–3.6 s after we start
/// waiting (the idle timer restarts on our own keep-alives after the peer
/// went quiet), so twice the idle timeout.
const LEFTOVER_WAIT: Duration = Duration::from_secs(2 * IDLE_TIMEOUT.as_secs());

#[derive(Debug, Clone)]
pub struct Dialer {
    endpoint: Endpoint,
    repair: RouteRepair,
}

impl Dialer {
    pub fn new(endpoint: Endpoint, repair: RouteRepair) -> Self {
        Self { endpoint, repair }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn route_repair(&self) -> &RouteRepair {
        &self.repair
    }

    /// Dials `addr` under `P`'s ALPN and opens the link's stream; the
    /// connection is filed with the route repair.
    pub async fn open<P: Protocol>(&self, addr: EndpointAddr) -> Result<Link<P>, LinkError> {
        let link = Link::<P>::open(&self.endpoint, addr).await?;
        self.repair.dialed(link.connection());
        Ok(link)
    }

    /// Before dialing an address the application names: when it lists
    /// addresses, connections to that peer over none of them lead to a run
    /// of the peer that is gone (or moved). Ours are closed at once; the
    /// ones iroh-gossip dialed, which nothing outside it can close, are
    /// waited out (their idle timeout, at most [`IDLE_TIMEOUT`] after the
    /// old run went quiet), since until they end iroh sends every new dial
    /// to their dead path.
    pub async fn expect_at(&self, addr: &EndpointAddr) {
        if addr.addrs.is_empty() {
            return;
        }
        let leftovers = self.repair.moved(addr.id, &addr.addrs, "dialing a new address");
        if leftovers.is_empty() {
            return;
        }
        debug!(
            peer = %addr.id.fmt_short(),
            connections = ?leftovers
                .iter()
                .map(|c| (String::from_utf8_lossy(c.alpn()).into_owned(), c.side()))
                .collect::<Vec<_>>(),
            "waiting for connections to the peer's previous address to time out"
        );
        let closings = leftovers
            .into_iter()
            .map(|info| async move { info.closed().await });
        let waited = tokio::time::Instant::now();
        let outcome = tokio::time::timeout(LEFTOVER_WAIT, join_all(closings)).await;
        debug!(
            peer = %addr.id.fmt_short(),
            waited = ?waited.elapsed(),
            all_closed = outcome.is_ok(),
            "done waiting for the previous address"
        );
    }
}
