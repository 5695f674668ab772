//! The Redis broker, for shared mode: every instance's lobby of a room subscribes to the room's
//! channel, and what one publishes the others deliver. Redis only carries: seqs come from storage,
//! so a Redis that restarts, empties or fails over loses no message and reuses no seq (a lobby
//! fills any hole from storage), and presence is rebuilt by the instances that hold it.
//!
//! Two connections, each a redis-rs `ConnectionManager` that reconnects by itself: one for commands
//! and publishes, one (RESP3) for the subscriptions, which redis-rs renews after a reconnect.

mod liveness;
mod presence;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use actix::Recipient;
use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::Delivery;
use crate::domain::{InstanceId, RoomCode, RoomEvent};
use crate::instruments;
pub use liveness::Liveness;
pub use presence::{Entry, Presence};

/// How long a command may take before Redis counts as unreachable for it.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// The most publishes sent in one pipeline.
const MAX_PIPELINE: usize = 512;
/// A publish that waited this long (Redis was reconnecting) is dropped rather than sent late: a
/// `joined` sent seconds after the fact may no longer be true, and the checks that follow an
/// outage bring every lobby up to date from presence and storage.
const STALE_PUBLISH: Duration = Duration::from_secs(1);

/// A publish waiting to be sent: channel, payload, and when it was queued.
struct Outgoing(String, String, std::time::Instant);

/// What crosses Redis for each event: who published it, and the event.
#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    from: std::borrow::Cow<'a, InstanceId>,
    event: std::borrow::Cow<'a, RoomEvent>,
}

/// The lobbies here subscribed to each room, by subscription id.
type Topics = HashMap<RoomCode, Vec<(u64, Recipient<Delivery>)>>;

#[derive(Clone)]
pub struct RedisBroker {
    shared: Arc<Shared>,
}

struct Shared {
    instance: InstanceId,
    commands: ConnectionManager,
    pubsub: ConnectionManager,
    topics: Mutex<Topics>,
    next_id: AtomicU64,
    /// Publishes, in order, to the one task that sends them.
    outbox: mpsc::UnboundedSender<Outgoing>,
    /// Subscribe (true) and unsubscribe requests, in order, to the task that makes them.
    subscriptions: mpsc::UnboundedSender<(RoomCode, bool)>,
    /// Whether the last command reached Redis; changes are logged once each.
    up: AtomicBool,
    /// Which instances the last round found dead.
    live: Mutex<Arc<Liveness>>,
    up_gauge: metrics::Gauge,
}

/// A lobby's subscription to its room; dropping it unsubscribes.
pub struct Subscription {
    id: u64,
    room: RoomCode,
    channel: String,
    broker: RedisBroker,
}

/// Checks a Redis URL before anything connects to it.
pub fn check_url(url: &str) -> anyhow::Result<()> {
    url.into_connection_info().map(drop).map_err(|err| {
        anyhow::anyhow!("--redis-url is not a Redis URL (redis://host:6379/0): {err}")
    })
}

impl RedisBroker {
    /// Connects lazily (an unreachable Redis at start-up is an outage like any other, not a
    /// failure to start) and starts the tasks that publish, subscribe, dispatch and keep this
    /// instance's liveness; `timeout` is how long a silent instance lives on for the others.
    pub fn start(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let info = url
            .into_connection_info()
            .context("--redis-url is not a Redis URL")?;
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let info = info.set_redis_settings(resp3);
        let client = redis::Client::open(info).context("cannot use --redis-url")?;
        let config = || {
            ConnectionManagerConfig::new()
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_connection_timeout(Some(CONNECTION_TIMEOUT))
                .set_max_delay(Duration::from_secs(1))
        };
        let commands = ConnectionManager::new_lazy_with_config(client.clone(), config())
            .context("cannot set up the Redis connection")?;
        let (pushes, pushed) = mpsc::unbounded_channel();
        let pubsub = ConnectionManager::new_lazy_with_config(
            client,
            config()
                .set_push_sender(pushes)
                .set_automatic_resubscription(),
        )
        .context("cannot set up the Redis subscription connection")?;
        let (outbox, outgoing) = mpsc::unbounded_channel();
        let (subscriptions, requests) = mpsc::unbounded_channel();
        let instance = InstanceId::random();
        let broker = Self {
            shared: Arc::new(Shared {
                live: Mutex::new(Arc::default()),
                instance,
                commands,
                pubsub,
                topics: Mutex::default(),
                next_id: AtomicU64::new(0),
                outbox,
                subscriptions,
                up: AtomicBool::new(true),
                up_gauge: metrics::gauge!(instruments::REDIS_UP),
            }),
        };
        broker.shared.up_gauge.set(1.0);
        tokio::spawn(broker.clone().publish_all(outgoing));
        tokio::spawn(broker.clone().subscribe_all(requests));
        tokio::spawn(broker.clone().dispatch(pushed));
        tokio::spawn(liveness::run(broker.clone(), timeout));
        tracing::info!(instance = %broker.shared.instance, "shared mode: rooms are shared through Redis");
        Ok(broker)
    }

