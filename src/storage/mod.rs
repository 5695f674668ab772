//! Durable rooms and messages: SQLite by default, PostgreSQL when the URL says so.
//!
//! Reads (a room coming back, history beyond memory) go straight to the database; writes go
//! through the [`writer`], off the fan-out path, so storage never slows or stops a room.

mod accounts;
mod batch;
mod database;
mod health;
mod moderation;
mod postgres_writes;
mod sequencer;
mod sqlite_file;
mod thread;
mod usernames;
mod writer;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use futures_util::future::OptionFuture;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::{mpsc, oneshot};

pub use accounts::StoredAccount;
pub use database::{check_url, redact, Keep, StoredRoom};
pub use health::HealthReport;
pub use moderation::{LogEntry, LoggedUser};
pub use sequencer::Unnumbered;

use crate::domain::{
    Account, AccountKey, Ban, ChatMessage, MessageLifetime, MessageText, Ownership, PasswordHash,
    RoomCode, RoomRules, Timestamp, TokenDigest, UserId,
};
use batch::{Change, Changed, Command};
use database::Database;
use health::Health;
use postgres_writes::PostgresWrites;
use sequencer::Append;
use sqlite_file::{SqliteFile, CHECKPOINT_INTERVAL};
use usernames::Usernames;
use writer::{Store, Writer};

/// Brings the schema up to date once the database answers, retrying with backoff.
async fn until_migrated(database: &Database, health: &Health) {
    let mut delay = writer::RETRY_FIRST;
    loop {
        tokio::time::sleep(delay).await;
        match database.migrate().await {
            Ok(()) => {
                health.recovered();
                tracing::info!("the database answers: storage ready");
                return;
            }
            Err(err) => {
                tracing::debug!(error = format!("{err:#}"), retry_in = ?delay, "the database still cannot be reached");
                health.failed(&err);
                delay = (delay * 2).min(writer::RETRY_LAST);
            }
        }
    }
}

/// Starts the writer, and on PostgreSQL the sequencer, where each belongs: a SQLite file's writer
/// (whose commits block) and PostgreSQL's writes (whose CPU the actix workers should not pay) on
/// the storage thread; `sqlite::memory:`, which only the pool's one connection can reach, on the
/// current runtime.
fn start_writing(
    url: &str,
    database: &Database,
    commands: UnboundedReceiver<Command>,
    appends: Option<UnboundedReceiver<Append>>,
    buffer: usize,
    health: Arc<Health>,
) -> anyhow::Result<()> {
    if let Some(file) = SqliteFile::at(url) {
        return thread::spawn(move || {
            let checkpoints = file.checkpoints(CHECKPOINT_INTERVAL)?;
            let writer = Writer::new(Store::File(file), commands, buffer, health);
            Ok(async move {
                writer.run().await;
                // Checkpoints go on as long as the writer commits, and no longer.
                drop(checkpoints);
            })
        });
    }
    if database.is_postgres() {
        let url = url.to_owned();
        return thread::spawn(move || {
            let postgres = PostgresWrites::open(&url)?;
            let writer = Writer::new(
                Store::Postgres(postgres.clone()),
                commands,
                buffer,
                Arc::clone(&health),
            );
            let numbering = appends.map(|appends| sequencer::run(postgres, appends, health));
            Ok(async move {
                tokio::join!(writer.run(), OptionFuture::from(numbering));
            })
        });
    }
    // On Tokio itself rather than actix's local task set: if the runtime ends mid-write, the writer
    // is then dropped inside it, as sqlx needs to return its connection to the pool.
    tokio::spawn(Writer::new(Store::Pool(database.clone()), commands, buffer, health).run());
    Ok(())
}

/// Reading from storage failed; the room may exist, but cannot be loaded right now.
#[derive(Debug, thiserror::Error)]
#[error("storage is unavailable: {0:#}")]
pub struct StorageError(#[from] anyhow::Error);

/// Whether a room was created, or its code was already taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    Taken,
}

/// A handle on the database and its writer; cheap to clone.
#[derive(Clone)]
pub struct Storage {
    database: Database,
    commands: mpsc::UnboundedSender<Command>,
    /// To the sequencer, on PostgreSQL only: numbering through the database is shared mode's.
    appends: Option<mpsc::UnboundedSender<Append>>,
    health: Arc<Health>,
    /// The most messages the writer holds unwritten: how far numbering skips in a room that a
    /// process which died had open.
    buffer: usize,
    /// On SQLite only: a PostgreSQL database is asked, as other instances may register accounts.
    usernames: Option<Arc<Usernames>>,
}

