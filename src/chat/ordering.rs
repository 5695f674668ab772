//! Puts a shared room's messages back in seq order: they are numbered by storage and reach a lobby
//! through the broker, or from storage when the broker lost one, in whatever order they arrive.

use std::collections::BTreeMap;

use crate::domain::ChatMessage;

/// What arrived ahead of its turn, waiting for the seqs before it.
#[derive(Default)]
pub struct Reorder {
    waiting: BTreeMap<u64, ChatMessage>,
}

/// The most messages held while a hole is filled; a room far ahead of this lobby is read from storage.
const MAX_WAITING: usize = 10_000;

impl Reorder {
    /// Takes `message` for a room whose last recorded seq is `last`, and returns what may now be
    /// recorded, in order: nothing if it is old news or must wait for a hole before it.
    pub fn offer(&mut self, last: u64, message: ChatMessage) -> Vec<ChatMessage> {
        if message.seq > last && (self.waiting.len() < MAX_WAITING || message.seq == last + 1) {
            self.waiting.insert(message.seq, message);
        }
        self.ready(last)
    }

    /// Everything waiting that follows `last` without a hole; drops what is no longer news.
    pub fn ready(&mut self, mut last: u64) -> Vec<ChatMessage> {
        self.waiting = self.waiting.split_off(&(last + 1));
        let mut ready = Vec::new();
        while let Some(entry) = self.waiting.first_entry() {
            if *entry.key() != last + 1 {
                break;
            }
            last += 1;
            ready.push(entry.remove());
        }
        ready
    }

    /// The hole before the first waiting message, `(after, before)`, if one is waiting.
    pub fn hole(&self, last: u64) -> Option<(u64, u64)> {
        let (&first, _) = self.waiting.first_key_value()?;
        (first > last + 1).then_some((last, first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u64) -> ChatMessage {
        ChatMessage::sample(seq)
    }

    fn seqs(messages: &[ChatMessage]) -> Vec<u64> {
        messages.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn the_next_message_passes_at_once() {
        let mut reorder = Reorder::default();
        assert_eq!(seqs(&reorder.offer(4, message(5))), [5]);
        assert_eq!(reorder.hole(5), None);
    }

    #[test]
    fn a_message_after_a_hole_waits_until_the_hole_is_filled() {
        let mut reorder = Reorder::default();
        assert!(reorder.offer(4, message(7)).is_empty());
        assert_eq!(reorder.hole(4), Some((4, 7)));
        assert!(reorder.offer(4, message(6)).is_empty());
        assert_eq!(seqs(&reorder.offer(4, message(5))), [5, 6, 7]);
        assert_eq!(reorder.hole(7), None);
    }

    #[test]
    fn old_news_and_duplicates_are_dropped() {
        let mut reorder = Reorder::default();
        assert!(reorder.offer(4, message(4)).is_empty());
        assert!(reorder.offer(4, message(6)).is_empty());
        assert!(reorder.offer(4, message(6)).is_empty());
        assert_eq!(seqs(&reorder.offer(4, message(5))), [5, 6]);
    }

    #[test]
    fn a_hole_filled_from_storage_releases_what_waited_behind_it() {
        let mut reorder = Reorder::default();
        reorder.offer(1, message(4));
        reorder.offer(1, message(2));
        // Storage delivered 2 and 3 in the meantime: the lobby recorded through 3.
        assert_eq!(seqs(&reorder.ready(3)), [4]);
    }
}
