//! Commands that act on the running node's discovery handle: `info`,
//! `add_tags`, `remove_tags`, `dial`, `wait_peer`, `wait_gone`, `feed` and
//! `catalog_hex`. Waits follow `Discovery::catalog_watch()` and also re-check
//! every [`POLL`] (catalog views hide entries that went stale with time).

use {
    crate::{vectors, wire},
    anyhow::{Result, bail},
    mosaik::{
        Digest, Network, PeerId, Tag,
        discovery::{Catalog, Discovery, PeerEntry, PeerEntryVersion, SignedPeerEntry},
        primitives::encoding::try_serialize,
    },
    serde_json::{Value, json},
    std::time::{Duration, Instant},
};

/// Re-check interval of waits between catalog changes.
const POLL: Duration = Duration::from_millis(20);
/// mosaik's default `purge_after` (`discovery/config.rs`), for `feed` hints.
const PURGE_AFTER_MS: i64 = 300_000;

/// `info`: our id and every catalog entry except our own.
pub fn info(network: &Network) -> Value {
    let catalog = network.discovery().catalog();
    let signed = catalog.signed_peers().map(|e| wire::entry_json(e, true));
    let unsigned = catalog.unsigned_peers().map(|e| wire::entry_json(e, false));
    json!({
        "peer_id": network.local().id().to_string(),
        "catalog": signed.chain(unsigned).collect::<Vec<_>>(),
    })
}

/// `add_tags` / `remove_tags`: `{"tags": [name or hex]}`; answers our new
/// local `version` and `tags`.
pub fn change_tags(network: &Network, cmd: &Value, add: bool) -> Result<Value> {
    let tags: Vec<Tag> = wire::str_list(cmd, "tags")?
        .iter()
        .map(|t| Tag::from(t.as_str()))
        .collect();
    let discovery = network.discovery();
    if add {
        discovery.add_tags(tags);
    } else {
        discovery.remove_tags(tags);
    }
    let me = discovery.me();
    Ok(json!({
        "version": serde_json::to_value(me.update_version())?,
        "tags": me.tags().iter().map(wire::hex).collect::<Vec<_>>(),
    }))
}

/// `dial`: `{"ticket" | "addr", "timeout_ms"?}` → `Discovery::dial`, which
/// returns once the sync is started and the gossip join requested.
pub async fn dial(network: &Network, cmd: &Value) -> Result<Value> {
    let target = wire::target_addr(cmd)?;
    let timeout = wire::timeout_field(cmd)?;
    let started = Instant::now();
    if tokio::time::timeout(timeout, network.discovery().dial(target))
        .await
        .is_err()
    {
        bail!("dial did not return within {} ms", timeout.as_millis());
    }
    Ok(json!({ "elapsed_ms": started.elapsed().as_millis() as u64 }))
}

/// `wait_peer`: `{"peer_id", "tags"?, "version_after"?, "timeout_ms"?}` →
/// the signed catalog entry once it carries every tag and a version greater
/// than `version_after`, with `elapsed_ms`.
pub async fn wait_peer(network: &Network, cmd: &Value) -> Result<Value> {
    let peer_id = wire::peer_id_field(cmd, "peer_id")?;
    let tags: Vec<Digest> = wire::str_list(cmd, "tags")?
        .iter()
        .map(|t| Digest::from(t.as_str()))
        .collect();
    let after = wire::version_field(cmd, "version_after")?;
    let timeout = wire::timeout_field(cmd)?;

    let discovery = network.discovery();
    let started = Instant::now();
    let found = wait_until(discovery, timeout, |catalog| {
        catalog
            .get_signed(&peer_id)
            .filter(|entry| satisfies(entry, &tags, after))
            .map(|entry| wire::entry_json(entry, true))
    })
    .await;
    match found {
        Some(mut entry) => {
            let elapsed_ms = started.elapsed().as_millis() as u64;
            vectors::extend(&mut entry, json!({ "elapsed_ms": elapsed_ms }));
            Ok(entry)
        }
        None => bail!(
            "timed out after {} ms waiting for peer {peer_id}; catalog has: {}",
            timeout.as_millis(),
            describe(&discovery.catalog(), &peer_id)
        ),
    }
}

