//! Which rooms exist right now: a map from room code to the lobby actor that runs the room.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use actix::{Actor, Addr};

use super::lobby::{Lobby, RoomSettings};
use crate::domain::RoomCode;

/// Shared by every worker; consulted only to create or find a room, never per message.
#[derive(Clone)]
pub struct Registry {
    // A std Mutex, not tokio's: it is held for one map operation and never across an await.
    rooms: Arc<Mutex<HashMap<RoomCode, Addr<Lobby>>>>,
    settings: Arc<RoomSettings>,
}

#[derive(Debug, thiserror::Error)]
#[error("the room code {0} is already taken")]
pub struct RoomTaken(pub RoomCode);

impl Registry {
    pub fn new(settings: RoomSettings) -> Self {
        Self {
            rooms: Arc::default(),
            settings: Arc::new(settings),
        }
    }

    /// Starts a room under the requested code, or under a fresh generated one.
    pub fn create(&self, requested: Option<RoomCode>) -> Result<RoomCode, RoomTaken> {
        let mut rooms = self.lock();
        let code = match requested {
            Some(code) if rooms.contains_key(&code) => return Err(RoomTaken(code)),
            Some(code) => code,
            // 31⁶ ≈ 887 million codes: a collision is rare, and simply drawn again.
            None => loop {
                let code = RoomCode::generate();
                if !rooms.contains_key(&code) {
                    break code;
                }
            },
        };
        let lobby = Lobby::new(code.clone(), self.clone(), Arc::clone(&self.settings)).start();
        rooms.insert(code.clone(), lobby);
        tracing::info!(room = %code, "room created");
        Ok(code)
    }

    pub fn find(&self, code: &RoomCode) -> Option<Addr<Lobby>> {
        self.lock().get(code).cloned()
    }

    /// Called by a lobby as it stops; a session that looked it up just before gets a closed mailbox.
    pub(super) fn remove(&self, code: &RoomCode) {
        self.lock().remove(code);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomCode, Addr<Lobby>>> {
        // Every critical section is a single insert, remove or lookup, so a poisoned map is still whole.
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
