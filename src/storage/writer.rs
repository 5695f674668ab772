//! The writer: persists messages off the fan-out path, in batches, retrying through outages.
//!
//! Lobbies hand it work over an unbounded channel and never wait. It moves the work into a bounded
//! buffer and commits whatever has gathered while the previous commit ran (group commit): at low load
//! each message is written at once, at high load one transaction carries hundreds.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;

use super::batch::{Batch, Command};
use super::database::Database;
use super::health::Health;
use super::postgres_writes::PostgresWrites;
use super::sqlite_file::SqliteFile;
use crate::domain::{RoomCode, Timestamp};
use crate::instruments;

/// The most messages one transaction carries; a full batch is written at once. Each commit writes
/// again the tail page of every busy room's index, so the interval, not this bound, should set the
/// pace: at 1,000, 30,000 messages/s committed every 33 ms, and the writer's thread used 4.6–5.1 µs
/// per message; at 5,000 it commits every 100 ms and uses 3.6–4.1.
const MAX_BATCH: usize = 5_000;
/// Commits start at most this often unless a batch is full or a flush waits: a commit's fixed cost
/// (its pages written again, and on PostgreSQL its round trips) then spreads over every message
/// that arrived in the meantime. Delivery is not delayed; only storing is, by at most this much, and
/// a crash (not a stop, which flushes) loses at most this much. SQLite writes every B-tree page a
/// commit touches, and messages in 100 busy rooms touch about one index page per room whatever the
/// interval, so a longer one shares each page among more messages: in scenario (a), going from 10 ms
/// to 100 ms cut SQLite's pwrite calls from 7,300 to 5,400 a second (and keeping statement journals
/// in memory, in database.rs, to 2,100).
const COMMIT_INTERVAL: Duration = Duration::from_millis(100);
/// Retry delays after a failed commit double from the first to the last.
pub const RETRY_FIRST: Duration = Duration::from_millis(100);
pub const RETRY_LAST: Duration = Duration::from_secs(5);
/// A room's last activity is written at most this often: retention counts in days, and each write
/// skipped saves an UPDATE per room per batch, which at 100 busy rooms was one statement per message.
const ACTIVITY_GRANULARITY_MS: i64 = 60_000;
/// Past this many rooms the activity record starts afresh; the cost is a few extra UPDATEs.
const MAX_TRACKED_ROOMS: usize = 100_000;
/// At most one "dropped messages" log line per this interval, however many are dropped.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Where the writer's batches go.
#[derive(Clone)]
pub enum Store {
    /// Through the pool, as every other query goes: `sqlite::memory:`, which lives in the pool's
    /// one connection.
    Pool(Database),
    /// A SQLite file, on the writer's own connection. Its writes block the storage thread, each
    /// commit (3,000 messages at about 3 µs each: 9 ms) its whole turn.
    File(SqliteFile),
    /// PostgreSQL, on the native driver's pool of the storage thread.
    Postgres(PostgresWrites),
}

impl Store {
    async fn write(&self, batch: &Batch) -> anyhow::Result<()> {
        match self {
            Self::Pool(database) => database.write(batch).await,
            Self::File(file) => file.write(batch),
            Self::Postgres(postgres) => postgres.write(batch).await,
        }
    }
}

/// A batch in flight, and what the database said.
struct Written {
    batch: Batch,
    result: anyhow::Result<()>,
}

type Write = Pin<Box<dyn Future<Output = Written> + Send>>;

pub struct Writer {
    store: Store,
    commands: mpsc::UnboundedReceiver<Command>,
    buffer: VecDeque<Command>,
    /// Messages in `buffer` or in the batch being written.
    unwritten: usize,
    /// Of those, the messages in the batch being written, which cannot be dropped while in flight.
    in_flight: usize,
    capacity: usize,
    health: Arc<Health>,
    retry_delay: Duration,
    last_drop_log: Option<Instant>,
    /// The last activity stored per room.
    recorded_activity: HashMap<RoomCode, Timestamp>,
}

