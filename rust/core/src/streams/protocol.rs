//! The streams protocol on the wire: `/mosaik/streams/1.0`.
//!
//! One subscription per connection: the consumer opens a `Link` for
//! [`StreamsProtocol`], sends its handshake and then reads one frame per
//! datum. The acceptor ([`super::accept`]) answers incoming links, the
//! consumer's receivers open outgoing ones; both name this marker only.

use crate::network::Protocol;

/// `/mosaik/streams/1.0`: one subscription per connection.
pub struct StreamsProtocol;

impl Protocol for StreamsProtocol {
    const ALPN: &'static [u8] = b"/mosaik/streams/1.0";
    /// A datum frame may be this large (mosaik sets no limit).
    const MAX_FRAME: usize = 256 * 1024 * 1024;
}
