//! A SQLite file's batches: written on the writer's own connection, without sqlx, each message one
//! run of a prepared insert.
//!
//! Through sqlx's Any driver a stored message cost about 7 µs of CPU at 30,000 messages/s (see
//! docs/BENCHMARKS.md): its eight arguments were converted once into Any's values and again into
//! SQLite's, bound into a 100-row statement, and every statement was a round trip to the
//! connection's worker thread. rusqlite calls SQLite on the caller's thread instead, so the writer
//! runs on a thread of its own (see [`super::Storage::open`]) and blocks it for each commit.
//! Everything else (reads, rooms, accounts) stays on sqlx's pool, which shares the file through
//! SQLite's WAL and locks.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use sqlx::sqlite::SqliteConnectOptions;
use uuid::Uuid;

use super::batch::{seq_param, Batch, Changed};
use super::database::{
    sqlite_message_insert, CLOSE_ROOM, DELETE_MESSAGE, EDIT_MESSAGE, RECORD_ACTIVITY,
    SQLITE_BUSY_TIMEOUT_MS, SQLITE_SETTINGS,
};

/// The writer's connection to a SQLite file, opened when first needed and again after a failure.
#[derive(Clone)]
pub struct SqliteFile {
    path: Arc<Path>,
    insert: Arc<str>,
    /// Locked by one thread only, the writer's: the mutex lets the write future own a handle.
    connection: Arc<Mutex<Option<Connection>>>,
}

impl SqliteFile {
    /// The file a `sqlite:` URL names; None for an in-memory database, or any other URL. The
    /// in-memory database lives in the pool's one connection, so only the pool can write it.
    pub fn at(url: &str) -> Option<Self> {
        if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
            return None;
        }
        let options = SqliteConnectOptions::from_str(url).ok()?;
        let path: PathBuf = options.get_filename().to_owned();
        Some(Self {
            path: path.into(),
            insert: sqlite_message_insert(1).into(),
            connection: Arc::new(Mutex::new(None)),
        })
    }

    /// Stores a batch in one transaction, blocking the thread until it is committed. Writing a row
    /// that is already there does nothing, so a batch whose commit failed can be retried.
    pub fn write(&self, batch: &Batch) -> anyhow::Result<()> {
        let mut held = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let written = self.store(opened(&mut held, &self.path)?, batch);
        if written.is_err() {
            // A failed COMMIT (a full disk) can leave its transaction open: start afresh.
            *held = None;
        }
        written
    }

    fn store(&self, connection: &mut Connection, batch: &Batch) -> anyhow::Result<()> {
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .context("cannot start a transaction")?;
        {
            let mut insert = tx
                .prepare_cached(&self.insert)
                .context("failed to store messages")?;
            let (mut id, mut sender) = (Uuid::encode_buffer(), Uuid::encode_buffer());
            for message in batch.messages() {
                let id: &str = message.id.hyphenated().encode_lower(&mut id);
                let sender: &str = message
                    .from
                    .id
                    .as_uuid()
                    .hyphenated()
                    .encode_lower(&mut sender);
                insert
                    .execute(params![
                        message.room.as_str(),
                        seq_param(message.seq),
                        id,
                        sender,
                        message.from.name.as_str(),
                        message.text.as_str(),
                        message.ts.as_millis(),
                        message.reference.as_ref().map(|r| r.as_str()),
                    ])
                    .context("failed to store messages")?;
            }
        }
        for change in batch.changes() {
            let (room, seq, at) = (
                change.room.as_str(),
                seq_param(change.seq),
                change.at.as_millis(),
            );
            match &change.to {
                Changed::Text(text) => tx
                    .prepare_cached(EDIT_MESSAGE)
                    .and_then(|mut edit| edit.execute(params![text.as_str(), at, room, seq])),
                Changed::Deleted => tx
                    .prepare_cached(DELETE_MESSAGE)
                    .and_then(|mut delete| delete.execute(params![at, room, seq])),
            }
            .context("failed to store a change to a message")?;
        }
        for (code, at) in &batch.activity {
            let at = at.as_millis();
            tx.prepare_cached(RECORD_ACTIVITY)
                .and_then(|mut record| record.execute(params![at, code.as_str(), at]))
                .context("failed to update a room's last activity")?;
        }
        for (code, seq) in batch.closes() {
            tx.prepare_cached(CLOSE_ROOM)
                .and_then(|mut close| close.execute(params![seq_param(seq), code.as_str()]))
                .context("failed to store where a room was closed")?;
        }
        tx.commit().context("failed to commit")
    }
}

