//! The SQL: one code path for SQLite and PostgreSQL through sqlx's Any driver, for everything but
//! the busy writes (a SQLite file's in `sqlite_file.rs`, PostgreSQL's in `postgres_writes.rs`).
//!
//! Placeholders are written `$1`, `$2`, … in order of appearance: PostgreSQL needs them numbered and
//! SQLite reads `$N` as a named parameter, so `?` would break PostgreSQL and reordering would break SQLite.
//! The one exception is the multi-row message insert, SQLite's only, which writes `?` (see
//! [`sqlite_message_insert`]).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{bail, Context};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};
use uuid::Uuid;

use super::batch::{seq_param, Batch, Changed};
use crate::domain::{
    ChatMessage, DisplayName, MessageLifetime, MessageRef, MessageText, Ownership, PasswordHash,
    RoomCode, RoomRules, Timestamp, TokenDigest, User, UserId,
};

/// How long a query waits for a free connection before the attempt counts as a failure.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// SQLite waits this long on a lock held by another connection or process before giving up.
pub(super) const SQLITE_BUSY_TIMEOUT_MS: u32 = 2_000;
/// The `PRAGMA`s every SQLite connection is set up with, the pool's and the writer's own
/// (`sqlite_file.rs`) alike. NORMAL sync is durable across process crashes (only an OS crash can
/// lose the last commits) at a fraction of FULL's cost. Statement journals (each multi-row INSERT
/// keeps one, to undo itself) go to memory, not to a temporary file: a page written there was a pwrite.
pub(super) const SQLITE_SETTINGS: [(&str, &str); 2] =
    [("synchronous", "NORMAL"), ("temp_store", "MEMORY")];

/// Rows per multi-row message insert: 800 bound parameters, well under SQLite's limit of 32,766.
const INSERT_CHUNK: usize = 100;
/// Columns of the `messages` table: the values `write` binds for each message.
const MESSAGE_COLUMNS: usize = 8;

#[derive(Clone)]
pub struct Database {
    pub(super) pool: AnyPool,
    dialect: Dialect,
    /// The insert of a full chunk, made once: building its 800 placeholders for every chunk was a
    /// fifth of the storage writer's CPU at 30,000 messages/s.
    insert_full_chunk: Arc<str>,
    /// Why the last new connection could not be set up, until one is. sqlx retries a failed set-up
    /// until the acquire times out and then reports only the timeout; this keeps the cause.
    set_up_failure: Arc<Mutex<Option<String>>>,
}

/// How the database numbers a statement's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// `$1`, `$2`, …: the only form PostgreSQL takes.
    Postgres,
    /// `$1`, `$2`, … read as names, and `?` (see [`sqlite_message_insert`]).
    Sqlite,
}

impl Dialect {
    fn of(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            Self::Sqlite
        } else {
            Self::Postgres
        }
    }

    /// The larger of two values: SQLite's two-argument `MAX`, PostgreSQL's `GREATEST`.
    fn greatest(self) -> &'static str {
        match self {
            Self::Postgres => "GREATEST",
            Self::Sqlite => "MAX",
        }
    }
}

/// SQLite's statement that stores `rows` messages, their eight columns bound by position: sqlx
/// looks up each parameter's name as it binds, and SQLite finds the name of a numbered one (`$N`)
/// by a linear search, so binding the 800 parameters of a 100-row insert took 320,000 steps
/// (measured at 12,000 messages/s, `sqlite3_bind_parameter_name` alone was 9 % of the server's
/// CPU, half of SQLite's thread). An anonymous `?` has no name to find.
pub(super) fn sqlite_message_insert(rows: usize) -> String {
    let row = format!("({})", ["?"; MESSAGE_COLUMNS].join(", "));
    format!(
        "INSERT INTO messages (room, seq, id, sender_id, sender_name, text, ts, ref) VALUES {} \
         ON CONFLICT (room, seq) DO NOTHING",
        vec![row; rows].join(", ")
    )
}

/// What storage knows about a room, enough to bring its lobby back.
pub struct StoredRoom {
    pub created_at: Timestamp,
    /// The highest seq given, as far as storage knows: 0 for a room without messages.
    pub last_seq: u64,
    /// Whether the process that last had the room open closed it cleanly, writing `last_seq`
    /// after all its messages. A process that died may have given seqs past `last_seq`.
    pub closed: bool,
    /// Set for rooms whose messages disappear.
    pub lifetime: Option<MessageLifetime>,
    pub ownership: Ownership,
}

