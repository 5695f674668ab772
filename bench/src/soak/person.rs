//! One simulated person in the soak: joins a room, chats at a human pace, loses the connection and
//! resumes, leaves, and comes back to another room until the soak ends. Everything it hears is
//! checked: each message of its room exactly once, in seq order, from joining to leaving.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::rooms::Rooms;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a person stays in a room, and waits between its messages and between rooms.
const STAY: std::ops::RangeInclusive<u64> = 20..=120;
const BETWEEN_MESSAGES: std::ops::RangeInclusive<u64> = 5..=15;
const BETWEEN_ROOMS: std::ops::RangeInclusive<u64> = 1..=5;
/// How long a dropped connection stays away before it resumes.
const AWAY: std::ops::RangeInclusive<u64> = 1..=3;
/// Longer than any frame can take to come: past it the person counts an error and leaves.
const PATIENCE: Duration = Duration::from_secs(30);

/// A message its sender heard back with its seq: the server has it, and must keep it.
#[derive(Debug, Clone)]
pub struct Acknowledged {
    pub room: String,
    pub seq: u64,
    pub text: String,
}

/// What every person found, added up.
#[derive(Default)]
pub struct Ledger {
    pub visits: AtomicU64,
    pub resumes: AtomicU64,
    pub sent: AtomicU64,
    pub heard: AtomicU64,
    /// A seq heard out of turn: one skipped (a message never delivered) or heard twice.
    pub gaps: AtomicU64,
    pub duplicates: AtomicU64,
    /// Resumes whose replay said some messages are missing.
    pub truncated: AtomicU64,
    /// Sent, but the connection went before the echo came: never acknowledged, so not counted lost.
    pub unacknowledged: AtomicU64,
    acknowledged: Mutex<Vec<Acknowledged>>,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Ledger {
    pub fn acknowledged(&self) -> Vec<Acknowledged> {
        self.acknowledged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn error(&self, err: &anyhow::Error) {
        let mut errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        *errors.entry(format!("{err:#}")).or_default() += 1;
    }

    fn acknowledge(&self, acknowledged: Acknowledged) {
        self.acknowledged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(acknowledged);
    }
}

pub struct Person {
    pub number: usize,
    pub urls: Arc<Vec<String>>,
    pub rooms: Arc<Rooms>,
    pub ledger: Arc<Ledger>,
    /// No visit starts, and every visit ends, by then.
    pub until: Instant,
    pub rng: fastrand::Rng,
}

/// One connection to a room, and what it has heard.
struct Visit {
    socket: Socket,
    room: String,
    name: String,
    me: String,
    resume: String,
    /// The seq the next message must have.
    next_seq: u64,
    /// Texts sent and not yet heard back.
    pending: HashSet<String>,
}

impl Person {
    /// Visits rooms until the soak ends.
    pub async fn live(mut self) {
        let mut visits = 0;
        while Instant::now() < self.until {
            visits += 1;
            if let Some(room) = self.rooms.pick(&mut self.rng) {
                self.ledger.visits.fetch_add(1, Ordering::Relaxed);
                if let Err(err) = self.visit(&room, visits).await {
                    self.ledger.error(&err);
                }
            }
            let pause = self.seconds(BETWEEN_ROOMS);
            sleep_until((Instant::now() + pause).min(self.until)).await;
        }
    }

    async fn visit(&mut self, room: &str, number: usize) -> anyhow::Result<()> {
        let name = format!("p{}-{number}", self.number);
        let url = self.instance();
        let mut visit = Visit::join(&url, room, &name).await?;
        let leave_at = (Instant::now() + self.seconds(STAY)).min(self.until);
        let stayed = leave_at - Instant::now();
        // A third of the visits lose their connection once, somewhere in the middle.
        let mut drop_at = self
            .rng
            .u8(..3)
            .eq(&0)
            .then(|| Instant::now() + stayed.mul_f64(self.rng.f64()));
        let mut next_send = Instant::now() + self.seconds(BETWEEN_MESSAGES);
        let mut sent = 0;
        loop {
            tokio::select! {
                frame = timeout(PATIENCE, visit.socket.next()) => {
                    let frame = frame.context("nothing heard for 30 s")?;
                    visit.hear(frame, &self.ledger)?;
                }
                () = sleep_until(next_send) => {
                    sent += 1;
                    visit.say(&format!("{name} m{sent}")).await?;
                    self.ledger.sent.fetch_add(1, Ordering::Relaxed);
                    next_send = Instant::now() + self.seconds(BETWEEN_MESSAGES);
                }
                () = sleep_until(drop_at.unwrap_or(leave_at)), if drop_at.is_some() => {
                    drop_at = None;
                    let away = self.seconds(AWAY);
                    let url = self.instance();
                    visit = visit.lose_and_resume(&url, away, &self.ledger).await?;
                    self.ledger.resumes.fetch_add(1, Ordering::Relaxed);
                }
                () = sleep_until(leave_at) => break,
            }
        }
        // Two thirds leave properly, once their last messages are back; the rest just vanish.
        if self.rng.u8(..3) == 0 {
            visit.vanish(&self.ledger);
            Ok(())
        } else {
            visit.leave(&self.ledger).await
        }
    }

    /// An instance to connect to: any of them, in shared mode.
    fn instance(&mut self) -> String {
        self.urls[self.rng.usize(..self.urls.len())].clone()
    }

    fn seconds(&mut self, range: std::ops::RangeInclusive<u64>) -> Duration {
        // Whole seconds spread to milliseconds, so that people do not act in step.
        Duration::from_millis(self.rng.u64(range.start() * 1000..=range.end() * 1000))
    }
}

impl Visit {
    async fn join(url: &str, room: &str, name: &str) -> anyhow::Result<Self> {
        let (socket, welcome) = connect(url, room, &format!("name={name}")).await?;
        let history = welcome["history"]
            .as_array()
            .context("a welcome without history")?;
        let last_seq = history
            .last()
            .map(|message| message["seq"].as_u64().context("a message without seq"))
            .transpose()?;
        Ok(Self {
            socket,
            room: room.to_owned(),
            name: name.to_owned(),
            me: field(&welcome, "/you/id")?,
            resume: field(&welcome, "/resume")?,
            // A room with no history yet starts at 1; a resume's history is checked message by message.
            next_seq: last_seq.map_or(1, |seq| seq + 1),
            pending: HashSet::new(),
        })
    }

    async fn say(&mut self, text: &str) -> anyhow::Result<()> {
        let frame = serde_json::json!({ "type": "message", "text": text });
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .context("cannot send")?;
        self.pending.insert(text.to_owned());
        Ok(())
    }

    /// Takes one frame: a message must carry the next seq.
    fn hear(
        &mut self,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
        ledger: &Ledger,
    ) -> anyhow::Result<()> {
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(close))) => bail!("closed by the server: {close:?}"),
            Some(Ok(_)) => return Ok(()),
            Some(Err(err)) => bail!("the connection failed: {err}"),
            None => bail!("the connection ended"),
        };
        let frame: Value = serde_json::from_str(&text).context("a frame that is not JSON")?;
        match frame["type"].as_str() {
            Some("message") => self.message(&frame, ledger),
            Some("error") => bail!("error frame: {frame}"),
            _ => Ok(()),
        }
    }

    fn message(&mut self, message: &Value, ledger: &Ledger) -> anyhow::Result<()> {
        let seq = message["seq"].as_u64().context("a message without seq")?;
        ledger.heard.fetch_add(1, Ordering::Relaxed);
        if seq < self.next_seq {
            ledger.duplicates.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        if seq > self.next_seq {
            ledger.gaps.fetch_add(1, Ordering::Relaxed);
        }
        self.next_seq = seq + 1;
        let text = message["text"].as_str().unwrap_or_default();
        if message["from"]["id"] == self.me.as_str() && self.pending.remove(text) {
            ledger.acknowledge(Acknowledged {
                room: self.room.clone(),
                seq,
                text: text.to_owned(),
            });
        }
        Ok(())
    }

    /// Drops the connection without a word, stays away for `away`, then resumes from the last seq
    /// heard, on `url`: the replay must fill the time away exactly.
    async fn lose_and_resume(
        self,
        url: &str,
        away: Duration,
        ledger: &Ledger,
    ) -> anyhow::Result<Self> {
        let Self {
            socket,
            room,
            name,
            resume,
            next_seq,
            pending,
            ..
        } = self;
        drop(socket);
        tokio::time::sleep(away).await;
        let since = next_seq - 1;
        let query = format!("name={name}&resume={resume}&since={since}");
        let (socket, welcome) = connect(url, &room, &query).await?;
        if welcome["truncated"] != false {
            ledger.truncated.fetch_add(1, Ordering::Relaxed);
        }
        let mut visit = Self {
            socket,
            room,
            name,
            me: field(&welcome, "/you/id")?,
            resume: field(&welcome, "/resume")?,
            next_seq,
            pending,
        };
        for message in welcome["history"].as_array().into_iter().flatten() {
            visit.message(message, ledger)?;
        }
        // Sent as the connection went: the server may never have read them.
        ledger
            .unacknowledged
            .fetch_add(visit.pending.len() as u64, Ordering::Relaxed);
        visit.pending.clear();
        Ok(visit)
    }

    /// Waits for its own messages to come back, then closes properly.
    async fn leave(mut self, ledger: &Ledger) -> anyhow::Result<()> {
        while !self.pending.is_empty() {
            let frame = timeout(PATIENCE, self.socket.next())
                .await
                .context("an echo took over 30 s")?;
            self.hear(frame, ledger)?;
        }
        self.socket.close(None).await.context("cannot close")?;
        Ok(())
    }

    /// Goes without closing, as a closed laptop lid does.
    fn vanish(self, ledger: &Ledger) {
        ledger
            .unacknowledged
            .fetch_add(self.pending.len() as u64, Ordering::Relaxed);
    }
}

/// Opens a WebSocket to `room` with `query` and reads its welcome.
async fn connect(url: &str, room: &str, query: &str) -> anyhow::Result<(Socket, Value)> {
    let ws = url.replacen("http", "ws", 1);
    let (mut socket, _) = timeout(
        PATIENCE,
        tokio_tungstenite::connect_async(format!("{ws}/ws/{room}?{query}")),
    )
    .await
    .context("connecting took over 30 s")?
    .with_context(|| format!("cannot connect to {room}"))?;
    let welcome = match timeout(PATIENCE, socket.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str::<Value>(&text)?,
        other => bail!("expected a welcome, got {other:?}"),
    };
    if welcome["type"] != "welcome" {
        bail!("expected a welcome, got {welcome}");
    }
    Ok((socket, welcome))
}

fn field(welcome: &Value, pointer: &str) -> anyhow::Result<String> {
    Ok(welcome
        .pointer(pointer)
        .and_then(Value::as_str)
        .with_context(|| format!("a welcome without {pointer}"))?
        .to_owned())
}
