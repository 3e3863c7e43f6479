//! Ping (`/mosaik/discovery/ping/1.0`): "are you there, and who are you?"
//!
//! The initiator opens a link and sends `()` (an empty frame); the acceptor
//! answers with its own entry, freshly bumped and signed; the initiator
//! closes with `Success` (200), which the acceptor waits for. We bound every
//! wait on the serving side, so a peer that connects and never speaks costs
//! one short-lived task. The reply must be the entry of the peer we dialed,
//! in our network: anything else is an error, not an answer. The entry we
//! answer with is a signed copy that is not stored (see `LocalPeer`).

use std::{sync::Arc, time::Duration};

use iroh::{
    Endpoint, EndpointAddr, EndpointId,
    endpoint::Connection,
    protocol::{AcceptError, ProtocolHandler},
};
use tracing::{debug, trace};

use super::{entry::SignedPeerEntry, local::LocalPeer};
use crate::{
    network::{
        Dialer, Protocol,
        close::CloseReason,
        link::{Link, LinkError},
    },
    primitives::Digest,
};

/// `/mosaik/discovery/ping/1.0`: liveness plus the peer's signed entry.
pub struct Ping;

impl Protocol for Ping {
    const ALPN: &'static [u8] = b"/mosaik/discovery/ping/1.0";
    const MAX_FRAME: usize = 64 * 1024;
}

/// How long a served ping may take from accept to the initiator's close.
pub const SERVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the initiator's closing link waits for the acceptor to read
/// the close, which the acceptor waits for to finish cleanly.
const PING_CLOSE_GRACE: Duration = Duration::from_millis(500);
/// mosaik's default ping timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a ping brought back no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum PingError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("ping: dialed peer {dialed} but the reply is the entry of {answered}")]
    WrongPeer {
        dialed: EndpointId,
        answered: EndpointId,
    },
    #[error("ping: peer {peer} belongs to another network ({network})")]
    OtherNetwork { peer: EndpointId, network: Digest },
}

/// Pings `addr`: returns its verified, freshly signed entry, which must be
/// the dialed peer's own and, when `network` is given, of that network. (An
/// app may ping a peer of any network, as mosaik's ping answers everyone:
/// the entry says which network it is of.)
pub async fn ping(
    dialer: &Dialer,
    addr: EndpointAddr,
    network: Option<Digest>,
    timeout: Duration,
) -> Result<SignedPeerEntry, PingError> {
    let peer = addr.id;
    let reply = tokio::time::timeout(timeout, async {
        let mut link = dialer.open::<Ping>(addr).await?;
        trace!(peer = %peer.fmt_short(), "ping: link open");
        link.send(&()).await?;
        trace!(peer = %peer.fmt_short(), "ping: request sent");
        let reply: SignedPeerEntry = link.recv().await?;
        trace!(peer = %peer.fmt_short(), "ping: reply received");
        link.close(CloseReason::Success, PING_CLOSE_GRACE).await;
        Ok::<_, LinkError>(reply)
    })
    .await
    .map_err(|_| LinkError::Timeout(timeout))??;
    let answered = reply.entry().id();
    if answered != peer {
        return Err(PingError::WrongPeer {
            dialed: peer,
            answered,
        });
    }
    if network.is_some_and(|network| reply.entry().network != network) {
        return Err(PingError::OtherNetwork {
            peer,
            network: reply.entry().network,
        });
    }
    Ok(reply)
}

/// Serves pings with this node's entry.
#[derive(Clone)]
pub struct PingService {
    local: Arc<LocalPeer>,
    endpoint: Endpoint,
}

impl std::fmt::Debug for PingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PingService")
    }
}

impl PingService {
    pub fn new(local: Arc<LocalPeer>, endpoint: Endpoint) -> Self {
        Self { local, endpoint }
    }

    async fn serve(&self, connection: Connection) -> Result<(), LinkError> {
        let mut link = Link::<Ping>::accept(connection).await?;
        let () = link.recv().await?;
        let reply = self.local.signed_copy(self.endpoint.addr());
        link.send(&reply).await?;
        // The initiator ends the exchange; its close is the normal outcome.
        match link.closed().await {
            LinkError::ClosedByPeer(close) if close.known() == Some(CloseReason::Success) => Ok(()),
            other => Err(other),
        }
    }
}

impl ProtocolHandler for PingService {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let remote = connection.remote_id();
        match tokio::time::timeout(SERVE_TIMEOUT, self.serve(connection)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => debug!(peer = %remote.fmt_short(), error = %e, "ping not completed"),
            Err(_) => debug!(peer = %remote.fmt_short(), "ping timed out"),
        }
        Ok(())
    }
}
