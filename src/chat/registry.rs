//! Which rooms are live: a map from room code to the lobby actor running the room, backed by storage.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix::{Actor, Addr};

use super::lobby::{Lobby, RoomSettings, RoomState};
use super::messages::Shutdown;
use crate::domain::{MessageLifetime, RoomCode, Timestamp};
use crate::instruments;
use crate::storage::{Keep, Storage, StorageError};

/// Shared by every worker; consulted to create or open a room, never per message.
#[derive(Clone)]
pub struct Registry {
    // A std Mutex, not tokio's: it is held for one map operation and never across an await.
    rooms: Arc<Mutex<HashMap<RoomCode, Addr<Lobby>>>>,
    settings: Arc<RoomSettings>,
    storage: Storage,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("the room code {0} is already taken")]
    Taken(RoomCode),
    #[error("the server holds its maximum of {0} rooms; try again later")]
    Full(usize),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Registry {
    pub fn new(settings: RoomSettings, storage: Storage) -> Self {
        Self {
            rooms: Arc::default(),
            settings: Arc::new(settings),
            storage,
        }
    }

    pub fn settings(&self) -> Arc<RoomSettings> {
        Arc::clone(&self.settings)
    }

    /// Starts a new room under the requested code, or under a fresh generated one; with a
    /// `lifetime`, its messages disappear after that long.
    pub async fn create(
        &self,
        requested: Option<RoomCode>,
        lifetime: Option<MessageLifetime>,
    ) -> Result<RoomCode, CreateError> {
        let code = match requested {
            Some(code) => {
                if self.find_live(&code).is_some() || self.storage.room(&code).await?.is_some() {
                    return Err(CreateError::Taken(code));
                }
                code
            }
            None => self.unused_code().await,
        };
        let state = RoomState::new(lifetime);
        let created_at = state.created_at;
        let mut rooms = self.lock();
        if rooms.len() >= self.settings.max_rooms {
            return Err(CreateError::Full(self.settings.max_rooms));
        }
        // Checked again under the lock: someone may have created it while storage was asked.
        if rooms.contains_key(&code) {
            return Err(CreateError::Taken(code));
        }
        let lobby = Lobby::new(code.clone(), state, self.clone(), self.storage.clone());
        rooms.insert(code.clone(), lobby.start());
        metrics::gauge!(instruments::ROOMS_LIVE).set(rooms.len() as f64);
        self.storage.create_room(code.clone(), created_at, lifetime);
        tracing::info!(room = %code, "room created");
        Ok(code)
    }

    /// A generated code used by no live or stored room. 31⁶ ≈ 887 million codes make a collision
    /// rare; if storage cannot be asked, a code unused in memory is taken rather than refusing.
    async fn unused_code(&self) -> RoomCode {
        loop {
            let code = RoomCode::generate();
            if self.find_live(&code).is_some() {
                continue;
            }
            match self.storage.room(&code).await {
                Ok(Some(_)) => continue,
                Ok(None) => return code,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot check a new room code against storage");
                    return code;
                }
            }
        }
    }

    /// The lobby of a room, bringing it back from storage if it is not in memory.
    pub async fn open(&self, code: &RoomCode) -> Result<Option<Addr<Lobby>>, StorageError> {
        if let Some(lobby) = self.find_live(code) {
            return Ok(Some(lobby));
        }
        let Some(stored) = self.storage.room(code).await? else {
            return Ok(None);
        };
        let cutoff = stored
            .lifetime
            .map(|lifetime| Timestamp::now().earlier_by(lifetime.duration()));
        let history_size = self.settings.history_size;
        let recent = self
            .storage
            .messages(code, (0, u64::MAX), cutoff, history_size, Keep::Newest)
            .await?;
        let mut rooms = self.lock();
        // Another request may have brought it back meanwhile; there must be one lobby per room.
        if let Some(lobby) = rooms.get(code) {
            return Ok(Some(lobby.clone()));
        }
        let state = RoomState {
            created_at: stored.created_at,
            recent,
            last_seq: stored.last_seq,
            lifetime: stored.lifetime,
        };
        let lobby = Lobby::new(code.clone(), state, self.clone(), self.storage.clone()).start();
        rooms.insert(code.clone(), lobby.clone());
        metrics::gauge!(instruments::ROOMS_LIVE).set(rooms.len() as f64);
        tracing::info!(room = %code, "room loaded from storage");
        Ok(Some(lobby))
    }

    /// Tells every live room the server is stopping, so each closes its connections with 1012.
    pub fn shut_down(&self) {
        for lobby in self.lock().values() {
            lobby.do_send(Shutdown);
        }
    }

    fn find_live(&self, code: &RoomCode) -> Option<Addr<Lobby>> {
        self.lock().get(code).cloned()
    }

    /// Called by a lobby as it stops; a session that looked it up just before gets a closed mailbox.
    pub(super) fn remove(&self, code: &RoomCode) {
        let mut rooms = self.lock();
        rooms.remove(code);
        metrics::gauge!(instruments::ROOMS_LIVE).set(rooms.len() as f64);
    }

    /// Deletes stored rooms (and their messages) inactive since before `cutoff`, except live ones.
    pub async fn delete_inactive(&self, cutoff: Timestamp) -> Result<usize, StorageError> {
        let mut deleted = 0;
        for code in self.storage.inactive_rooms(cutoff).await? {
            if self.find_live(&code).is_none() {
                self.storage.delete_room(&code).await?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RoomCode, Addr<Lobby>>> {
        // Every critical section is a single insert, remove or lookup, so a poisoned map is still whole.
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
