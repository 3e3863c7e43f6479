//! Catalog sync (`/mosaik/discovery/sync/1.0`): a full catalog exchange.
//!
//! The initiator sends `CatalogSnapshot` (a varint count, then signed
//! entries back to back, its own included), the acceptor answers with its
//! own snapshot, and the initiator closes with `Success` (200). Both sides
//! merge what they received into the catalog through [`SyncCatalog`] (the
//! discovery service). Every wait is bounded by `sync_timeout`, and the
//! acceptor answers before merging, so a slow or silent peer costs one
//! short-lived task and never stalls discovery. A snapshot is read up to
//! `max_snapshot_entries` and merged off the async workers (decoding and
//! verifying thousands of entries is CPU work); entries whose signature
//! fails are counted and skipped, and after `max_forged_per_link` of them
//! the link ends with 400, as does a frame that is not a snapshot at all.

use std::{fmt::Display, sync::Arc, time::Duration};

use bytes::{BufMut, Bytes, BytesMut};
use iroh::{
    EndpointAddr, EndpointId,
    endpoint::Connection,
    protocol::{AcceptError, ProtocolHandler},
};
use tokio::sync::Semaphore;
use tracing::debug;

use super::{
    entry::{EntryError, SignedPeerEntry, UnverifiedEntry},
    rejection::Rejection,
};
use crate::{
    network::{
        CLOSE_GRACE, Dialer, Protocol,
        close::CloseReason,
        link::{Link, LinkError},
    },
    primitives::varint,
};

/// `/mosaik/discovery/sync/1.0`: full catalog exchange.
pub struct CatalogSync;

impl Protocol for CatalogSync {
    const ALPN: &'static [u8] = b"/mosaik/discovery/sync/1.0";
    const MAX_FRAME: usize = 16 * 1024 * 1024;
}

/// What a sync needs of the catalog it serves: our snapshot, a place for
/// the peer's entries, and the counters for what it refused.
pub trait SyncCatalog: Clone + Send + Sync + 'static {
    fn dialer(&self) -> &Dialer;
    /// Bound on one whole sync, either side.
    fn sync_timeout(&self) -> Duration;
    /// Every current signed entry, ours (freshly signed) included, encoded
    /// as a snapshot frame.
    fn snapshot(&self) -> Bytes;
    /// Entries read from one received snapshot.
    fn max_snapshot_entries(&self) -> usize;
    /// Applies the catalog's rules and budgets to the entries `from` sent
    /// (blocking work); `we_initiated` when `from` answered our sync.
    fn merge_snapshot(&self, snapshot: Snapshot, from: EndpointId, we_initiated: bool) -> Merged;
    fn reject(&self, reason: Rejection, from: Option<EndpointId>, detail: &dyn Display);
    /// Whether we have said goodbye: then we serve no more syncs, since our
    /// snapshot would carry our entry past the goodbye.
    fn is_departing(&self) -> bool;
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("catalog sync timed out after {0:?}")]
    Timeout(Duration),
    #[error("the peer sent something that is not a catalog snapshot: {0}")]
    Malformed(EntryError),
    #[error("the peer's snapshot carried too many entries with bad signatures")]
    Forged,
}

/// Encodes entries as a `CatalogSnapshot` payload, from their exact bytes.
pub fn encode_snapshot<'a>(entries: impl ExactSizeIterator<Item = &'a SignedPeerEntry>) -> Bytes {
    let mut out = BytesMut::new();
    varint::encode(&mut out, entries.len() as u64);
    for entry in entries {
        out.put_slice(entry.wire());
    }
    out.freeze()
}

/// A decoded snapshot, its signatures not checked yet.
pub struct Snapshot {
    pub entries: Vec<UnverifiedEntry>,
    /// It announced more entries than we read.
    pub truncated: bool,
}

/// What merging a snapshot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merged {
    /// Entries that were new or newer.
    pub taken: usize,
    /// So many signatures failed that we stopped verifying: a protocol
    /// violation, not a stale peer.
    pub forged_limit_reached: bool,
}

