//! Who is in a room across instances: member lists, names, resume, and instances that die.

use std::time::Duration;

use crate::harness::{hear, names, Cluster, Heard, INSTANCE_TIMEOUT};

#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn a_room_made_on_one_instance_is_joined_on_another_and_lists_everyone() {
    let cluster = Cluster::start(3).await;
    let code = cluster.create_room(0).await;
    let mut ann = cluster.join(1, &code, "ann").await;
    let mut bob = cluster.join(2, &code, "bob").await;
    assert_eq!(names(&bob.welcome), ["ann", "bob"]);
    let joined = ann.expect("joined").await;
    assert_eq!(joined["user"]["name"], "bob");
    cluster.wait_for_members(&code, &["ann", "bob"]).await;

    // Typing and renames cross too; a chosen code is taken once across all.
    bob.send(serde_json::json!({ "type": "typing" })).await;
    assert_eq!(ann.expect("typing").await["user"]["name"], "bob");
    bob.send(serde_json::json!({ "type": "rename", "name": "rob" }))
        .await;
    assert_eq!(ann.expect("renamed").await["user"]["name"], "rob");
    assert_eq!(bob.expect("renamed").await["old_name"], "bob");
    cluster.wait_for_members(&code, &["ann", "rob"]).await;
    let taken = reqwest::Client::new()
        .post(format!("{}/api/rooms", cluster.instance(2).url))
        .json(&serde_json::json!({ "code": code }))
        .send()
        .await
        .expect("the instance answers");
    assert_eq!(taken.status(), 409);

    drop(bob);
    let left = ann.expect("left").await;
    assert_eq!(left["user"]["name"], "rob");
    cluster.wait_for_members(&code, &["ann"]).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn one_name_joined_on_two_instances_at_once_goes_to_exactly_one() {
    let cluster = Cluster::start(3).await;
    let code = cluster.create_room(0).await;
    for round in 0..10 {
        let name = format!("ann{round}");
        let query = format!("name={name}");
        let (first, second) = tokio::join!(
            cluster.try_join(round % 3, &code, &query),
            cluster.try_join((round + 1) % 3, &code, &query)
        );
        let refused: Vec<u16> = [&first, &second]
            .iter()
            .filter_map(|joined| joined.as_ref().err().map(|(close, _)| *close))
            .collect();
        assert_eq!(
            refused,
            [4409],
            "round {round}: exactly one of two got {name}"
        );
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn two_renames_to_one_name_on_two_instances_give_it_to_one() {
    let cluster = Cluster::start(2).await;
    let code = cluster.create_room(0).await;
    let mut ann = cluster.join(0, &code, "ann").await;
    let mut bob = cluster.join(1, &code, "bob").await;
    ann.expect("joined").await;
    for round in 0..5 {
        let name = format!("zed{round}");
        let rename = serde_json::json!({ "type": "rename", "name": name });
        tokio::join!(ann.send(rename.clone()), bob.send(rename));
        // Both hear the winner's rename; the loser is also told the name is taken, before or after.
        let mut refusals = Vec::new();
        for client in [&mut ann, &mut bob] {
            let me = client.id().to_owned();
            let mut refused = false;
            let renamed = until(client, "renamed", |frame| {
                assert_eq!(frame["code"], "name_taken", "round {round}: {frame}");
                refused = true;
            })
            .await;
            assert_eq!(renamed["user"]["name"], name, "round {round}");
            let won = renamed["user"]["id"] == me.as_str();
            if !won && !refused {
                let error = client.expect("error").await;
                assert_eq!(error["code"], "name_taken", "round {round}: {error}");
                refused = true;
            }
            refusals.push(refused);
        }
        refusals.sort();
        assert_eq!(
            refusals,
            [false, true],
            "round {round}: exactly one rename was refused"
        );
    }
}

/// Reads frames up to the next of type `kind`, showing each one before it to `other`.
async fn until(
    client: &mut crate::helpers::Client,
    kind: &str,
    mut other: impl FnMut(&serde_json::Value),
) -> serde_json::Value {
    loop {
        let frame = client.next().await;
        if frame["type"] == kind {
            return frame;
        }
        other(&frame);
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn a_resume_on_another_instance_gets_exactly_what_followed_while_others_post() {
    let cluster = Cluster::start(3).await;
    let code = cluster.create_room(0).await;
    let mut poster = cluster.join(0, &code, "poster").await;
    let mut ann = cluster.join(1, &code, "ann").await;
    let (id, secret) = (ann.id().to_owned(), ann.resume_secret().to_owned());
    poster.expect("joined").await;
    for n in 0..5 {
        poster.say(&format!("before {n}")).await;
    }
    let mut heard = Heard::default();
    hear(&mut ann, &mut heard, "ann", 5, Duration::from_secs(10)).await;
    let since = *heard.messages.keys().last().expect("ann heard messages");
    drop(ann);
    until(&mut poster, "left", |_| {}).await;

    // Instance 2 has not had the room open; instance 0 has. Posting goes on during both handshakes.
    for (round, target) in [2, 0].into_iter().enumerate() {
        let talk = async {
            for n in 0..20 {
                poster.say(&format!("during {target} {n}")).await;
            }
        };
        let query = format!("name=ann&resume={secret}&since={since}");
        let (_, back) = tokio::join!(talk, cluster.join_with(target, &code, &query));
        let mut back = back;
        assert_eq!(back.id(), id, "the same identity on instance {target}");
        assert_eq!(back.welcome["you"]["name"], "ann");
        let mut heard = Heard::default();
        for message in back.welcome["history"].as_array().expect("history") {
            let mut frame = message.clone();
            frame["type"] = "message".into();
            heard.take(&frame, "ann");
        }
        let total = 5 + 20 * (round as u64 + 1);
        hear(
            &mut back,
            &mut heard,
            "ann",
            (total - since) as usize,
            Duration::from_secs(10),
        )
        .await;
        heard.assert_in_order("ann");
        assert_eq!(
            heard.order.first(),
            Some(&(since + 1)),
            "the replay starts right after since"
        );
        assert_eq!(heard.order.last(), Some(&total));
        drop(back);
        until(&mut poster, "joined", |_| {}).await;
        until(&mut poster, "left", |_| {}).await;
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server; run by .ci/run"]
async fn the_members_of_a_killed_instance_leave_once_and_resume_elsewhere() {
    let mut cluster = Cluster::start(3).await;
    let code = cluster.create_room(0).await;
    let mut ann = cluster.join(0, &code, "ann").await;
    let mut doomed = Vec::new();
    for name in ["x", "y"] {
        doomed.push(cluster.join(2, &code, name).await);
        ann.expect("joined").await;
    }
    ann.say("before").await;
    ann.expect("message").await;
    let secrets: Vec<(String, String)> = doomed
        .iter()
        .map(|c| (c.id().to_owned(), c.resume_secret().to_owned()))
        .collect();
    let killed = tokio::time::Instant::now();
    cluster.kill(2);
    drop(doomed);
    for n in 0..3 {
        ann.say(&format!("while dead {n}")).await;
    }
    // Each member of the dead instance leaves once, within the instance timeout and a round.
    let mut lefts = Vec::new();
    while lefts.len() < 2 {
        let frame = ann.next().await;
        match frame["type"].as_str() {
            Some("left") => lefts.push(frame["user"]["id"].as_str().unwrap_or_default().to_owned()),
            Some("message") => {}
            _ => panic!("unexpected {frame}"),
        }
    }
    let timeout = humantime::parse_duration(INSTANCE_TIMEOUT).expect("a duration");
    assert!(
        killed.elapsed() < timeout * 3,
        "left after {:?}",
        killed.elapsed()
    );
    lefts.sort();
    let mut ids: Vec<String> = secrets.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    assert_eq!(lefts, ids);
    cluster.wait_for_members(&code, &["ann"]).await;

    // They resume on instance 1 with exactly what they missed.
    let mut resumed = Vec::new();
    for (id, secret) in &secrets {
        let query = format!("name=z&resume={secret}&since=1");
        let back = cluster.join_with(1, &code, &query).await;
        assert_eq!(back.id(), id);
        let seqs: Vec<u64> = back.welcome["history"]
            .as_array()
            .expect("history")
            .iter()
            .map(|m| m["seq"].as_u64().unwrap_or_default())
            .collect();
        assert_eq!(seqs, [2, 3, 4]);
        resumed.push(back);
    }
    // Ann hears them come back, and no second `left` for anyone.
    ann.say("sentinel").await;
    let mut joined = 0;
    let sentinel = until(&mut ann, "message", |frame| {
        assert_eq!(frame["type"], "joined", "{frame}");
        joined += 1;
    })
    .await;
    assert_eq!(sentinel["text"], "sentinel");
    assert_eq!(joined, 2);
}
