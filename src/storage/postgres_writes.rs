//! PostgreSQL's writes of messages, the writer's batches and the sequencer's numbering, on sqlx's
//! native driver: each batch's messages travel as eight arrays bound to one prepared statement.
//!
//! Through sqlx's Any driver (which binds no arrays) a batch went as 100-row inserts of 800
//! parameters, each converted into Any's values and again into PostgreSQL's, and numbering took
//! five round trips (BEGIN, the row locks, the `last_seq` update, the insert, COMMIT). Here a batch
//! of messages is one statement, whatever its size, and numbering is one statement too: a single
//! statement is its own transaction. Everything else (reads, rooms, accounts) stays on the Any pool.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Row};

use super::batch::{seq_param, Batch, Changed};
use super::database::{CLOSE_ROOM, DELETE_MESSAGE, EDIT_MESSAGE};
use crate::domain::{ChatMessage, RoomCode};

/// One connection for the writer and one for the sequencer, which each run one write at a time.
const CONNECTIONS: u32 = 2;
/// How long a write waits for a connection (a new one: the pool keeps them) before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Stores `messages`, the columns bound as arrays in `$1`–`$8`. Writing a row that is already
/// there does nothing, so a batch whose commit was not acknowledged can be retried.
const INSERT_MESSAGES: &str = "INSERT INTO messages (room, seq, id, sender_id, sender_name, text, ts, ref) \
     SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::text[]) \
     ON CONFLICT (room, seq) DO NOTHING";

/// Moves rooms' last activity forward: `$1` the rooms, `$2` when, one per room.
const RECORD_ACTIVITY: &str = "UPDATE rooms SET last_activity = a.at \
     FROM UNNEST($1::text[], $2::int8[]) AS a(code, at) \
     WHERE rooms.code = a.code AND rooms.last_activity < a.at";

/// Numbers and stores messages in one statement. `$1` the rooms, in code order, and `$2` how many
/// messages each gets; `$3` the newest message's time; `$4`–`$11` the messages' columns, with each
/// message's place among its room's messages (1, 2, …) where the seq goes.
///
/// The rooms' rows are locked first, in code order (the materialized CTE sorts before it locks), so
/// two instances numbering overlapping rooms never wait on each other in a circle; the lock holds
/// until the statement commits, so instances take turns on a room and get consecutive seqs. The
/// counter is raised past the newest stored message too: a database that one instance wrote before
/// shared mode has messages beyond a `last_seq` nobody raised. A room that no longer exists returns
/// no row and stores nothing. A seq already taken (impossible under the lock) fails the whole
/// statement, so nothing of the batch is kept and its seqs are not used up.
const APPEND_MESSAGES: &str = "WITH locked AS MATERIALIZED ( \
         SELECT code FROM rooms WHERE code = ANY($1::text[]) ORDER BY code FOR UPDATE \
     ), numbered AS ( \
         UPDATE rooms SET \
             last_seq = GREATEST(rooms.last_seq, COALESCE((SELECT MAX(seq) FROM messages WHERE room = rooms.code), 0)) + counts.n, \
             last_activity = GREATEST(rooms.last_activity, $3) \
         FROM locked JOIN UNNEST($1::text[], $2::int8[]) AS counts(code, n) ON counts.code = locked.code \
         WHERE rooms.code = locked.code \
         RETURNING rooms.code, rooms.last_seq - counts.n AS before \
     ), stored AS ( \
         INSERT INTO messages (room, seq, id, sender_id, sender_name, text, ts, ref) \
         SELECT m.room, numbered.before + m.nth, m.id, m.sender_id, m.sender_name, m.text, m.ts, m.ref \
         FROM UNNEST($4::text[], $5::int8[], $6::text[], $7::text[], $8::text[], $9::text[], $10::int8[], $11::text[]) \
             AS m(room, nth, id, sender_id, sender_name, text, ts, ref) \
         JOIN numbered ON numbered.code = m.room \
     ) \
     SELECT code, before FROM numbered";

