"""The byte vectors of discovery-protocol.md §10, produced and decoded by the
real mosaik 0.3.13 crate. Our Rust encoder is held to the same constants in
`rust/core` unit tests (entry.rs, announce.rs, sync.rs, dht.rs), so the spec,
the real crate and our code agree byte for byte."""

from __future__ import annotations

from reference_peer import ReferencePeer

SEED = bytes(range(32)).hex()
PEER_ID = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
VERSION = [1767225600000, 1767225600001]
ENTRY = (
    "06302e332e3133811717648744df4f18656c5f4a833b7b09a90be78205a0e0eeff8b9dbb0202fe"
    "80a0d5edee6682a0d5edee6603a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc86"
    "64125531b80101007f000001d12200000000"
)
DIGEST = "14e22cb99e5d9ce6c8447f6fd7231fe99c7e2e65c6fa52ef523c793ca0bddf31"
SIGNATURE = (
    "3313bdcd994578394edb46045b0f5cf37db05242c782258dcf5c04501cd5f487"
    "350851aac05ce35804d49cefd3231e55eca597c5e08cc0537f7c5ce36839ec09"
)
DEPARTURE = (
    "01" + PEER_ID + "80a0d5edee6682a0d5edee66"
    "14323032362d30312d30315430303a30303a30355a"
    "6ec6de5eae94e8d0a1b6ce0cdd96cc5d5ad1f8d71c5928d2f2a87fb13b62188e"
    "8c88a2b5b54a7b44a9ea0fe364b86284934173d655a573e4d09608320a7b5207"
)


async def test_the_crate_encodes_and_signs_the_spec_entry(reference_peer: ReferencePeer) -> None:
    made = await reference_peer.ask(
        {
            "cmd": "encode_entry",
            "secret_key": SEED,
            "network": "demo",
            "version": VERSION,
            "ips": ["127.0.0.1:4433"],
            "relays": [],
            "tags": [],
            "streams": [],
        }
    )
    assert made["peer_id"] == PEER_ID
    assert made["entry_hex"] == ENTRY
    assert made["digest_hex"] == DIGEST
    assert made["signed_hex"] == ENTRY + SIGNATURE


async def test_the_crate_decodes_and_verifies_the_spec_entry(
    reference_peer: ReferencePeer,
) -> None:
    decoded = await reference_peer.ask({"cmd": "decode_signed_entry", "hex": ENTRY + SIGNATURE})
    assert decoded["reencoded_hex"] == ENTRY + SIGNATURE
    assert decoded["peer_id"] == PEER_ID
    assert decoded["version"] == VERSION
    tampered = ENTRY[:-2] + "01" + SIGNATURE  # one more ticket than signed
    refused = await reference_peer.ask_async_raw({"cmd": "decode_signed_entry", "hex": tampered})
    assert refused["ok"] is False


async def test_the_crate_reads_the_spec_gossip_payload_and_snapshot(
    reference_peer: ReferencePeer,
) -> None:
    gossip = await reference_peer.ask(
        {"cmd": "decode_announcement", "hex": "00" + ENTRY + SIGNATURE}
    )
    assert gossip["kind"] == "own_entry_update"
    assert gossip["reencoded_hex"] == "00" + ENTRY + SIGNATURE
    snapshot = await reference_peer.ask({"cmd": "decode_snapshot", "hex": "01" + ENTRY + SIGNATURE})
    assert snapshot["peer_ids"] == [PEER_ID]
    assert snapshot["reencoded_hex"] == "01" + ENTRY + SIGNATURE


async def test_the_crate_signs_the_spec_departure(reference_peer: ReferencePeer) -> None:
    made = await reference_peer.ask(
        {
            "cmd": "encode_departure",
            "secret_key": SEED,
            "last_version": VERSION,
            "timestamp": "2026-01-01T00:00:05Z",
        }
    )
    assert made["payload_hex"] == DEPARTURE
    decoded = await reference_peer.ask({"cmd": "decode_announcement", "hex": DEPARTURE})
    assert decoded["kind"] == "graceful_departure"
    assert decoded["departure"]["signature_valid"] is True
