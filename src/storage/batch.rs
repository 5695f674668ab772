//! The work handed to the writer, and a batch of it: what one transaction stores.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::domain::{ChatMessage, MessageText, RoomCode, Timestamp};

pub enum Command {
    Persist {
        message: ChatMessage,
        settled: Arc<AtomicU64>,
    },
    /// A stored message edited or deleted, written after everything sent before it (its own
    /// insert too).
    Change(Change),
    /// A lobby closed its room, having numbered it through `seq`: recorded after its messages.
    Close { room: RoomCode, seq: u64 },
    /// Answered once everything sent before it is stored (or dropped).
    Flush(oneshot::Sender<()>),
}

pub struct Change {
    pub room: RoomCode,
    pub seq: u64,
    pub at: Timestamp,
    pub to: Changed,
}

/// What became of a stored message.
pub enum Changed {
    /// Its author gave it this text.
    Text(MessageText),
    /// It was deleted: its text and sender's name are blanked, and a tombstone keeps its seq.
    Deleted,
}

/// A unit of work for one transaction: messages to store (in order), edits and deletions of stored
/// messages (applied after the inserts: a change never comes before its message), rooms whose last
/// activity to move forward, and rooms closed at a seq (after the messages they numbered). It holds
/// no flush: a flush is answered between batches.
pub struct Batch {
    pub commands: Vec<Command>,
    pub activity: Vec<(RoomCode, Timestamp)>,
}

impl Batch {
    pub fn messages(&self) -> impl Iterator<Item = &ChatMessage> {
        self.commands.iter().filter_map(|command| match command {
            Command::Persist { message, .. } => Some(message),
            _ => None,
        })
    }

    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.commands.iter().filter_map(|command| match command {
            Command::Change(change) => Some(change),
            _ => None,
        })
    }

    pub fn closes(&self) -> impl Iterator<Item = (&RoomCode, u64)> {
        self.commands.iter().filter_map(|command| match command {
            Command::Close { room, seq } => Some((room, *seq)),
            _ => None,
        })
    }
}

/// Seqs are u64 in the protocol and BIGINT in SQL; past i64::MAX (never reached) they saturate.
pub fn seq_param(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}
