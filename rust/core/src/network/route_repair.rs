//! Route repair: unsticks iroh 0.97's route to a peer that came back from a
//! new address.
//!
//! iroh keeps one *selected path* per remote id, and every new dial to that id
//! sends its Initial packets there. It re-selects only when a connection is
//! added or a path event arrives, never when a connection closes (unless it was
//! the last one). So when a peer crashes and restarts with the same key on a
//! new port, and dials us before its old connections have timed out, iroh
//! keeps the old address selected (the old, dead connections still report a
//! round-trip time for it); once they time out, the new connections carry no
//! selected path, nothing triggers a re-selection, and every dial of ours to
//! that peer goes to the dead address for as long as any connection lives.
//!
//! The repair has two parts:
//! - When discovery reports that a peer restarted (a new `started_at`), or
//!   the application dials it at an address it names (`Dialer::expect_at`),
//!   the connections to that peer, incoming and the ones we dialed, with no
//!   path to an address it now advertises are closed at once instead of at
//!   the idle timeout: they lead to a run that is gone. With none left, iroh
//!   drops the stale selected path and the dial goes to the new address.
//! - Every handshake is recorded per remote (an endpoint hook, so
//!   iroh-gossip's own dials are seen too). An incoming connection that
//!   arrives without the selected path is watched; if a moment comes when no
//!   live connection to that peer carries the selected path, the route is
//!   stale, and we close the watched connection. Once none is left, iroh
//!   forgets the path, and the next dial tries every known address. The peer
//!   redials as it would after any lost connection. A second connection that
//!   legitimately uses another address (say IPv6 beside IPv4) is left alone:
//!   the first one still carries the selected path.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::{FutureExt, future::select_all};
use iroh::{
    EndpointId, TransportAddr,
    endpoint::{AfterHandshakeOutcome, Connection, ConnectionInfo, EndpointHooks},
    protocol::{AcceptError, ProtocolHandler},
};
use tokio::time::Instant;
use tracing::{debug, info};

/// How long a connection that arrived beside a stale-looking route is watched:
/// long enough for the old connections to hit the QUIC idle timeout.
const WATCH_FOR: Duration = Duration::from_secs(25);

/// How often the watch re-checks when no connection closes (a new one may
/// take over the route meanwhile).
const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// Error code on the connections we close; the reason text says why.
const STALE_ROUTE_CODE: u32 = 0;

/// The live connections of an endpoint, per remote, and the watches over the
/// ones that may need closing.
#[derive(Debug, Clone, Default)]
pub struct RouteRepair {
    /// Every connection, incoming or outgoing, as a weak handle.
    connections: Registry<ConnectionInfo>,
    /// The incoming ones, which we may close. Every protocol handler closes
    /// its connections explicitly when done (`Link` on drop, iroh-gossip
    /// when its connection task ends), so holding them here keeps none open.
    incoming: Registry<Connection>,
    /// The ones our links dialed (through `Dialer`), which we may close too;
    /// `Link` closes its connection on drop, so these keep none open either.
    outgoing: Registry<Connection>,
}

type Registry<T> = Arc<Mutex<HashMap<EndpointId, Vec<Recorded<T>>>>>;

#[derive(Debug)]
struct Recorded<T> {
    serial: u64,
    handle: T,
}

/// Files `handle` under `remote` until the connection `info` closes.
fn record<T: Send + 'static>(registry: &Registry<T>, remote: EndpointId, info: ConnectionInfo, handle: T) {
    static SERIALS: AtomicU64 = AtomicU64::new(0);
    let serial = SERIALS.fetch_add(1, Ordering::Relaxed);
    registry
        .lock()
        .expect("route registry poisoned")
        .entry(remote)
        .or_default()
        .push(Recorded { serial, handle });
    let registry = registry.clone();
    tokio::spawn(async move {
        // `ConnectionInfo` is weak: waiting here keeps nothing open.
        info.closed().await;
        let mut registry = registry.lock().expect("route registry poisoned");
        if let Some(list) = registry.get_mut(&remote) {
            list.retain(|c| c.serial != serial);
            if list.is_empty() {
                registry.remove(&remote);
            }
        }
    });
}

impl RouteRepair {
    pub fn new() -> Self {
        Self::default()
    }

    /// Wraps a protocol handler so that its incoming connections are watched.
    pub fn handler<H: ProtocolHandler>(&self, inner: H) -> Watched<H> {
        Watched {
            repair: self.clone(),
            inner,
        }
    }

