//! JWT tickets through mosaik's own `JwtTicketBuilder` and `Jwt`, so tests
//! can hold our issuer and validator to the real crate (no node needed).
//!
//! - `jwt_issue {"alg", "key": hex, "peer_id", "issuer"?, "subject"?,
//!   "audience"?, "not_before"?, "issued_at"?, "jti"?, "exp"?: seconds or
//!   null for a non-expiring token, "claims"?: {name: JSON}}` → `token`,
//!   `ticket_id`. Signing keys: the HMAC secret, the ECDSA scalar or the
//!   Ed25519 seed; times are whole seconds since the epoch.
//! - `jwt_validate {"token", "peer_id", "config"}` → `valid`, and
//!   `expiration` (seconds, or null for never) when valid; mosaik gives no
//!   reason for a refusal.
//! - `jwt_signature {"config"}` → `signature` (hex).
//!
//! - `add_ticket {"token"}` answers `ticket_id`; `remove_ticket
//!   {"ticket_id"}`: the running node's own JWT tickets.
//! - `"require_ticket": config` on `produce`, `consume` and `group_join`
//!   gates them with mosaik's `Jwt` built from that config.
//!
//! A `config` is `{"keys": [[alg, hex], ...], "issuers"?: [...],
//! "audiences"?: [...], "subject"?, "allow_non_expiring"?, "max_lifetime"?:
//! seconds, "max_age"?: seconds, "claims"?: {name: JSON}}`, applied in
//! that order with mosaik's builder methods.

use {
    crate::{vectors, wire},
    anyhow::{Context, Result, bail},
    mosaik::tickets::{
        EdDsa, EdDsaSigningKey, Es256, Es256SigningKey, Es384, Es384SigningKey, Es512, Es512SigningKey,
        Expiration, Hs256, Hs384, Hs512, Jwt, JwtTicketBuilder, SigningKey, TicketValidator, VerifyingKey,
    },
    mosaik::{Network, tickets::Ticket},
    serde_json::{Value, json},
    std::time::Duration,
};

fn array<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N]> {
    bytes
        .try_into()
        .with_context(|| format!("{what} must be {N} bytes, got {}", bytes.len()))
}

fn signing_key(alg: &str, bytes: &[u8]) -> Result<SigningKey> {
    Ok(match alg {
        "HS256" => Hs256::new(array(bytes, alg)?).into(),
        "HS384" => Hs384::new(array(bytes, alg)?).into(),
        "HS512" => Hs512::new(array(bytes, alg)?).into(),
        "ES256" => Es256SigningKey::from_bytes(array(bytes, alg)?).into(),
        "ES384" => Es384SigningKey::from_bytes(array(bytes, alg)?).into(),
        "ES512" => Es512SigningKey::from_bytes(array(bytes, alg)?).into(),
        "EdDSA" => EdDsaSigningKey::from_bytes(array(bytes, alg)?).into(),
        other => bail!("unknown algorithm {other:?}"),
    })
}

fn verifying_key(alg: &str, bytes: &[u8]) -> Result<VerifyingKey> {
    Ok(match alg {
        "HS256" => Hs256::new(array(bytes, alg)?).into(),
        "HS384" => Hs384::new(array(bytes, alg)?).into(),
        "HS512" => Hs512::new(array(bytes, alg)?).into(),
        "ES256" => Es256::new(array(bytes, alg)?).into(),
        "ES384" => Es384::new(array(bytes, alg)?).into(),
        "ES512" => Es512::new(array(bytes, alg)?).into(),
        "EdDSA" => EdDsa::new(array(bytes, alg)?).into(),
        other => bail!("unknown algorithm {other:?}"),
    })
}

fn optional_str<'a>(cmd: &'a Value, name: &str) -> Option<&'a str> {
    cmd.get(name).and_then(Value::as_str)
}

fn claims(cmd: &Value) -> Result<Vec<(String, Value)>> {
    match cmd.get("claims") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => Ok(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        Some(_) => bail!("`claims` must be an object"),
    }
}

