//! Writes the seed corpus: real encoded messages for every fuzz target, as
//! `corpus/<target>/seed-<what>`. Run from `rust/core/fuzz` with
//! `cargo run --example seed_corpus`; the files are committed, so this is
//! only needed when the wire formats change.

use std::{fs, path::Path};

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use iroh::{EndpointAddr, SecretKey};
use iroh_tickets::{Ticket, endpoint::EndpointTicket};
use mosaik_core::{
    Digest,
    discovery::{
        PeerEntryVersion,
        announce::{Announcement, GracefulDeparture},
        dht::slot_seeds,
        sync::encode_snapshot,
    },
    network::{
        Protocol, format_address,
        link::codec,
        protocol::{CatalogSync, Ping},
    },
    primitives::encoding,
    streams::{
        StreamsProtocol,
        datum::DatumLayout,
        handshake::{ConsumerHandshake, Criteria, StartStream},
    },
};
use mosaik_core_fuzz::{full_entry, sample_entries, spec_key};
use pkarr::{Keypair, SignedPacket};
use tokio_util::codec::Encoder;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    fs::create_dir_all(&dir).expect("corpus dir");
    fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed file");
}

fn framed(max_frame: usize, frames: &[&[u8]]) -> BytesMut {
    let mut codec = codec(max_frame);
    let mut out = BytesMut::new();
    for frame in frames {
        codec
            .encode(Bytes::copy_from_slice(frame), &mut out)
            .expect("frame under the limit");
    }
    out
}

fn with_prefix(prefix: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![prefix];
    out.extend_from_slice(bytes);
    out
}