/// Which end of a range of messages a limited read keeps.
#[derive(Debug, Clone, Copy)]
pub enum Keep {
    Oldest,
    Newest,
}

/// A message's new text: `$1` the text, `$2` when, `$3` the room, `$4` the seq.
pub(super) const EDIT_MESSAGE: &str =
    "UPDATE messages SET text = $1, edited_at = $2 WHERE room = $3 AND seq = $4";
/// A message's tombstone: `$1` when, `$2` the room, `$3` the seq. It keeps the seq (and the
/// sender's id, which names nobody) and nothing said.
pub(super) const DELETE_MESSAGE: &str =
    "UPDATE messages SET text = '', sender_name = '', ref = NULL, deleted_at = $1 \
     WHERE room = $2 AND seq = $3";
/// A room's last activity moved forward: `$1` when, `$2` the room, `$3` when again.
pub(super) const RECORD_ACTIVITY: &str =
    "UPDATE rooms SET last_activity = $1 WHERE code = $2 AND last_activity < $3";
/// Where a room was closed: `$1` the seq, `$2` the room.
pub(super) const CLOSE_ROOM: &str = "UPDATE rooms SET closed_seq = $1 WHERE code = $2";

impl Database {
    /// A pool for `url` (`sqlite:…` or `postgres://…`) that connects when it is first used:
    /// opening one needs no server yet. `migrate` brings the schema up to date.
    pub fn open(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let url = with_create_mode(url);
        let in_memory = url.contains(":memory:");
        let set_up_failure = Arc::new(Mutex::new(None));
        let failure = Arc::clone(&set_up_failure);
        let pool = AnyPoolOptions::new()
            // Each connection to `sqlite::memory:` is a database of its own: keep exactly one, forever.
            .max_connections(if in_memory { 1 } else { 8 })
            .min_connections(u32::from(in_memory))
            .idle_timeout((!in_memory).then_some(Duration::from_secs(600)))
            .max_lifetime((!in_memory).then_some(Duration::from_secs(1800)))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(move |connection, _| {
                let failure = Arc::clone(&failure);
                Box::pin(async move {
                    let set_up = set_up(connection).await;
                    *failure.lock().unwrap_or_else(PoisonError::into_inner) =
                        set_up.as_ref().err().map(ToString::to_string);
                    set_up
                })
            })
            .connect_lazy(&url)
            .with_context(|| format!("cannot open the database at {}", redact(&url)))?;
        let dialect = Dialect::of(&url);
        Ok(Self {
            pool,
            dialect,
            insert_full_chunk: sqlite_message_insert(INSERT_CHUNK).into(),
            set_up_failure,
        })
    }

