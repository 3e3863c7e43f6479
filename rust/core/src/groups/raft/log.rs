//! The replicated log, in memory as mosaik's default `InMemoryLogStore`.
//!
//! Indices start at 1; index 0 is the "no entry" sentinel with term 0.
//! Nothing is persisted: a restarted member starts empty (groups spec §4.3).

use bytes::Bytes;

use super::message::{Cursor, Index, IndexRange, LogEntry, Term};

#[derive(Debug, Default, Clone)]
pub struct Log {
    entries: Vec<LogEntry>,
}

impl Log {
    pub fn last(&self) -> Cursor {
        match self.entries.last() {
            Some(entry) => Cursor::new(entry.term, self.entries.len() as Index),
            None => Cursor::default(),
        }
    }

    pub fn last_index(&self) -> Index {
        self.entries.len() as Index
    }

    /// The term at `index`: 0 for index 0, `None` past the end.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == 0 {
            return Some(0);
        }
        self.entries.get(index as usize - 1).map(|e| e.term)
    }

    pub fn get(&self, index: Index) -> Option<&LogEntry> {
        if index == 0 {
            return None;
        }
        self.entries.get(index as usize - 1)
    }

    /// The entries in `range` that exist, at most `limit` of them.
    pub fn range(&self, range: IndexRange, limit: u64) -> &[LogEntry] {
        let start = range.start.max(1);
        let end = range
            .end
            .min(self.last_index())
            .min(start.saturating_add(limit) - 1);
        if range.is_empty() || start > end {
            return &[];
        }
        &self.entries[start as usize - 1..end as usize]
    }

    /// Appends one entry at `last + 1`; returns its index.
    pub fn append(&mut self, term: Term, command: Bytes) -> Index {
        self.entries.push(LogEntry { term, command });
        self.last_index()
    }

    /// Removes `index` and everything after it.
    pub fn truncate_from(&mut self, index: Index) {
        if index >= 1 {
            self.entries.truncate(index as usize - 1);
        }
    }

    /// What this log can serve: `0 ..= last` (mosaik starts at the prune
    /// offset, 0 for a log never pruned).
    pub fn available(&self) -> IndexRange {
        IndexRange::new(0, self.last_index())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_clamp_to_what_exists() {
        let mut log = Log::default();
        for term in [1, 1, 2] {
            log.append(term, Bytes::new());
        }
        assert_eq!(log.last(), Cursor::new(2, 3));
        assert_eq!(log.term_at(0), Some(0));
        assert_eq!(log.term_at(4), None);
        assert_eq!(log.range(IndexRange::new(2, 10), 100).len(), 2);
        assert_eq!(log.range(IndexRange::new(1, 10), 2).len(), 2);
        assert!(log.range(IndexRange::new(5, 10), 100).is_empty());
        assert!(log.range(IndexRange::new(3, 2), 100).is_empty());
        log.truncate_from(2);
        assert_eq!(log.last(), Cursor::new(1, 1));
    }
}
