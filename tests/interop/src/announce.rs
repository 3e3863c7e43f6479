//! The gossip payload of mosaik's announcement protocol.
//!
//! mosaik 0.3.13 keeps `AnnouncementMessage` and `GracefulDeparture` private
//! (`discovery/announce.rs:663-715`), so this module holds a field-for-field
//! copy of both types with the same serde derives; postcard derives depend
//! only on variant order, field order and field types, which are mosaik's own
//! public types here (`SignedPeerEntry`, `PeerEntryVersion`, `PeerId`,
//! `Signature`, chrono's `DateTime<Utc>`). The departure hash is a copy of
//! `GracefulDeparture::new` / `has_valid_signature`. What these copies prove
//! is checked against live mosaik bytes through the gossip spy (`spy.rs`).
//!
//! Commands: `decode_announcement {"hex"}` and `encode_departure
//! {"secret_key", "last_version", "timestamp"}`.

use {
    crate::{vectors, wire},
    anyhow::{Context, Result},
    chrono::{DateTime, Utc},
    iroh::SecretKey,
    mosaik::{
        PeerId, Signature,
        discovery::{PeerEntryVersion, SignedPeerEntry},
        primitives::encoding::try_serialize,
    },
    serde::{Deserialize, Serialize},
    serde_json::{Value, json},
};

/// Copy of mosaik's private `AnnouncementMessage` (same variant order).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)]
pub enum AnnouncementMessage {
    OwnEntryUpdate(SignedPeerEntry),
    GracefulDeparture(GracefulDeparture),
}

/// Copy of mosaik's private `GracefulDeparture` (same field order).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GracefulDeparture {
    peer_id: PeerId,
    last_version: PeerEntryVersion,
    timestamp: DateTime<Utc>,
    signature: Signature,
}

impl GracefulDeparture {
    /// As mosaik's `GracefulDeparture::new`, with a given timestamp.
    fn new(secret: &SecretKey, last_version: PeerEntryVersion, timestamp: DateTime<Utc>) -> Self {
        let peer_id = secret.public();
        let hash = departure_hash(&peer_id, last_version, timestamp);
        Self {
            peer_id,
            last_version,
            timestamp,
            signature: secret.sign(hash.as_bytes()),
        }
    }

    /// As mosaik's `GracefulDeparture::has_valid_signature`.
    fn has_valid_signature(&self) -> bool {
        let hash = departure_hash(&self.peer_id, self.last_version, self.timestamp);
        self.peer_id.verify(hash.as_bytes(), &self.signature).is_ok()
    }

    fn to_json(&self) -> Value {
        json!({
            "peer_id": self.peer_id.to_string(),
            "last_version": serde_json::to_value(self.last_version).unwrap_or_default(),
            // chrono's own serde form (RFC 3339, AutoSi digits, `Z`).
            "timestamp": serde_json::to_value(self.timestamp).unwrap_or_default(),
            "timestamp_ms": self.timestamp.timestamp_millis(),
            "hash_hex": departure_hash(&self.peer_id, self.last_version, self.timestamp)
                .to_hex()
                .to_string(),
            "signature_hex": hex::encode(self.signature.to_bytes()),
            "signature_valid": self.has_valid_signature(),
        })
    }
}

/// blake3(peer_id ‖ be64(v.0) ‖ be64(v.1) ‖ be64(timestamp ms)).
fn departure_hash(peer_id: &PeerId, version: PeerEntryVersion, timestamp: DateTime<Utc>) -> blake3::Hash {
    let (started, updated) = version_parts(version);
    let mut hasher = blake3::Hasher::default();
    hasher.update(peer_id.as_bytes());
    hasher.update(&started.to_be_bytes());
    hasher.update(&updated.to_be_bytes());
    hasher.update(&timestamp.timestamp_millis().to_be_bytes());
    hasher.finalize()
}

/// The two crate-private fields of a `PeerEntryVersion`, read through serde.
pub fn version_parts(version: PeerEntryVersion) -> (i64, i64) {
    serde_json::from_value(serde_json::to_value(version).unwrap_or_default())
        .expect("PeerEntryVersion serializes as [i64, i64]")
}

/// `decode_announcement`: `{"hex"}` of a gossip payload →
/// `{"kind": "own_entry_update", "entry", ...}` or
/// `{"kind": "graceful_departure", "departure", ...}`, both with
/// `reencoded_hex`, `roundtrip` and `trailing_bytes`.
pub fn decode_announcement(cmd: &Value) -> Result<Value> {
    let bytes = wire::hex_field(cmd, "hex")?;
    let (message, trailing) = vectors::decode::<AnnouncementMessage>(&bytes, "announcement message")?;
    let reencoded = try_serialize(&message)?;
    let mut answer = match &message {
        AnnouncementMessage::OwnEntryUpdate(entry) => json!({
            "kind": "own_entry_update",
            "entry": wire::entry_json(entry, true),
        }),
        AnnouncementMessage::GracefulDeparture(departure) => json!({
            "kind": "graceful_departure",
            "departure": departure.to_json(),
        }),
    };
    vectors::extend(
        &mut answer,
        json!({
            "reencoded_hex": hex::encode(&reencoded),
            "roundtrip": reencoded[..] == bytes[..bytes.len() - trailing],
            "trailing_bytes": trailing,
        }),
    );
    Ok(answer)
}

/// `encode_departure`: `{"secret_key", "last_version": [a, b], "timestamp":
/// RFC 3339}` → `{"payload_hex", "departure"}`. The timestamp is parsed by
/// chrono's own `Deserialize`, as a receiving mosaik node would.
pub fn encode_departure(cmd: &Value) -> Result<Value> {
    let secret = wire::secret_key_field(cmd, "secret_key")?;
    let last_version = wire::version_field(cmd, "last_version")?.context("missing `last_version`")?;
    let timestamp: DateTime<Utc> = serde_json::from_value(json!(wire::str_field(cmd, "timestamp")?))
        .context("invalid RFC 3339 `timestamp`")?;

    let departure = GracefulDeparture::new(&secret, last_version, timestamp);
    let payload = try_serialize(&AnnouncementMessage::GracefulDeparture(departure.clone()))?;
    Ok(json!({
        "payload_hex": hex::encode(&payload),
        "departure": departure.to_json(),
    }))
}