    pub fn instance(&self) -> &InstanceId {
        &self.shared.instance
    }

    /// Whether Redis answered the last command sent to it.
    pub fn is_up(&self) -> bool {
        self.shared.up.load(Ordering::Relaxed)
    }

    pub fn presence(&self, room: &RoomCode) -> Presence {
        Presence::new(self.clone(), room.clone())
    }

    pub fn subscribe(&self, room: &RoomCode, lobby: Recipient<Delivery>) -> Subscription {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let mut topics = self.topics();
        let subscribers = topics.entry(room.clone()).or_default();
        if subscribers.is_empty() {
            let _ = self.shared.subscriptions.send((room.clone(), true));
        }
        subscribers.push((id, lobby));
        Subscription {
            id,
            room: room.clone(),
            channel: channel(room),
            broker: self.clone(),
        }
    }

    /// Marks Redis reachable or not from a command's outcome, logging each change once.
    fn saw<T>(&self, result: &redis::RedisResult<T>) {
        let up = result.is_ok();
        if self.shared.up.swap(up, Ordering::Relaxed) != up {
            self.shared.up_gauge.set(if up { 1.0 } else { 0.0 });
            match result {
                Ok(_) => tracing::info!("Redis is reachable again: presence is being re-registered and rooms caught up from storage"),
                Err(err) => tracing::warn!(error = %err, "Redis is unreachable: rooms go on within each instance, and catch up when it is back"),
            }
        }
    }

    fn topics(&self) -> MutexGuard<'_, Topics> {
        // Each critical section is one map operation, so a poisoned map is still whole.
        self.shared
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn live(&self) -> Arc<Liveness> {
        Arc::clone(
            &self
                .shared
                .live
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    fn set_live(&self, live: Liveness) {
        *self
            .shared
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(live);
    }

    /// Every lobby subscribed here, to tell them all something.
    fn lobbies(&self) -> Vec<Recipient<Delivery>> {
        self.topics()
            .values()
            .flatten()
            .map(|(_, lobby)| lobby.clone())
            .collect()
    }

    /// Sends publishes in order, pipelined: whatever queued while the last pipeline ran goes in the next.
    async fn publish_all(self, mut outgoing: mpsc::UnboundedReceiver<Outgoing>) {
        let mut batch = Vec::new();
        let mut connection = self.shared.commands.clone();
        while outgoing.recv_many(&mut batch, MAX_PIPELINE).await > 0 {
            let mut pipe = redis::pipe();
            for Outgoing(channel, payload, queued) in batch.drain(..) {
                if queued.elapsed() < STALE_PUBLISH {
                    pipe.publish(channel, payload).ignore();
                }
            }
            // Lost publishes are found again: a lobby fills holes and checks storage's last seq.
            // Given up on after a while, so a reconnection does not send them late.
            let sent = tokio::time::timeout(STALE_PUBLISH, pipe.query_async::<()>(&mut connection))
                .await
                .unwrap_or_else(|_| Err(timed_out()));
            self.saw(&sent);
        }
    }

    /// Makes subscribe and unsubscribe requests one after another, so they take effect in order.
    async fn subscribe_all(self, mut requests: mpsc::UnboundedReceiver<(RoomCode, bool)>) {
        let mut connection = self.shared.pubsub.clone();
        while let Some((room, subscribe)) = requests.recv().await {
            let name = channel(&room);
            if subscribe {
                let done = connection.subscribe(&name).await;
                if let Err(err) = &done {
                    tracing::warn!(room = %room, error = %err, "cannot subscribe to the room's channel; it will be caught up from storage");
                }
                // Caught up now: what was published before the subscription took hold was missed.
                let check = Delivery::Check(self.is_up().then(|| self.live()));
                if let Some(subscribers) = self.topics().get(&room) {
                    for (_, lobby) in subscribers {
                        lobby.do_send(check.clone());
                    }
                }
            } else if let Err(err) = connection.unsubscribe(&name).await {
                tracing::debug!(room = %room, error = %err, "cannot unsubscribe");
            }
        }
    }

    /// Hands each event another instance published to the lobby of its room here.
    async fn dispatch(self, mut pushed: mpsc::UnboundedReceiver<PushInfo>) {
        while let Some(push) = pushed.recv().await {
            match push.kind {
                PushKind::Message => self.deliver(&push.data),
                PushKind::Disconnection => {
                    self.saw::<()>(&Err(redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "the subscription connection was lost",
                    ))));
                }
                _ => {}
            }
        }
    }