    /// Connects (if no connection is open yet) and brings the schema up to date.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        sqlx::migrate!("src/storage/migrations")
            .run(&self.pool)
            .await
            .context("cannot bring the database schema up to date")
    }

    pub fn is_postgres(&self) -> bool {
        self.dialect == Dialect::Postgres
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        self.pool
            .execute("SELECT 1")
            .await
            .context("the database does not answer")?;
        Ok(())
    }

    pub async fn room(&self, code: &RoomCode) -> anyhow::Result<Option<StoredRoom>> {
        // The seq a room has reached: its numbering's record (shared mode, expiry), its newest
        // message, or where it was closed.
        let sql = format!(
            "SELECT created_at, expire_after_ms, owner_token_digest, owner_account, locked, accounts_only, password_hash, \
             CAST(CASE WHEN closed_seq IS NULL THEN 0 ELSE 1 END AS BIGINT) AS closed, \
             {greatest}(last_seq, COALESCE(closed_seq, 0), COALESCE((SELECT MAX(seq) FROM messages WHERE room = $1), 0)) AS last_seq \
             FROM rooms WHERE code = $2",
            greatest = self.dialect.greatest()
        );
        let row = sqlx::query(&sql)
            .bind(code.as_str())
            .bind(code.as_str())
            .fetch_optional(&self.pool)
            .await
            .context("failed to read a room")?;
        let Some(row) = row else {
            return Ok(None);
        };
        let created_at: i64 = row.try_get("created_at")?;
        let last_seq: i64 = row.try_get("last_seq")?;
        let expire_after: Option<i64> = row.try_get("expire_after_ms")?;
        let token: Option<String> = row.try_get("owner_token_digest")?;
        let account: Option<String> = row.try_get("owner_account")?;
        let closed: i64 = row.try_get("closed")?;
        let locked: i64 = row.try_get("locked")?;
        let accounts_only: i64 = row.try_get("accounts_only")?;
        let password: Option<String> = row.try_get("password_hash")?;
        let account = account
            .map(|id| Uuid::parse_str(&id).map(UserId::from_uuid))
            .transpose()
            .context("a room's owner account is no UUID")?;
        // Read once per room load, not per message: a second query keeps the first one simple.
        let claimed = self.owner_claims(code).await?;
        let muted = self.mutes(code).await?;
        let moderators = self.moderators(code).await?;
        let bans = self.bans(code).await?;
        Ok(Some(StoredRoom {
            ownership: Ownership {
                token: token.map(TokenDigest::from_stored),
                account,
                claimed,
                muted,
                moderators,
                bans,
                password: password.map(PasswordHash::from_stored),
                rules: RoomRules {
                    locked: locked != 0,
                    accounts_only: accounts_only != 0,
                    password: false,
                },
            },
            created_at: Timestamp::from_millis(created_at)
                .context("a room's created_at is out of range")?,
            last_seq: u64::try_from(last_seq).context("a negative seq is stored")?,
            closed: closed != 0,
            lifetime: expire_after.and_then(MessageLifetime::from_millis),
        }))
    }

    /// Stores a new room; false if a room with that code exists (the primary key decides).
    pub async fn create_room(
        &self,
        code: &RoomCode,
        created_at: Timestamp,
        lifetime: Option<MessageLifetime>,
        ownership: &Ownership,
    ) -> anyhow::Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO rooms (code, created_at, last_activity, expire_after_ms, owner_token_digest, owner_account) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (code) DO NOTHING",
        )
        .bind(code.as_str())
        .bind(created_at.as_millis())
        .bind(created_at.as_millis())
        .bind(lifetime.map(MessageLifetime::as_millis))
        .bind(ownership.token.as_ref().map(|t| t.as_str().to_owned()))
        .bind(ownership.account.map(|id| id.to_string()))
        .execute(&self.pool)
        .await
        .context("failed to store a room")?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Records that a process has `room` open, numbering its messages: closed no more.
    pub async fn mark_open(&self, room: &RoomCode) -> anyhow::Result<()> {
        sqlx::query("UPDATE rooms SET closed_seq = NULL WHERE code = $1")
            .bind(room.as_str())
            .execute(&self.pool)
            .await
            .context("failed to mark a room open")?;
        Ok(())
    }

    /// Messages with `after < seq < before` sent at `not_before` or later, at most `limit`, in seq
    /// order, keeping the `keep` end.
    pub async fn messages(
        &self,
        room: &RoomCode,
        range: (u64, u64),
        not_before: Option<Timestamp>,
        limit: usize,
        keep: Keep,
    ) -> anyhow::Result<Vec<ChatMessage>> {
        let (after, before) = range;
        let order = match keep {
            Keep::Oldest => "ASC",
            Keep::Newest => "DESC",
        };
        let sql = format!(
            // Whether the sender is an account is not stored with each message (the hot write path
            // stays as it was) but read off the accounts table: true while the account exists.
            "SELECT seq, id, sender_id, sender_name, text, ts, ref, edited_at, \
             CAST(CASE WHEN EXISTS (SELECT 1 FROM accounts WHERE accounts.id = messages.sender_id) \
             THEN 1 ELSE 0 END AS BIGINT) AS sender_account FROM messages \
             WHERE room = $1 AND seq > $2 AND seq < $3 AND ts >= $4 AND deleted_at IS NULL \
             ORDER BY seq {order} LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(room.as_str())
            .bind(seq_param(after))
            .bind(seq_param(before))
            .bind(not_before.map_or(i64::MIN, Timestamp::as_millis))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .context("failed to read messages")?;
        let mut messages = rows
            .iter()
            .map(|row| message_from_row(room, row))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if let Keep::Newest = keep {
            messages.reverse();
        }
        Ok(messages)
    }

    /// The seqs of the deleted messages (tombstones) with `after < seq < before`, in order.
    pub async fn deleted(&self, room: &RoomCode, range: (u64, u64)) -> anyhow::Result<Vec<u64>> {
        let (after, before) = range;
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT seq FROM messages WHERE room = $1 AND seq > $2 AND seq < $3 \
             AND deleted_at IS NOT NULL ORDER BY seq",
        )
        .bind(room.as_str())
        .bind(seq_param(after))
        .bind(seq_param(before))
        .fetch_all(&self.pool)
        .await
        .context("failed to read deleted messages")?;
        rows.into_iter()
            .map(|(seq,)| u64::try_from(seq).context("a negative seq in storage"))
            .collect()
    }

    /// Stores a batch in one transaction, through the pool: `sqlite::memory:`'s writes, which only
    /// the pool's one connection can reach. Writing a row that is already there does nothing, so a
    /// batch whose commit was not acknowledged can be retried.
    pub async fn write(&self, batch: &Batch) -> anyhow::Result<()> {
        self.discarded_on_failure(async |connection| self.write_on(connection, batch).await)
            .await
    }

    async fn write_on(&self, connection: &mut AnyConnection, batch: &Batch) -> anyhow::Result<()> {
        let mut tx = connection
            .begin()
            .await
            .context("cannot start a transaction")?;
        let messages: Vec<&ChatMessage> = batch.messages().collect();
        self.insert(&mut tx, &messages).await?;
        for change in batch.changes() {
            let room = change.room.as_str();
            match &change.to {
                Changed::Text(text) => sqlx::query(EDIT_MESSAGE).bind(text.as_str()),
                Changed::Deleted => sqlx::query(DELETE_MESSAGE),
            }
            .bind(change.at.as_millis())
            .bind(room)
            .bind(seq_param(change.seq))
            .execute(&mut *tx)
            .await
            .context("failed to store a change to a message")?;
        }
        for (code, at) in &batch.activity {
            sqlx::query(RECORD_ACTIVITY)
                .bind(at.as_millis())
                .bind(code.as_str())
                .bind(at.as_millis())
                .execute(&mut *tx)
                .await
                .context("failed to update a room's last activity")?;
        }
        for (code, seq) in batch.closes() {
            sqlx::query(CLOSE_ROOM)
                .bind(seq_param(seq))
                .bind(code.as_str())
                .execute(&mut *tx)
                .await
                .context("failed to store where a room was closed")?;
        }
        tx.commit().await.context("failed to commit")?;
        Ok(())
    }

    /// Runs a write on a connection of its own, and closes that connection if the write fails
    /// rather than pooling it again. A COMMIT that fails (SQLite on a full disk) can leave the
    /// transaction open while sqlx counts it as ended; the next batch on that connection would
    /// then begin a savepoint inside it, and its "commit" would store nothing, ever.
    async fn discarded_on_failure<T>(
        &self,
        write: impl AsyncFnOnce(&mut AnyConnection) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut connection = self
            .pool
            .acquire()
            .await
            .map_err(|err| self.unreachable(err))?;
        let written = write(&mut connection).await;
        if written.is_err() {
            connection.close_on_drop();
        }
        written
    }

    /// A failed acquire, with the reason new connections fail to set up if that is what it is.
    fn unreachable(&self, err: sqlx::Error) -> anyhow::Error {
        let cause = self
            .set_up_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let err = anyhow::Error::new(err);
        match cause {
            Some(cause) => err.context(format!(
                "cannot reach the database: new connections fail to set up: {cause}"
            )),
            None => err.context("cannot reach the database"),
        }
    }

    /// Multi-row inserts of `messages`, in chunks that stay under SQLite's limit on bound
    /// parameters. Returns how many rows were new.
    async fn insert(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        messages: &[&ChatMessage],
    ) -> anyhow::Result<u64> {
        let mut inserted = 0;
        for chunk in messages.chunks(INSERT_CHUNK) {
            let partial;
            let sql = if chunk.len() == INSERT_CHUNK {
                &self.insert_full_chunk
            } else {
                partial = sqlite_message_insert(chunk.len());
                partial.as_str()
            };
            let mut query = sqlx::query(sql);
            for message in chunk {
                query = query
                    .bind(message.room.as_str())
                    .bind(seq_param(message.seq))
                    .bind(message.id.to_string())
                    .bind(message.from.id.to_string())
                    .bind(message.from.name.as_str())
                    .bind(message.text.as_str())
                    .bind(message.ts.as_millis())
                    .bind(message.reference.as_ref().map(|r| r.as_str().to_owned()));
            }
            inserted += query
                .execute(&mut **tx)
                .await
                .context("failed to store messages")?
                .rows_affected();
        }
        Ok(inserted)
    }

    /// The `last_seq` of each of `rooms` that exists: how far each room's numbering has gone.
    pub async fn last_seqs(&self, rooms: &[RoomCode]) -> anyhow::Result<Vec<(RoomCode, u64)>> {
        let mut found = Vec::with_capacity(rooms.len());
        for chunk in rooms.chunks(INSERT_CHUNK) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT code, last_seq FROM rooms WHERE code IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for room in chunk {
                query = query.bind(room.as_str());
            }
            for row in query
                .fetch_all(&self.pool)
                .await
                .context("failed to read rooms' last seqs")?
            {
                let code: String = row.try_get("code")?;
                let last: i64 = row.try_get("last_seq")?;
                if let (Ok(code), Ok(last)) = (RoomCode::parse(&code), u64::try_from(last)) {
                    found.push((code, last));
                }
            }
        }
        Ok(found)
    }

    /// Deletes a room's messages sent before `cutoff`; returns the highest seq deleted, if any.
    pub async fn expire(&self, room: &RoomCode, cutoff: Timestamp) -> anyhow::Result<Option<u64>> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("cannot start a transaction")?;
        let row =
            sqlx::query("SELECT MAX(seq) AS through FROM messages WHERE room = $1 AND ts < $2")
                .bind(room.as_str())
                .bind(cutoff.as_millis())
                .fetch_one(&mut *tx)
                .await
                .context("failed to find expired messages")?;
        let through: Option<i64> = row.try_get("through")?;
        sqlx::query("DELETE FROM messages WHERE room = $1 AND ts < $2")
            .bind(room.as_str())
            .bind(cutoff.as_millis())
            .execute(&mut *tx)
            .await
            .context("failed to delete expired messages")?;
        // The seqs deleted stay given: a room that empties by expiry and is then loaded after a
        // crash must not number from 1 again.
        if let Some(through) = through {
            let raise = format!(
                "UPDATE rooms SET last_seq = {}(last_seq, $1) WHERE code = $2",
                self.dialect.greatest()
            );
            sqlx::query(&raise)
                .bind(through)
                .bind(room.as_str())
                .execute(&mut *tx)
                .await
                .context("failed to record the expired messages' seqs")?;
        }
        tx.commit()
            .await
            .context("failed to commit expired messages' deletion")?;
        Ok(through.and_then(|seq| u64::try_from(seq).ok()))
    }

    /// Rooms whose last activity is older than `cutoff`.
    pub async fn inactive_rooms(&self, cutoff: Timestamp) -> anyhow::Result<Vec<RoomCode>> {
        let rows = sqlx::query("SELECT code FROM rooms WHERE last_activity < $1")
            .bind(cutoff.as_millis())
            .fetch_all(&self.pool)
            .await
            .context("failed to list inactive rooms")?;
        rows.iter()
            .map(|row| {
                let code: String = row.try_get("code")?;
                RoomCode::parse(&code)
                    .map_err(|invalid| anyhow::anyhow!("stored room code {code:?}: {invalid}"))
            })
            .collect()
    }

    /// Deletes a room and all its messages.
    pub async fn delete_room(&self, code: &RoomCode) -> anyhow::Result<()> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("cannot start a transaction")?;
        for sql in [
            "DELETE FROM messages WHERE room = $1",
            "DELETE FROM moderation_log WHERE room = $1",
            "DELETE FROM room_owner_claims WHERE room = $1",
            "DELETE FROM room_mutes WHERE room = $1",
            "DELETE FROM room_moderators WHERE room = $1",
            "DELETE FROM room_bans WHERE room = $1",
            "DELETE FROM rooms WHERE code = $1",
        ] {
            sqlx::query(sql)
                .bind(code.as_str())
                .execute(&mut *tx)
                .await
                .context("failed to delete a room")?;
        }
        tx.commit()
            .await
            .context("failed to commit a room's deletion")?;
        Ok(())
    }
}

