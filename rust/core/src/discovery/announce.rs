//! Announcements: what nodes gossip on the network's topic.
//!
//! The payload of every gossip message is `postcard(AnnouncementMessage)`:
//! variant 0 carries a signed entry (we put the entry's exact bytes after
//! the variant byte), variant 1 a signed goodbye. The departure signature
//! covers `blake3(peer_id ‖ be64(started) ‖ be64(updated) ‖ be64(ms))`,
//! where `ms` is the timestamp's milliseconds; the timestamp itself travels
//! as an RFC 3339 string, as chrono's serde writes it.

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, Utc};
use iroh::{EndpointId, SecretKey, Signature};
use serde::{Deserialize, Serialize};

use super::entry::{EntryError, PeerEntryVersion, SignedPeerEntry};
use crate::primitives::{Digest, encoding};

/// `/mosaik/discovery/announce/1.0`: iroh-gossip under mosaik's ALPN.
pub const ANNOUNCE_ALPN: &[u8] = b"/mosaik/discovery/announce/1.0";

/// A goodbye: "I am leaving; forget every entry of mine up to this version".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GracefulDeparture {
    pub peer_id: EndpointId,
    pub last_version: PeerEntryVersion,
    pub timestamp: DateTime<Utc>,
    pub signature: Signature,
}

fn departure_digest(peer_id: &EndpointId, version: PeerEntryVersion, timestamp: &DateTime<Utc>) -> Digest {
    let mut data = Vec::with_capacity(32 + 24);
    data.extend_from_slice(peer_id.as_bytes());
    data.extend_from_slice(&version.started_at_ms().to_be_bytes());
    data.extend_from_slice(&version.updated_at_ms().to_be_bytes());
    data.extend_from_slice(&timestamp.timestamp_millis().to_be_bytes());
    Digest::hash(&data)
}

impl GracefulDeparture {
    pub fn new(key: &SecretKey, last_version: PeerEntryVersion, timestamp: DateTime<Utc>) -> Self {
        let peer_id = key.public();
        let signature = key.sign(departure_digest(&peer_id, last_version, &timestamp).as_bytes());
        Self {
            peer_id,
            last_version,
            timestamp,
            signature,
        }
    }

    pub fn verify(&self) -> bool {
        let digest = departure_digest(&self.peer_id, self.last_version, &self.timestamp);
        self.peer_id.verify(digest.as_bytes(), &self.signature).is_ok()
    }
}

// Messages live for one decode or one broadcast; boxing the entry would only
// add an allocation to every message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Announcement {
    OwnEntryUpdate(SignedPeerEntry),
    GracefulDeparture(GracefulDeparture),
}

const OWN_ENTRY_UPDATE: u8 = 0;
const GRACEFUL_DEPARTURE: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum AnnouncementError {
    #[error("unknown announcement variant {0}")]
    UnknownVariant(u8),
    #[error("empty announcement")]
    Empty,
    #[error(transparent)]
    Entry(#[from] EntryError),
    #[error("bad departure signature")]
    BadDepartureSignature,
}

impl Announcement {
    pub fn encode(&self) -> Result<Bytes, encoding::EncodingError> {
        let mut out = BytesMut::new();
        match self {
            Announcement::OwnEntryUpdate(entry) => {
                out.put_u8(OWN_ENTRY_UPDATE);
                out.put_slice(entry.wire());
            }
            Announcement::GracefulDeparture(departure) => {
                out.put_u8(GRACEFUL_DEPARTURE);
                out.put_slice(&encoding::encode(departure)?);
            }
        }
        Ok(out.freeze())
    }

    /// Decodes and verifies (entry or departure signature).
    pub fn decode(bytes: &[u8]) -> Result<Self, AnnouncementError> {
        // The variant is a varint; both variants fit in its first byte.
        let (&variant, rest) = bytes.split_first().ok_or(AnnouncementError::Empty)?;
        match variant {
            OWN_ENTRY_UPDATE => Ok(Announcement::OwnEntryUpdate(SignedPeerEntry::decode(rest)?)),
            GRACEFUL_DEPARTURE => {
                let departure: GracefulDeparture =
                    encoding::decode(rest).map_err(|e| AnnouncementError::Entry(e.into()))?;
                if !departure.verify() {
                    return Err(AnnouncementError::BadDepartureSignature);
                }
                Ok(Announcement::GracefulDeparture(departure))
            }
            other => Err(AnnouncementError::UnknownVariant(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_key() -> SecretKey {
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = i as u8;
        }
        SecretKey::from_bytes(&seed)
    }

    #[test]
    fn departure_encoding_matches_the_spec_layout() {
        let key = seed_key();
        let ts: DateTime<Utc> = "2026-01-01T00:00:05Z".parse().unwrap();
        let departure = GracefulDeparture::new(&key, PeerEntryVersion(1767225600000, 1767225600001), ts);
        let bytes = Announcement::GracefulDeparture(departure.clone())
            .encode()
            .unwrap();
        let expected_prefix = format!(
            "01{}80a0d5edee6682a0d5edee6614{}",
            key.public(),
            hex::encode("2026-01-01T00:00:05Z")
        );
        assert!(
            hex::encode(&bytes).starts_with(&expected_prefix),
            "{}",
            hex::encode(&bytes)
        );
        assert_eq!(bytes.len(), expected_prefix.len() / 2 + 64);
        assert_eq!(
            Announcement::decode(&bytes).unwrap(),
            Announcement::GracefulDeparture(departure)
        );
    }

    #[test]
    fn a_forged_departure_is_rejected() {
        let key = seed_key();
        let mut departure = GracefulDeparture::new(&key, PeerEntryVersion(1, 2), Utc::now());
        departure.last_version = PeerEntryVersion(1, 3);
        let bytes = Announcement::GracefulDeparture(departure).encode().unwrap();
        assert!(matches!(
            Announcement::decode(&bytes),
            Err(AnnouncementError::BadDepartureSignature)
        ));
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(Announcement::decode(&[]).is_err());
        assert!(Announcement::decode(&[7, 1, 2]).is_err());
        assert!(Announcement::decode(&[0, 1, 2]).is_err());
    }
}
