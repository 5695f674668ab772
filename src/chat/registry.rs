//! Which rooms are live: a map from room code to the lobby actor running the room, backed by storage.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix::{Addr, Handler, Message};

use super::loading::Loading;
use super::lobby::{Lobby, Wiring};
use super::messages::{Describe, ReadHistory, Shutdown};
use super::room::{RoomInfo, RoomState};
use super::settings::RoomSettings;
use crate::accounts::Hasher;
use crate::broker::Broker;
use crate::domain::{
    AccountKey, ChatMessage, DisplayName, MessageLifetime, Ownership, RoomCode, Timestamp,
};
use crate::instruments;
use crate::storage::{Created, Keep, LogEntry, Storage, StorageError, StoredRoom};

/// How many times a request that finds its lobby stopping (unloaded as idle just then) loads it again.
const ATTEMPTS: usize = 3;

type Rooms = Arc<Mutex<HashMap<RoomCode, Addr<Lobby>>>>;

/// Shared by every worker; consulted to create or open a room, never per message.
#[derive(Clone)]
pub struct Registry {
    // A std Mutex, not tokio's: it is held for one map operation and never across an await.
    rooms: Rooms,
    /// One load per room at a time: a room is marked open in storage once, and a burst of
    /// reconnects after a restart reads it once.
    loading: Arc<Loading>,
    settings: Arc<RoomSettings>,
    storage: Storage,
    broker: Broker,
    hasher: Hasher,
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

/// Why a room could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    #[error("the room is being reloaded; try again")]
    Unloading,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Registry {
    pub fn new(settings: RoomSettings, storage: Storage, broker: Broker, hasher: Hasher) -> Self {
        Self {
            rooms: Arc::default(),
            loading: Arc::default(),
            settings: Arc::new(settings),
            storage,
            broker,
            hasher,
        }
    }

    /// Starts a new room under the requested code, or under a fresh generated one; with a
    /// `lifetime`, its messages disappear after that long. The room is stored before this returns,
    /// so a code is taken once, whichever process asked first.
    pub async fn create(
        &self,
        requested: Option<RoomCode>,
        lifetime: Option<MessageLifetime>,
        ownership: Ownership,
    ) -> Result<RoomCode, CreateError> {
        if self.lock().len() >= self.settings.max_rooms {
            return Err(CreateError::Full(self.settings.max_rooms));
        }
        let created_at = Timestamp::now();
        let code = match requested {
            Some(code) => match self
                .storage
                .create_room(&code, created_at, lifetime, &ownership)
                .await?
            {
                Created::New => code,
                Created::Taken => return Err(CreateError::Taken(code)),
            },
            // 31⁶ ≈ 887 million codes make a collision rare; each one costs another insert.
            None => loop {
                let code = RoomCode::generate();
                if let Created::New = self
                    .storage
                    .create_room(&code, created_at, lifetime, &ownership)
                    .await?
                {
                    break code;
                }
            },
        };
        let state = RoomState {
            created_at,
            recent: Vec::new(),
            deleted: Vec::new(),
            last_seq: 0,
            lifetime,
            ownership,
        };
        let mut rooms = self.lock();
        let lobby = Lobby::start(code.clone(), state, self.wiring(&code));
        rooms.insert(code.clone(), lobby);
        metrics::gauge!(instruments::ROOMS_LIVE).set(rooms.len() as f64);
        tracing::info!(room = %code, "room created");
        Ok(code)
    }

    /// Whether `name` passes for an account's username, which no guest may go by in any room.
    pub async fn reserved_by_account(&self, name: &DisplayName) -> Result<bool, StorageError> {
        self.storage
            .is_username(&AccountKey::of(name.as_str()))
            .await
    }

    /// The lobby of a room, bringing it back from storage if it is not in memory.
    pub async fn open(&self, code: &RoomCode) -> Result<Option<Addr<Lobby>>, StorageError> {
        if let Some(lobby) = self.live(code) {
            return Ok(Some(lobby));
        }
        let _turn = self.loading.turn(code).await;
        if let Some(lobby) = self.live(code) {
            return Ok(Some(lobby));
        }
        // Alone, a lobby numbers its room's messages itself, and storage keeps a record of whether
        // it closed cleanly; in shared mode the database numbers them.
        let stored = if self.broker.is_shared() {
            self.storage.room(code).await?
        } else {
            self.storage.reopen(code).await?
        };
        let Some(stored) = stored else {
            return Ok(None);
        };
        let cutoff = expiry_cutoff(&stored);
        let history_size = self.settings.history_size.get();
        let recent = self
            .storage
            .messages(code, (0, u64::MAX), cutoff, history_size, Keep::Newest)
            .await?;
        let first = recent.first().map_or(u64::MAX, |m| m.seq);
        let deleted = self.storage.deleted(code, (first - 1, u64::MAX)).await?;
        let mut rooms = self.lock();
        // There must be one lobby per room, and `create` may have started this one meanwhile.
        if let Some(lobby) = rooms.get(code) {
            return Ok(Some(lobby.clone()));
        }
        // In shared mode another instance may have stored more between the two reads: the room
        // goes on from the newest message it holds, or it would number that one again.
        let newest = recent.last().map_or(0, |m| m.seq);
        let state = RoomState {
            created_at: stored.created_at,
            recent,
            deleted,
            last_seq: stored.last_seq.max(newest),
            lifetime: stored.lifetime,
            ownership: stored.ownership,
        };
        let lobby = Lobby::start(code.clone(), state, self.wiring(code));
        rooms.insert(code.clone(), lobby.clone());
        metrics::gauge!(instruments::ROOMS_LIVE).set(rooms.len() as f64);
        tracing::info!(room = %code, "room loaded from storage");
        Ok(Some(lobby))
    }

    /// Sends `message` to the room's lobby, loading the room if needed. A lobby that stopped (idle)
    /// between the lookup and the send has left the map, so the next try loads the room afresh.
    pub async fn ask<M>(&self, code: &RoomCode, message: M) -> Result<Option<M::Result>, ReachError>
    where
        M: Message + Clone + Send + 'static,
        M::Result: Send,
        Lobby: Handler<M>,
    {
        Ok(self.reach(code, message).await?.map(|(_, answer)| answer))
    }

    /// As [`Registry::ask`], and also answers the lobby that took the message, for a caller (a
    /// session that joined) that goes on talking to it.
    pub async fn reach<M>(
        &self,
        code: &RoomCode,
        message: M,
    ) -> Result<Option<(Addr<Lobby>, M::Result)>, ReachError>
    where
        M: Message + Clone + Send + 'static,
        M::Result: Send,
        Lobby: Handler<M>,
    {
        for _ in 0..ATTEMPTS {
            let Some(lobby) = self.open(code).await? else {
                return Ok(None);
            };
            if let Ok(answer) = lobby.send(message.clone()).await {
                return Ok(Some((lobby, answer)));
            }
        }
        Err(ReachError::Unloading)
    }

    /// A room as the API describes it, without loading it: a read is no use of the room, so a
    /// script polling it does not keep it in memory nor from the retention sweep.
    pub async fn describe(&self, code: &RoomCode) -> Result<Option<RoomInfo>, StorageError> {
        if let Some(lobby) = self.live(code) {
            if let Ok(info) = lobby.send(Describe).await {
                return Ok(Some(info));
            }
        }
        let Some(stored) = self.storage.room(code).await? else {
            return Ok(None);
        };
        // Shared mode: others may be in it on other instances. Redis unreachable: none known.
        let members = match self.broker.presence(code) {
            Some(presence) => presence.people().await.unwrap_or_default(),
            None => Vec::new(),
        };
        Ok(Some(RoomInfo {
            code: code.clone(),
            members,
            created_at: stored.created_at,
            expire_after_seconds: stored.lifetime.map(MessageLifetime::as_secs),
        }))
    }

    /// A page of a room's messages, without loading it (see [`Registry::describe`]). A room in
    /// memory answers itself, since its newest messages may not be stored yet.
    pub async fn read(
        &self,
        code: &RoomCode,
        read: ReadHistory,
    ) -> Result<Option<Vec<ChatMessage>>, StorageError> {
        if let Some(lobby) = self.live(code) {
            if let Ok(messages) = lobby.send(read).await {
                return messages.map(Some);
            }
        }
        let Some(stored) = self.storage.room(code).await? else {
            return Ok(None);
        };
        // Not in memory: everything it was told is stored (a lobby unloads only then).
        let range = (read.after, read.before);
        let messages = self
            .storage
            .messages(code, range, expiry_cutoff(&stored), read.limit, read.keep)
            .await?;
        Ok(Some(messages))
    }

    /// Who owns a stored room, as storage keeps it (the owning account, the owner token's digest).
    pub async fn ownership(&self, code: &RoomCode) -> Result<Option<Ownership>, StorageError> {
        Ok(self
            .storage
            .room(code)
            .await?
            .map(|stored| stored.ownership))
    }

    pub async fn moderation_log(&self, code: &RoomCode) -> Result<Vec<LogEntry>, StorageError> {
        self.storage.moderation_log(code).await
    }

    /// Whether a room exists, in memory or in storage, without loading it.
    pub async fn exists(&self, code: &RoomCode) -> Result<bool, StorageError> {
        Ok(self.live(code).is_some() || self.storage.room(code).await?.is_some())
    }

    /// Tells every live room the server is stopping, so each closes its connections with 1012;
    /// returns once each has queued its last writes, so the final flush stores them.
    pub async fn shut_down(&self) {
        let lobbies: Vec<_> = self.lock().values().cloned().collect();
        // A lobby gone meanwhile unloaded as idle, having queued its writes then.
        futures_util::future::join_all(lobbies.iter().map(|lobby| lobby.send(Shutdown))).await;
    }

    fn live(&self, code: &RoomCode) -> Option<Addr<Lobby>> {
        self.lock().get(code).cloned()
    }

    /// What a new lobby is given: its settings, storage, the broker, and how to leave this map.
    fn wiring(&self, code: &RoomCode) -> Wiring {
        let (rooms, code) = (Arc::clone(&self.rooms), code.clone());
        Wiring {
            settings: Arc::clone(&self.settings),
            storage: self.storage.clone(),
            broker: self.broker.clone(),
            hasher: self.hasher.clone(),
            // Run by the lobby as it stops: a request that looked it up just before gets a closed
            // mailbox and, through `ask` or `reach`, loads the room again.
            unload: Box::new(move || {
                let mut rooms = lock(&rooms);
                rooms.remove(&code);
                metrics::gauge!(instruments::ROOMS_LIVE).set(rooms.len() as f64);
            }),
        }
    }

    /// Deletes stored rooms (and their messages) inactive since before `cutoff`, except live ones.
    pub async fn delete_inactive(&self, cutoff: Timestamp) -> Result<usize, StorageError> {
        let mut deleted = 0;
        for code in self.storage.inactive_rooms(cutoff).await? {
            if self.live(&code).is_none() {
                self.storage.delete_room(&code).await?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RoomCode, Addr<Lobby>>> {
        lock(&self.rooms)
    }
}

fn lock(rooms: &Rooms) -> MutexGuard<'_, HashMap<RoomCode, Addr<Lobby>>> {
    // Every critical section is a single insert, remove or lookup, so a poisoned map is still whole.
    rooms.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Messages of a stored room sent before this have expired, if its messages disappear.
fn expiry_cutoff(stored: &StoredRoom) -> Option<Timestamp> {
    stored
        .lifetime
        .map(|lifetime| Timestamp::now().earlier_by(lifetime.duration()))
}
