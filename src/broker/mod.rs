//! The seam between a room's lobby and every other copy of the room: each room event goes out
//! through the broker, and every lobby subscribed to the room gets it to fan out to its own members.
//! The publisher's own copy comes back as `publish`'s answer, so its members hear the event at once
//! rather than after another trip through the lobby's mailbox and the worker's run queue (which put
//! scenario (a)'s p99 up by a quarter); every other subscriber's arrives as a [`Delivery`].
//!
//! Typed events cross it, never bytes encoded for one consumer: a broker encodes for its own wire.
//! One implementation exists today, in-process; start-up chooses it once, and nothing else cares.

mod local;

use actix::{Message, Recipient};

use crate::domain::{RoomCode, RoomEvent};
pub use local::LocalBroker;

/// Carries room events between lobbies.
#[derive(Clone)]
pub enum Broker {
    /// One process: the lobbies subscribed to a room here are all there are.
    Local(LocalBroker),
}

/// A room event published by another lobby of the room.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct Delivery(pub RoomEvent);

/// One lobby's subscription to a room: publishes to every subscriber, and ends when dropped.
pub enum Channel {
    Local(local::Subscription),
}

impl Broker {
    pub fn local() -> Self {
        Self::Local(LocalBroker::default())
    }

    /// Subscribes `lobby` to `room`'s events.
    pub fn subscribe(&self, room: &RoomCode, lobby: Recipient<Delivery>) -> Channel {
        match self {
            Self::Local(broker) => Channel::Local(broker.subscribe(room, lobby)),
        }
    }
}

impl Channel {
    /// Hands `event` to every other subscriber of the room, and back to the publisher, which fans
    /// it out to its own members now.
    #[must_use = "the publisher's own members hear the event only if it fans out what comes back"]
    pub fn publish(&self, event: RoomEvent) -> RoomEvent {
        match self {
            Self::Local(subscription) => subscription.publish(event),
        }
    }
}
