//! A room's recent messages, kept in a bounded buffer in seq order, and the seqs of those deleted.

use std::collections::{BTreeSet, VecDeque};
use std::num::NonZeroUsize;

use crate::domain::{ChatMessage, Timestamp};

/// The last `capacity` messages of a room; older ones fall off the front.
pub struct History {
    messages: VecDeque<ChatMessage>,
    capacity: usize,
    /// Seqs of messages deleted lately, the newest `capacity` of them: a replay skips them without
    /// calling the hole a gap, and drops any copy storage has not yet blanked.
    tombstones: BTreeSet<u64>,
}

/// What storage had of a stretch of a room's messages: those there, and the seqs of the deleted.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    pub messages: &'a [ChatMessage],
    pub deleted: &'a [u64],
}

impl Stored<'_> {
    /// Nothing read: memory held all that was asked for.
    pub const NOTHING: Stored<'static> = Stored {
        messages: &[],
        deleted: &[],
    };
}

impl History {
    /// A buffer of `capacity` holding `recent` (oldest first; only the newest `capacity` are kept),
    /// and knowing the seqs `deleted` among them.
    pub fn new(capacity: NonZeroUsize, recent: Vec<ChatMessage>, deleted: Vec<u64>) -> Self {
        let capacity = capacity.get();
        // Grown as messages come rather than reserved: a quiet room would hold some 10 KiB of
        // slots for nothing, a kilobyte for each of ten idle members (docs/BENCHMARKS.md).
        let mut history = Self {
            messages: VecDeque::new(),
            capacity,
            tombstones: BTreeSet::new(),
        };
        for message in recent {
            history.push(message, u64::MAX);
        }
        for seq in deleted {
            history.delete(seq);
        }
        history
    }

    /// Appends a message and returns it as kept. Past capacity the oldest messages leave, but only
    /// those stored (seq up to `stored_through`): until then memory is the only copy a replay can read.
    /// The storage writer's own bound settles what it cannot keep, so this stays bounded too.
    pub fn push(&mut self, message: ChatMessage, stored_through: u64) -> &ChatMessage {
        self.messages.push_back(message);
        while self.messages.len() > self.capacity
            && self
                .messages
                .front()
                .is_some_and(|oldest| oldest.seq <= stored_through)
        {
            self.messages.pop_front();
        }
        &self.messages[self.messages.len() - 1]
    }

    /// The newest `limit` messages, oldest first.
    pub fn latest(&self, limit: usize) -> Vec<&ChatMessage> {
        let skip = self.messages.len().saturating_sub(limit);
        self.messages.iter().skip(skip).collect()
    }

    /// Every message with a seq above `seq` that the buffer holds, oldest first.
    pub fn after(&self, seq: u64) -> impl Iterator<Item = &ChatMessage> {
        let start = self.messages.partition_point(|m| m.seq <= seq);
        self.messages.range(start..)
    }

    /// Forgets messages sent before `cutoff`; returns the highest seq forgotten, if any.
    pub fn expire_before(&mut self, cutoff: Timestamp) -> Option<u64> {
        let mut through = None;
        while self
            .messages
            .front()
            .is_some_and(|oldest| oldest.ts < cutoff)
        {
            through = self.messages.pop_front().map(|m| m.seq);
        }
        through
    }

    /// The message with `seq`, if the buffer holds it.
    pub fn get_mut(&mut self, seq: u64) -> Option<&mut ChatMessage> {
        let index = self.index_of(seq)?;
        self.messages.get_mut(index)
    }

    /// Forgets message `seq` and remembers that it was deleted; the message, if the buffer held it.
    pub fn delete(&mut self, seq: u64) -> Option<ChatMessage> {
        self.tombstones.insert(seq);
        if self.tombstones.len() > self.capacity {
            self.tombstones.pop_first();
        }
        let index = self.index_of(seq)?;
        self.messages.remove(index)
    }

    /// The seqs deleted lately with `after < seq < before`.
    pub fn deleted_between(&self, after: u64, before: u64) -> Vec<u64> {
        if after >= before {
            return Vec::new();
        }
        self.tombstones.range(after + 1..before).copied().collect()
    }

    /// Whether message `seq` was deleted lately.
    pub fn is_deleted(&self, seq: u64) -> bool {
        self.tombstones.contains(&seq)
    }

    /// The message with `seq`, if the buffer holds it.
    pub fn get(&self, seq: u64) -> Option<&ChatMessage> {
        self.messages.get(self.index_of(seq)?)
    }

    fn index_of(&self, seq: u64) -> Option<usize> {
        self.messages.binary_search_by_key(&seq, |m| m.seq).ok()
    }

    /// The seq of the oldest message held, if any.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.messages.front().map(|m| m.seq)
    }
}