/// `jwt_issue`.
pub fn issue(cmd: &Value) -> Result<Value> {
    let key = signing_key(wire::str_field(cmd, "alg")?, &wire::hex_field(cmd, "key")?)?;
    let peer = wire::peer_id_field(cmd, "peer_id")?;
    let mut builder = JwtTicketBuilder::new(key);
    if let Some(issuer) = optional_str(cmd, "issuer") {
        builder = builder.issuer(issuer);
    }
    if let Some(subject) = optional_str(cmd, "subject") {
        builder = builder.subject(subject);
    }
    if let Some(audience) = optional_str(cmd, "audience") {
        builder = builder.audience(audience);
    }
    if let Some(jti) = optional_str(cmd, "jti") {
        builder = builder.token_id(jti);
    }
    // `claim` routes the registered names to their fields (as u64 seconds).
    for name in ["not_before", "issued_at"] {
        if let Some(seconds) = cmd.get(name).filter(|v| !v.is_null()) {
            let registered = if name == "not_before" { "nbf" } else { "iat" };
            builder = builder.claim(registered, seconds.clone());
        }
    }
    for (name, value) in claims(cmd)? {
        builder = builder.claim(name, value);
    }
    let expiration = match cmd.get("exp") {
        None | Some(Value::Null) => Expiration::Never,
        Some(exp) => {
            let seconds = exp.as_i64().context("`exp` must be an integer")?;
            Expiration::At(chrono::DateTime::from_timestamp(seconds, 0).context("`exp` out of range")?)
        }
    };
    let ticket = builder.build(&peer, expiration);
    Ok(json!({
        "token": String::from_utf8(ticket.data.to_vec()).context("mosaik built a non-UTF-8 token")?,
        "ticket_id": wire::hex(&ticket.id()),
    }))
}

fn validator(config: &Value) -> Result<Jwt> {
    let keys = config
        .get("keys")
        .and_then(Value::as_array)
        .context("`keys` must be a list")?;
    let mut jwt: Option<Jwt> = None;
    for pair in keys {
        let alg = pair
            .get(0)
            .and_then(Value::as_str)
            .context("a key is [alg, hex]")?;
        let hex = pair
            .get(1)
            .and_then(Value::as_str)
            .context("a key is [alg, hex]")?;
        let key = verifying_key(alg, &hex::decode(hex).context("key is not hex")?)?;
        jwt = Some(match jwt {
            None => Jwt::with_key(key),
            Some(jwt) => jwt.add_key(key),
        });
    }
    let mut jwt = jwt.context("at least one key")?;
    for issuer in wire::str_list(config, "issuers")? {
        jwt = jwt.allow_issuer(issuer);
    }
    for audience in wire::str_list(config, "audiences")? {
        jwt = jwt.allow_audience(audience);
    }
    if let Some(subject) = optional_str(config, "subject") {
        jwt = jwt.require_subject(subject);
    }
    if config.get("allow_non_expiring").and_then(Value::as_bool) == Some(true) {
        jwt = jwt.allow_non_expiring();
    }
    if let Some(seconds) = config.get("max_lifetime").and_then(Value::as_u64) {
        jwt = jwt.max_lifetime(Duration::from_secs(seconds));
    }
    if let Some(seconds) = config.get("max_age").and_then(Value::as_u64) {
        jwt = jwt.max_age(Duration::from_secs(seconds));
    }
    for (name, value) in claims(config)? {
        jwt = jwt.require_claim(name, value);
    }
    Ok(jwt)
}

/// The validator a `produce`, `consume` or `group_join` command asks for
/// with `"require_ticket": config`, if any.
pub fn gate(cmd: &Value) -> Result<Option<Jwt>> {
    match cmd.get("require_ticket") {
        None | Some(Value::Null) => Ok(None),
        Some(config) => validator(config).map(Some),
    }
}

/// `add_ticket {"token"}`: attaches a JWT ticket to the node's entry
/// (mosaik re-signs and announces it); answers `ticket_id`.
pub fn add_ticket(network: &Network, cmd: &Value) -> Result<Value> {
    let token = wire::str_field(cmd, "token")?;
    let ticket = Ticket::new(Jwt::CLASS, token.as_bytes().to_vec().into());
    let id = ticket.id();
    network.discovery().add_ticket(ticket);
    Ok(json!({ "ticket_id": wire::hex(&id) }))
}

/// `remove_ticket {"ticket_id"}`.
pub fn remove_ticket(network: &Network, cmd: &Value) -> Result<Value> {
    let id = wire::hex_field(cmd, "ticket_id")?;
    let id: [u8; 32] = id.as_slice().try_into().context("a ticket id is 32 bytes")?;
    network
        .discovery()
        .remove_ticket(mosaik::UniqueId::from_bytes(id));
    Ok(json!({}))
}

/// `jwt_validate`.
pub fn validate(cmd: &Value) -> Result<Value> {
    let jwt = validator(cmd.get("config").context("missing `config`")?)?;
    let peer = wire::peer_id_field(cmd, "peer_id")?;
    let entry = vectors::build_entry(&json!({"version": [0, 0], "network": "jwt"}), &peer)?;
    let token = wire::str_field(cmd, "token")?;
    Ok(match jwt.validate(token.as_bytes(), &entry) {
        Ok(Expiration::Never) => json!({"valid": true, "expiration": null}),
        Ok(Expiration::At(at)) => json!({"valid": true, "expiration": at.timestamp()}),
        Err(_) => json!({"valid": false}),
    })
}

/// `jwt_signature`.
pub fn signature(cmd: &Value) -> Result<Value> {
    let jwt = validator(cmd.get("config").context("missing `config`")?)?;
    Ok(json!({ "signature": wire::hex(&jwt.signature()) }))
}
