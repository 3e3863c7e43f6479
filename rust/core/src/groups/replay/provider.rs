//! The serving side of log replay: every member answers what it has and
//! hands out chunks of its log (groups spec §5.3, "Provider").

use crate::groups::raft::{
    log::Log,
    message::{Index, IndexRange},
};

use super::ReplayMessage;

/// The answer to a catch-up request, or `None` for a message that is not
/// a request (or an empty range, which mosaik ignores).
pub fn serve(request: &ReplayMessage, log: &Log, committed: Index, batch_size: u64) -> Option<ReplayMessage> {
    match request {
        ReplayMessage::AvailabilityRequest => {
            let available = log.available();
            Some(ReplayMessage::AvailabilityResponse(IndexRange::new(
                available.start,
                available.end.min(committed),
            )))
        }
        ReplayMessage::FetchEntriesRequest(range) if !range.is_empty() => {
            let found = log.range(*range, batch_size);
            if found.is_empty() {
                return Some(ReplayMessage::FetchEntriesResponse {
                    range: IndexRange::new(0, 0),
                    entries: vec![],
                });
            }
            let start = range.start.max(1);
            Some(ReplayMessage::FetchEntriesResponse {
                range: IndexRange::new(start, start + found.len() as u64 - 1),
                entries: found.iter().map(|e| (e.command.clone(), e.term)).collect(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn availability_stops_at_committed_and_fetches_are_capped() {
        let mut log = Log::default();
        for _ in 0..10 {
            log.append(1, Bytes::from_static(b"x"));
        }
        assert_eq!(
            serve(&ReplayMessage::AvailabilityRequest, &log, 7, 2000),
            Some(ReplayMessage::AvailabilityResponse(IndexRange::new(0, 7)))
        );
        let Some(ReplayMessage::FetchEntriesResponse { range, entries }) = serve(
            &ReplayMessage::FetchEntriesRequest(IndexRange::new(2, 9)),
            &log,
            7,
            3,
        ) else {
            panic!("a fetch is answered");
        };
        assert_eq!(range, IndexRange::new(2, 4));
        assert_eq!(entries.len(), 3);
        assert_eq!(
            serve(
                &ReplayMessage::FetchEntriesRequest(IndexRange::new(20, 30)),
                &log,
                7,
                3
            ),
            Some(ReplayMessage::FetchEntriesResponse {
                range: IndexRange::new(0, 0),
                entries: vec![]
            })
        );
        assert_eq!(
            serve(
                &ReplayMessage::FetchEntriesRequest(IndexRange::new(3, 2)),
                &log,
                7,
                3
            ),
            None
        );
    }
}