/// How often the checkpointer copies the WAL back into the database file (and syncs both). At
/// 30,000 messages a second the WAL then holds a few thousand pages, each busy room's index tail
/// page once rather than once per commit. The checkpoints run on a thread and connection of their
/// own, beside the writer's commits (SQLite's WAL lets a passive checkpoint run while a writer
/// appends), so a checkpoint's reads, writes and `fsync`s never hold a commit up. When the writer
/// checkpointed the WAL itself every 10,000 pages, each checkpoint stopped its commits for long
/// enough at 64,000 messages a second that the storage buffer overflowed.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

/// The writer's connection checkpoints only if the checkpointer has fallen this far behind (a WAL
/// of 400 MB): a bound on the file, should its checkpoints keep failing.
const WRITER_CHECKPOINT_PAGES: u32 = 100_000;

/// The thread that checkpoints a SQLite file's WAL; it stops when this is dropped.
pub struct Checkpoints {
    _stop: mpsc::Sender<()>,
}

impl SqliteFile {
    /// Starts checkpointing the file's WAL every `interval` on a thread of its own.
    pub fn checkpoints(&self, interval: Duration) -> anyhow::Result<Checkpoints> {
        let (stop, stopped) = mpsc::channel();
        let path = Arc::clone(&self.path);
        std::thread::Builder::new()
            .name("hubbub-storage-checkpoints".into())
            .spawn(move || {
                let mut connection = None;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    if let Err(err) = checkpoint(&path, &mut connection) {
                        // The next round opens a fresh connection and tries again.
                        connection = None;
                        tracing::warn!(error = %format!("{err:#}"), "cannot checkpoint the database file");
                    }
                }
            })
            .context("cannot start the storage checkpoints' thread")?;
        Ok(Checkpoints { _stop: stop })
    }
}

/// Copies what the WAL holds into the database file, as far as no reader still needs the WAL's copy.
fn checkpoint(path: &Path, connection: &mut Option<Connection>) -> anyhow::Result<()> {
    opened(connection, path)?
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        .context("the checkpoint failed")
}

/// The connection, opened first if it is closed (never yet opened, or let go after a failure).
fn opened<'c>(
    connection: &'c mut Option<Connection>,
    path: &Path,
) -> anyhow::Result<&'c mut Connection> {
    Ok(match connection {
        Some(connection) => connection,
        closed => closed.insert(open(path)?),
    })
}

/// Opens the file (which migration made) as the pool's connections are set up (see `database.rs`);
/// WAL is the file's own mode, set when the pool first connected.
fn open(path: &Path) -> anyhow::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open the database file {}", path.display()))?;
    let set_up = || -> rusqlite::Result<()> {
        connection.busy_timeout(Duration::from_millis(SQLITE_BUSY_TIMEOUT_MS.into()))?;
        for (name, value) in SQLITE_SETTINGS {
            connection.pragma_update(None, name, value)?;
        }
        connection.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
    };
    set_up().context("cannot set the database file's connection up")?;
    Ok(connection)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer's connection is as durable, and waits on locks as long, as the pool's.
    #[test]
    fn the_writers_connection_is_set_up_as_the_pools_are() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hubbub.db");
        Connection::open(&path).unwrap();
        let connection = open(&path).unwrap();
        let pragma = |name: &str| -> i64 {
            connection
                .pragma_query_value(None, name, |row| row.get(0))
                .unwrap()
        };
        // SQLite reports NORMAL as 1 and MEMORY as 2.
        assert_eq!(pragma("synchronous"), 1);
        assert_eq!(pragma("temp_store"), 2);
        assert_eq!(pragma("busy_timeout"), i64::from(SQLITE_BUSY_TIMEOUT_MS));
        assert_eq!(
            pragma("wal_autocheckpoint"),
            i64::from(WRITER_CHECKPOINT_PAGES)
        );
    }

    /// The checkpointer copies committed pages from the WAL into the database file on its own.
    #[test]
    fn the_checkpointer_copies_the_wal_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hubbub.db");
        let writer = Connection::open(&path).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer.execute("CREATE TABLE rows (text TEXT)", []).unwrap();
        let file = SqliteFile::at(&format!("sqlite:{}", path.display())).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();

        let _checkpoints = file.checkpoints(Duration::from_millis(20)).unwrap();
        for _ in 0..100 {
            writer
                .execute("INSERT INTO rows VALUES (?1)", ["x".repeat(1_000)])
                .unwrap();
        }

        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path).unwrap().len() <= before {
            assert!(
                std::time::Instant::now() < deadline,
                "the rows never reached the database file"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