/// Sets a new connection up: for SQLite, the journal, durability and lock waits Hubbub relies on.
async fn set_up(connection: &mut AnyConnection) -> Result<(), sqlx::Error> {
    if connection.backend_name() == "SQLite" {
        // WAL lets readers work while the writer commits; it is the file's own mode once set.
        connection.execute("PRAGMA journal_mode = WAL").await?;
        for (name, value) in SQLITE_SETTINGS {
            let setting = format!("PRAGMA {name} = {value}");
            connection.execute(setting.as_str()).await?;
        }
        let busy = format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}");
        connection.execute(busy.as_str()).await?;
    }
    Ok(())
}

fn message_from_row(room: &RoomCode, row: &AnyRow) -> anyhow::Result<ChatMessage> {
    let text = |column: &str| -> anyhow::Result<String> { Ok(row.try_get::<String, _>(column)?) };
    let seq: i64 = row.try_get("seq")?;
    let ts: i64 = row.try_get("ts")?;
    let reference: Option<String> = row.try_get("ref")?;
    let account: i64 = row.try_get("sender_account")?;
    let edited_at: Option<i64> = row.try_get("edited_at")?;
    let invalid = |what: &str| anyhow::anyhow!("a stored message has an invalid {what}");
    Ok(ChatMessage {
        id: Uuid::parse_str(&text("id")?).map_err(|_| invalid("id"))?,
        seq: u64::try_from(seq).map_err(|_| invalid("seq"))?,
        room: room.clone(),
        from: User {
            id: Uuid::parse_str(&text("sender_id")?)
                .map(UserId::from_uuid)
                .map_err(|_| invalid("sender id"))?,
            name: DisplayName::parse(&text("sender_name")?).map_err(|_| invalid("sender name"))?,
            account: account != 0,
        },
        text: MessageText::parse(&text("text")?).map_err(|_| invalid("text"))?,
        ts: Timestamp::from_millis(ts).ok_or_else(|| invalid("timestamp"))?,
        reference: reference
            .map(MessageRef::parse)
            .transpose()
            .map_err(|_| invalid("ref"))?,
        edited_at: edited_at
            .map(|at| Timestamp::from_millis(at).ok_or_else(|| invalid("edit time")))
            .transpose()?,
    })
}