impl Storage {
    /// Opens the database and starts the writer (and on PostgreSQL the sequencer). `buffer` bounds
    /// the messages held for writing while the database is failing.
    ///
    /// A SQLite file is this process's own: what stops it opening will not mend by waiting, so
    /// that fails here. A PostgreSQL server may start after Hubbub, or be restarting: Hubbub
    /// starts anyway, not ready and saying why, and connects (and migrates) once it answers.
    pub async fn open(url: &str, buffer: usize) -> anyhow::Result<Self> {
        let database = Database::open(url)?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let health = Arc::new(Health::new());
        let (appends, numbering) = if database.is_postgres() {
            let (appends, numbering) = mpsc::unbounded_channel();
            (Some(appends), Some(numbering))
        } else {
            (None, None)
        };
        let start = {
            let (url, database, health) = (url.to_owned(), database.clone(), Arc::clone(&health));
            move || start_writing(&url, &database, receiver, numbering, buffer, health)
        };
        match database.migrate().await {
            Ok(()) => start()?,
            Err(err) if !database.is_postgres() => {
                return Err(err.context(format!("cannot open the database at {}", redact(url))))
            }
            Err(err) => {
                tracing::error!(
                    error = format!("{err:#}"),
                    "the database cannot be reached; not ready until it can, retrying"
                );
                health.failed(&err);
                let (database, health) = (database.clone(), Arc::clone(&health));
                tokio::spawn(async move {
                    until_migrated(&database, &health).await;
                    if let Err(err) = start() {
                        tracing::error!(error = format!("{err:#}"), "storage cannot start");
                    }
                });
            }
        }
        // Migrated by now: a SQLite database that cannot be has returned an error.
        let usernames = if database.is_postgres() {
            None
        } else {
            Some(Arc::new(Usernames::load(&database).await?))
        };
        Ok(Self {
            database,
            commands,
            appends,
            health,
            buffer,
            usernames,
        })
    }

    /// Stores a new room, unless a room already has that code: the insert itself decides, so two
    /// processes on one database cannot both take a code. Awaited, unlike messages: a room must
    /// exist before anyone is told its code.
    pub async fn create_room(
        &self,
        code: &RoomCode,
        created_at: Timestamp,
        lifetime: Option<MessageLifetime>,
        ownership: &Ownership,
    ) -> Result<Created, StorageError> {
        let inserted = self
            .database
            .create_room(code, created_at, lifetime, ownership)
            .await?;
        Ok(if inserted {
            Created::New
        } else {
            Created::Taken
        })
    }

    /// Queues a message; `settled` is raised to its seq once it is stored (or given up on).
    pub fn persist(&self, message: ChatMessage, settled: Arc<AtomicU64>) {
        self.send(Command::Persist { message, settled });
    }

    /// Numbers `message` in its room and stores it, for shared mode: the answer carries its seq,
    /// which no other instance can give, and it is stored before anyone is told of it.
    pub async fn append(&self, message: ChatMessage) -> Result<ChatMessage, Unnumbered> {
        let unavailable = || {
            Unnumbered::Storage(StorageError(anyhow::anyhow!(
                "numbering through the database needs PostgreSQL"
            )))
        };
        let appends = self.appends.as_ref().ok_or_else(unavailable)?;
        let (done, appended) = oneshot::channel();
        appends
            .send(Append { message, done })
            .map_err(|_| unavailable())?;
        appended.await.map_err(|_| unavailable())?
    }

    /// The `last_seq` of each of `rooms` that exists (shared mode's periodic check for a lost publish).
    pub async fn last_seqs(
        &self,
        rooms: &[RoomCode],
    ) -> Result<Vec<(RoomCode, u64)>, StorageError> {
        Ok(self.database.last_seqs(rooms).await?)
    }