/// `wait_gone`: `{"peer_id", "timeout_ms"?}` → `elapsed_ms` once the peer
/// has no (signed or unsigned, non-stale) catalog entry.
pub async fn wait_gone(network: &Network, cmd: &Value) -> Result<Value> {
    let peer_id = wire::peer_id_field(cmd, "peer_id")?;
    let timeout = wire::timeout_field(cmd)?;
    let discovery = network.discovery();
    let started = Instant::now();
    let gone = wait_until(discovery, timeout, |catalog| {
        catalog.get(&peer_id).is_none().then_some(())
    })
    .await;
    if gone.is_none() {
        bail!(
            "timed out after {} ms waiting for peer {peer_id} to leave; catalog has: {}",
            timeout.as_millis(),
            describe(&discovery.catalog(), &peer_id)
        );
    }
    Ok(json!({ "elapsed_ms": started.elapsed().as_millis() as u64 }))
}

/// `feed`: `{"hex"}` of a signed entry → `Discovery::feed` → `accepted`.
/// A rejection carries `likely_reason`, reconstructed from public data
/// (mosaik's `feed` returns only a bool).
pub fn feed(network: &Network, cmd: &Value) -> Result<Value> {
    let bytes = wire::hex_field(cmd, "hex")?;
    let (entry, _) = vectors::decode::<SignedPeerEntry>(&bytes, "signed peer entry")?;
    let discovery = network.discovery();
    let catalog = discovery.catalog();
    let reason = rejection_reason(&catalog, &entry);
    let accepted = discovery.feed(entry);
    let mut answer = json!({ "accepted": accepted });
    if !accepted {
        vectors::extend(&mut answer, json!({ "likely_reason": reason }));
    }
    Ok(answer)
}

/// `catalog_hex`: our own current `SignedPeerEntry` (`Discovery::me()`) as
/// mosaik's postcard bytes, plus its JSON form.
pub fn catalog_hex(network: &Network) -> Result<Value> {
    let me = network.discovery().me();
    Ok(json!({
        "hex": hex::encode(try_serialize(&me)?),
        "entry": wire::entry_json(&me, true),
    }))
}

/// Calls `check` on every catalog change (and every [`POLL`]) until it
/// yields a value or `timeout` passes.
async fn wait_until<T>(
    discovery: &Discovery,
    timeout: Duration,
    mut check: impl FnMut(&Catalog) -> Option<T>,
) -> Option<T> {
    let mut watch = discovery.catalog_watch();
    let deadline = Instant::now() + timeout;
    loop {
        let found = check(&watch.borrow_and_update());
        if found.is_some() {
            return found;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return None;
        }
        let step = remaining.min(POLL);
        if let Ok(Err(_)) = tokio::time::timeout(step, watch.changed()).await {
            tokio::time::sleep(step).await; // discovery closed: plain polling
        }
    }
}

fn satisfies(entry: &PeerEntry, tags: &[Digest], after: Option<PeerEntryVersion>) -> bool {
    tags.iter().all(|tag| entry.tags().contains(tag))
        && after.is_none_or(|after| entry.update_version() > after)
}

/// A short JSON description of what the catalog holds, for timeout errors:
/// the awaited peer's entry if present, otherwise every peer id.
fn describe(catalog: &Catalog, peer_id: &PeerId) -> String {
    let description = match (catalog.get_signed(peer_id), catalog.get(peer_id)) {
        (Some(entry), _) => json!({ "entry": wire::entry_json(entry, true) }),
        (None, Some(entry)) => json!({ "unsigned_entry": wire::entry_json(entry, false) }),
        (None, None) => json!({
            "peers": catalog
                .peers()
                .map(|e| json!({
                    "peer_id": e.id().to_string(),
                    "version": serde_json::to_value(e.update_version()).unwrap_or_default(),
                }))
                .collect::<Vec<_>>(),
        }),
    };
    description.to_string()
}

/// Why `Catalog::upsert_signed` would refuse `entry` (its checks, in order).
fn rejection_reason(catalog: &Catalog, entry: &SignedPeerEntry) -> &'static str {
    let now_ms = chrono::Utc::now().timestamp_millis();
    if *entry.network_id() != catalog.network_id() {
        "different network"
    } else if entry.updated_at().timestamp_millis() < now_ms - PURGE_AFTER_MS {
        "stale: updated_at is older than purge_after (300 s)"
    } else if *entry.id() == catalog.local_id() {
        "own entry: not newer than the local entry"
    } else {
        "not newer than the stored entry"
    }
}
