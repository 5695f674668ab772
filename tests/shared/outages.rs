//! Redis failing under traffic: stopped, emptied, restored from an old snapshot, or cutting off a
//! subscriber. Seqs come from PostgreSQL, so none of it may lose, double or renumber a message.
//! And PostgreSQL failing: mid-run, or down when an instance starts.

use std::time::Duration;

use reqwest::Method;

use crate::harness::{check_room, hear, stored_in, Cluster, Heard};
use crate::helpers::{eventually, Client};

/// A room with two members on one instance and one on another (instances 0 and 1 by default).
struct Room {
    code: String,
    a0: Client,
    a1: Client,
    b0: Client,
    heard: [Heard; 3],
    sent: usize,
}

impl Room {
    async fn open(cluster: &Cluster) -> Self {
        Self::open_on(cluster, [0, 1]).await
    }

    /// A room with two members (`a0`, `a1`) on instance `a` and one (`b0`) on instance `b`.
    async fn open_on(cluster: &Cluster, [a, b]: [usize; 2]) -> Self {
        let code = cluster.create_room(a).await;
        let a0 = cluster.join(a, &code, "a0").await;
        let a1 = cluster.join(a, &code, "a1").await;
        let b0 = cluster.join(b, &code, "b0").await;
        cluster.wait_for_members(&code, &["a0", "a1", "b0"]).await;
        Self {
            code,
            a0,
            a1,
            b0,
            heard: Default::default(),
            sent: 0,
        }
    }

    /// Each sender says `count` messages; then every member hears everything sent so far.
    async fn talk(&mut self, count: usize) {
        for n in 0..count {
            self.a0.say(&format!("a0 {}", self.sent + n)).await;
            self.b0.say(&format!("b0 {}", self.sent + n)).await;
        }
        self.sent += count;
        let total = self.sent * 2;
        let patience = Duration::from_secs(15);
        let [h0, h1, h2] = &mut self.heard;
        hear(&mut self.a0, h0, "a0", total, patience).await;
        hear(&mut self.a1, h1, "a1", total, patience).await;
        hear(&mut self.b0, h2, "b0", total, patience).await;
    }

    async fn check(&self, cluster: &Cluster) {
        check_room(&cluster.database, &self.code, &self.heard).await;
        for heard in &self.heard {
            assert_eq!(heard.messages.len(), self.sent * 2);
        }
    }
}

async fn ready(cluster: &Cluster, on: usize) -> bool {
    let url = format!("{}/readyz", cluster.instance(on).url);
    reqwest::get(url)
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn a_redis_outage_keeps_rooms_going_and_loses_nothing_when_it_is_back() {
    let mut cluster = Cluster::start(2).await;
    let mut room = Room::open(&cluster).await;
    room.talk(5).await;

    cluster.redis.kill();
    eventually("instance 0 says Redis is down", || async {
        (!ready(&cluster, 0).await).then_some(())
    })
    .await;
    assert_eq!(
        cluster.metric(0, "hubbub_redis_up").await,
        "hubbub_redis_up 0"
    );
    // Posting still works and is stored; members still hear everything, in order, from storage.
    room.talk(10).await;
    let started = tokio::time::Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        room.talk(1).await;
    }

    cluster.redis.restart().await;
    for on in 0..2 {
        eventually("the instance is ready again", || async {
            ready(&cluster, on).await.then_some(())
        })
        .await;
    }
    assert_eq!(
        cluster.metric(1, "hubbub_redis_up").await,
        "hubbub_redis_up 1"
    );
    cluster
        .wait_for_members(&room.code, &["a0", "a1", "b0"])
        .await;
    room.talk(5).await;
    room.check(&cluster).await;
}

