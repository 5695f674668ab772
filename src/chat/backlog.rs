//! How far a connection has fallen behind: the room events queued for it and not yet written,
//! counted in frames however they are batched, against the `--max-backlog` bound.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One connection's count, shared by its session, which releases the frames it writes, and the
/// lobby fanning out to it, which reserves the frames it queues. The session's mailbox cannot be
/// the bound: one envelope carries all the events of a lobby's turn.
#[derive(Clone)]
pub struct Backlog(Arc<Count>);

struct Count {
    queued: AtomicUsize,
    bound: usize,
}

impl Backlog {
    pub fn new(bound: usize) -> Self {
        Self(Arc::new(Count {
            queued: AtomicUsize::new(0),
            bound,
        }))
    }

    /// The most frames that may be queued.
    pub fn bound(&self) -> usize {
        self.0.bound
    }

    /// Counts `frames` more as queued; `false`, counting nothing, if that would pass the bound.
    pub fn reserve(&self, frames: usize) -> bool {
        // Relaxed: the count orders nothing else, and a frame is only ever released after the
        // send that reserved it.
        let queued = self.0.queued.fetch_add(frames, Ordering::Relaxed) + frames;
        if queued > self.0.bound {
            self.release(frames);
            return false;
        }
        true
    }

    /// `frames` are written, or will never be.
    pub fn release(&self, frames: usize) {
        self.0.queued.fetch_sub(frames, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_past_the_bound_are_refused_and_counted_for_nothing() {
        let backlog = Backlog::new(3);
        assert!(backlog.reserve(2));
        assert!(!backlog.reserve(2), "four would pass three");
        assert!(backlog.reserve(1), "the refusal counted nothing");
        assert!(!backlog.reserve(1));
        backlog.release(3);
        assert!(backlog.reserve(3));
    }
}
