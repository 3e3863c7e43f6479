//! JSON shapes exchanged with the test driver.
//!
//! - address: `{"id": "<hex public key>", "relay": ["<url>", ...],
//!   "ip": ["<ip:port>", ...]}`; a command may instead carry
//!   `"ticket": "endpoint..."` (an iroh-tickets `EndpointTicket`).
//! - peer entry: `{"peer_id", "network", "protocol", "version":
//!   [started_ms, updated_ms], "tags": [hex], "streams": [hex],
//!   "groups": [hex], "tickets": [{"id", "class", "data_hex"}],
//!   "addr": address, "signed": bool}`.
//! - byte strings (`hex`, `secret_key`, ...) are lowercase or uppercase hex;
//!   answers always use lowercase hex.
//! - waits take `timeout_ms` (default [`DEFAULT_TIMEOUT`]).

use {
    anyhow::{Context, Result, bail, ensure},
    iroh::{EndpointAddr, PublicKey, RelayUrl, SecretKey, TransportAddr},
    iroh_tickets::endpoint::EndpointTicket,
    mosaik::{
        Digest,
        discovery::{PeerEntry, PeerEntryVersion},
    },
    serde_json::{Value, json},
    std::{net::SocketAddr, time::Duration},
};

/// Bound for every wait whose command carries no `timeout_ms`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(10_000);

/// Full lowercase hex of a mosaik digest (ids, tags, stream ids).
pub fn hex(digest: &Digest) -> String {
    digest.to_hex().to_string()
}

/// A required string field of a command.
pub fn str_field<'a>(cmd: &'a Value, name: &str) -> Result<&'a str> {
    cmd.get(name)
        .and_then(Value::as_str)
        .with_context(|| format!("missing string field `{name}`"))
}

/// A required hex field of a command, decoded to bytes.
pub fn hex_field(cmd: &Value, name: &str) -> Result<Vec<u8>> {
    let text = str_field(cmd, name)?;
    hex::decode(text.trim()).with_context(|| format!("`{name}` is not valid hex"))
}

/// The `timeout_ms` field of a command, or [`DEFAULT_TIMEOUT`].
pub fn timeout_field(cmd: &Value) -> Result<Duration> {
    match cmd.get("timeout_ms") {
        None | Some(Value::Null) => Ok(DEFAULT_TIMEOUT),
        Some(value) => value
            .as_u64()
            .map(Duration::from_millis)
            .context("`timeout_ms` must be a non-negative integer"),
    }
}

/// A secret key given as 64 hex characters (the 32-byte Ed25519 seed).
pub fn secret_key_field(cmd: &Value, name: &str) -> Result<SecretKey> {
    let bytes: [u8; 32] = hex_field(cmd, name)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("`{name}` must be 32 bytes (64 hex characters)"))?;
    Ok(SecretKey::from_bytes(&bytes))
}

/// A peer id given as 64 hex characters.
pub fn peer_id_field(cmd: &Value, name: &str) -> Result<PublicKey> {
    str_field(cmd, name)?
        .to_ascii_lowercase()
        .parse()
        .with_context(|| format!("invalid `{name}`"))
}

/// An optional `[started_ms, updated_ms]` version field. mosaik keeps the
/// fields of `PeerEntryVersion` crate-private, so the value is built through
/// its public serde implementation (a 2-tuple).
pub fn version_field(cmd: &Value, name: &str) -> Result<Option<PeerEntryVersion>> {
    match cmd.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => {
            let pair = value
                .as_array()
                .filter(|items| items.len() == 2 && items.iter().all(|item| item.as_i64().is_some()));
            ensure!(pair.is_some(), "`{name}` must be [started_ms, updated_ms]");
            let version =
                serde_json::from_value(value.clone()).with_context(|| format!("invalid `{name}`"))?;
            Ok(Some(version))
        }
    }
}

/// An optional list of strings (absent or null means empty).
pub fn str_list(value: &Value, name: &str) -> Result<Vec<String>> {
    match value.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .with_context(|| format!("`{name}` must only contain strings"))
            })
            .collect(),
        Some(_) => bail!("`{name}` must be a list of strings"),
    }
}

/// The `EndpointAddr` a command targets, from `ticket` or `addr`.
pub fn target_addr(cmd: &Value) -> Result<EndpointAddr> {
    if let Some(ticket) = cmd.get("ticket").and_then(Value::as_str) {
        let ticket: EndpointTicket = ticket.parse().context("invalid ticket")?;
        return Ok(ticket.into());
    }
    let addr = cmd.get("addr").context("missing `addr` or `ticket`")?;
    parse_addr(addr)
}

/// Builds an `EndpointAddr` from the JSON address shape.
pub fn parse_addr(addr: &Value) -> Result<EndpointAddr> {
    let id: PublicKey = str_field(addr, "id")?
        .to_ascii_lowercase()
        .parse()
        .context("invalid `id`")?;
    let mut transports = Vec::new();
    for url in str_list(addr, "relay")? {
        let url: RelayUrl = url.parse().with_context(|| format!("invalid relay url {url}"))?;
        transports.push(TransportAddr::Relay(url));
    }
    for ip in str_list(addr, "ip")? {
        let ip: SocketAddr = ip.parse().with_context(|| format!("invalid ip address {ip}"))?;
        transports.push(TransportAddr::Ip(ip));
    }
    Ok(EndpointAddr::from_parts(id, transports))
}

/// The JSON address shape of an `EndpointAddr`.
pub fn addr_json(addr: &EndpointAddr) -> Value {
    json!({
        "id": addr.id.to_string(),
        "relay": addr.relay_urls().map(ToString::to_string).collect::<Vec<_>>(),
        "ip": addr.ip_addrs().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

/// The JSON peer-entry shape of a discovery catalog entry.
pub fn entry_json(entry: &PeerEntry, signed: bool) -> Value {
    let hexes = |ids: &mut dyn Iterator<Item = &Digest>| ids.map(hex).collect::<Vec<_>>();
    json!({
        "peer_id": entry.id().to_string(),
        "network": hex(entry.network_id()),
        "protocol": entry.protocol_version().to_string(),
        // `PeerEntryVersion` serializes as [started_ms, updated_ms].
        "version": serde_json::to_value(entry.update_version()).unwrap_or_default(),
        "tags": hexes(&mut entry.tags().iter()),
        "streams": hexes(&mut entry.streams().iter()),
        "groups": hexes(&mut entry.groups().iter()),
        "tickets": entry
            .tickets()
            .iter()
            .map(|(id, ticket)| json!({
                "id": hex(id),
                "class": hex(&ticket.class),
                "data_hex": hex::encode(ticket.data()),
            }))
            .collect::<Vec<_>>(),
        "addr": addr_json(entry.address()),
        "signed": signed,
    })
}
