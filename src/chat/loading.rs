//! One load at a time per room: whoever comes second waits its turn, then finds the first's lobby.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::OwnedMutexGuard;

use crate::domain::RoomCode;

/// The rooms being loaded now, each with the lock its loaders take turns on.
#[derive(Default)]
pub struct Loading {
    // A std Mutex around the map (held for one operation), a tokio one per room (held across the
    // load's awaits).
    turns: Mutex<HashMap<RoomCode, Arc<tokio::sync::Mutex<()>>>>,
}

/// The right to load one room, until dropped.
pub struct Turn<'a> {
    loading: &'a Loading,
    code: RoomCode,
    guard: OwnedMutexGuard<()>,
}

impl Loading {
    /// Waits until no one else is loading `code`.
    pub async fn turn(&self, code: &RoomCode) -> Turn<'_> {
        let gate = Arc::clone(self.lock().entry(code.clone()).or_default());
        Turn {
            loading: self,
            code: code.clone(),
            guard: gate.lock_owned().await,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RoomCode, Arc<tokio::sync::Mutex<()>>>> {
        // Each critical section is one lookup or removal, so a poisoned map is still whole.
        self.turns.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut turns = self.loading.lock();
        // The map's handle and this turn's are all there are: nobody waits, so the entry goes.
        // A waiter took its handle under this same lock, so it cannot appear meanwhile.
        // (A waiter that gives up after this leaves the entry to the room's next load to remove.)
        if Arc::strong_count(OwnedMutexGuard::mutex(&self.guard)) == 2 {
            turns.remove(&self.code);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::task::{Context, Waker};

    use super::*;

    fn code() -> RoomCode {
        RoomCode::parse("K7MXQ2").expect("a valid code")
    }

    #[tokio::test]
    async fn a_second_loader_waits_for_the_first_and_the_entry_goes_with_the_last() {
        let (loading, code) = (Loading::default(), code());
        let first = loading.turn(&code).await;
        let mut second = std::pin::pin!(loading.turn(&code));
        let mut look = Context::from_waker(Waker::noop());
        assert!(
            second.as_mut().poll(&mut look).is_pending(),
            "the second waits while the first loads"
        );
        drop(first);
        let second = second.await;
        assert_eq!(
            loading.lock().len(),
            1,
            "the turn being held keeps its entry"
        );
        drop(second);
        assert!(loading.lock().is_empty(), "no entry outlives its last turn");
    }

    #[tokio::test]
    async fn an_abandoned_wait_leaves_no_entry_behind() {
        let (loading, code) = (Loading::default(), code());
        let first = loading.turn(&code).await;
        drop(futures_util::FutureExt::now_or_never(loading.turn(&code)));
        drop(first);
        assert!(loading.lock().is_empty());
    }
}