/// Whether `replay` misses any seq from `since + 1` to `last_seq` that was not `deleted`: cut at the
/// replay bound, not read from a failing database, or dropped by storage during an outage. A gap is
/// announced, never silent; a deleted message is no gap, it is gone on purpose.
pub fn has_gap(
    since: u64,
    replay: &[&ChatMessage],
    last_seq: u64,
    deleted: impl Fn(u64) -> bool,
) -> bool {
    let mut expected = since + 1;
    let skip_deleted = |expected: &mut u64, up_to: u64| {
        while *expected < up_to && deleted(*expected) {
            *expected += 1;
        }
    };
    for message in replay {
        skip_deleted(&mut expected, message.seq);
        if message.seq != expected {
            return true;
        }
        expected += 1;
    }
    skip_deleted(&mut expected, last_seq + 1);
    expected <= last_seq
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    fn message(seq: u64) -> ChatMessage {
        ChatMessage::sample(seq)
    }

    fn none(_: u64) -> bool {
        false
    }

    fn seqs(messages: &[&ChatMessage]) -> Vec<u64> {
        messages.iter().map(|m| m.seq).collect()
    }

    fn filled(size: usize, count: u64) -> History {
        History::new(
            capacity(size),
            (1..=count).map(message).collect(),
            Vec::new(),
        )
    }

    #[test]
    fn the_oldest_messages_fall_off_at_capacity() {
        assert_eq!(seqs(&filled(3, 5).latest(10)), [3, 4, 5]);
    }

    #[test]
    fn messages_not_yet_stored_are_kept_past_capacity() {
        let mut history = History::new(capacity(2), Vec::new(), Vec::new());
        for seq in 1..=4 {
            history.push(message(seq), 1);
        }
        assert_eq!(seqs(&history.latest(10)), [2, 3, 4]);
        history.push(message(5), 5);
        assert_eq!(seqs(&history.latest(10)), [4, 5]);
    }

    #[test]
    fn latest_returns_the_newest_oldest_first() {
        assert_eq!(seqs(&filled(10, 5).latest(2)), [4, 5]);
    }

    #[test]
    fn after_returns_exactly_the_later_messages() {
        let history = filled(10, 5);
        assert_eq!(seqs(&history.after(2).collect::<Vec<_>>()), [3, 4, 5]);
        assert_eq!(history.after(5).count(), 0);
    }

    #[test]
    fn a_replay_with_every_seq_has_no_gap() {
        let history = filled(10, 5);
        assert!(!has_gap(2, &history.after(2).collect::<Vec<_>>(), 5, none));
        assert!(!has_gap(5, &[], 5, none));
    }

    #[test]
    fn a_hole_at_the_start_middle_or_end_is_a_gap() {
        let (m3, m4, m6) = (message(3), message(4), message(6));
        assert!(has_gap(1, &[&m3, &m4], 4, none), "seq 2 missing");
        assert!(has_gap(2, &[&m3, &m4, &m6], 6, none), "seq 5 missing");
        assert!(has_gap(2, &[&m3, &m4], 6, none), "seqs 5 and 6 missing");
        assert!(has_gap(2, &[], 4, none), "everything missing");
    }

    #[test]
    fn a_deleted_message_is_no_gap_but_a_missing_one_still_is() {
        let (m3, m4, m6) = (message(3), message(4), message(6));
        let five = |seq| seq == 5;
        assert!(!has_gap(2, &[&m3, &m4, &m6], 6, five));
        assert!(!has_gap(2, &[&m3, &m4], 5, five), "the last one deleted");
        assert!(!has_gap(4, &[], 5, five));
        assert!(
            has_gap(2, &[&m4, &m6], 6, five),
            "seq 3 is missing, not deleted"
        );
        assert!(
            has_gap(2, &[&m3, &m4], 6, five),
            "seq 6 is missing, not deleted"
        );
    }

    #[test]
    fn a_deletion_leaves_the_buffer_and_its_tombstones_stay_bounded() {
        let mut history = filled(3, 5);
        assert_eq!(history.delete(4).map(|m| m.seq), Some(4));
        assert_eq!(seqs(&history.latest(10)), [3, 5]);
        assert!(history.is_deleted(4) && !history.is_deleted(3));
        assert!(history.delete(1).is_none(), "long gone, but remembered");
        for seq in 10..20 {
            history.delete(seq);
        }
        assert_eq!(history.tombstones.len(), 3);
        assert!(history.is_deleted(19) && !history.is_deleted(4));
    }

    #[test]
    fn the_oldest_seq_is_the_first_kept() {
        assert_eq!(filled(3, 10).oldest_seq(), Some(8));
        assert_eq!(
            History::new(capacity(3), Vec::new(), Vec::new()).oldest_seq(),
            None
        );
    }
}
