//! The lagging side of log replay: a catch-up session fills the local log
//! up to a target index by fetching chunks from bonded peers.
//!
//! Messages are mosaik's; the schedule is ours and avoids the stalls of
//! mosaik's session (groups spec §5.4): an empty answer does not poison the
//! queue, a gap beyond what peers advertise is re-asked on a timer, and
//! overlapping leader entries are dropped instead of asserted on.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use bytes::Bytes;
use iroh::EndpointId;

use crate::groups::raft::{
    log::Log,
    message::{Cursor, Index, IndexRange, LogEntry, Term},
};

use super::ReplayMessage;

/// How long to wait before asking a peer that advertised too little again.
const REASK_AFTER: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
struct Provider {
    available: Option<IndexRange>,
    asked_at: Option<Duration>,
    in_flight: Option<(IndexRange, Duration)>,
}

/// One catch-up session on a follower.
#[derive(Debug)]
pub struct CatchUp {
    /// Fill the log up to this index.
    target: Index,
    /// Leader entries that follow `target` (from inconsistent appends).
    buffered_after: Cursor,
    buffered: Vec<LogEntry>,
    providers: BTreeMap<EndpointId, Provider>,
    /// Fetched chunks not yet appended, by first index.
    received: BTreeMap<Index, Vec<(Bytes, Term)>>,
    batch_size: u64,
    fetch_timeout: Duration,
}

impl CatchUp {
    /// A session reaching `target.index`, with the leader's `entries` that
    /// follow it kept for the end.
    pub fn new(target: Cursor, entries: Vec<LogEntry>, batch_size: u64, fetch_timeout: Duration) -> Self {
        Self {
            target: target.index,
            buffered_after: target,
            buffered: entries,
            providers: BTreeMap::new(),
            received: BTreeMap::new(),
            batch_size: batch_size.max(1),
            fetch_timeout,
        }
    }

    pub fn target(&self) -> Index {
        self.target
    }

    /// Keeps more leader entries for the end, if they continue the ones kept.
    pub fn buffer(&mut self, prev: Cursor, entries: Vec<LogEntry>) {
        let next = self.buffered_after.index + self.buffered.len() as u64;
        if prev.index == next && !entries.is_empty() {
            self.buffered.extend(entries);
        }
    }

    /// Handles a replay answer from `from`; true if it was one of ours.
    pub fn receive(&mut self, from: EndpointId, message: ReplayMessage) -> bool {
        let provider = self.providers.entry(from).or_default();
        match message {
            ReplayMessage::AvailabilityResponse(range) => {
                provider.available = Some(range);
                true
            }
            ReplayMessage::FetchEntriesResponse { range, entries } => {
                provider.in_flight = None;
                if range.is_empty() || range.start == 0 || entries.len() as u64 != range.len() {
                    // Nothing there after all (or a malformed answer): ask
                    // again what it has before fetching from it.
                    provider.available = None;
                    provider.asked_at = None;
                } else {
                    self.received.insert(range.start, entries);
                }
                true
            }
            _ => false,
        }
    }

    /// Appends what arrived, asks and fetches what is missing, and says
    /// which messages to send. Returns true once the log reaches the target
    /// (the buffered leader entries then appended).
    pub fn poll(
        &mut self,
        now: Duration,
        log: &mut Log,
        bonds: &BTreeSet<EndpointId>,
        leader: Option<EndpointId>,
        send: &mut Vec<(EndpointId, ReplayMessage)>,
    ) -> bool {
        self.providers.retain(|peer, _| bonds.contains(peer));
        self.append_received(log);
        if log.last_index() >= self.target {
            self.finish(log);
            return true;
        }
        for peer in bonds {
            let provider = self.providers.entry(*peer).or_default();
            if let Some((_, deadline)) = provider.in_flight
                && now >= deadline
            {
                provider.in_flight = None;
                provider.available = None;
                provider.asked_at = None;
            }
            let reask = match (provider.available, provider.asked_at) {
                (None, None) => true,
                (None, Some(at)) => now >= at + self.fetch_timeout,
                (Some(range), Some(at)) => range.end <= log.last_index() && now >= at + REASK_AFTER,
                (Some(_), None) => false,
            };
            if reask {
                provider.asked_at = Some(now);
                provider.available = None;
                send.push((*peer, ReplayMessage::AvailabilityRequest));
            }
        }
        self.schedule(now, log.last_index(), leader, send);
        false
    }

    /// The first index not yet appended, received or requested.
    fn next_wanted(&self, last: Index) -> Index {
        let mut next = last + 1;
        loop {
            let covered = self
                .received
                .range(..=next)
                .next_back()
                .map(|(start, e)| start + e.len() as u64)
                .filter(|end| *end > next)
                .or_else(|| {
                    self.providers
                        .values()
                        .filter_map(|p| p.in_flight)
                        .find(|(r, _)| r.start <= next && next <= r.end)
                        .map(|(r, _)| r.end + 1)
                });
            match covered {
                Some(end) => next = end,
                None => return next,
            }
        }
    }

