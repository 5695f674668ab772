//! The seam between a room's lobby and every other copy of the room: each room event goes out
//! through the broker, and every lobby subscribed to the room gets it to fan out to its own members.
//! The publisher's own copy comes back as `publish`'s answer, so its members hear the event at once
//! rather than after another trip through the lobby's mailbox and the worker's run queue (which put
//! scenario (a)'s p99 up by a quarter); every other subscriber's arrives as a [`Delivery`].
//!
//! Typed events cross it, never bytes encoded for one consumer: a broker encodes for its own wire.
//! Start-up chooses the implementation once: in-process, or Redis for shared mode, whose channel
//! also gives the room's presence across instances.

mod local;
mod shared;

use std::sync::Arc;

use actix::{Message, Recipient};

use crate::domain::{InstanceId, RoomCode, RoomEvent};
pub use local::LocalBroker;
pub use shared::{check_url, Entry, Liveness, Presence, RedisBroker};

/// Carries room events between lobbies.
#[derive(Clone)]
pub enum Broker {
    /// One process: the lobbies subscribed to a room here are all there are.
    Local(LocalBroker),
    /// Shared mode: the room's lobbies on every instance, through Redis.
    Redis(RedisBroker),
}

/// What the broker tells a lobby.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum Delivery {
    /// A room event another lobby of the room published, on instance `from`.
    Event { from: InstanceId, event: RoomEvent },
    /// Time to check the room against presence and storage (shared mode): the events of a while
    /// may have been lost. Carries which instances are dead, or `None` while Redis is unreachable.
    Check(Option<Arc<Liveness>>),
}

/// One lobby's subscription to a room: publishes to every subscriber, and ends when dropped.
pub enum Channel {
    Local(local::Subscription),
    Redis(shared::Subscription),
}

impl Broker {
    pub fn local() -> Self {
        Self::Local(LocalBroker::default())
    }

    /// Subscribes `lobby` to `room`'s events.
    pub fn subscribe(&self, room: &RoomCode, lobby: Recipient<Delivery>) -> Channel {
        match self {
            Self::Local(broker) => Channel::Local(broker.subscribe(room, lobby)),
            Self::Redis(broker) => Channel::Redis(broker.subscribe(room, lobby)),
        }
    }

    /// Whether the broker reaches what it needs: always in-process, Redis's last answer in shared mode.
    pub fn is_up(&self) -> bool {
        match self {
            Self::Local(_) => true,
            Self::Redis(broker) => broker.is_up(),
        }
    }

    /// A room's presence across instances, in shared mode, without subscribing to it.
    pub fn presence(&self, room: &RoomCode) -> Option<Presence> {
        match self {
            Self::Local(_) => None,
            Self::Redis(broker) => Some(broker.presence(room)),
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Redis(_))
    }
}

impl Channel {
    /// Hands `event` to every other subscriber of the room, and back to the publisher, which fans
    /// it out to its own members now.
    #[must_use = "the publisher's own members hear the event only if it fans out what comes back"]
    pub fn publish(&self, event: RoomEvent) -> RoomEvent {
        match self {
            Self::Local(subscription) => subscription.publish(event),
            Self::Redis(subscription) => subscription.publish(event),
        }
    }

    /// The room's presence across instances, in shared mode.
    pub fn presence(&self) -> Option<Presence> {
        match self {
            Self::Local(_) => None,
            Self::Redis(subscription) => Some(subscription.presence()),
        }
    }
}
