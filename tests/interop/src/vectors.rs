//! Byte-vector checks run through mosaik 0.3.13's own types.
//!
//! - `decode_signed_entry` / `decode_entry`: postcard-decode with mosaik's
//!   `SignedPeerEntry` (whose `Deserialize` verifies the signature) or plain
//!   `PeerEntry`, then re-encode with mosaik.
//! - `encode_entry`: mosaik has no public constructor for `PeerEntry` and keeps
//!   the fields of `PeerEntryVersion` crate-private, but both types derive
//!   `Deserialize`. The entry is therefore assembled through serde from a JSON
//!   value whose fields are themselves produced by the field types' own
//!   `Serialize` (`NetworkId`, `EndpointAddr`, `Ticket`, ...); JSON only carries
//!   the values. Digest, signature and every output byte then come from
//!   mosaik's `PeerEntry::digest`, `PeerEntry::sign` and postcard encoding.
//! - `decode_snapshot`: mosaik's `CatalogSnapshot(Vec<SignedPeerEntry>)` is
//!   `pub` but lives in the private module `discovery::sync`, so it is not
//!   nameable here. postcard encodes a newtype struct exactly as its content,
//!   so decoding `Vec<SignedPeerEntry>` with mosaik's entry type is the same
//!   computation.

use {
    crate::wire,
    anyhow::{Context, Result, ensure},
    mosaik::{
        Bytes, Digest, NetworkId,
        discovery::{PeerEntry, SignedPeerEntry},
        primitives::encoding::{deserialize, try_serialize},
        tickets::Ticket,
    },
    serde::de::DeserializeOwned,
    serde_json::{Map, Value, json},
};

/// mosaik's `CARGO_PKG_VERSION`, the protocol string its own entries carry.
const PROTOCOL: &str = "0.3.13";

/// `decode_signed_entry`: `{"hex"}` → entry fields plus `reencoded_hex`,
/// `digest_hex`, `signature_hex`, `roundtrip` and `trailing_bytes`.
pub fn decode_signed_entry(cmd: &Value) -> Result<Value> {
    let bytes = wire::hex_field(cmd, "hex")?;
    let (entry, trailing) = decode::<SignedPeerEntry>(&bytes, "signed peer entry")?;
    let reencoded = try_serialize(&entry)?;
    let signature = &reencoded[reencoded.len() - 64..];
    let mut answer = wire::entry_json(&entry, true);
    extend(
        &mut answer,
        json!({
            "reencoded_hex": hex::encode(&reencoded),
            "digest_hex": entry.digest().to_hex().to_string(),
            "signature_hex": hex::encode(signature),
            "roundtrip": reencoded[..] == bytes[..bytes.len() - trailing],
            "trailing_bytes": trailing,
        }),
    );
    Ok(answer)
}

/// `decode_entry`: `{"hex"}` of an unsigned `PeerEntry` → entry fields plus
/// `reencoded_hex`, `digest_hex`, `roundtrip`, `trailing_bytes`.
pub fn decode_entry(cmd: &Value) -> Result<Value> {
    let bytes = wire::hex_field(cmd, "hex")?;
    let (entry, trailing) = decode::<PeerEntry>(&bytes, "peer entry")?;
    let reencoded = try_serialize(&entry)?;
    let mut answer = wire::entry_json(&entry, false);
    extend(
        &mut answer,
        json!({
            "reencoded_hex": hex::encode(&reencoded),
            "digest_hex": entry.digest().to_hex().to_string(),
            "roundtrip": reencoded[..] == bytes[..bytes.len() - trailing],
            "trailing_bytes": trailing,
        }),
    );
    Ok(answer)
}

/// `encode_entry`: builds and signs a `PeerEntry` with exactly the given
/// fields; answers `entry_hex`, `digest_hex`, `signature_hex`, `signed_hex`,
/// `peer_id` and the decoded `entry`.
pub fn encode_entry(cmd: &Value) -> Result<Value> {
    let secret = wire::secret_key_field(cmd, "secret_key")?;
    let entry = build_entry(cmd, &secret.public())?;

    let entry_bytes = try_serialize(&entry)?;
    let digest = entry.digest();
    let signed = entry.sign(&secret).context("mosaik refused to sign")?;
    let signed_bytes = try_serialize(&signed)?;
    // Prove mosaik accepts its own output (decoding verifies the signature).
    let (decoded, _) = decode::<SignedPeerEntry>(&signed_bytes, "own signed entry")?;
    ensure!(decoded == signed, "mosaik decoded a different entry");

    Ok(json!({
        "peer_id": signed.id().to_string(),
        "entry_hex": hex::encode(&entry_bytes),
        "digest_hex": digest.to_hex().to_string(),
        "signature_hex": hex::encode(&signed_bytes[entry_bytes.len()..]),
        "signed_hex": hex::encode(&signed_bytes),
        "entry": wire::entry_json(&signed, true),
    }))
}

