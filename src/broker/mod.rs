//! The seam between a room's lobby and every other copy of the room: each room event goes out
//! through the broker, and each lobby subscribed to the room gets it back to fan out to its own members.
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

/// A room event as the broker carries it.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct Delivery {
    /// The publishing lobby's count of its own events, so it can tell which ones a welcome covered.
    pub stamp: u64,
    pub event: RoomEvent,
}

/// One lobby's subscription to a room: publishes to every subscriber, itself included, and ends when dropped.
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
    pub fn publish(&self, delivery: Delivery) {
        match self {
            Self::Local(subscription) => subscription.publish(delivery),
        }
    }
}
