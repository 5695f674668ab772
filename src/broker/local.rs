//! The in-process broker: a topic per room, holding the lobbies subscribed to it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix::Recipient;

use super::Delivery;
use crate::domain::{InstanceId, RoomCode, RoomEvent};

/// Rooms' topics, shared by every worker. Touched when a lobby starts or stops, never per event.
#[derive(Clone)]
pub struct LocalBroker {
    /// This process, the one instance there is.
    instance: InstanceId,
    // std Mutexes: each is held for one map or list operation and never across an await. Locks are
    // taken topics first, then a topic's subscribers.
    topics: Arc<Mutex<HashMap<RoomCode, Arc<Topic>>>>,
}

#[derive(Default)]
struct Topic {
    subscribers: Mutex<Vec<(u64, Recipient<Delivery>)>>,
    next_id: AtomicU64,
}

/// A lobby's place in a topic; dropping it unsubscribes.
pub struct Subscription {
    id: u64,
    room: RoomCode,
    topic: Arc<Topic>,
    broker: LocalBroker,
}

impl Default for LocalBroker {
    fn default() -> Self {
        Self {
            instance: InstanceId::random(),
            topics: Arc::default(),
        }
    }
}

impl LocalBroker {
    pub fn subscribe(&self, room: &RoomCode, lobby: Recipient<Delivery>) -> Subscription {
        let topic = Arc::clone(self.lock().entry(room.clone()).or_default());
        let id = topic.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&topic.subscribers).push((id, lobby));
        Subscription {
            id,
            room: room.clone(),
            topic,
            broker: self.clone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RoomCode, Arc<Topic>>> {
        lock(&self.topics)
    }
}

impl Subscription {
    /// Hands `event` to every other subscribed lobby's mailbox and returns it for the publisher.
    /// Lobby mailboxes are unbounded, as they are for the sessions' own messages: a lobby is never
    /// too slow to be told about its room. A room here has one lobby, so usually nothing is copied.
    pub fn publish(&self, event: RoomEvent) -> RoomEvent {
        for (id, lobby) in lock(&self.topic.subscribers).iter() {
            if *id != self.id {
                lobby.do_send(Delivery::Event {
                    from: self.broker.instance.clone(),
                    event: event.clone(),
                });
            }
        }
        event
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut topics = self.broker.lock();
        let mut subscribers = lock(&self.topic.subscribers);
        subscribers.retain(|(id, _)| *id != self.id);
        if subscribers.is_empty() {
            topics.remove(&self.room);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a single push, remove or lookup, so a poisoned value is still whole.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use actix::{Actor, Context, Handler};

    use super::*;

    /// Counts what it is told, and answers how many on request.
    struct Counter(usize);

    impl Actor for Counter {
        type Context = Context<Self>;
    }

    impl Handler<Delivery> for Counter {
        type Result = ();
        fn handle(&mut self, _: Delivery, _: &mut Context<Self>) {
            self.0 += 1;
        }
    }

    #[derive(actix::Message)]
    #[rtype(result = "usize")]
    struct Count;

    impl Handler<Count> for Counter {
        type Result = usize;
        fn handle(&mut self, _: Count, _: &mut Context<Self>) -> usize {
            self.0
        }
    }

    fn expired(through_seq: u64) -> RoomEvent {
        RoomEvent::Expired { through_seq }
    }

    #[actix::test]
    async fn a_publish_reaches_every_other_subscriber_of_its_room_and_returns_to_the_publisher() {
        let broker = LocalBroker::default();
        let (a, b, other) = (Counter(0).start(), Counter(0).start(), Counter(0).start());
        let room = RoomCode::parse("ROOM").unwrap();
        let first = broker.subscribe(&room, a.clone().recipient());
        let _second = broker.subscribe(&room, b.clone().recipient());
        let _elsewhere =
            broker.subscribe(&RoomCode::parse("ELSE").unwrap(), other.clone().recipient());

        assert_eq!(first.publish(expired(1)), expired(1));
        assert_eq!(first.publish(expired(2)), expired(2));

        // Each mailbox is FIFO: the count is asked after both deliveries are queued.
        assert_eq!(
            a.send(Count).await.unwrap(),
            0,
            "the publisher's copies came back"
        );
        assert_eq!(b.send(Count).await.unwrap(), 2);
        assert_eq!(other.send(Count).await.unwrap(), 0);
    }

    #[actix::test]
    async fn a_dropped_subscription_hears_nothing_more_and_an_empty_topic_goes() {
        let broker = LocalBroker::default();
        let (a, b) = (Counter(0).start(), Counter(0).start());
        let room = RoomCode::parse("ROOM").unwrap();
        let first = broker.subscribe(&room, a.clone().recipient());
        let second = broker.subscribe(&room, b.clone().recipient());
        let third = broker.subscribe(&room, Counter(0).start().recipient());
        drop(second);
        let _ = third.publish(expired(1));
        assert_eq!(b.send(Count).await.unwrap(), 0);
        assert_eq!(a.send(Count).await.unwrap(), 1);
        drop(first);
        drop(third);
        assert!(broker.lock().is_empty());
    }
}