/// Decodes a `CatalogSnapshot` up to `max_entries` entries; the rest of a
/// longer one is not read. Signatures are checked later, by the merge,
/// for the entries the catalog would take.
pub fn decode_snapshot(bytes: &[u8], max_entries: usize) -> Result<Snapshot, EntryError> {
    let (count, mut rest): (u64, &[u8]) = postcard::take_from_bytes(bytes)?;
    let read = count.min(max_entries as u64) as usize;
    // Never trust a count for an allocation: each entry is > 64 bytes.
    let mut entries = Vec::with_capacity(read.min(rest.len() / 64));
    for _ in 0..read {
        let (entry, tail) = UnverifiedEntry::take_from(rest)?;
        entries.push(entry);
        rest = tail;
    }
    Ok(Snapshot {
        entries,
        truncated: count > read as u64,
    })
}

/// Merges `snapshot` on a blocking thread: a 16 MiB snapshot must not hold
/// an async worker (streams share them).
async fn merge(
    catalog: &impl SyncCatalog,
    snapshot: Snapshot,
    from: EndpointId,
    we_initiated: bool,
) -> Merged {
    let catalog = catalog.clone();
    tokio::task::spawn_blocking(move || catalog.merge_snapshot(snapshot, from, we_initiated))
        .await
        .unwrap_or(Merged {
            taken: 0,
            forged_limit_reached: false,
        })
}

async fn receive_snapshot(
    discovery: &impl SyncCatalog,
    link: &mut Link<CatalogSync>,
) -> Result<Snapshot, SyncError> {
    let frame = link.recv_raw().await.inspect_err(|e| {
        if matches!(e, LinkError::FrameTooLarge(_)) {
            discovery.reject(Rejection::OversizedFrame, Some(link.remote_id()), e);
        }
    })?;
    let max_entries = discovery.max_snapshot_entries();
    let decoded = tokio::task::spawn_blocking(move || decode_snapshot(&frame, max_entries))
        .await
        .expect("decoding a snapshot does not panic");
    decoded.map_err(|e| {
        // Counted before the peer can see the close.
        discovery.reject(Rejection::Undecodable, Some(link.remote_id()), &e);
        link.close_now(CloseReason::ProtocolViolation);
        SyncError::Malformed(e)
    })
}

/// Syncs with the peer at `addr` as the initiator; returns entries taken.
pub async fn initiate(discovery: &impl SyncCatalog, addr: EndpointAddr) -> Result<usize, SyncError> {
    let timeout = discovery.sync_timeout();
    let exchange = async {
        let mut link = discovery.dialer().open::<CatalogSync>(addr).await?;
        link.send_raw(discovery.snapshot()).await?;
        let snapshot = receive_snapshot(discovery, &mut link).await?;
        let from = link.remote_id();
        let merged = merge(discovery, snapshot, from, true).await;
        if merged.forged_limit_reached {
            link.close(CloseReason::ProtocolViolation, CLOSE_GRACE).await;
            return Err(SyncError::Forged);
        }
        link.close(CloseReason::Success, CLOSE_GRACE).await;
        Ok::<_, SyncError>(merged.taken)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| SyncError::Timeout(timeout))?
}

/// Serves catalog syncs, each in its own task (iroh's router spawns one per
/// connection), each bounded by `sync_timeout`.
#[derive(Clone)]
pub struct SyncService<C> {
    discovery: C,
    /// Syncs served at once: each may hold a 16 MiB snapshot and a decode.
    serving: Arc<Semaphore>,
}

/// At most this many catalog syncs are served at once; more are closed at
/// once (102) and counted (`sync_busy`): the asker tries again later, as
/// after any failed sync.
pub const MAX_SERVED_SYNCS: usize = 32;

impl<C: SyncCatalog> SyncService<C> {
    pub fn new(discovery: C) -> Self {
        Self::with_limit(discovery, MAX_SERVED_SYNCS)
    }

    /// Serves at most `limit` syncs at once.
    pub fn with_limit(discovery: C, limit: usize) -> Self {
        Self {
            discovery,
            serving: Arc::new(Semaphore::new(limit)),
        }
    }

