//! Peer addresses as strings: iroh `EndpointTicket`s (`endpoint…`).
//!
//! The ticket is the iroh ecosystem's way to pass an `EndpointAddr` around
//! (id, relay URL, direct addresses), so other iroh tools read ours.

use std::str::FromStr;

use iroh::EndpointAddr;
use iroh_tickets::{Ticket, endpoint::EndpointTicket};

/// Formats `addr` as an `endpoint…` ticket string.
pub fn format_address(addr: &EndpointAddr) -> String {
    EndpointTicket::new(addr.clone()).serialize()
}

/// Parses an `endpoint…` ticket string back into an address.
pub fn parse_address(text: &str) -> Result<EndpointAddr, AddressError> {
    let ticket = EndpointTicket::from_str(text.trim()).map_err(|e| AddressError(e.to_string()))?;
    Ok(ticket.endpoint_addr().clone())
}

#[derive(Debug, thiserror::Error)]
#[error("not an endpoint ticket: {0}")]
pub struct AddressError(String);

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use iroh::{RelayUrl, SecretKey, TransportAddr};

    use super::*;

    #[test]
    fn round_trips_relay_and_direct_addresses() {
        let key = SecretKey::from_bytes(&[3u8; 32]);
        let relay: RelayUrl = "http://127.0.0.1:3340".parse().unwrap();
        let ip: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let addr =
            EndpointAddr::from_parts(key.public(), [TransportAddr::Relay(relay), TransportAddr::Ip(ip)]);
        let text = format_address(&addr);
        assert!(text.starts_with("endpoint"), "{text}");
        assert_eq!(parse_address(&text).unwrap(), addr);
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(parse_address("endpointnotaticket").is_err());
        assert!(parse_address("").is_err());
    }
}
