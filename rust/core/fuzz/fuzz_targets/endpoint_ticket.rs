//! Endpoint tickets (`network::parse_address`): the `endpoint…` strings
//! users paste as bootstrap peers.
//!
//! The first input byte picks the form: 0 feeds the rest as the text itself;
//! anything else wraps the rest as a ticket's binary payload (base32 behind
//! the `endpoint` prefix), so the fuzzer mutates the postcard inside rather
//! than fighting base32. Every address that parses must format and parse
//! back to itself.
#![no_main]

use iroh_tickets::{Ticket, endpoint::EndpointTicket};
use libfuzzer_sys::fuzz_target;
use mosaik_core::network::{format_address, parse_address};

fuzz_target!(|data: &[u8]| {
    let Some((&form, rest)) = data.split_first() else {
        return;
    };
    let text = if form == 0 {
        match std::str::from_utf8(rest) {
            Ok(text) => text.to_owned(),
            Err(_) => return,
        }
    } else {
        let mut text = EndpointTicket::KIND.to_owned();
        data_encoding::BASE32_NOPAD.encode_append(rest, &mut text);
        text.to_ascii_lowercase()
    };
    let Ok(addr) = parse_address(&text) else {
        return;
    };
    let formatted = format_address(&addr);
    assert_eq!(parse_address(&formatted).expect("our own ticket parses"), addr);
    assert_eq!(format_address(&addr), formatted);
});