    async fn serve(&self, connection: Connection) -> Result<usize, SyncError> {
        let mut link = Link::<CatalogSync>::accept(connection).await?;
        let snapshot = receive_snapshot(&self.discovery, &mut link).await?;
        link.send_raw(self.discovery.snapshot()).await?;
        let merged = merge(&self.discovery, snapshot, link.remote_id(), false).await;
        if merged.forged_limit_reached {
            link.close(CloseReason::ProtocolViolation, CLOSE_GRACE).await;
            return Err(SyncError::Forged);
        }
        let taken = merged.taken;
        match link.closed().await {
            LinkError::ClosedByPeer(close) if close.known() == Some(CloseReason::Success) => Ok(taken),
            other => Err(other.into()),
        }
    }
}

impl<C> std::fmt::Debug for SyncService<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncService")
    }
}

impl<C: SyncCatalog> ProtocolHandler for SyncService<C> {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let remote = connection.remote_id();
        if self.discovery.is_departing() {
            // Our snapshot would carry our entry past our goodbye.
            crate::network::link::close_connection(&connection, CloseReason::GracefulShutdown);
            return Ok(());
        }
        let Ok(_serving) = self.serving.clone().try_acquire_owned() else {
            self.discovery.reject(
                Rejection::SyncBusy,
                Some(remote),
                &"too many catalog syncs at once",
            );
            crate::network::link::close_connection(&connection, CloseReason::Cancelled);
            return Ok(());
        };
        let timeout = self.discovery.sync_timeout();
        match tokio::time::timeout(timeout, self.serve(connection)).await {
            Ok(Ok(taken)) => debug!(peer = %remote.fmt_short(), taken, "served catalog sync"),
            Ok(Err(e)) => {
                debug!(peer = %remote.fmt_short(), error = %e, "catalog sync not completed")
            }
            Err(_) => self
                .discovery
                .reject(Rejection::SilentPeer, Some(remote), &"catalog sync timed out"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use iroh::SecretKey;

    use super::*;
    use crate::{discovery::entry::PeerEntry, primitives::Digest};

    fn entry(seed: u8) -> SignedPeerEntry {
        let key = SecretKey::from_bytes(&[seed; 32]);
        PeerEntry::new(Digest::from_name("demo"), EndpointAddr::new(key.public()))
            .sign(&key)
            .unwrap()
    }

    #[test]
    fn snapshot_round_trips_and_forged_entries_fail_verification() {
        let (a, b, c) = (entry(1), entry(2), entry(3));
        let mut bytes = encode_snapshot([&a, &b, &c].into_iter()).to_vec();
        assert_eq!(bytes[0], 3);
        // Corrupt b's signature (the last byte of its wire form).
        let b_end = 1 + a.wire().len() + b.wire().len();
        bytes[b_end - 1] ^= 1;
        let snapshot = decode_snapshot(&bytes, 10).unwrap();
        assert!(!snapshot.truncated);
        let verified: Vec<_> = snapshot.entries.into_iter().map(|e| e.verify().ok()).collect();
        assert_eq!(verified, vec![Some(a), None, Some(c)]);
    }

    #[test]
    fn a_long_snapshot_is_read_up_to_the_bound() {
        let entries: Vec<_> = (1..=5).map(entry).collect();
        let bytes = encode_snapshot(entries.iter());
        let snapshot = decode_snapshot(&bytes, 2).unwrap();
        assert!(snapshot.truncated);
        assert_eq!(snapshot.entries.len(), 2);
        assert_eq!(snapshot.entries[1].wire(), entries[1].wire());
    }

    #[test]
    fn one_entry_frame_matches_the_spec_framing() {
        let a = entry(1);
        let bytes = encode_snapshot([&a].into_iter());
        assert_eq!(bytes[0], 1);
        assert_eq!(&bytes[1..], &a.wire()[..]);
    }

    #[test]
    fn garbage_is_not_a_snapshot() {
        assert!(decode_snapshot(&[], 10).is_err());
        assert!(decode_snapshot(&[5, 1, 2, 3], 10).is_err());
        assert!(
            decode_snapshot(
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                10
            )
            .is_err()
        );
    }
}
