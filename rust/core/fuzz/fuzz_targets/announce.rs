//! Gossip announcements (`Announcement::decode`): a signed entry update or a
//! signed graceful departure, as every gossip message carries.
//!
//! Departures are also decoded without verification, so their fields (an
//! RFC 3339 timestamp among them) are round-tripped and re-signed past the
//! signature check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mosaik_core::{
    discovery::{
        PeerEntry,
        announce::{Announcement, GracefulDeparture},
    },
    primitives::encoding,
};
use mosaik_core_fuzz::{check_round_trip, check_verified_entry, fuzz_key, resign};

fn check_announcement(announcement: &Announcement) {
    if let Announcement::OwnEntryUpdate(entry) = announcement {
        check_verified_entry(entry);
    }
    let bytes = announcement.encode().expect("a decoded announcement encodes");
    let again = Announcement::decode(&bytes).expect("its encoding decodes and verifies");
    assert_eq!(&again, announcement);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(announcement) = Announcement::decode(data) {
        check_announcement(&announcement);
    }

    let Some((&variant, rest)) = data.split_first() else {
        return;
    };
    match variant {
        0 => {
            if let Ok(entry) = encoding::decode::<PeerEntry>(rest) {
                check_announcement(&Announcement::OwnEntryUpdate(resign(entry)));
            }
        }
        1 => {
            if let Ok(departure) = encoding::decode::<GracefulDeparture>(rest) {
                // Forged or not, verifying must not panic.
                let _ = departure.verify();
                check_round_trip(&departure);
                let signed = GracefulDeparture::new(fuzz_key(), departure.last_version, departure.timestamp);
                assert!(signed.verify());
                check_announcement(&Announcement::GracefulDeparture(signed));
            }
        }
        _ => {}
    }
});