    fn schedule(
        &mut self,
        now: Duration,
        last: Index,
        leader: Option<EndpointId>,
        send: &mut Vec<(EndpointId, ReplayMessage)>,
    ) {
        loop {
            let next = self.next_wanted(last);
            if next > self.target {
                return;
            }
            // Idle peers that have `next`, others before the leader (as mosaik).
            let chosen = self
                .providers
                .iter()
                .filter(|(_, p)| p.in_flight.is_none())
                .filter_map(|(peer, p)| {
                    p.available
                        .filter(|r| r.start <= next && next <= r.end)
                        .map(|r| (*peer, r))
                })
                .min_by_key(|(peer, _)| Some(*peer) == leader);
            let Some((peer, available)) = chosen else {
                return;
            };
            let end = self.target.min(available.end).min(next + self.batch_size - 1);
            let range = IndexRange::new(next, end);
            self.providers
                .get_mut(&peer)
                .expect("chosen from providers")
                .in_flight = Some((range, now + self.fetch_timeout));
            send.push((peer, ReplayMessage::FetchEntriesRequest(range)));
        }
    }

    fn append_received(&mut self, log: &mut Log) {
        while let Some((&start, _)) = self.received.first_key_value() {
            let last = log.last_index();
            if start > last + 1 {
                return;
            }
            let (_, entries) = self.received.pop_first().expect("peeked");
            for (offset, (command, term)) in entries.into_iter().enumerate() {
                let index = start + offset as u64;
                if index == log.last_index() + 1 && index <= self.target {
                    log.append(term, command);
                }
            }
        }
    }

    fn finish(&mut self, log: &mut Log) {
        if log.term_at(self.buffered_after.index) != Some(self.buffered_after.term) {
            // The fetched log disagrees with the leader at the target: the
            // next append's consistency check sorts it out.
            return;
        }
        for (offset, entry) in std::mem::take(&mut self.buffered).into_iter().enumerate() {
            let index = self.buffered_after.index + 1 + offset as u64;
            if index == log.last_index() + 1 {
                log.append(entry.term, entry.command);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use iroh::SecretKey;

    use super::*;
    use crate::groups::replay::serve;

    fn peer(seed: u8) -> EndpointId {
        SecretKey::from_bytes(&[seed; 32]).public()
    }

    #[test]
    fn fetches_the_gap_from_peers_in_chunks() {
        let mut source = Log::default();
        for i in 0..25u8 {
            source.append(1, Bytes::from(vec![i]));
        }
        let mut local = Log::default();
        for i in 0..3u8 {
            local.append(1, Bytes::from(vec![i]));
        }
        let (a, b) = (peer(1), peer(2));
        let bonds: BTreeSet<_> = [a, b].into();
        let leader_entry = LogEntry {
            term: 1,
            command: Bytes::from_static(b"z"),
        };
        let mut session = CatchUp::new(Cursor::new(1, 20), vec![leader_entry], 4, Duration::from_secs(25));
        let mut now = Duration::ZERO;
        for _ in 0..50 {
            let mut out = vec![];
            if session.poll(now, &mut local, &bonds, Some(a), &mut out) {
                break;
            }
            for (to, request) in out {
                // b has only committed up to 12, a (the leader) everything.
                let committed = if to == a { 25 } else { 12 };
                if let Some(answer) = serve(&request, &source, committed, 4) {
                    session.receive(to, answer);
                }
            }
            now += Duration::from_millis(100);
        }
        assert_eq!(local.last_index(), 21, "the gap and the buffered entry");
        for i in 1..=20 {
            assert_eq!(local.get(i), source.get(i));
        }
        assert_eq!(local.get(21).unwrap().command, Bytes::from_static(b"z"));
    }

    #[test]
    fn an_empty_answer_does_not_stall_the_session() {
        let mut source = Log::default();
        for _ in 0..5 {
            source.append(1, Bytes::new());
        }
        let mut local = Log::default();
        let a = peer(1);
        let bonds: BTreeSet<_> = [a].into();
        let mut session = CatchUp::new(Cursor::new(1, 5), vec![], 2000, Duration::from_secs(25));
        // The first fetch comes back empty (mosaik's `0..=0`).
        let mut out = vec![];
        session.poll(Duration::ZERO, &mut local, &bonds, None, &mut out);
        session.receive(a, ReplayMessage::AvailabilityResponse(IndexRange::new(0, 5)));
        let mut out = vec![];
        session.poll(Duration::ZERO, &mut local, &bonds, None, &mut out);
        assert!(matches!(out[0].1, ReplayMessage::FetchEntriesRequest(_)));
        session.receive(
            a,
            ReplayMessage::FetchEntriesResponse {
                range: IndexRange::new(0, 0),
                entries: vec![],
            },
        );
        let mut now = Duration::ZERO;
        for _ in 0..20 {
            let mut out = vec![];
            if session.poll(now, &mut local, &bonds, None, &mut out) {
                break;
            }
            for (to, request) in out {
                if let Some(answer) = serve(&request, &source, 5, 2000) {
                    session.receive(to, answer);
                }
            }
            now += Duration::from_millis(600);
        }
        assert_eq!(local.last_index(), 5);
    }
}