fn main() {
    let entries = sample_entries();
    let names = ["spec", "full", "bare"];
    let mut forged = entries[0].encode().to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 1;

    for (name, entry) in names.iter().zip(&entries) {
        write("signed_entry", name, entry.wire());
        write(
            "announce",
            &format!("entry-{name}"),
            &Announcement::OwnEntryUpdate(entry.clone()).encode().unwrap(),
        );
        write(
            "ping",
            &format!("reply-{name}"),
            &framed(Ping::MAX_FRAME, &[entry.wire()]),
        );
    }
    let mut trailing = entries[1].wire().to_vec();
    trailing.extend_from_slice(entries[2].wire());
    write("signed_entry", "two-back-to-back", &trailing);
    write("signed_entry", "forged", &forged);

    // discovery-protocol.md's departure example: the worked example's key
    // and version, leaving at 2026-01-01T00:00:05Z.
    let ts: DateTime<Utc> = "2026-01-01T00:00:05Z".parse().unwrap();
    let departure = GracefulDeparture::new(&spec_key(), PeerEntryVersion(1767225600000, 1767225600001), ts);
    write(
        "announce",
        "departure-spec",
        &Announcement::GracefulDeparture(departure).encode().unwrap(),
    );
    let ts: DateTime<Utc> = "2026-03-04T05:06:07.123456789Z".parse().unwrap();
    let departure = GracefulDeparture::new(&full_entry(2).0, PeerEntryVersion(1, 2), ts);
    write(
        "announce",
        "departure-nanos",
        &Announcement::GracefulDeparture(departure).encode().unwrap(),
    );
    write("announce", "entry-forged", &with_prefix(0, &forged));

    write("catalog_sync", "empty", &encode_snapshot(std::iter::empty()));
    write("catalog_sync", "three", &encode_snapshot(entries.iter()));
    let mut with_forged = encode_snapshot(entries[..1].iter()).to_vec();
    with_forged[0] = 2;
    with_forged.extend_from_slice(&forged);
    write("catalog_sync", "one-forged", &with_forged);

    write(
        "ping",
        "request",
        &framed(Ping::MAX_FRAME, &[&encoding::encode(&()).unwrap()]),
    );
    write(
        "ping",
        "reply-then-more",
        &framed(Ping::MAX_FRAME, &[entries[0].wire(), b"more"]),
    );

    let (network, stream) = (
        Digest::from_name("demo"),
        Digest::from_name("alloc::string::String"),
    );
    let handshake = ConsumerHandshake {
        network_id: network,
        stream_id: stream,
        criteria: Criteria {},
    };
    write(
        "stream_handshake",
        "consumer",
        &encoding::encode(&handshake).unwrap(),
    );
    write(
        "stream_handshake",
        "start",
        &encoding::encode(&StartStream(network, stream)).unwrap(),
    );

    // DHT records in mosaik's format (dht.rs `build_record`), as the DNS
    // packet a slot holds.
    let slot = Keypair::from_secret_key(&slot_seeds(network, 1)[0]);
    for (name, entry) in names.iter().zip(&entries) {
        let addr = &entry.entry().address;
        let id = b58::encode(addr.id.as_bytes());
        let mut builder =
            SignedPacket::builder().txt("_id".try_into().unwrap(), id.as_str().try_into().unwrap(), 600);
        for transport in &addr.addrs {
            let (name, value) = match transport {
                iroh::TransportAddr::Ip(ip) => ("_ip", ip.to_string()),
                iroh::TransportAddr::Relay(url) => ("_r", url.to_string()),
                _ => continue,
            };
            builder = builder.txt(name.try_into().unwrap(), value.as_str().try_into().unwrap(), 600);
        }
        let packet = builder.sign(&slot).unwrap();
        write("dht_record", name, &packet.encoded_packet());
    }

    for (name, entry) in names.iter().zip(&entries) {
        let addr = &entry.entry().address;
        write(
            "endpoint_ticket",
            &format!("text-{name}"),
            &with_prefix(0, format_address(addr).as_bytes()),
        );
        write(
            "endpoint_ticket",
            &format!("bytes-{name}"),
            &with_prefix(1, &EndpointTicket::new(addr.clone()).to_bytes()),
        );
    }
    let bare = EndpointAddr::new(SecretKey::from_bytes(&[9; 32]).public());
    write(
        "endpoint_ticket",
        "text-id-only",
        &with_prefix(0, format_address(&bare).as_bytes()),
    );

    let snapshot = encode_snapshot(entries.iter());
    let consumer = encoding::encode(&handshake).unwrap();
    // Selector byte: limit = selector % 4 (Ping, CatalogSync, Streams, 16);
    // below 128 one read, else chunks of (selector & 63) + 1 bytes.
    write(
        "link_frame",
        "ping-whole",
        &with_prefix(0, &framed(Ping::MAX_FRAME, &[b"", entries[0].wire()])),
    );
    write(
        "link_frame",
        "sync-chunked",
        &with_prefix(
            128 + 4 + 1,
            &framed(CatalogSync::MAX_FRAME, &[&snapshot, &snapshot]),
        ),
    );
    write(
        "link_frame",
        "streams-datums",
        &with_prefix(
            2,
            &framed(StreamsProtocol::MAX_FRAME, &[&consumer, b"\x05hello", b"\x00"]),
        ),
    );
    write(
        "link_frame",
        "tiny-limit",
        &with_prefix(3, &framed(16, &[b"0123456789abcdef", b"x"])),
    );
    write(
        "link_frame",
        "claims-4gib",
        &with_prefix(2, &[0xff, 0xff, 0xff, 0xff, 0, 0]),
    );
    write(
        "link_frame",
        "truncated",
        &with_prefix(128 + 7, &[0, 0, 0, 9, 1, 2, 3]),
    );

    for (name, data) in [
        ("empty", &b""[..]),
        ("hello", b"hello"),
        ("utf8", "h\u{e9}llo \u{1f980}".as_bytes()),
        ("long", &[0x5a; 300]),
    ] {
        let mut frame = BytesMut::new();
        DatumLayout::Bytes.encode_into(&mut frame, data);
        write("datum", name, &frame);
    }
    write("datum", "overlong-varint", &[0x80, 0x80, 0x00]);
}