impl Writer {
    pub fn new(
        store: Store,
        commands: mpsc::UnboundedReceiver<Command>,
        capacity: usize,
        health: Arc<Health>,
    ) -> Self {
        Self {
            store,
            commands,
            buffer: VecDeque::new(),
            unwritten: 0,
            in_flight: 0,
            capacity,
            health,
            retry_delay: RETRY_FIRST,
            last_drop_log: None,
            recorded_activity: HashMap::new(),
        }
    }

    /// Runs until every sender is gone and everything received is written.
    pub async fn run(mut self) {
        let mut writing: Option<Write> = None;
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut next_commit = tokio::time::Instant::now();
        let mut open = true;
        loop {
            open = open && self.take_handed_over();
            // A flush is answered only between writes: a marker at the front while a batch is still
            // committing would otherwise be acknowledged before that batch is stored.
            if writing.is_none() {
                self.answer_flushes();
                let now = tokio::time::Instant::now();
                if retry_at.is_none() && (now >= next_commit || self.urgent()) {
                    writing = self.next_write();
                    if writing.is_some() {
                        next_commit = now + COMMIT_INTERVAL;
                    }
                }
            }
            let waiting_to_commit =
                (writing.is_none() && retry_at.is_none() && !self.buffer.is_empty())
                    .then_some(next_commit);
            if !open && writing.is_none() && self.buffer.is_empty() {
                return;
            }
            // Only a writer with nothing to do, or waiting out an outage, waits on the channel. A
            // waiting receiver makes every send wake this thread, one wake-up (an eventfd write and an
            // epoll return) per message; a busy writer finds what arrived at its next look instead, at
            // most COMMIT_INTERVAL later. Measured in scenario (a): 2,000 wake-ups a second before,
            // about 100 after. During an outage each message is taken as it comes, so the buffer's
            // bound and the pending count in /healthz hold while the retries back off.
            let listening = writing.is_none() && (retry_at.is_some() || self.buffer.is_empty());
            tokio::select! {
                command = self.commands.recv(), if open && listening => match command {
                    Some(command) => self.accept(command),
                    None => open = false,
                },
                written = in_flight(&mut writing) => {
                    writing = None;
                    // Counted first, so that health never reports fewer pending than are waiting.
                    open = open && self.take_handed_over();
                    if let Err(err) = &written.result {
                        retry_at = Some(tokio::time::Instant::now() + self.retry_delay);
                        self.failed(written.batch, err);
                    } else {
                        self.written(written.batch);
                    }
                },
                () = sleep_until(retry_at) => retry_at = None,
                () = sleep_until(waiting_to_commit) => {}
            }
        }
    }

