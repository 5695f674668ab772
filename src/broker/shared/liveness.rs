//! Each instance's liveness: a key with a short expiry that the instance keeps refreshing, and a
//! registry of every instance, from which each learns which others have died. Every round also
//! tells each lobby here to check its room against presence and storage.
//!
//! An instance is dead only when the registry names it and its key was missing at two rounds in a
//! row. One the registry does not know (it started a moment ago, or Redis lost its data) counts as
//! alive, so an instance that has not yet seen another never takes its members' names; and after
//! Redis restarts from an old snapshot, whose keys have long expired, every instance has set its
//! key again before anyone takes it for dead. A dead instance is found at most `timeout` plus two
//! rounds (⅔ of it) after its last refresh.

use std::collections::HashSet;
use std::time::Duration;

use redis::AsyncCommands;

use super::{Delivery, RedisBroker};
use crate::domain::{InstanceId, Timestamp};

/// Every instance that has announced itself, scored by when it last did (by its own clock).
const INSTANCES: &str = "hubbub:instances";

/// Refreshes per timeout: a key outlives two missed refreshes.
const ROUNDS_PER_TIMEOUT: u32 = 3;

/// Instances silent this long leave the registry: their members were cleared long before.
const FORGET_AFTER_MS: i64 = 3_600_000;

/// Which instances are known dead.
#[derive(Debug, Default)]
pub struct Liveness {
    dead: HashSet<InstanceId>,
}

impl Liveness {
    pub fn is_alive(&self, instance: &InstanceId) -> bool {
        !self.dead.contains(instance)
    }

    pub fn dead(&self) -> impl Iterator<Item = &InstanceId> {
        self.dead.iter()
    }
}

fn key(instance: &InstanceId) -> String {
    format!("hubbub:instance:{{{instance}}}")
}

pub async fn run(broker: RedisBroker, timeout: Duration) {
    let mut rounds = tokio::time::interval(timeout / ROUNDS_PER_TIMEOUT);
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut missing_before = HashSet::new();
    loop {
        rounds.tick().await;
        let missing = round(&broker, timeout).await;
        broker.saw(&missing);
        if let Ok(missing) = missing {
            let dead = missing.intersection(&missing_before).cloned().collect();
            broker.set_live(Liveness { dead });
            missing_before = missing;
        }
        let check = Delivery::Check(broker.is_up().then(|| broker.live()));
        for lobby in broker.lobbies() {
            lobby.do_send(check.clone());
        }
    }
}

/// Refreshes this instance's key and registry entry, and finds the instances whose key is missing.
async fn round(broker: &RedisBroker, timeout: Duration) -> redis::RedisResult<HashSet<InstanceId>> {
    let me = &broker.shared.instance;
    let mut connection = broker.shared.commands.clone();
    let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let now = Timestamp::now().as_millis();
    redis::pipe()
        .set_options(
            key(me),
            1,
            redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(millis)),
        )
        .ignore()
        .zadd(INSTANCES, me.as_str(), now)
        .ignore()
        .zrembyscore(INSTANCES, "-inf", now - FORGET_AFTER_MS)
        .ignore()
        .exec_async(&mut connection)
        .await?;
    // The subscription connection reconnects only when used: a ping keeps it trying.
    let mut pubsub = broker.shared.pubsub.clone();
    redis::cmd("PING").exec_async(&mut pubsub).await?;
    let known: Vec<String> = connection.zrange(INSTANCES, 0, -1).await?;
    let mut pipe = redis::pipe();
    for instance in &known {
        pipe.exists(key(&InstanceId::from(instance.clone())));
    }
    let alive: Vec<bool> = pipe.query_async(&mut connection).await?;
    Ok(known
        .into_iter()
        .zip(alive)
        .filter(|(_, alive)| !alive)
        .map(|(instance, _)| InstanceId::from(instance))
        .collect())
}