/// The writer's and the sequencer's pool. It must be opened, and used, on the storage thread's
/// runtime: its connections' sockets belong to the runtime that opened them.
#[derive(Clone)]
pub struct PostgresWrites {
    pool: PgPool,
}

impl PostgresWrites {
    /// A pool for `url` that connects when first used.
    pub fn open(url: &str) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Duration::from_secs(600))
            .max_lifetime(Duration::from_secs(1800))
            .connect_lazy(url)
            .context("cannot open the database for writing")?;
        Ok(Self { pool })
    }

    /// Stores a batch atomically: its messages in one statement, and in one transaction with them
    /// any edits, deletions, activity and closes it carries.
    pub async fn write(&self, batch: &Batch) -> anyhow::Result<()> {
        self.discarded_on_failure(async |connection| store(connection, batch).await)
            .await
    }

    /// Numbers and stores new messages (shared mode): each room's `last_seq` is raised by its count
    /// of messages, see [`APPEND_MESSAGES`]. Gives each message its seq, in the order given, and
    /// returns the rooms that no longer exist, whose messages are neither numbered nor stored.
    pub async fn append(&self, messages: &mut [ChatMessage]) -> anyhow::Result<Vec<RoomCode>> {
        self.discarded_on_failure(async |connection| append(connection, messages).await)
            .await
    }

    /// Runs a write on a pooled connection, and closes that connection if the write fails rather
    /// than pooling it again: whatever broke it (a server restart, a cut network) does not come back
    /// with the next batch.
    async fn discarded_on_failure<T>(
        &self,
        write: impl AsyncFnOnce(&mut PgConnection) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut connection = self
            .pool
            .acquire()
            .await
            .context("cannot reach the database")?;
        let written = write(&mut connection).await;
        if written.is_err() {
            connection.close_on_drop();
        }
        written
    }
}

async fn store(connection: &mut PgConnection, batch: &Batch) -> anyhow::Result<()> {
    let messages = Columns::of(batch.messages().map(|m| (m, seq_param(m.seq))));
    let only_messages = batch.activity.is_empty()
        && batch.changes().next().is_none()
        && batch.closes().next().is_none();
    if only_messages {
        // One statement is its own transaction: no BEGIN and COMMIT round trips.
        return messages.insert(connection).await;
    }
    let mut tx = connection
        .begin()
        .await
        .context("cannot start a transaction")?;
    messages.insert(&mut tx).await?;
    for change in batch.changes() {
        match &change.to {
            Changed::Text(text) => sqlx::query(EDIT_MESSAGE).bind(text.as_str()),
            Changed::Deleted => sqlx::query(DELETE_MESSAGE),
        }
        .bind(change.at.as_millis())
        .bind(change.room.as_str())
        .bind(seq_param(change.seq))
        .execute(&mut *tx)
        .await
        .context("failed to store a change to a message")?;
    }
    if !batch.activity.is_empty() {
        let (rooms, at): (Vec<&str>, Vec<i64>) = batch
            .activity
            .iter()
            .map(|(code, at)| (code.as_str(), at.as_millis()))
            .unzip();
        sqlx::query(RECORD_ACTIVITY)
            .bind(rooms)
            .bind(at)
            .execute(&mut *tx)
            .await
            .context("failed to update rooms' last activity")?;
    }
    for (code, seq) in batch.closes() {
        sqlx::query(CLOSE_ROOM)
            .bind(seq_param(seq))
            .bind(code.as_str())
            .execute(&mut *tx)
            .await
            .context("failed to store where a room was closed")?;
    }
    tx.commit().await.context("failed to commit")
}

