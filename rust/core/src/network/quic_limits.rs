//! QUIC limits that fit our protocols, applied to every connection of the
//! endpoint (`node/config.rs` builds it with them).
//!
//! Every protocol we speak over a `Link` (streams, catalog sync, ping,
//! groups) opens one bidirectional stream per connection; iroh-gossip opens
//! one unidirectional stream per topic and direction. QUIC's defaults grant
//! a peer 100 streams of each kind at 1.25 MB each and an unbounded
//! connection window: a peer that opens streams we never accept could make
//! us buffer 250 MB per connection. With these limits it can open a few,
//! and all it sends that we do not read is bounded by the connection
//! window. The limits only bound what a peer may send *us*; mosaik peers
//! open the same one stream per link, so they fit.

use iroh::endpoint::{QuicTransportConfigBuilder, VarInt};

/// Bidirectional streams a peer may have open towards us at once: the one
/// a link uses, and one spare for a link that opens while the last one's
/// stream is still being torn down.
pub const MAX_BIDI_STREAMS: u32 = 2;

/// Unidirectional streams a peer may have open towards us at once: only
/// iroh-gossip uses them, one per topic (we join one per network); the
/// rest is room for a peer that shares a few topics with us. We cannot
/// grant them per protocol: iroh-gossip dials on its own, so the endpoint's
/// value is what its connections get.
pub const MAX_UNI_STREAMS: u32 = 4;

/// Bytes a peer may send on one stream beyond what we read (QUIC's
/// default: 100 ms at 100 Mbit/s).
pub const STREAM_RECEIVE_WINDOW: u32 = 1_250_000;

/// Bytes a peer may send on all streams of a connection beyond what we
/// read: the most an idle reader or streams we never read hold per
/// connection. Twice a stream's window, so one stream runs at full speed
/// while another waits for its reader.
pub const CONNECTION_RECEIVE_WINDOW: u32 = 2 * STREAM_RECEIVE_WINDOW;

/// `builder` with our stream limits and receive windows.
pub fn apply(builder: QuicTransportConfigBuilder) -> QuicTransportConfigBuilder {
    builder
        .max_concurrent_bidi_streams(VarInt::from_u32(MAX_BIDI_STREAMS))
        .max_concurrent_uni_streams(VarInt::from_u32(MAX_UNI_STREAMS))
        .stream_receive_window(VarInt::from_u32(STREAM_RECEIVE_WINDOW))
        .receive_window(VarInt::from_u32(CONNECTION_RECEIVE_WINDOW))
}