/// `decode_snapshot`: `{"hex", "framed"?}` → `peer_ids`, `entries`,
/// `reencoded_hex`, `trailing_bytes`. With `"framed": true` the input starts
/// with the 4-byte big-endian length prefix of a Link frame.
pub fn decode_snapshot(cmd: &Value) -> Result<Value> {
    let bytes = wire::hex_field(cmd, "hex")?;
    let framed = cmd.get("framed").and_then(Value::as_bool).unwrap_or(false);
    let payload = if framed { unframe(&bytes)? } else { &bytes[..] };
    let (entries, trailing) = decode::<Vec<SignedPeerEntry>>(payload, "catalog snapshot")?;
    Ok(json!({
        "peer_ids": entries.iter().map(|e| e.id().to_string()).collect::<Vec<_>>(),
        "entries": entries.iter().map(|e| wire::entry_json(e, true)).collect::<Vec<_>>(),
        "reencoded_hex": hex::encode(try_serialize(&entries)?),
        "trailing_bytes": trailing,
    }))
}

/// Strips and checks a 4-byte big-endian length prefix.
pub fn unframe(bytes: &[u8]) -> Result<&[u8]> {
    ensure!(bytes.len() >= 4, "frame shorter than its length prefix");
    let (len, payload) = bytes.split_at(4);
    let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
    ensure!(
        len == payload.len(),
        "frame length prefix says {len} bytes, {} follow",
        payload.len()
    );
    Ok(payload)
}

/// Decodes with mosaik's own `deserialize` (postcard `from_bytes`, which
/// ignores trailing bytes) and reports how many bytes were left over.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<(T, usize)> {
    let value: T = deserialize(bytes).with_context(|| format!("mosaik rejected the {what}"))?;
    let trailing = postcard::take_from_bytes::<T>(bytes)
        .map(|(_, rest)| rest.len())
        .unwrap_or(0);
    Ok((value, trailing))
}

/// Assembles a `PeerEntry` from the command fields (see the module comment).
pub fn build_entry(cmd: &Value, id: &iroh::PublicKey) -> Result<PeerEntry> {
    let version = wire::version_field(cmd, "version")?.context("missing `version`")?;
    let network = NetworkId::from(wire::str_field(cmd, "network")?);
    let protocol = cmd.get("protocol").and_then(Value::as_str).unwrap_or(PROTOCOL);
    let address = wire::parse_addr(&json!({
        "id": id.to_string(),
        "relay": wire::str_list(cmd, "relays")?,
        "ip": wire::str_list(cmd, "ips")?,
    }))?;

    let fields = json!({
        "protocol": protocol,
        "network": serde_json::to_value(network)?,
        "version": serde_json::to_value(version)?,
        "address": serde_json::to_value(address)?,
        "tags": id_list(cmd, "tags")?,
        "streams": id_list(cmd, "streams")?,
        "groups": id_list(cmd, "groups")?,
        "tickets": tickets(cmd)?,
    });
    serde_json::from_value(fields).context("mosaik could not build a PeerEntry from the fields")
}

/// Ids given as names or 64-hex strings, through mosaik's `Digest::from(&str)`.
fn id_list(cmd: &Value, name: &str) -> Result<Value> {
    let ids: Vec<Digest> = wire::str_list(cmd, name)?
        .iter()
        .map(|s| Digest::from(s.as_str()))
        .collect();
    Ok(serde_json::to_value(ids)?)
}

/// `tickets: [{"class": name or hex, "data_hex": hex}]` as mosaik's
/// `BTreeMap<UniqueId, Ticket>` keyed by `Ticket::id()`.
fn tickets(cmd: &Value) -> Result<Value> {
    let mut map = Map::new();
    let items = match cmd.get("tickets") {
        None | Some(Value::Null) => return Ok(Value::Object(map)),
        Some(items) => items.as_array().context("`tickets` must be a list")?,
    };
    for item in items {
        let class = Digest::from(wire::str_field(item, "class")?);
        let data = wire::hex_field(item, "data_hex")?;
        let ticket = Ticket::new(class, Bytes::from(data));
        map.insert(wire::hex(&ticket.id()), serde_json::to_value(&ticket)?);
    }
    Ok(Value::Object(map))
}

/// Merges the fields of `extra` into the object `target`.
pub fn extend(target: &mut Value, extra: Value) {
    if let (Some(target), Value::Object(extra)) = (target.as_object_mut(), extra) {
        target.extend(extra);
    }
}
