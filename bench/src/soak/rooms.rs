//! The soak's rooms: a few in use at any time, one retired and a new one created every so often.
//! A retired room empties as its visitors leave and then unloads as idle, as rooms people stop
//! using do.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::load::create_room;

#[derive(Default)]
pub struct Rooms {
    /// Rooms people go to now, oldest first.
    active: Mutex<Vec<String>>,
    /// Every room the soak created, to check their storage at the end.
    created: Mutex<Vec<String>>,
}

impl Rooms {
    /// A room in use, at random.
    pub fn pick(&self, rng: &mut fastrand::Rng) -> Option<String> {
        let active = lock(&self.active);
        (!active.is_empty()).then(|| active[rng.usize(..active.len())].clone())
    }

    /// Creates a room through `url` and puts it in use.
    pub async fn create(&self, http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
        let code = create_room(http, url).await?;
        lock(&self.created).push(code.clone());
        lock(&self.active).push(code);
        Ok(())
    }

    /// Takes the oldest room out of use: nobody new goes there.
    pub fn retire_oldest(&self) {
        let mut active = lock(&self.active);
        if !active.is_empty() {
            active.remove(0);
        }
    }

    pub fn created(&self) -> Vec<String> {
        lock(&self.created).clone()
    }
}

fn lock(rooms: &Mutex<Vec<String>>) -> MutexGuard<'_, Vec<String>> {
    // Each critical section is one push, removal or read, so a poisoned list is still whole.
    rooms.lock().unwrap_or_else(PoisonError::into_inner)
}