    /// Waits until everything queued before this call is stored.
    pub async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        self.send(Command::Flush(done));
        let _ = flushed.await;
    }

    /// Closes the database's connections; called once, after the final flush.
    pub async fn close(&self) {
        self.database.close().await;
    }

    fn send(&self, command: Command) {
        // The writer runs until the last Storage handle is dropped, so it is there to receive.
        let _ = self.commands.send(command);
    }

    pub async fn room(&self, code: &RoomCode) -> Result<Option<StoredRoom>, StorageError> {
        Ok(self.database.room(code).await?)
    }

    /// A room for a lobby that will number its messages alone (one process, not shared mode),
    /// recorded as open until [`Storage::close_room`]: a process that dies with it open may have
    /// delivered messages never stored, and the next to open it must not give their seqs again.
    /// Such a room's `last_seq` is moved past all the writer could have held, so a client that saw
    /// one of them and resumes is told its replay is truncated rather than handed a different
    /// message under a seq it already has.
    pub async fn reopen(&self, code: &RoomCode) -> Result<Option<StoredRoom>, StorageError> {
        let Some(mut room) = self.database.room(code).await? else {
            return Ok(None);
        };
        if !room.closed {
            // The lobby that had it may have unloaded a moment ago, its close still queued.
            self.flush().await;
            let Some(again) = self.database.room(code).await? else {
                return Ok(None);
            };
            room = again;
        }
        self.database.mark_open(code).await?;
        if !room.closed {
            tracing::warn!(room = %code, last_stored = room.last_seq, skipped = self.buffer, "room was open in a process that stopped without closing it: numbering skips the seqs its last messages may have had");
            room.last_seq += self.buffer as u64;
        }
        Ok(Some(room))
    }

    /// Queues the record that a lobby closed `code` having numbered it through `seq`, written
    /// after every message it queued.
    pub fn close_room(&self, code: RoomCode, seq: u64) {
        self.send(Command::Close { room: code, seq });
    }

    /// Stored messages with `after < seq < before` sent at `not_before` or later, the `limit` nearest
    /// the `keep` end, in seq order.
    pub async fn messages(
        &self,
        room: &RoomCode,
        range: (u64, u64),
        not_before: Option<Timestamp>,
        limit: usize,
        keep: Keep,
    ) -> Result<Vec<ChatMessage>, StorageError> {
        Ok(self
            .database
            .messages(room, range, not_before, limit, keep)
            .await?)
    }

    /// Deletes a room's messages sent before `cutoff`; returns the highest seq deleted, if any.
    pub async fn expire(
        &self,
        room: &RoomCode,
        cutoff: Timestamp,
    ) -> Result<Option<u64>, StorageError> {
        Ok(self.database.expire(room, cutoff).await?)
    }

    pub async fn inactive_rooms(&self, cutoff: Timestamp) -> Result<Vec<RoomCode>, StorageError> {
        Ok(self.database.inactive_rooms(cutoff).await?)
    }

    pub async fn delete_room(&self, code: &RoomCode) -> Result<(), StorageError> {
        Ok(self.database.delete_room(code).await?)
    }

    /// Queues a stored message's new text, as its author edited it at `at`: written after
    /// everything queued before, its own message's insert included, and flushed on the way out
    /// like the messages are.
    pub fn edit_message(&self, room: RoomCode, seq: u64, text: MessageText, at: Timestamp) {
        self.change(room, seq, at, Changed::Text(text));
    }

    /// Queues the deletion of a stored message, in order with its insert and edits as
    /// [`Storage::edit_message`] is.
    pub fn delete_message(&self, room: RoomCode, seq: u64, at: Timestamp) {
        self.change(room, seq, at, Changed::Deleted);
    }

    fn change(&self, room: RoomCode, seq: u64, at: Timestamp, to: Changed) {
        self.send(Command::Change(Change { room, seq, at, to }));
    }

    /// The seqs of deleted messages with `after < seq < before`: a replay reading storage tells
    /// those apart from messages it could not read.
    pub async fn deleted(
        &self,
        room: &RoomCode,
        range: (u64, u64),
    ) -> Result<Vec<u64>, StorageError> {
        Ok(self.database.deleted(room, range).await?)
    }

    pub async fn set_rules(&self, room: &RoomCode, rules: RoomRules) -> Result<(), StorageError> {
        Ok(self.database.set_rules(room, rules).await?)
    }

    pub async fn set_owner_account(
        &self,
        room: &RoomCode,
        account: UserId,
    ) -> Result<(), StorageError> {
        Ok(self.database.set_owner_account(room, account).await?)
    }

    pub async fn set_muted(
        &self,
        room: &RoomCode,
        user: UserId,
        muted: bool,
    ) -> Result<(), StorageError> {
        Ok(self.database.set_muted(room, user, muted).await?)
    }

    pub async fn set_moderator(
        &self,
        room: &RoomCode,
        user: UserId,
        moderator: bool,
    ) -> Result<(), StorageError> {
        Ok(self.database.set_moderator(room, user, moderator).await?)
    }

    pub async fn set_password(
        &self,
        room: &RoomCode,
        password: Option<&PasswordHash>,
    ) -> Result<(), StorageError> {
        Ok(self.database.set_password(room, password).await?)
    }

    pub async fn hand_over(
        &self,
        room: &RoomCode,
        to: UserId,
        previous: Option<UserId>,
    ) -> Result<(), StorageError> {
        Ok(self.database.hand_over(room, to, previous).await?)
    }

    pub async fn ban(&self, room: &RoomCode, ban: &Ban) -> Result<(), StorageError> {
        Ok(self.database.ban(room, ban).await?)
    }

    pub async fn unban(&self, room: &RoomCode, user: UserId) -> Result<(), StorageError> {
        Ok(self.database.unban(room, user).await?)
    }

    pub async fn add_owner_claim(&self, room: &RoomCode, user: UserId) -> Result<(), StorageError> {
        Ok(self.database.add_owner_claim(room, user).await?)
    }

    pub async fn log_moderation(
        &self,
        room: &RoomCode,
        entry: &LogEntry,
    ) -> Result<(), StorageError> {
        Ok(self.database.log_moderation(room, entry).await?)
    }

    pub async fn moderation_log(&self, room: &RoomCode) -> Result<Vec<LogEntry>, StorageError> {
        Ok(self.database.moderation_log(room).await?)
    }

    /// Stores a new account; false if its username (by key) is taken.
    pub async fn create_account(
        &self,
        account: &Account,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        let insert = self
            .database
            .create_account(account, password_hash, Timestamp::now());
        Ok(match &self.usernames {
            Some(usernames) => usernames.adding(account.username.key(), insert).await?,
            None => insert.await?,
        })
    }

    pub async fn account_by_key(
        &self,
        key: &AccountKey,
    ) -> Result<Option<StoredAccount>, StorageError> {
        Ok(self.database.account_by_key(key).await?)
    }

    /// Whether an account has a username with this key.
    pub async fn is_username(&self, key: &AccountKey) -> Result<bool, StorageError> {
        match &self.usernames {
            Some(usernames) => Ok(usernames.contains(key)),
            None => Ok(self.database.is_username(key).await?),
        }
    }

    pub async fn account_by_id(&self, id: UserId) -> Result<Option<StoredAccount>, StorageError> {
        Ok(self.database.account_by_id(id).await?)
    }

    pub async fn set_password_hash(
        &self,
        id: UserId,
        password_hash: &str,
    ) -> Result<(), StorageError> {
        Ok(self.database.set_password_hash(id, password_hash).await?)
    }

    pub async fn delete_account(&self, account: &Account) -> Result<(), StorageError> {
        let delete = self.database.delete_account(account.id);
        match &self.usernames {
            Some(usernames) => usernames.removing(&account.username.key(), delete).await?,
            None => delete.await?,
        }
        Ok(())
    }

    /// Records a session of `account` under `digest`, valid until `expires`.
    pub async fn start_session(
        &self,
        digest: &TokenDigest,
        account: UserId,
        expires: Timestamp,
    ) -> Result<(), StorageError> {
        Ok(self
            .database
            .start_session(digest, account, Timestamp::now(), expires)
            .await?)
    }

    /// The account a live session is signed in as.
    pub async fn session(&self, digest: &TokenDigest) -> Result<Option<Account>, StorageError> {
        Ok(self.database.session(digest, Timestamp::now()).await?)
    }

    /// Which of `digests` are live sessions.
    pub async fn live_sessions(
        &self,
        digests: &[TokenDigest],
    ) -> Result<Vec<TokenDigest>, StorageError> {
        Ok(self
            .database
            .live_sessions(digests, Timestamp::now())
            .await?)
    }

    pub async fn end_session(&self, digest: &TokenDigest) -> Result<(), StorageError> {
        Ok(self.database.end_session(digest).await?)
    }

    pub async fn end_other_sessions(
        &self,
        account: UserId,
        keep: Option<&TokenDigest>,
    ) -> Result<(), StorageError> {
        Ok(self.database.end_other_sessions(account, keep).await?)
    }

    pub async fn delete_expired_sessions(&self) -> Result<u64, StorageError> {
        Ok(self
            .database
            .delete_expired_sessions(Timestamp::now())
            .await?)
    }

    pub async fn ping(&self) -> Result<(), StorageError> {
        Ok(self.database.ping().await?)
    }

    pub fn health(&self) -> HealthReport {
        self.health.report()
    }
}
