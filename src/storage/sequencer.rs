//! The sequencer: numbers and stores messages in shared mode, where the database is the one
//! authority on a room's seqs, before anyone hears of them.
//!
//! One transaction at a time, each carrying whatever arrived while the previous one ran (group
//! commit): at low load a message is numbered at once, at high load one transaction numbers many.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::health::Health;
use super::postgres_writes::PostgresWrites;
use super::StorageError;
use crate::domain::ChatMessage;
use crate::instruments;

/// The most messages one transaction numbers.
const MAX_BATCH: usize = 1_000;

/// A message to number, and where to send it once stored.
pub struct Append {
    pub message: ChatMessage,
    pub done: oneshot::Sender<Result<ChatMessage, Unnumbered>>,
}

/// Why a message got no seq; nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum Unnumbered {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the room no longer exists")]
    NoSuchRoom,
}

pub async fn run(
    postgres: PostgresWrites,
    mut appends: mpsc::UnboundedReceiver<Append>,
    health: Arc<Health>,
) {
    let mut batch = Vec::new();
    while appends.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (mut messages, replies): (Vec<ChatMessage>, Vec<_>) =
            batch.drain(..).map(|a| (a.message, a.done)).unzip();
        let started = std::time::Instant::now();
        let appended = postgres.append(&mut messages).await;
        metrics::histogram!(instruments::STORAGE_WRITE_SECONDS)
            .record(started.elapsed().as_secs_f64());
        match appended {
            Ok(gone) => {
                if health.recovered() {
                    tracing::info!("storage recovered");
                }
                for (message, done) in messages.into_iter().zip(replies) {
                    let answer = if gone.contains(&message.room) {
                        Err(Unnumbered::NoSuchRoom)
                    } else {
                        Ok(message)
                    };
                    let _ = done.send(answer);
                }
            }
            Err(err) => {
                // Said once per outage, not once per message: every message meanwhile is refused.
                if health.failed(&err) {
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "storage cannot number messages; posts are refused until it can"
                    );
                }
                let err = Arc::new(err);
                for done in replies {
                    let _ = done.send(Err(Unnumbered::Storage(StorageError(anyhow::anyhow!(
                        "{:#}", err
                    )))));
                }
            }
        }
    }
}