async fn append(
    connection: &mut PgConnection,
    messages: &mut [ChatMessage],
) -> anyhow::Result<Vec<RoomCode>> {
    // Each message's place among its room's: the seq it gets is the room's counter plus that.
    // A BTreeMap iterates in code order, the order the rooms are listed (and locked) in.
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    let places: Vec<i64> = messages
        .iter()
        .map(|message| {
            let count = counts.entry(message.room.as_str()).or_default();
            *count += 1;
            *count
        })
        .collect();
    let latest = messages.iter().map(|m| m.ts.as_millis()).max().unwrap_or(0);
    let (rooms, numbers): (Vec<&str>, Vec<i64>) = counts.into_iter().unzip();
    let rows = Columns::of(messages.iter().zip(places.iter().copied()))
        .bind_to(
            sqlx::query(APPEND_MESSAGES)
                .bind(rooms)
                .bind(numbers)
                .bind(latest),
        )
        .fetch_all(&mut *connection)
        .await
        .context("failed to number messages")?;
    let mut before: BTreeMap<RoomCode, u64> = BTreeMap::new();
    for row in rows {
        let code: String = row.try_get("code")?;
        let last: i64 = row.try_get("before")?;
        let code = RoomCode::parse(&code)
            .map_err(|invalid| anyhow::anyhow!("stored room code {code:?}: {invalid}"))?;
        before.insert(
            code,
            u64::try_from(last).context("a negative seq is stored")?,
        );
    }
    let mut gone = Vec::new();
    for (message, place) in messages.iter_mut().zip(places) {
        match before.get(&message.room) {
            Some(before) => message.seq = before + place.unsigned_abs(),
            None if !gone.contains(&message.room) => gone.push(message.room.clone()),
            None => {}
        }
    }
    Ok(gone)
}

/// A batch's messages as the columns of the `messages` table, one array each.
struct Columns<'a> {
    room: Vec<&'a str>,
    seq: Vec<i64>,
    id: Vec<String>,
    sender_id: Vec<String>,
    sender_name: Vec<&'a str>,
    text: Vec<&'a str>,
    ts: Vec<i64>,
    reference: Vec<Option<&'a str>>,
}

impl<'a> Columns<'a> {
    /// The columns of `messages`, each paired with what goes in its seq column.
    fn of(messages: impl Iterator<Item = (&'a ChatMessage, i64)>) -> Self {
        // Slices' iterators, filtered or not: the upper bound is the number of messages or more.
        let n = messages.size_hint().1.unwrap_or(0);
        let mut columns = Self {
            room: Vec::with_capacity(n),
            seq: Vec::with_capacity(n),
            id: Vec::with_capacity(n),
            sender_id: Vec::with_capacity(n),
            sender_name: Vec::with_capacity(n),
            text: Vec::with_capacity(n),
            ts: Vec::with_capacity(n),
            reference: Vec::with_capacity(n),
        };
        for (message, seq) in messages {
            columns.room.push(message.room.as_str());
            columns.seq.push(seq);
            columns.id.push(message.id.to_string());
            columns.sender_id.push(message.from.id.to_string());
            columns.sender_name.push(message.from.name.as_str());
            columns.text.push(message.text.as_str());
            columns.ts.push(message.ts.as_millis());
            columns
                .reference
                .push(message.reference.as_ref().map(|r| r.as_str()));
        }
        columns
    }

    /// `query` with the eight columns bound after its other parameters, in the table's order.
    fn bind_to(
        self,
        query: sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(self.room)
            .bind(self.seq)
            .bind(self.id)
            .bind(self.sender_id)
            .bind(self.sender_name)
            .bind(self.text)
            .bind(self.ts)
            .bind(self.reference)
    }

    async fn insert(self, connection: &mut PgConnection) -> anyhow::Result<()> {
        if self.room.is_empty() {
            return Ok(());
        }
        self.bind_to(sqlx::query(INSERT_MESSAGES))
            .execute(connection)
            .await
            .context("failed to store messages")?;
        Ok(())
    }
}
