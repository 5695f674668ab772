//! A room's recent messages, kept in a bounded buffer in seq order.

use std::collections::VecDeque;

use crate::domain::ChatMessage;

/// The last `capacity` messages of a room; older ones fall off the front.
pub struct History {
    messages: VecDeque<ChatMessage>,
    capacity: usize,
}

/// Messages after a seq, and whether some of those had already fallen out of the buffer.
pub struct Since<'a> {
    pub messages: Vec<&'a ChatMessage>,
    pub truncated: bool,
}

impl History {
    pub fn new(capacity: usize) -> Self {
        Self {
            messages: VecDeque::with_capacity(capacity.min(64)),
            capacity,
        }
    }

    /// Appends a message and returns it as kept.
    pub fn push(&mut self, message: ChatMessage) -> &ChatMessage {
        if self.messages.len() == self.capacity {
            self.messages.pop_front();
        }
        self.messages.push_back(message);
        &self.messages[self.messages.len() - 1]
    }

    /// The newest `limit` messages, oldest first.
    pub fn latest(&self, limit: usize) -> Vec<&ChatMessage> {
        let skip = self.messages.len().saturating_sub(limit);
        self.messages.iter().skip(skip).collect()
    }

    /// Every message with a seq above `seq` that the buffer still holds, at most `limit`, oldest first.
    pub fn after(&self, seq: u64, limit: usize) -> Since<'_> {
        let start = self.messages.partition_point(|m| m.seq <= seq);
        // Seqs have no holes, so anything between `seq` and the oldest kept message was evicted.
        let truncated = self.messages.front().is_some_and(|m| m.seq > seq + 1);
        Since {
            messages: self.messages.range(start..).take(limit).collect(),
            truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DisplayName, MessageText, RoomCode, Timestamp, User};

    fn message(seq: u64) -> ChatMessage {
        ChatMessage {
            id: uuid::Uuid::new_v4(),
            seq,
            room: RoomCode::parse("ROOM").unwrap(),
            from: User {
                id: uuid::Uuid::new_v4(),
                name: DisplayName::parse("ann").unwrap(),
            },
            text: MessageText::parse("hi").unwrap(),
            ts: Timestamp::now(),
            reference: None,
        }
    }

    fn seqs(messages: &[&ChatMessage]) -> Vec<u64> {
        messages.iter().map(|m| m.seq).collect()
    }

    fn filled(capacity: usize, count: u64) -> History {
        let mut history = History::new(capacity);
        for seq in 1..=count {
            history.push(message(seq));
        }
        history
    }

    #[test]
    fn the_oldest_messages_fall_off_at_capacity() {
        assert_eq!(seqs(&filled(3, 5).latest(10)), [3, 4, 5]);
    }

    #[test]
    fn latest_returns_the_newest_oldest_first() {
        assert_eq!(seqs(&filled(10, 5).latest(2)), [4, 5]);
    }

    #[test]
    fn after_returns_exactly_the_later_messages() {
        let history = filled(10, 5);
        let since = history.after(2, 100);
        assert_eq!(seqs(&since.messages), [3, 4, 5]);
        assert!(!since.truncated);
    }

    #[test]
    fn after_the_newest_seq_is_empty_and_not_truncated() {
        let history = filled(10, 5);
        let since = history.after(5, 100);
        assert!(since.messages.is_empty());
        assert!(!since.truncated);
    }

    #[test]
    fn after_a_seq_older_than_the_buffer_says_truncated() {
        let history = filled(3, 10);
        let since = history.after(2, 100);
        assert_eq!(seqs(&since.messages), [8, 9, 10]);
        assert!(since.truncated);
    }

    #[test]
    fn after_the_seq_just_before_the_buffer_is_not_truncated() {
        let history = filled(3, 10);
        let since = history.after(7, 100);
        assert_eq!(seqs(&since.messages), [8, 9, 10]);
        assert!(!since.truncated);
    }
}
