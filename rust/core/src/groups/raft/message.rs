//! The Raft messages on the wire (`raft::Message`, bond message 5), with
//! mosaik's variant order and field order (groups spec §3.2).
//!
//! Commands, queries and results stay opaque bytes here: mosaik's
//! `Encoded<T>` is a postcard byte string, and the machine decodes them.

use bytes::Bytes;
use iroh::EndpointId;
use serde::{Deserialize, Serialize};

use crate::groups::replay::ReplayMessage;

pub type Term = u64;
pub type Index = u64;

/// A log position: (term, index), ordered term first. Index 0 with term 0
/// is "no entry".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cursor {
    pub term: Term,
    pub index: Index,
}

impl Cursor {
    pub const fn new(term: Term, index: Index) -> Self {
        Self { term, index }
    }
}

/// An inclusive range of log indices (serde's `RangeInclusive`: start, end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexRange {
    pub start: Index,
    pub end: Index,
}

impl IndexRange {
    pub const fn new(start: Index, end: Index) -> Self {
        Self { start, end }
    }

    pub fn is_empty(&self) -> bool {
        self.end < self.start
    }

    pub fn len(&self) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.end - self.start + 1
        }
    }
}

/// One log entry: the term it was appended in, and its command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub term: Term,
    pub command: Bytes,
}

/// A voter's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Vote {
    Granted,
    Denied,
    Abstained,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    AppendEntries {
        term: Term,
        leader: EndpointId,
        prev_log_position: Cursor,
        entries: Vec<LogEntry>,
        leader_commit: Index,
    },
    AppendEntriesResponse {
        term: Term,
        last_log_index: Index,
        vote: Vote,
    },
    RequestVote {
        term: Term,
        candidate: EndpointId,
        log_position: Cursor,
    },
    RequestVoteResponse {
        term: Term,
        vote: Vote,
    },
    Forward(Forward),
    StateSync(ReplayMessage),
}

impl Message {
    /// The term, for the four messages that carry one.
    pub fn term(&self) -> Option<Term> {
        match self {
            Message::AppendEntries { term, .. }
            | Message::AppendEntriesResponse { term, .. }
            | Message::RequestVote { term, .. }
            | Message::RequestVoteResponse { term, .. } => Some(*term),
            Message::Forward(_) | Message::StateSync(_) => None,
        }
    }
}

/// Commands and queries a follower hands its leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Forward {
    Command {
        commands: Vec<Bytes>,
        request_id: Option<u64>,
    },
    CommandAck {
        request_id: u64,
        assigned: IndexRange,
    },
    Query {
        query: Bytes,
        request_id: u64,
    },
    QueryResponse {
        request_id: u64,
        result: Bytes,
        position: Index,
    },
}

#[cfg(test)]
mod tests {
    use iroh::SecretKey;

    use super::*;
    use crate::{groups::bond::protocol::BondMessage, primitives::encoding};

    fn peer_a() -> EndpointId {
        let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
        SecretKey::from_bytes(&seed).public()
    }

    fn hex(message: Message) -> String {
        hex::encode(encoding::encode(&BondMessage::Raft(message)).unwrap())
    }

    /// groups spec §8 frames (payloads without the length prefix).
    #[test]
    fn frames_match_the_spec_vectors() {
        let a = hex::encode(peer_a().as_bytes());
        let heartbeat = Message::AppendEntries {
            term: 3,
            leader: peer_a(),
            prev_log_position: Cursor::new(3, 7),
            entries: vec![],
            leader_commit: 7,
        };
        assert_eq!(hex(heartbeat), format!("050003{a}03070007"));
        let one = Message::AppendEntries {
            term: 3,
            leader: peer_a(),
            prev_log_position: Cursor::new(3, 7),
            entries: vec![LogEntry {
                term: 3,
                command: Bytes::new(),
            }],
            leader_commit: 7,
        };
        assert_eq!(hex(one), format!("05000{}{a}030701030007", 3));
        let response = Message::AppendEntriesResponse {
            term: 3,
            last_log_index: 8,
            vote: Vote::Granted,
        };
        assert_eq!(hex(response), "0501030800");
        let request = Message::RequestVote {
            term: 4,
            candidate: peer_a(),
            log_position: Cursor::new(3, 8),
        };
        assert_eq!(hex(request), format!("050204{a}0308"));
        let abstained = Message::RequestVoteResponse {
            term: 4,
            vote: Vote::Abstained,
        };
        assert_eq!(hex(abstained), "05030402");
        let command = Message::Forward(Forward::Command {
            commands: vec![Bytes::new()],
            request_id: Some(1),
        });
        assert_eq!(hex(command), "05040001000101");
        let ack = Message::Forward(Forward::CommandAck {
            request_id: 1,
            assigned: IndexRange::new(9, 9),
        });
        assert_eq!(hex(ack), "050401010909");
        let availability = Message::StateSync(ReplayMessage::AvailabilityRequest);
        assert_eq!(hex(availability), "050500");
        let available = Message::StateSync(ReplayMessage::AvailabilityResponse(IndexRange::new(0, 7)));
        assert_eq!(hex(available), "0505010007");
        let fetch = Message::StateSync(ReplayMessage::FetchEntriesRequest(IndexRange::new(1, 7)));
        assert_eq!(hex(fetch), "0505020107");
        let fetched = Message::StateSync(ReplayMessage::FetchEntriesResponse {
            range: IndexRange::new(1, 1),
            entries: vec![(Bytes::new(), 1)],
        });
        assert_eq!(hex(fetched), "050503010101 0001".replace(' ', ""));
    }
}