    /// The live connections to `remote` (weak handles).
    fn live(&self, remote: EndpointId) -> Vec<ConnectionInfo> {
        let connections = self.connections.lock().expect("route registry poisoned");
        connections
            .get(&remote)
            .map(|list| {
                list.iter()
                    .filter(|c| is_open(&c.handle))
                    .map(|c| c.handle.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Files a connection one of our links dialed.
    pub fn dialed(&self, connection: &Connection) {
        record(
            &self.outgoing,
            connection.remote_id(),
            connection.to_info(),
            connection.clone(),
        );
    }

    /// Closes the connections to `peer`, incoming or dialed by us, with no
    /// open path to an address it now advertises (`advertised`): they can
    /// only reach a run of it that is gone (it restarted, or moved).
    /// Returns the ones of that kind we cannot close (iroh-gossip's own
    /// dials): they hold the stale route until the idle timeout ends them.
    pub fn moved(
        &self,
        peer: EndpointId,
        advertised: &BTreeSet<TransportAddr>,
        why: &'static str,
    ) -> Vec<ConnectionInfo> {
        let stale: Vec<Connection> = [&self.incoming, &self.outgoing]
            .into_iter()
            .flat_map(|registry| {
                let registry = registry.lock().expect("route registry poisoned");
                registry
                    .get(&peer)
                    .map(|list| {
                        list.iter()
                            .map(|c| &c.handle)
                            .filter(|c| c.close_reason().is_none())
                            .filter(|c| !leads_to(&c.to_info(), advertised))
                            .cloned()
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            })
            .collect();
        if !stale.is_empty() {
            info!(
                peer = %peer.fmt_short(),
                connections = stale.len(),
                why,
                "closing the connections that lead to the peer's previous address"
            );
        }
        for connection in stale {
            connection.close(STALE_ROUTE_CODE.into(), why.as_bytes());
        }
        self.live(peer)
            .into_iter()
            .filter(|c| !leads_to(c, advertised))
            .collect()
    }

    /// Watches an incoming connection that does not carry the selected path,
    /// and closes it if the route to its peer turns out stale.
    fn watch(&self, connection: &Connection) {
        let info = connection.to_info();
        record(
            &self.incoming,
            connection.remote_id(),
            info.clone(),
            connection.clone(),
        );
        if carries_route(&info) {
            return;
        }
        let this = self.clone();
        let connection = connection.clone();
        tokio::spawn(async move {
            let remote = connection.remote_id();
            let until = Instant::now() + WATCH_FOR;
            while connection.close_reason().is_none() && Instant::now() < until {
                if carries_route(&connection.to_info()) {
                    return;
                }
                let live = this.live(remote);
                if !live.iter().any(carries_route) {
                    info!(
                        peer = %remote.fmt_short(),
                        connections = live.len(),
                        "no connection carries the selected path to this peer (it came back from a new address); closing its connection so the route is chosen again"
                    );
                    connection.close(STALE_ROUTE_CODE.into(), b"stale route");
                    return;
                }
                debug!(
                    peer = %remote.fmt_short(),
                    holders = ?live
                        .iter()
                        .filter(|c| carries_route(c))
                        .map(|c| (String::from_utf8_lossy(c.alpn()).into_owned(), c.side()))
                        .collect::<Vec<_>>(),
                    "route held by other connections; waiting"
                );
                let closings: Vec<_> = live
                    .iter()
                    .map(|info| {
                        let info = info.clone();
                        async move { info.closed().await }.boxed()
                    })
                    .collect();
                let _ = tokio::time::timeout(RECHECK_EVERY, select_all(closings)).await;
            }
            debug!(peer = %remote.fmt_short(), "route watch ended");
        });
    }
}

/// True if one of the connection's open paths goes to one of `addrs`.
fn leads_to(info: &ConnectionInfo, addrs: &BTreeSet<TransportAddr>) -> bool {
    info.paths()
        .into_iter()
        .any(|p| !p.is_closed() && addrs.contains(p.remote_addr()))
}

/// True while the connection is open.
fn is_open(info: &ConnectionInfo) -> bool {
    info.is_alive() && info.closed().now_or_never().is_none()
}

/// True if one of the connection's open paths is the endpoint's selected path
/// to that peer.
fn carries_route(info: &ConnectionInfo) -> bool {
    is_open(info)
        && info
            .paths()
            .into_iter()
            .any(|p| p.is_selected() && !p.is_closed())
}

impl EndpointHooks for RouteRepair {
    async fn after_handshake(&self, conn: &ConnectionInfo) -> AfterHandshakeOutcome {
        record(&self.connections, conn.remote_id(), conn.clone(), conn.clone());
        AfterHandshakeOutcome::accept()
    }
}

/// A protocol handler whose incoming connections the route repair watches.
#[derive(Debug, Clone)]
pub struct Watched<H> {
    repair: RouteRepair,
    inner: H,
}

impl<H: ProtocolHandler> ProtocolHandler for Watched<H> {
    async fn on_accepting(&self, accepting: iroh::endpoint::Accepting) -> Result<Connection, AcceptError> {
        self.inner.on_accepting(accepting).await
    }

    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        self.repair.watch(&connection);
        self.inner.accept(connection).await
    }

    async fn shutdown(&self) {
        self.inner.shutdown().await
    }
}
