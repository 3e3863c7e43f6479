//! Catch-up by log replay: mosaik's `LogReplaySync`.
//!
//! A follower that finds a gap before the leader's entries pulls the
//! missing range from its bonded peers: it asks each what it has
//! (`Availability`), then fetches chunks of at most `batch_size` entries
//! (`FetchEntries`). Every member serves these requests, whatever its role
//! (groups spec §5).

pub mod provider;
pub mod session;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::groups::raft::message::{IndexRange, Term};

/// `LogReplaySyncMessage`, carried as `raft::Message::StateSync`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplayMessage {
    AvailabilityRequest,
    AvailabilityResponse(IndexRange),
    FetchEntriesRequest(IndexRange),
    FetchEntriesResponse {
        range: IndexRange,
        /// (command, term) pairs, in index order from `range.start`.
        entries: Vec<(Bytes, Term)>,
    },
}

pub use provider::serve;
pub use session::CatchUp;