    fn deliver(&self, data: &[redis::Value]) {
        let [channel, payload] = data else {
            return;
        };
        let (Ok(channel), Ok(payload)) = (
            redis::from_redis_value::<String>(channel.clone()),
            redis::from_redis_value::<Vec<u8>>(payload.clone()),
        ) else {
            return;
        };
        let Some(room) = room_of(&channel) else {
            return;
        };
        let envelope: Envelope<'_> = match serde_json::from_slice(&payload) {
            Ok(envelope) => envelope,
            Err(err) => {
                tracing::warn!(%room, error = %err, "an event from Redis does not read as one; ignored");
                return;
            }
        };
        if *envelope.from == self.shared.instance {
            return;
        }
        let delivery = Delivery::Event {
            from: envelope.from.into_owned(),
            event: envelope.event.into_owned(),
        };
        if let Some(subscribers) = self.topics().get(&room) {
            for (_, lobby) in subscribers {
                lobby.do_send(delivery.clone());
            }
        }
    }
}

impl Subscription {
    /// Queues `event` for the room's other instances and returns it for the publisher.
    pub fn publish(&self, event: RoomEvent) -> RoomEvent {
        let envelope = Envelope {
            from: std::borrow::Cow::Borrowed(&self.broker.shared.instance),
            event: std::borrow::Cow::Borrowed(&event),
        };
        // Typed values of strings, numbers and timestamps: encoding cannot fail.
        if let Ok(payload) = serde_json::to_string(&envelope) {
            let _ = self.broker.shared.outbox.send(Outgoing(
                self.channel.clone(),
                payload,
                std::time::Instant::now(),
            ));
        }
        event
    }

    /// The room's presence in Redis.
    pub fn presence(&self) -> Presence {
        self.broker.presence(&self.room)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut topics = self.broker.topics();
        if let Some(subscribers) = topics.get_mut(&self.room) {
            subscribers.retain(|(id, _)| *id != self.id);
            if subscribers.is_empty() {
                topics.remove(&self.room);
                let _ = self
                    .broker
                    .shared
                    .subscriptions
                    .send((self.room.clone(), false));
            }
        }
    }
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "Redis did not answer in time"))
}

/// The channel of a room's events; `{CODE}` is the hash tag that keeps a room's keys in one slot.
fn channel(room: &RoomCode) -> String {
    format!("hubbub:{{{room}}}:events")
}

fn room_of(channel: &str) -> Option<RoomCode> {
    let code = channel.strip_prefix("hubbub:{")?.strip_suffix("}:events")?;
    RoomCode::parse(code).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rooms_channel_names_it_under_its_hash_tag() {
        let room = RoomCode::parse("K7MXQ2").unwrap();
        assert_eq!(channel(&room), "hubbub:{K7MXQ2}:events");
        assert_eq!(room_of(&channel(&room)), Some(room));
        assert_eq!(room_of("hubbub:{K7MXQ2}:other"), None);
        assert_eq!(room_of("hubbub:{no spaces}:events"), None);
    }
}