/// SQLite opens a missing file only when asked to create it.
fn with_create_mode(url: &str) -> String {
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}mode=rwc")
}

/// A database URL fit for logs: the password, if any, replaced.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Checks that a URL names a backend this build speaks, before anything tries to connect.
pub fn check_url(url: &str) -> anyhow::Result<()> {
    if url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://")
    {
        Ok(())
    } else {
        bail!(
            "--database-url must start with sqlite: or postgres://, not {}",
            redact(url)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::batch::Command;
    use super::*;

    #[test]
    fn sqlite_files_are_created_when_missing() {
        assert_eq!(
            with_create_mode("sqlite:hubbub.db"),
            "sqlite:hubbub.db?mode=rwc"
        );
        assert_eq!(
            with_create_mode("sqlite:a.db?cache=shared"),
            "sqlite:a.db?cache=shared&mode=rwc"
        );
        assert_eq!(with_create_mode("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(with_create_mode("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redact("postgres://ann:secret@db/hubbub"),
            "postgres://ann:***@db/hubbub"
        );
        assert_eq!(redact("sqlite:hubbub.db"), "sqlite:hubbub.db");
    }

    /// Two full chunks, which share one statement made at connect, and a partial one, made for it.
    #[tokio::test]
    async fn a_batch_of_several_chunks_is_stored_whole_and_in_order() {
        let database = Database::open("sqlite::memory:").unwrap();
        database.migrate().await.unwrap();
        let room = RoomCode::generate();
        let from = User::guest(UserId::random(), DisplayName::parse("Ann").unwrap());
        let count = 2 * INSERT_CHUNK + 50;
        let sent: Vec<ChatMessage> = (1..=count as u64)
            .map(|seq| ChatMessage {
                id: Uuid::new_v4(),
                seq,
                room: room.clone(),
                from: from.clone(),
                text: MessageText::parse(&format!("message {seq}")).unwrap(),
                ts: Timestamp::now(),
                reference: None,
                edited_at: None,
            })
            .collect();
        let settled = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let batch = Batch {
            commands: sent
                .iter()
                .map(|message| Command::Persist {
                    message: message.clone(),
                    settled: Arc::clone(&settled),
                })
                .collect(),
            activity: Vec::new(),
        };
        database.write(&batch).await.unwrap();

        let stored = database
            .messages(&room, (0, u64::MAX), None, count + 1, Keep::Oldest)
            .await
            .unwrap();
        let texts = |messages: &[ChatMessage]| -> Vec<(u64, String)> {
            messages
                .iter()
                .map(|m| (m.seq, m.text.as_str().to_owned()))
                .collect()
        };
        assert_eq!(texts(&stored), texts(&sent));
    }

    #[test]
    fn only_sqlite_and_postgres_urls_are_accepted() {
        assert!(check_url("sqlite:x.db").is_ok());
        assert!(check_url("postgres://localhost/test").is_ok());
        assert!(check_url("mysql://localhost/test").is_err());
    }
}