/// Redis gone for a minute (twenty liveness timeouts) under traffic in eight rooms spread over
/// three instances, then back empty: every room goes on meanwhile, and once Redis is back every
/// member has heard every message in one order, and storage holds each once.
#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn a_minute_without_redis_in_eight_rooms_on_three_instances_loses_nothing() {
    const OUTAGE: Duration = Duration::from_secs(60);
    let mut cluster = Cluster::start(3).await;
    let mut rooms = Vec::new();
    for n in 0..8 {
        rooms.push(Room::open_on(&cluster, [n % 3, (n + 1) % 3]).await);
    }
    futures_util::future::join_all(rooms.iter_mut().map(|room| room.talk(2))).await;

    cluster.redis.kill();
    for on in 0..3 {
        eventually("the instance says Redis is down", || async {
            (!ready(&cluster, on).await).then_some(())
        })
        .await;
    }
    // Bounded by time: rounds of one message from each sender in every room, for a minute. The
    // rooms talk at once, so no member goes unread (and unable to answer pings) for long.
    let started = tokio::time::Instant::now();
    while started.elapsed() < OUTAGE {
        futures_util::future::join_all(rooms.iter_mut().map(|room| room.talk(1))).await;
    }
    cluster.redis.restart().await;
    for on in 0..3 {
        eventually("the instance is ready again", || async {
            ready(&cluster, on).await.then_some(())
        })
        .await;
    }

    for room in &mut rooms {
        cluster
            .wait_for_members(&room.code, &["a0", "a1", "b0"])
            .await;
        room.talk(2).await;
        room.check(&cluster).await;
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn a_flushed_redis_and_one_restored_from_an_old_snapshot_renumber_nothing() {
    let mut cluster = Cluster::start(2).await;
    let mut room = Room::open(&cluster).await;
    room.talk(5).await;
    // A snapshot with the room's presence as it is now.
    assert_eq!(cluster.redis.cli(&["SAVE"]), "OK");
    let _late = cluster.join(1, &room.code, "late").await;
    cluster
        .wait_for_members(&room.code, &["a0", "a1", "b0", "late"])
        .await;

    assert_eq!(cluster.redis.cli(&["FLUSHALL"]), "OK");
    room.talk(5).await;
    // Presence is rebuilt by the instances that hold it.
    eventually("presence is registered again", || async {
        let members = cluster
            .redis
            .cli(&["HLEN", &format!("hubbub:{{{}}}:members", room.code)]);
        (members == "4").then_some(())
    })
    .await;

    // Back to the snapshot: it lacks `late` and knows nothing of the messages since.
    cluster.redis.kill();
    cluster.redis.restart().await;
    room.talk(5).await;
    cluster
        .wait_for_members(&room.code, &["a0", "a1", "b0", "late"])
        .await;
    eventually("presence has everyone again", || async {
        let members = cluster
            .redis
            .cli(&["HLEN", &format!("hubbub:{{{}}}:members", room.code)]);
        (members == "4").then_some(())
    })
    .await;
    room.talk(5).await;
    room.check(&cluster).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn a_subscriber_cut_off_by_redis_resubscribes_and_catches_up() {
    let cluster = Cluster::start(2).await;
    let mut room = Room::open(&cluster).await;
    room.talk(5).await;
    let killed: u32 = cluster
        .redis
        .cli(&["CLIENT", "KILL", "TYPE", "pubsub"])
        .parse()
        .expect("a count of clients killed");
    assert!(
        killed >= 2,
        "both instances' subscriptions were cut, not {killed}"
    );
    // Sent at once, some into the moment before the resubscription: none may be missed.
    room.talk(10).await;
    eventually("both instances subscribe again", || async {
        let channel = format!("hubbub:{{{}}}:events", room.code);
        let count = cluster.redis.cli(&["PUBSUB", "NUMSUB", &channel]);
        (count.lines().last() == Some("2")).then_some(())
    })
    .await;
    room.talk(5).await;
    room.check(&cluster).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn one_name_given_out_on_two_instances_during_an_outage_is_settled_for_the_earlier() {
    let mut cluster = Cluster::start(2).await;
    let code = cluster.create_room(0).await;
    let mut watcher = cluster.join(0, &code, "watcher").await;
    cluster.redis.kill();
    eventually("both instances see Redis down", || async {
        (!ready(&cluster, 0).await && !ready(&cluster, 1).await).then_some(())
    })
    .await;
    let mut first = cluster.join(0, &code, "ann").await;
    watcher.expect("joined").await;
    let mut second = cluster.join(1, &code, "ANN").await;
    cluster.redis.restart().await;

    // The later join is told, and leaves; the earlier keeps the name everywhere.
    let (close, reason) = second.expect_close().await;
    assert_eq!(close, 4409);
    assert!(reason.contains("someone else took this name"), "{reason}");
    cluster.wait_for_members(&code, &["ann", "watcher"]).await;
    // Nobody here heard of the other `ann` at all.
    first.expect_nothing_before(&mut watcher).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn a_postgresql_outage_refuses_posts_without_using_up_a_seq() {
    let cluster = Cluster::start(2).await;
    let mut room = Room::open(&cluster).await;
    room.talk(3).await;

    let outage = cluster.database.block_writes().await;
    room.a0
        .send(serde_json::json!({ "type": "message", "text": "lost", "ref": "r1" }))
        .await;
    let refused = room.a0.expect("error").await;
    assert_eq!(refused["code"], "storage_unavailable");
    assert_eq!(refused["ref"], "r1");
    outage.end().await;

    // Service resumes where it was: the refused post took no seq.
    room.talk(3).await;
    room.check(&cluster).await;
}

/// A room deleted from storage behind the instances' backs (by hand, or another instance's
/// retention) refuses posts, saying why, and stores nothing; a room beside it carries on.
#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn a_post_to_a_room_storage_no_longer_has_is_refused_and_stores_nothing() {
    let cluster = Cluster::start(2).await;
    let mut gone = Room::open(&cluster).await;
    let mut kept = Room::open(&cluster).await;
    gone.talk(2).await;

    sqlx::query("DELETE FROM rooms WHERE code = $1")
        .bind(&gone.code)
        .execute(&mut cluster.database.connect().await)
        .await
        .expect("the room's row is deleted");
    gone.a0
        .send(serde_json::json!({ "type": "message", "text": "into the void", "ref": "v1" }))
        .await;
    let refused = gone.a0.expect("error").await;

    assert_eq!(refused["ref"], "v1");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("no longer exists")),
        "{refused}"
    );
    let texts: Vec<String> = stored_in(&cluster.database, &gone.code)
        .await
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    assert!(!texts.iter().any(|t| t == "into the void"), "{texts:?}");
    kept.talk(2).await;
    kept.check(&cluster).await;
}

/// PostgreSQL refusing connections when an instance starts: the instance serves `/healthz` and
/// stays up, not ready, retrying with backoff; once PostgreSQL answers it migrates, becomes ready
/// and serves rooms.
#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn an_instance_started_while_postgresql_is_down_waits_for_it_not_ready() {
    let mut cluster = Cluster::start(0).await;
    let outage = cluster.database.block_writes().await;
    let instance = cluster.launch().await;
    cluster.instances.push(Some(instance));

    let health = eventually("the instance says storage is degraded", || async {
        let health = cluster
            .instance(0)
            .call(Method::GET, "/healthz", None)
            .await;
        (health["storage"]["status"] == "degraded").then_some(health)
    })
    .await;
    assert!(!ready(&cluster, 0).await, "ready without a database");
    // It stays up through several retries rather than exiting (and being restarted in a loop).
    let watched = std::time::Instant::now();
    while watched.elapsed() < Duration::from_secs(3) {
        cluster
            .instance(0)
            .call(Method::GET, "/healthz", None)
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    outage.end().await;

    eventually("the instance becomes ready", || async {
        ready(&cluster, 0).await.then_some(())
    })
    .await;
    let code = cluster.create_room(0).await;
    let mut ann = cluster.join(0, &code, "ann").await;
    ann.say("the database is back").await;
    assert_eq!(ann.expect("message").await["text"], "the database is back");
    assert!(health["storage"]["error"].is_string(), "{health}");
}