    /// Accepts everything handed over since the last look, without waiting; false once every
    /// sender is gone.
    fn take_handed_over(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(command) => self.accept(command),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    /// A full batch, or a flush someone is waiting on, is written without waiting for the interval.
    fn urgent(&self) -> bool {
        self.unwritten >= MAX_BATCH || self.buffer.iter().any(|c| matches!(c, Command::Flush(_)))
    }

    fn accept(&mut self, command: Command) {
        if let Command::Persist { .. } = command {
            // The bound counts the waiting messages; a failed batch rejoins them and is trimmed then.
            if self.unwritten - self.in_flight >= self.capacity {
                self.drop_oldest();
            }
            self.unwritten += 1;
        }
        self.buffer.push_back(command);
        self.health.set_pending(self.unwritten);
    }

    /// Makes room in a full buffer by giving up its oldest waiting message; flushes are kept. False when no message is waiting.
    fn drop_oldest(&mut self) -> bool {
        let oldest = self
            .buffer
            .iter()
            .position(|c| matches!(c, Command::Persist { .. }));
        let Some(Command::Persist { message, settled }) =
            oldest.and_then(|i| self.buffer.remove(i))
        else {
            return false;
        };
        settled.fetch_max(message.seq, Ordering::Release);
        self.unwritten -= 1;
        let dropped = self.health.count_dropped();
        if self
            .last_drop_log
            .is_none_or(|at| at.elapsed() >= DROP_LOG_INTERVAL)
        {
            self.last_drop_log = Some(Instant::now());
            tracing::error!(
                dropped,
                capacity = self.capacity,
                "storage buffer full: oldest unwritten messages dropped"
            );
        }
        true
    }

    fn answer_flushes(&mut self) {
        while let Some(Command::Flush(_)) = self.buffer.front() {
            if let Some(Command::Flush(done)) = self.buffer.pop_front() {
                let _ = done.send(());
            }
        }
    }

    /// Takes everything up to the next flush marker, at most `MAX_BATCH` messages, as one transaction.
    fn next_write(&mut self) -> Option<Write> {
        let mut batch = Vec::new();
        let mut messages = 0;
        while let Some(command) = self.buffer.front() {
            match command {
                Command::Flush(_) => break,
                Command::Persist { .. } if messages == MAX_BATCH => break,
                Command::Persist { .. } => messages += 1,
                Command::Change(_) | Command::Close { .. } => {}
            }
            batch.extend(self.buffer.pop_front());
        }
        if batch.is_empty() {
            return None;
        }
        self.in_flight = messages;
        let batch = Batch {
            activity: self.stale_activity(&batch),
            commands: batch,
        };
        let store = self.store.clone();
        Some(Box::pin(async move {
            let started = std::time::Instant::now();
            let result = store.write(&batch).await;
            metrics::histogram!(instruments::STORAGE_WRITE_SECONDS)
                .record(started.elapsed().as_secs_f64());
            Written { batch, result }
        }))
    }

    /// The rooms in `batch` whose stored last activity is more than the granularity behind.
    fn stale_activity(&self, batch: &[Command]) -> Vec<(RoomCode, Timestamp)> {
        let mut latest: HashMap<&RoomCode, Timestamp> = HashMap::new();
        for command in batch {
            if let Command::Persist { message, .. } = command {
                latest.insert(&message.room, message.ts);
            }
        }
        latest
            .into_iter()
            .filter(|(room, at)| {
                self.recorded_activity.get(*room).is_none_or(|recorded| {
                    at.as_millis() - recorded.as_millis() >= ACTIVITY_GRANULARITY_MS
                })
            })
            .map(|(room, at)| (room.clone(), at))
            .collect()
    }

    fn written(&mut self, batch: Batch) {
        if self.recorded_activity.len() + batch.activity.len() > MAX_TRACKED_ROOMS {
            self.recorded_activity.clear();
        }
        self.recorded_activity.extend(batch.activity);
        self.in_flight = 0;
        for command in &batch.commands {
            if let Command::Persist { message, settled } = command {
                settled.fetch_max(message.seq, Ordering::Release);
                self.unwritten -= 1;
            }
        }
        self.retry_delay = RETRY_FIRST;
        self.health.set_pending(self.unwritten);
        if self.health.recovered() {
            tracing::info!("storage recovered: the writes held back are stored");
        }
    }

    fn failed(&mut self, batch: Batch, err: &anyhow::Error) {
        // Once per outage: a retry every few seconds for as long as a disk stays full must not
        // fill the log (and what the retries meet is in /healthz).
        let error = format!("{err:#}");
        if self.health.failed(err) {
            tracing::error!(error, "storage writes are failing; the rooms carry on live, and the writes are retried until they succeed");
        } else {
            tracing::debug!(error, retry_in = ?self.retry_delay, "storage write failed again");
        }
        self.retry_delay = (self.retry_delay * 2).min(RETRY_LAST);
        self.in_flight = 0;
        for command in batch.commands.into_iter().rev() {
            self.buffer.push_front(command);
        }
        // Back with the waiting messages, the batch's are the oldest: trimming to the bound drops them first.
        while self.unwritten > self.capacity && self.drop_oldest() {}
    }
}

async fn in_flight(writing: &mut Option<Write>) -> Written {
    match writing {
        Some(write) => write.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
